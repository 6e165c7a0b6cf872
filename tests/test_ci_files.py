"""The CI files we ship are valid: every GitHub workflow in docs/examples and action.yml
against the published JSON Schemas for workflows and actions, the GitLab recipe against
GitLab's, and the pre-commit hook definition against pre-commit's (the schemas are vendored
in tests/schemas/, sources in its README); and the pre-commit hook does what it says."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shlex
import subprocess
import sys
import textwrap
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import GEO_SUITE
from github_actions import clean_environment, load_yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = Path(__file__).resolve().parent / "schemas"
EXAMPLES = ROOT / "docs" / "examples"
GITHUB_WORKFLOWS = sorted(p for p in EXAMPLES.glob("*.yml") if not p.name.startswith("gitlab"))


@cache
def validator(name: str) -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / f"{name}.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)  # refs are all local (#/definitions/…): no network


def errors(name: str, document: Any) -> list[str]:
    found = sorted(validator(name).iter_errors(document), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message[:300]}" for e in found]


# --------------------------------------------------------------------------- the vendored schemas


def test_the_vendored_schemas_are_the_ones_the_readme_names() -> None:
    """Each schema file's sha256 is in tests/schemas/README.md, with where it came from."""
    readme = (SCHEMAS / "README.md").read_text(encoding="utf-8")
    files = sorted(SCHEMAS.glob("*.json"))
    assert {p.name for p in files} == {
        "github-workflow.json",
        "github-action.json",
        "gitlab-ci.json",
        "pre-commit-hooks.json",
    }
    for path in files:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert re.search(rf"`{re.escape(path.name)}`.*{digest}", readme), f"{path.name}: {digest}"
        schema = json.loads(path.read_text(encoding="utf-8"))
        refs = re.findall(r'"\$ref":\s*"([^"]*)"', path.read_text(encoding="utf-8"))
        assert refs and all(ref.startswith("#") for ref in refs), path.name  # nothing fetched
        assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"


# --------------------------------------------------------------------------- GitHub


def test_there_are_workflows_to_validate() -> None:
    assert {p.name for p in GITHUB_WORKFLOWS} >= {
        "github-actions.yml",
        "github-actions-sharded.yml",
        "prompttest-action.yml",
    }


@pytest.mark.parametrize("path", GITHUB_WORKFLOWS, ids=lambda p: p.name)
def test_every_example_workflow_is_valid(path: Path) -> None:
    workflow = load_yaml(path)
    assert errors("github-workflow", workflow) == []
    assert "on" in workflow  # read as GitHub reads YAML: `on:` is a key, not True


@pytest.mark.parametrize("path", GITHUB_WORKFLOWS, ids=lambda p: p.name)
def test_no_example_installs_the_teams_project_or_a_package_named_prompttest(path: Path) -> None:
    """In a team's repository there is no prompttest requirements.lock and `pip install .`
    installs their project; the name prompttest on the package index is another project."""
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"pip install[^\n]*(?:-r requirements\.lock|\s\.(?:\s|$))", text)
    assert not re.search(r"pip install[^\n]*\sprompttest\b", text)
    if "OWNER/prompttest" in text:
        assert re.search(r"OWNER/prompttest(@v\d+|\n\s+ref: v\d+)", text)  # a pinned release


def test_action_yml_is_a_valid_action() -> None:
    assert errors("github-action", load_yaml(ROOT / "action.yml")) == []


def test_the_ten_line_workflow_uses_the_action() -> None:
    workflow = load_yaml(EXAMPLES / "prompttest-action.yml")
    lines = [
        line for line in (EXAMPLES / "prompttest-action.yml").read_text().splitlines() if line[:1] != "#"
    ]
    assert len(lines) <= 13
    (job,) = workflow["jobs"].values()
    assert [step["uses"] for step in job["steps"]] == ["actions/checkout@v4", "OWNER/prompttest@v1"]
    assert workflow["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert workflow["on"] == "pull_request"


def test_the_readme_ci_section_shows_the_workflow_file() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    body = (EXAMPLES / "prompttest-action.yml").read_text(encoding="utf-8")
    section = readme[readme.index("\n## CI\n") :]
    section = section[: section.index("\n## ", 1)]
    assert f"```yaml\n{body}```" in section
    assert "docs/ci.md" in section
    without_comments = "".join(line for line in body.splitlines(keepends=True) if line[:1] != "#")
    assert f"```yaml\n{without_comments}```" in (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")


def test_docs_ci_lists_every_input_and_output_of_the_action() -> None:
    action = load_yaml(ROOT / "action.yml")
    docs = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    for name in [*action["inputs"], *action["outputs"]]:
        assert f"\n| `{name}` |" in docs, name


@pytest.mark.parametrize(
    ("schema", "break_it", "why"),
    [
        (
            "github-workflow",
            lambda w: w["jobs"]["prompttest"]["steps"][1].update(run="prompttest run"),
            "a step with both uses and run",
        ),
        ("github-workflow", lambda w: w.update(permisions={"contents": "read"}), "an unknown key"),
        ("github-workflow", lambda w: w["jobs"]["prompttest"].pop("runs-on"), "a job that runs nowhere"),
        (
            "github-action",
            lambda a: a["runs"]["steps"][1].pop("shell"),
            "a composite run step without its shell",
        ),
        ("github-action", lambda a: a["inputs"]["paths"].pop("description"), "an input without description"),
        (
            "gitlab-ci",
            lambda g: g["prompttest"]["artifacts"].update(when="sometimes"),
            "an unknown artifacts: when",
        ),
        ("pre-commit-hooks", lambda h: h[0].pop("entry"), "a hook without its entry"),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v else None,
)
def test_validation_catches_a_broken_file(schema: str, break_it: Any, why: str) -> None:
    source = {
        "github-workflow": EXAMPLES / "prompttest-action.yml",
        "github-action": ROOT / "action.yml",
        "gitlab-ci": EXAMPLES / "gitlab-ci.yml",
        "pre-commit-hooks": ROOT / ".pre-commit-hooks.yaml",
    }[schema]
    document = copy.deepcopy(load_yaml(source))
    assert errors(schema, document) == []
    break_it(document)
    assert errors(schema, document), why


# --------------------------------------------------------------------------- GitLab


def test_the_gitlab_recipe_is_valid_and_reports_junit_and_keeps_the_markdown() -> None:
    recipe = load_yaml(EXAMPLES / "gitlab-ci.yml")
    assert errors("gitlab-ci", recipe) == []
    job = recipe["prompttest"]
    script = "\n".join(job["script"])
    gate = job["script"][-1]
    assert gate.startswith("prompttest run --ci ")  # the last command: its exit code is the job's
    assert "--junit reports/junit.xml" in gate and "--markdown reports/summary.md" in gate
    assert job["artifacts"]["when"] == "always"
    assert job["artifacts"]["reports"]["junit"] == "reports/junit.xml"
    assert "reports/" in job["artifacts"]["paths"]
    assert job["cache"]["paths"] == [".prompttest/cache/"] and job["cache"]["when"] == "always"
    assert 'diff --base "origin/$CI_MERGE_REQUEST_TARGET_BRANCH_NAME"' in script
    install = "\n".join(job["before_script"])
    assert "--require-hashes --no-deps -r .prompttest-tool/requirements.lock" in install


# --------------------------------------------------------------------------- pre-commit


def hooks() -> list[dict[str, Any]]:
    return load_yaml(ROOT / ".pre-commit-hooks.yaml")


def test_the_pre_commit_hook_definition_is_valid() -> None:
    assert errors("pre-commit-hooks", hooks()) == []
    (hook,) = hooks()
    assert {"id", "name", "entry", "language"} <= set(hook)
    assert hook["id"] == "prompttest-validate" and hook["language"] == "python"
    assert hook["entry"] == "prompttest validate" and hook.get("pass_filenames", True) is True


@pytest.mark.parametrize(
    ("path", "matched"),
    [
        ("suites/geo.yaml", True),
        ("suites/team/geo.yml", True),
        ("snapshots/geo.yaml", False),
        ("suites/cases/geo.csv", False),
        ("pyproject.toml", False),
    ],
)
def test_the_hook_runs_on_suite_files_only(path: str, matched: bool) -> None:
    (hook,) = hooks()
    assert bool(re.search(hook["files"], path)) is matched  # pre-commit's `files` is re.search


def run_hook(project: Path, *files: str) -> subprocess.CompletedProcess[str]:
    """The hook's entry with the changed files appended, as pre-commit runs it."""
    (hook,) = hooks()
    command, *args = shlex.split(hook["entry"])
    assert command == "prompttest"
    return subprocess.run(
        [sys.executable, "-m", "prompttest", *args, *files],
        cwd=project,
        env=clean_environment() | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_hook_passes_a_valid_suite_and_fails_a_broken_one_naming_it(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.prompttest]\n")
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "geo.yaml").write_text(
        textwrap.dedent(GEO_SUITE).replace("{api_base}", "http://127.0.0.1:9/v1")
    )
    (suites / "broken.yaml").write_text(
        "prompt: 'Capital of {{ country }}?'\ncases:\n  - id: x\n    expct: []\n"
    )
    ok = run_hook(tmp_path, "suites/geo.yaml")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = run_hook(tmp_path, "suites/geo.yaml", "suites/broken.yaml")
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert "broken.yaml" in bad.stdout + bad.stderr

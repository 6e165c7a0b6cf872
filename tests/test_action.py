"""action.yml, the composite GitHub Action, run step by step as the runner would.

Each `run:` step is run with bash (`-eo pipefail`, as GitHub runs it) in a git repository
with a suite that calls the fake OpenAI-compatible server, after its `${{ }}` expressions
are evaluated (an expression the evaluator does not know fails the test). `uses:` steps are
not run: they must be the expected actions at pinned major versions, and their inputs are
evaluated and checked. The install step is stood in for by a `prompttest` that runs this
checkout; a test of its own runs it for real in a fresh virtual environment. The comment
step runs the real `prompttest comment` against the fake GitHub API of test_comment.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import GEO_SUITE, replies
from fake_server import FakeServer
from github_actions import (
    ActionRun,
    ExpressionError,
    Expressions,
    clean_environment,
    expressions_in,
    load_yaml,
    output_names,
    run_composite,
)
from test_comment import PR, REPO, TOKEN, FakeGitHub

ROOT = Path(__file__).resolve().parent.parent
ACTION = load_yaml(ROOT / "action.yml")
ANSWERS = {"France": "Paris.", "Japan": "Tokyo.", "Peru": "Lima."}
USED = {  # what the action may use, at a pinned major version, and what each sets
    "actions/setup-python@v5": {"python-path": sys.executable, "python-version": "3.11"},
    "actions/cache/restore@v4": {"cache-hit": "false", "cache-primary-key": "prompttest-Linux-key"},
    "actions/cache/save@v4": {},
    "actions/upload-artifact@v4": {"artifact-id": "1", "artifact-url": "https://example.invalid/a"},
}
RUN_ID = "4242"


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub().start()
    yield fake
    fake.stop()


class Repository:
    """A team's repository, checked out for a pull request: `main` pushed to `origin` (a bare
    repository), the PR's branch checked out, and no `origin/main` known locally (a shallow
    checkout: the action fetches it)."""

    def __init__(self, tmp: Path, server: FakeServer, github: FakeGitHub, project: str = ".") -> None:
        self.tmp, self.server, self.github = tmp, server, github
        self.workspace = tmp / "workspace"
        self.project = self.workspace / project
        (self.project / "suites").mkdir(parents=True)
        self.bin = tmp / "bin"
        self.bin.mkdir()
        self.prompttest = self.bin / "prompttest"
        self.prompttest.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m prompttest "$@"\n')
        self.prompttest.chmod(0o755)
        self.env = clean_environment() | {"PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        (self.project / "pyproject.toml").write_text("[tool.prompttest]\n")
        (self.project / "suites" / "geo.yaml").write_text(
            textwrap.dedent(GEO_SUITE).replace("{api_base}", server.url)
        )
        (self.workspace / ".gitignore").write_text(".prompttest/\nprompttest-reports/\n")
        server.reply = replies(ANSWERS)
        subprocess.run([str(self.prompttest), "run"], cwd=self.project, env=self.env, check=True)
        git(self.workspace, "init", "-q", "-b", "main")
        git(self.workspace, "add", "-A")
        git(self.workspace, "commit", "-q", "-m", "suites and snapshots")
        git(tmp, "init", "-q", "--bare", "origin.git")
        git(self.workspace, "remote", "add", "origin", str(tmp / "origin.git"))
        git(self.workspace, "push", "-q", "origin", "main")
        git(self.workspace, "checkout", "-q", "-b", "change")
        git(self.workspace, "update-ref", "-d", "refs/remotes/origin/main")
        self.event = tmp / "event.json"
        self.event.write_text(json.dumps({"number": PR, "pull_request": {"number": PR}}))
        self.runs = 0

    def push(self, message: str) -> None:
        """A commit on the pull request's branch (what the author pushes)."""
        suite = self.project / "suites" / "geo.yaml"
        suite.write_text(suite.read_text() + f"# {message}\n")
        git(self.workspace, "commit", "-q", "-am", message)

    def act(self, event: str = "pull_request", **inputs: str) -> ActionRun:
        """One run of the action, with these inputs, on this event."""
        self.runs += 1
        scratch = self.tmp / f"run-{self.runs}"
        scratch.mkdir()
        on_pr = event.startswith("pull_request")
        github_context = {
            "token": TOKEN,
            "base_ref": "main" if on_pr else "",
            "event_name": event,
            "action_path": str(ROOT),
            "workspace": str(self.workspace),
            "repository": REPO,
            "run_id": RUN_ID,
            "run_attempt": str(self.runs),
        }
        env = self.env | {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_ACTION_PATH": str(ROOT),
            "GITHUB_REPOSITORY": REPO,
            "GITHUB_EVENT_NAME": event,
            "GITHUB_EVENT_PATH": str(self.event),
            "GITHUB_API_URL": self.github.url,
            "GITHUB_BASE_REF": github_context["base_ref"],
            "RUNNER_TEMP": str(scratch),
            "RUNNER_OS": "Linux",
        }
        run = run_composite(
            ACTION,
            inputs=inputs,
            contexts={"github": github_context, "runner": {"temp": str(scratch), "os": "Linux"}},
            env=env,
            workspace=self.workspace,
            scratch=scratch,
            uses_outputs=USED,
            stubbed={"install": {"prompttest": str(self.prompttest)}},
            functions={"hashFiles": hash_files(self.workspace)},
        )
        for step in run.steps:  # nothing the action runs may see the token but the comment
            if step.kind == "run" and "GITHUB_TOKEN" in step.env:
                assert step.name == "Comment on the pull request", step.name
        return run


def hash_files(workspace: Path) -> Any:
    """hashFiles(): its patterns must name files of the workspace; a fixed stand-in hash."""

    def hash_files(*patterns: str) -> str:
        assert patterns and all(isinstance(p, str) and not p.startswith("/") for p in patterns), patterns
        assert any(list(workspace.glob(p.removeprefix("./"))) for p in patterns), patterns
        return "0f1e2d"

    return hash_files


@pytest.fixture
def repo(tmp_path: Path, fake_server: FakeServer, github: FakeGitHub) -> Repository:
    return Repository(tmp_path, fake_server, github)


def step_line(run: ActionRun, step_id: str, prefix: str) -> str:
    step = run.step(step_id)
    return next(line for line in step.stdout.splitlines() if line.startswith(prefix))


# --------------------------------------------------------------------------- the action's shape


def test_the_action_uses_only_expected_actions_at_pinned_major_versions() -> None:
    used = [step["uses"] for step in ACTION["runs"]["steps"] if "uses" in step]
    assert used and set(used) <= set(USED), used
    assert all(re.fullmatch(r"[\w-]+/[\w/-]+@v\d+", name) for name in used)
    assert ACTION["runs"]["using"] == "composite"
    assert all(step.get("shell") == "bash" for step in ACTION["runs"]["steps"] if "run" in step)


def test_every_expression_of_the_action_is_one_the_evaluator_knows() -> None:
    """Every `${{ }}` in the file, also in steps no test case runs, parses and names only
    known contexts, properties, step outputs and functions."""
    steps = ACTION["runs"]["steps"]
    known = {s["id"]: output_names(s, USED) for s in steps if "id" in s}
    contexts = {
        "inputs": {name: "x" for name in ACTION["inputs"]},
        "github": dict.fromkeys(
            ("token", "base_ref", "event_name", "action_path", "workspace", "run_id", "run_attempt"), "x"
        ),
        "runner": {"temp": "x", "os": "Linux"},
        "steps": {},
    }
    ev = Expressions(contexts, known, functions={"hashFiles": lambda *patterns: "h"})
    found = expressions_in(ACTION)
    assert len(found) > 20
    for expression in found:
        ev.evaluate(expression)
    for step in steps:
        if "if" in step:
            ev.condition(step["if"])
    with pytest.raises(ExpressionError):
        ev.evaluate("secrets.OPENAI_API_KEY")
    with pytest.raises(ExpressionError):
        ev.evaluate("steps.gate.outputs.exitcode")
    with pytest.raises(ExpressionError):
        ev.evaluate("inputs.nope")


def test_the_outputs_are_the_gates_exit_code_and_report_folder() -> None:
    assert set(ACTION["outputs"]) == {"exit-code", "report-dir"}
    assert ACTION["outputs"]["exit-code"]["value"] == "${{ steps.gate.outputs.exit-code }}"


# --------------------------------------------------------------------------- running it


def test_a_passing_gate_writes_summary_and_reports_and_keeps_one_comment_up_to_date(
    repo: Repository, github: FakeGitHub
) -> None:
    repo.push("a change that keeps every answer")
    first = repo.act()
    assert not first.failed, first.log()
    assert first.outputs["exit-code"] == "0"
    assert first.step("gate").code == 0
    report_dir = Path(first.outputs["report-dir"])
    assert report_dir == repo.workspace / "prompttest-reports"
    assert {p.name for p in report_dir.iterdir()} == {
        "junit.xml",
        "summary.md",
        "report.html",
        "report.json",
        "diff.md",
    }
    summary = (report_dir / "summary.md").read_text()
    assert summary.strip() in first.summary  # `prompttest run` wrote the step summary
    assert "### What this pull request changes in the snapshots (origin/main)" in first.summary
    assert "snapshots at origin/main" in (report_dir / "diff.md").read_text()
    assert git(repo.workspace, "rev-parse", "origin/main")  # the shallow checkout's base was fetched
    assert "::error" not in first.step("gate").stdout

    (comment,) = github.comments[PR]
    assert comment["body"].startswith(summary.strip()[:40]) and "<!-- prompttest -->" in comment["body"]
    assert "prompttest comment: created https://github.com/" in first.log()

    uses = {step.name: step for step in first.steps if step.kind == "uses"}
    assert uses["Set up Python for prompttest"].inputs == {
        "python-version": "3.11",
        "update-environment": "false",
    }
    restore = uses["Restore the response cache"].inputs
    assert restore["path"] == "./.prompttest/cache"
    assert restore["key"] == f"prompttest-Linux-.-0f1e2d-{RUN_ID}-1"
    assert restore["restore-keys"].splitlines() == ["prompttest-Linux-.-0f1e2d-", "prompttest-Linux-.-"]
    assert uses["Save the response cache"].inputs == {
        "path": "./.prompttest/cache",
        "key": "prompttest-Linux-key",  # restore's primary key: saved whatever was restored
    }
    upload = uses["Upload the reports"].inputs
    assert upload == {"name": "prompttest-report", "path": str(report_dir), "if-no-files-found": "ignore"}

    repo.push("the next push")
    second = repo.act()
    assert not second.failed, second.log()
    assert len(github.comments[PR]) == 1  # updated, not a second comment
    assert [r.method for r in github.seen() if r.method != "GET"] == ["POST", "PATCH"]
    assert "prompttest comment: updated https://github.com/" in second.log()


def test_a_failing_gate_in_a_subfolder_still_comments_and_the_action_exits_1(
    tmp_path: Path, fake_server: FakeServer, github: FakeGitHub
) -> None:
    repo = Repository(tmp_path, fake_server, github, project="app")
    repo.push("France's answer changes")
    fake_server.reply = replies(ANSWERS | {"France": "Lyon."})
    run = repo.act(**{"working-directory": "app", "args": "--no-cache -j 2", "marker": "geo gate"})

    assert run.failed, run.log()
    assert run.outputs["exit-code"] == "1"
    assert run.step("gate").code == 0  # the gate's code is kept, not raised, until the end
    final = run.steps[-1]
    assert final.name == "The gate's result" and final.code == 1
    assert all(step.code == 0 for step in run.steps[:-1])  # everything else still ran
    # the annotation names the suite from the repository's root, where GitHub looks
    annotation = step_line(run, "gate", "::error ")
    assert "file=app/suites/geo.yaml,line=4" in annotation and "geo/france@fake" in annotation
    assert Path(run.outputs["report-dir"]) == repo.project / "prompttest-reports"
    (comment,) = github.comments[PR]
    assert "regressed" in comment["body"] and "<!-- prompttest: geo gate -->" in comment["body"]
    assert "snapshots at origin/main" in run.summary  # diff --base from the project's subfolder
    diff = (repo.project / "prompttest-reports" / "diff.md").read_text()
    assert "**prompttest: 3 unchanged**" in diff  # the base's snapshots were found, none new


@pytest.mark.parametrize(
    ("event", "inputs"),
    [("pull_request", {"comment": "false"}), ("push", {})],
    ids=["comment-false", "push-event"],
)
def test_no_comment_when_turned_off_or_not_a_pull_request(
    repo: Repository, github: FakeGitHub, event: str, inputs: dict[str, str]
) -> None:
    run = repo.act(event, reports="junit", **inputs)
    assert not run.failed, run.log()
    assert next(s for s in run.steps if s.name == "Comment on the pull request").kind == "skipped"
    assert github.requests == []
    report_dir = Path(run.outputs["report-dir"])
    names = {p.name for p in report_dir.iterdir()}
    assert "junit.xml" in names and "report.html" not in names
    assert ("summary.md" in names) == (inputs.get("comment", "true") == "true")  # written to comment
    if event == "push":  # no base branch: no comparison
        assert next(s for s in run.steps if s.name.startswith("Compare")).kind == "skipped"


def test_a_bad_reports_input_exits_2_and_the_comment_says_the_gate_stopped(
    repo: Repository, github: FakeGitHub
) -> None:
    run = repo.act(reports="junit,pdf")
    assert run.failed and run.outputs["exit-code"] == "2"
    assert "no report named 'pdf'" in step_line(run, "gate", "::error ")
    (comment,) = github.comments[PR]
    assert "The gate exited 2 before it wrote a summary" in comment["body"]


def test_the_cache_steps_are_skipped_with_cache_false(repo: Repository) -> None:
    run = repo.act(cache="false", comment="false")
    kinds = {step.name: step.kind for step in run.steps}
    assert kinds["Restore the response cache"] == kinds["Save the response cache"] == "skipped"
    assert not run.failed, run.log()


# --------------------------------------------------------------------------- the install step


def install_step() -> dict[str, Any]:
    return next(step for step in ACTION["runs"]["steps"] if step.get("id") == "install")


def test_the_install_step_installs_from_the_actions_own_checkout_hash_locked() -> None:
    script = install_step()["run"]
    assert '--require-hashes --no-deps -r "$GITHUB_ACTION_PATH/requirements.lock"' in script
    # Built with the lock's setuptools: nothing unpinned is fetched to build it.
    assert '--no-deps --no-build-isolation "$GITHUB_ACTION_PATH"' in script
    assert not re.search(r"pip install[^\n]*(?<![\w-])prompttest\b", script)  # never a package by name
    lock = (ROOT / "requirements.lock").read_text()
    pins = re.findall(
        r"^([A-Za-z0-9_.\[\],-]+)==\S+ \\\n((?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", lock, re.M
    )
    requirements = [line for line in lock.splitlines() if re.match(r"^[A-Za-z0-9]", line)]
    assert pins and len(pins) == len(requirements)  # every requirement pinned, with its hashes


def test_the_install_step_really_installs_prompttest_in_a_fresh_virtual_environment(tmp_path: Path) -> None:
    """The step's own script, against a copy of this checkout (pip builds in the folder it is
    given): the locked dependencies from the package index, then prompttest itself."""
    action_path = tmp_path / "action"
    shutil.copytree(
        ROOT,
        action_path,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            ".prompttest",
            "build",
            "*.egg-info",
            "__pycache__",
            ".*_cache",
            "tests",
            "benchmarks",
        ),
    )
    outputs = tmp_path / "outputs"
    outputs.write_text("")
    env = clean_environment() | {
        "PYTHON": sys.executable,
        "RUNNER_TEMP": str(tmp_path),
        "GITHUB_ACTION_PATH": str(action_path),
        "GITHUB_OUTPUT": str(outputs),
    }
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", install_step()["run"]],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    installed = outputs.read_text().strip().removeprefix("prompttest=")
    assert installed == str(tmp_path / "prompttest-venv" / "bin" / "prompttest")
    assert re.match(r"\S+, version \d", done.stdout), done.stdout
    check = subprocess.run(
        [installed, "validate", str(ROOT / "suites")], env=clean_environment(), capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr

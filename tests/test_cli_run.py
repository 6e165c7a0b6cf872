"""`prompttest run` end to end: the real CLI against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Project
from fake_server import Drop, Hang, Malformed, Status

CAPITALS = """\
    target: {id: fake, model: openai/fake, api_base: "{api_base}"}
    params: {temperature: 0, max_tokens: 64}
    prompt: "What is the capital of {{ country }}?"
    expect:
      - max_length: 200
    cases:
      - id: france
        vars: {country: France}
        expect:
          - contains: Paris
      - id: japan
        vars: {country: Japan}
        expect:
          - contains: Tokyo
"""


def answer_capitals(request: dict) -> str:
    question = request["messages"][-1]["content"]
    return "Paris is the capital." if "France" in question else "Tokyo is the capital."


@pytest.fixture
def capitals(project: Project) -> Project:
    project.suite("capitals", CAPITALS)
    project.server.reply = answer_capitals
    return project


def test_first_run_writes_snapshots_and_a_rerun_changes_no_byte(
    capitals: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    first = capitals.run("run", capsys=capsys)
    assert first.code == 0, first.err
    assert "2 new" in first.out
    snapshot = capitals.snapshot("capitals")
    assert "france@fake:" in snapshot and "Paris is the capital." in snapshot
    before = capitals.tree()

    capitals.server.reset()
    capitals.server.reply = answer_capitals
    again = capitals.run("run", "--no-cache", capsys=capsys)
    assert again.code == 0
    assert "2 unchanged" in again.out
    assert capitals.server.count == 2  # --no-cache really called again
    assert capitals.tree() == before


def test_a_reply_that_breaks_a_check_is_regressed_and_ci_writes_nothing(
    capitals: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    assert capitals.run("run", capsys=capsys).code == 0
    before = capitals.tree()
    capitals.server.reply = lambda request: "I am not sure."
    result = capitals.run("run", "--ci", "--no-cache", capsys=capsys)
    assert result.code == 1
    assert "regressed" in result.out and "capitals/france@fake" in result.out
    assert "expected 'Paris'" in result.out
    assert capitals.tree() == before


def test_ci_environment_variable_turns_the_gate_on(
    capitals: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    result = capitals.run("run", capsys=capsys)
    assert result.code == 1  # new keys fail the gate: snapshots must be committed
    assert "2 new" in result.out
    assert not (capitals.root / "snapshots").exists()


def test_update_accepts_changes_and_removes_obsolete_entries(
    capitals: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    capitals.run("run", capsys=capsys)
    capitals.server.reply = lambda request: "Paris, or Tokyo, is the capital."
    capitals.suite(
        "capitals",
        CAPITALS.replace(
            "      - id: japan\n        vars: {country: Japan}\n"
            "        expect:\n          - contains: Tokyo\n",
            "",
        ),
    )
    pending = capitals.run("run", "--no-cache", capsys=capsys)
    assert pending.code == 0
    assert "1 changed, 1 obsolete" in pending.out
    assert "japan@fake" in capitals.snapshot("capitals")  # not accepted without -u

    accepted = capitals.run("run", "-u", capsys=capsys)  # the cache holds the new answer
    assert accepted.code == 0
    assert capitals.server.count == 3
    snapshot = capitals.snapshot("capitals")
    assert "japan@fake" not in snapshot
    assert "Paris, or Tokyo" in snapshot


def test_a_rerun_is_answered_from_the_cache(capitals: Project, capsys: pytest.CaptureFixture[str]) -> None:
    capitals.run("run", capsys=capsys)
    assert capitals.server.count == 2
    result = capitals.run("run", capsys=capsys)
    assert result.code == 0
    assert capitals.server.count == 2
    assert "2 cached" in result.out


def test_offline_turns_a_cache_miss_into_an_error_naming_the_call(
    capitals: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    result = capitals.run("run", "--offline", capsys=capsys)
    assert result.code == 3
    assert capitals.server.count == 0
    assert "no cached answer for openai/fake" in result.out


def test_faults_are_retried_until_an_answer_comes(
    capitals: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    capitals.server.script(Status(429, retry_after=0.1), Status(500), Malformed(), Drop())
    result = capitals.run("run", "-j", "1", "-k", "*france*", "--retries", "4", capsys=capsys)
    assert result.code == 0, result.out
    assert capitals.server.count == 5
    assert "1 new" in result.out


def test_attempts_are_bounded_and_a_failed_call_is_an_error_never_a_pass(
    capitals: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    capitals.server.reply = lambda request: Status(503)
    result = capitals.run("run", "-j", "1", "-k", "*france*", "--retries", "2", capsys=capsys)
    assert result.code == 3
    assert capitals.server.count == 3  # 1 attempt + 2 retries, no nested retry layer
    assert "HTTP 503" in result.out and "after 3 attempt(s)" in result.out
    assert not (capitals.root / "snapshots" / "capitals.yaml").exists()  # errors are never snapshotted


def test_a_hanging_call_is_cut_by_the_timeout(capitals: Project, capsys: pytest.CaptureFixture[str]) -> None:
    capitals.server.script(Hang(5))
    result = capitals.run("run", "-k", "*france*", "--timeout", "0.5", capsys=capsys)
    assert result.code == 0, result.out
    assert capitals.server.count == 2


def test_a_rejected_key_exits_3_and_stops_calling(
    capitals: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    capitals.server.reply = lambda request: Status(401)
    result = capitals.run("run", "-j", "1", capsys=capsys)
    assert result.code == 3
    assert capitals.server.count == 1  # the second key was not sent to a provider that said 401
    assert "HTTP 401" in result.out and "not called" in result.out
    assert "0 passed" not in result.out


def test_a_bad_suite_exits_2_naming_file_and_line_and_calls_nothing(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project.suite("broken", CAPITALS.replace("contains: Paris", "contans: Paris"))
    result = project.run("run", capsys=capsys)
    assert result.code == 2
    assert f"{path}:10:" in result.err
    assert "unknown check 'contans'" in result.err
    assert "Traceback" not in result.err
    assert project.server.count == 0
    assert project.tree() == {
        "pyproject.toml": b"[tool.prompttest]\n",
        "suites/broken.yaml": path.read_bytes(),
    }


def test_a_planted_api_key_reaches_no_file_the_run_wrote(
    capitals: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-planted-secret-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    # A provider that echoes the key it was sent back into the output and into an error.
    capitals.server.reply = lambda request: (
        f"Paris. Your key: {capitals.server.requests[-1].headers['authorization']}"
    )
    capitals.run("run", "-k", "*france*", "--json", "report.json", capsys=capsys)
    capitals.server.reply = lambda request: Status(400, body={"error": {"message": f"bad key {secret}"}})
    reports = ("--json", "report2.json", "--junit", "r.xml", "--markdown", "r.md", "--html", "r.html")
    result = capitals.run("run", "-k", "*japan*", *reports, capsys=capsys)
    assert result.code == 3
    for shape in ("text", "markdown", "json", "html"):  # diff renders outputs and errors again
        diffed = capitals.run("diff", "--format", shape, "-o", f"diff.{shape}", capsys=capsys)
        assert diffed.code == 0 and secret not in diffed.out + diffed.err
    assert capitals.server.requests[0].headers["authorization"] == f"Bearer {secret}"
    written = capitals.tree(include_state=True)
    assert any(name.startswith(".prompttest/cache") for name in written)
    assert {
        "report.json",
        "report2.json",
        "r.xml",
        "r.md",
        "r.html",
        "diff.html",
        "snapshots/capitals.yaml",
    } <= set(written)
    for name, data in written.items():
        assert secret.encode() not in data, name
    assert secret not in result.out + result.err
    assert "[REDACTED" in capitals.snapshot("capitals")


def test_json_report_and_run_record(capitals: Project, capsys: pytest.CaptureFixture[str]) -> None:
    result = capitals.run("run", "--json", "out/report.json", capsys=capsys)
    assert result.code == 0
    report = json.loads((capitals.root / "out" / "report.json").read_text())
    assert report["summary"]["verdicts"]["new"] == 2
    france = next(r for r in report["results"] if r["case"] == "france")
    assert france["verdict"] == "new" and france["passed"] is True
    assert france["output"] == "Paris is the capital."
    assert {
        "type": "contains",
        "label": "contains: Paris",
        "passed": True,
        "reason": france["checks"][1]["reason"],
    } in france["checks"]
    assert france["tokens"]["completion"] == 4
    assert france["cost_usd"] is None  # an unknown model's cost is unknown, never 0
    records = list((capitals.root / ".prompttest" / "runs").glob("*.json"))
    assert len(records) == 1
    assert json.loads(records[0].read_text())["results"] == report["results"]


def test_json_report_matches_its_shipped_schema(
    capitals: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    import jsonschema

    from prompttest.report.jsonreport import report_schema

    capitals.server.reply = lambda request: (
        Status(401) if "Japan" in request["messages"][-1]["content"] else "Paris"
    )
    capitals.run("run", "-j", "1", "--json", "report.json", capsys=capsys)
    report = json.loads(Path(capitals.root / "report.json").read_text())
    jsonschema.Draft202012Validator(report_schema()).validate(report)
    assert report["summary"]["verdicts"]["error"] == 1


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["run", "--ci", "-u"], "--update cannot be used with --ci"),
        (["run", "--offline", "--no-cache"], "cannot be used with --no-cache"),
        (["run", "--api-base", "http://x"], "give -m MODEL too"),
        (["run", "-j", "0"], "-j"),
        (["run", "--nope"], "No such option"),
    ],
)
def test_wrong_flags_exit_2_with_a_clear_message(
    capitals: Project, capsys: pytest.CaptureFixture[str], args: list[str], words: str
) -> None:
    result = capitals.run(*args, capsys=capsys)
    assert result.code == 2
    assert words in result.err
    assert capitals.server.count == 0


def test_model_override_runs_the_suite_against_another_target(
    capitals: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    result = capitals.run("run", "-m", "openai/other", "--api-base", capitals.server.url, capsys=capsys)
    assert result.code == 0, result.out
    assert {r.json["model"] for r in capitals.server.requests} == {"other"}
    assert "capitals/france@openai/other" in result.out


def test_with_model_entries_of_the_models_run_whose_case_is_gone_are_obsolete(
    capitals: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """-m runs other targets than the suite's: their own entries can be obsolete, the
    suite's targets' entries are left alone (they were not run)."""
    model = ("-m", "openai/other", "--api-base", capitals.server.url)
    assert capitals.run("run", capsys=capsys).code == 0
    assert capitals.run("run", *model, capsys=capsys).code == 0
    assert "japan@openai/other" in capitals.snapshot("capitals")
    capitals.suite(
        "capitals",
        CAPITALS.replace(
            "      - id: japan\n        vars: {country: Japan}\n"
            "        expect:\n          - contains: Tokyo\n",
            "",
        ),
    )
    pending = capitals.run("run", *model, "--json", "r.json", capsys=capsys)
    assert pending.code == 0 and "1 obsolete" in pending.out
    verdicts = {r["key"]: r["verdict"] for r in json.loads(Path("r.json").read_text())["results"]}
    assert verdicts == {
        "capitals/france@openai/other": "unchanged",
        "capitals/japan@openai/other": "obsolete",
    }

    assert capitals.run("run", *model, "-u", capsys=capsys).code == 0
    snapshot = capitals.snapshot("capitals")
    assert "japan@openai/other" not in snapshot
    assert "japan@fake" in snapshot and "france@openai/other" in snapshot  # another target's: kept


def test_offline_misses_of_one_model_are_one_block_with_a_count(
    capitals: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    result = capitals.run("run", "--offline", capsys=capsys)
    assert result.code == 3
    blocks = [line for line in result.out.splitlines() if line.startswith("error in ")]
    assert blocks == ["error in capitals/france@fake (+1 more):"], result.out
    assert "no cached answer for openai/fake" in result.out

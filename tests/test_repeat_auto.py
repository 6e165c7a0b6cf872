"""`repeat: auto`: samples drawn in looks while a key's comparison is undecided, on the test server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import Project
from test_suite_verdicts import Noise

KEYS = 20
CAP = 40


def auto_suite(project: Project, *, cap: int = CAP, keys: int = KEYS) -> None:
    cases = "".join(f"      - id: k{i}\n        vars: {{key: {i}}}\n" for i in range(keys))
    project.suite(
        "auto",
        f"""\
    target: {{id: fake, model: openai/fake, api_base: "{{api_base}}"}}
    prompt: "Answer {{{{ key }}}}"
    repeat: auto
    max_repeat: {cap}
    pass: {{at_least: 1}}
    expect: [{{contains: PASS}}]
    cases:
{cases}""",
    )


def ci_run(
    project: Project, capsys: pytest.CaptureFixture[str], reply: Noise
) -> tuple[int, dict[str, Any], int]:
    project.server.reply = reply
    before = project.server.count
    gate = project.run("run", "-j", "8", "--ci", "--no-cache", "--json", "r.json", capsys=capsys)
    return gate.code, json.loads((project.root / "r.json").read_text()), project.server.count - before


def test_new_keys_take_every_sample_and_unchanged_ones_stop_early(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    auto_suite(project)
    project.server.reply = Noise(0.8, "before")
    first = project.run("run", "-j", "8", capsys=capsys)
    assert first.code == 0, first.out
    assert project.server.count == KEYS * CAP  # a snapshot is a fixed-size sample
    assert project.snapshot("auto").count(f"samples: {CAP}") == KEYS

    code, report, calls = ci_run(project, capsys, Noise(0.8, "after"))
    assert code == 0
    assert calls < 0.7 * KEYS * CAP, calls  # most unchanged keys are decided at their first looks
    taken = [len(r["output"]) for r in report["results"]]
    assert sum(taken) == calls and set(taken) <= {10, 20, CAP}
    for result in report["results"]:
        (check,) = result["checks"]
        assert check["samples"] == len(result["output"])
        assert len(check["looks"]) == [10, 20, CAP].index(check["samples"]) + 1
        assert check["looks"][-1] == check["passed_count"]


def test_a_collapsed_key_is_regressed_without_its_last_look(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    auto_suite(project)
    project.server.reply = Noise(0.8, "before")
    project.run("run", "-j", "8", capsys=capsys)
    code, report, _ = ci_run(project, capsys, Noise(0.8, "after", keys={"Answer 3": 0.0}))
    assert code == 1
    (regressed,) = [r for r in report["results"] if r["verdict"] == "regressed"]
    assert regressed["case"] == "k3"
    assert len(regressed["output"]) < CAP  # its drop was certain before the cap
    assert regressed["checks"][0]["p_value"] < 0.05


def test_dry_run_counts_the_worst_case_and_update_draws_it(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    auto_suite(project, keys=3)
    dry = project.run("run", "--dry-run", capsys=capsys)
    assert dry.code == 0 and f"{3 * CAP}" in dry.out
    project.server.reply = Noise(0.8, "before")
    project.run("run", "-j", "8", capsys=capsys)
    before = project.server.count
    project.server.reply = Noise(0.8, "again")
    updated = project.run("run", "-j", "8", "--no-cache", "-u", capsys=capsys)
    assert updated.code == 0
    assert project.server.count - before == 3 * CAP  # an accepted sample is never cut short


def test_repeat_flag_fixes_the_samples(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    auto_suite(project, keys=2)
    project.server.reply = Noise(0.8, "before")
    project.run("run", "-j", "8", "--repeat", "5", capsys=capsys)
    assert project.server.count == 2 * 5
    assert "looks" not in (project.root / "snapshots" / "auto.yaml").read_text()


def test_a_bad_repeat_names_its_line(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.suite(
        "bad",
        """\
    target: {id: fake, model: openai/fake, api_base: "{api_base}"}
    prompt: hi
    repeat: often
    cases: [{id: a}]
""",
    )
    result = project.run("validate", capsys=capsys)
    assert result.code == 2
    assert "bad.yaml:3" in result.err and "repeat" in result.err


def test_progress_ends_at_the_calls_made(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    """The progress counts each key's first look and then the looks it draws, not the cap."""
    from prompttest.config import load_project
    from prompttest.session import RunOptions, run

    auto_suite(project, keys=6)
    project.server.reply = Noise(0.8, "before")
    project.run("run", "-j", "8", capsys=capsys)
    project.server.reply = Noise(0.8, "after", keys={"Answer 1": 0.0})
    seen: list[tuple[int, int]] = []
    before = project.server.count
    run(
        load_project(project.root, environ={}),
        RunOptions(ci=True, use_cache=False),
        on_progress=lambda done, total: seen.append((done, total)),
    )
    made = project.server.count - before
    assert seen[0] == (0, 6 * 10)  # every key starts with its first look
    assert seen[-1] == (made, made) and made < 6 * CAP


def test_the_repeat_flag_can_be_auto(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.suite(
        "plain",
        """\
    target: {id: fake, model: openai/fake, api_base: "{api_base}"}
    prompt: "Answer {{ key }}"
    pass: {at_least: 1}
    expect: [{contains: PASS}]
    cases: [{id: a, vars: {key: 1}}, {id: b, vars: {key: 2}}]
""",
    )
    project.server.reply = Noise(0.8, "before")
    assert project.run("run", "--repeat", "auto", capsys=capsys).code == 0
    assert project.server.count == 2 * CAP
    before = project.server.count
    project.server.reply = Noise(0.8, "after")
    assert project.run("run", "--ci", "--no-cache", "--repeat", "auto", capsys=capsys).code == 0
    assert project.server.count - before < 2 * CAP
    bad = project.run("run", "--repeat", "often", capsys=capsys)
    assert bad.code == 2 and "'often' is not a number of samples or 'auto'" in bad.err
    assert project.run("run", "--repeat", "0", capsys=capsys).code == 2


def test_accepting_a_key_auto_stopped_early_says_so(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    auto_suite(project, keys=2)
    project.server.reply = Noise(0.8, "before")
    project.run("run", "-j", "8", capsys=capsys)
    project.server.reply = Noise(0.8, "after", keys={"Answer 0": 0.0})
    project.run("run", "-j", "8", "--no-cache", capsys=capsys)  # k0 regressed, its samples cut short
    accepted = project.run("accept", "-k", "auto/k0@fake", capsys=capsys)
    assert accepted.code == 0
    assert "1 key(s) accepted from fewer samples than max_repeat" in accepted.err
    assert "prompttest run -u -k KEY" in accepted.err

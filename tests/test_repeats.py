"""Repeats: sample-set snapshots and statistical verdicts, through the real CLI."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from conftest import FUZZ, Project
from hypothesis import given
from hypothesis import strategies as st

from prompttest.model import CheckResult, Result, Verdict
from prompttest.model.stats import RateChange, adjust
from prompttest.verdicts.sampling import SampleTests
from prompttest.verdicts.table import Baseline

SUITE = """\
    target: {id: fake, model: openai/fake, api_base: "{api_base}"}
    prompt: "Capital of {{ country }}?"
    repeat: 10
    PASS_RULE
    cases:
      - id: france
        vars: {country: France}
        expect: [{contains: Paris}]
"""


def scripted(project: Project, *, passing: int, distinct: int = 1) -> None:
    """The next 10 answers: `passing` of them say Paris (in `distinct` wordings), the rest Lyon."""
    seen = Counter[str]()

    def reply(request: dict) -> str:
        index = seen["n"]
        seen["n"] += 1
        if index % 10 < passing:
            return f"Paris ({index % distinct})" if distinct > 1 else "Paris."
        return "Lyon."

    project.server.reply = reply


def suite(project: Project, rule: str = "") -> None:
    project.suite("geo", SUITE.replace("PASS_RULE", rule))


def test_each_sample_is_its_own_call_and_the_snapshot_keeps_counts(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    suite(project)
    scripted(project, passing=10, distinct=2)
    result = project.run("run", "-j", "1", capsys=capsys)
    assert result.code == 0, result.out
    assert project.server.count == 10
    snapshot = project.snapshot("geo")
    assert "samples: 10" in snapshot
    assert "- count: 5\n      output: Paris (0)" in snapshot
    assert "'contains: Paris': 10/10" in snapshot
    again = project.run("run", capsys=capsys)
    assert "1 unchanged" in again.out and "10 cached" in again.out
    assert project.server.count == 10


def test_a_significant_drop_is_regressed(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    suite(project)
    scripted(project, passing=10)
    project.run("run", "-j", "1", capsys=capsys)
    scripted(project, passing=1)
    result = project.run("run", "-j", "1", "--ci", "--no-cache", "--json", "r.json", capsys=capsys)
    assert result.code == 1
    assert "regressed" in result.out and "1/10" in result.out and "was 10/10" in result.out
    report = json.loads((project.root / "r.json").read_text())
    (key,) = report["results"]
    assert key["verdict"] == "regressed"
    assert isinstance(key["output"], list) and len(key["output"]) == 10
    (check,) = key["checks"]
    assert (check["passed_count"], check["samples"], check["before"]) == (1, 10, [10, 10])
    assert check["p_value"] < 0.001
    assert 0.0 < check["interval"][0] < 0.1 < check["interval"][1] < 0.5


def test_a_small_drop_within_the_pass_rule_is_inconclusive_and_fails_only_strict(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    suite(project, "pass: {rate: 0.7}")
    scripted(project, passing=10)
    project.run("run", "-j", "1", capsys=capsys)
    scripted(project, passing=8)
    result = project.run("run", "-j", "1", "--ci", "--no-cache", capsys=capsys)
    assert result.code == 0, result.out
    assert "inconclusive" in result.out and "8/10" in result.out
    strict = project.run("run", "-j", "1", "--ci", "--strict", capsys=capsys)
    assert strict.code == 1


def test_a_drop_below_the_pass_rule_that_is_not_significant_is_failing(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    suite(project, "pass: majority")
    scripted(project, passing=8)
    project.run("run", "-j", "1", capsys=capsys)
    scripted(project, passing=5)
    result = project.run("run", "-j", "1", "--ci", "--no-cache", capsys=capsys)
    assert result.code == 1
    assert "failing" in result.out and "5/10" in result.out


def test_distinct_outputs_are_capped_in_the_snapshot(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    suite(project)
    scripted(project, passing=10, distinct=10)
    project.run("run", "-j", "1", capsys=capsys)
    snapshot = project.snapshot("geo")
    assert snapshot.count("- count: 1") == 5
    assert "other_outputs: 5" in snapshot


def test_repeat_flag_overrides_the_suite(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    suite(project)
    scripted(project, passing=10)
    project.run("run", "--repeat", "3", capsys=capsys)
    assert project.server.count == 3
    assert "samples: 3" in project.snapshot("geo")


def test_a_bad_pass_rule_names_its_line(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    path = project.suite("geo", SUITE.replace("PASS_RULE", "pass: sometimes"))
    result = project.run("validate", capsys=capsys)
    assert result.code == 2
    assert f"{path}:4:" in result.err and "majority" in result.err


def test_too_few_samples_to_ever_be_significant_is_said(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite("geo", SUITE.replace("repeat: 10", "repeat: 3").replace("PASS_RULE", ""))
    scripted(project, passing=10)
    project.run("run", "-j", "1", capsys=capsys)
    scripted(project, passing=0)  # 3/3 -> 0/3: the smallest p-value possible is 0.05
    result = project.run("run", "-j", "1", "--no-cache", capsys=capsys)
    assert "failing" in result.out and "regressed" not in result.out
    assert "1 repeated key(s) have too few samples for any drop to be significant" in result.out
    ten = project.run("run", "-j", "1", "--repeat", "10", capsys=capsys)
    assert "too few samples" not in ten.out


@st.composite
def sampled_keys(draw: st.DrawFn) -> list[tuple[int, Result, Baseline | None]]:
    """Sampled keys as a run makes them: each check's pass count out of its samples, and a
    snapshot that has some of the checks (or no snapshot at all)."""
    keys = []
    for number in sorted(draw(st.sets(st.integers(0, 40), max_size=8))):
        checks, counts = [], {}
        for j in range(draw(st.integers(0, 3))):
            n = draw(st.integers(1, 12))
            checks.append(
                CheckResult(
                    label=f"c{j}",
                    passed=False,
                    reason="",
                    passed_count=draw(st.integers(0, n)),
                    samples=n,
                    stale=draw(st.booleans()),
                )
            )
            if draw(st.booleans()):
                m = draw(st.integers(1, 12))
                counts[f"c{j}"] = (draw(st.integers(0, m)), m)
        result = Result(
            suite="s",
            case=f"k{number}",
            target="t",
            model="m",
            verdict=Verdict.NEW,
            output="x",
            checks=tuple(checks),
            error=draw(st.none() | st.just("HTTP 500")),
        )
        baseline = Baseline(output="x", checks={}, counts=counts) if draw(st.booleans()) else None
        keys.append((number, result, baseline))
    return keys


@FUZZ
@given(sampled_keys())
def test_sample_tests_are_the_run_wide_holm_adjusted_tests_of_each_key(
    keys: list[tuple[int, Result, Baseline | None]],
) -> None:
    """The arrays hand back, key by key, what adjusting every test of the run at once gives
    (no key here has a count over all its checks, so no suite is pooled: Holm over the keys)."""
    tests = [
        (
            number,
            j,
            RateChange.compare(k_before=b[0], n_before=b[1], k_after=c.passed_count, n_after=c.samples),
        )
        for number, result, baseline in keys
        if baseline is not None and result.error is None
        for j, c in enumerate(result.checks)
        if not c.stale and (b := baseline.count(c.label)) is not None
    ]
    adjusted = adjust([change for _, _, change in tests], "holm")
    expected: dict[int, dict[int, RateChange]] = {}
    for (number, j, _), change in zip(tests, adjusted, strict=True):
        expected.setdefault(number, {})[j] = change
    collected = SampleTests(iter(keys), alpha=0.05)
    assert collected.suites == ()
    assert {number: collected.of(number) for number, _, _ in keys} == {
        number: expected.get(number, {}) for number, _, _ in keys
    }

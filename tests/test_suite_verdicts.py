"""Suite-level verdicts: a suite's keys pooled, against the test server, through the real CLI."""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Any

import pytest
from conftest import Project
from hypothesis import given, settings
from hypothesis import strategies as st

from prompttest.model import CheckResult, Result, Verdict
from prompttest.model.familywise import RunTests, SuiteTests
from prompttest.model.pooled import Stratum, stratified_p
from prompttest.model.stats import fisher_one_sided
from prompttest.verdicts.sampling import SampleTests
from prompttest.verdicts.table import Baseline

KEYS = 30


class Noise:
    """Answers PASS with probability p, from one seeded stream per prompt (so a key's count does
    not depend on the order concurrent requests arrive in); `keys` overrides p for some keys."""

    def __init__(self, p: float, seed: str, keys: dict[str, float] | None = None) -> None:
        self.p, self.seed, self.keys = p, seed, keys or {}
        self.streams: dict[str, random.Random] = {}

    def __call__(self, request: dict[str, Any]) -> str:
        prompt = str(request["messages"][-1]["content"])
        stream = self.streams.setdefault(prompt, random.Random(f"{self.seed}|{prompt}"))
        return "PASS" if stream.random() < self.keys.get(prompt, self.p) else "FAIL"


def noisy_suite(project: Project, *, checks: str = "[{contains: PASS}]", repeat: int = 20) -> None:
    cases = "".join(f"      - id: k{i}\n        vars: {{key: {i}}}\n" for i in range(KEYS))
    project.suite(
        "noisy",
        f"""\
    target: {{id: fake, model: openai/fake, api_base: "{{api_base}}"}}
    prompt: "Answer {{{{ key }}}}"
    repeat: {repeat}
    pass: {{at_least: 1}}
    expect: {checks}
    cases:
{cases}""",
    )


def baseline_then_ci(
    project: Project, capsys: pytest.CaptureFixture[str], before: Noise, after: Noise, *extra: str
) -> tuple[int, dict[str, Any], str]:
    """A local run at `before` writes the snapshots; a CI run at `after` is judged against them."""
    project.server.reply = before
    first = project.run("run", "-j", "8", capsys=capsys)
    assert first.code == 0, first.out
    project.server.reply = after
    gate = project.run("run", "-j", "8", "--ci", "--no-cache", "--json", "r.json", *extra, capsys=capsys)
    return gate.code, json.loads((project.root / "r.json").read_text()), gate.out


def test_a_small_drop_on_every_key_fails_the_run_as_a_suite(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """0.8 -> 0.65 on every key: no key's own test can see it, the suite's pooled test does."""
    noisy_suite(project)
    code, report, out = baseline_then_ci(
        project, capsys, Noise(0.8, "before"), Noise(0.65, "after"), "--junit", "r.xml", "--markdown", "r.md"
    )
    assert code == 1, out
    (suite,) = report["suites"]
    assert suite["verdict"] == "regressed" and suite["keys"] == KEYS
    assert suite["rate_after"] < suite["rate_before"]
    assert suite["interval"][0] < suite["rate_after"] - suite["rate_before"] < suite["interval"][1] < 0
    assert suite["p_value"] < 0.05
    # Few keys, if any, are significant alone: the suite's test is what sees the drop.
    assert suite["keys_regressed"] == report["summary"]["verdicts"]["regressed"] < KEYS // 5
    # The suite leads the terminal output and the Markdown, and is a failing JUnit case.
    assert out.startswith("suite regressed: noisy on fake: pass rate")
    markdown = (project.root / "r.md").read_text()
    assert markdown.startswith("**prompttest: 1 suite(s) regressed, ")
    assert markdown.splitlines()[2].startswith("- **suite regressed**: `noisy` on `fake`")
    case = ET.parse(project.root / "r.xml").getroot().find("testsuite/testcase")
    assert case is not None and case.get("name") == "pass rate@fake"
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == "suite regressed"


def test_nothing_changed_stays_quiet_and_says_what_it_could_have_seen(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    noisy_suite(project)
    code, report, out = baseline_then_ci(project, capsys, Noise(0.8, "before"), Noise(0.8, "after"))
    assert code == 0, out
    (suite,) = report["suites"]
    assert suite["verdict"] == "no change"
    # 30 keys x 20 samples a side see a drop of a few points on every key; one key alone needs far more.
    assert 0.03 < suite["detectable_drop"] < 0.15
    assert suite["detectable_drop"] < suite["detectable_key_drop"] <= 0.8
    assert "no significant change: noisy on fake" in out and "it would have seen a drop of" in out


def test_one_key_collapsing_is_its_own_regression_and_the_suites(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    noisy_suite(project)
    after = Noise(0.8, "after", keys={"Answer 7": 0.05})
    code, report, out = baseline_then_ci(project, capsys, Noise(0.8, "before"), after)
    assert code == 1
    regressed = [r["case"] for r in report["results"] if r["verdict"] == "regressed"]
    assert regressed == ["k7"]
    (suite,) = report["suites"]
    assert suite["verdict"] == "regressed" and suite["keys_regressed"] == 1


def test_update_accepts_a_regressed_suite(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    noisy_suite(project)
    project.server.reply = Noise(0.8, "before")
    project.run("run", "-j", "8", capsys=capsys)
    project.server.reply = Noise(0.5, "after")
    updated = project.run("run", "-j", "8", "--no-cache", "-u", capsys=capsys)
    assert updated.code == 0, updated.out
    assert "suite regressed: noisy on fake" in updated.out


def test_the_snapshot_counts_samples_that_pass_every_check(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """With two checks a key's stratum is its samples passing both; without that count (an older
    snapshot) the key is not pooled, and its checks are still tested one by one."""
    noisy_suite(project, checks="[{contains: PASS}, {max_length: 100}]")
    code, report, _ = baseline_then_ci(project, capsys, Noise(0.8, "before"), Noise(0.8, "after"))
    assert code == 0
    snapshot = project.snapshot("noisy")
    assert snapshot.count("all_checks: ") == KEYS
    assert report["suites"][0]["keys"] == KEYS
    older = "\n".join(line for line in snapshot.splitlines() if "all_checks: " not in line) + "\n"
    (project.root / "snapshots" / "noisy.yaml").write_text(older)
    project.server.reply = Noise(0.8, "again")
    gate = project.run("run", "-j", "8", "--ci", "--no-cache", "--json", "r.json", capsys=capsys)
    assert gate.code == 0, gate.out
    again = json.loads((project.root / "r.json").read_text())
    assert again["suites"] == []  # no key has a count to pool
    assert all(c["before"] for r in again["results"] for c in r["checks"])


def test_a_broken_all_checks_count_names_its_line(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    noisy_suite(project, checks="[{contains: PASS}, {max_length: 100}]")
    project.server.reply = Noise(0.8, "before")
    project.run("run", "-j", "8", capsys=capsys)
    path = project.root / "snapshots" / "noisy.yaml"
    text = path.read_text()
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "all_checks: " in t)
    path.write_text(text.replace("all_checks: ", "all_checks: 99", 1))
    broken = project.run("run", "--ci", capsys=capsys)
    assert broken.code == 2
    assert "all_checks" in broken.err and "noisy.yaml" in broken.err
    entry_line = max(n for n, t in enumerate(text.splitlines(), 1) if n < line and t.startswith("  k"))
    assert f":{entry_line}" in broken.err


# --------------------------------------------------------------------------- the procedure itself


@st.composite
def pooled_keys(draw: st.DrawFn) -> list[tuple[int, Result, Baseline | None]]:
    """Sampled keys of one check, spread over two suites, each with a snapshot to pool against."""
    keys = []
    for number in range(draw(st.integers(2, 12))):
        n_before, n_after = draw(st.integers(1, 15)), draw(st.integers(1, 15))
        k_before, k_after = draw(st.integers(0, n_before)), draw(st.integers(0, n_after))
        check = CheckResult(label="c", passed=True, reason="", passed_count=k_after, samples=n_after)
        result = Result(
            suite=draw(st.sampled_from(["a", "b"])),
            case=f"k{number}",
            target="t",
            model="m",
            verdict=Verdict.NEW,
            output="x",
            checks=(check,),
            outputs=("x",) * n_after,
            all_passed=k_after,
        )
        baseline = Baseline(
            output="x", checks={"c": k_before == n_before}, counts={"c": (k_before, n_before)}
        )
        keys.append((number, result, baseline))
    return keys


@settings(max_examples=60, deadline=None)
@given(pooled_keys())
def test_sample_tests_adjust_pooled_suites_and_keys_in_one_procedure(
    keys: list[tuple[int, Result, Baseline | None]],
) -> None:
    """The keys' adjusted p-values are what the closed procedure gives over the exact pooled
    tests (suites of two keys or more) and every key's Fisher test."""
    strata: dict[str, list[Stratum]] = {}
    key_p: dict[str, dict[str, float]] = {}
    for number, result, baseline in keys:
        assert baseline is not None
        k_before, n_before = baseline.counts["c"]
        strata.setdefault(result.suite, []).append(
            Stratum(k_before, n_before, result.all_passed or 0, len(result.outputs))
        )
        key_p.setdefault(result.suite, {})[str(number)] = fisher_one_sided(
            k_before, n_before, result.all_passed or 0, len(result.outputs), alternative="less"
        )
    expected = RunTests.adjust(
        {
            f"{suite}\x00t": SuiteTests(
                pooled=stratified_p(strata[suite], alternative="less") if len(strata[suite]) > 1 else None,
                keys=key_p[suite],
            )
            for suite in key_p
        }
    )
    collected = SampleTests(iter(keys), alpha=0.05)
    for number, _, _ in keys:
        (change,) = collected.of(number).values()
        assert change.p_drop == pytest.approx(expected.keys[str(number)], rel=1e-9, abs=1e-15)
    pooled = {s.suite: s for s in collected.suites}
    assert pooled.keys() == {suite for suite in strata if len(strata[suite]) > 1}
    for suite, verdict in pooled.items():
        assert (verdict.verdict == "regressed") == expected.suite_rejected(f"{suite}\x00t", 0.05)


# --------------------------------------------------------------------------- score drift


class Judged:
    """The model answers; the judge grades it with a score near `level` (seeded noise)."""

    def __init__(self, level: float, seed: str, keys: dict[str, float] | None = None) -> None:
        self.level, self.seed, self.keys = level, seed, keys or {}
        self.streams: dict[str, random.Random] = {}
        self.answers: Counter[str] = Counter()

    def __call__(self, request: dict[str, Any]) -> str:
        text = json.dumps(request["messages"])
        if "RUBRIC" not in text:  # each sample of a key in its own words (the same ones each run)
            prompt = request["messages"][-1]["content"]
            self.answers[prompt] += 1
            return f"Answer {prompt} (take {self.answers[prompt]})"
        key = next((k for k in self.keys if k in text), None)
        stream = self.streams.setdefault(text, random.Random(f"{self.seed}|{text}"))
        score = min(1.0, max(0.0, stream.gauss(self.keys.get(key, self.level) if key else self.level, 0.03)))
        return json.dumps({"pass": True, "score": round(score, 3), "reason": "graded"})


def judged_suite(project: Project, *, keys: int, repeat: int = 1) -> None:
    cases = "".join(f"      - id: k{i}\n        vars: {{key: K{i:02d}}}\n" for i in range(keys))
    project.suite(
        "graded",
        f"""\
    target: {{id: fake, model: openai/fake, api_base: "{{api_base}}"}}
    prompt: "Item {{{{ key }}}}"
    repeat: {repeat}
    expect:
      - llm_judge: {{rubric: "RUBRIC: the answer is helpful.", model: openai/judge, api_base: "{{api_base}}",
                    threshold: 0.5}}
    cases:
{cases}""",
    )


def test_scores_sliding_above_their_threshold_are_reported_and_fail_only_strict(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    judged_suite(project, keys=12)
    project.server.reply = Judged(0.9, "before")
    assert project.run("run", "-j", "4", capsys=capsys).code == 0
    assert "scores:" in project.snapshot("graded")
    project.server.reply = Judged(0.8, "after")  # every answer still passes 0.5
    gate = project.run("run", "-j", "4", "--ci", "--no-cache", "--json", "r.json", capsys=capsys)
    assert gate.code == 0, gate.out
    (drop,) = json.loads((project.root / "r.json").read_text())["score_drops"]
    assert (drop["suite"], drop["check"], drop["keys"]) == ("graded", "llm_judge", 12)
    assert drop["mean_before"] - drop["mean_after"] == pytest.approx(0.1, abs=0.03)
    assert drop["p_value"] < 0.05
    assert "score dropped: graded on fake: llm_judge mean score" in gate.out
    assert gate.out.rstrip().endswith(
        "checks pass, but scores dropped (above): look at the outputs; --strict fails on it"
    )
    strict = project.run("run", "-j", "4", "--ci", "--strict", capsys=capsys)
    assert strict.code == 1
    # Only the scores moved: every output is the snapshot's.
    assert json.loads((project.root / "r.json").read_text())["summary"]["verdicts"]["unchanged"] == 12
    project.server.reply = Judged(0.9, "noise only")
    quiet = project.run("run", "-j", "4", "--ci", "--no-cache", "--json", "q.json", capsys=capsys)
    assert quiet.code == 0 and json.loads((project.root / "q.json").read_text())["score_drops"] == []


def test_one_key_with_repeats_whose_score_dropped_is_flagged(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    judged_suite(project, keys=4, repeat=10)
    project.server.reply = Judged(0.9, "before")
    assert project.run("run", "-j", "4", capsys=capsys).code == 0
    assert "sd: " in project.snapshot("graded")
    project.server.reply = Judged(0.9, "after", keys={"K02": 0.7})
    gate = project.run("run", "-j", "4", "--ci", "--no-cache", "--json", "r.json", capsys=capsys)
    assert gate.code == 0, gate.out
    flagged = [
        r["case"]
        for r in json.loads((project.root / "r.json").read_text())["results"]
        if "score dropped" in r["flags"]
    ]
    assert flagged == ["k2"]
    assert "graded/k2@fake" in gate.out
    assert project.run("run", "-j", "4", "--ci", "--strict", capsys=capsys).code == 1


def test_merged_shards_are_judged_as_the_one_run_they_split(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same answers, run whole and in two shards: merging judges the keys, the suite and
    alpha as the whole run did (each shard alone spent alpha on its half)."""
    noisy_suite(project)
    project.server.reply = Noise(0.8, "before")
    project.run("run", "-j", "8", capsys=capsys)
    runs = project.root / ".prompttest" / "runs"
    project.server.reply = Noise(0.65, "after", keys={"Answer 3": 0.1})
    whole = project.run("run", "-j", "8", "--ci", "--no-cache", "--json", "whole.json", capsys=capsys)
    project.server.reply = Noise(0.65, "after", keys={"Answer 3": 0.1})  # the same answers again
    shards = []
    for i in (1, 2):
        project.run("run", "-j", "8", "--ci", "--no-cache", "--shard", f"{i}/2", capsys=capsys)
        shards.append(sorted(runs.glob("*.json"))[-1])
    merged = project.run("merge", *map(str, shards), "--json", "m.json", capsys=capsys)
    assert merged.code == whole.code == 1, merged.out
    one, two = (json.loads((project.root / name).read_text()) for name in ("whole.json", "m.json"))
    assert two["suites"] == one["suites"] and one["suites"][0]["keys"] == KEYS
    verdicts = {r["key"]: (r["verdict"], r["passed"], r["checks"][0]["p_value"]) for r in one["results"]}
    assert {
        r["key"]: (r["verdict"], r["passed"], r["checks"][0]["p_value"]) for r in two["results"]
    } == verdicts
    assert verdicts["noisy/k3@fake"][0] == "regressed"


def test_github_annotations_pin_a_regressed_suite_to_its_file(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from prompttest.records.runs import read_run
    from prompttest.report.annotations import github_annotations

    noisy_suite(project)
    baseline_then_ci(project, capsys, Noise(0.8, "before"), Noise(0.65, "after"))
    record = read_run(sorted((project.root / ".prompttest" / "runs").glob("*.json"))[-1])
    first = github_annotations(record, cwd=str(project.root))[0]
    title = "title=prompttest suite regressed%3A noisy on fake::"
    assert first.startswith(f"::error file=suites/noisy.yaml,{title}")
    assert "noisy on fake: pass rate" in first

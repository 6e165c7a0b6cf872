"""`prompttest history --check`: the latest run against the runs before it, on the real test
server with its answers, latency and prices changed between runs. It must catch a latency
jump, a price change, a pass-rate slide and a silent model swap, and stay quiet on noise."""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import shlex
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Project
from fake_server import Hang

from prompttest.cli.main import cli
from prompttest.model import CheckResult, Result, Verdict
from prompttest.records import history as store
from prompttest.records.drift import check_drift
from prompttest.records.history import SCHEMA_VERSION, append_run, open_history
from prompttest.records.ranks import (
    _doubled_midranks,
    _exact_upper,
    _normal_upper,
    nearest_rank,
    signed_rank_greater,
)
from prompttest.records.runs import RunRecord

ROOT = Path(__file__).resolve().parent.parent
WORDS = [f"w{i}" for i in range(10)]
CASES = "".join(f"      - id: {w}\n        vars: {{n: {w}}}\n" for w in WORDS)
# Prices per token, by model: litellm remembers a model's price process-wide, so a new price
# comes with a model name of its own (the keys, `suite/case@target`, stay).
SUITE = (
    """\
    target: {id: fake, model: MODEL, api_base: "{api_base}"}
    params: {input_cost_per_token: PRICE, output_cost_per_token: PRICE, max_tokens: 10}
    prompt: "PROMPT {{ n }}"
    expect: [{contains: ok}]
    cases:
"""
    + CASES
)
BASE_MODEL = "openai/drift-base"
# For the tests about something else: this machine's own load can slow a whole run down.
NO_LATENCY = ("--latency-tolerance", "1000")


def suite(project: Project, *, model: str = BASE_MODEL, price: str = "0.001", prompt: str = "Say") -> None:
    text = SUITE.replace("MODEL", model).replace("PRICE", price).replace("PROMPT", prompt)
    project.suite("words", text)


def serve(
    project: Project,
    rng: random.Random,
    *,
    answer: Callable[[str], str] = lambda word: f"ok {word}",
    seconds: Callable[[str], float] | None = None,
) -> None:
    """Answer each word with `answer(word)` after `seconds(word)` (default: 5-40 ms of jitter)."""
    wait = seconds or (lambda word: rng.uniform(0.005, 0.04))

    def reply(request: dict[str, Any]) -> Hang:
        word = request["messages"][-1]["content"].split()[-1]
        return Hang(wait(word), then=answer(word))

    project.server.reply = reply


def run(project: Project, capsys: pytest.CaptureFixture[str]) -> str:
    """One uncached run, every key at once; its run id."""
    project.run("run", "--no-cache", "-j", "10", capsys=capsys)
    [(run_id,)] = query(project, "SELECT id FROM runs ORDER BY started_at DESC, id DESC LIMIT 1")
    return str(run_id)


def runs(project: Project, capsys: pytest.CaptureFixture[str], count: int, rng: random.Random) -> list[str]:
    """`count` ordinary runs: the same answers, with jitter."""
    suite(project)
    ids = []
    for _ in range(count):
        serve(project, rng)
        ids.append(run(project, capsys))
    return ids


def check(project: Project, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    done = project.run("history", "--check", "--format", "json", *args, capsys=capsys)
    assert done.code in (0, 1), done.err
    return done.code, json.loads(done.out)


def kinds(report: dict[str, Any]) -> list[str]:
    return sorted(f["kind"] for f in report["findings"])


def query(project: Project, sql: str, *args: object) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(project.root / ".prompttest" / "history.sqlite")
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def test_ten_runs_of_noise_stay_quiet(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(22)
    suite(project)
    seen = []
    for night in range(10):
        # Jitter on every call (large, so that this machine's own hiccups stay small beside it),
        # and one key that words its answer either way at random.
        serve(
            project,
            rng,
            answer=lambda word: f"ok {word}" if word != "w9" or rng.random() < 0.5 else "ok, w9",
            seconds=lambda word: rng.uniform(0.4, 0.8),
        )
        seen.append(run(project, capsys))
        if night == 0:
            continue
        code, report = check(project, capsys)
        assert code == 0, report["findings"]
        assert report["latest"]["id"] == seen[-1]
    assert not report["drifted"] and report["findings"] == []
    assert [run["id"] for run in report["baseline"]] == seen[-2:-9:-1]  # the 7 before, newest first
    assert sorted(f["kind"] for f in report["quiet"]) == ["cost", "latency", "pass_rate", "swap"]
    assert report["tests"] == 3 and report["correction"] == "bonferroni"  # the cost is a threshold
    text = project.run("history", "--check", capsys=capsys)
    assert text.code == 0 and "nothing moved" in text.out and "DRIFT" not in text.out


def noisy_night(night: int, rng: random.Random) -> RunRecord:
    """30 keys: a check that passes 4 times in 5, 5 keys that answer as they like, and
    latencies with a long tail (log-normal); nothing about the provider changes."""
    results = tuple(
        Result(
            suite="s",
            case=f"c{k}",
            target="t",
            model="m",
            verdict=Verdict.UNCHANGED,
            output=rng.choice("abc") if k < 5 else f"answer {k}",
            checks=(CheckResult(label="contains", passed=rng.random() < 0.8, reason=""),),
            request=f"{k:012x}",
            latency_ms=rng.lognormvariate(math.log(300), 0.5),
            prompt_tokens=10,
            completion_tokens=5,
            cost_usd=15e-6,
        )
        for k in range(30)
    )
    return RunRecord(
        id=f"night-{night:02d}",
        started_at=f"2026-01-{night + 1:02d}T03:00:00+00:00",
        wall_s=1.0,
        results=results,
    )


def test_ten_nights_of_noise_rarely_alarm(tmp_path: Path) -> None:
    """The default alpha, corrected over the tests, against 100 histories of ten noisy nights,
    checked every night: a false alarm on fewer than 1 % of the nights, and 95 of the 100
    histories never alarm."""
    nights = alarms = loud = 0
    for seed in range(100):
        rng = random.Random(seed)
        conn = open_history(tmp_path / f"{seed}.sqlite")
        assert conn is not None
        alarmed = False
        for night in range(10):
            append_run(conn, noisy_night(night, rng))
            if night:
                report = check_drift(conn)
                assert report.tests == (3 if night > 1 else 2)  # the swap needs two nights before
                nights += 1
                alarms += report.drifted
                alarmed |= report.drifted
        loud += alarmed
        conn.close()
    assert nights == 900 and alarms < 9 and loud <= 5


def test_a_latency_jump_is_caught(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(1)
    suite(project)
    before = []
    for _ in range(4):
        serve(project, rng, seconds=lambda word: rng.uniform(0.2, 0.4))
        before.append(run(project, capsys))
    serve(project, rng, seconds=lambda word: rng.uniform(1.5, 1.6))
    latest = run(project, capsys)
    code, report = check(project, capsys)
    assert code == 1 and kinds(report) == ["latency"]
    [finding] = report["findings"]
    assert finding["since"]["id"] == before[-1] and finding["baseline_runs"] == 4
    assert finding["suite"] == "words" and finding["target"] == "fake" and finding["keys"] == 10
    assert finding["after"] >= 1500 and finding["after"] > 1.2 * finding["before"]
    assert "Wilcoxon" in finding["test"] and finding["p_value"] == pytest.approx(1 / 1024)
    assert finding["adjusted_p"] == pytest.approx(3 / 1024)  # Bonferroni over pass rate, latency, swap
    assert "10 of 10 keys slower" in finding["what"]

    text = project.run("history", "--check", capsys=capsys)
    assert text.code == 1
    assert f"run {latest}" in text.out and f"since run {before[-1]}" in text.out
    assert "DRIFT  latency" in text.out and "Bonferroni" in text.out and "p = 0.00098" in text.out

    # The same jump within a tolerance of 10,000 %: the rank test alone does not alarm.
    assert check(project, capsys, "--latency-tolerance", "100")[0] == 0


def test_one_slow_key_is_not_a_latency_drift(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(2)
    suite(project)
    for _ in range(4):
        serve(project, rng, seconds=lambda word: rng.uniform(0.4, 0.5))
        run(project, capsys)
    # w0 takes 3 times as long; every other key is faster than before, by more than this
    # machine's own hiccups could make up for.
    serve(project, rng, seconds=lambda word: 1.5 if word == "w0" else rng.uniform(0.01, 0.03))
    run(project, capsys)
    code, report = check(project, capsys)
    [latency] = [f for f in report["quiet"] + report["findings"] if f["kind"] == "latency"]
    assert latency["after"] >= 1500 and latency["beyond_threshold"], latency  # the p95 alone would alarm
    assert latency["p_value"] > 0.5 and "of 10 keys slower" in latency["what"], latency
    assert code == 0


def test_a_price_change_is_caught(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(3)
    suite(project, model="openai/drift-price-a", price="0.001")
    for _ in range(3):
        serve(project, rng)
        run(project, capsys)
    suite(project, model="openai/drift-price-b", price="0.003")
    serve(project, rng)
    run(project, capsys)
    code, report = check(project, capsys, *NO_LATENCY)
    assert code == 1 and kinds(report) == ["cost"]
    [finding] = report["findings"]
    assert finding["after"] == pytest.approx(3 * finding["before"]) and finding["keys"] == 10
    assert "x3.00" in finding["what"] and finding["p_value"] is None and "10%" in finding["threshold"]
    # Another model is no silent swap: its outputs are not compared with the old one's.
    assert {s["kind"] for s in report["skipped"]} == {"swap"}
    assert check(project, capsys, "--cost-tolerance", "2.5", *NO_LATENCY)[0] == 0


def test_a_pass_rate_slide_is_caught_and_one_key_is_not(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(4)
    runs(project, capsys, 3, rng)
    serve(project, rng, answer=lambda word: f"no {word}" if word == "w0" else f"ok {word}")
    one_key = run(project, capsys)
    code, report = check(project, capsys, *NO_LATENCY)
    assert code == 0, report["findings"]  # 30/30 then 9/10: p = 0.25, and one output changed
    [rate] = [f for f in report["quiet"] if f["kind"] == "pass_rate"]
    assert (rate["before"], rate["after"]) == (1.0, 0.9)

    serve(project, rng, answer=lambda word: f"no {word}" if word < "w6" else f"ok {word}")
    run(project, capsys)
    code, report = check(project, capsys, *NO_LATENCY)
    assert code == 1 and "pass_rate" in kinds(report)
    [finding] = [f for f in report["findings"] if f["kind"] == "pass_rate"]
    assert (finding["before"], finding["after"]) == (pytest.approx(39 / 40), 0.4)
    assert finding["since"]["id"] == one_key and finding["baseline_runs"] == 4
    assert "Fisher" in finding["test"] and finding["adjusted_p"] < 0.05
    assert "4/10" in finding["what"]


def test_a_silent_model_swap_is_caught(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(5)
    before = runs(project, capsys, 3, rng)
    # The same model name and request, another answer: still passing, so only the outputs tell.
    serve(project, rng, answer=lambda word: f"ok, here it is: {word}")
    run(project, capsys)
    code, report = check(project, capsys, *NO_LATENCY)
    assert code == 1 and kinds(report) == ["swap"]
    [finding] = report["findings"]
    assert finding["since"]["id"] == before[-1] and finding["after"] == 1.0 and finding["before"] == 0.0
    assert "10 of 10 outputs changed with the same model and request" in finding["what"]
    assert "Fisher" in finding["test"] and finding["adjusted_p"] < 0.05
    text = project.run("history", "--check", *NO_LATENCY, capsys=capsys).out
    assert "DRIFT  model swap" in text


def test_an_edited_prompt_is_no_swap(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(6)
    runs(project, capsys, 3, rng)
    suite(project, prompt="Now say")  # a new request: its new answers are the edit's doing
    serve(project, rng, answer=lambda word: f"ok, here it is: {word}")
    run(project, capsys)
    code, report = check(project, capsys, *NO_LATENCY)
    assert code == 0
    [skipped] = report["skipped"]
    assert skipped["kind"] == "swap" and "same model and request" in skipped["reason"]


def test_cache_hits_are_no_latency_nor_swap(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(7)
    runs(project, capsys, 3, rng)
    serve(project, rng, answer=lambda word: "ok, swapped", seconds=lambda word: 0.5)
    assert project.run("run", capsys=capsys).code == 0  # every answer from the cache
    code, report = check(project, capsys)
    assert code == 0
    assert {s["kind"] for s in report["skipped"]} == {"latency", "swap", "cost"}


def test_nothing_to_compare_is_a_clear_error(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    done = project.run("history", "--check", capsys=capsys)
    assert done.code == 2 and "no history yet" in done.err and "Traceback" not in done.err
    runs(project, capsys, 1, random.Random(8))
    done = project.run("history", "--check", capsys=capsys)
    assert done.code == 2 and "only one run in the history" in done.err and "hint:" in done.err
    assert project.run("history", "--check", "--suite", "other", capsys=capsys).code == 2
    assert project.run("history", "--check", "--key", "w1", capsys=capsys).code == 2


def test_each_run_stores_its_request_hash(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    [first] = runs(project, capsys, 1, random.Random(9))
    record = json.loads(next((project.root / ".prompttest" / "runs").glob("*.json")).read_text())
    expected = {r["case"]: r["request"] for r in record["results"]}
    stored = dict(query(project, 'SELECT "case", request FROM keys WHERE run_id = ?', first))
    assert stored == expected and all(len(value) == 12 for value in stored.values())


def test_a_version_1_history_is_migrated_to_the_request_column(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    conn = sqlite3.connect(path)
    version_1 = [line for line in store._SCHEMA.splitlines() if "keys_trend" not in line]  # added in 2
    conn.executescript("\n".join(version_1).replace(", request TEXT", ""))  # added in 3
    conn.execute(f"PRAGMA application_id = {store.APP_ID}")
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.execute("INSERT INTO keys (run_id, key) VALUES ('old', 's/c@t')")
    conn.commit()
    conn.close()
    migrated = open_history(path)
    assert migrated is not None
    assert migrated.execute("SELECT value FROM meta").fetchone() == (str(SCHEMA_VERSION),)
    assert migrated.execute("SELECT key, request FROM keys").fetchall() == [("s/c@t", None)]
    assert migrated.execute("SELECT count(*) FROM sqlite_master WHERE name = 'keys_trend'").fetchone() == (1,)
    migrated.close()


def test_check_never_imports_litellm(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    from test_cli_commands import probed

    runs(project, capsys, 2, random.Random(11))
    for args in (["history", "--check"], ["history", "--check", "--format", "json"]):
        done, imported = probed(project.root, args)
        assert done.returncode in (0, 1), done.stderr
        assert imported is False


# --------------------------------------------------------------------------- the nightly recipe

NIGHTLY = ROOT / "docs" / "examples" / "github-actions-nightly.yml"


def test_the_nightly_recipe_in_docs_ci_is_the_example_file() -> None:
    doc = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    section = doc[doc.index("## Nightly drift check") :]
    # Four backticks: the workflow's own ``` (a code block in the issue it writes) stays inside.
    [shown] = re.findall(r"````yaml\n(.*?)````", section.split("\n## ")[0], flags=re.S)
    workflow = NIGHTLY.read_text(encoding="utf-8")
    assert workflow.endswith(shown) and shown.startswith("name: prompttest nightly")


def prompttest_commands(text: str) -> list[list[str]]:
    """Each `prompttest ...` command of a shell script, up to a redirection or `||`."""
    commands = []
    for line in text.splitlines():
        found = re.match(r"\s*(?:- )?(?:run: )?prompttest ([^#>|]*)", line)
        if found and not line.lstrip().startswith("#"):
            commands.append(shlex.split(found.group(1)))
    return commands


def test_every_flag_of_the_nightly_recipe_exists() -> None:
    commands = prompttest_commands(NIGHTLY.read_text(encoding="utf-8"))
    assert [args[0] for args in commands] == ["run", "history"]
    assert "--no-cache" in commands[0] and "--check" in commands[1]
    for name, *args in commands:
        command = cli.commands[name]  # type: ignore[attr-defined]
        command.make_context(name, list(args), resilient_parsing=False)  # an unknown flag raises


def test_the_nightly_recipe_keeps_the_history_and_acts_on_a_drift() -> None:
    workflow = NIGHTLY.read_text(encoding="utf-8")
    assert "cron:" in workflow and "issues: write" in workflow
    assert "uses: actions/cache/restore@v4" in workflow and "uses: actions/cache/save@v4" in workflow
    assert "restore-keys: prompttest-history-" in workflow
    assert re.search(
        r"key: prompttest-history-\$\{\{ github.run_id \}\}-\$\{\{ github.run_attempt \}\}", workflow
    )
    assert workflow.count("path: .prompttest/history.sqlite") == 2
    assert "gh issue comment" in workflow and "gh issue create" in workflow
    assert "steps.check.outputs.code == '1'" in workflow and "run: exit 1" in workflow


# --------------------------------------------------------------------------- the rank test


def brute_force_upper(differences: list[float]) -> float:
    """P(W+ >= observed) by trying every sign: what the counted distribution must equal."""

    nonzero = [d for d in differences if d != 0]
    ranks = _doubled_midranks([abs(d) for d in nonzero])
    observed = sum(r for r, d in zip(ranks, nonzero, strict=True) if d > 0)
    signs = list(itertools.product((0, 1), repeat=len(ranks)))
    return sum(sum(r * s for r, s in zip(ranks, pick, strict=True)) >= observed for pick in signs) / len(
        signs
    )


@pytest.mark.parametrize(
    "differences",
    [
        [3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.0, 6.0],
        [3.0, -1.0, 4.0, -1.5, 5.0, -9.0, 2.0, 6.0],
        [1.0, 1.0, -1.0, 2.0, 2.0, -2.0, 3.0, 0.0, 3.0],  # ties and a zero
        [-5.0, -4.0, -3.0, 1.0],
    ],
)
def test_signed_rank_counts_every_sign_pattern(differences: list[float]) -> None:
    assert signed_rank_greater(differences) == pytest.approx(brute_force_upper(differences))


def test_signed_rank_known_values() -> None:
    assert signed_rank_greater([1.0] * 10) == pytest.approx(1 / 1024)
    assert signed_rank_greater([-1.0, -2.0]) == 1.0
    assert signed_rank_greater([0.0, 0.0]) == 1.0
    # scipy.stats.wilcoxon(d, alternative="greater", method="exact") for d = 1..6 with 2 and 5 negated
    assert signed_rank_greater([1, -2, 3, 4, -5, 6]) == pytest.approx(0.28125)


def test_the_normal_approximation_is_close_to_the_count() -> None:
    rng = random.Random(10)
    differences = [rng.gauss(0.3, 1.0) for _ in range(80)]

    ranks = _doubled_midranks([abs(d) for d in differences])
    observed = sum(r for r, d in zip(ranks, differences, strict=True) if d > 0)
    assert _normal_upper(ranks, observed) == pytest.approx(_exact_upper(ranks, observed), abs=0.005)


def test_nearest_rank_is_a_value_a_call_took() -> None:
    assert nearest_rank([5.0, 1.0, 3.0], 95) == 5.0 and nearest_rank([], 95) is None
    assert nearest_rank([float(v) for v in range(1, 21)], 95) == 19.0

"""History benchmark: `prompttest history` over a large store, and the cost of adding a run.

Builds, in a throwaway project, a history of R runs × N keys (default 100 × 10,000) through
the store's real write path: each run is a `RunRecord` of N `Result`s handed to
`records.history.append_run`, as `prompttest run` does (only the git lookup and the run
itself are skipped). The keys are spread over 5 suites × 2 targets; each run moves the
latencies, prices and a few outputs, so every column of the history has something in it.

Then times, each as its own process (wall from spawn to exit, peak RSS from `wait4`):
`history` (the last 20 runs), `history --last R`, its `--format json`, `--key` for one key,
`--html FILE`, and `history --check` when this prompttest has it (`history --check --help`
exits 0). Last, adding one more N-key run in this process with `records.history.record_run`
(what a run pays at its end: open, one transaction, retention), and the same run through
`prompttest history import RUN_RECORD` as a process.

    python benchmarks/bench_history.py                  # 100 runs × 10,000 keys (~3 min to build)
    python benchmarks/bench_history.py --runs 20 --keys 2000   # quicker
    python benchmarks/bench_history.py --json-out FILE  # also write every measure

Goals (issue 22): each `history` step under 3 s and 150 MB; adding a run under 1 s.
The exit status is 0 when every step ran and met its goal.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_core import PROBE, child_env, measure  # noqa: E402

from prompttest.model import CheckResult, Result, Verdict  # noqa: E402
from prompttest.records.history import append_run, history_path, open_history, record_run  # noqa: E402
from prompttest.records.runs import RunRecord  # noqa: E402

SUITES = tuple(f"suite{i}" for i in range(5))
TARGETS = ("fast", "large")
GOAL_S, GOAL_MB, GOAL_APPEND_S = 3.0, 150.0, 1.0
PASS = CheckResult(label="contains: capital", passed=True, reason="found 'capital'", name="contains")
FAIL = CheckResult(label="contains: capital", passed=False, reason="expected 'capital'", name="contains")
LENGTH = CheckResult(label="max_length: 200", passed=True, reason="length <= 200", name="max_length")


@dataclass
class Row:
    step: str
    wall_s: float
    maxrss_mb: float | None  # None: measured in this process (its RSS is the builder's)
    code: int
    goal: str
    met: bool
    problem: str = ""


def make_run(index: int, keys: int, start: datetime) -> RunRecord:
    """Run `index` of the history: latencies drift up, prices double halfway, 1 % of outputs change."""
    rng = random.Random(index)
    price = 1e-6 if index < 50 else 2e-6
    results = []
    for k in range(keys):
        suite, target = SUITES[k % len(SUITES)], TARGETS[(k // len(SUITES)) % len(TARGETS)]
        version = index // 10 if k % 100 == index % 100 else 0
        passed = rng.random() < 0.9
        prompt, completion = 20 + k % 13, 8 + k % 7
        results.append(
            Result(
                suite=suite,
                case=f"c{k:06d}",
                target=target,
                model=f"openai/{target}",
                verdict=Verdict.UNCHANGED if passed else Verdict.FAILING,
                output=f"The capital of Country{k:06d} is City{k:06d} (v{version}).",
                checks=(PASS if passed else FAIL, LENGTH),
                latency_ms=round(rng.lognormvariate(5 + index / 200, 0.4), 1),
                prompt_tokens=prompt,
                completion_tokens=completion,
                cost_usd=(prompt + completion) * price,
            )
        )
    started = start + timedelta(hours=index)
    return RunRecord(
        id=started.strftime("%Y%m%dT%H%M%S-000000") + f"-{index}",
        started_at=started.isoformat(timespec="seconds"),
        wall_s=60.0,
        results=tuple(results),
        calls=keys,
    )


def build(project: Path, runs: int, keys: int, *, quiet: bool) -> tuple[float, datetime]:
    """The history, run by run through append_run; its build time and the first run's start."""
    (project / "pyproject.toml").write_text("[tool.prompttest]\nhistory_keep_days = 0\n", encoding="utf-8")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=runs + 1)
    conn = open_history(history_path(project / ".prompttest"))
    assert conn is not None
    began = time.perf_counter()
    try:
        for index in range(runs):
            append_run(conn, make_run(index, keys, start))
            if not quiet and (index + 1) % 10 == 0:
                print(f"  built {index + 1}/{runs} runs", file=sys.stderr, flush=True)
    finally:
        conn.close()
    return time.perf_counter() - began, start


def has_check(project: Path, env: dict[str, str]) -> bool:
    """Does this prompttest have `history --check`? (It is built apart; timed once it is there.)"""
    done = subprocess.run(
        [sys.executable, "-m", "prompttest", "history", "--check", "--help"],
        cwd=project,
        env=env,
        capture_output=True,
        timeout=60,
    )
    return done.returncode == 0


def history_steps(runs: int, work: Path, *, check: bool) -> list[tuple[str, list[str], int]]:
    """(name, CLI arguments, the exit code that means it worked) of every timed `history`."""
    steps = [
        ("history (last 20 runs)", ["history"], 0),
        (f"history --last {runs}", ["history", "--last", str(runs)], 0),
        (f"history --last {runs} --format json", ["history", "--last", str(runs), "--format", "json"], 0),
        (
            f"history --last {runs} --key (one key)",
            ["history", "--last", str(runs), "--key", "*/c000042@*"],
            0,
        ),
        (
            f"history --last {runs} --html FILE",
            ["history", "--last", str(runs), "--html", str(work / "history.html")],
            0,
        ),
    ]
    if check:  # exit 1 is a drift found, a finished check all the same
        steps.append(("history --check", ["history", "--check"], -1))
    return steps


def time_history(project: Path, env: dict[str, str], steps: list[tuple[str, list[str], int]]) -> list[Row]:
    rows = []
    for name, args, code in steps:
        m = measure([sys.executable, "-c", PROBE, *args], cwd=project, env=env, timeout_s=600)
        ok = m.code == code or (code == -1 and m.code in (0, 1))
        problem = "" if ok else "; ".join((m.stderr or m.stdout).strip().splitlines()[-3:])
        met = ok and m.wall_s < GOAL_S and m.maxrss_mb < GOAL_MB
        rows.append(
            Row(name, m.wall_s, m.maxrss_mb, m.code, f"< {GOAL_S:g} s, < {GOAL_MB:g} MB", met, problem)
        )
    return rows


def time_append(project: Path, env: dict[str, str], runs: int, keys: int, start: datetime) -> list[Row]:
    """One more N-key run, the way a run adds itself; then another through `history import`."""
    state = project / ".prompttest"
    record = make_run(runs, keys, start)
    began = time.perf_counter()
    warning = record_run(state, record, root=project, keep_days=365)
    took = time.perf_counter() - began
    goal = f"< {GOAL_APPEND_S:g} s"
    rows = [
        Row(f"add a {keys:,}-key run (record_run)", took, None, 0, goal, took < GOAL_APPEND_S, warning or "")
    ]
    again = make_run(runs + 1, keys, start)
    saved = project / "run-record.json"
    saved.write_text(again.to_json(), encoding="utf-8")
    m = measure(
        [sys.executable, "-c", PROBE, "history", "import", str(saved)], cwd=project, env=env, timeout_s=600
    )
    problem = "" if m.code == 0 and "added" in m.stdout else (m.stderr or m.stdout).strip()[-200:]
    rows.append(
        Row("history import (one run record)", m.wall_s, m.maxrss_mb, m.code, "–", not problem, problem)
    )
    return rows


def table(rows: list[Row]) -> str:
    lines = ["| step | wall s | max RSS MB | goal | met |", "|---|---|---|---|---|"]
    for r in rows:
        rss = "–" if r.maxrss_mb is None else f"{r.maxrss_mb:.0f}"
        met = "yes" if r.met else f"**no** {r.problem}".strip()
        lines.append(f"| {r.step} | {r.wall_s:.2f} | {rss} | {r.goal} | {met} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="runs in the history (default 100)")
    parser.add_argument("--keys", type=int, default=10_000, help="keys per run (default 10,000)")
    parser.add_argument("--json-out", metavar="PATH", help="also write every measure here")
    parser.add_argument("--keep", action="store_true", help="keep the generated project")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="prompttest-history-"))
    project = work / "project"
    project.mkdir()
    env = child_env(work / "pycache")
    try:
        built_s, start = build(project, args.runs, args.keys, quiet=args.quiet)
        size_mb = history_path(project / ".prompttest").stat().st_size / 1e6
        measure(
            [sys.executable, "-c", PROBE, "history"], cwd=project, env=env, timeout_s=600
        )  # compile, cache
        steps = history_steps(args.runs, work, check=has_check(project, env))
        rows = time_history(project, env, steps)
        rows += time_append(project, env, args.runs, args.keys, start)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    check_note = (
        "" if any(r.step == "history --check" for r in rows) else "; `history --check`: not in this build"
    )
    print(
        f"prompttest history benchmark: {args.runs} runs × {args.keys:,} keys, built through append_run in "
        f"{built_s:.0f} s ({size_mb:.0f} MB file), Python {sys.version.split()[0]}, {os.cpu_count()} CPU(s)"
        f"{check_note}\n"
    )
    print(table(rows))
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps([asdict(r) for r in rows], indent=1) + "\n", encoding="utf-8"
        )
    return 0 if all(r.met for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Statistical verdicts under noise: false alarms and power of the real `prompttest run`.

The fake OpenAI-compatible server of the test suite (tests/fake_server.py, started in this
process) answers "PASS" with probability p and "FAIL" otherwise; a suite checks
`contains: PASS` with `repeat: n`. Nothing of the statistics is re-implemented: every
verdict below is what `prompttest.session.run` decided.

One trial: a local run with `update` at p_before writes the snapshot, then a CI run
without the cache at p_after is judged against it. Two designs, because Holm adjusts
over every key of a run:

- per key: one key per run (the CI run is filtered to that key), so Holm adjusts over
  one test. Its `regressed` rate is the power (or, when p does not change, the false
  alarm rate) of a single key.
- per run: K keys, none of which changes. The share of runs with any `regressed` key is
  the false alarm rate a CI user feels: what Holm promises to keep under alpha.

Each snapshot serves several trials (one per p_after, and its block's whole-run trial):
trials of one row never share a snapshot, so each row's trials are independent.
The `exact` columns are the same test computed from binomial laws (stats.fisher_one_sided
over every outcome): the simulation should agree with them within its interval (about
one interval in 20 misses by chance alone).

    python benchmarks/bench_stats.py             # the tables in docs/statistics.md (~3 min, 2 cores)
    python benchmarks/bench_stats.py --quick     # smoke version (~30 s)
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from multiprocessing import get_context
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fake_server import FakeServer  # noqa: E402

from prompttest.config import load_project  # noqa: E402
from prompttest.model.stats import Alternative, fisher_one_sided, min_p_value, wilson_interval  # noqa: E402
from prompttest.session import RunOptions, run  # noqa: E402

P_BEFORE = 0.8
P_AFTER = (0.8, 0.7, 0.6, 0.5)
SAMPLES = (10, 20)
SUITE = "noisy"
SHOWN = ("regressed", "inconclusive", "unchanged", "improved", "failing")

# `pass: {at_least: 1}` holds unless every sample fails, so the verdict shows the statistical
# decision instead of a pass rule (`failing` would hide `inconclusive`: see decide_sampled).
SUITE_TEXT = """\
suite: {suite}
target: {{id: fake, model: openai/fake, api_base: "{url}"}}
prompt: "Answer PASS or FAIL for key {{{{ key }}}}"
repeat: {n}
pass: {{at_least: 1}}
expect: [{{contains: PASS}}]
cases:
{cases}"""


# --------------------------------------------------------------------------- worker side


class Noise:
    """A server reply: "PASS" with probability p, from one seeded stream per prompt.

    One stream per prompt (not one for the whole run) makes every key's pass count the
    same whatever order the concurrent requests arrive in.
    """

    def __init__(self, p: float, stream: str) -> None:
        self.p = p
        self.stream = stream
        self.rngs: dict[str, random.Random] = {}

    def __call__(self, request: dict[str, Any]) -> str:
        prompt = str(request["messages"][-1]["content"])
        rng = self.rngs.setdefault(prompt, random.Random(f"{self.stream}|{prompt}"))
        return "PASS" if rng.random() < self.p_of(prompt) else "FAIL"

    def p_of(self, prompt: str) -> float:
        return self.p


@dataclass(frozen=True)
class Block:
    """K keys sharing one snapshot: one whole-run trial and up to K per-key trials."""

    n: int
    index: int
    keys: int
    whole_run: bool  # run the K-key CI trial on this block
    per_key: int  # how many of its keys serve the per-key trials
    seed: int
    alpha: float


@dataclass
class Tally:
    """Verdict counts: per (n, p_after) for single keys, per n for whole runs."""

    per_key: dict[tuple[int, float], Counter[str]] = field(default_factory=dict)
    runs: Counter[int] = field(default_factory=Counter)
    runs_alarmed: Counter[int] = field(default_factory=Counter)
    keys_alarmed: Counter[int] = field(default_factory=Counter)
    calls: int = 0
    cpu_s: float = 0.0

    def add(self, other: Tally) -> None:
        for cell, counts in other.per_key.items():
            self.per_key.setdefault(cell, Counter()).update(counts)
        self.runs.update(other.runs)
        self.runs_alarmed.update(other.runs_alarmed)
        self.keys_alarmed.update(other.keys_alarmed)
        self.calls += other.calls
        self.cpu_s += other.cpu_s


class Lab:
    """One worker's fake server and throwaway project."""

    def __init__(self, root: Path) -> None:
        self.server = FakeServer(record=False).start()
        self.root = root
        (root / "suites").mkdir(parents=True)
        (root / "pyproject.toml").write_text("[tool.prompttest]\n")
        self.project = load_project(root, environ={})  # no PROMPTTEST_* from the caller

    def verdicts(
        self, p: float, stream: str, *, alpha: float, snapshot: bool, only: str | None = None
    ) -> dict[str, str]:
        """One run at pass probability p: the local snapshot run, or a CI run without cache."""
        self.server.reply = Noise(p, stream)
        options = (
            RunOptions(update=True, use_cache=False, alpha=alpha)
            if snapshot
            else RunOptions(ci=True, use_cache=False, alpha=alpha, filters=(only,) if only else ())
        )
        results = run(self.project, options).record.results
        return {result.case: result.verdict.value for result in results}

    def trial_block(self, block: Block) -> Tally:
        """The snapshot at P_BEFORE, then every CI run the block is asked for."""
        started_cpu, started_calls = time.process_time(), self.server.count
        cases = "".join(f"  - id: k{i}\n    vars: {{key: {i}}}\n" for i in range(block.keys))
        text = SUITE_TEXT.format(suite=SUITE, url=self.server.url, n=block.n, cases=cases)
        (self.root / "suites" / f"{SUITE}.yaml").write_text(text)
        shutil.rmtree(self.root / "snapshots", ignore_errors=True)
        stream = f"{block.seed}|n{block.n}|b{block.index}"
        self.verdicts(P_BEFORE, f"{stream}|before", alpha=block.alpha, snapshot=True)
        tally = Tally()
        if block.whole_run:
            seen = self.verdicts(P_BEFORE, f"{stream}|run", alpha=block.alpha, snapshot=False)
            assert len(seen) == block.keys, seen
            alarms = sum(v == "regressed" for v in seen.values())
            tally.runs[block.n] += 1
            tally.runs_alarmed[block.n] += alarms > 0
            tally.keys_alarmed[block.n] += alarms
        for i in range(block.per_key):
            for p_after in P_AFTER:
                key = f"{SUITE}/k{i}@fake"
                seen = self.verdicts(
                    p_after, f"{stream}|k{i}|{p_after}", alpha=block.alpha, snapshot=False, only=key
                )
                assert list(seen) == [f"k{i}"], seen  # one key: Holm adjusts over one test
                tally.per_key.setdefault((block.n, p_after), Counter())[seen[f"k{i}"]] += 1
        tally.calls = self.server.count - started_calls
        tally.cpu_s = time.process_time() - started_cpu
        return tally


_lab: Lab | None = None


def _not_a_leaked_session(record: logging.LogRecord) -> bool:
    # The runner never closes litellm's aiohttp clients, so each run leaves one open with its
    # event loop; thousands of runs in one process turn that into pages of "Unclosed client
    # session" as they are collected. Known, reported; not what this benchmark measures.
    return not record.getMessage().startswith(("Unclosed client session", "Unclosed connector"))


def _start_worker(root: str) -> None:
    global _lab
    logging.getLogger("asyncio").addFilter(_not_a_leaked_session)
    _lab = Lab(Path(root) / f"worker-{os.getpid()}")


def _run_block(block: Block) -> Tally:
    assert _lab is not None
    return _lab.trial_block(block)


# --------------------------------------------------------------------------- plan and run


def plan_blocks(*, trials: int, run_trials: int, keys: int, seed: int, alpha: float) -> list[Block]:
    """Enough K-key blocks per n for `trials` per-key and `run_trials` whole-run trials."""
    blocks = []
    for n in SAMPLES:
        count = max(run_trials, math.ceil(trials / keys))
        for index in range(count):
            per_key = min(keys, max(0, trials - index * keys))
            blocks.append(Block(n=n, index=index, keys=keys, whole_run=index < run_trials,
                                per_key=per_key, seed=seed, alpha=alpha))
    # Biggest first, so that the last blocks to finish are short ones.
    return sorted(blocks, key=lambda b: -(b.n * b.keys * (1 + b.whole_run) + 4 * b.n * b.per_key))


def simulate(blocks: Sequence[Block], *, jobs: int, quiet: bool) -> Tally:
    """Run the blocks on `jobs` processes, each with its own server and project."""
    total = Tally()
    with tempfile.TemporaryDirectory(prefix="bench-stats-") as root:
        with ProcessPoolExecutor(
            max_workers=jobs, mp_context=get_context("spawn"), initializer=_start_worker, initargs=(root,)
        ) as pool:
            for done, tally in enumerate(pool.map(_run_block, blocks), start=1):
                total.add(tally)
                if not quiet:
                    print(f"\r{done}/{len(blocks)} blocks", end="", file=sys.stderr, flush=True)
    if not quiet:
        print(file=sys.stderr)
    return total


# --------------------------------------------------------------------------- exact values


def _binomial(n: int, p: float) -> list[float]:
    return [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]


def _thresholds(n_before: int, n_after: int, level: float) -> Iterator[tuple[int, int]]:
    """(k_before, largest k_after still a significant drop, or -1), for every k_before.

    For a fixed k_before the drop p-value grows with k_after, and the threshold never
    shrinks as k_before grows, so one pass over k_after serves all k_before.
    """
    k_after = -1
    for k_before in range(n_before + 1):
        while (
            k_after + 1 <= n_after
            and (k_after + 1) * n_before < k_before * n_after
            and fisher_one_sided(k_before, n_before, k_after + 1, n_after, alternative="less") < level
        ):
            k_after += 1
        yield k_before, k_after


def exact_drop_rate(n: int, p_before: float, p_after: float, level: float) -> float:
    """P(one-sided Fisher p < level, drop seen) for n samples a side: the `regressed` rate."""
    before, after = _binomial(n, p_before), _binomial(n, p_after)
    below = [0.0]
    for mass in after:
        below.append(below[-1] + mass)  # below[t + 1] = P(k_after <= t)
    return sum(before[k] * below[t + 1] for k, t in _thresholds(n, n, level))


def exact_inconclusive_rate(n: int, p_before: float, p_after: float, alpha: float) -> float:
    """P(the counts differ, neither one-sided p < alpha, some sample passed): `inconclusive`."""
    before, after = _binomial(n, p_before), _binomial(n, p_after)
    total = 0.0
    for k_before in range(n + 1):
        for k_after in range(1, n + 1):
            if k_after == k_before:
                continue
            side: Alternative = "less" if k_after < k_before else "greater"
            if fisher_one_sided(k_before, n, k_after, n, alternative=side) >= alpha:
                total += before[k_before] * after[k_after]
    return total


def exact_run_alarm(n: int, keys: int, alpha: float) -> float:
    """P(any key regressed) with K unchanged keys: Holm flags some key iff min p < alpha/K."""
    per_key = exact_drop_rate(n, P_BEFORE, P_BEFORE, alpha / keys)
    return 1 - (1 - per_key) ** keys


def samples_for_power(p_after: float, *, alpha: float, power: float = 0.8, limit: int = 400) -> int | None:
    """The smallest n a side whose single-key power reaches `power` (None: not up to limit)."""
    for n in range(2, limit + 1):
        if exact_drop_rate(n, P_BEFORE, p_after, alpha) >= power:
            return n
    return None


# --------------------------------------------------------------------------- report


def rate(hits: int, trials: int) -> str:
    """"12.5 % [9.1, 16.9]": the rate and its 95 % Wilson interval."""
    if trials == 0:
        return "-"
    low, high = wilson_interval(hits, trials)
    return f"{100 * hits / trials:.1f} % [{100 * low:.1f}, {100 * high:.1f}]"


def pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def report(tally: Tally, *, keys: int, alpha: float) -> Iterator[str]:
    """The markdown tables."""
    yield "Single key per run (Holm over one test): false alarms (p unchanged) and power"
    yield ""
    yield ("| n | pass rate | trials | regressed [95 % CI] | exact | inconclusive [95 % CI] "
           "| exact | unchanged | improved | failing |")
    yield "| ---: | --- | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: |"
    for n in SAMPLES:
        for p_after in P_AFTER:
            counts = tally.per_key.get((n, p_after), Counter())
            trials = sum(counts.values())
            label = f"{P_BEFORE} → {p_after}" + (" (no change)" if p_after == P_BEFORE else "")
            others = " | ".join(pct(counts[v] / trials) if trials else "-" for v in SHOWN[2:])
            yield (f"| {n} | {label} | {trials} | {rate(counts['regressed'], trials)} "
                   f"| {pct(exact_drop_rate(n, P_BEFORE, p_after, alpha))} "
                   f"| {rate(counts['inconclusive'], trials)} "
                   f"| {pct(exact_inconclusive_rate(n, P_BEFORE, p_after, alpha))} | {others} |")
    yield ""
    yield f"Whole runs of {keys} keys, none changed ({P_BEFORE} → {P_BEFORE}): the false alarms CI sees"
    yield ""
    yield "| n | keys per run | runs | runs with any regressed [95 % CI] | exact | keys regressed [95 % CI] |"
    yield "| ---: | ---: | ---: | --- | ---: | --- |"
    for n in SAMPLES:
        runs = tally.runs[n]
        yield (f"| {n} | {keys} | {runs} | {rate(tally.runs_alarmed[n], runs)} "
               f"| {pct(exact_run_alarm(n, keys, alpha))} | {rate(tally.keys_alarmed[n], runs * keys)} |")
    yield ""
    yield f"Exact (no simulation): power of one key, and samples a side for 80 % power (alpha = {alpha:g})"
    yield ""
    yield (f"| drop | power n = 10 | power n = 20 | in a run of {keys} keys, n = 20 (at least) "
           "| n for 80 % |")
    yield "| --- | ---: | ---: | ---: | ---: |"
    for p_after in P_AFTER[1:]:
        needed = samples_for_power(p_after, alpha=alpha)
        yield (f"| {P_BEFORE} → {p_after} | {pct(exact_drop_rate(10, P_BEFORE, p_after, alpha))} "
               f"| {pct(exact_drop_rate(20, P_BEFORE, p_after, alpha))} "
               f"| {pct(exact_drop_rate(20, P_BEFORE, p_after, alpha / keys))} "
               f"| {needed if needed is not None else '> 400'} |")
    yield ""
    yield ("Smallest possible p-value (all pass before, all fail after), n a side: "
           + ", ".join(f"n = {n}: {min_p_value(n, n):.2g}" for n in (3, 4, 5, 10)))


# --------------------------------------------------------------------------- suites (issue 21)

SUITE_KEYS = 30


@dataclass(frozen=True)
class SuiteRow:
    """One row of the suite-level table: every key at p_after, or key k0 alone at p_key."""

    name: str
    p_after: float
    design: str  # the CI run's `repeat:` (the snapshot always takes repeat: 20)
    p_key: float | None = None


SUITE_ROWS = (
    SuiteRow("30 keys, 0.8 → 0.8 (nothing changed)", 0.8, "20"),
    SuiteRow("30 keys, 0.8 → 0.8 (nothing changed)", 0.8, "auto\nmax_repeat: 40"),
    SuiteRow("30 keys, 0.8 → 0.65 on every key", 0.65, "20"),
    SuiteRow("30 keys, 0.8 → 0.5 on every key", 0.5, "20"),
    SuiteRow("1 key 0.8 → 0.3 among 29 unchanged", 0.8, "20", p_key=0.3),
    SuiteRow("1 key 0.8 → 0.3 among 29 unchanged", 0.8, "auto\nmax_repeat: 80", p_key=0.3),
)


class KeyNoise(Noise):
    """Noise with one key (k0) at its own pass probability."""

    def __init__(self, p: float, stream: str, p_key: float | None) -> None:
        super().__init__(p, stream)
        self.p_key = p_key

    def p_of(self, prompt: str) -> float:
        return self.p_key if self.p_key is not None and prompt.endswith("key 0") else self.p


def _suite_trial(job: tuple[int, int, int, float]) -> tuple[int, bool, bool, bool, int]:
    """One real trial of row `index`: the snapshot (repeat: 20, p 0.8), then the CI run.

    Returns (row, exits 1, a suite regressed, k0 regressed, CI calls)."""
    from prompttest.session import exit_code  # the gate's own exit code

    assert _lab is not None
    index, trial, seed, alpha = job
    row = SUITE_ROWS[index]
    lab = _lab
    cases = "".join(f"  - id: k{i}\n    vars: {{key: {i}}}\n" for i in range(SUITE_KEYS))
    path = lab.root / "suites" / f"{SUITE}.yaml"
    path.write_text(SUITE_TEXT.format(suite=SUITE, url=lab.server.url, n=20, cases=cases))
    shutil.rmtree(lab.root / "snapshots", ignore_errors=True)
    stream = f"{seed}|suites|{index}|{trial}"
    lab.server.reply = Noise(P_BEFORE, f"{stream}|before")
    run(lab.project, RunOptions(update=True, use_cache=False, alpha=alpha))
    path.write_text(SUITE_TEXT.format(suite=SUITE, url=lab.server.url, n=row.design, cases=cases))
    lab.server.reply = KeyNoise(row.p_after, f"{stream}|after", row.p_key)
    started = lab.server.count
    record = run(lab.project, RunOptions(ci=True, use_cache=False, alpha=alpha)).record
    verdicts = {result.case: result.verdict.value for result in record.results}
    return (index, exit_code(record) == 1, bool(record.regressed_suites), verdicts.get("k0") == "regressed",
            lab.server.count - started)


def suite_report(trials: int, *, seed: int, alpha: float, jobs: int, quiet: bool) -> Iterator[str]:
    """The suite-level rows, each over `trials` real runs."""
    work = [(i, t, seed, alpha) for t in range(trials) for i in range(len(SUITE_ROWS))]
    counts = [[0, 0, 0, 0, 0] for _ in SUITE_ROWS]  # runs, exit 1, suite regressed, k0, calls
    with tempfile.TemporaryDirectory(prefix="bench-stats-") as root:
        with ProcessPoolExecutor(
            max_workers=jobs, mp_context=get_context("spawn"), initializer=_start_worker, initargs=(root,)
        ) as pool:
            for done, (index, exit1, suite, key, calls) in enumerate(pool.map(_suite_trial, work), start=1):
                cell = counts[index]
                for j, value in enumerate((1, exit1, suite, key, calls)):
                    cell[j] += int(value)
                if not quiet:
                    print(f"\r{done}/{len(work)} runs", end="", file=sys.stderr, flush=True)
    if not quiet:
        print(file=sys.stderr)
    yield "| scenario (30 keys, snapshot repeat: 20) | CI run | runs | exits 1 [95 % CI] " \
          "| a suite regressed | k0 regressed | calls per run |"
    yield "| --- | --- | ---: | --- | ---: | --- | ---: |"
    for row, (runs, exit1, suite, key, calls) in zip(SUITE_ROWS, counts, strict=True):
        design = "repeat: " + row.design.replace("\nmax_repeat: ", ", max_repeat: ")
        key_cell = rate(key, runs) if row.p_key is not None else "–"
        yield (f"| {row.name} | {design} | {runs} | {rate(exit1, runs)} | {pct(suite / runs)} "
               f"| {key_cell} | {calls / runs:.0f} |")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=250,
                        help="single-key trials per (n, p_after) row (default 250)")
    parser.add_argument("--run-trials", type=int, default=30,
                        help="whole-run trials per n (default 30)")
    parser.add_argument("--keys", type=int, default=10, help="keys per whole run (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the fake server's noise")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="worker processes (default: 2, or 1 on one core)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke version: 20 single-key trials, 5 runs of 5 keys")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--suites", type=int, default=0, metavar="RUNS",
                        help="instead: issue 21's suite-level rows, RUNS real runs each")
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.run_trials, args.keys = 20, 5, 5
    return args


def main(argv: list[str] | None = None) -> int:
    """Simulate, then print the tables, the trial counts and what it cost."""
    args = parse_args(argv)
    if args.suites:
        return main_suites(args, argv)
    blocks = plan_blocks(trials=args.trials, run_trials=args.run_trials, keys=args.keys,
                         seed=args.seed, alpha=args.alpha)
    started = time.perf_counter()
    tally = simulate(blocks, jobs=args.jobs, quiet=args.quiet)
    wall = time.perf_counter() - started
    command = " ".join(["python benchmarks/bench_stats.py", *(argv if argv is not None else sys.argv[1:])])
    print(f"`{command}` — {date.today().isoformat()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    print()
    print(f"p_before = {P_BEFORE}, alpha = {args.alpha:g}, seed = {args.seed}; "
          f"{args.trials} single-key trials per row, {args.run_trials} whole runs of {args.keys} keys per n")
    print()
    for line in report(tally, keys=args.keys, alpha=args.alpha):
        print(line)
    print()
    print(f"{tally.calls} calls to the fake server in {wall:.0f} s on {args.jobs} processes "
          f"({1000 * tally.cpu_s / max(1, tally.calls):.1f} ms CPU per call, runs included)")
    return 0


def main_suites(args: argparse.Namespace, argv: list[str] | None) -> int:
    started = time.perf_counter()
    command = " ".join(["python benchmarks/bench_stats.py", *(argv if argv is not None else sys.argv[1:])])
    lines = list(
        suite_report(args.suites, seed=args.seed, alpha=args.alpha, jobs=args.jobs, quiet=args.quiet)
    )
    print(f"`{command}` — {date.today().isoformat()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    print()
    print(f"Real runs of `prompttest run` against the test server: p_before = {P_BEFORE}, alpha = "
          f"{args.alpha:g}, seed = {args.seed}. Each run: a snapshot run (repeat: 20), then a CI run.")
    print()
    for line in lines:
        print(line)
    print()
    print(f"{time.perf_counter() - started:.0f} s on {args.jobs} processes.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

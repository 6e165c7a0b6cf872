"""Suite-level verdicts and `repeat: auto` under noise: issue 21's goals, thousands of runs.

No server: each simulated run draws every key's pass/fail samples as Bernoulli draws
(baseline k_before ~ Bin(n_before, p_before), then the run's samples one by one at p_after)
and hands the counts to the run's own code: `verdicts.sampling.SampleTests` (each suite's
exact pooled test, each key's Fisher or sequential p-value, one closed procedure over the
run), and for `repeat: auto` `sequential.next_step` at `session.results.stop_level`, the
rule a run's keys draw their next look by. A run "exits 1" when a suite or a key of it is
`regressed` at alpha. The same path through real runs of `prompttest run` against the test
server is `python benchmarks/bench_stats.py --suites` (fewer runs: each is 1,200 HTTP calls).

The designs of one comparison share their random numbers: the same baseline and the same
stream of samples per key, `auto` reading a prefix of it. That is what "the same
decisions" is measured on.

    python benchmarks/bench_stats_pooled.py            # the tables in docs/statistics.md (~4 min, 2 cores)
    python benchmarks/bench_stats_pooled.py --quick    # smoke version (a few seconds)
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prompttest.model import CheckResult, Result, Verdict  # noqa: E402
from prompttest.model.familywise import initial_key_level  # noqa: E402
from prompttest.model.pooled import (  # noqa: E402
    PooledChange,
    Stratum,
    detectable_drop,
    detectable_pooled_drop,
    drop_power,
    drop_threshold,
)
from prompttest.model.sequential import SequentialPlan, next_step  # noqa: E402
from prompttest.model.stats import fisher_one_sided, holm, wilson_interval  # noqa: E402
from prompttest.session.results import stop_level  # noqa: E402
from prompttest.verdicts.sampling import SampleTests  # noqa: E402
from prompttest.verdicts.table import Baseline  # noqa: E402

P_BEFORE = 0.8
N_BEFORE = 20


# --------------------------------------------------------------------------- one simulated run


@dataclass(frozen=True)
class Key:
    suite: str
    name: str
    p_after: float
    p_before: float = P_BEFORE


@dataclass
class Outcome:
    """What one design decided in one run."""

    exit1: bool
    pooled: bool  # some suite's pooled test rejected
    regressed: frozenset[str]  # keys flagged regressed
    calls: int
    holm_exit1: bool  # the current procedure: Holm over the keys' Fisher p-values (fixed designs)
    covered: bool | None  # the pooled difference's 95 % interval holds the true difference (one suite)


def draw_run(keys: Sequence[Key], rng: random.Random, longest: int) -> tuple[list[int], list[list[int]]]:
    """Baselines, and each key's cumulative pass counts after 1..longest samples."""
    before = [sum(rng.random() < k.p_before for _ in range(N_BEFORE)) for k in keys]
    paths = []
    for k in keys:
        running, path = 0, [0]
        for _ in range(longest):
            running += rng.random() < k.p_after
            path.append(running)
        paths.append(path)
    return before, paths


def _coverage(keys: Sequence[Key], changes: dict[str, PooledChange]) -> bool | None:
    if len(changes) != 1:
        return None
    truth = sum(k.p_after - k.p_before for k in keys) / len(keys)  # equal n: equal MH weights
    interval = next(iter(changes.values())).interval
    return interval is not None and interval[0] <= truth <= interval[1]


def _judge(keys: Sequence[Key], before: list[int], after: list[tuple[int, int, tuple[int, ...], int]],
           max_repeat: int | None, alpha: float) -> tuple[bool, bool, frozenset[str]]:
    """What a run decides, through the run's own code (`SampleTests`): each key one check, its
    (passes, samples, passes at each look, passes in the first look), against a snapshot of
    N_BEFORE samples. Returns (exits 1, a suite regressed, the keys regressed)."""
    keyed = []
    for i, (key, k_before, counts) in enumerate(zip(keys, before, after, strict=True)):
        k_after, n_after, looks, first = counts
        check = CheckResult(
            "c", True, "", name="contains", passed_count=k_after, samples=n_after, looks=looks
        )
        result = Result(
            suite=key.suite, case=key.name, target="t", model="m", verdict=Verdict.NEW, output="x",
            checks=(check,), outputs=("x",) * n_after, all_passed=k_after, max_repeat=max_repeat,
            first_look_passed=first if max_repeat else None,
        )
        baseline = Baseline("x", {"c": k_before == N_BEFORE}, counts={"c": (k_before, N_BEFORE)})
        keyed.append((i, result, baseline))
    tests = SampleTests(iter(keyed), alpha=alpha)
    flagged = frozenset(keys[i].name for i in range(len(keys)) if tests.of(i)[0].p_drop < alpha)
    suites = any(suite.fails for suite in tests.suites)
    return suites or bool(flagged), suites, flagged


def _coverage_of(keys: Sequence[Key], before: list[int], counts: list[int], n: list[int]) -> bool | None:
    """Does the one suite's pooled difference's 95 % interval hold the true difference?"""
    if len({k.suite for k in keys}) != 1:
        return None
    strata = [Stratum(kb, N_BEFORE, ka, na) for kb, ka, na in zip(before, counts, n, strict=True)]
    return _coverage(keys, {keys[0].suite: PooledChange.compare(strata)})


def fixed_run(keys: Sequence[Key], before: list[int], paths: list[list[int]], n: int, *,
              alpha: float, share: float) -> Outcome:
    """`repeat: n`: every key n samples, judged as a run judges them."""
    counts = [path[n] for path in paths]
    exit1, suites, flagged = _judge(keys, before, [(k, n, (), k) for k in counts], None, alpha)
    p_keys = [fisher_one_sided(kb, N_BEFORE, ka, n, alternative="less")
              for kb, ka in zip(before, counts, strict=True)]
    holm_exit1 = min(holm(p_keys)) < alpha
    covered = _coverage_of(keys, before, counts, [n] * len(keys))
    return Outcome(exit1, suites, flagged, n * len(keys), holm_exit1, covered)


def auto_run(keys: Sequence[Key], before: list[int], paths: list[list[int]], plan: SequentialPlan, *,
             alpha: float, share: float) -> Outcome:
    """`repeat: auto`: each key's first look, then more while `next_step` says so, at the level a
    run's keys stop at (`stop_level`), then judged as a run judges them."""
    level = stop_level(alpha, len(keys))
    after = []
    for k_before, path in zip(before, paths, strict=True):
        seen = [path[plan.looks[0]]]
        while next_step(k_before, N_BEFORE, seen, plan, level=level).decision == "continue":
            seen.append(path[plan.looks[len(seen)]])
        n_after = plan.looks[len(seen) - 1]
        after.append((seen[-1], n_after, tuple(seen), path[plan.looks[0]]))
    exit1, suites, flagged = _judge(keys, before, after, plan.worst_case, alpha)
    return Outcome(exit1, suites, flagged, sum(n for _, n, _, _ in after), False, None)


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Design:
    label: str
    fixed: int | None = None  # repeat: n
    max_repeat: int | None = None  # repeat: auto

    @property
    def longest(self) -> int:
        return self.fixed or self.max_repeat or 0

    def run(self, keys: Sequence[Key], before: list[int], paths: list[list[int]], *,
            alpha: float, share: float) -> Outcome:
        if self.fixed is not None:
            return fixed_run(keys, before, paths, self.fixed, alpha=alpha, share=share)
        assert self.max_repeat is not None
        return auto_run(keys, before, paths, SequentialPlan.auto(self.max_repeat), alpha=alpha, share=share)


@dataclass(frozen=True)
class Scenario:
    name: str
    keys: tuple[Key, ...]
    designs: tuple[Design, ...]
    target: str | None = None  # the one changed key whose detection is the point


def uniform(p_after: float, keys: int = 30, suites: int = 1) -> tuple[Key, ...]:
    per = keys // suites
    return tuple(Key(f"s{i // per}", f"k{i}", p_after) for i in range(keys))


def one_drop() -> tuple[Key, ...]:
    return (Key("s0", "k0", 0.3), *(Key("s0", f"k{i}", P_BEFORE) for i in range(1, 30)))


MIX = ((0.8, 18), (0.65, 4), (0.5, 4), (0.3, 4))


def mix() -> tuple[Key, ...]:
    out, i = [], 0
    for p_after, count in MIX:
        for _ in range(count):
            out.append(Key("s0", f"k{i}", p_after))
            i += 1
    return tuple(out)


def scenarios(alpha: float, share: float) -> list[Scenario]:
    f20, f40 = Design("repeat: 20", fixed=20), Design("repeat: 40", fixed=40)
    a40, a80 = Design("auto, max 40", max_repeat=40), Design("auto, max 80", max_repeat=80)
    suite_drop = detectable_pooled_drop([(N_BEFORE, 20)] * 30, P_BEFORE, alpha * share) or 0.0
    return [
        Scenario("30 keys, 0.8 → 0.8 (nothing changed)", uniform(0.8), (f20, a40, a80)),
        Scenario("3 suites of 10 keys, nothing changed", uniform(0.8, suites=3), (f20, a80)),
        Scenario("30 keys, 0.8 → 0.65 on every key", uniform(0.65), (f20,)),
        Scenario("30 keys, 0.8 → 0.5 on every key", uniform(0.5), (f20,)),
        Scenario(f"30 keys, every key drops by the predicted suite-detectable {suite_drop:.3f}",
                 uniform(round(P_BEFORE - suite_drop, 4)), (f20,)),
        Scenario("1 key 0.8 → 0.3 among 29 unchanged", one_drop(), (f20, f40, a80), target="k0"),
        Scenario("mix: " + ", ".join(f"{c} keys at {p}" for p, c in MIX), mix(), (f40, a40, a80)),
    ]


@dataclass
class Tally:
    runs: int = 0
    exit1: int = 0
    pooled: int = 0
    holm_exit1: int = 0
    target: int = 0
    false_keys: int = 0  # runs with an unchanged key flagged
    covered: int = 0
    coverage_runs: int = 0
    calls: int = 0
    per_class: dict[float, list[int]] = field(default_factory=dict)  # p_after -> [flagged, keys]
    agree: int = 0  # keys whose decision equals the first design's on the same draws
    agree_keys: int = 0


def simulate(job: tuple[int, int, int, float, float]) -> list[Tally]:
    """Runs [start, stop) of scenario `index`: one Tally per design."""
    index, start, stop, alpha, share = job
    scenario = scenarios(alpha, share)[index]
    tallies = [Tally() for _ in scenario.designs]
    longest = max(d.longest for d in scenario.designs)
    for r in range(start, stop):
        rng = random.Random(f"{SEED}|{index}|{r}")
        before, paths = draw_run(scenario.keys, rng, longest)
        reference: frozenset[str] | None = None
        for design, tally in zip(scenario.designs, tallies, strict=True):
            out = design.run(scenario.keys, before, paths, alpha=alpha, share=share)
            tally.runs += 1
            tally.exit1 += out.exit1
            tally.pooled += out.pooled
            tally.holm_exit1 += out.holm_exit1
            tally.calls += out.calls
            tally.target += scenario.target in out.regressed if scenario.target else 0
            tally.false_keys += any(
                k.p_after >= k.p_before and k.name in out.regressed for k in scenario.keys
            )
            if out.covered is not None:
                tally.coverage_runs += 1
                tally.covered += out.covered
            for k in scenario.keys:
                cell = tally.per_class.setdefault(k.p_after, [0, 0])
                cell[0] += k.name in out.regressed
                cell[1] += 1
            if reference is None:
                reference = out.regressed
            tally.agree += sum((k.name in out.regressed) == (k.name in reference) for k in scenario.keys)
            tally.agree_keys += len(scenario.keys)
    return tallies


SEED = 1


def merge(parts: list[list[Tally]]) -> list[Tally]:
    total = [Tally() for _ in parts[0]]
    for part in parts:
        for into, t in zip(total, part, strict=True):
            for name in ("runs", "exit1", "pooled", "holm_exit1", "target", "false_keys", "covered",
                         "coverage_runs", "calls", "agree", "agree_keys"):
                setattr(into, name, getattr(into, name) + getattr(t, name))
            for p, (hit, n) in t.per_class.items():
                cell = into.per_class.setdefault(p, [0, 0])
                cell[0] += hit
                cell[1] += n
    return total


# --------------------------------------------------------------------------- report


def rate(hits: int, trials: int) -> str:
    if trials == 0:
        return "–"
    low, high = wilson_interval(hits, trials)
    return f"{100 * hits / trials:.1f} % [{100 * low:.1f}, {100 * high:.1f}]"


def short(hits: int, trials: int) -> str:
    return f"{100 * hits / trials:.1f} %" if trials else "–"


def report(results: list[tuple[Scenario, list[Tally]]], *, alpha: float, share: float) -> Iterator[str]:
    yield "**Runs: the share that exits 1 (any suite or key regressed), and what found it**"
    yield ""
    yield ("| scenario | design | runs | exits 1 [95 % CI] | a suite regressed "
           "| the dropped key flagged | an unchanged key flagged | calls per run "
           "| exits 1 today (Holm over keys) | 95 % interval covers |")
    yield "| --- | --- | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: |"
    for scenario, tallies in results:
        for design, t in zip(scenario.designs, tallies, strict=True):
            target = rate(t.target, t.runs) if scenario.target else "–"
            today = short(t.holm_exit1, t.runs) if design.fixed else "–"
            covers = short(t.covered, t.coverage_runs) if t.coverage_runs else "–"
            yield (f"| {scenario.name} | {design.label} | {t.runs} | {rate(t.exit1, t.runs)} "
                   f"| {short(t.pooled, t.runs)} | {target} | {short(t.false_keys, t.runs)} "
                   f"| {t.calls / max(1, t.runs):.0f} | {today} | {covers} |")
    scenario, tallies = results[-1]
    yield ""
    yield f"**The mix: keys flagged `regressed` by class, and agreement with {scenario.designs[0].label}**"
    yield ""
    classes = sorted(tallies[0].per_class, reverse=True)
    yield ("| design | " + " | ".join(f"{P_BEFORE} → {p}" for p in classes)
           + " | same decision as " + scenario.designs[0].label + " | calls per run | calls saved |")
    yield "| --- | " + " | ".join("---:" for _ in classes) + " | ---: | ---: | ---: |"
    base_calls = tallies[0].calls / max(1, tallies[0].runs)
    for design, t in zip(scenario.designs, tallies, strict=True):
        cells = " | ".join(short(*t.per_class[p]) for p in classes)
        calls = t.calls / max(1, t.runs)
        yield (f"| {design.label} | {cells} | {short(t.agree, t.agree_keys)} | {calls:.0f} "
               f"| {100 * (1 - calls / base_calls):.0f} % |")
    yield ""
    yield from detectable(alpha=alpha, share=share)


def detectable(*, alpha: float, share: float) -> Iterator[str]:
    key_level = initial_key_level(alpha, 1, 30, share)
    yield (f"**Smallest drop from {P_BEFORE} seen with 80 % power** (one suite of 30 keys, snapshot "
           f"n = {N_BEFORE}; a key at its starting level alpha·{1 - share:g}/30 = {key_level:.5f}, "
           f"the suite at alpha·{share:g})")
    yield ""
    yield ("| samples after | one key (exact) | one key alone, at alpha (exact) "
           "| the suite, every key alike (approx.) |")
    yield "| ---: | ---: | ---: | ---: |"
    for n in (10, 20, 40, 80):
        one = detectable_drop(N_BEFORE, n, P_BEFORE, key_level)
        alone = detectable_drop(N_BEFORE, n, P_BEFORE, alpha)
        suite = detectable_pooled_drop([(N_BEFORE, n)] * 30, P_BEFORE, alpha * share)
        cells = ["none" if d is None else f"{d:.3f}" for d in (one, alone, suite)]
        yield f"| {n} | " + " | ".join(cells) + " |"
    yield ""
    today = drop_power(N_BEFORE, 20, P_BEFORE, 0.3, alpha / 30)
    looks = power_of_looks(SequentialPlan.auto(80), 0.3, key_level)
    yield (f"Exact power of one key at repeat: 20, starting level: 0.8 → 0.3 "
           f"{100 * drop_power(N_BEFORE, 20, P_BEFORE, 0.3, key_level):.1f} % "
           f"(Holm over 30 keys today, alpha/30: {100 * today:.1f} %); "
           f"at repeat: 80, {100 * drop_power(N_BEFORE, 80, P_BEFORE, 0.3, key_level):.1f} %; "
           f"auto, max 80, with no futility stop (the union bound over looks): {100 * looks:.1f} %.")


def power_of_looks(plan: SequentialPlan, p_after: float, level: float) -> float:
    """Exact chance that some look's Fisher p is below its share of `level` (no futility stop)."""
    total = 0.0
    for k_before in range(N_BEFORE + 1):
        mass = math.comb(N_BEFORE, k_before) * P_BEFORE**k_before * (1 - P_BEFORE) ** (N_BEFORE - k_before)
        states, drawn = {0: mass}, 0
        for look, share in zip(plan.looks, plan.spend, strict=True):
            batch = [math.comb(look - drawn, j) * p_after**j * (1 - p_after) ** (look - drawn - j)
                     for j in range(look - drawn + 1)]
            moved: dict[int, float] = {}
            for k, w in states.items():
                for j, b in enumerate(batch):
                    moved[k + j] = moved.get(k + j, 0.0) + w * b
            edge = drop_threshold(k_before, N_BEFORE, look, share * level)
            total += sum(w for k, w in moved.items() if k <= edge)
            states, drawn = {k: w for k, w in moved.items() if k > edge}, look
    return total


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4000, help="simulated runs per scenario (default 4000)")
    parser.add_argument("--alpha", type=float, default=0.05, help="the run's alpha (default 0.05)")
    parser.add_argument("--share", type=float, default=0.5,
                        help="alpha share of the pooled tests (default 0.5)")
    parser.add_argument("--seed", type=int, default=1,
                        help="seed of the draws (default 1; the counts depend on it only, not on --jobs)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="processes (default 2)")
    parser.add_argument("--quick", action="store_true", help="smoke version: 40 runs per scenario")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = 40
    return args


def _init(seed: int) -> None:
    global SEED
    SEED = seed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _init(args.seed)
    names = scenarios(args.alpha, args.share)
    chunk = max(10, math.ceil(args.runs / (4 * max(1, args.jobs))))
    jobs = [(i, s, min(args.runs, s + chunk), args.alpha, args.share)
            for i in range(len(names)) for s in range(0, args.runs, chunk)]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs, initializer=_init, initargs=(args.seed,)) as pool:
        parts = list(pool.map(simulate, jobs))
    wall = time.perf_counter() - started
    results = []
    for i, scenario in enumerate(names):
        results.append((scenario, merge([p for job, p in zip(jobs, parts, strict=True) if job[0] == i])))
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python benchmarks/bench_stats_pooled.py", *given])
    print(f"`{command}` — {date.today().isoformat()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    print()
    print("Simulated runs through the run's verdict code (Bernoulli draws, no server). "
          f"p_before = {P_BEFORE}, snapshot n = "
          f"{N_BEFORE} per key, alpha = {args.alpha:g}, pooled share = {args.share:g}, seed = {args.seed}, "
          f"{args.runs} runs per scenario.")
    print()
    for line in report(results, alpha=args.alpha, share=args.share):
        print(line)
    print()
    print(f"{wall:.0f} s on {args.jobs} processes.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

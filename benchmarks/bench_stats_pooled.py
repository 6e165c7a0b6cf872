"""Suite-level verdicts and `repeat: auto` under noise: issue 21's goals, at the function level.

No server, no runs: each simulated run draws every key's pass/fail samples as Bernoulli
draws (baseline k_before ~ Bin(n_before, p_before), then the run's samples one by one at
p_after) and hands the counts to the statistical core as a run will: `pooled.PooledChange`
per suite, Fisher or `sequential.next_step` per key, `familywise.RunTests` over the run.
A run "exits 1" when any suite or key of it is `regressed` at alpha. The real-run path
(suites, the runner, the fake server) is what benchmarks/bench_stats.py measures; the
integration of this core into runs is not done yet.

`repeat: auto` is simulated as the runner is meant to do it: every key takes the plan's
first look, the pooled tests are computed on those first looks (a fixed-size sample, so the
exact test stays exact), then in rounds each undecided key draws up to its next look,
with `RunTests.levels` giving the level each key is sure to be tested at. The auto and fixed
designs of one comparison share their random numbers: the same baseline and the same stream
of samples per key, auto reading a prefix of it. That is what "the same decisions" is
measured on.

    python benchmarks/bench_stats_pooled.py            # the tables in docs/statistics.md (~4 min, 1 core)
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

from prompttest.model.familywise import RunTests, SuiteTests, initial_key_level  # noqa: E402
from prompttest.model.pooled import (  # noqa: E402
    PooledChange,
    Stratum,
    detectable_drop,
    detectable_pooled_drop,
    drop_power,
    drop_threshold,
)
from prompttest.model.sequential import SequentialPlan, next_step, sequential_p  # noqa: E402
from prompttest.model.stats import fisher_one_sided, holm, wilson_interval  # noqa: E402

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


def _pooled(
    keys: Sequence[Key], before: list[int], counts: list[int], n: list[int]
) -> dict[str, PooledChange]:
    by_suite: dict[str, list[Stratum]] = {}
    for key, kb, ka, na in zip(keys, before, counts, n, strict=True):
        by_suite.setdefault(key.suite, []).append(Stratum(kb, N_BEFORE, ka, na))
    return {suite: PooledChange.compare(strata) for suite, strata in by_suite.items()}


def _coverage(keys: Sequence[Key], changes: dict[str, PooledChange]) -> bool | None:
    if len(changes) != 1:
        return None
    truth = sum(k.p_after - k.p_before for k in keys) / len(keys)  # equal n: equal MH weights
    interval = next(iter(changes.values())).interval
    return interval is not None and interval[0] <= truth <= interval[1]


def _decide(keys: Sequence[Key], changes: dict[str, PooledChange], p_keys: dict[str, float],
            alpha: float, share: float) -> tuple[bool, bool, frozenset[str]]:
    suites = {
        suite: SuiteTests(change.p_drop, {k.name: p_keys[k.name] for k in keys if k.suite == suite})
        for suite, change in changes.items()
    }
    tests = RunTests.adjust(suites, pooled_share=share)
    flagged = frozenset(name for name, p in tests.keys.items() if p < alpha)
    pooled = any(p < alpha for p in tests.pooled.values())
    return pooled or bool(flagged), pooled, flagged


def fixed_run(keys: Sequence[Key], before: list[int], paths: list[list[int]], n: int, *,
              alpha: float, share: float) -> Outcome:
    """`repeat: n`: every key n samples, Fisher per key, pooled per suite, one procedure."""
    counts = [path[n] for path in paths]
    changes = _pooled(keys, before, counts, [n] * len(keys))
    p_keys = {k.name: fisher_one_sided(kb, N_BEFORE, ka, n, alternative="less")
              for k, kb, ka in zip(keys, before, counts, strict=True)}
    exit1, pooled, flagged = _decide(keys, changes, p_keys, alpha, share)
    holm_exit1 = min(holm(list(p_keys.values()))) < alpha
    return Outcome(exit1, pooled, flagged, n * len(keys), holm_exit1, _coverage(keys, changes))


def auto_run(keys: Sequence[Key], before: list[int], paths: list[list[int]], plan: SequentialPlan, *,
             alpha: float, share: float) -> Outcome:
    """`repeat: auto`: first looks, pooled tests on them, then rounds of looks for undecided keys."""
    first = plan.looks[0]
    changes = _pooled(keys, before, [path[first] for path in paths], [first] * len(keys))
    seen: dict[str, list[int]] = {k.name: [path[first]] for k, path in zip(keys, paths, strict=True)}
    open_keys = {k.name for k in keys}
    index = {k.name: i for i, k in enumerate(keys)}
    while open_keys:
        p_keys = {k.name: sequential_p(before[index[k.name]], N_BEFORE, seen[k.name], plan) for k in keys}
        suites = {
            suite: SuiteTests(change.p_drop, {k.name: p_keys[k.name] for k in keys if k.suite == suite})
            for suite, change in changes.items()
        }
        levels = RunTests.adjust(suites, pooled_share=share).levels(alpha)
        for name in sorted(open_keys):
            i = index[name]
            level = levels.get(name)
            if level is None:  # already rejected at alpha: decided
                open_keys.discard(name)
                continue
            step = next_step(before[i], N_BEFORE, seen[name], plan, level=level)
            if step.decision == "continue":
                seen[name].append(paths[i][plan.looks[len(seen[name])]])
            else:
                open_keys.discard(name)
    p_keys = {k.name: sequential_p(before[index[k.name]], N_BEFORE, seen[k.name], plan) for k in keys}
    exit1, pooled, flagged = _decide(keys, changes, p_keys, alpha, share)
    calls = sum(plan.looks[len(looks) - 1] for looks in seen.values())
    return Outcome(exit1, pooled, flagged, calls, False, None)


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
    yield ("| scenario | design | runs | exits 1 [95 % CI] | pooled test rejects "
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
    print(f"Function-level simulation (Bernoulli draws, no server). p_before = {P_BEFORE}, snapshot n = "
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

"""A run's repeated keys judged together: each suite's pooled pass rate and each key's checks,
under one false-alarm budget.

A prompt edit that makes every case a little worse moves no single key far enough for its
own test, but the suite's pass rate, its keys' samples taken together, does move. So each
suite on each target (a *group*) gets a pooled test, exact and stratified by key
(`model.pooled`), next to its keys' Fisher tests; `model.familywise` adjusts them all in one
closed procedure, so the chance of any false `regressed`, suite or key, stays under alpha.

A key's stratum is its samples where *every* check passed, now and in the snapshot: one
count per key, so the strata stay independent (several checks of one key grade the same
samples). A key whose checks changed since the snapshot (added, removed, or graded by
another judge) is left out of its suite's pooled test; its own checks are still tested.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..model.familywise import DEFAULT_POOLED_SHARE, RunTests, SuiteTests, initial_key_level
from ..model.pooled import PooledChange, Stratum, detectable_drop, detectable_pooled_drop

POWER = 0.8  # "the smallest drop it could see" is the one it sees in 80 % of runs
REGRESSED, IMPROVED, NO_CHANGE = "regressed", "improved", "no change"


@dataclass(frozen=True)
class SuiteVerdict:
    """A suite's pass rate on one target, pooled over its repeated keys, against the snapshot."""

    suite: str
    target: str
    verdict: str  # regressed, improved or no change
    keys: int  # keys pooled (each a stratum)
    rate_before: float | None
    rate_after: float | None
    interval: tuple[float, float] | None  # of rate_after - rate_before, 95 %
    p_value: float  # adjusted over the run, in the direction of the verdict (of a drop when none)
    keys_regressed: int = 0  # keys with a check of their own regressed
    keys_improved: int = 0
    # The smallest drop of the pass rate this run would have flagged with 80 % power: spread
    # over every key (the pooled test), and in one key alone (its own test).
    detectable_drop: float | None = None
    detectable_key_drop: float | None = None

    @property
    def fails(self) -> bool:
        return self.verdict == REGRESSED

    @property
    def difference(self) -> float | None:
        if self.rate_before is None or self.rate_after is None:
            return None
        return self.rate_after - self.rate_before

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "target": self.target,
            "verdict": self.verdict,
            "keys": self.keys,
            "rate_before": _rounded(self.rate_before),
            "rate_after": _rounded(self.rate_after),
            "interval": None if self.interval is None else [round(x, 4) for x in self.interval],
            "p_value": round(self.p_value, 6),
            "keys_regressed": self.keys_regressed,
            "keys_improved": self.keys_improved,
            "detectable_drop": _rounded(self.detectable_drop),
            "detectable_key_drop": _rounded(self.detectable_key_drop),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SuiteVerdict:
        interval = data.get("interval")
        return cls(
            suite=str(data["suite"]),
            target=str(data["target"]),
            verdict=str(data["verdict"]),
            keys=int(data.get("keys") or 0),
            rate_before=data.get("rate_before"),
            rate_after=data.get("rate_after"),
            interval=(float(interval[0]), float(interval[1])) if interval else None,
            p_value=float(data.get("p_value", 1.0)),
            keys_regressed=int(data.get("keys_regressed") or 0),
            keys_improved=int(data.get("keys_improved") or 0),
            detectable_drop=data.get("detectable_drop"),
            detectable_key_drop=data.get("detectable_key_drop"),
        )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


Group = tuple[str, str]  # (suite, target)


@dataclass
class GroupCounts:
    """What a group brings to the run's tests: its keys' strata and its (key, check) tests."""

    strata: list[Stratum]
    tests: list[int]  # indices into the run's arrays of (key, check) tests
    keys: list[int]  # the key number of each test, in the same order
    # Each pooled key's (n_before, the most samples it could take, the share of its level its
    # last look is tested at): what one key alone could have seen (`repeat: auto` goes on).
    reach: list[tuple[int, int, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Adjusted:
    """The run's tests after the procedure: each (key, check) test's adjusted p-values, in the
    order they were given, and a verdict for each group that had a pooled test."""

    p_drop: list[float]
    p_rise: list[float]
    suites: tuple[SuiteVerdict, ...]


def adjust_run(
    groups: Mapping[Group, GroupCounts],
    p_drop: Sequence[float],
    p_rise: Sequence[float],
    *,
    alpha: float,
    pooled_share: float = DEFAULT_POOLED_SHARE,
) -> Adjusted:
    """Adjust every pooled and (key, check) test of the run together, drops and rises apart.

    A group is pooled when at least two of its keys are strata (with one, its pooled test
    would repeat that key's). With no pooled group the keys' tests are adjusted with Holm,
    exactly as a run without suites' tests would be.
    """
    pooled = {
        group: PooledChange.compare(counts.strata)
        for group, counts in groups.items()
        if len(counts.strata) >= 2
    }

    def family(p_values: Sequence[float], pooled_p: Mapping[Group, float]) -> RunTests:
        return RunTests.adjust(
            {
                _name(group): SuiteTests(
                    pooled=pooled_p.get(group), keys={str(t): p_values[t] for t in counts.tests}
                )
                for group, counts in groups.items()
            },
            pooled_share=pooled_share,
        )

    drops = family(p_drop, {g: change.p_drop for g, change in pooled.items()})
    rises = family(p_rise, {g: change.p_rise for g, change in pooled.items()})
    adjusted_drop = [drops.keys[str(t)] for t in range(len(p_drop))]
    adjusted_rise = [rises.keys[str(t)] for t in range(len(p_rise))]
    tests = len(p_drop)
    verdicts = tuple(
        _suite_verdict(
            group,
            change,
            groups[group],
            drops,
            rises,
            adjusted_drop,
            adjusted_rise,
            alpha=alpha,
            pooled_level=alpha * pooled_share / len(pooled),
            key_level=initial_key_level(alpha, len(pooled), max(tests, 1), pooled_share),
        )
        for group, change in pooled.items()
    )
    return Adjusted(adjusted_drop, adjusted_rise, verdicts)


def _name(group: Group) -> str:
    return f"{group[0]}\x00{group[1]}"  # no suite or target name holds a NUL


def _suite_verdict(
    group: Group,
    change: PooledChange,
    counts: GroupCounts,
    drops: RunTests,
    rises: RunTests,
    adjusted_drop: Sequence[float],
    adjusted_rise: Sequence[float],
    *,
    alpha: float,
    pooled_level: float,
    key_level: float,
) -> SuiteVerdict:
    regressed = len({k for t, k in zip(counts.tests, counts.keys, strict=True) if adjusted_drop[t] < alpha})
    improved = len({k for t, k in zip(counts.tests, counts.keys, strict=True) if adjusted_rise[t] < alpha})
    name = _name(group)
    p_drop, p_rise = drops.pooled[name], rises.pooled[name]
    if drops.suite_rejected(name, alpha):
        verdict, p = REGRESSED, min([p_drop, *(adjusted_drop[t] for t in counts.tests)])
    elif rises.suite_rejected(name, alpha):
        verdict, p = IMPROVED, min([p_rise, *(adjusted_rise[t] for t in counts.tests)])
    else:
        verdict, p = NO_CHANGE, p_drop
    sizes = [(s.n_before, s.n_after) for s in counts.strata]
    return SuiteVerdict(
        suite=group[0],
        target=group[1],
        verdict=verdict,
        keys=change.strata,
        rate_before=change.rate_before,
        rate_after=change.rate_after,
        interval=change.interval,
        p_value=p,
        keys_regressed=regressed,
        keys_improved=improved,
        detectable_drop=_seen(
            lambda: detectable_pooled_drop(sizes, change.rate_before, pooled_level), change.rate_before
        ),
        detectable_key_drop=_seen(
            lambda: _typical_key_drop(counts.reach, change.rate_before, key_level),
            change.rate_before,
        ),
    )


def _seen(compute: Any, rate_before: float | None) -> float | None:
    """What the run could see: nothing to drop from a rate of 0 (or no rate at all)."""
    if not rate_before:
        return None
    return compute()


def _typical_key_drop(
    reach: Sequence[tuple[int, int, float]], rate_before: float, level: float
) -> float | None:
    """The drop one key alone is flagged for, at the group's middle sample sizes and the level
    a key is first tested at (the least it will be tested at), its last look's share of it."""
    if not reach:
        return None
    middle = len(reach) // 2
    n_before = sorted(r[0] for r in reach)[middle]
    n_after = sorted(r[1] for r in reach)[middle]
    share = sorted(r[2] for r in reach)[middle]
    return detectable_drop(n_before, n_after, rate_before, level * share, POWER)

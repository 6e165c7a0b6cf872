"""Score drift: a judged check's score dropping while the check still passes its threshold.

Each key's scored checks are paired with their snapshot's scores as the run decides keys.
At the end, one test per key with repeats (Welch) and one per suite, target and kind of
check over its keys (paired), adjusted together with Holm so that a run of many keys does
not report drops that are noise. A drop is `score dropped`: reported, and failing the run
only with --strict (a score above its threshold is still a pass).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..model import CheckResult
from ..model.scoretests import ScoreSummary, paired_drop_p, welch_drop_p
from ..model.stats import holm

SCORE_DROPPED = "score dropped"


@dataclass(frozen=True)
class ScoreDrop:
    """A suite's scores of one kind of check on one target dropped, over its keys."""

    suite: str
    target: str
    check: str  # the kind of check: llm_judge, similar
    keys: int
    mean_before: float
    mean_after: float
    p_value: float  # Holm-adjusted over the run's score tests

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "target": self.target,
            "check": self.check,
            "keys": self.keys,
            "mean_before": round(self.mean_before, 4),
            "mean_after": round(self.mean_after, 4),
            "p_value": round(self.p_value, 6),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScoreDrop:
        return cls(
            suite=str(data["suite"]),
            target=str(data["target"]),
            check=str(data["check"]),
            keys=int(data["keys"]),
            mean_before=float(data["mean_before"]),
            mean_after=float(data["mean_after"]),
            p_value=float(data["p_value"]),
        )


def score_summary(check: CheckResult) -> ScoreSummary | None:
    """The check's scores in this run (one sample: its score, spread 0)."""
    if check.score is None:
        return None
    return ScoreSummary(check.score, check.score_sd or 0.0, check.samples or 1)


@dataclass
class ScoreTests:
    """The run's scored checks against their snapshots, gathered key by key (a few numbers each)."""

    pairs: dict[tuple[str, str, str], list[tuple[float, float]]] = field(default_factory=dict)
    keyed: list[tuple[int, str, float]] = field(default_factory=list)  # (key number, label, Welch p)

    def add(
        self, position: int, suite: str, target: str, checks: Any, before: Mapping[str, ScoreSummary]
    ) -> None:
        for check in checks:
            after = score_summary(check)
            earlier = before.get(check.label)
            if after is None or earlier is None or check.stale:
                continue
            self.pairs.setdefault((suite, target, check.name), []).append((earlier.mean, after.mean))
            p = welch_drop_p(earlier, after)
            if p is not None:
                self.keyed.append((position, check.label, p))

    def decide(self, alpha: float) -> tuple[set[int], tuple[ScoreDrop, ...]]:
        """The keys whose score dropped (by number) and the suites' drops, Holm over both."""
        groups = [(group, p) for group, p in self._group_tests() if p is not None]
        adjusted = holm([p for _, _, p in self.keyed] + [p for _, p in groups])
        keys = {position for (position, _, _), p in zip(self.keyed, adjusted, strict=False) if p < alpha}
        drops = []
        for (group, _), p in zip(groups, adjusted[len(self.keyed) :], strict=True):
            if p < alpha:
                pairs = self.pairs[group]
                drops.append(
                    ScoreDrop(
                        suite=group[0],
                        target=group[1],
                        check=group[2],
                        keys=len(pairs),
                        mean_before=sum(b for b, _ in pairs) / len(pairs),
                        mean_after=sum(a for _, a in pairs) / len(pairs),
                        p_value=p,
                    )
                )
        return keys, tuple(drops)

    def _group_tests(self) -> Iterator[tuple[tuple[str, str, str], float | None]]:
        for group, pairs in sorted(self.pairs.items()):
            yield group, paired_drop_p([after - before for before, after in pairs])

"""Picking and ordering a run's results without holding them: the filters the gate, the
reports and the snapshot writer use, and the order a reviewer reads them in.

`results` is any sequence of Results. One that can filter and sort itself (a run's spool on
disk: `only(name)`, `sorted(key, only=...)`) is asked to, so the others are never read;
anything else is filtered in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from .results import VERDICT_ORDER, Result, Verdict

FILTERS: dict[str, Callable[[Result], bool]] = {
    # All that can fail a run or that a reviewer must see: the rest are unchanged and pass.
    "notable": lambda r: (
        r.verdict is not Verdict.UNCHANGED
        or not r.checks_passed
        or r.error is not None
        or "score dropped" in r.flags
    ),
    "erred": lambda r: bool(r.error),
    "stale": lambda r: "stale" in r.flags,
    "sampled": lambda r: any(c.samples and c.before for c in r.checks),
    "new": lambda r: r.verdict is Verdict.NEW,
}


@runtime_checkable
class Selectable(Protocol):
    """Results that filter and sort themselves (see records.spool.ResultSpool)."""

    def only(self, name: str) -> Iterable[Result]: ...

    def sorted(
        self, key: Callable[[Result], tuple[Any, ...]], *, only: str | None = None
    ) -> Iterable[Result]: ...


def matching(results: Sequence[Result], name: str) -> Iterable[Result]:
    """The results FILTERS[name] keeps, in their order."""
    if isinstance(results, Selectable):
        return results.only(name)
    return (result for result in results if FILTERS[name](result))


def in_order(
    results: Sequence[Result], key: Callable[[Result], tuple[Any, ...]], *, only: str | None = None
) -> Iterable[Result]:
    """`sorted(results, key=key)` (of those FILTERS[only] keeps)."""
    if isinstance(results, Selectable):
        return results.sorted(key, only=only)
    kept = results if only is None else [r for r in results if FILTERS[only](r)]
    return sorted(kept, key=key)


def sorted_results(results: Sequence[Result], *, only: str | None = None) -> Iterable[Result]:
    """What a reviewer must see first on top (with `only`, of those FILTERS[only] keeps).

    Within a verdict: outputs the compare judge found worse, then those whose meaning changed,
    then the lowest similarity first (a negation scores high on words yet matters more than a
    harmless rewording); the ones it found better last.
    """
    rank = {verdict: index for index, verdict in enumerate(VERDICT_ORDER)}
    worse_first = {"snapshot": 0, "new": 2}  # the compare judge's preference; none or split: 1

    def order(r: Result) -> tuple[int, int, int, float, str]:
        moved = 0 if (r.change or "").startswith("meaning changed") else 1
        judged = worse_first.get(r.preference or "", 1)
        return rank[r.verdict], judged, moved, 2.0 if r.similarity is None else r.similarity, r.key

    return in_order(results, key=order, only=only)

"""The measures of drift on one suite and target: the latest run's keys against the earlier
runs' (see `drift` for how they are chosen and corrected together). Pure: rows in, findings out.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal

from ..model.stats import fisher_one_sided
from .ranks import median, nearest_rank, signed_rank_greater

Kind = Literal["pass_rate", "latency", "cost", "swap"]


@dataclass(frozen=True)
class RunRef:
    id: str
    started_at: str


@dataclass(frozen=True)
class Row:
    """One key of one run, as the check reads it."""

    run_id: str
    key: str
    model: str | None
    request: str | None
    passed: bool  # every check passed
    latency_ms: float | None
    tokens: int
    cost_usd: float | None
    cached: bool
    error: bool
    output_hash: str | None

    @property
    def called(self) -> bool:
        """Answered by the provider in its run: not a cache hit, not an error."""
        return not self.cached and not self.error and self.output_hash is not None


@dataclass(frozen=True)
class Group:
    """One suite and target: its keys in the latest run and in each earlier run, newest first."""

    suite: str
    target: str
    latest: tuple[Row, ...]
    earlier: tuple[tuple[Row, ...], ...]
    since: RunRef  # the newest earlier run: what the latest is compared with first


@dataclass(frozen=True)
class Finding:
    """One test of one suite and target: what it measured, and whether that moved."""

    kind: Kind
    suite: str
    target: str
    what: str  # what moved and by how much, in words
    # The pass rate, the p95 latency in ms, the cost per key in USD, the share of outputs changed
    before: float
    after: float
    keys: int  # how many keys (or answers) the test compared
    since: RunRef
    baseline_runs: int
    test: str
    threshold: str  # the size of move that counts, besides the p-value
    beyond_threshold: bool  # did the move go that far (and the alarming way)?
    p_value: float | None = None  # None: a threshold alone decides (a price is no sample)
    adjusted_p: float | None = None  # Bonferroni over every test of the check
    drifted: bool = False


@dataclass(frozen=True)
class Skipped:
    kind: Kind
    suite: str
    target: str
    reason: str


def _finding(group: Group, kind: Kind, **fields: Any) -> Finding:
    return Finding(
        kind=kind,
        suite=group.suite,
        target=group.target,
        since=group.since,
        baseline_runs=len(group.earlier),
        **fields,
    )


def _skip(group: Group, kind: Kind, reason: str) -> Skipped:
    return Skipped(kind, group.suite, group.target, reason)


def pass_rate(group: Group) -> Finding | Skipped:
    """Pooled over keys and runs, errors left out: an outage is the run's exit 3, not drift."""
    after = [row.passed for row in group.latest if not row.error]
    before = [row.passed for run in group.earlier for row in run if not row.error]
    if not after or not before:
        return _skip(group, "pass_rate", "every key failed with an error")
    k_after, n_after, k_before, n_before = sum(after), len(after), sum(before), len(before)
    rate_before, rate_after = k_before / n_before, k_after / n_after
    return _finding(
        group,
        "pass_rate",
        what=f"pass rate {rate_before:.0%} -> {rate_after:.0%} "
        f"({k_before}/{n_before} -> {k_after}/{n_after} keys passed their checks)",
        before=round(rate_before, 4),
        after=round(rate_after, 4),
        keys=n_after,
        test="Fisher exact test, one-sided (pass rate lower)",
        threshold="any drop",
        beyond_threshold=k_after * n_before < k_before * n_after,
        p_value=fisher_one_sided(k_before, n_before, k_after, n_after, alternative="less"),
    )


def latency(group: Group, tolerance: float) -> Finding | Skipped:
    latest = {row.key: row.latency_ms for row in group.latest if row.called and row.latency_ms is not None}
    earlier: dict[str, list[float]] = defaultdict(list)
    for run in group.earlier:
        for row in run:
            if row.called and row.latency_ms is not None and row.key in latest:
                earlier[row.key].append(row.latency_ms)
    paired = sorted(earlier)
    if not paired:
        why = "no key was called both now and before (cache hits? run with --no-cache)"
        return _skip(group, "latency", why)
    differences = [latest[key] - (median(earlier[key]) or 0.0) for key in paired]
    p95_before = nearest_rank([value for key in paired for value in earlier[key]], 95) or 0.0
    p95_after = nearest_rank([latest[key] for key in paired], 95) or 0.0
    slower = sum(d > 0 for d in differences)
    return _finding(
        group,
        "latency",
        what=f"latency p95 {p95_before:.0f} ms -> {p95_after:.0f} ms ({_change(p95_before, p95_after)}); "
        f"{slower} of {len(paired)} keys slower than their median before",
        before=round(p95_before, 1),
        after=round(p95_after, 1),
        keys=len(paired),
        test="Wilcoxon signed-rank test, one-sided (each key vs its median before)",
        threshold=f"p95 up more than {tolerance:.0%}",
        beyond_threshold=p95_after > p95_before * (1 + tolerance),
        p_value=signed_rank_greater(differences),
    )


def cost(group: Group, tolerance: float) -> Finding | Skipped:
    """Cost per token, so that a longer answer is not taken for a higher price."""
    latest = {row.key: row for row in group.latest if _priced(row)}
    earlier: dict[str, list[Row]] = defaultdict(list)  # each key's priced rows before
    for run in group.earlier:
        for row in run:
            if _priced(row) and row.key in latest:
                earlier[row.key].append(row)
    per_token_before = {
        key: median([_per_token(row) for row in rows]) or 0.0 for key, rows in earlier.items()
    }
    paired = sorted(key for key, value in per_token_before.items() if value > 0)
    if not paired:
        return _skip(group, "cost", "no price known both now and before (a local model, or an unknown price)")
    ratio = median([_per_token(latest[key]) / per_token_before[key] for key in paired]) or 0.0
    cost_before = sum(median([row.cost_usd or 0.0 for row in earlier[key]]) or 0.0 for key in paired)
    cost_after = sum(latest[key].cost_usd or 0.0 for key in paired)
    return _finding(
        group,
        "cost",
        what=f"cost per token x{ratio:.2f} ({ratio - 1:+.0%}, median over {len(paired)} keys); "
        f"cost per key ${cost_before / len(paired):.6f} -> ${cost_after / len(paired):.6f}",
        before=round(cost_before / len(paired), 9),
        after=round(cost_after / len(paired), 9),
        keys=len(paired),
        test="threshold on the median change of each key's cost per token",
        threshold=f"moved more than {tolerance:.0%}",
        beyond_threshold=abs(ratio - 1) > tolerance,
    )


def _priced(row: Row) -> bool:
    return row.called and row.cost_usd is not None and row.tokens > 0


def _per_token(row: Row) -> float:
    return (row.cost_usd or 0.0) / row.tokens


def swap(group: Group) -> Finding | Skipped:
    """Outputs that changed with the same model and request, against how often they changed
    between the earlier runs: a model that is not deterministic churns on its own."""
    last: dict[tuple[str, str | None, str], str | None] = {}
    churned = churn_seen = 0
    for run in reversed(group.earlier):  # oldest first
        for row in run:
            if row.called and row.request:
                same = (row.key, row.model, row.request)
                if same in last:
                    churn_seen += 1
                    churned += last[same] != row.output_hash
                last[same] = row.output_hash
    compared = [
        (row.output_hash, last[(row.key, row.model, row.request)])
        for row in group.latest
        if row.called and row.request and (row.key, row.model, row.request) in last
    ]
    if not compared:
        return _skip(group, "swap", "no key was called with the same model and request before")
    if not churn_seen:
        why = "needs two earlier runs with the same requests (to know how often outputs change on their own)"
        return _skip(group, "swap", why)
    changed = sum(now != before for now, before in compared)
    share_before, share_after = churned / churn_seen, changed / len(compared)
    return _finding(
        group,
        "swap",
        what=f"{changed} of {len(compared)} outputs changed with the same model and request "
        f"({share_after:.0%}; {share_before:.0%} changed between the earlier runs)",
        before=round(share_before, 4),
        after=round(share_after, 4),
        keys=len(compared),
        test="Fisher exact test, one-sided (more outputs changed than between the earlier runs)",
        threshold="any rise in the share",
        beyond_threshold=changed * churn_seen > churned * len(compared),
        p_value=fisher_one_sided(churned, churn_seen, changed, len(compared), alternative="greater"),
    )


def _change(before: float, after: float) -> str:
    return f"{after / before - 1:+.0%}" if before > 0 else "new"

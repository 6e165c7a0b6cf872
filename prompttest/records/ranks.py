"""Rank statistics for latencies: the Wilcoxon signed-rank test and nearest-rank percentiles.

Latencies are skewed and a few calls are always slow, so a mean and a t-test would follow
the outliers. The signed-rank test asks only whether keys tend to be slower than they were,
each key paired with itself. Stdlib only: exact for small samples, normal beyond.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

EXACT_MAX = 60  # keys up to which the exact distribution is counted (a few ms at most)


def signed_rank_greater(differences: Sequence[float]) -> float:
    """One-sided Wilcoxon signed-rank p-value that the differences tend to be above zero.

    Zeros are dropped (Wilcoxon's method); tied magnitudes share their mean rank. Up to
    `EXACT_MAX` differences the p-value is exact: P(W+ >= observed) over every sign pattern
    of these ranks, counted with integers. Beyond, the normal approximation with the tie
    correction and a continuity correction, as `scipy.stats.wilcoxon(..., alternative=
    "greater", zero_method="wilcox", correction=True)` computes them.
    """
    nonzero = [d for d in differences if d != 0]
    if not nonzero:
        return 1.0
    doubled = _doubled_midranks([abs(d) for d in nonzero])
    observed = sum(rank for rank, d in zip(doubled, nonzero, strict=True) if d > 0)
    if len(nonzero) <= EXACT_MAX:
        return _exact_upper(doubled, observed)
    return _normal_upper(doubled, observed)


def _doubled_midranks(values: Sequence[float]) -> list[int]:
    """Twice each value's rank (ties: twice their mean rank), so every rank is an integer."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + 1) + (end + 1)  # 2 x the mean of ranks start+1..end+1
        start = end + 1
    return ranks


def _exact_upper(doubled: Sequence[int], observed: int) -> float:
    """P(W+ >= observed): each rank counts with a + or a - sign, all 2^n patterns equally likely."""
    ways = [0] * (sum(doubled) + 1)  # ways[s]: sign patterns whose positive ranks sum to s
    ways[0] = 1
    for rank in doubled:
        for total in range(len(ways) - 1, rank - 1, -1):
            ways[total] += ways[total - rank]
    return sum(ways[observed:]) / 2 ** len(doubled)


def _normal_upper(doubled: Sequence[int], observed: int) -> float:
    n = len(doubled)
    mean = n * (n + 1) / 4
    ties = _tie_sizes(doubled)
    variance = n * (n + 1) * (2 * n + 1) / 24 - sum(t**3 - t for t in ties) / 48
    if variance <= 0:
        return 1.0
    z = (observed / 2 - mean - 0.5) / math.sqrt(variance)
    return 1.0 - NormalDist().cdf(z)


def _tie_sizes(doubled: Sequence[int]) -> list[int]:
    counts: dict[int, int] = {}
    for rank in doubled:
        counts[rank] = counts.get(rank, 0) + 1
    return [size for size in counts.values() if size > 1]


def nearest_rank(values: Sequence[float], percent: float) -> float | None:
    """The nearest-rank percentile: a value some call really took, not one between two."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2

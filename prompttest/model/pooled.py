"""A suite's pass rate over its keys: an exact stratified test, the pooled change, what n can see.

Each key (or each (key, check) test) is a stratum: k_before/n_before in the snapshot,
k_after/n_after in this run. The question is the suite's, not one key's: did the pass rate
drop, taking every key's counts together? Keys differ in how often they pass, so their
counts are not poured into one 2x2 table (that would mix keys and let a change in how many
samples each key took pass for a change in rate): each key is compared with itself, and the
comparisons are added up. Pure functions, stdlib only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import mul
from statistics import NormalDist

from .stats import Alternative, _check_count, fisher_one_sided

_NORMAL = NormalDist()


@dataclass(frozen=True)
class Stratum:
    """One key's counts: k_before of n_before samples passed in the snapshot, k_after of n_after now."""

    k_before: int
    n_before: int
    k_after: int
    n_after: int

    def __post_init__(self) -> None:
        _check_count(self.k_before, self.n_before, "before")
        _check_count(self.k_after, self.n_after, "after")

    @property
    def weight(self) -> float:
        """The Cochran-Mantel-Haenszel weight n_before·n_after / N (0 when a side is empty)."""
        total = self.n_before + self.n_after
        return self.n_before * self.n_after / total if total else 0.0


def _null_law(s: Stratum) -> tuple[int, list[float]]:
    """The passes in the "after" row with both margins fixed: (lowest value, its hypergeometric pmf).

    N = n_before + n_after samples, K passes, m = n_after draws: P(X = x) = C(K, x) C(N-K, m-x)
    / C(N, m), each term an exact integer ratio rounded once to a float.
    """
    total, passes, draws = s.n_before + s.n_after, s.k_before + s.k_after, s.n_after
    lo, hi = max(0, draws - (total - passes)), min(draws, passes)
    denominator = math.comb(total, draws)
    return lo, [math.comb(passes, x) * math.comb(total - passes, draws - x) / denominator
                for x in range(lo, hi + 1)]


def _informative(strata: Sequence[Stratum]) -> tuple[list[tuple[int, list[float]]], int]:
    """The null laws of the strata that can move (an empty side, all-pass or all-fail margins fix
    X), and their observed T."""
    laws, observed = [], 0
    for s in strata:
        law = _null_law(s)
        if len(law[1]) > 1:
            laws.append(law)
            observed += s.k_after
    return laws, observed


def _convolve(dist: list[float], pmf: list[float]) -> list[float]:
    """The law of the sum of two independent variables on 0.. (pass the shorter law as pmf)."""
    reverse = pmf[::-1]
    last = len(pmf) - 1
    out = []
    for i in range(len(dist) + last):
        start = max(0, i - last)  # dist index; pmf index runs i - start down to i - end + 1
        end = min(i + 1, len(dist))
        out.append(sum(map(mul, dist[start:end], reverse[last - i + start : last - i + end])))
    return out


_NEGLIGIBLE = 2.0**-150  # relative to a law's largest term (at most 1): about 7e-46


def _sum_law(laws: list[tuple[int, list[float]]]) -> tuple[int, list[float]]:
    """The law of the sum of independent variables: (its lowest value kept, pmf from there).

    Laws are merged pairwise, as a balanced tree, so that large suites stay fast (a key's law
    has about 20 terms; 10,000 keys' sum has 200,000 possible values, most of them
    astronomically unlikely). After each merge the terms below 2^-150 of the largest are
    dropped from both ends: each is below 7e-46 and a suite of 10,000 keys drops fewer than
    10^10 of them, so the mass lost is below 1e-35. p-values are exact to that: relatively
    (about 1e-13, float rounding) for any p-value above 1e-20; smaller ones may read 0.
    """
    items = list(laws) or [(0, [1.0])]
    while len(items) > 1:
        merged = []
        for (o1, d1), (o2, d2) in zip(items[::2], items[1::2], strict=False):
            out = _convolve(d1, d2) if len(d1) >= len(d2) else _convolve(d2, d1)
            floor = max(out) * _NEGLIGIBLE
            lo, hi = 0, len(out)
            while out[lo] < floor:
                lo += 1
            while out[hi - 1] < floor:
                hi -= 1
            merged.append((o1 + o2 + lo, out[lo:hi]))
        if len(items) % 2:
            merged.append(items[-1])
        items = merged
    return items[0]


def _tails(strata: Sequence[Stratum]) -> tuple[float, float]:
    """(P(T <= t), P(T >= t)) under the null, t the observed T of the informative strata."""
    laws, observed = _informative(strata)
    offset, dist = _sum_law(laws)
    at = observed - offset  # index of t in dist (may fall outside the kept terms)
    lower = math.fsum(dist[: max(0, at + 1)])
    upper = math.fsum(dist[max(0, at) :])
    return min(1.0, lower), min(1.0, upper)


def stratified_p(strata: Sequence[Stratum], *, alternative: Alternative) -> float:
    """Exact one-sided p-value that the pass rate dropped ("less") or rose ("greater") over strata.

    T, the passes in every stratum's "after" row added up, is the statistic of the Cochran-
    Mantel-Haenszel test. Its null law given each stratum's margins is the convolution of the
    strata's hypergeometric laws, computed here term by term instead of approximated by a
    normal: "less" is P(T <= t), "greater" P(T >= t), the exact conditional test R runs as
    mantelhaen.test(exact = TRUE). With one stratum it is `stats.fisher_one_sided`.

    Valid for the composite null "no stratum's rate moved that way": given its margins, a
    stratum whose rate rose has a law stochastically above the hypergeometric (its odds ratio
    is above 1 and the noncentral hypergeometric is monotone in it), so a sum of independent
    such strata is above the null sum, and P(T <= t) only shrinks. It assumes samples are
    independent within and between keys. The sums are floats over positive terms (see
    `_sum_law` for the precision); strata whose margins fix their count (an empty side, all
    pass, all fail) carry no information and are left out. 30 keys take milliseconds,
    10,000 about a second.
    """
    if alternative not in ("less", "greater"):
        raise ValueError(f"alternative must be 'less' or 'greater', got {alternative!r}")
    lower, upper = _tails(strata)
    return lower if alternative == "less" else upper


def null_distribution(strata: Sequence[Stratum]) -> tuple[int, list[float]]:
    """The null law of T, the sum of every stratum's k_after: (lowest value kept, pmf from there)."""
    laws, observed = _informative(strata)
    offset, dist = _sum_law(laws)
    fixed = sum(s.k_after for s in strata) - observed  # the strata that cannot move add their count
    return offset + fixed, dist


def cmh_statistic(strata: Sequence[Stratum], *, correct: bool = True) -> float:
    """The Cochran-Mantel-Haenszel chi-squared (1 df), with Yates' continuity correction by default.

    (|sum (X - E)| - 1/2)^2 / sum V with the hypergeometric means and variances: the normal
    approximation of `stratified_p`, shown for comparison with textbooks and other tools.
    """
    deviation = variance = 0.0
    for s in strata:
        total, passes = s.n_before + s.n_after, s.k_before + s.k_after
        if total < 2:
            continue
        deviation += s.k_after - s.n_after * passes / total
        variance += s.n_after * s.n_before * passes * (total - passes) / (total * total * (total - 1))
    if variance == 0:
        return 0.0
    return max(0.0, abs(deviation) - (0.5 if correct else 0.0)) ** 2 / variance


@dataclass(frozen=True)
class PooledChange:
    """A suite's change over its strata: the pooled rates, their difference with an interval, p-values.

    The rates are the strata's rates averaged with the Mantel-Haenszel weights n_b·n_a/N, so
    that a key sampled more often does not weigh more than its comparison can carry; with the
    same n in every stratum they are the plain totals' rates. `difference` is after - before.
    """

    strata: int  # strata with both sides sampled
    rate_before: float | None
    rate_after: float | None
    difference: float | None
    interval: tuple[float, float] | None
    p_drop: float
    p_rise: float

    @classmethod
    def compare(cls, strata: Sequence[Stratum], *, confidence: float = 0.95) -> PooledChange:
        """The pooled change, exact p-values and the Mantel-Haenszel difference's interval.

        The interval is difference ± z·√V with Sato's (1989) variance of the Mantel-Haenszel
        risk difference, which stays consistent both with many small strata and with few large
        ones (what SAS PROC FREQ reports for the common risk difference). It is approximate: a
        description of the size of the change; the verdict comes from the exact test.
        """
        used = [s for s in strata if s.n_before and s.n_after]
        p_drop, p_rise = _tails(strata)
        if not used:
            return cls(0, None, None, None, None, p_drop, p_rise)
        weights = [s.weight for s in used]
        total = math.fsum(weights)
        before = math.fsum(w * s.k_before / s.n_before for w, s in zip(weights, used, strict=True)) / total
        after = math.fsum(w * s.k_after / s.n_after for w, s in zip(weights, used, strict=True)) / total
        difference = after - before
        p_sum = q_sum = 0.0
        for s in used:  # Sato's P and Q, group 1 = after, group 2 = before
            size = s.n_before + s.n_after
            p_sum += (s.n_after**2 * s.k_before - s.n_before**2 * s.k_after
                      + s.n_after * s.n_before * (s.n_before - s.n_after) / 2) / size**2
            q_sum += (s.k_after * (s.n_before - s.k_before)
                      + s.k_before * (s.n_after - s.k_after)) / (2 * size)
        half = _NORMAL.inv_cdf(0.5 + confidence / 2) * math.sqrt(max(0.0, difference * p_sum + q_sum)) / total
        interval = (max(-1.0, difference - half), min(1.0, difference + half))
        return cls(len(used), before, after, difference, interval, p_drop, p_rise)


# --------------------------------------------------------------------------- what n can see


def _binomial_cdf(n: int, p: float) -> list[float]:
    """P(Bin(n, p) <= k) for k = 0..n."""
    out, running = [], 0.0
    for k in range(n + 1):
        running += math.comb(n, k) * p**k * (1 - p) ** (n - k)
        out.append(min(1.0, running))
    return out


@lru_cache(maxsize=4096)
def drop_threshold(k_before: int, n_before: int, n_after: int, level: float) -> int:
    """The largest k_after whose one-sided Fisher p_drop is below `level` (-1: none is).

    p_drop grows with k_after, so the drops the test flags are exactly k_after <= threshold.
    """
    lo, hi = -1, n_after
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fisher_one_sided(k_before, n_before, mid, n_after, alternative="less") < level:
            lo = mid
        else:
            hi = mid - 1
    return lo


def drop_power(n_before: int, n_after: int, p_before: float, p_after: float, level: float) -> float:
    """Exact chance that the one-sided Fisher test flags a drop from p_before to p_after at `level`.

    Both counts are binomial draws; summed over every k_before, with the flagged k_after read
    from `drop_threshold`.
    """
    before = [math.comb(n_before, k) * p_before**k * (1 - p_before) ** (n_before - k)
              for k in range(n_before + 1)]
    after = _binomial_cdf(n_after, p_after)
    power = 0.0
    for k, mass in enumerate(before):
        t = drop_threshold(k, n_before, n_after, level)
        if t >= 0:
            power += mass * after[t]
    return power


def _smallest_drop(power_at: Callable[[float], float], p_before: float, power: float) -> float | None:
    """Bisection on the rate after: power falls as it rises; None if even 0 is not seen."""
    if power_at(0.0) < power:
        return None
    lo, hi = 0.0, p_before  # power_at(lo) >= power > power_at(hi), or hi is no drop at all
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if power_at(mid) >= power else (lo, mid)
    return p_before - lo


def detectable_drop(
    n_before: int, n_after: int, p_before: float, alpha: float, power: float = 0.8
) -> float | None:
    """The smallest drop in one key's pass rate its test flags with `power`, at these sample sizes.

    Exact: `drop_power` of the one-sided Fisher test at level alpha (pass the level the key is
    really tested at: its share of the run's alpha), found by bisection to 1e-12. p_before is
    the rate the drop starts from (the snapshot's rate is the natural guess). None when no drop,
    not even to 0, reaches that power: the sample is too small at that level.
    """
    if not 0 < p_before <= 1 or not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError("need 0 < p_before <= 1, 0 < alpha < 1 and 0 < power < 1")
    return _smallest_drop(lambda q: drop_power(n_before, n_after, p_before, q, alpha), p_before, power)


def pooled_drop_power(
    sizes: Sequence[tuple[int, int]], p_before: float, p_after: float, level: float
) -> float:
    """Normal approximation of the power of `stratified_p` when every stratum drops by the same amount.

    With U = sum of w·(rate after - rate before) over strata (w = n_b·n_a/N, the statistic
    the exact test orders by), the mean under the drop is -δ·Σw, the null variance Σ w·p̄(1-p̄)
    N/(N-1) (hypergeometric, p̄ the stratum's mixed rate) and the variance under the drop Σ w²
    (p_a(1-p_a)/n_a + p_b(1-p_b)/n_b); a continuity correction of 1/2 stands in for the exact
    test's discreteness. Checked against simulation in benchmarks/bench_stats_pooled.py.
    """
    mean = null_var = alt_var = 0.0
    for n_b, n_a in sizes:
        if not n_b or not n_a:
            continue
        total = n_b + n_a
        w = n_b * n_a / total
        mixed = (n_b * p_before + n_a * p_after) / total
        mean += w * (p_before - p_after)
        null_var += w * mixed * (1 - mixed) * (total / (total - 1) if total > 1 else 1.0)
        alt_var += w * w * (p_after * (1 - p_after) / n_a + p_before * (1 - p_before) / n_b)
    z = _NORMAL.inv_cdf(1 - level)
    margin = mean - z * math.sqrt(null_var) - 0.5
    if alt_var == 0:  # both rates at 0 or 1: the drop is certain, it crosses the bound or not
        return 1.0 if margin > 0 else 0.0
    return _NORMAL.cdf(margin / math.sqrt(alt_var))


def detectable_pooled_drop(
    sizes: Sequence[tuple[int, int]], p_before: float, alpha: float, power: float = 0.8
) -> float | None:
    """The smallest drop, the same in every stratum, the suite's pooled test flags with `power`.

    `sizes` are the strata's (n_before, n_after). Uses `pooled_drop_power` (an approximation,
    see there); None when no drop reaches that power.
    """
    if not 0 < p_before <= 1 or not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError("need 0 < p_before <= 1, 0 < alpha < 1 and 0 < power < 1")
    return _smallest_drop(lambda q: pooled_drop_power(sizes, p_before, q, alpha), p_before, power)

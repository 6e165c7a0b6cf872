"""Did a judged check's score drop? Student's t tests on score summaries, stdlib only.

A score (a judge's 0..1 grade, a similarity) can slide while it stays above the check's
threshold: the check passes, the answers got worse. Snapshots keep each score (a key with
repeats keeps its mean and standard deviation), so a run can ask two questions:

- one key with repeats: did its mean score drop? Welch's t test on the two summaries;
- one suite on one target, per kind of check: did its keys' scores drop, taken together?
  A paired t test on each key's change of (mean) score: every key is compared with itself,
  so keys that score high or low by nature do not blur the comparison.

Both are one-sided ("after is lower"). Scores are bounded, so their mean is close to normal
for a few samples already; the t law accounts for estimating the spread.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ScoreSummary:
    """A check's scores over a key's samples: their mean, standard deviation and count."""

    mean: float
    sd: float
    n: int

    @classmethod
    def of(cls, scores: Sequence[float]) -> ScoreSummary:
        n = len(scores)
        if n == 0:
            raise ValueError("no scores")
        mean = math.fsum(scores) / n
        sd = math.sqrt(math.fsum((s - mean) ** 2 for s in scores) / (n - 1)) if n > 1 else 0.0
        return cls(mean, sd, n)


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom (df > 0)."""
    if df <= 0:
        raise ValueError("df must be positive")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * regularized_beta(df / (df + t * t), df / 2, 0.5)  # P(T > |t|)
    return tail if t < 0 else 1.0 - tail


def welch_drop_p(before: ScoreSummary, after: ScoreSummary) -> float | None:
    """One-sided p that the mean score dropped, from two summaries (Welch's t test).

    None when a side has fewer than 2 scores, or when neither has any spread: the samples
    were one output graded once (a judge's answer is cached per output), so the run cannot
    tell the judge's own noise from a drop.
    """
    if before.n < 2 or after.n < 2:
        return None
    var_b, var_a = before.sd**2 / before.n, after.sd**2 / after.n
    diff = after.mean - before.mean
    if var_b + var_a == 0:
        return None
    t = diff / math.sqrt(var_b + var_a)
    df = (var_b + var_a) ** 2 / (
        (var_b**2 / (before.n - 1) if before.n > 1 else 0.0)
        + (var_a**2 / (after.n - 1) if after.n > 1 else 0.0)
    )
    return t_cdf(t, df)


def paired_drop_p(changes: Sequence[float]) -> float | None:
    """One-sided p that scores dropped, from each key's change (after - before): paired t test.

    None with fewer than 3 keys. With no spread, any drop is certain and no drop is none.
    """
    n = len(changes)
    if n < 3:
        return None
    summary = ScoreSummary.of(changes)
    if summary.sd == 0:
        return 0.0 if summary.mean < 0 else 1.0
    return t_cdf(summary.mean / (summary.sd / math.sqrt(n)), n - 1)


def regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), the regularized incomplete beta function, by its continued fraction
    (the modified Lentz method), relative accuracy about 1e-14."""
    if not 0.0 <= x <= 1.0:
        raise ValueError("x must be in [0, 1]")
    if x in (0.0, 1.0):
        return x
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast on this side only
        return 1.0 - math.exp(log_front) * _beta_fraction(1.0 - x, b, a) / b
    return math.exp(log_front) * _beta_fraction(x, a, b) / a


def _beta_fraction(x: float, a: float, b: float) -> float:
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < eps:
            break
    return result

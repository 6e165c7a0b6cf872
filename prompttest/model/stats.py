"""Statistics for repeated samples: pass rules, exact tests, intervals, multiple testing.

With `samples: n > 1` each check passes k of n times. A change in k is only news when it
is unlikely under "the pass rate did not change": the one-sided Fisher exact test says how
unlikely, Holm or Benjamini-Hochberg keep a run of many keys from crying wolf, and the
Wilson interval shows how little n samples pin a rate down. Pure functions, stdlib only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Literal

DEFAULT_ALPHA = 0.05
Alternative = Literal["less", "greater"]
Direction = Literal["same", "drop", "rise"]
Classification = Literal["same", "drop", "rise", "inconclusive"]
AdjustMethod = Literal["holm", "bh"]
PassKind = Literal["all", "majority", "at_least", "rate"]


def _check_count(k: int, n: int, side: str) -> None:
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"{side}: need 0 <= k <= n, got k={k}, n={n}")


def fisher_one_sided(
    k_before: int, n_before: int, k_after: int, n_after: int, *, alternative: Alternative
) -> float:
    """One-sided Fisher exact p-value that the pass rate after is lower/higher than before.

    The table is [[k_after, n_after - k_after], [k_before, n_before - k_before]]. With
    both margins fixed, the passes that fall in the "after" row follow a hypergeometric
    law: P(X = x) = C(K, x) * C(N - K, m - x) / C(N, m), with N = n_before + n_after,
    K = k_before + k_after passes in all and m = n_after draws. "less" is P(X <= k_after)
    (after is worse), "greater" is P(X >= k_after); the same numbers as
    `scipy.stats.fisher_exact(table, alternative=...)`.

    Exact, not approximated: small samples are where a normal approximation lies. The
    terms are integers; the sum runs from the observed count away from the mode (on the
    complement when the tail holds the mode), so the terms only shrink and it stops once
    the rest cannot change the float. n = 10,000 a side costs milliseconds.
    """
    _check_count(k_before, n_before, "before")
    _check_count(k_after, n_after, "after")
    if alternative not in ("less", "greater"):
        raise ValueError(f"alternative must be 'less' or 'greater', got {alternative!r}")
    total, passes, draws = n_before + n_after, k_before + k_after, n_after
    fails = total - passes
    mode = (draws + 1) * (passes + 1) // (total + 2)
    denominator = math.comb(total, draws)
    if alternative == "less":
        if k_after <= mode:
            return _tail(k_after, -1, passes=passes, fails=fails, draws=draws) / denominator
        upper = _tail(k_after + 1, +1, passes=passes, fails=fails, draws=draws)
    else:
        if k_after >= mode:
            return _tail(k_after, +1, passes=passes, fails=fails, draws=draws) / denominator
        upper = _tail(k_after - 1, -1, passes=passes, fails=fails, draws=draws)
    return (denominator - upper) / denominator  # int / int: correctly rounded, no overflow


def _tail(start: int, step: int, *, passes: int, fails: int, draws: int) -> int:
    """Sum of C(K, x) * C(N-K, m-x) from x = start going by step while terms shrink.

    Consecutive terms differ by an exact integer ratio, (K-x)(m-x) / ((x+1)(N-K-m+x+1))
    going up. The sum stops when N times the current term is below 2**-60 of the sum:
    the rest (at most N terms, each smaller) cannot change a float.
    """
    lo, hi = max(0, draws - fails), min(draws, passes)
    if not lo <= start <= hi:
        return 0
    x, term, total = start, math.comb(passes, start) * math.comb(fails, draws - start), 0
    size = passes + fails
    while term and lo <= x <= hi:
        total += term
        if (term * size) << 60 < total:
            break
        if step > 0:
            term = term * (passes - x) * (draws - x) // ((x + 1) * (fails - draws + x + 1))
        else:
            term = term * x * (fails - draws + x) // ((passes - x + 1) * (draws - x + 1))
        x += step
    return total


def min_p_value(n_before: int, n_after: int) -> float:
    """The smallest one-sided p-value n samples a side can ever give: 1 / C(N, n_after).

    It is reached by all-pass before and all-fail after. If it is not below alpha (3 vs 3
    samples: 1/20 = 0.05), no drop can ever be significant: worth telling the user.
    """
    return 1.0 / math.comb(n_before + n_after, n_after)


def wilson_interval(k: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval for a pass rate k/n.

    center = (p + z²/2n) / (1 + z²/n), half = z / (1 + z²/n) * sqrt(p(1-p)/n + z²/4n²),
    with z the two-sided normal quantile. Unlike p ± z·sqrt(p(1-p)/n) it never collapses
    to a zero width at 0/n or n/n and stays inside [0, 1], which is what small n need.
    n = 0 says nothing: (0.0, 1.0).
    """
    _check_count(k, n, "wilson_interval")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n == 0:
        return (0.0, 1.0)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p, z2 = k / n, z * z
    denominator = 1 + z2 / n
    center = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low = 0.0 if k == 0 else max(0.0, center - half)
    high = 1.0 if k == n else min(1.0, center + half)
    return (low, high)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values, in the input order.

    Sorted ascending, the i-th of m (from 1) becomes max over j <= i of (m - j + 1)·p_(j),
    capped at 1. Rejecting adjusted p < alpha keeps the chance of even one false alarm in
    the run at most alpha, whatever the dependence between keys; it never rejects less
    than Bonferroni.
    """
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input order.

    Sorted ascending, the i-th of m (from 1) becomes min over j >= i of m/j · p_(j), capped
    at 1. Rejecting q < alpha keeps the expected share of false alarms among the flagged
    keys at most alpha (for independent or positively dependent tests): more power than
    Holm, at the price of some false alarms in large runs.
    """
    m = len(p_values)
    adjusted = [0.0] * m
    running = 1.0
    order = sorted(range(m), key=lambda i: p_values[i])
    for rank in range(m, 0, -1):
        index = order[rank - 1]
        running = min(running, m / rank * p_values[index])
        adjusted[index] = running
    return adjusted


@dataclass(frozen=True)
class PassRule:
    """When k passes out of n samples count as a pass for a check.

    `all`: k = n. `majority`: strictly more than half (2 of 4 is not a majority).
    `at_least`: k >= value, so a rule asking more than n samples have can never pass.
    `rate`: k/n >= value. No rule passes with n = 0: nothing was observed. The default,
    `all`, is the single-sample behaviour at n = 1.
    """

    kind: PassKind = "all"
    value: float = 1.0

    def passes(self, k: int, n: int) -> bool:
        """Whether k passes out of n samples satisfy the rule."""
        _check_count(k, n, "pass rule")
        if n == 0:
            return False
        if self.kind == "all":
            return k == n
        if self.kind == "majority":
            return 2 * k > n
        if self.kind == "at_least":
            return k >= self.value
        # k / n, not k >= value * n: 0.7 * 10 is 7.000000000000001, while 7 / 10 and the
        # parsed 0.7 round the same real number to the same float.
        return k / n >= self.value

    def __str__(self) -> str:
        if self.kind == "at_least":
            return f"at least {int(self.value)}"
        if self.kind == "rate":
            return f"rate >= {self.value:g}"
        return self.kind


PASS_RULE_FORMS = "all | majority | {at_least: k} | {rate: r}"


def parse_pass_rule(value: object) -> PassRule:
    """A `pass:` value from a suite: "all", "majority", {"at_least": k} or {"rate": r}."""
    if isinstance(value, PassRule):
        return value
    if value in ("all", "majority"):
        return PassRule(kind="all" if value == "all" else "majority")
    if isinstance(value, dict) and len(value) == 1:
        ((name, number),) = value.items()
        numeric = isinstance(number, int | float) and not isinstance(number, bool)
        if name == "at_least":
            if not (isinstance(number, int) and not isinstance(number, bool)) or number < 1:
                raise ValueError(f"pass: at_least needs a whole number >= 1, got {number!r}")
            return PassRule(kind="at_least", value=number)
        if name == "rate":
            if not numeric or not 0.0 < number <= 1.0:
                raise ValueError(f"pass: rate needs a number in (0, 1], got {number!r}")
            return PassRule(kind="rate", value=float(number))
    raise ValueError(f"pass: expected {PASS_RULE_FORMS}, got {value!r}")


@dataclass(frozen=True)
class RateChange:
    """A check's pass count before (the snapshot) and after (this run), with both p-values.

    `p_drop` tests "after is lower", `p_rise` "after is higher"; `adjust` replaces them
    with values adjusted over the run.
    """

    k_before: int
    n_before: int
    k_after: int
    n_after: int
    p_drop: float
    p_rise: float

    @classmethod
    def compare(cls, *, k_before: int, n_before: int, k_after: int, n_after: int) -> RateChange:
        """The change from k_before/n_before to k_after/n_after, with raw p-values."""
        counts = (k_before, n_before, k_after, n_after)
        return cls(
            *counts,
            p_drop=fisher_one_sided(*counts, alternative="less"),
            p_rise=fisher_one_sided(*counts, alternative="greater"),
        )

    @property
    def direction(self) -> Direction:
        """The difference seen, without statistics (what n = 1 uses). An empty side: same."""
        if self.n_before == 0 or self.n_after == 0:
            return "same"
        before, after = self.k_before * self.n_after, self.k_after * self.n_before
        return "same" if before == after else "drop" if after < before else "rise"

    @property
    def p_value(self) -> float:
        """The p-value of the direction seen; 1.0 when the rates are equal."""
        direction = self.direction
        return self.p_drop if direction == "drop" else self.p_rise if direction == "rise" else 1.0

    def classify(self, alpha: float = DEFAULT_ALPHA) -> Classification:
        """same (equal rates), drop/rise (p < alpha in the direction seen), else inconclusive."""
        direction = self.direction
        if direction == "same":
            return "same"
        return direction if self.p_value < alpha else "inconclusive"


def adjust(changes: Sequence[RateChange], method: AdjustMethod = "holm") -> list[RateChange]:
    """The changes with p_drop and p_rise adjusted for testing every key of a run at once.

    Drops and rises are two families, each over all the given changes: a change counts in
    the drop family with its p_drop even when it did not drop (that p is then above 0.5,
    so it only raises m). Choosing the family after looking at which keys moved would undo
    the correction. So false "regressed", the verdicts that fail CI, stay under alpha on
    their own, however many real improvements the run has. (One mixed family of "the
    p-value of the direction seen" would not: that p-value is the smaller of two one-sided
    ones, so under no change it falls below t with chance up to 2t.)
    """
    if method == "holm":
        adjuster = holm
    elif method == "bh":
        adjuster = benjamini_hochberg
    else:
        raise ValueError(f"method must be 'holm' or 'bh', got {method!r}")
    drops = adjuster([c.p_drop for c in changes])
    rises = adjuster([c.p_rise for c in changes])
    return [replace(c, p_drop=d, p_rise=r) for c, d, r in zip(changes, drops, rises, strict=True)]

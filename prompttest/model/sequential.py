"""`repeat: auto`: draw a key's samples in batches and stop once its comparison is decided.

The snapshot's counts (k_before/n_before) are fixed; the run draws the key's samples in
batches up to a cap and looks after each batch. Looking at the data and stopping when it
looks good is what makes naive repeated testing cry wolf, so the looks are planned and the
level is spent across them:

- the plan fixes the looks in advance: n_after = 10, 20, 40, ... doubling up to max_repeat
  (a look closer than 1.5x to max_repeat is dropped: 10, 20, 50 for max_repeat 50);
- an alpha-spending function gives look l the share s_l = t_l^3 - t_(l-1)^3 of the key's
  level, t = n_after / max_repeat (Kim-DeMets power family, rho = 3: O'Brien-Fleming-like,
  it keeps most of the level for the last look: 1/512, 7/512, 56/512, 448/512 for 10..80);
- the key's sequential p-value is min over the looks taken of p_l / s_l, p_l the one-sided
  Fisher p-value of the counts at look l (capped at 1).

Why it is valid under any stopping rule: define p_l for every planned look on the full
sample path a key could have drawn. If the key's rate did not drop, P(p_l <= u·s_l) <= u·s_l
for each l (Fisher is valid at each fixed n), so P(min_l p_l / s_l <= u) <= sum u·s_l = u
(Bonferroni over the looks, no assumption on how they depend on each other). Stopping early
only takes the minimum over fewer looks, which makes it larger: the bound holds whatever
decided the stop, this key's counts, the other keys' or the pooled test. That is the whole
price of adaptivity here: the last look is tested at 448/512 of the key's level instead of
all of it. (An exact group-sequential boundary would spend a little less, but needs the
joint law of the looks, which depends on the unknown common rate; the union bound does not.)

The sequential p-value enters the run's procedure (`familywise`) like any key's p-value.
Stopping for futility ("this key will not reach its level") never raises a false alarm; it
only gives up power, and saves the calls an unchanged key would have spent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .pooled import drop_threshold
from .stats import Alternative, _check_count, fisher_one_sided, wilson_interval

DEFAULT_MAX_REPEAT = 40
FIRST_LOOK = 10
SPENDING_POWER = 3.0
FUTILITY = 0.05  # stop when the chance of reaching the last boundary is below this
OPTIMISM = 0.6  # two-sided Wilson confidence whose lower end is the hopeful rate after (80 % one-sided)
Decision = Literal["drop", "no-drop", "continue", "cap"]


@dataclass(frozen=True)
class SequentialPlan:
    """The planned looks (cumulative samples after) and the share of the key's level each spends."""

    looks: tuple[int, ...]
    spend: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.looks or len(self.looks) != len(self.spend):
            raise ValueError("a plan needs one share of the level per look, and at least one look")
        if self.looks[0] < 1 or any(b <= a for a, b in zip(self.looks, self.looks[1:], strict=False)):
            raise ValueError(f"looks must be increasing sample counts >= 1, got {self.looks}")
        if any(s <= 0 for s in self.spend) or math.fsum(self.spend) > 1 + 1e-12:
            raise ValueError(f"shares must be positive and sum to at most 1, got {self.spend}")

    @classmethod
    def fixed(cls, n: int) -> SequentialPlan:
        """`repeat: n`: one look, the whole level; the sequential p-value is Fisher's."""
        return cls((n,), (1.0,))

    @classmethod
    def auto(
        cls, max_repeat: int = DEFAULT_MAX_REPEAT, *, first: int = FIRST_LOOK, rho: float = SPENDING_POWER
    ) -> SequentialPlan:
        """`repeat: auto`: looks at first, 2·first, 4·first, ... and max_repeat; shares t^rho."""
        if max_repeat < 1 or first < 1 or rho <= 0:
            raise ValueError("need max_repeat >= 1, first >= 1 and rho > 0")
        looks, n = [], first
        while n < max_repeat and max_repeat >= 1.5 * n:
            looks.append(n)
            n *= 2
        looks.append(max_repeat)
        spent = [(look / max_repeat) ** rho for look in looks]
        spent[-1] = 1.0
        return cls(tuple(looks), tuple(b - a for a, b in zip([0.0, *spent], spent, strict=False)))

    @property
    def worst_case(self) -> int:
        """The samples a key takes when no look decides it: what --dry-run and --max-cost count."""
        return self.looks[-1]

    def at(self, n_after: int) -> int:
        """The index of the look at n_after samples (ValueError if it is not a planned look)."""
        try:
            return self.looks.index(n_after)
        except ValueError:
            raise ValueError(f"{n_after} samples is not a look of the plan {self.looks}") from None


def sequential_p(
    k_before: int,
    n_before: int,
    after: Sequence[int],
    plan: SequentialPlan,
    *,
    alternative: Alternative = "less",
) -> float:
    """min over the looks taken of p_l / s_l, capped at 1: a p-value valid however the key stopped.

    `after` holds the cumulative k_after at each look taken so far (after[l] passes of
    plan.looks[l] samples). "less" tests a drop, "greater" a rise (each is its own family).
    """
    if not after or len(after) > len(plan.looks):
        raise ValueError(f"need the counts of 1 to {len(plan.looks)} looks, got {len(after)}")
    best = 1.0
    for k_after, n_after, share in zip(after, plan.looks, plan.spend, strict=False):
        _check_count(k_after, n_after, f"look at {n_after}")
        p = fisher_one_sided(k_before, n_before, k_after, n_after, alternative=alternative)
        best = min(best, p / share)
    return best


@dataclass(frozen=True)
class Step:
    """What to do with a key after a look.

    `drop`: its sequential p_drop is below the level it is sure to be tested at, so the run's
    procedure will flag it: stop. `no-drop`: even a hopeful guess of its rate gives under 5 %
    chance of reaching that level by the cap (this covers every key that rose): stop.
    `continue`: draw `draw` more samples. `cap`: the last look was taken undecided. The
    verdict itself is the run procedure's, from p_drop and p_rise; `no-drop` is not a claim.
    """

    decision: Decision
    p_drop: float
    p_rise: float
    draw: int = 0


def next_step(
    k_before: int, n_before: int, after: Sequence[int], plan: SequentialPlan, *, level: float,
    futility: float = FUTILITY,
) -> Step:
    """The decision after the latest look, given the key's guaranteed level in the run.

    `level` is the smallest level the run's procedure will test this key at: its initial
    share of alpha (`familywise.RunTests.levels`), raised as the procedure rejects others.
    Futility: with t the largest k_after the last look flags, and q the lower end of the 60 %
    Wilson interval of the rate after so far (a hopeful guess, 80 % one-sided), stop when
    P(k_after + Bin(remaining, q) <= t) < futility. No snapshot (n_before = 0): nothing to
    compare, `no-drop` at once.
    """
    p_drop = sequential_p(k_before, n_before, after, plan, alternative="less")
    p_rise = sequential_p(k_before, n_before, after, plan, alternative="greater")
    look = len(after) - 1
    if p_drop < level:
        return Step("drop", p_drop, p_rise)
    if look == len(plan.looks) - 1:
        return Step("cap", p_drop, p_rise)
    if n_before == 0:
        return Step("no-drop", p_drop, p_rise)
    k_after, n_after = after[-1], plan.looks[look]
    last = plan.looks[-1]
    need = drop_threshold(k_before, n_before, last, plan.spend[-1] * level) - k_after
    if need < 0:
        return Step("no-drop", p_drop, p_rise)
    remaining = last - n_after
    if need < remaining:
        hopeful = wilson_interval(k_after, n_after, confidence=OPTIMISM)[0]
        chance = math.fsum(math.comb(remaining, j) * hopeful**j * (1 - hopeful) ** (remaining - j)
                           for j in range(need + 1))
        if chance < futility:
            return Step("no-drop", p_drop, p_rise)
    return Step("continue", p_drop, p_rise, draw=plan.looks[look + 1] - n_after)

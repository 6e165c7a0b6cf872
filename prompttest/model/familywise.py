"""One run, many claims: suites' pooled tests and keys' tests, with one false-alarm budget.

A run makes two kinds of `regressed` claim: "this suite's pass rate dropped" (its pooled
test, `pooled.stratified_p`) and "this key's pass rate dropped" (its Fisher or sequential
p-value). CI fails on any one of them, so the chance of even one false claim, over both
kinds together, must stay under alpha. A pooled test sees a small drop spread over every
key that no key's test can see alone; a key's own test sees one key collapse among many
unchanged ones, which the pooled sum dilutes. Neither may hide the other, so alpha is split
and recycled:

- the pooled tests share `pooled_share` (1/2 by default) of alpha equally, the keys the
  rest equally: with S suites and m keys, a pooled test starts at alpha·share/S, a key at
  alpha·(1 - share)/m;
- a rejected key hands its level to the keys still standing, equally (Holm among the keys:
  with no pooled test this is exactly `stats.holm`);
- a rejected suite hands its level to its own keys still standing: the keys of a suite
  that regressed as a whole are searched harder (when none is left, to every key standing).

Formally, for the set J of hypotheses not yet rejected, a pooled test has weight share/S;
a key of suite s has weight (1 - share + share·o/S) / |K_J| plus, once s's pooled test is
rejected, (share/S) / |K_J ∩ s|; K_J are the keys in J and o the rejected suites with no key
left in J. These weights sum to at most 1 and never fall as J shrinks. So the procedure,
reject any h with p_h < alpha·w_h(J), remove it, repeat, is the shortcut of a closed test
whose test of each intersection H_J is the weighted Bonferroni test (Hommel, Bretz and Maurer
2007; the graphical procedures of Bretz et al. 2009 are the same construction): every
rejection it makes is a closed-test rejection. Closed testing bounds the chance of any
false rejection by alpha: if T is the set of true hypotheses, a false rejection needs H_T
rejected, which happens with chance at most sum over h in T of alpha·w_h(T) <= alpha.

What that needs: each p-value valid under its own null (Fisher's, the exact stratified test,
the sequential p-value: each is), nothing about how they depend on each other (Bonferroni),
and nothing about how suites and keys are logically related (a suite's null is the
intersection of its keys' nulls). A suite is also called `regressed` when one of its keys
is: a true key claim makes the suite claim true, so it adds no new way to be wrong.

Drops and rises are two families, each with its own alpha (as in `stats.adjust`): false
`regressed` claims, the ones that fail CI, stay under alpha however much else improved.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

DEFAULT_POOLED_SHARE = 0.5


@dataclass(frozen=True)
class SuiteTests:
    """One suite's p-values in one direction: its pooled test (None: none) and each key's."""

    pooled: float | None
    keys: Mapping[str, float]


@dataclass(frozen=True)
class RunTests:
    """Every p-value of a run in one direction, adjusted together.

    `pooled` and `keys` map suites and keys to adjusted p-values: the smallest alpha at which
    the procedure would reject them (1.0 when it never would). Key names must be unique across
    the run (use the full result key).
    """

    pooled: dict[str, float] = field(default_factory=dict)
    keys: dict[str, float] = field(default_factory=dict)
    suites: Mapping[str, SuiteTests] = field(default_factory=dict, repr=False)
    share: float = DEFAULT_POOLED_SHARE

    @classmethod
    def adjust(
        cls, suites: Mapping[str, SuiteTests], *, pooled_share: float = DEFAULT_POOLED_SHARE
    ) -> RunTests:
        """The adjusted p-values: reject in order of p / weight, each adjusted p the running maximum."""
        if not 0.0 <= pooled_share <= 1.0:
            raise ValueError(f"pooled_share must be in [0, 1], got {pooled_share}")
        pooled: dict[str, float] = {}
        keys: dict[str, float] = {}
        worst = 0.0
        for kind, name, ratio in _Procedure(suites, pooled_share).order():
            worst = max(worst, min(1.0, ratio))
            (pooled if kind == "pooled" else keys)[name] = worst
        for suite, tests in suites.items():
            if tests.pooled is not None:
                pooled.setdefault(suite, 1.0)
            for key in tests.keys:
                keys.setdefault(key, 1.0)
        return cls(pooled, keys, suites, pooled_share)

    def suite_rejected(self, suite: str, alpha: float) -> bool:
        """The suite moved: its pooled test or one of its keys is rejected at alpha."""
        return self.pooled.get(suite, 1.0) < alpha or any(
            self.keys[key] < alpha for key in self.suites[suite].keys
        )

    def levels(self, alpha: float) -> dict[str, float]:
        """The level each key not yet rejected at alpha is tested at now (rejected keys: omitted).

        Levels only rise as more is rejected, and p-values only fall as a sequential key takes
        more looks, so a key whose p-value is below its level here will be rejected in the end:
        what `sequential.next_step` needs to stop early.
        """
        procedure = _Procedure(self.suites, self.share)
        for _kind, _name, ratio in procedure.order():
            if ratio >= alpha:
                break
            procedure.remove()
        return {key: alpha * procedure.key_weight(suite) for suite, key in procedure.standing_keys()}


def initial_key_level(
    alpha: float, suites: int, keys: int, pooled_share: float = DEFAULT_POOLED_SHARE
) -> float:
    """A key's level before anything is rejected: alpha·(1 - share)/m, or alpha/m with no pooled test."""
    if keys < 1:
        raise ValueError("need at least one key")
    return alpha * (1.0 - (pooled_share if suites else 0.0)) / keys


class _Procedure:
    """The sequentially rejective procedure's state: who stands, and their weights.

    Within a suite every key has the same weight, so the next key to go is the suite's
    smallest p: each step compares the pooled tests and one key per suite, O(suites).
    """

    def __init__(self, suites: Mapping[str, SuiteTests], share: float) -> None:
        self.pooled = {s: t.pooled for s, t in suites.items() if t.pooled is not None}
        self.suites = len(self.pooled)  # S: a pooled test's weight stays share/S
        self.share = share if self.pooled else 0.0
        self.queues = {s: sorted(t.keys.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
                       for s, t in suites.items()}
        self.standing = sum(len(q) for q in self.queues.values())
        self.rejected_suites: set[str] = set()
        self.orphans = 0  # rejected suites with no key standing
        self._next: tuple[str, str, str] | None = None

    def pooled_weight(self) -> float:
        return self.share / self.suites if self.suites else 0.0

    def key_weight(self, suite: str) -> float:
        if not self.standing:
            return 0.0
        weight = (1.0 - self.share + self.orphans * self.pooled_weight()) / self.standing
        if suite in self.rejected_suites and self.queues[suite]:
            weight += self.pooled_weight() / len(self.queues[suite])
        return weight

    def standing_keys(self) -> list[tuple[str, str]]:
        return [(suite, key) for suite, queue in self.queues.items() for key, _ in queue]

    def order(self) -> Iterator[tuple[str, str, float]]:
        """(kind, name, p / weight) of the next hypothesis to reject, until none stands.

        The caller either calls `remove()` before asking for the next, or lets `order` do it.
        """
        while True:
            best, best_ratio = None, math.inf
            weight = self.pooled_weight()
            for suite, p in self.pooled.items():
                ratio = p / weight if weight > 0 else math.inf
                if best is None or ratio < best_ratio:
                    best, best_ratio = ("pooled", suite, suite), ratio
            for suite, queue in self.queues.items():
                if queue:
                    key, p = queue[-1]
                    w = self.key_weight(suite)
                    ratio = p / w if w > 0 else math.inf
                    if best is None or ratio < best_ratio:
                        best, best_ratio = ("key", key, suite), ratio
            if best is None:
                return
            self._next = best
            yield best[0], best[1], best_ratio
            if self._next is not None:
                self.remove()

    def remove(self) -> None:
        """Reject the hypothesis `order` yielded last."""
        assert self._next is not None
        kind, _name, suite = self._next
        self._next = None
        if kind == "pooled":
            del self.pooled[suite]
            self.rejected_suites.add(suite)
            if not self.queues[suite]:
                self.orphans += 1
        else:
            self.queues[suite].pop()
            self.standing -= 1
            if suite in self.rejected_suites and not self.queues[suite]:
                self.orphans += 1

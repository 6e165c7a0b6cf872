"""The verdict table of PRODUCT.md as pure functions: a new result against its snapshot."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..model import Verdict


@dataclass(frozen=True)
class Baseline:
    """The accepted result of a key, as its snapshot entry holds it."""

    output: str
    checks: Mapping[str, bool]
    model: str = ""
    request: str = ""
    known_failing: bool = False
    # With repeats: each check's (passed, samples), and the distinct outputs with counts.
    counts: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    distribution: tuple[tuple[str, int], ...] = ()
    judges: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # With repeats: the samples on which every check passed (None: the snapshot predates it).
    passed_samples: int | None = None
    # Scored checks' scores (a ScoreSummary each: mean, spread, samples), by check label.
    scores: Mapping[str, Any] = field(default_factory=dict)

    def all_passed(self) -> tuple[int, int] | None:
        """(samples on which every check passed, samples): the key's count in its suite's pooled
        test. An older snapshot of one check has it in that check's count; of several, not."""
        if not self.counts:
            return (1 if all(self.checks.values()) else 0), 1
        samples = next(iter(self.counts.values()))[1]
        if self.passed_samples is not None:
            return self.passed_samples, samples
        if len(self.counts) == 1:
            return next(iter(self.counts.values()))
        return None

    def is_stale(self, label: str, judge: Mapping[str, Any] | None) -> bool:
        """Was this judged check graded by another judge (model, params, rubric) in the snapshot?

        Only a check the snapshot has can be stale; one recorded without its judge (written
        by hand) counts as graded by another judge: its flips cannot be trusted either.
        """
        if judge is None or label not in self.checks:
            return False
        return dict(self.judges.get(label) or {}) != dict(judge)

    def count(self, label: str) -> tuple[int, int] | None:
        """A check's (passed, samples) in the snapshot; a single sample counts as 1/1 or 0/1."""
        if label in self.counts:
            return self.counts[label]
        if label in self.checks:
            return (1 if self.checks[label] else 0, 1)
        return None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What this run produced for a key: an output and its check outcomes, or an error."""

    output: str | None
    checks: Mapping[str, bool] = field(default_factory=dict)
    error: str | None = None
    distribution: tuple[tuple[str, int], ...] = ()  # with repeats, capped as in snapshots
    # Judged checks whose judge changed since the snapshot: their flips are not counted.
    stale: frozenset[str] = frozenset()


def decide(baseline: Baseline | None, outcome: Outcome) -> Verdict:
    """One row of the verdict table. Order matters: the first row that applies wins."""
    if outcome.error is not None:
        return Verdict.ERROR
    if baseline is None:
        return Verdict.NEW
    regressed = improved = failing = stale_flip = False
    for label, passed in outcome.checks.items():
        before = baseline.checks.get(label)
        if label in outcome.stale and before is not None and before != passed:
            stale_flip = True  # a new judge's opinion: neither a regression nor an improvement
        elif before is True and not passed:
            regressed = True
        elif before is False and passed:
            improved = True
        elif not passed:
            # failed before too, or a check the snapshot did not have yet
            failing = True
    if regressed:
        return Verdict.REGRESSED
    if improved:
        return Verdict.IMPROVED
    if failing:
        return Verdict.FAILING
    if outcome.output != baseline.output or stale_flip:
        return Verdict.CHANGED
    return Verdict.UNCHANGED


def decide_sampled(baseline: Baseline | None, outcome: Outcome, changes: Mapping[str, str]) -> Verdict:
    """The verdict of a key with repeats, given each check's classified rate change.

    `changes` maps a check label to `drop`, `rise`, `inconclusive` or `same` (from the
    Fisher test, adjusted over the run). A check fails when its pass rule fails; a
    significant drop is a regression, a difference that is not significant is
    `inconclusive` (it fails only with --strict).
    """
    if outcome.error is not None:
        return Verdict.ERROR
    if baseline is None:
        return Verdict.NEW
    seen = set(changes.values())
    if "drop" in seen:
        return Verdict.REGRESSED
    if "rise" in seen:
        return Verdict.IMPROVED
    if not all(outcome.checks.values()):
        return Verdict.FAILING
    if "inconclusive" in seen:
        return Verdict.INCONCLUSIVE
    if outcome.distribution != baseline.distribution or _stale_counts_moved(baseline, outcome):
        return Verdict.CHANGED
    return Verdict.UNCHANGED


def _stale_counts_moved(baseline: Baseline, outcome: Outcome) -> bool:
    return any(outcome.checks.get(label) != baseline.checks.get(label) for label in outcome.stale)


def flags(
    baseline: Baseline | None, *, model: str, request: str, stale: frozenset[str] = frozenset()
) -> tuple[str, ...]:
    """Notes that explain a verdict: what changed in the call (or its judges) since the snapshot."""
    if baseline is None:
        return ()
    notes = []
    if baseline.request and baseline.request != request:
        notes.append("prompt changed")
    if baseline.model and baseline.model != model:
        notes.append("model changed")
    if stale:
        notes.append("stale")
    return tuple(notes)


def is_failure(verdict: Verdict, *, ci: bool, strict: bool = False, known_failing: bool = False) -> bool:
    """Does this verdict make the run fail (exit 1, or 3 for errors)?

    `new` fails only the CI gate: snapshots must be committed; locally they are written.
    """
    if verdict in (Verdict.REGRESSED, Verdict.ERROR):
        return True
    if verdict is Verdict.NEW:
        return ci
    if verdict is Verdict.FAILING:
        return not known_failing
    if verdict in (Verdict.CHANGED, Verdict.INCONCLUSIVE):
        return strict
    return False


MAX_DISTINCT_OUTPUTS = 5  # a snapshot keeps the most frequent outputs of a sampled key


def output_distribution(outputs: Sequence[str]) -> tuple[tuple[str, int], ...]:
    """The most frequent distinct outputs of a key's samples with their counts (ties keep
    first-seen order); none for a single sample."""
    if len(outputs) <= 1:
        return ()
    return tuple(Counter(outputs).most_common()[:MAX_DISTINCT_OUTPUTS])

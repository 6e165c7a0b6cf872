"""Keys with repeats: checks counted over samples, verdicts decided by statistics.

A check passes when its pass rule holds over the samples (`all` by default). Against the
snapshot, each check's pass count is compared with a one-sided Fisher exact test, and each
suite's pass rate on each target with an exact test stratified by key; every test of the
run is adjusted together (`suites.adjust_run`), so the chance of any false `regressed` in a
run stays under alpha. A difference that is not significant is `inconclusive`.
"""

from __future__ import annotations

import statistics
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from ..checks import run_check
from ..model import CheckContext, CheckResult, Job, Output, Result
from ..model.pooled import Stratum
from ..model.scoretests import ScoreSummary
from ..model.sequential import SequentialPlan, sequential_p
from ..model.stats import RateChange
from .suites import GroupCounts, SuiteVerdict, adjust_run
from .table import Baseline, Outcome, decide_sampled, output_distribution

ContextFn = Callable[[Job, Output], CheckContext]


def is_sampled(job: Job, baseline: Baseline | None) -> bool:
    """Statistics apply when this run or the snapshot has more than one sample."""
    return job.samples > 1 or bool(baseline and baseline.counts)


def evaluate_samples(job: Job, outputs: Sequence[Output], result: Result, context: ContextFn) -> Result:
    """Run every check on every sample; the result shows the most frequent output."""
    per_sample = [[run_check(spec, o.text, context(job, o)) for spec in job.checks] for o in outputs]
    checks = count_checks(job, per_sample)
    if job.adaptive:
        plan = SequentialPlan.auto(job.samples)
        taken = [look for look in plan.looks if look <= len(per_sample)]
        checks = tuple(
            replace(check, looks=tuple(sum(s[i].passed for s in per_sample[:look]) for look in taken))
            for i, check in enumerate(checks)
        )
        result = replace(
            result, max_repeat=job.samples, first_look_passed=all_passed_count(per_sample[: plan.looks[0]])
        )
    texts = tuple(output.answer for output in outputs)  # distinct tool-call sets count apart
    latencies = [o.latency_ms for o in outputs if o.latency_ms is not None]
    costs = [o.cost_usd for o in outputs]
    return replace(
        result,
        output=Counter(texts).most_common(1)[0][0],
        outputs=texts,
        checks=checks,
        all_passed=all_passed_count(per_sample),
        latency_ms=round(statistics.median(latencies), 1) if latencies else None,
        prompt_tokens=sum(o.prompt_tokens or 0 for o in outputs),
        completion_tokens=sum(o.completion_tokens or 0 for o in outputs),
        cost_usd=None if any(c is None for c in costs) else sum(c for c in costs if c is not None),
        cached=all(o.cached for o in outputs),
    )


def count_checks(job: Job, per_sample: Sequence[Sequence[CheckResult]]) -> tuple[CheckResult, ...]:
    """Each check over the samples (every sample ran the same checks, in the same order)."""
    if not per_sample:
        return ()
    return tuple(_counted(job, [sample[i] for sample in per_sample]) for i in range(len(per_sample[0])))


def all_passed_count(per_sample: Sequence[Sequence[CheckResult]]) -> int:
    """The samples on which every check passed: the key's count in its suite's pooled test."""
    return sum(all(check.passed for check in sample) for sample in per_sample)


def _counted(job: Job, per_sample: Sequence[CheckResult]) -> CheckResult:
    first = per_sample[0]
    passed = sum(check.passed for check in per_sample)
    reason = f"{passed}/{len(per_sample)} samples passed (pass: {job.pass_rule})"
    failure = next((check for check in per_sample if not check.passed), None)
    if failure is not None:
        reason += f"; e.g. {failure.reason}"
    scores = [check.score for check in per_sample]
    summary = ScoreSummary.of(scores) if all(score is not None for score in scores) else None  # type: ignore[arg-type]
    return CheckResult(
        label=first.label,
        passed=job.pass_rule.passes(passed, len(per_sample)),
        reason=reason,
        name=first.name,
        passed_count=passed,
        samples=len(per_sample),
        # One sample the check could not decide makes the count meaningless: the key errs.
        error=next((check.error for check in per_sample if check.error), None),
        judge=per_sample[0].judge if per_sample else None,
        score=None if summary is None else summary.mean,
        score_sd=None if summary is None else summary.sd,
    )


class SampleTests:
    """Every test of a run's sampled keys, adjusted together, kept in arrays: a few dozen bytes
    a test, whatever the keys' outputs. `keyed` gives (key number, result, baseline) in
    increasing key numbers; `of` hands each key's tests back in that order; `suites` holds
    the verdict of each suite (on each target) whose keys were pooled."""

    def __init__(self, keyed: Iterable[tuple[int, Result, Baseline | None]], *, alpha: float) -> None:
        self.keys, self.checks, self.counts = array("q"), array("i"), array("q")
        drops, rises = array("d"), array("d")
        groups: dict[tuple[str, str], GroupCounts] = {}
        for i, result, baseline in keyed:
            if baseline is None or result.error is not None:
                continue
            group = groups.setdefault((result.suite, result.target), GroupCounts([], [], []))
            stratum = pooled_stratum(result, baseline)
            if stratum is not None:
                group.strata.append(stratum)
                group.reach.append(_reach(stratum, result))
            for j, check in enumerate(result.checks):
                before = None if check.stale else baseline.count(check.label)
                if before is None:
                    continue
                counts = (before[0], before[1], *_count(check))
                change = _change(counts, check, result.max_repeat)
                group.tests.append(len(self.keys))
                group.keys.append(i)
                self.keys.append(i)
                self.checks.append(j)
                self.counts.extend(counts)
                drops.append(change.p_drop)
                rises.append(change.p_rise)
        # Drops and rises are two families, each over every test (see stats.adjust).
        adjusted = adjust_run(groups, drops, rises, alpha=alpha)
        self.p_drop, self.p_rise = array("d", adjusted.p_drop), array("d", adjusted.p_rise)
        self.suites: tuple[SuiteVerdict, ...] = adjusted.suites
        self._next = 0

    def of(self, key: int) -> dict[int, RateChange]:
        """The adjusted tests of key number `key`, by check index (ask in increasing keys)."""
        while self._next < len(self.keys) and self.keys[self._next] < key:
            self._next += 1
        found = {}
        while self._next < len(self.keys) and self.keys[self._next] == key:
            t = self._next
            k_before, n_before, k_after, n_after = self.counts[4 * t : 4 * t + 4]
            found[self.checks[t]] = RateChange(
                k_before, n_before, k_after, n_after, p_drop=self.p_drop[t], p_rise=self.p_rise[t]
            )
            self._next += 1
        return found


def _change(counts: tuple[int, int, int, int], check: CheckResult, max_repeat: int | None) -> RateChange:
    """A check's test: Fisher's on its counts, or with `repeat: auto` the sequential p-value
    over the looks it took (valid however early it stopped)."""
    k_before, n_before, k_after, n_after = counts
    if max_repeat is None or not check.looks:
        return RateChange.compare(k_before=k_before, n_before=n_before, k_after=k_after, n_after=n_after)
    plan = SequentialPlan.auto(max_repeat)
    return RateChange(
        *counts,
        p_drop=sequential_p(k_before, n_before, check.looks, plan, alternative="less"),
        p_rise=sequential_p(k_before, n_before, check.looks, plan, alternative="greater"),
    )


def _reach(stratum: Stratum, result: Result) -> tuple[int, int, float]:
    """(n_before, the most samples the key could take, its last look's share of its level)."""
    if result.max_repeat is None:
        return stratum.n_before, stratum.n_after, 1.0
    plan = SequentialPlan.auto(result.max_repeat)
    return stratum.n_before, plan.worst_case, plan.spend[-1]


def pooled_stratum(result: Result, baseline: Baseline) -> Stratum | None:
    """The key's samples that passed every check, now and in the snapshot; None when the two
    counts do not count the same checks (one added or removed, or graded by another judge).
    With `repeat: auto` only the first look counts: its size is fixed, however the key went on."""
    before = baseline.all_passed()
    labels = {check.label for check in result.checks}
    if before is None or result.all_passed is None or labels != set(baseline.checks):
        return None
    if any(check.stale for check in result.checks):
        return None
    if result.max_repeat is not None and result.first_look_passed is not None:
        first = SequentialPlan.auto(result.max_repeat).looks[0]
        return Stratum(before[0], before[1], result.first_look_passed, min(first, len(result.outputs)))
    return Stratum(before[0], before[1], result.all_passed, max(len(result.outputs), 1))


def _count(check: CheckResult) -> tuple[int, int]:
    if check.samples is not None:
        return check.passed_count or 0, check.samples
    return (1 if check.passed else 0), 1


def judge_sample(
    result: Result, baseline: Baseline | None, changes: dict[int, RateChange], *, alpha: float
) -> Result:
    """A sampled key's verdict, from its tests as `sample_tests` adjusted them."""
    checks = list(result.checks)
    classes: dict[str, str] = {}
    for index, change in changes.items():
        check = checks[index]
        classes[check.label] = change.classify(alpha)
        checks[index] = replace(
            check,
            before=(change.k_before, change.n_before),
            p_value=None if change.direction == "same" else round(change.p_value, 6),
        )
    outcome = Outcome(
        output=result.output,
        checks={check.label: check.passed for check in checks},
        error=result.error,
        distribution=output_distribution(result.outputs) if result.output is not None else (),
        stale=frozenset(check.label for check in checks if check.stale),
    )
    return replace(result, checks=tuple(checks), verdict=decide_sampled(baseline, outcome, classes))

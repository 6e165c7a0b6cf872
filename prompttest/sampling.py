"""Keys with repeats: checks counted over samples, verdicts decided by statistics.

A check passes when its pass rule holds over the samples (`all` by default). Against the
snapshot, each check's pass count is compared with a one-sided Fisher exact test; the
p-values of every (key, check) of the run are adjusted together with Holm's method, so
the chance of any false `regressed` in a run stays under alpha. A difference that is
not significant is `inconclusive`.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from .checks import run_check
from .model import CheckContext, CheckResult, Job, Output, Result
from .snapshots import entry_from
from .stats import RateChange, adjust
from .verdicts import Baseline, Outcome, decide_sampled

ContextFn = Callable[[Job, Output], CheckContext]


def is_sampled(job: Job, baseline: Baseline | None) -> bool:
    """Statistics apply when this run or the snapshot has more than one sample."""
    return job.samples > 1 or bool(baseline and baseline.counts)


def evaluate_samples(job: Job, outputs: Sequence[Output], result: Result, context: ContextFn) -> Result:
    """Run every check on every sample; the result shows the most frequent output."""
    checks = tuple(_count_check(job, spec_index, outputs, context) for spec_index in range(len(job.checks)))
    texts = tuple(output.text for output in outputs)
    latencies = [o.latency_ms for o in outputs if o.latency_ms is not None]
    costs = [o.cost_usd for o in outputs]
    return replace(
        result,
        output=Counter(texts).most_common(1)[0][0],
        outputs=texts,
        checks=checks,
        latency_ms=round(statistics.median(latencies), 1) if latencies else None,
        prompt_tokens=sum(o.prompt_tokens or 0 for o in outputs),
        completion_tokens=sum(o.completion_tokens or 0 for o in outputs),
        cost_usd=None if any(c is None for c in costs) else sum(c for c in costs if c is not None),
        cached=all(o.cached for o in outputs),
    )


def _count_check(job: Job, index: int, outputs: Sequence[Output], context: ContextFn) -> CheckResult:
    spec = job.checks[index]
    per_sample = [run_check(spec, output.text, context(job, output)) for output in outputs]
    passed = sum(check.passed for check in per_sample)
    reason = f"{passed}/{len(per_sample)} samples passed (pass: {job.pass_rule})"
    failure = next((check for check in per_sample if not check.passed), None)
    if failure is not None:
        reason += f"; e.g. {failure.reason}"
    return CheckResult(
        label=spec.label,
        passed=job.pass_rule.passes(passed, len(per_sample)),
        reason=reason,
        name=spec.name,
        passed_count=passed,
        samples=len(per_sample),
        # One sample the check could not decide makes the count meaningless: the key errs.
        error=next((check.error for check in per_sample if check.error), None),
        judge=per_sample[0].judge if per_sample else None,
    )


@dataclass(frozen=True)
class _Test:
    result: int
    check: int
    change: RateChange


def sample_tests(keyed: Iterable[tuple[int, Result, Baseline | None]]) -> dict[int, dict[int, RateChange]]:
    """Every pass-rate test of the sampled keys, adjusted together (Holm), by the key's
    number and then the check's index. Only the tests are held, not the results."""
    tests = [
        _Test(i, j, RateChange.compare(k_before=before[0], n_before=before[1], k_after=k, n_after=n))
        for i, result, baseline in keyed
        if baseline is not None and result.error is None
        for j, check in enumerate(result.checks)
        if not check.stale and (before := baseline.count(check.label)) is not None
        for k, n in [_count(check)]
    ]
    adjusted = adjust([t.change for t in tests], "holm")
    by_result: dict[int, dict[int, RateChange]] = {}
    for test, change in zip(tests, adjusted, strict=True):
        by_result.setdefault(test.result, {})[test.check] = change
    return by_result


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
        distribution=entry_from(result).distribution if result.output is not None else (),
        stale=frozenset(check.label for check in checks if check.stale),
    )
    return replace(result, checks=tuple(checks), verdict=decide_sampled(baseline, outcome, classes))

"""A job's answers in, its Result out: checks run, verdict decided, change described.

`KeyResults` decides each key the moment its answers are in and keeps the results in a
spool on disk; keys with repeats wait for the run's end, where their tests are adjusted
together; a complete plan's snapshot entries that no key produced are `obsolete`.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from dataclasses import replace
from functools import partial

from ..calls.runner import Answer
from ..checks import calls_for, run_check
from ..checks.similarity import classify_change
from ..errors import EXIT_OK
from ..model import Call, CheckContext, CheckError, CheckResult, Job, Output, Result, Suite, Verdict
from ..records.snapshots import Entry
from ..records.spool import EntrySpool, ResultSpool
from ..verdicts.sampling import ContextFn, SampleTests, evaluate_samples, is_sampled, judge_sample
from ..verdicts.table import Baseline, Outcome, decide, flags
from .plan import Plan


def entry_name(job: Job) -> str:
    """The job's entry in its suite's snapshot file: `case@target`."""
    return f"{job.case}@{job.target}"


def judged_calls(job: Job, answers: Mapping[str, Answer]) -> list[Call]:
    """The calls the job's judged checks need, for every one of its outputs that arrived."""
    calls = []
    for call in job.calls():
        output = answers[call.cache_key()].output
        if output is None:
            continue
        ctx = _context(job, output)
        for spec in job.checks:
            calls += calls_for(spec, output.text, ctx)
    return calls


def _judging_cost(job: Job, answers: Mapping[str, Answer]) -> float | None:
    """What the key's judged calls cost this run (cache hits are free; None: a price is
    unknown). A call two keys share is paid once, by the key whose call brought it."""
    own = {call.cache_key() for call in job.calls()}
    total: float | None = 0.0
    for key, answer in answers.items():
        if key in own or answer.reused or answer.output is None or answer.output.cached:
            continue
        cost = answer.output.cost_usd
        total = None if total is None or cost is None else total + cost
    return total


def _answer_lookup(answers: Mapping[str, Answer]) -> Callable[[Call], Output]:
    def answer_for(call: Call) -> Output:
        answer = answers.get(call.cache_key())
        if answer is None:
            raise CheckError(f"no answer was fetched for this {call.kind} call to {call.model}")
        if answer.output is None:
            raise CheckError(answer.error or f"{call.model} gave no answer")
        return answer.output

    return answer_for


def _result(job: Job, answers: list[Answer], entry: Entry | None, context: ContextFn) -> Result:
    """The key's result from its samples' answers; an error in any sample is the key's error."""
    baseline = entry.baseline() if entry else None
    error = next((a.error for a in answers if a.output is None), None)
    result = Result(
        suite=job.suite,
        case=job.case,
        target=job.target,
        model=job.call.model,
        verdict=decide(baseline, Outcome(output=None, error=error)),
        output=None,
        error=error,
        request=job.call.request_hash(),
        attempts=sum(a.attempts for a in answers),
        known_failing=bool(entry and entry.known_failing),
        snapshot_output=entry.output if entry else None,
        snapshot_checks=dict(entry.checks) if entry else None,
        snapshot_tool_calls=entry.tool_calls if entry else (),
        snapshot_refusal=entry.refusal if entry else None,
        suite_path=job.suite_path,
        case_file=job.case_file,
        case_line=job.case_line,
    )
    outputs = [a.output for a in answers if a.output is not None]
    if error is not None:
        return result
    if is_sampled(job, baseline):
        # The verdict is decided run-wide later (SampleTests), unless a check erred.
        return _settle_checks(evaluate_samples(job, outputs, result, context), baseline)
    output = outputs[0]
    checks = tuple(run_check(spec, output.text, context(job, output)) for spec in job.checks)
    result = _settle_checks(
        replace(
            result,
            output=output.text,
            checks=checks,
            latency_ms=output.latency_ms,
            prompt_tokens=output.prompt_tokens,
            completion_tokens=output.completion_tokens,
            cost_usd=output.cost_usd,
            cached=output.cached,
            tool_calls=output.tool_calls,
            refusal=output.refusal,
        ),
        baseline,
    )
    if result.error is not None:
        return result
    stale = frozenset(check.label for check in result.checks if check.stale)
    outcome = Outcome(output=output.answer, checks=_outcomes(result.checks), stale=stale)
    return replace(result, verdict=decide(baseline, outcome))


def _settle_checks(result: Result, baseline: Baseline | None) -> Result:
    """Mark judged checks whose judge changed (`stale`), set the flags, and turn a check
    that could not decide into the key's error."""
    checks = tuple(
        replace(check, stale=True, reason=f"{check.reason} [stale: another judge graded the snapshot]")
        if baseline is not None and baseline.is_stale(check.label, check.judge)
        else check
        for check in result.checks
    )
    stale = frozenset(check.label for check in checks if check.stale)
    result = replace(
        result,
        checks=checks,
        flags=flags(baseline, model=result.model, request=result.request, stale=stale),
    )
    failed = next((check for check in checks if check.error), None)
    if failed is None:
        return result
    return replace(
        result, error=f"check '{failed.label}' could not decide: {failed.error}", verdict=Verdict.ERROR
    )


def _describe_change(result: Result) -> Result:
    """Score how far the output moved from the snapshot's, and say whether its meaning did."""
    if result.output is None or result.snapshot_output is None or result.answer == result.snapshot_answer:
        return result
    calls_moved = (result.tool_calls, result.refusal) != (result.snapshot_tool_calls, result.snapshot_refusal)
    if result.output == result.snapshot_output:  # the same text: only the tool calls moved
        return replace(result, change="tool calls changed" if calls_moved else None)
    summary = classify_change(result.snapshot_output, result.output)
    change = f"{summary.explanation}; tool calls changed" if calls_moved else summary.explanation
    return replace(result, similarity=round(summary.similarity, 3), change=change)


def _context(job: Job, output: Output, *, answer_for: Callable[[Call], Output] | None = None) -> CheckContext:
    context = CheckContext(
        vars=job.vars,
        model=job.call.model,
        latency_ms=output.latency_ms,
        cost_usd=output.cost_usd,
        prompt_tokens=output.prompt_tokens,
        completion_tokens=output.completion_tokens,
        suite=job.suite,
        case=job.case,
        target=job.target,
        messages=job.call.messages,
        tool_calls=output.tool_calls,
        finish_reason=output.finish_reason,
        refusal=output.refusal,
        tools=tuple(job.call.params.get("tools") or ()),
    )
    return context if answer_for is None else replace(context, answer_for=answer_for)


def _outcomes(checks: Sequence[CheckResult]) -> dict[str, bool]:
    return {check.label: check.passed for check in checks}


class KeyResults:
    """Each key's result, decided the moment its answers are in, kept in a spool on disk."""

    def __init__(
        self, the_plan: Plan, baselines: EntrySpool, *, alpha: float, gate: Callable[[Result], int]
    ) -> None:
        self.plan, self.baselines, self.alpha = the_plan, baselines, alpha
        self.gate = gate  # the key's exit code in the run's mode: `passed` says what it makes of the run
        self.spool = ResultSpool()
        self.count = 0
        # Sampled keys wait for the run's end (their tests are adjusted together), on disk too.
        self.sampled = ResultSpool()

    def decide(self, item: tuple[int, Job], answers: Mapping[str, Answer]) -> None:
        position, job = item
        name = entry_name(job)
        entry = self.baselines.get(job.suite, name)
        if entry is not None:
            self.baselines.produced(job.suite, name)
        context = partial(_context, answer_for=_answer_lookup(answers))
        result = _result(job, [answers[call.cache_key()] for call in job.calls()], entry, context)
        result = replace(result, judge_cost_usd=_judging_cost(job, answers))
        baseline = entry.baseline() if entry else None
        if is_sampled(job, baseline):
            self.sampled.add(position, result)
        else:
            self.keep(position, _describe_change(result))

    def _sampled(self) -> Iterator[tuple[int, Result, Baseline | None]]:
        for position, result in self.sampled.positioned():
            entry = self.baselines.get(result.suite, f"{result.case}@{result.target}")
            yield position, result, entry.baseline() if entry else None

    def keep(self, position: int, result: Result) -> None:
        result = replace(result, fails_run=self.gate(result) != EXIT_OK)
        self.spool.add(position, result)
        self.count = max(self.count, position + 1)

    def finish(self) -> ResultSpool:
        """The spool, with the sampled keys' verdicts and (for a complete plan) obsolete entries."""
        if self.sampled:
            tests = SampleTests(self._sampled())
            for position, result, baseline in self._sampled():
                judged = judge_sample(result, baseline, tests.of(position), alpha=self.alpha)
                self.keep(position, _describe_change(judged))
        if self.plan.complete:
            for suite in self.plan.suites:
                for entry in self.baselines.unproduced(suite.name):
                    if self.plan.tells_obsolete(entry.target):
                        self.keep(self.count, _obsolete(suite, entry))
        return self.spool


def obsolete_entries(
    suites: Sequence[Suite],
    baselines: Mapping[str, Mapping[str, Entry]],
    produced: Mapping[str, Container[str]],
    *,
    only_targets: Container[str] | None = None,
) -> list[Result]:
    """Snapshot entries that no key of a complete plan produces any more (with -m, only
    those of `only_targets`, the targets it ran)."""
    return [
        _obsolete(suite, entry)
        for suite in suites
        for name, entry in sorted(baselines[suite.name].items())
        if name not in produced[suite.name] and (only_targets is None or entry.target in only_targets)
    ]


def _obsolete(suite: Suite, entry: Entry) -> Result:
    return Result(
        suite=suite.name,
        case=entry.case,
        target=entry.target,
        model=entry.model,
        verdict=Verdict.OBSOLETE,
        output=None,
        snapshot_output=entry.output,
        snapshot_checks=dict(entry.checks),
        suite_path=suite.path,
    )

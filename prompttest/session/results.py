"""A job's answers in, its Result out: checks run, verdict decided, change described.

`KeyResults` decides each key the moment its answers are in and keeps the results in a
spool on disk; keys with repeats wait for the run's end, where their tests are adjusted
together; a complete plan's snapshot entries that no key produced are `obsolete`.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from functools import partial

from ..calls.runner import Answer
from ..checks import calls_for, run_check
from ..checks.similarity import classify_change
from ..errors import EXIT_OK
from ..model import Call, CheckContext, CheckError, CheckResult, Job, Output, Result, Suite, Verdict
from ..model.familywise import initial_key_level
from ..model.outputs import transcript_text
from ..model.sequential import SequentialPlan, next_step
from ..records.snapshots import Entry
from ..records.spool import EntrySpool, ResultSpool
from ..verdicts.sampling import (
    ContextFn,
    SampleTests,
    all_passed_count,
    count_checks,
    evaluate_samples,
    is_sampled,
    judge_sample,
)
from ..verdicts.scores import SCORE_DROPPED, ScoreDrop, ScoreTests
from ..verdicts.suites import SuiteVerdict
from ..verdicts.table import Baseline, Outcome, decide, flags
from .comparing import compare_calls, compare_spec, compared, judge_preference, sign_tests
from .conversation import Grading, LoadFn, Walk, completion, gradings, not_reached, walk
from .plan import Plan


def entry_name(job: Job) -> str:
    """The job's entry in its suite's snapshot file: `case@target`."""
    return f"{job.case}@{job.target}"


def next_calls(job: Job, answers: Mapping[str, Answer], *, python: LoadFn) -> list[Call]:
    """What the job asks once these answers are in: a conversation's next turns (one call a
    sample, while any goes on), then the calls its judged checks need."""
    if not job.is_conversation:
        return judged_calls(job, answers)
    walks = [walk(job, first, answers, python=python) for first in job.calls()]
    pending = [walked.next_call for walked in walks if walked.next_call is not None]
    if pending:
        return pending
    calls = []
    for walked in walks:
        for grading in gradings(job, walked) if walked.error is None else ():
            if grading.step is not None and grading.step.answer.output is not None:
                ctx = _context(job, grading.step.answer.output, step=grading)
                calls += calls_for(grading.spec, grading.step.answer.output.text, ctx)
    return calls


def judged_calls(
    job: Job, answers: Mapping[str, Answer], samples: Sequence[Call] | None = None
) -> list[Call]:
    """The calls the job's judged checks need, for every one of its outputs that arrived
    (`samples`: of these sample calls only; default: all of the job's)."""
    calls = []
    for call in job.calls() if samples is None else samples:
        output = answers[call.cache_key()].output
        if output is None:
            continue
        ctx = _context(job, output)
        for spec in job.checks:
            calls += calls_for(spec, output.text, ctx)
    return calls


def _judging_cost(job: Job, answers: Mapping[str, Answer], python: LoadFn) -> float | None:
    """What the key's judged calls cost this run (cache hits are free; None: a price is
    unknown). A call two keys share is paid once, by the key whose call brought it."""
    own = {call.cache_key() for call in job.calls()}
    if job.is_conversation:  # every turn's calls are the key's own, not its judges'
        walks = [walk(job, first, answers, python=python) for first in job.calls()]
        own |= {step.call.cache_key() for walked in walks for step in walked.steps}
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


def _skeleton(job: Job, entry: Entry | None, error: str | None, attempts: int) -> Result:
    """The key's result before its checks: what it is, its snapshot, or its error."""
    baseline = entry.baseline() if entry else None
    return Result(
        suite=job.suite,
        case=job.case,
        target=job.target,
        model=job.call.model,
        verdict=decide(baseline, Outcome(output=None, error=error)),
        output=None,
        error=error,
        request=job.request_hash(),
        attempts=attempts,
        known_failing=bool(entry and entry.known_failing),
        snapshot_output=entry.output if entry else None,
        snapshot_checks=dict(entry.checks) if entry else None,
        snapshot_tool_calls=entry.tool_calls if entry else (),
        snapshot_refusal=entry.refusal if entry else None,
        snapshot_transcript=entry.transcript if entry else (),
        suite_path=job.suite_path,
        case_file=job.case_file,
        case_line=job.case_line,
    )


def _result(job: Job, answers: list[Answer], entry: Entry | None, context: ContextFn) -> Result:
    """The key's result from its samples' answers; an error in any sample is the key's error."""
    baseline = entry.baseline() if entry else None
    error = next((a.error for a in answers if a.output is None), None)
    result = _skeleton(job, entry, error, sum(a.attempts for a in answers))
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
            metadata=output.metadata,
        ),
        baseline,
    )
    if result.error is not None:
        return result
    stale = frozenset(check.label for check in result.checks if check.stale)
    outcome = Outcome(output=output.answer, checks=_outcomes(result.checks), stale=stale)
    return replace(result, verdict=decide(baseline, outcome))


def _conversation_result(
    job: Job, answers: Mapping[str, Answer], entry: Entry | None, context: ContextFn, python: LoadFn
) -> Result:
    """A conversation's result: every sample walked turn by turn, its checks on the answers
    of their turns, a failed call the key's error (naming its turn)."""
    walks = [walk(job, first, answers, python=python) for first in job.calls()]
    error = next((walked.error for walked in walks if walked.error), None)
    result = _skeleton(job, entry, error, _attempts(walks))
    if error is not None:
        return result
    per_sample = [_conversation_checks(job, walked, context) for walked in walks]
    said = [walked.transcript(job) for walked in walks]
    outputs = [step.answer.output for walked in walks for step in walked.steps if step.answer.output]
    costs = [output.cost_usd for output in outputs]
    latencies = [sum(s.answer.output.latency_ms or 0 for s in w.steps if s.answer.output) for w in walks]
    result = replace(
        result,
        output=said[0][-1].text if said[0] else "",
        checks=tuple(per_sample[0]) if len(walks) == 1 else count_checks(job, per_sample),
        all_passed=all_passed_count(per_sample) if len(walks) > 1 else None,
        transcript=said[0] if len(walks) == 1 else (),
        outputs=tuple(transcript_text(s) for s in said) if len(walks) > 1 else (),
        latency_ms=round(statistics.median(latencies), 1) if latencies else None,
        prompt_tokens=sum(output.prompt_tokens or 0 for output in outputs),
        completion_tokens=sum(output.completion_tokens or 0 for output in outputs),
        cost_usd=None if any(cost is None for cost in costs) else sum(c for c in costs if c is not None),
        cached=all(output.cached for output in outputs),
        attempts=_attempts(walks),
    )
    baseline = entry.baseline() if entry else None
    result = _settle_checks(result, baseline)
    if result.error is not None or len(walks) > 1:
        return result  # a sampled key's verdict is decided run-wide, later
    stale = frozenset(check.label for check in result.checks if check.stale)
    outcome = Outcome(output=result.answer, checks=_outcomes(result.checks), stale=stale)
    return replace(result, verdict=decide(baseline, outcome))


def _conversation_checks(job: Job, walked: Walk, context: ContextFn) -> list[CheckResult]:
    checks = [completion(job, walked)]
    for grading in gradings(job, walked):
        output = grading.step.answer.output if grading.step else None
        if output is None:
            checks.append(not_reached(grading, walked))
        else:
            checks.append(run_check(grading.spec, output.text, context(job, output, step=grading)))
    return checks


def stop_level(alpha: float, keys: int) -> float:
    """The level a `repeat: auto` key's looks are judged at while the run goes on: a key's
    first share of alpha when suites are pooled (familywise), the least it will be tested at.
    Below it a key may stop: it will be `regressed` whatever the others do. (Any stopping rule
    keeps the sequential p-values valid; this one only decides how many samples are spent.)"""
    return initial_key_level(alpha, suites=1, keys=max(keys, 1))


def _taken(job: Job, answers: Mapping[str, Answer]) -> list[Call]:
    """The sample calls answered: all of them, or with `repeat: auto` the looks drawn so far."""
    calls = job.calls()
    if not job.adaptive:
        return calls
    taken = 0
    while taken < len(calls) and calls[taken].cache_key() in answers:
        taken += 1
    return calls[:taken]


def next_look(
    job: Job, outputs: Sequence[Output], baseline: Baseline, context: ContextFn, *, level: float
) -> int:
    """How many more samples a `repeat: auto` key draws: 0 once every check's comparison with
    the snapshot is decided (or the last look is taken), else up to its next look."""
    plan = SequentialPlan.auto(job.samples)
    if len(outputs) not in plan.looks:
        return 0  # not where a look is planned (a snapshot taken whole, an interrupted run)
    per_sample = [[run_check(spec, o.text, context(job, o)) for spec in job.checks] for o in outputs]
    draw = 0
    taken = [look for look in plan.looks if look <= len(outputs)]
    for i, first in enumerate(per_sample[0] if per_sample else ()):
        before = None if baseline.is_stale(first.label, first.judge) else baseline.count(first.label)
        if before is None:
            continue
        looks = [sum(sample[i].passed for sample in per_sample[:look]) for look in taken]
        step = next_step(before[0], before[1], looks, plan, level=level)
        draw = max(draw, step.draw)
    return draw


def _attempts(walks: Sequence[Walk]) -> int:
    return sum(step.answer.attempts for walked in walks for step in walked.steps)


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


def _context(
    job: Job,
    output: Output,
    *,
    answer_for: Callable[[Call], Output] | None = None,
    step: Grading | None = None,
) -> CheckContext:
    """What a check may read besides the text; `step`: in a conversation, the graded answer's
    turn (its call's messages, and the transcript up to it for judges)."""
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
        metadata=output.metadata,
    )
    if step is not None and step.step is not None:
        # A turn's answer: its last text, and every tool call it made on the way there.
        context = replace(
            context, messages=step.step.call.messages, transcript=step.transcript, tool_calls=step.tool_calls
        )
    return context if answer_for is None else replace(context, answer_for=answer_for)


def _outcomes(checks: Sequence[CheckResult]) -> dict[str, bool]:
    return {check.label: check.passed for check in checks}


class KeyResults:
    """Each key's result, decided the moment its answers are in, kept in a spool on disk."""

    def __init__(
        self,
        the_plan: Plan,
        baselines: EntrySpool,
        *,
        alpha: float,
        gate: Callable[[Result], int],
        python: LoadFn,
        update: bool = False,
    ) -> None:
        self.plan, self.baselines, self.alpha = the_plan, baselines, alpha
        self.update = update  # an accepted run's keys draw every sample: a snapshot's count is fixed
        self.python = python  # loads the functions of `tool_results: {python: module:function}`
        self.gate = gate  # the key's exit code in the run's mode: `passed` says what it makes of the run
        self.spool = ResultSpool()
        self.count = 0
        # Sampled keys wait for the run's end (their tests are adjusted together), on disk too.
        self.sampled = ResultSpool()
        self.suites: tuple[SuiteVerdict, ...] = ()  # the pooled suites' verdicts, once finished
        self.scores = ScoreTests()  # scored checks against their snapshots' scores
        self.score_drops: tuple[ScoreDrop, ...] = ()  # suites whose scores dropped, once finished

    def first_calls(self, job: Job) -> list[Call]:
        """The calls a key starts with: `repeat: auto` draws its first look when it has a
        snapshot to compare with (a key without one, or one being accepted, takes them all)."""
        calls = job.calls()
        if not job.adaptive or self.update or self.baselines.get(job.suite, entry_name(job)) is None:
            return calls
        return calls[: SequentialPlan.auto(job.samples).looks[0]]

    def follow_up(self, item: tuple[int, Job], answers: Mapping[str, Answer]) -> list[Call]:
        """What the key asks once these answers are in: judged checks' calls, a conversation's
        next turns, and with `repeat: auto` the next look's samples while it is undecided."""
        job = item[1]
        if not job.adaptive:
            asked = next_calls(job, answers, python=self.python)
            pending = [call for call in asked if call.cache_key() not in answers]
            return pending or self._compare_calls(job, answers)  # the judge compares graded outputs
        taken = _taken(job, answers)
        judged = judged_calls(job, answers, taken)
        if any(call.cache_key() not in answers for call in judged):
            return judged
        entry = self.baselines.get(job.suite, entry_name(job))
        if entry is None or any(answers[call.cache_key()].output is None for call in taken):
            return []
        context = partial(_context, answer_for=_answer_lookup(answers))
        outputs = [answers[call.cache_key()].output for call in taken]
        draw = next_look(job, outputs, entry.baseline(), context, level=self._stop_level())
        return job.calls()[len(taken) : len(taken) + draw] or self._compare_calls(job, answers)

    def _compare_calls(self, job: Job, answers: Mapping[str, Answer]) -> list[Call]:
        """The compare judge's two calls for each output that differs from the snapshot's."""
        if not compare_spec(job):
            return []
        entry = self.baselines.get(job.suite, entry_name(job))
        outputs = [answers[call.cache_key()].output for call in _taken(job, answers)]
        if entry is None or any(output is None for output in outputs):
            return []
        return compare_calls(job, [o for o in outputs if o is not None], entry.baseline())

    def _stop_level(self) -> float:
        return stop_level(self.alpha, self.plan.keys)

    def decide(self, item: tuple[int, Job], answers: Mapping[str, Answer]) -> None:
        position, job = item
        name = entry_name(job)
        entry = self.baselines.get(job.suite, name)
        if entry is not None:
            self.baselines.produced(job.suite, name)
        context = partial(_context, answer_for=_answer_lookup(answers))
        if job.is_conversation:
            result = _conversation_result(job, answers, entry, context, self.python)
        else:
            taken = [answers[call.cache_key()] for call in _taken(job, answers)]
            result = _result(job, taken, entry, context)
        result = replace(result, judge_cost_usd=_judging_cost(job, answers, self.python))
        baseline = entry.baseline() if entry else None
        if compare_spec(job) and not job.is_conversation:
            result = compared(job, result, baseline, answers, sampled=is_sampled(job, baseline))
        if baseline is not None and baseline.scores and result.error is None:
            self.scores.add(position, job.suite, job.target, result.checks, baseline.scores)
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
        self.suites, self.score_drops = judge_together(
            self._sampled, self.scores, alpha=self.alpha, keep=self.keep
        )
        if self.plan.complete:
            for suite in self.plan.suites:
                for entry in self.baselines.unproduced(suite.name):
                    if self.plan.tells_obsolete(entry.target):
                        self.keep(self.count, _obsolete(suite, entry))
        return self.spool


def judge_together(
    sampled: Callable[[], Iterable[tuple[int, Result, Baseline | None]]],
    scores: ScoreTests,
    *,
    alpha: float,
    keep: Callable[[int, Result], None],
) -> tuple[tuple[SuiteVerdict, ...], tuple[ScoreDrop, ...]]:
    """The run-wide tests: every sampled key's checks with its suites' pooled tests in one
    procedure, its compare judge's sign test, and the scores; each judged key handed to
    `keep` (`sampled` is gone through three times, in increasing positions). Returns the
    pooled suites' verdicts and the suites whose scores dropped."""
    dropped, drops = scores.decide(alpha)
    tests = SampleTests(sampled(), alpha=alpha)
    preferences = sign_tests((position, result) for position, result, _ in sampled())
    for position, result, baseline in sampled():
        judged = judge_sample(result, baseline, tests.of(position), alpha=alpha)
        judged = judge_preference(judged, preferences.get(position), alpha=alpha)
        # Only a key with repeats has scores enough for a test of its own.
        flags = tuple(flag for flag in judged.flags if flag != SCORE_DROPPED)
        flags += (SCORE_DROPPED,) if position in dropped else ()
        keep(position, _describe_change(replace(judged, flags=flags)))
    return tests.suites, drops


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

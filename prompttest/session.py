"""`prompttest run` as plain Python: suite files in, a RunRecord out, snapshots updated.

suite files -> jobs -> answers (cache | provider) -> judged checks' calls (same path)
-> checks -> verdicts -> snapshots (locally) -> run record
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property, partial
from pathlib import Path

from .cache import ResponseCache
from .checks import Defaults, calls_for, needs_resolving, resolve_check, run_check
from .config import Project, read_pyproject
from .errors import EXIT_FAILED, EXIT_OK, EXIT_PROVIDER, SuiteError
from .jobs import iter_jobs, iter_keys
from .locking import snapshot_lock
from .model import (
    Call,
    CheckContext,
    CheckError,
    CheckResult,
    Job,
    Output,
    Result,
    Suite,
    Target,
    Verdict,
    key_matches,
)
from .runner import Answer, CallOptions, ProgressFn, answer_stream
from .runs import RunRecord, write_run
from .safety import check_endpoint_settings, check_settings, check_suites
from .sampling import ContextFn, SampleTests, evaluate_samples, is_sampled, judge_sample
from .secrets import Redactor
from .shards import Shard
from .similarity import classify_change
from .snapshots import Entry, entry_from, snapshot_path, staged, write_entries
from .spool import EntrySpool, ResultSpool, matching
from .stats import DEFAULT_ALPHA
from .suite import load_suites
from .verdicts import Baseline, Outcome, decide, flags, is_failure


@dataclass(frozen=True)
class RunOptions:
    """What `prompttest run` was asked to do. Unset values come from the project settings."""

    paths: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    api_base: str | None = None
    update: bool = False
    ci: bool = False
    strict: bool = False
    concurrency: int | None = None
    timeout: float | None = None
    retries: int | None = None
    use_cache: bool = True
    offline: bool = False
    filters: tuple[str, ...] = ()
    repeat: int | None = None  # samples per key, instead of the suites' `repeat:`
    alpha: float = DEFAULT_ALPHA  # significance level of the statistical verdicts
    max_cost: float | None = None  # USD: no new call once the spend reaches it
    safe: bool = False  # suites from untrusted PRs: refuse code, outside files, suite endpoints
    shard: Shard | None = None  # --shard I/N: only the keys of that slice
    # Exactly these result keys (callers that select keys themselves, such as the pytest plugin).
    keys: frozenset[str] | None = None


@dataclass(frozen=True)
class Plan:
    """The suites a run loads, the jobs they make, and whether it covers whole suites.

    Jobs are made anew each time they are gone through (`iter_jobs`), so a run never
    holds all of them; `jobs` keeps them, for the commands that list them.
    """

    suites: tuple[Suite, ...]
    complete: bool  # no filter, shard or model override: obsolete entries can be told
    make_jobs: Callable[[], Iterator[Job]] = field(repr=False, compare=False)
    calls: int = 0  # the calls its jobs make (samples included), once checks were resolved

    def iter_jobs(self) -> Iterator[Job]:
        return self.make_jobs()

    @cached_property
    def jobs(self) -> tuple[Job, ...]:
        return tuple(self.make_jobs())


@dataclass
class RunOutcome:
    """A finished run: its record, where it was written, which snapshot files changed."""

    record: RunRecord
    record_path: Path | None
    snapshots_written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how the run went, for the terminal


def plan(project: Project, options: RunOptions, *, resolve: bool = True) -> Plan:
    """Load and validate every suite, then expand it into jobs (nothing is called).

    Judged checks get the project's judge and embedding model here, and custom checks
    are imported here: a missing judge or a typo in a module stops the run before it
    costs anything (`resolve=False` skips that, for listing keys). With `safe`, what
    --safe refuses is refused before any of it.
    """
    paths = list(options.paths) or [str(p) for p in project.suite_paths()]
    confine = project.root if options.safe else None
    if options.safe:
        settings = project.settings
        check_settings([("snapshots", settings.snapshots), ("state", settings.state)], project.root)
        pyproject = project.root / "pyproject.toml"
        if pyproject.is_file():
            check_endpoint_settings(read_pyproject(pyproject), os.environ, str(pyproject))
    suites = load_suites(paths, confine_to=confine)
    if options.safe:
        # With -m the suites' own targets (and their endpoints) are not used.
        check_suites(suites, targets=not options.models)
    override = (
        tuple(Target(id=model, model=model, api_base=options.api_base) for model in options.models) or None
    )
    default = Target(id=project.settings.target, model=project.settings.target)
    defaults = _check_defaults(project) if resolve else None

    def make_jobs() -> Iterator[Job]:
        for suite in suites:
            for job in iter_jobs(
                suite, targets_override=override, default_target=default, repeat=options.repeat
            ):
                if key_matches(job.key, options.filters) and _selected(job.key, options):
                    yield _resolve_checks(job, defaults) if defaults else job

    calls, resolving = 0, False
    for suite in suites:
        resolving = resolving or any(needs_resolving(spec.name) for spec in suite.expect)
        keys = iter_keys(suite, targets_override=override, default_target=default, repeat=options.repeat)
        for case, key, samples in keys:
            if key_matches(key, options.filters) and _selected(key, options):
                calls += samples
                resolving = resolving or any(needs_resolving(spec.name) for spec in case.expect)
    if resolve and resolving:
        # Resolving every judged or custom check now is what stops a broken one before any call.
        for _ in make_jobs():
            pass
    # A shard sees a slice of the keys: the others' keys are not obsolete, only elsewhere.
    complete = not options.filters and override is None and options.shard is None and options.keys is None
    return Plan(suites=tuple(suites), complete=complete, make_jobs=make_jobs, calls=calls)


def run(project: Project, options: RunOptions, *, on_progress: ProgressFn | None = None) -> RunOutcome:
    """Run the suites; write snapshots (unless in CI) and a run record."""
    started = time.time()
    the_plan = plan(project, options)
    # Read every snapshot before calling anything: a broken one must stop the run early.
    baselines = EntrySpool()
    for suite in the_plan.suites:
        baselines.load(suite.name, snapshot_path(project.snapshots_dir, suite.name))
    settings = project.settings
    call_options = CallOptions(
        concurrency=options.concurrency or settings.concurrency,
        offline=options.offline,
        timeout_s=options.timeout or settings.timeout,
        max_attempts=(options.retries if options.retries is not None else settings.retries) + 1,
        redact=Redactor(),
        max_cost=options.max_cost,
    )
    cache = ResponseCache(project.cache_dir, read=options.use_cache, write=True)
    keys = _KeyResults(the_plan, baselines, alpha=options.alpha)
    try:
        tally = answer_stream(
            enumerate(the_plan.iter_jobs()),
            calls=lambda item: item[1].calls(),
            # Judged checks grade the outputs with calls of their own (judges, embeddings):
            # the same cache, retries and budget as the suite's calls.
            follow_up=lambda item, answers: _judged_calls(item[1], answers),
            done=keys.decide,
            total=the_plan.calls,
            cache=cache,
            options=call_options,
            on_progress=on_progress,
        )
    finally:
        cache.close()
    results = keys.finish()
    record = RunRecord(
        id=_run_id(started),
        started_at=datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        wall_s=time.time() - started,
        results=results,
        ci=options.ci,
        update=options.update,
        calls=tally.calls,
        cache_hits=tally.cache_hits,
        options=_recorded_options(options),
    )
    written: list[Path] = []
    if not options.ci:
        with snapshot_lock(project.root / settings.state):  # one writer of snapshots at a time
            written = _write_snapshots(project, the_plan, record, baselines, update=options.update)
    baselines.close()
    record_path = write_run(project.runs_dir, record)
    notes = [
        f"{model} answered 429 (rate limited): calls in flight went down to {lowest} "
        f"(of {call_options.concurrency}) and back up as answers came"
        for model, lowest in sorted(tally.throttled.items())
    ]
    return RunOutcome(record=record, record_path=record_path, snapshots_written=written, notes=notes)


def _selected(key: str, options: RunOptions) -> bool:
    """Is the key in the run's shard and among its chosen keys (when either is set)?"""
    if options.keys is not None and key not in options.keys:
        return False
    return options.shard is None or options.shard.holds(key)


def _entry_name(job: Job) -> str:
    return f"{job.case}@{job.target}"


def _check_defaults(project: Project) -> Defaults:
    settings = project.settings
    return Defaults(
        judge=settings.judge,
        judge_api_base=settings.judge_api_base or None,
        embedding=settings.embedding,
        embedding_api_base=settings.embedding_api_base or None,
        root=str(project.root),
    )


def _resolve_checks(job: Job, defaults: Defaults) -> Job:
    """The job with its judged checks' defaults filled in and its custom checks imported."""
    checks = []
    for spec in job.checks:
        try:
            checks.append(resolve_check(spec, defaults))
        except SuiteError as error:
            if error.file is None:
                error.file, error.line = job.suite_path, spec.line
                error.message = f"check '{spec.label}' of {job.key}: {error.message}"
            raise
    if all(new is old for new, old in zip(checks, job.checks, strict=True)):
        return job
    return replace(job, checks=tuple(checks))


def _judged_calls(job: Job, answers: Mapping[str, Answer]) -> list[Call]:
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
        ),
        baseline,
    )
    if result.error is not None:
        return result
    stale = frozenset(check.label for check in result.checks if check.stale)
    outcome = Outcome(output=output.text, checks=_outcomes(result.checks), stale=stale)
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
    if result.output is None or result.snapshot_output is None or result.output == result.snapshot_output:
        return result
    summary = classify_change(result.snapshot_output, result.output)
    return replace(result, similarity=round(summary.similarity, 3), change=summary.explanation)


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
    )
    return context if answer_for is None else replace(context, answer_for=answer_for)


def _outcomes(checks: Sequence[CheckResult]) -> dict[str, bool]:
    return {check.label: check.passed for check in checks}


class _KeyResults:
    """Each key's result, decided the moment its answers are in, kept in a spool on disk."""

    def __init__(self, the_plan: Plan, baselines: EntrySpool, *, alpha: float) -> None:
        self.plan, self.baselines, self.alpha = the_plan, baselines, alpha
        self.spool = ResultSpool()
        self.count = 0
        # Sampled keys wait for the run's end (their tests are adjusted together), on disk too.
        self.sampled = ResultSpool()

    def decide(self, item: tuple[int, Job], answers: Mapping[str, Answer]) -> None:
        position, job = item
        name = _entry_name(job)
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
                    self.keep(self.count, _obsolete(suite, entry))
        return self.spool


def obsolete_entries(
    suites: Sequence[Suite],
    baselines: Mapping[str, Mapping[str, Entry]],
    produced: Mapping[str, Container[str]],
) -> list[Result]:
    """Snapshot entries that no key of a complete plan produces any more."""
    return [
        _obsolete(suite, entry)
        for suite in suites
        for name, entry in sorted(baselines[suite.name].items())
        if name not in produced[suite.name]
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


def _write_snapshots(
    project: Project,
    the_plan: Plan,
    record: RunRecord,
    baselines: EntrySpool,
    *,
    update: bool,
) -> list[Path]:
    """New keys are always written locally; everything else only with --update."""
    suites = {suite.name for suite in the_plan.suites}
    # One pass, whatever the number of suites; without --update only new keys are written.
    for result in record.results if update else matching(record.results, "new"):
        if result.suite not in suites or result.error is not None:
            continue
        name = f"{result.case}@{result.target}"
        if result.verdict is Verdict.OBSOLETE:
            if update:
                baselines.change(result.suite, name, None)
        elif result.verdict is Verdict.NEW:  # nothing to compare with
            baselines.change(result.suite, name, entry_from(result, known_failing=result.known_failing))
        elif update:
            entry = entry_from(result, known_failing=result.known_failing)
            if entry != baselines.get(result.suite, name):
                baselines.change(result.suite, name, entry)
    written = []
    # All suites' files or none: a stop (Ctrl-C) while they are written leaves each as it was.
    with staged() as stage:
        for suite in the_plan.suites:
            if not baselines.changed(suite.name):
                continue  # nothing accepted: re-rendering thousands of entries to compare bytes costs seconds
            path = snapshot_path(project.snapshots_dir, suite.name)
            if write_entries(path, suite.name, baselines.merged(suite.name, path), stage=stage):
                written.append(path)
    return written


def exit_code(record: RunRecord, *, strict: bool = False) -> int:
    """0 all good, 1 regressions or failing checks, 3 provider errors."""
    # An unchanged key that passes changes nothing: only the others are gone through.
    notable = matching(record.results, "notable")
    codes = {key_exit_code(r, ci=record.ci, update=record.update, strict=strict) for r in notable}
    return max(codes, default=EXIT_OK)  # EXIT_PROVIDER (3) > EXIT_FAILED (1) > EXIT_OK (0)


def key_exit_code(result: Result, *, ci: bool, update: bool = False, strict: bool = False) -> int:
    """What one key makes of the run: 0 fine, 1 it fails the run, 3 it is an error."""
    if result.verdict is Verdict.ERROR:
        return EXIT_PROVIDER
    if not result.passed and not result.known_failing:
        return EXIT_FAILED  # a failing check fails the run, whatever its verdict
    # With --update every verdict was accepted into the snapshots.
    if not update and is_failure(result.verdict, ci=ci, strict=strict, known_failing=result.known_failing):
        return EXIT_FAILED
    return EXIT_OK


def _run_id(started: float) -> str:
    """Sorts by start time; the pid keeps two runs started in the same microsecond apart."""
    stamp = datetime.fromtimestamp(started, UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{int(started * 1e6) % 1_000_000:06d}-{os.getpid()}"


def _recorded_options(options: RunOptions) -> dict[str, object]:
    return {
        "paths": list(options.paths),
        "models": list(options.models),
        "api_base": options.api_base,
        "strict": options.strict,
        "filters": list(options.filters),
        "offline": options.offline,
        "use_cache": options.use_cache,
        "repeat": options.repeat,
        "alpha": options.alpha,
        "max_cost": options.max_cost,
        "safe": options.safe,
        "shard": options.shard.to_list() if options.shard else None,
    }

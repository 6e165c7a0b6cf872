"""Suite files in, a Plan out: the suites, the jobs they make, the calls those jobs need.

Nothing is called here; what --safe refuses and every broken suite, judge or custom check is
refused here, before a run costs anything.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from ..calls.local.llama import is_local, unsupported_message, unsupported_params
from ..checks import Defaults, needs_resolving, resolve_check
from ..config import Project, read_pyproject
from ..errors import SuiteError
from ..model import Job, Suite, Target, key_matches
from ..suites.jobs import is_adaptive, iter_jobs, iter_keys, targets_of
from ..suites.loading import load_suites
from ..suites.safety import (
    Refusal,
    endpoint_setting_refusals,
    refuse_all,
    setting_lines,
    settings_refusals,
    suite_refusals,
)
from ..verdicts import pairwise
from .apps import prepare_apps, refuse_uncached_apps
from .options import RunOptions


@dataclass(frozen=True)
class Plan:
    """The suites a run loads, the jobs they make, and whether it covers whole suites.

    Jobs are made anew each time they are gone through (`iter_jobs`), so a run never
    holds all of them; `jobs` keeps them, for the commands that list them.
    """

    suites: tuple[Suite, ...]
    complete: bool  # no filter or shard: every case of the targets run was run
    make_jobs: Callable[[], Iterator[Job]] = field(repr=False, compare=False)
    calls: int = 0  # the calls its jobs make (samples included, `repeat: auto` at its most)
    keys: int = 0
    adaptive: int = 0  # keys with `repeat: auto` (their calls are counted at their most)
    # With -m, the targets run instead of the suites' (None: the suites' own targets).
    only_targets: frozenset[str] | None = None

    def tells_obsolete(self, target: str) -> bool:
        """Can an entry of this target that no key of the plan made be called obsolete?

        Not with -k or a shard (its case may be elsewhere), nor an entry of a target that
        -m did not run (it was not looked at)."""
        return self.complete and (self.only_targets is None or target in self.only_targets)

    def iter_jobs(self) -> Iterator[Job]:
        return self.make_jobs()

    @cached_property
    def jobs(self) -> tuple[Job, ...]:
        return tuple(self.make_jobs())


def plan(project: Project, options: RunOptions, *, resolve: bool = True) -> Plan:
    """Load and validate every suite, then expand it into jobs (nothing is called).

    Judged checks get the project's judge and embedding model here, and custom checks
    are imported here: a missing judge or a typo in a module stops the run before it
    costs anything (`resolve=False` skips that, for listing keys). With `safe`, what
    --safe refuses is refused before any of it.
    """
    paths = list(options.paths) or [str(p) for p in project.suite_paths()]
    confine = project.root if options.safe else None
    refused: list[Refusal] = []  # with --safe: every refusal is named at once, after loading
    if options.safe:
        refused += _setting_refusals(project)
    suites = load_suites(paths, confine_to=confine, refused=refused if options.safe else None)
    suites = [prepare_apps(suite, project.root) for suite in suites]
    if options.safe:
        # With -m the suites' own targets (and their endpoints) are not used.
        refuse_all(refused + suite_refusals(suites, targets=not options.models))
    override = (
        tuple(Target(id=model, model=model, api_base=options.api_base) for model in options.models) or None
    )
    default = Target(id=project.settings.target, model=project.settings.target)
    for suite in suites:
        check_local_params(suite, targets_override=override, default_target=default)
        if options.offline:
            refuse_uncached_apps(suite, targets_of(suite, override, default))
    defaults = _check_defaults(project) if resolve else None

    def make_jobs() -> Iterator[Job]:
        for suite in suites:
            for job in iter_jobs(
                suite, targets_override=override, default_target=default, repeat=options.repeat
            ):
                if key_matches(job.key, options.filters) and _selected(job.key, options):
                    yield _resolve_checks(job, defaults) if defaults else job

    calls, count, adaptive, resolving = 0, 0, 0, False
    for suite in suites:
        resolving = resolving or any(needs_resolving(spec.name) for spec in suite.expect)
        resolving = resolving or suite.compare not in (None, False) or bool(defaults and defaults.compare)
        keys = iter_keys(suite, targets_override=override, default_target=default, repeat=options.repeat)
        for case, key, samples in keys:
            if key_matches(key, options.filters) and _selected(key, options):
                calls += samples
                count += 1
                adaptive += is_adaptive(suite, case, options.repeat)
                resolving = resolving or any(needs_resolving(spec.name) for spec in case.expect)
                resolving = resolving or case.compare not in (None, False)
    if resolve and resolving:
        # Resolving every judged or custom check now is what stops a broken one before any call.
        for _ in make_jobs():
            pass
    # A shard sees a slice of the keys: the others' keys are not obsolete, only elsewhere.
    complete = not options.filters and options.shard is None and options.keys is None
    only = frozenset(target.id for target in override) if override else None
    return Plan(
        suites=tuple(suites),
        complete=complete,
        make_jobs=make_jobs,
        calls=calls,
        keys=count,
        adaptive=adaptive,
        only_targets=only,
    )


def _setting_refusals(project: Project) -> list[Refusal]:
    """What --safe refuses in the settings: paths outside the repository, and endpoints
    that pyproject.toml (which comes with the pull request) sets."""
    settings = project.settings
    pyproject = project.root / "pyproject.toml"
    file, lines = str(pyproject), setting_lines(pyproject) if pyproject.is_file() else {}
    paths = [("snapshots", settings.snapshots), ("state", settings.state)]
    found = settings_refusals(paths, project.root, file=file, lines=lines)
    if pyproject.is_file():
        found += endpoint_setting_refusals(read_pyproject(pyproject), os.environ, file, lines)
    return found


def _selected(key: str, options: RunOptions) -> bool:
    """Is the key in the run's shard and among its chosen keys (when either is set)?"""
    if options.keys is not None and key not in options.keys:
        return False
    return options.shard is None or options.shard.holds(key)


def _check_defaults(project: Project) -> Defaults:
    settings = project.settings
    return Defaults(
        judge=settings.judge,
        judge_api_base=settings.judge_api_base or None,
        embedding=settings.embedding,
        embedding_api_base=settings.embedding_api_base or None,
        compare=settings.compare,
        compare_judge=settings.compare_judge or settings.judge,
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
    compare = _resolve_compare(job, defaults)
    if compare is job.compare and all(new is old for new, old in zip(checks, job.checks, strict=True)):
        return job
    return replace(job, checks=tuple(checks), compare=compare)


def _resolve_compare(job: Job, defaults: Defaults) -> dict[str, Any] | None:
    """The job's compare judge in full (the project's rubric and judge where it names none)."""
    value = job.compare if job.compare is not None else (defaults.compare or None)
    if value is None or value is False or job.is_conversation:
        return None
    problem = pairwise.spec_problem(value)
    named = isinstance(value, dict) and value.get("model")
    if problem is None and not named and not defaults.compare_judge:
        problem = "no judge model"
    if problem is not None:
        raise SuiteError(
            f"compare of {job.key}: {problem}",
            file=job.suite_path,
            line=job.case_line,
            hint='e.g. compare: "Which answer is more helpful and accurate?", with compare_judge = '
            '"openai/gpt-4o-mini" (or judge = ...) under [tool.prompttest] in pyproject.toml',
        )
    return pairwise.resolve(value, model=defaults.compare_judge, api_base=defaults.judge_api_base)


def check_local_params(
    suite: Suite, *, targets_override: Sequence[Target] | None = None, default_target: Target
) -> None:
    """A param the in-process model lacks (`response_format`, `tools`) is a suite error now,
    before anything is called, not a failed call per key later."""
    local = [t for t in targets_of(suite, targets_override, default_target) if is_local(t.model)]
    for target in local:
        unknown = unsupported_params({**suite.params, **target.params})
        if unknown:
            first = next(iter(suite.cases), None)
            cases = f"every case of target '{target.id}'" + (f" (first: case '{first.id}')" if first else "")
            raise SuiteError(
                f"{cases}: {unsupported_message(unknown)}",
                file=suite.path,
                line=suite.params_line if set(unknown) & set(suite.params) else None,
                hint="drop these params, or run the suite against another model (-m)",
            )
    for case in suite.cases if local else ():
        for target in local if case.params else ():
            unknown = unsupported_params({**suite.params, **target.params, **case.params})
            if unknown:
                raise SuiteError(
                    f"case '{case.id}' on target '{target.id}': {unsupported_message(unknown)}",
                    file=case.file,
                    line=case.line,
                    hint="drop these params, or run the suite against another model (-m)",
                )

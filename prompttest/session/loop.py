"""`prompttest run` as plain Python: a Plan in, every key answered and decided, a RunRecord
out, the snapshots updated (never in CI) and the run record written."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from ..calls.cache import ResponseCache
from ..calls.pool import pool_size
from ..calls.runner import CallOptions, ProgressFn, answer_stream
from ..calls.secrets import Redactor
from ..checks.custom import load_function
from ..config import Project
from ..records.committed import untracked
from ..records.history import record_run
from ..records.locking import snapshot_lock
from ..records.runs import RunRecord, write_run
from ..records.snapshots import snapshot_path
from ..records.spool import EntrySpool
from .exits import key_exit_code
from .options import RunOptions, recorded_options
from .plan import Plan, plan
from .results import KeyResults
from .snapshot_updates import write_snapshots


@dataclass
class RunOutcome:
    """A finished run: its record, where it was written, which snapshot files changed."""

    record: RunRecord
    record_path: Path | None
    snapshots_written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how the run went, for the terminal


def run(project: Project, options: RunOptions, *, on_progress: ProgressFn | None = None) -> RunOutcome:
    """Run the suites; write snapshots (unless in CI) and a run record."""
    started = time.time()
    the_plan = plan(project, options)
    # Read every snapshot before calling anything: a broken one must stop the run early.
    baselines = EntrySpool()
    paths = [snapshot_path(project.snapshots_dir, suite.name) for suite in the_plan.suites]
    # The CI gate judges against committed snapshots: a file git does not track is none.
    uncommitted = untracked(project.root, project.snapshots_dir, paths) if options.ci else []
    for suite, path in zip(the_plan.suites, paths, strict=True):
        if path not in uncommitted:
            baselines.load(suite.name, path)
    settings = project.settings
    concurrency = options.concurrency or settings.concurrency
    call_options = CallOptions(
        concurrency=concurrency,
        offline=options.offline,
        timeout_s=options.timeout or settings.timeout,
        max_attempts=(options.retries if options.retries is not None else settings.retries) + 1,
        redact=Redactor(),
        max_cost=options.max_cost,
        workers=pool_size(settings.workers, concurrency=concurrency, calls=the_plan.calls),
    )
    cache = ResponseCache(project.cache_dir, read=options.use_cache, write=True)
    gate = partial(key_exit_code, ci=options.ci, update=options.update, strict=options.strict)
    python = partial(load_function, root=str(project.root))  # tool_results' python: functions
    keys = KeyResults(
        the_plan, baselines, alpha=options.alpha, gate=gate, python=python, update=options.update
    )
    try:
        tally = answer_stream(
            enumerate(the_plan.iter_jobs()),
            calls=lambda item: keys.first_calls(item[1]),
            # A conversation's next turns, `repeat: auto`'s next look, then the calls of
            # judged checks (judges, embeddings): the same cache, retries and budget.
            follow_up=keys.follow_up,
            done=keys.decide,
            total=_first_calls(the_plan, keys),
            cache=cache,
            options=call_options,
            on_progress=on_progress,
        )
    finally:
        cache.close()
    results = keys.finish()
    record = RunRecord(
        id=run_id(started),
        started_at=datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        wall_s=time.time() - started,
        results=results,
        ci=options.ci,
        update=options.update,
        calls=tally.calls,
        cache_hits=tally.cache_hits,
        options=recorded_options(options),
        suites=keys.suites,
        score_drops=keys.score_drops,
    )
    written: list[Path] = []
    if not options.ci:
        with snapshot_lock(project.root / settings.state):  # one writer of snapshots at a time
            written = write_snapshots(project, the_plan, record, baselines, update=options.update)
    baselines.close()
    record_path = write_run(project.runs_dir, record)
    notes = [
        f"{_shown(path, project.root)} is not tracked by git: the CI gate does not count its entries "
        "as committed snapshots"
        for path in uncommitted
    ]
    notes += [
        f"{model} answered 429 (rate limited): calls in flight went down to {lowest} "
        f"(of {call_options.concurrency}) and back up as answers came"
        for model, lowest in sorted(tally.throttled.items())
    ]
    # A shard's keys reach the history with the run `prompttest merge` makes of the shards.
    if options.shard is None:
        notes += _history_notes(project, record)
    return RunOutcome(record=record, record_path=record_path, snapshots_written=written, notes=notes)


def _first_calls(the_plan: Plan, keys: KeyResults) -> int:
    """The calls the keys start with: the progress's total, which follow-ups raise as they come.
    `repeat: auto` keys with a snapshot start with their first look (their jobs are gone
    through once more to know which: only when the plan has some)."""
    if not the_plan.adaptive:
        return the_plan.calls
    return sum(len(keys.first_calls(job)) for job in the_plan.iter_jobs())


def _history_notes(project: Project, record: RunRecord) -> list[str]:
    warning = record_run(
        project.state_dir, record, root=project.root, keep_days=project.settings.history_keep_days
    )
    return [warning] if warning else []


def run_id(started: float) -> str:
    """Sorts by start time; the pid keeps two runs started in the same microsecond apart."""
    stamp = datetime.fromtimestamp(started, UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{int(started * 1e6) % 1_000_000:06d}-{os.getpid()}"


def _shown(path: Path, root: Path) -> str:
    """A path as the user knows it: relative to the project when it is inside."""
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)

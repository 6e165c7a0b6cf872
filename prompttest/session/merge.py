"""`prompttest merge`: shard runs in, one run record out, as if one job had run every key.

shard records -> checks (one split, same options, no key twice, every shard there)
-> results in suite order, the run-wide tests made again over every key (suites pooled, one
alpha) -> obsolete entries (only when the shards cover the whole plan)
-> one RunRecord, written as the project's last run.

Merging writes no snapshot: obsolete entries it finds are pending changes, dropped by
`prompttest accept` like any other.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from ..config import Project
from ..errors import EXIT_OK, PromptTestError
from ..model import Result, Verdict
from ..model.stats import DEFAULT_ALPHA
from ..records.history import record_run
from ..records.runs import RunRecord, find_run, read_run, write_run
from ..records.snapshots import Entry, read_snapshot, snapshot_path
from ..suites.shards import Shard, from_recorded
from ..verdicts.scores import ScoreDrop, ScoreTests
from ..verdicts.suites import SuiteVerdict

# Options each shard job may set its own way: how it called, not which keys it ran or how
# they were judged. Every other recorded option must be the same in every shard.
PER_JOB_OPTIONS = frozenset({"shard", "offline", "use_cache", "max_cost"})


class MergeError(PromptTestError):
    """Shard runs that do not add up to one run (overlap, another split, other options, gaps)."""


@dataclass(frozen=True)
class Merged:
    """The merged run, where it was written, and what the merge could not do."""

    record: RunRecord
    record_path: Path | None = None
    missing: tuple[int, ...] = ()  # shard numbers no record had (only with allow_partial)
    warnings: tuple[str, ...] = ()
    obsolete_checked: bool = False  # the shards covered the whole plan: obsolete entries were told


def merge_runs(
    project: Project,
    runs: Sequence[RunRecord | str | Path],
    *,
    allow_partial: bool = False,
    write: bool = True,
) -> Merged:
    """Read shard runs (records, paths or run ids), merge them and write the merged record."""
    records = [
        run if isinstance(run, RunRecord) else read_run(find_run(project.runs_dir, str(run))) for run in runs
    ]
    merged = merge_records(records, project=project, allow_partial=allow_partial)
    if not write:
        return merged
    path = write_run(project.runs_dir, merged.record)
    warning = record_run(
        project.state_dir, merged.record, root=project.root, keep_days=project.settings.history_keep_days
    )
    return replace(merged, record_path=path, warnings=merged.warnings + ((warning,) if warning else ()))


def merge_records(
    records: Sequence[RunRecord], *, project: Project | None = None, allow_partial: bool = False
) -> Merged:
    """One run record from the runs of `--shard 1/N` .. `N/N`; a MergeError if they do not fit.

    With `project` and every shard present, the project's suites are loaded with the options
    the shards recorded and, when the shards ran every key of them, the snapshot entries no key
    produces are added as `obsolete`, as a full run would.
    """
    if not records:
        raise MergeError("nothing to merge", hint="pass the run records of `prompttest run --shard I/N`")
    shards = [_shard_of(record) for record in records]
    _check_one_split(records, shards)
    _check_same_options(records)
    ordered = [record for _, record in sorted(zip(shards, records, strict=True))]
    results = [r for record in ordered for r in record.results if r.verdict is not Verdict.OBSOLETE]
    _check_no_overlap(ordered)
    count = shards[0].count
    missing = tuple(sorted(set(range(1, count + 1)) - {shard.index for shard in shards}))
    if missing and not allow_partial:
        raise MergeError(
            f"shard(s) {_numbers(missing)} of {count} missing (the runs given are shard(s) "
            f"{_numbers(sorted(shard.index for shard in shards))})",
            hint="pass every shard's run record, or --allow-partial to merge what is there "
            "(then obsolete snapshot entries are not looked for)",
        )
    warnings: list[str] = []
    checked = False
    if missing:
        warnings.append(
            f"partial merge: shard(s) {_numbers(missing)} of {count} missing; their keys are not in "
            "this run and obsolete snapshot entries were not looked for"
        )
    whole: _Whole | None = None
    if not missing and project is not None:
        whole = _judge_whole(project, ordered[0], results)
        results, checked = list(whole.results), whole.obsolete_checked
        warnings += [whole.note] if whole.note else []
    first = ordered[0]
    record = RunRecord(
        id=_merged_id(time.time()),
        started_at=min(record.started_at for record in records),
        wall_s=max(record.wall_s for record in records),  # the shards ran side by side
        results=tuple(results),
        ci=first.ci,
        update=first.update,
        calls=sum(record.calls for record in records),
        cache_hits=sum(record.cache_hits for record in records),
        interrupted=any(record.interrupted for record in records),
        options=_merged_options(ordered),
        # Judged again as one run when the shards ran the plan's keys; else each shard's own
        # (a suite split over shards tested once a shard, each test valid on its slice).
        suites=whole.suites
        if whole and whole.rejudged
        else tuple(suite for record in ordered for suite in record.suites),
        score_drops=whole.score_drops
        if whole and whole.rejudged
        else tuple(drop for record in ordered for drop in record.score_drops),
    )
    return Merged(record=record, missing=missing, warnings=tuple(warnings), obsolete_checked=checked)


def _shard_of(record: RunRecord) -> Shard:
    try:
        shard = from_recorded(record.options.get("shard"))
    except ValueError as error:
        raise MergeError(f"run {record.id}: {error}") from None
    if shard is None:
        raise MergeError(
            f"run {record.id} is not a shard run (it was not run with --shard I/N)",
            hint="merge combines the runs of `prompttest run --shard 1/N` .. `--shard N/N`",
        )
    return shard


def _check_one_split(records: Sequence[RunRecord], shards: Sequence[Shard]) -> None:
    """Every record is a shard of the same N, and no shard comes twice."""
    if len({shard.count for shard in shards}) > 1:
        listing = ", ".join(f"run {r.id} is shard {s}" for r, s in zip(records, shards, strict=True))
        raise MergeError(
            f"the runs split the keys in different ways: {listing}",
            hint="merge the shards of one split (the same N in --shard I/N)",
        )
    seen: dict[int, RunRecord] = {}
    for record, shard in zip(records, shards, strict=True):
        other = seen.setdefault(shard.index, record)
        if other is not record:
            what = (
                f"run {record.id} is given twice"
                if other.id == record.id
                else f"runs {other.id} and {record.id} are both shard {shard}"
            )
            raise MergeError(f"overlapping runs: {what}", hint="pass each shard's run record once")


def _check_same_options(records: Sequence[RunRecord]) -> None:
    """Same suites, models, filters, repeat, gate: the shards are slices of one run."""
    first = records[0]
    want = _shared_options(first)
    for record in records[1:]:
        got = _shared_options(record)
        differ = sorted(name for name in want.keys() | got.keys() if want.get(name) != got.get(name))
        if differ:
            details = "; ".join(f"{name}: {want.get(name)!r} vs {got.get(name)!r}" for name in differ)
            raise MergeError(
                f"runs {first.id} and {record.id} were run with different options ({details})",
                hint="every shard must run the same command, only --shard I/N differs",
            )


def _shared_options(record: RunRecord) -> dict[str, Any]:
    shared = {k: v for k, v in record.options.items() if k not in PER_JOB_OPTIONS}
    return shared | {"ci": record.ci, "update": record.update}


def _check_no_overlap(records: Sequence[RunRecord]) -> None:
    owner: dict[str, str] = {}
    clashes: list[tuple[str, str, str]] = []
    for record in records:
        for result in record.results:
            if result.verdict is Verdict.OBSOLETE:
                continue
            before = owner.setdefault(result.key, record.id)
            if before != record.id:
                clashes.append((result.key, before, record.id))
    if clashes:
        key, a, b = clashes[0]
        more = f" (and {len(clashes) - 1} more key(s))" if len(clashes) > 1 else ""
        raise MergeError(
            f"overlapping runs: key {key} is in runs {a} and {b}{more}",
            hint="shards of one split never share a key: were these runs made by different versions?",
        )


@dataclass(frozen=True)
class _Whole:
    """The shards' results judged as the plan's: in its order, with obsolete entries and the
    run-wide tests made again over every key, when the shards ran exactly its keys."""

    results: Sequence[Result]
    note: str = ""
    obsolete_checked: bool = False
    rejudged: bool = False
    suites: tuple[SuiteVerdict, ...] = ()
    score_drops: tuple[ScoreDrop, ...] = ()


def _judge_whole(project: Project, first: RunRecord, results: list[Result]) -> _Whole:
    """The results in the plan's order, judged run-wide again, plus its obsolete entries, if
    the shards ran exactly the keys the suites make now; else the results as they are and a
    note why not."""
    from . import obsolete_entries, options_from_record, plan  # loads the suites: only when merging whole

    asked = options_from_record(first.options)
    try:
        the_plan = plan(project, asked, resolve=False)
        baselines = {
            suite.name: read_snapshot(snapshot_path(project.snapshots_dir, suite.name))
            for suite in the_plan.suites
        }
    except PromptTestError as error:
        # The merged run stands without them; only obsolete entries cannot be told.
        return _Whole(results, f"{error.render()}\nobsolete snapshot entries were not looked for")
    order = {job.key: index for index, job in enumerate(the_plan.jobs)}
    ran = {result.key for result in results}
    if ran != order.keys():
        unrun, unknown = len(order.keys() - ran), len(ran - order.keys())
        return _Whole(
            results,
            f"the suites make {unrun} key(s) no shard ran and the shards ran {unknown} key(s) the "
            "suites do not make (were the shards run on other suite files?): obsolete snapshot "
            "entries were not looked for",
        )
    results = sorted(results, key=lambda result: order[result.key])
    results, suites, drops = _judged_together(results, baselines, first)
    if not the_plan.complete:  # -k: like a full run with it, nothing can be called obsolete
        return _Whole(results, rejudged=True, suites=suites, score_drops=drops)
    produced: dict[str, set[str]] = {suite.name: set() for suite in the_plan.suites}
    for job in the_plan.jobs:
        produced[job.suite].add(f"{job.case}@{job.target}")
    # With -m, as a full run with it: only the entries of the targets it ran can be obsolete.
    obsolete = obsolete_entries(the_plan.suites, baselines, produced, only_targets=the_plan.only_targets)
    return _Whole(results + obsolete, "", True, True, suites, drops)


def _judged_together(
    results: list[Result], baselines: Mapping[str, Mapping[str, Entry]], first: RunRecord
) -> tuple[list[Result], tuple[SuiteVerdict, ...], tuple[ScoreDrop, ...]]:
    """Every shard's repeated keys, suites and scores tested again as one run's: the run-wide
    procedure spends alpha once over all of them, where each shard spent it on its slice."""
    from .exits import key_exit_code
    from .results import judge_together

    gate = partial(key_exit_code, ci=first.ci, update=first.update, strict=bool(first.options.get("strict")))
    scores, sampled = ScoreTests(), []
    for position, result in enumerate(results):
        entry = baselines.get(result.suite, {}).get(f"{result.case}@{result.target}")
        if entry is None or result.error is not None or result.output is None:
            continue
        baseline = entry.baseline()
        if baseline.scores:
            scores.add(position, result.suite, result.target, result.checks, baseline.scores)
        if len(result.outputs) > 1 or baseline.counts:
            sampled.append((position, result, baseline))
    judged = list(results)

    def keep(position: int, result: Result) -> None:
        judged[position] = replace(result, fails_run=gate(result) != EXIT_OK)

    alpha = float(first.options.get("alpha") or DEFAULT_ALPHA)
    suites, drops = judge_together(lambda: iter(sampled), scores, alpha=alpha, keep=keep)
    return judged, suites, drops


def _merged_options(records: Sequence[RunRecord]) -> dict[str, Any]:
    options = {k: v for k, v in records[0].options.items() if k not in PER_JOB_OPTIONS}
    return options | {"shard": None, "merged_from": [record.id for record in records]}


def _merged_id(now: float) -> str:
    """Sorts by time with the runs' ids (so it is the last run), and says it is a merge."""
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{int(now * 1e6) % 1_000_000:06d}-merge"


def _numbers(values: Sequence[int]) -> str:
    return ", ".join(str(value) for value in values)

"""What a local run accepts into the snapshot files: new keys always, everything with -u."""

from __future__ import annotations

from pathlib import Path

from ..config import Project
from ..io.atomic import staged
from ..model import Verdict
from ..model.selection import matching
from ..records.runs import RunRecord
from ..records.snapshot_writer import write_entries
from ..records.snapshots import entry_from, snapshot_path
from ..records.spool import EntrySpool
from .plan import Plan


def write_snapshots(
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

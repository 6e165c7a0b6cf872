"""Reviewing a run's pending changes: decisions are data, applied once, atomically.

A change is *pending* when accepting it would change a snapshot file as it is now on
disk (not as it was when the run started), and nobody has rejected it yet.
`review`, `accept` and `reject` all meet here; only `review` needs a terminal.
"""

from __future__ import annotations

import difflib
import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import PromptTestError
from ..io.atomic import atomic_write
from ..model import Result, Verdict, key_matches
from ..model.selection import sorted_results  # what a reviewer must see first comes first
from .locking import snapshot_lock
from .runs import RunRecord
from .snapshot_writer import write_snapshot
from .snapshots import Entry, entry_from, read_snapshot, snapshot_path


class Decision(enum.StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    SKIP = "skip"


@dataclass(frozen=True)
class Change:
    """One pending change: the run's result and the snapshot entry it would replace."""

    result: Result
    current: Entry | None  # the entry on disk now; None for a new key

    @property
    def key(self) -> str:
        return self.result.key


def decisions_path(record_path: Path) -> Path:
    """Where reject decisions on a run are kept: `.prompttest/reviews/<run id>.json`."""
    return record_path.parent.parent / "reviews" / record_path.name


def rejected_keys(record_path: Path) -> set[str]:
    path = decisions_path(record_path)
    if not path.exists():
        return set()
    try:
        keys = json.loads(path.read_text(encoding="utf-8")).get("rejected", [])
        return {key for key in keys if isinstance(key, str)}
    except (OSError, ValueError, AttributeError, TypeError, RecursionError):
        return set()  # a broken decisions file only means nothing was rejected


def pending_changes(
    record: RunRecord,
    snapshots_dir: Path,
    *,
    rejected: Iterable[str] = (),
    patterns: Sequence[str] = (),
) -> list[Change]:
    """Every key of the run whose acceptance would change its snapshot, reviewer's order."""

    skip = set(rejected)
    on_disk: dict[str, dict[str, Entry]] = {}
    changes = []
    for result in sorted_results(record.results):
        if result.error is not None or result.key in skip or not key_matches(result.key, patterns):
            continue
        if result.suite not in on_disk:
            on_disk[result.suite] = read_snapshot(snapshot_path(snapshots_dir, result.suite))
        current = on_disk[result.suite].get(f"{result.case}@{result.target}")
        if _would_change(result, current):
            changes.append(Change(result=result, current=current))
    return changes


def check_patterns(record: RunRecord, patterns: Sequence[str]) -> None:
    """Every `-k` pattern must match a key of the run: a typo would otherwise decide nothing,
    silently. A pattern that matches keys with nothing pending is fine."""
    if not patterns:
        return
    keys = [result.key for result in record.results]
    for pattern in patterns:
        if not any(key_matches(key, [pattern]) for key in keys):
            close = difflib.get_close_matches(pattern, keys, n=1)
            raise PromptTestError(
                f"'{pattern}' matches no key of run {record.id}",
                hint=f"did you mean '{close[0]}'?" if close else "`prompttest diff` lists the run's keys",
            )


def _would_change(result: Result, current: Entry | None) -> bool:
    if result.verdict is Verdict.OBSOLETE:
        return current is not None
    if result.output is None:
        return False
    known = bool(current and current.known_failing)
    return current != entry_from(result, known_failing=known)


@dataclass(frozen=True)
class Applied:
    accepted: int
    rejected: int
    files: tuple[Path, ...]
    # Keys accepted from fewer samples than `repeat: auto` may take (it stopped them early).
    cut_short: tuple[str, ...] = ()


def apply(
    changes: Sequence[Change],
    decisions: Mapping[str, Decision],
    *,
    snapshots_dir: Path,
    record_path: Path,
) -> Applied:
    """Write every accepted change (one atomic write per snapshot file) and remember rejections."""
    by_suite: dict[str, list[Change]] = {}
    for change in changes:
        if decisions.get(change.key) is Decision.ACCEPT:
            by_suite.setdefault(change.result.suite, []).append(change)
    written = []
    rejected = [key for key, decision in decisions.items() if decision is Decision.REJECT]
    with snapshot_lock(record_path.parent.parent):  # the state folder: one writer at a time
        for suite, accepted in by_suite.items():
            path = snapshot_path(snapshots_dir, suite)
            entries = read_snapshot(path)  # re-read: apply to the file as it is now
            for change in accepted:
                name = f"{change.result.case}@{change.result.target}"
                if change.result.verdict is Verdict.OBSOLETE:
                    entries.pop(name, None)
                else:
                    known = entries[name].known_failing if name in entries else False
                    entries[name] = entry_from(change.result, known_failing=known)
            if write_snapshot(path, suite, entries):
                written.append(path)
        if rejected:
            keep = rejected_keys(record_path) | set(rejected)
            text = json.dumps({"rejected": sorted(keep)}, indent=1) + "\n"
            atomic_write(decisions_path(record_path), text)
    accepted_count = sum(len(items) for items in by_suite.values())
    short = tuple(c.key for items in by_suite.values() for c in items if _cut_short(c.result))
    return Applied(accepted=accepted_count, rejected=len(rejected), files=tuple(written), cut_short=short)


def _cut_short(result: Result) -> bool:
    return result.max_repeat is not None and 0 < len(result.outputs) < result.max_repeat


def cut_short_note(keys: Sequence[str]) -> str:
    """Why a snapshot from a sample `repeat: auto` stopped early is worth redrawing."""
    return (
        f"note: {len(keys)} key(s) accepted from fewer samples than max_repeat (repeat: auto stopped "
        f"them early, e.g. {keys[0]}): a count taken where it stopped leans the way that stopped it; "
        "`prompttest run -u -k KEY` accepts a full sample instead"
    )

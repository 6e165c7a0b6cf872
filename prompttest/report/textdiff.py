"""What changed in a result key: the output diff and the checks that flipped.

Shared by every renderer and by the `diff` command, so that all of them tell the same story.
"""

from __future__ import annotations

import difflib

from ..model import CheckResult, Result, Verdict
from ..records.runs import RunRecord
from ..verdicts.table import is_failure

SNAPSHOT_LABEL = "snapshot"
NEW_LABEL = "new"
RUN_LABELS = (SNAPSHOT_LABEL, NEW_LABEL)


def side_labels(record: RunRecord, *, run: tuple[str, str] = RUN_LABELS) -> tuple[str, str]:
    """The names of a diff's two sides: a comparison's own (`diff` of two runs, of snapshots
    at a ref), else `run`: a run's snapshot and new output."""
    sides = record.options.get("sides")
    return (str(sides[0]), str(sides[1])) if sides else run


def fails_run(record: RunRecord, result: Result) -> bool:
    """Does this key fail the run? The verdict table's rule, with the run's `--ci`/`--strict`."""
    return is_failure(
        result.verdict,
        ci=record.ci,
        strict=bool(record.options.get("strict")),
        known_failing=result.known_failing,
    )


def unified_diff(
    before: str,
    after: str,
    *,
    context: int = 2,
    max_lines: int = 40,
    labels: tuple[str, str] = RUN_LABELS,
) -> str:
    """A unified diff from the snapshot's output to the new one, cut after `max_lines` lines.

    Empty when the texts are equal. When only line endings or the final newline differ (which
    a line diff cannot show), a one-line note says so instead of an empty hunk.
    """
    if before == after:
        return ""
    old, new = before.splitlines(), after.splitlines()
    header = [f"--- {labels[0]}", f"+++ {labels[1]}"]
    if old == new:
        return "\n".join([*header, "(only line endings or the final newline differ)"])
    lines = list(difflib.unified_diff(old, new, fromfile=labels[0], tofile=labels[1], n=context, lineterm=""))
    if len(lines) > max_lines:
        hidden = len(lines) - max_lines
        lines = [*lines[:max_lines], f"… {hidden} more line{'s' if hidden != 1 else ''}"]
    return "\n".join(lines)


def flipped_checks(result: Result) -> list[CheckResult]:
    """Checks whose outcome differs from the snapshot, in the suite's order.

    A check the snapshot did not have counts when it fails (the verdict table calls that
    `failing`); one that passes is as if it had passed before. A key with no snapshot entry
    (`new`) has nothing to flip from, so its failing checks are returned.
    """
    before = result.snapshot_checks or {}
    return [
        check
        for check in result.checks
        if (check.label in before and before[check.label] != check.passed)
        or (check.label not in before and not check.passed)
    ]


def explaining_checks(result: Result) -> list[CheckResult]:
    """The checks that explain the key's verdict, in the suite's order.

    Regressed and improved keys: their flipped checks (failing, resp. passing now); failing,
    new and inconclusive keys: the checks that fail now; other verdicts: none.
    """
    verdict = result.verdict
    if verdict is Verdict.REGRESSED:
        return [c for c in flipped_checks(result) if not c.passed]
    if verdict is Verdict.IMPROVED:
        return [c for c in flipped_checks(result) if c.passed]
    if verdict in (Verdict.FAILING, Verdict.NEW, Verdict.INCONCLUSIVE):
        return [c for c in result.checks if not c.passed]
    return []


def reason_lines(result: Result) -> list[str]:
    """One `label: reason` line per explaining check; an error is its provider message."""
    if result.verdict is Verdict.ERROR:
        return [result.error or "the provider call failed"]
    if result.verdict is Verdict.OBSOLETE:
        return ["in the snapshot, no longer in the suite"]
    lines = [f"{check.label}: {check.reason}" for check in explaining_checks(result)]
    if result.comparison:
        lines.append(result.comparison)  # the compare judge's preference and reason
    if result.change:
        lines.append(f"output {result.change}")  # "output reworded (0.82)"
    return lines


def output_diff(
    result: Result, *, context: int = 2, max_lines: int = 40, labels: tuple[str, str] = RUN_LABELS
) -> str:
    """The key's output diff against its snapshot; empty when either side is missing."""
    old, new = result.snapshot_answer, result.answer  # with tool calls: argument by argument
    if old is None or new is None:
        return ""
    return unified_diff(old, new, context=context, max_lines=max_lines, labels=labels)

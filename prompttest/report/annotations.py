"""GitHub Actions annotations: workflow commands that pin each failing key to its case's line.

Printed to stdout in a workflow step, `::error file=…,line=…::…` shows up on the pull
request's "Files changed" tab, at the line where the case is written.

Levels:
- `::error` for every key that fails the run (the same rule as the exit code);
- `::warning` for `changed` and `inconclusive` keys when the run is not `--strict`: they
  would fail under `--strict`, and a reviewer of a prompt edit should see them at the case;
- nothing for the rest (`improved`, `unchanged`, known-failing keys, `new` outside CI,
  `obsolete`, whose case no longer exists).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..model import Result, Verdict
from ..model.selection import sorted_results
from ..records.runs import RunRecord
from .suitelines import sentence
from .textdiff import fails_run, output_diff, reason_lines

WARN_VERDICTS = (Verdict.CHANGED, Verdict.INCONCLUSIVE)
DIFF_LINES = 12  # annotations are read in a narrow box beside the code: keep the diff short
MAX_MESSAGE = 4000  # GitHub shows little more; the full story is in the other reports


def github_annotations(record: RunRecord, *, cwd: str | None = None) -> list[str]:
    """One workflow command per key worth pinning to its case, most important first.

    `cwd` is the directory paths are made relative to. By default that is the repository's
    root, `GITHUB_WORKSPACE`, where GitHub looks for an annotation's file (a run from a
    subfolder, or on suites given by absolute path, still names `app/suites/x.yaml`); a path
    outside it is made relative to the working directory if it can be, else kept as given.
    """
    if cwd is not None:
        bases = [cwd]
    else:
        workspace = os.environ.get("GITHUB_WORKSPACE", "")
        bases = [workspace, os.getcwd()] if workspace else [os.getcwd()]
    commands = _suite_commands(record, bases) if record.regressed_suites and not record.update else []
    for result in sorted_results(record.results):
        if fails_run(record, result):
            level = "error"
        elif result.verdict in WARN_VERDICTS:
            level = "warning"
        else:
            continue
        commands.append(_command(level, result, bases=bases))
    return commands


def _suite_commands(record: RunRecord, bases: list[str]) -> list[str]:
    """An error for each suite that regressed as a whole, pinned to its suite file."""
    regressed = {(suite.suite, suite.target): suite for suite in record.regressed_suites}
    files: dict[str, str] = {}
    for result in record.results:  # the suite files, from the first key of each suite
        if result.suite in {suite for suite, _ in regressed} and result.suite not in files:
            files[result.suite] = result.suite_path
    commands = []
    for (suite, target), verdict in sorted(regressed.items()):
        properties = []
        path = _shown(files.get(suite, ""), bases)
        if path:
            properties.append(f"file={escape_property(path)}")
        properties.append(f"title={escape_property(f'prompttest suite regressed: {suite} on {target}')}")
        message = f"{suite} on {target}: {sentence(verdict)}"
        commands.append(f"::error {','.join(properties)}::{escape_data(message)}")
    return commands


def display_path(path: str, *, cwd: str) -> str:
    """`path` relative to `cwd` with forward slashes when it lies under it, else as given."""
    if not path:
        return ""
    return _relative(path, cwd) or path


def _relative(path: str, base: str) -> str | None:
    """`path` relative to `base` when it lies under it (as written, or once symlinks are
    resolved on both sides), else None."""
    for resolve in (os.path.abspath, os.path.realpath):
        try:
            return Path(resolve(path)).relative_to(resolve(base)).as_posix()
        except ValueError:
            continue
    return None


def _shown(given: str, bases: list[str]) -> str:
    """A file as an annotation names it: relative to the first base it lies under."""
    if not given:
        return ""
    return next((rel for base in bases if (rel := _relative(given, base)) is not None), given)


def escape_data(text: str) -> str:
    """Escape a workflow command's message (after `::`)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow command's property value (`file=`, `title=`…)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _command(level: str, result: Result, *, bases: list[str]) -> str:
    properties = []
    path = _shown(result.case_file or result.suite_path, bases)
    if path:
        properties.append(f"file={escape_property(path)}")
        if result.case_line is not None:
            properties.append(f"line={result.case_line}")
    properties.append(f"title={escape_property(f'prompttest {result.verdict.value}: {result.key}')}")
    return f"::{level} {','.join(properties)}::{escape_data(_message(result))}"


def _message(result: Result) -> str:
    lines = [_headline(result)]
    if result.verdict is not Verdict.ERROR:
        lines += reason_lines(result)
    if result.flags:
        lines.append(f"({', '.join(result.flags)})")
    diff = output_diff(result, max_lines=DIFF_LINES)
    if diff:
        lines += ["", diff]
    message = "\n".join(lines)
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


def _headline(result: Result) -> str:
    verdict = result.verdict
    if verdict is Verdict.ERROR:
        return f"provider error: {result.error or 'the call failed'}"
    if verdict is Verdict.NEW:
        return f"{result.key} has no committed snapshot: run `prompttest run` and commit snapshots/"
    if verdict is Verdict.REGRESSED and result.preference == "snapshot":
        return f"{result.key} regressed: the compare judge prefers the snapshot's output"
    if verdict is Verdict.REGRESSED:
        return f"{result.key} regressed: a check that passed in the snapshot now fails"
    if verdict is Verdict.FAILING:
        return f"{result.key} fails its checks (as in the snapshot)"
    if verdict is Verdict.CHANGED:
        return f"{result.key}: output changed, every check as before"
    if verdict is Verdict.INCONCLUSIVE:
        return f"{result.key}: pass rates differ from the snapshot, not significantly"
    return f"{result.key}: {verdict.value}"

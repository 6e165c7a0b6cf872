"""`prompttest review`: the interactive loop. Shows each change, collects decisions.

Nothing is written while the loop runs: it returns the decisions, and the caller applies
them once (`review.apply`), so quitting half-way loses nothing and writes nothing twice.
"""

from __future__ import annotations

import difflib
import os
import sys
import termios
import tty
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import click

from ..model import Result
from ..records.review import Change, Decision

KEYS = "a accept · r reject · s skip · A/R/S all remaining · q quit"
_SINGLE = {"a": Decision.ACCEPT, "r": Decision.REJECT, "s": Decision.SKIP}
_ALL = {"A": Decision.ACCEPT, "R": Decision.REJECT, "S": Decision.SKIP}


def describe(change: Change, *, index: int, total: int, previous: Result | None) -> list[str]:
    """The lines that present one change (uncoloured; diff lines start with + or -)."""
    result = change.result
    where = f"{result.case_file}:{result.case_line}" if result.case_line else result.suite_path
    flags = f"  [{', '.join(result.flags)}]" if result.flags else ""
    lines = [
        f"[{index}/{total}] {result.verdict.value.upper()}  {result.key}{flags}",
        f"  suite {result.suite} · case {result.case} · target {result.target} · {where}",
    ]
    before = change.current.checks if change.current else {}
    for check in result.checks:
        was = before.get(check.label)
        if was is None or was != check.passed:
            mark = "✓" if check.passed else "✗"
            history = "" if was is None else f" (was {'pass' if was else 'fail'})"
            lines.append(f"  {mark} {check.label}: {check.reason}{history}")
    if result.comparison:  # the compare judge's preference, before the diff it is about
        lines.append(f"  judge: {result.comparison}")
    if previous is not None:
        lines.append("  " + _deltas(previous, result))
    current = change.current
    old = current.baseline().output if current else ""
    new = result.answer or ""
    if result.output is None:
        lines.append("  (the case or target is gone: accepting removes the entry)")
    lines.extend(_diff(old, new))
    return lines


def _deltas(before: Result, after: Result) -> str:
    def delta(name: str, a: float | None, b: float | None, fmt: str) -> str:
        if a is None or b is None:
            return f"{name} {'?' if a is None else format(a, fmt)} → {'?' if b is None else format(b, fmt)}"
        return f"{name} {a:{fmt}} → {b:{fmt}} ({b - a:+{fmt}})"

    return " · ".join(
        [
            delta("latency ms", before.latency_ms, after.latency_ms, ".0f"),
            delta("tokens", before.completion_tokens, after.completion_tokens, "d"),
            delta("cost $", before.cost_usd, after.cost_usd, ".5f"),
        ]
    )


def _diff(old: str, new: str) -> list[str]:
    if old == new:
        return ["  (same output)"]
    body = list(difflib.unified_diff(old.splitlines(), new.splitlines(), "snapshot", "new", lineterm="", n=2))
    return body or ["  (whitespace-only change)"]


def _colour(line: str) -> str:
    if line.startswith(("+++", "---")):
        return click.style(line, bold=True)
    if line.startswith("+"):
        return click.style(line, fg="green")
    if line.startswith("-"):
        return click.style(line, fg="red")
    if line.startswith("@@"):
        return click.style(line, fg="cyan")
    if line.startswith("["):
        return click.style(line, bold=True)
    return line


@contextmanager
def keyboard() -> Iterator[Callable[[], str]]:
    """Single keys from the terminal, in cbreak mode for the whole review.

    Set once and without flushing (unlike click.getchar, which flushes on every call),
    so a key typed before the prompt appears is not lost.
    """
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd, termios.TCSANOW)
    try:
        yield lambda: os.read(fd, 1).decode("utf-8", errors="replace")
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def collect_decisions(
    changes: Sequence[Change],
    *,
    previous: Mapping[str, Result],
    getchar: Callable[[], str],
) -> dict[str, Decision]:
    """Ask about each change; returns the decisions made (skips included)."""
    decisions: dict[str, Decision] = {}
    for index, change in enumerate(changes, start=1):
        click.echo()
        for line in describe(change, index=index, total=len(changes), previous=previous.get(change.key)):
            click.echo(_colour(line))
        key = _ask(getchar)
        if key == "q":
            break
        if key in _ALL:
            for rest in changes[index - 1 :]:
                decisions[rest.key] = _ALL[key]
            break
        decisions[change.key] = _SINGLE[key]
    return decisions


def _ask(getchar: Callable[[], str]) -> str:
    prompt = click.style(f"  {KEYS} > ", fg="yellow")
    click.echo(prompt, nl=False)
    while True:
        key = getchar()
        if key in _SINGLE or key in _ALL or key == "q":
            click.echo(key)
            return key
        if key in ("\x03", "\x04", ""):  # Ctrl-C, Ctrl-D, end of input: quit, keeping the decisions
            click.echo("q")
            return "q"
        if key in ("\r", "\n"):  # Enter after a key, out of habit
            continue
        # Any other key is named and the question asked again: a silent wait looks hung.
        click.echo(f"unknown key {key!r}")
        click.echo(prompt, nl=False)

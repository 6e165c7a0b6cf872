"""What `run` and `merge` print and write: progress, the dry-run table, the verdict table,
errors and summary, and the report files (see cli.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import EXIT_OK

if TYPE_CHECKING:
    from ..config import Project
    from ..records.runs import RunRecord
    from ..session import RunOptions


class ProgressBar:
    """`[#####.....] 12/40` on stderr, redrawn in place; only when stderr is a terminal."""

    def __init__(self, width: int = 30, unit: str = "calls") -> None:
        self.width = width
        self.unit = unit
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        if total <= 0:
            return
        filled = int(self.width * done / total)
        bar = "#" * filled + "." * (self.width - filled)
        sys.stderr.write(f"\r[{bar}] {done}/{total} {self.unit}")
        sys.stderr.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            sys.stderr.write("\r" + " " * (self.width + 30 + len(self.unit)) + "\r")
            sys.stderr.flush()


def show_dry_run(project: Project, options: RunOptions) -> int:
    from tabulate import tabulate

    from ..session.dryrun import dry_run

    planned = dry_run(project, options)
    plans = planned.models

    def money(value: float | None) -> str:
        return "unknown" if value is None else f"${value:.4f}"

    rows = [(p.model, p.keys, p.calls, p.cached, p.to_call, money(p.estimated_usd)) for p in plans]
    costs = [p.estimated_usd for p in plans]
    total = None if None in costs else sum(c for c in costs if c is not None)
    click.echo(
        tabulate(
            rows, headers=("model", "keys", "calls", "cached", "to call", "est. cost"), tablefmt="simple"
        )
    )
    click.echo(
        f"\ndry run: {sum(p.to_call for p in plans)} call(s) to make, "
        f"{sum(p.cached for p in plans)} answered by the cache, estimated cost {money(total)} "
        f"(output tokens taken at max_tokens); nothing was called or written"
    )
    if planned.unknown_judged:
        click.echo(
            f"plus up to {planned.unknown_judged} judge/embedding call(s) for judged checks on outputs "
            "not fetched yet (not in the estimate)"
        )
    return EXIT_OK


def write_reports(
    record: RunRecord,
    *,
    json_path: str | None,
    junit_path: str | None,
    markdown_path: str | None,
    html_path: str | None,
) -> None:
    """Write the asked-for reports; on GitHub Actions also the step summary and annotations."""
    from ..io.atomic import atomic_write
    from ..report.annotations import github_annotations
    from ..report.html import html_chunks
    from ..report.jsonreport import json_chunks
    from ..report.junit import junit_chunks
    from ..report.markdown import render_markdown

    writers = (  # in pieces, but for Markdown (it shows only what needs a look, at most 60,000 characters)
        (json_path, json_chunks),
        (junit_path, junit_chunks),
        (markdown_path, render_markdown),
        (html_path, html_chunks),
    )
    for path, render in writers:
        if path:
            atomic_write(Path(path), render(record))
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as handle:
            handle.write(render_markdown(record) + "\n")
    if os.environ.get("GITHUB_ACTIONS", "").lower() == "true":
        for line in github_annotations(record):
            click.echo(line)


def echo_run(
    record: RunRecord, code: int, *, notes: Sequence[str] = (), headline: str = "", snapshots_written: int = 0
) -> None:
    """The verdict table, each distinct error once, notes (on stderr), the summary line."""
    from ..report.text import render_errors, render_suites, render_summary, render_table

    for block in (render_suites(record), render_table(record), render_errors(record)):
        if block:
            click.echo(block)
            click.echo()
    for note in notes:
        click.echo(note, err=True)
    if headline:
        click.echo(headline)
    click.echo(render_summary(record, exit_code=code, snapshots_written=snapshots_written))

"""The commands on run records: diff, review, accept, reject and merge."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .. import stopping
from ..errors import EXIT_OK
from .options import current_project, filter_option, report_option
from .output import echo_run, write_reports


@click.command()
@click.argument("runs", nargs=-1, metavar="[RUN_A] [RUN_B]")
@click.option(
    "--base",
    metavar="GIT_REF",
    help="Compare against the snapshots committed at this git ref (e.g. origin/main).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json", "html"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    metavar="PATH",
    help="Write to this file instead of stdout.",
)
def diff(runs: tuple[str, ...], base: str | None, fmt: str, output: str | None) -> int:
    """Explain what changed between two sides, key by key.

    \b
    prompttest diff                  the last run against the snapshots
    prompttest diff RUN              that run against the snapshots
    prompttest diff RUN_A RUN_B      two run records (paths, run ids or `last`)
    prompttest diff --base REF       snapshots at a git ref against the working tree's
    prompttest diff --base REF RUN   snapshots at a git ref against a run
    """
    from ..records.diffing import compare, git_side, run_side, snapshot_side
    from ..report.diffreport import diff_json_chunks, render_diff_markdown, render_diff_text
    from ..report.html import html_chunks

    project = current_project()
    if len(runs) > 2 or (base and len(runs) > 1):
        raise click.UsageError("diff takes at most two runs, or --base REF and at most one run")
    if base:
        a = git_side(project.root, project.snapshots_dir, base)
        b = run_side(project.runs_dir, runs[0]) if runs else snapshot_side(project.snapshots_dir)
    elif len(runs) == 2:
        a, b = run_side(project.runs_dir, runs[0]), run_side(project.runs_dir, runs[1])
    else:
        a = snapshot_side(project.snapshots_dir)
        b = run_side(project.runs_dir, runs[0] if runs else "last")
    comparison = compare(a, b)
    render: dict[str, Callable[[Any], str]] = {"text": render_diff_text, "markdown": render_diff_markdown}
    # JSON and HTML list every key: they are written as they are rendered, a key at a time.
    streamed = {"json": diff_json_chunks, "html": lambda c: html_chunks(c.record)}
    pieces = streamed[fmt](comparison) if fmt in streamed else [render[fmt](comparison)]
    if output:
        from ..io.atomic import atomic_write

        atomic_write(Path(output), pieces)
    else:
        for piece in pieces:
            click.echo(piece, nl=False)
    return EXIT_OK


@click.command()
def review() -> int:
    """Walk the last run's pending changes: accept, reject or skip each one.

    \b
    Keys: a accept, r reject, s skip, A/R/S for all that remain, q quit.
    Decisions are applied once, at the end. Without a terminal, use
    `prompttest accept` / `prompttest reject`.
    """
    from ..records.review import apply, cut_short_note, pending_changes, rejected_keys
    from ..records.runs import last_run, previous_results
    from .review_tty import collect_decisions, keyboard

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise click.UsageError(
            "review needs a terminal; use `prompttest accept [-k PATTERN]` or "
            "`prompttest reject [-k PATTERN]` instead"
        )
    project = current_project()
    path, record = last_run(project.runs_dir)
    changes = pending_changes(record, project.snapshots_dir, rejected=rejected_keys(path))
    if not changes:
        click.echo(f"nothing to review in run {record.id}")
        return EXIT_OK
    previous = previous_results(project.runs_dir, before=record.id, keys={c.key for c in changes})
    stopping.note_left_behind("no decision was applied (q quits keeping them); run `prompttest review` again")
    with keyboard() as getchar:
        decisions = collect_decisions(changes, previous=previous, getchar=getchar)
    done = apply(changes, decisions, snapshots_dir=project.snapshots_dir, record_path=path)
    skipped = len(changes) - done.accepted - done.rejected
    click.echo(f"\n{done.accepted} accepted, {done.rejected} rejected, {skipped} left pending")
    if done.cut_short:
        click.echo(cut_short_note(done.cut_short), err=True)
    return EXIT_OK


@click.command()
@filter_option("Only keys matching this glob (repeatable). Default: every pending change.")
def accept(filters: tuple[str, ...]) -> int:
    """Accept the last run's pending changes into the snapshots (no terminal needed)."""
    return _decide_all("accept", filters)


@click.command()
@filter_option("Only keys matching this glob (repeatable). Default: every pending change.")
def reject(filters: tuple[str, ...]) -> int:
    """Drop the last run's pending changes: the snapshots keep what they have."""
    return _decide_all("reject", filters)


def _decide_all(what: str, filters: tuple[str, ...]) -> int:
    from ..records.review import (
        Decision,
        apply,
        check_patterns,
        cut_short_note,
        pending_changes,
        rejected_keys,
    )
    from ..records.runs import last_run

    project = current_project()
    path, record = last_run(project.runs_dir)
    check_patterns(record, filters)
    changes = pending_changes(record, project.snapshots_dir, rejected=rejected_keys(path), patterns=filters)
    decision = Decision(what)
    done = apply(
        changes, {c.key: decision for c in changes}, snapshots_dir=project.snapshots_dir, record_path=path
    )
    for change in changes:
        click.echo(f"{what}ed {change.result.verdict.value:<10} {change.key}")
    files = ", ".join(str(p.relative_to(project.root)) for p in done.files)
    click.echo(f"{len(changes)} change(s) {what}ed" + (f"; wrote {files}" if files else ""))
    if done.cut_short:
        click.echo(cut_short_note(done.cut_short), err=True)
    return EXIT_OK


@click.command()
@click.argument("runs", nargs=-1, required=True, metavar="RUN...")
@click.option(
    "--allow-partial",
    is_flag=True,
    help="Merge even if some shards' runs are missing (a warning; obsolete entries are not looked for).",
)
@report_option("--json", "Write the JSON report of the merged run here.")
@report_option("--junit", "Write a JUnit XML report here.")
@report_option("--markdown", "Write a Markdown summary here.")
@report_option("--html", "Write a self-contained HTML report here.")
def merge(
    runs: tuple[str, ...],
    allow_partial: bool,
    json_path: str | None,
    junit_path: str | None,
    markdown_path: str | None,
    html_path: str | None,
) -> int:
    """Combine the runs of `run --shard I/N`, one per shard (paths or run ids), into one run.

    The merged run becomes the last run (for diff, review, accept and reject), is judged
    for obsolete snapshot entries when every shard is there, writes the reports, and
    exits as the whole run would have. Overlapping or mismatched runs exit 2.
    """
    from ..session import exit_code
    from ..session.merge import merge_runs

    merged = merge_runs(current_project(), runs, allow_partial=allow_partial)
    record = merged.record
    code = exit_code(record, strict=bool(record.options.get("strict")))
    write_reports(
        record, json_path=json_path, junit_path=junit_path, markdown_path=markdown_path, html_path=html_path
    )
    notes = [f"warning: {w}" for w in merged.warnings] + [
        f"merged {len(runs)} shard run(s) into run {record.id}"
    ]
    echo_run(record, code, notes=notes)
    return code


COMMANDS = (diff, review, accept, reject, merge)

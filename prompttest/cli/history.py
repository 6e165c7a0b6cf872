"""`prompttest history`: trends over the runs kept in `.prompttest/history.sqlite`, and
`prompttest history import` for run records made elsewhere (CI artifacts)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import click

from ..errors import EXIT_FAILED, EXIT_OK, HistoryError
from ..records.drift import DEFAULT_ALPHA, DEFAULT_COST_TOLERANCE, DEFAULT_LATENCY_TOLERANCE, DEFAULT_WINDOW
from .options import current_project
from .output import ProgressBar


@click.group(invoke_without_command=True)
@click.option("--last", type=click.IntRange(min=1), metavar="N", help="Only the newest N runs. [default: 20]")
@click.option("--since", metavar="DATE", help="Only runs started on or after this day (YYYY-MM-DD).")
@click.option("--suite", metavar="NAME", help="Only this suite.")
@click.option("--target", metavar="ID", help="Only this target.")
@click.option(
    "--key", "pattern", metavar="PATTERN", help="One key's outputs over time (a glob, or part of the key)."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--html",
    "html_path",
    metavar="PATH",
    help="Also write a self-contained page with trend charts (and with --key, the keys' outputs).",
)
@click.option(
    "--check",
    is_flag=True,
    help="Compare the latest run with the runs before it; exit 1 when something drifted.",
)
@click.option(
    "--window",
    type=click.IntRange(min=1),
    default=DEFAULT_WINDOW,
    show_default=True,
    metavar="K",
    help="--check: how many earlier runs of the same suites and targets the latest is compared with.",
)
@click.option(
    "--latency-tolerance",
    type=click.FloatRange(min=0),
    default=DEFAULT_LATENCY_TOLERANCE,
    show_default=True,
    metavar="SHARE",
    help="--check: latency drifts when its p95 rises more than this (0.2: 20%) and the rank test agrees.",
)
@click.option(
    "--cost-tolerance",
    type=click.FloatRange(min=0),
    default=DEFAULT_COST_TOLERANCE,
    show_default=True,
    metavar="SHARE",
    help="--check: cost drifts when the cost per token moves more than this (0.1: 10%).",
)
@click.option(
    "--alpha",
    type=click.FloatRange(min=0, max=1, min_open=True, max_open=True),
    default=DEFAULT_ALPHA,
    show_default=True,
    metavar="P",
    help="--check: significance level, Bonferroni-corrected over the tests made.",
)
@click.pass_context
def history(
    ctx: click.Context,
    last: int | None,
    since: str | None,
    suite: str | None,
    target: str | None,
    pattern: str | None,
    fmt: str,
    check: bool,
    window: int,
    latency_tolerance: float,
    cost_tolerance: float,
    alpha: float,
    html_path: str | None = None,
) -> int:
    """Pass rate, verdicts, latency, tokens and cost per suite and target over past runs.

    \b
    Every `prompttest run` (and `prompttest merge`) is added to .prompttest/history.sqlite;
    runs older than `history_keep_days` (default 90) are dropped.
    prompttest history                   the last 20 runs, per suite and target
    prompttest history --since DATE      every run since that day
    prompttest history --key PATTERN     those keys run by run, `*` where the output changed
    prompttest history --html PATH       also a page with trend charts
    prompttest history --check           did the latest run drift from the 7 before it?
    prompttest history import RUN...     add run records (e.g. from CI artifacts)
    """
    if ctx.invoked_subcommand is not None:
        return EXIT_OK
    if check:
        if last or since or pattern or html_path:
            raise click.UsageError(
                "--check compares the latest run with --window runs before it; "
                "--last, --since, --key and --html do not apply"
            )
        limits = {"latency_tolerance": latency_tolerance, "cost_tolerance": cost_tolerance, "alpha": alpha}
        return _check(window=window, suite=suite, target=target, fmt=fmt, **limits)
    from ..records.history import history_path, open_history
    from ..records.history_query import key_history, page_data, select_runs, trends

    start = _day(since) if since else None
    path = history_path(current_project().state_dir)
    conn = open_history(path, create=False)
    page: dict[str, Any] = {"runs": [], "groups": [], "keys": [] if pattern else None}
    if conn is None:
        data: dict[str, Any] = {"runs": [], "keys" if pattern else "groups": []}
    else:
        try:
            runs = select_runs(conn, last=last or (None if since else 20), since=start)
            data = (
                key_history(conn, runs, pattern)
                if pattern
                else trends(conn, runs, suite=suite, target=target)
            )
            if html_path:
                page = page_data(conn, runs, suite=suite, target=target, pattern=pattern)
        finally:
            conn.close()
    if html_path:
        _write_page(html_path, page)
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(_key_table(data) if pattern else _trend_table(data))
    return EXIT_OK


@history.command("import")
@click.argument("runs", nargs=-1, required=True, metavar="RUN...")
def import_runs(runs: tuple[str, ...]) -> int:
    """Add run records (paths or run ids) to the history; a run already there is skipped."""
    from ..records.history import append_run, history_path, open_history
    from ..records.runs import find_run, read_run

    project = current_project()
    records = []  # all readable before any is added
    with _import_bar(len(runs), "run records read") as bar:
        for done, ref in enumerate(runs, 1):
            records.append(read_run(find_run(project.runs_dir, ref)))
            bar(done, len(runs))
    path = history_path(project.state_dir)
    conn = open_history(path)
    assert conn is not None  # created when missing
    said = {
        "added": "added",
        "present": "skipped (already there)",
        "expired": "skipped (past history_keep_days)",
    }
    try:
        with _import_bar(len(records), "runs added") as bar:
            for done, record in enumerate(records, 1):
                status = append_run(conn, record, keep_days=project.settings.history_keep_days, path=path)
                bar.close()  # the line goes where the bar was; the bar is drawn again under it
                click.echo(f"{said[status]:<34} {record.id}")
                bar(done, len(records))
    finally:
        conn.close()
    return EXIT_OK


def _check(*, window: int, suite: str | None, target: str | None, fmt: str, **limits: float) -> int:
    """`history --check`: exit 1 when the latest run drifted, 0 when nothing moved."""
    from ..records.drift import check_drift
    from ..records.history import history_path, open_history
    from ..report.drift import render_drift

    path = history_path(current_project().state_dir)
    conn = open_history(path, create=False)
    if conn is None:
        raise HistoryError(
            "no history yet: nothing to check", file=str(path), hint="every `prompttest run` adds its run"
        )
    try:
        report = check_drift(conn, window=window, suite=suite, target=target, **limits)
    finally:
        conn.close()
    click.echo(json.dumps(report.to_dict(), indent=2) if fmt == "json" else render_drift(report))
    return EXIT_FAILED if report.drifted else EXIT_OK


def _write_page(path: str, page: dict[str, Any]) -> None:
    from pathlib import Path

    from ..io.atomic import atomic_write
    from ..report.history_html import render_history_html

    atomic_write(Path(path), render_history_html(page))
    click.echo(f"wrote {path}", err=True)


IMPORT_BAR_MIN = 10  # run records: fewer are imported before a bar would tell anything


class _NoBar(ProgressBar):
    """Draws nothing: an import of a few records, or with nobody watching stderr."""

    def __call__(self, done: int, total: int) -> None:
        pass


@contextmanager
def _import_bar(count: int, unit: str) -> Iterator[ProgressBar]:
    """A progress bar on stderr while the body runs, for an import of many records watched
    on a terminal; erased at the end, error or not."""
    bar = ProgressBar(unit=unit) if count >= IMPORT_BAR_MIN and _watched() else _NoBar()
    try:
        yield bar
    finally:
        bar.close()


def _watched() -> bool:
    return sys.stderr.isatty()


def _day(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a day (YYYY-MM-DD)", param_hint="--since") from None


def _trend_table(data: dict[str, Any]) -> str:
    from tabulate import tabulate

    runs = data["runs"]
    if not runs:
        return "no runs in the history yet: `prompttest run` adds each run"
    headers = ("suite", "target", "runs", "pass rate", "verdicts", "p50 ms", "p95 ms", "tokens", "cost")
    rows = [
        (
            g["suite"],
            g["target"],
            g["runs"],
            f"{g['pass_rate']:.0%}",
            ", ".join(f"{n} {v}" for v, n in g["verdicts"].items() if n),
            _number(g["latency_ms"]["p50"]),
            _number(g["latency_ms"]["p95"]),
            g["tokens"]["prompt"] + g["tokens"]["completion"],
            _cost(g["cost_usd"]),
        )
        for g in data["groups"]
    ]
    span = f"{len(runs)} run(s), {runs[0]['started_at']} .. {runs[-1]['started_at']}"
    return f"{tabulate(rows, headers=headers, tablefmt='simple')}\n{span}"


def _key_table(data: dict[str, Any]) -> str:
    from tabulate import tabulate

    if not data["keys"]:
        return "no key matches in these runs"
    parts = []
    for item in data["keys"]:
        rows = [
            (
                "*" if e["output_changed"] else "",
                e["started_at"],
                e["verdict"],
                _number(e["latency_ms"]),
                _cost(e["cost_usd"]),
                _short(e["error"] or e["output"]),
            )
            for e in item["history"]
        ]
        table = tabulate(rows, headers=("", "started", "verdict", "ms", "cost", "output"), tablefmt="simple")
        parts.append(f"{item['key']}\n{table}")
    changed = any(e["output_changed"] for item in data["keys"] for e in item["history"])
    footnote = "\n(* the output changed since the key's previous run)" if changed else ""
    return "\n\n".join(parts) + footnote


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _cost(value: float | None) -> str:
    return "unknown" if value is None else f"${value:.4f}"


def _short(text: str | None) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= 60 else line[:59] + "…"


COMMANDS = (history,)

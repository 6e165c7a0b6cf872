"""Renderers of `prompttest diff`: text, Markdown and JSON, from a Comparison."""

from __future__ import annotations

from collections.abc import Iterator

from tabulate import tabulate

from ..io.jsontext import chunks_with_items
from ..model import Result, Verdict
from ..model.selection import sorted_results
from ..records.diffing import Comparison, SuiteStats, stats_to_dict
from .html import render_html
from .markdown import render_markdown
from .text import render_errors, render_table
from .textdiff import output_diff, side_labels

DIFFED = (Verdict.REGRESSED, Verdict.IMPROVED, Verdict.CHANGED, Verdict.FAILING)


def render_diff_text(comparison: Comparison) -> str:
    record = comparison.record
    blocks = [f"{comparison.a.label} → {comparison.b.label}"]
    table = render_table(record, limit=None)  # a diff explains every key it lists
    blocks.append(table or "every key unchanged")
    blocks.append(_stats_table(comparison, fmt="simple"))
    for result in sorted_results(record.results, only="notable"):  # an unchanged key has no diff
        diff = output_diff(result, labels=side_labels(record)) if result.verdict in DIFFED else ""
        if diff:
            blocks.append(f"{result.verdict.value}: {result.key}\n{diff}")
    errors = render_errors(record)
    if errors:
        blocks.append(errors)
    return "\n\n".join(blocks) + "\n"


def render_diff_markdown(comparison: Comparison) -> str:
    body = render_markdown(comparison.record)
    title = f"**{comparison.a.label} → {comparison.b.label}**"
    return f"{title}\n\n{body.rstrip()}\n\n{_stats_table(comparison, fmt='github')}\n"


def render_diff_json(comparison: Comparison) -> str:
    return "".join(diff_json_chunks(comparison))


def diff_json_chunks(comparison: Comparison) -> Iterator[str]:
    """The text of `render_diff_json` in pieces, one key's at a time, for writing as they come."""
    record = comparison.record
    head = {
        "a": comparison.a.label,
        "b": comparison.b.label,
        "verdicts": record.counts(),
        "suites": {
            name: {"a": stats_to_dict(a), "b": stats_to_dict(b)} for name, (a, b) in comparison.suites.items()
        },
    }
    results = sorted_results(record.results)
    yield from chunks_with_items(head, "results", results, indent=2, to_json=Result.to_dict)
    yield "\n"


def render_diff_html(comparison: Comparison) -> str:
    return render_html(comparison.record)


def _stats_table(comparison: Comparison, *, fmt: str) -> str:
    rows = []
    for name, (a, b) in comparison.suites.items():
        rows.append(
            (
                name,
                _delta(a.pass_rate, b.pass_rate, "{:.0%}"),
                _delta(a.latency_p50, b.latency_p50, "{:.0f}"),
                _delta(a.latency_p95, b.latency_p95, "{:.0f}"),
                _delta(a.tokens, b.tokens, "{:d}"),
                _delta(a.cost_usd, b.cost_usd, "${:.4f}"),
                f"{a.keys} → {b.keys}",
            )
        )
    headers = ("suite", "pass rate", "latency p50 ms", "p95 ms", "tokens", "cost", "keys")
    return tabulate(rows, headers=headers, tablefmt=fmt)


def _delta(a: float | int | None, b: float | int | None, fmt: str) -> str:
    def show(value: float | int | None) -> str:
        return "—" if value is None else fmt.format(value)

    return show(b) if a == b else f"{show(a)} → {show(b)}"


__all__ = ["SuiteStats", "render_diff_html", "render_diff_json", "render_diff_markdown", "render_diff_text"]

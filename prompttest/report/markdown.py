"""The `--markdown` report: a pull-request comment or job summary a reviewer reads in a minute.

A title line with the run's status, the counts by verdict, then the keys that need a look
(regressed with short diffs, errors, failing, new; `changed`/`inconclusive` too under
`--strict`) and, folded in `<details>`, the rest (inconclusive, improved, changed, obsolete).
Unchanged keys are only counted.

The page must stay inert whatever a model or a suite says: outputs and errors go in fenced
blocks whose fence is longer than any backtick run inside; keys and check labels are code
spans built the same way; every other piece of text is escaped. It also stays under
`limit` characters (GitHub refuses comments over 65536), dropping whole entries with
"… and N more" lines rather than cutting a block in half.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from ..model import VERDICT_ORDER, Result, Verdict
from ..model.selection import matching, sorted_results
from ..records.runs import RunRecord
from ..verdicts.scores import SCORE_DROPPED
from .suitelines import headline, ordered, score_sentence, sentence
from .text import counted, rate_text
from .textdiff import RUN_LABELS, explaining_checks, fails_run, output_diff, side_labels

OPEN_VERDICTS = (Verdict.REGRESSED, Verdict.ERROR, Verdict.FAILING, Verdict.NEW)
STRICT_VERDICTS = (Verdict.CHANGED, Verdict.INCONCLUSIVE)
DIFF_LINES = 20  # "short diffs": the JSON and HTML reports have the rest
OUTPUT_LINES = 15
LINE_WIDTH = 200
ERROR_CHARS = 1000
KEYS_PER_ERROR = 10
RESERVE = 200  # room kept for the closing "not shown" line

_ESCAPED = re.compile(r"([\\`*_\[\]|~#])")
_MENTION = re.compile(r"(?<![\w@])@(?=\w)")  # @user in a comment would notify that user
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BACKTICKS = re.compile("`+")


@dataclass(frozen=True)
class _Section:
    """One verdict's block: its title, its entries (each whole), the keys each entry covers."""

    verdict: Verdict
    entries: list[tuple[str, int]]
    folded: bool


def render_markdown(record: RunRecord, *, limit: int = 60000) -> str:
    """The run as GitHub-flavoured Markdown, at most `limit` characters long."""
    failing = bool(record.regressed_suites and not record.update) or any(
        fails_run(record, result) for result in matching(record.results, "notable")
    )
    blocks = [_title(record, failing=failing), _suites(record), _counts_table(record), _stats(record)]
    head = "\n\n".join(block for block in blocks if block) + "\n"
    if len(head) > limit:
        return _title(record, failing=failing)[:limit]
    out = [head]
    used = len(head)
    not_shown = 0
    for section in _sections(record):
        opener, closer = _frame(section)
        total = sum(keys for _, keys in section.entries)
        more = _more_line(total, section.verdict)
        if used + len(opener) + len(more) + len(closer) + RESERVE > limit:
            not_shown += total
            continue
        out.append(opener)
        used += len(opener)
        shown = 0
        for entry, keys in section.entries:
            if used + len(entry) + len(more) + len(closer) + RESERVE > limit:
                break
            out.append(entry)
            used += len(entry)
            shown += keys
        if shown < total:
            line = _more_line(total - shown, section.verdict)
            out.append(line)
            used += len(line)
        out.append(closer)
        used += len(closer)
    if not_shown:
        line = f"\n… and {not_shown} more key(s) not shown: see the JSON or HTML report\n"
        if used + len(line) <= limit:
            out.append(line)
    return "".join(out)


def escape(text: str) -> str:
    """Text that renders as itself in Markdown, on one line: no HTML, links, emphasis or pings."""
    flat = " ".join(_CONTROL.sub("", text).split())
    flat = flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    flat = _ESCAPED.sub(r"\\\1", flat)
    return _MENTION.sub("@\u200b", flat)


def code_span(text: str) -> str:
    """`text` as an inline code span that no backtick inside can close."""
    flat = " ".join(_CONTROL.sub("", text).split())
    ticks = "`" * (_longest_backtick_run(flat) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") or not flat.strip() else ""
    return f"{ticks}{pad}{flat}{pad}{ticks}"


def fenced(text: str, info: str = "") -> str:
    """`text` as a fenced code block whose fence is longer than any backtick run inside."""
    body = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    fence = "`" * max(3, _longest_backtick_run(body) + 1)
    return f"{fence}{info}\n{body}\n{fence}\n"


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in _BACKTICKS.findall(text)), default=0)


def _title(record: RunRecord, *, failing: bool) -> str:
    counts = record.counts()
    shown = [v for v in VERDICT_ORDER if counts[v.value] and v is not Verdict.UNCHANGED]
    parts = [f"{counts[v.value]} {v.value}" for v in shown]
    if not parts:
        parts = [f"{counts['unchanged']} unchanged" if counts["unchanged"] else "nothing to run"]
    if record.regressed_suites:  # what failed the run, when no key did on its own
        parts.insert(0, f"{len(record.regressed_suites)} suite(s) regressed")
    status = "failing" if failing else "passing"
    if record.interrupted:
        status += " (interrupted)"
    return f"**prompttest: {', '.join(parts)}** — {status}"


def _suites(record: RunRecord) -> str:
    """The pooled suites' verdicts, regressed ones first: what the reader must see first."""
    suites = [
        f"- **{headline(suite)}**: {code_span(suite.suite)} on {code_span(suite.target)}: "
        f"{escape(sentence(suite))}"
        for suite in ordered(record.suites)
    ]
    drops = [
        f"- **{SCORE_DROPPED}**: {code_span(drop.suite)} on {code_span(drop.target)}: "
        f"{escape(score_sentence(drop))}"
        for drop in record.score_drops
    ]
    return "\n".join(suites + drops)


def _counts_table(record: RunRecord) -> str:
    counts = record.counts()
    rows = [f"| {v.value} | {counts[v.value]} |" for v in VERDICT_ORDER if counts[v.value]]
    return "\n".join(["| verdict | keys |", "| --- | ---: |", *rows])


def _stats(record: RunRecord) -> str:
    summary = record.summary()
    if record.options.get("sides"):  # a comparison (`diff`) made no calls and took no time
        return counted(summary["keys"], "key")
    parts = [counted(summary["keys"], "key"), counted(record.calls, "call"), f"{record.cache_hits} cached"]
    if record.calls:
        cost = summary["cost_usd"]
        parts.append("cost unknown" if cost is None else f"${cost:.4f}")
    parts.append(f"{summary['wall_s']:.1f}s")
    mode = [name for name, on in (("--ci", record.ci), ("--strict", record.options.get("strict"))) if on]
    return escape(" · ".join(parts + mode))


def _sections(record: RunRecord) -> list[_Section]:
    strict = bool(record.options.get("strict"))
    labels = side_labels(record)
    opened = OPEN_VERDICTS + (STRICT_VERDICTS if strict else ())
    by_verdict: dict[Verdict, list[Result]] = {}
    for result in sorted_results(record.results, only="notable"):
        if result.verdict is not Verdict.UNCHANGED:
            by_verdict.setdefault(result.verdict, []).append(result)
    sections = []
    for verdict in sorted(by_verdict, key=lambda v: (v not in opened, VERDICT_ORDER.index(v))):
        results = by_verdict[verdict]
        if verdict is Verdict.ERROR:
            entries = _error_entries(results)
        else:
            render = _RENDERERS.get(verdict, _entry_with_diff)
            entries = [(render(result, labels), 1) for result in results]
        sections.append(_Section(verdict, entries, folded=verdict not in opened))
    return sections


def _frame(section: _Section) -> tuple[str, str]:
    count = sum(keys for _, keys in section.entries)
    title = f"{section.verdict.value} ({count})"
    if section.folded:
        return f"\n<details><summary>{title}</summary>\n\n", "\n</details>\n"
    return f"\n### {title}\n\n", ""


def _more_line(count: int, verdict: Verdict) -> str:
    return f"\n… and {count} more {verdict.value}\n\n"


def _key_line(result: Result) -> str:
    line = f"**{code_span(result.key)}**"
    if result.flags:
        line += f" — _{escape(', '.join(result.flags))}_"
    return line + "\n"


def _reason_list(result: Result) -> str:
    if any(check.samples for check in result.checks):
        # Repeated keys: each rate that moved or fails, with its interval and p (as the terminal).
        items = [
            f"- {code_span(check.label)}: {escape(rate_text(check))}"
            for check in result.checks
            if check.samples and (check.before or not check.passed)
        ]
    else:
        items = [f"- {code_span(check.label)}: {escape(check.reason)}" for check in explaining_checks(result)]
    if result.comparison:
        items.append(f"- {escape(result.comparison)}")
    if result.change:
        items.append(f"- output {escape(result.change)}")
    if result.known_failing:
        items.append("- known failing: does not fail the run")
    return "\n".join(items) + "\n" if items else ""


def _entry_with_diff(result: Result, labels: tuple[str, str] = RUN_LABELS) -> str:
    parts = [_key_line(result), _reason_list(result)]
    diff = output_diff(result, max_lines=DIFF_LINES, labels=labels)
    if diff:
        parts.append("\n" + fenced(_clip_lines(diff), "diff"))
    return "".join(parts) + "\n"


def _entry_with_output(result: Result, labels: tuple[str, str] = RUN_LABELS) -> str:
    parts = [_key_line(result), _reason_list(result)]
    diff = output_diff(result, max_lines=DIFF_LINES, labels=labels)
    if diff:
        parts.append("\n" + fenced(_clip_lines(diff), "diff"))
    elif result.answer is not None:
        parts.append("\n" + fenced(_clip_lines(result.answer, max_lines=OUTPUT_LINES), "text"))
    if result.metadata is not None:  # what an app returned besides its answer
        metadata = json.dumps(result.metadata, indent=2, sort_keys=True)
        parts.append("\n" + fenced(_clip_lines(metadata, max_lines=OUTPUT_LINES), "json"))
    return "".join(parts) + "\n"


def _entry_key_only(result: Result, labels: tuple[str, str] = RUN_LABELS) -> str:
    return f"- {code_span(result.key)}\n"


def _error_entries(results: list[Result]) -> list[tuple[str, int]]:
    """One entry per distinct provider message, with the keys it hit: outages repeat."""
    grouped: dict[str, list[Result]] = {}
    for result in results:
        grouped.setdefault(result.error or "the provider call failed", []).append(result)
    entries = []
    for message, hit in grouped.items():
        keys = ", ".join(code_span(r.key) for r in hit[:KEYS_PER_ERROR])
        if len(hit) > KEYS_PER_ERROR:
            keys += f" and {len(hit) - KEYS_PER_ERROR} more"
        text = message if len(message) <= ERROR_CHARS else message[: ERROR_CHARS - 1] + "…"
        entries.append((f"{keys}\n\n{fenced(text, 'text')}\n", len(hit)))
    return entries


def _clip_lines(text: str, *, max_lines: int | None = None) -> str:
    """Cut overlong lines (one-line JSON outputs) and, optionally, the number of lines."""
    lines = text.splitlines()
    if max_lines is not None and len(lines) > max_lines:
        hidden = len(lines) - max_lines
        lines = [*lines[:max_lines], f"… {hidden} more line{'s' if hidden != 1 else ''}"]
    return "\n".join(line if len(line) <= LINE_WIDTH else line[: LINE_WIDTH - 1] + "…" for line in lines)


_RENDERERS: dict[Verdict, Callable[[Result, tuple[str, str]], str]] = {
    Verdict.FAILING: _entry_with_output,
    Verdict.NEW: _entry_with_output,
    Verdict.OBSOLETE: _entry_key_only,
}

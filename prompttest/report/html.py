"""The `--html` report: one self-contained page a reviewer can open from a CI artifact.

Everything on the page that comes from a run (model outputs, suite, case and target names,
reasons, errors) is untrusted text: it is HTML-escaped where it is shown, and the search
index the script reads sits in a JSON data block whose `<`, `>`, `&` and line separators
are escaped, so no output can close the block. A Content-Security-Policy that allows only
the page's own style and script (by hash) and nothing else is the second wall: even a
missed escape can neither run code nor load anything. The page reads fully without
JavaScript; only the filters and the search need it.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import html
import itertools
import json
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

from ..model import VERDICT_ORDER, Result, Verdict
from ..model.selection import sorted_results
from ..records.runs import RunRecord
from .suitelines import headline, ordered, score_sentence, sentence
from .textdiff import flipped_checks, reason_lines, side_labels

# Verdicts whose rows start open: everything a reviewer has to look at.
_CLOSED = frozenset({Verdict.UNCHANGED, Verdict.OBSOLETE})
_RUN_TITLES = ("snapshot", "new output")
# Above this many token pairs a word diff gets slow (difflib is quadratic): diff lines instead.
_WORD_DIFF_LIMIT = 4_000_000
# Words and punctuation carry their trailing blanks, so lone spaces never "match" between edits.
_TOKEN = re.compile(r"\s+|\w+\s*|[^\w\s]\s*")
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}

_CSS = """
:root{--bg:#f6f7f9;--card:#fff;--ink:#1d2330;--mute:#646b78;--line:#dde1e7;--ins:#d5f5dc;--del:#fbd9d9;
--regressed:#c62828;--error:#8e24aa;--failing:#e65100;--new:#1565c0;--inconclusive:#6d4c41;
--improved:#2e7d32;--changed:#b58900;--obsolete:#78909c;--unchanged:#90a4ae}
@media (prefers-color-scheme:dark){:root{--bg:#14171c;--card:#1d2128;--ink:#e4e7ec;--mute:#9aa3b0;
--line:#323844;--ins:#1f4a2a;--del:#5a2222}}
*{box-sizing:border-box}[hidden]{display:none!important}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",
Roboto,sans-serif}
main{max-width:1280px;margin:0 auto;padding:20px}
h1{font-size:20px;margin:0 0 2px}h2{font-size:15px;margin:22px 0 8px}
.sub{color:var(--mute);margin:0 0 14px}.warn{border-left:4px solid var(--failing);padding:6px 10px;
background:var(--card)}
code,pre,.key{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.chips{display:flex;flex-wrap:wrap;gap:6px;margin-bottom:10px}
.chip{border:1px solid var(--line);background:var(--card);color:var(--ink);border-radius:16px;
padding:3px 11px;font:inherit;cursor:pointer}.chip.zero{opacity:.45}
.chip b{color:#fff;border-radius:8px;padding:0 6px;margin-right:5px}.chip.on{outline:2px solid var(--ink)}
.stats{display:flex;flex-wrap:wrap;gap:8px;margin:0}
.stats div{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:6px 12px}
.stats dt{color:var(--mute);font-size:11px;text-transform:uppercase;letter-spacing:.04em}
.stats dd{margin:0;font-weight:600}
.controls{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:16px 0 10px}
.controls input,.controls select,.controls button{font:inherit;padding:5px 8px;border:1px solid var(--line);
border-radius:5px;background:var(--card);color:var(--ink)}
.controls input{flex:1;min-width:220px}#shown{color:var(--mute)}
.result{background:var(--card);border:1px solid var(--line);border-left-width:5px;border-radius:6px;
margin:0 0 8px}
.result>summary{cursor:pointer;padding:8px 12px;display:flex;flex-wrap:wrap;gap:8px;align-items:baseline}
.badge{color:#fff;border-radius:4px;padding:1px 7px;font-size:12px;font-weight:600;min-width:88px;
text-align:center}
.key{font-weight:600;word-break:break-all}.why{color:var(--mute);flex-basis:100%;padding-left:96px;
white-space:pre-wrap;word-break:break-word}
.flag{font-size:11.5px;border:1px solid var(--changed);color:var(--changed);border-radius:10px;padding:0 7px}
.body{padding:4px 14px 14px;border-top:1px solid var(--line)}
.meta{color:var(--mute);font-size:12.5px;margin:8px 0}.meta span{margin-right:14px}
table.checks{border-collapse:collapse;width:100%;margin:6px 0 10px}
.checks td{border-top:1px solid var(--line);padding:4px 8px;vertical-align:top}
.checks td.st{width:24px;font-weight:700}.checks td.lb{width:40%}.checks .pass td.st{color:var(--improved)}
.checks .fail td.st{color:var(--regressed)}.checks .gone{color:var(--mute)}
.checks tr.flipped{background:var(--del)}.checks tr.flipped.pass{background:var(--ins)}
.was{font-size:11.5px;font-weight:600;margin-left:6px;white-space:nowrap}
.outputs{display:grid;grid-template-columns:1fr 1fr;gap:10px}.outputs.one{grid-template-columns:1fr}
@media (max-width:800px){.outputs{grid-template-columns:1fr}}
.outputs h3{font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:var(--mute);margin:0 0 3px}
pre{margin:0;padding:8px 10px;background:var(--bg);border:1px solid var(--line);border-radius:5px;
white-space:pre-wrap;word-break:break-word;max-height:480px;overflow:auto}
pre.err{border-color:var(--error)}
ins{background:var(--ins);text-decoration:none}del{background:var(--del);text-decoration:line-through}
.empty{color:var(--mute);padding:20px;text-align:center}
"""
_CSS += "".join(
    f".result.v-{v.value}{{border-left-color:var(--{v.value})}}"
    f".badge.v-{v.value},.chip.v-{v.value} b{{background:var(--{v.value})}}"
    for v in Verdict
)

_JS = """(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("pt-data").textContent);
  var rows = document.querySelectorAll("details.result");
  var verdict = document.getElementById("verdict");
  var suite = document.getElementById("suite");
  var search = document.getElementById("search");
  var shown = document.getElementById("shown");
  var none = document.getElementById("none");
  var chips = document.querySelectorAll(".chip");
  var haystacks = data.rows.map(function (row) { return row.text.toLowerCase(); });
  function apply() {
    var v = verdict.value, s = suite.value, q = search.value.trim().toLowerCase(), n = 0;
    for (var i = 0; i < rows.length; i++) {
      var row = data.rows[i];
      var ok = (!v || row.verdict === v) && (!s || row.suite === s) && (!q || haystacks[i].indexOf(q) !== -1);
      rows[i].hidden = !ok;
      if (ok) { n++; }
    }
    shown.textContent = n + " of " + rows.length + " shown";
    none.hidden = n !== 0;
    chips.forEach(function (chip) { chip.classList.toggle("on", chip.dataset.verdict === v); });
  }
  chips.forEach(function (chip) {
    chip.addEventListener("click", function () {
      verdict.value = verdict.value === chip.dataset.verdict ? "" : chip.dataset.verdict;
      apply();
    });
  });
  verdict.addEventListener("change", apply);
  suite.addEventListener("change", apply);
  search.addEventListener("input", apply);
  document.getElementById("expand").addEventListener("click", function () {
    rows.forEach(function (row) { if (!row.hidden) { row.open = true; } });
  });
  document.getElementById("collapse").addEventListener("click", function () {
    rows.forEach(function (row) { row.open = false; });
  });
  document.getElementById("controls").hidden = false;
  apply();
})();"""


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


CSP = (
    f"default-src 'none'; style-src '{_sha256(_CSS)}'; script-src '{_sha256(_JS)}'; "
    "base-uri 'none'; form-action 'none'"
)


def render_html(record: RunRecord) -> str:
    """The run as one self-contained HTML page: summary, filters, one row per result key."""
    return "".join(html_chunks(record))


def html_chunks(record: RunRecord) -> Iterator[str]:
    """The text of `render_html` in pieces, one row at a time: a 10,000-key page is never
    held whole. The rows and the filters' index are two passes over the sorted results."""
    titles = side_labels(record, run=_RUN_TITLES)
    head = f"""{page_head(f"prompttest report {record.id}", css=_CSS, csp=CSP)}
<body>
<main>
{_header(record)}
{_pooled_suites(record)}
{_summary(record)}
<noscript><p class="sub">Filters and search need JavaScript; everything else reads without it.</p></noscript>
{_controls(record)}
<section id="results">
"""
    pieces = itertools.chain(
        [head],
        (_row(index, result, titles) for index, result in enumerate(sorted_results(record.results))),
        [
            f'''\n<p id="none" class="empty"{"" if not record.results else " hidden"}>No result matches.</p>
</section>
</main>
<script type="application/json" id="pt-data">''',
            '{"rows":[',
        ],
        _index_rows(record),
        [f"]}}</script>\n<script>{_JS}</script>\n</body>\n</html>\n"],
    )
    for piece in pieces:
        # A lone surrogate in an output cannot be written as UTF-8: replace it, not crash the writer.
        yield piece.encode("utf-8", errors="replace").decode("utf-8")


def page_head(title: str, *, css: str, csp: str) -> str:
    """A self-contained page's start up to `</head>`: its policy, no referrer, its inline style."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{css}</style>
</head>"""


def script_json(value: Any) -> str:
    """JSON that is safe inside a `<script>` element: no `</script>`, `<!--` or line separator."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return re.sub("[<>&\u2028\u2029]", lambda m: _JSON_ESCAPES[m.group()], text)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _header(record: RunRecord) -> str:
    if record.options.get("sides"):  # a comparison (`diff`): no run, no start, no mode
        sub = f"<code>{_e(record.id)}</code> · comparison"
    else:
        mode = "CI gate" if record.ci else ("update run" if record.update else "local run")
        sub = f"run <code>{_e(record.id)}</code> · started {_e(record.started_at)} · {mode}"
    head = f'<h1>prompttest report</h1>\n<p class="sub">{sub}</p>'
    if record.interrupted:
        head += '\n<p class="warn">This run was interrupted: some keys were not run.</p>'
    return head


def _pooled_suites(record: RunRecord) -> str:
    """The pooled suites' verdicts, regressed first, above everything else (none: nothing)."""
    if not record.suites and not record.score_drops:
        return ""
    items = "".join(
        f'<li class="{"warn" if suite.fails else "sub"}" data-suite-verdict="{_e(suite.verdict)}">'
        f"<b>{_e(headline(suite))}</b>: <code>{_e(suite.suite)}</code> on <code>{_e(suite.target)}</code>: "
        f"{_e(sentence(suite))}</li>"
        for suite in ordered(record.suites)
    ) + "".join(
        f'<li class="sub" data-suite-verdict="score dropped"><b>score dropped</b>: '
        f"<code>{_e(drop.suite)}</code> on <code>{_e(drop.target)}</code>: {_e(score_sentence(drop))}</li>"
        for drop in record.score_drops
    )
    return f'<h2>Suites</h2>\n<ul id="suites">{items}</ul>'


def _summary(record: RunRecord) -> str:
    counts = record.counts()
    chips = "".join(
        f'<button type="button" class="chip v-{v.value}{"" if counts[v.value] else " zero"}" '
        f'data-verdict="{v.value}"><b>{counts[v.value]}</b>{v.value}</button>'
        for v in VERDICT_ORDER
    )
    s = record.summary()
    cost = "unknown" if s["cost_usd"] is None else f"${s['cost_usd']:.4f}"
    tokens = f"{s['tokens']['prompt']:,} in / {s['tokens']['completion']:,} out"
    stats = [
        ("keys", s["keys"]),
        ("passed", s["passed"]),
        ("calls", s["calls"]),
        ("cache hits", s["cache_hits"]),
        ("cost", cost),
        ("wall time", f"{s['wall_s']:.1f} s"),
        ("tokens", tokens),
    ]
    cells = "".join(
        f'<div><dt>{name}</dt><dd id="stat-{name.replace(" ", "-")}">{_e(value)}</dd></div>'
        for name, value in stats
    )
    return f'<h2>Summary</h2>\n<div class="chips" id="counts">{chips}</div>\n<dl class="stats">{cells}</dl>'


def _controls(record: RunRecord) -> str:
    counts = record.counts()
    verdicts = {v: counts[v.value] for v in Verdict}
    suites = Counter(r.suite for r in record.results)
    verdict_options = "".join(
        f'<option value="{v.value}">{v.value} ({verdicts[v]})</option>' for v in VERDICT_ORDER if verdicts[v]
    )
    suite_options = "".join(
        f'<option value="{_e(name)}">{_e(name)} ({suites[name]})</option>' for name in sorted(suites)
    )
    return f"""<h2>Results</h2>
<div class="controls" id="controls" hidden>
<select id="verdict" aria-label="verdict"><option value="">all verdicts</option>{verdict_options}</select>
<select id="suite" aria-label="suite"><option value="">all suites</option>{suite_options}</select>
<input id="search" type="search" placeholder="search keys, outputs, reasons" aria-label="search">
<button type="button" id="expand">expand all</button><button type="button" id="collapse">collapse all</button>
<span id="shown"></span>
</div>"""


def _index_rows(record: RunRecord) -> Iterator[str]:
    """What the filters and the search read, one entry per row, in row order: the items of
    `{"rows": [...]}` as `script_json` writes it, comma first but for the first."""
    separator = ""
    for result in sorted_results(record.results):
        parts = [result.key, result.answer or "", result.snapshot_answer or "", result.error or ""]
        parts += [f"{check.label}: {check.reason}" for check in result.checks]
        row = {"verdict": result.verdict.value, "suite": result.suite, "text": "\n".join(parts)}
        yield separator + script_json(row)
        separator = ","


def _row(index: int, result: Result, titles: tuple[str, str] = _RUN_TITLES) -> str:
    verdict = result.verdict.value
    flags = "".join(f'<span class="flag">{_e(flag)}</span>' for flag in result.flags)
    if result.known_failing:
        flags += '<span class="flag">known failing</span>'
    why = "\n".join(reason_lines(result))
    why_html = f'<span class="why">{_e(why)}</span>' if why else ""
    is_open = "" if result.verdict in _CLOSED else " open"
    badge = f'<span class="badge v-{verdict}">{verdict}</span>'
    return f"""<details class="result v-{verdict}" id="r{index}"{is_open}>
<summary>{badge}<span class="key">{_e(result.key)}</span>{flags}{why_html}</summary>
<div class="body">
{_meta(result)}
{_checks(result)}
{_outputs(result, titles)}
</div>
</details>
"""


def _meta(result: Result) -> str:
    items = [f"model <code>{_e(result.model)}</code>"] if result.model else []
    if result.latency_ms is not None:
        items.append(f"{result.latency_ms:,.0f} ms")
    if result.prompt_tokens is not None or result.completion_tokens is not None:
        items.append(f"tokens {_e(result.prompt_tokens or 0)} in / {_e(result.completion_tokens or 0)} out")
    if result.output is not None:
        items.append(
            "cached"
            if result.cached
            else ("cost unknown" if result.cost_usd is None else f"${result.cost_usd:.5f}")
        )
    if result.attempts > 1:
        items.append(f"{result.attempts} attempts")
    where = result.case_file or result.suite_path
    if where:
        items.append(f"<code>{_e(where)}{'' if result.case_line is None else f':{result.case_line}'}</code>")
    return '<div class="meta">' + "".join(f"<span>{item}</span>" for item in items) + "</div>"


def _checks(result: Result) -> str:
    before = result.snapshot_checks or {}
    flipped = {check.label for check in flipped_checks(result)}
    rows = []
    for check in result.checks:
        state = "pass" if check.passed else "fail"
        was = before.get(check.label)
        note = ""
        if check.label in flipped and was is not None:
            note = f'<span class="was">was {"passing" if was else "failing"}</span>'
        cls = f"{state} flipped" if check.label in flipped else state
        rows.append(
            f'<tr class="{cls}"><td class="st">{"✓" if check.passed else "✗"}</td>'
            f'<td class="lb"><code>{_e(check.label)}</code>{note}</td><td>{_e(check.reason)}</td></tr>'
        )
    current = {check.label for check in result.checks}
    for label, passed in before.items():
        if label not in current:
            rows.append(
                f'<tr class="gone"><td class="st">·</td><td class="lb"><code>{_e(label)}</code></td>'
                f"<td>in the snapshot ({'passed' if passed else 'failed'}), not checked in this run</td></tr>"
            )
    return f'<table class="checks">{"".join(rows)}</table>' if rows else ""


def _outputs(result: Result, titles: tuple[str, str] = _RUN_TITLES) -> str:
    old, new = result.snapshot_answer, result.answer
    blocks: list[tuple[str, str, str]] = []  # (title, pre class, escaped body)
    if result.error:
        blocks.append(("provider error", "err", _e(result.error)))
    if old is not None and new is not None and old != new:
        left, right = diff_html(old, new)
        blocks += [(titles[0], "", left), (titles[1], "", right)]
    elif new is not None:
        title = "output (no snapshot yet)" if old is None else "output (same as the snapshot)"
        blocks.append((title, "", _e(new)))
    elif old is not None:
        blocks.append((titles[0], "", _e(old)))
    if result.metadata is not None:  # what an app returned besides its answer
        blocks.append(("metadata", "", _e(json.dumps(result.metadata, indent=2, sort_keys=True))))
    if not blocks:
        return ""
    layout = "outputs" if len(blocks) == 2 and not result.error else "outputs one"
    cells = "".join(
        f'<div><h3>{_e(title)}</h3><pre class="{cls}">{body}</pre></div>' for title, cls, body in blocks
    )
    return f'<div class="{layout}">{cells}</div>'


def diff_html(old: str, new: str) -> tuple[str, str]:
    """Both sides of a word diff as escaped HTML: removed words in `<del>`, added in `<ins>`."""
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    if len(a) * len(b) > _WORD_DIFF_LIMIT:
        a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    left: list[str] = []
    right: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        removed, added = _e("".join(a[i1:i2])), _e("".join(b[j1:j2]))
        if op == "equal":
            left.append(removed)
            right.append(added)
            continue
        if removed:
            left.append(f"<del>{removed}</del>")
        if added:
            right.append(f"<ins>{added}</ins>")
    return "".join(left), "".join(right)

"""The `history --html` page: trends per suite and target over past runs, one self-contained
file (inline CSS, inline SVG, no script, nothing loaded), and with `--key` each key's
outputs run by run, marking where they changed.

Pure: plain data in (`history_query.page_data`), a string out. Suite, target, case, run ids,
branches and outputs are untrusted text and HTML-escaped wherever they are shown; a
Content-Security-Policy allowing only the page's own stylesheet is the second wall.
"""

from __future__ import annotations

import base64
import hashlib
import html
from typing import Any

from .html import page_head
from .svgchart import Series, bar_chart, line_chart

_VERDICT_COLOURS = {
    "regressed": "#c62828",
    "error": "#8e24aa",
    "failing": "#e65100",
    "new": "#1565c0",
    "inconclusive": "#6d4c41",
    "improved": "#2e7d32",
    "changed": "#b58900",
    "unchanged": "#90a4ae",
}
_CSS = """
:root{--bg:#f6f7f9;--card:#fff;--ink:#1d2330;--mute:#646b78;--line:#dde1e7;--a:#1565c0;--b:#e65100}
@media (prefers-color-scheme:dark){:root{--bg:#14171c;--card:#1d2128;--ink:#e4e7ec;--mute:#9aa3b0;
--line:#323844;--a:#64b5f6;--b:#ffb74d}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",
Roboto,sans-serif}
main{max-width:1280px;margin:0 auto;padding:20px}
h1{font-size:20px;margin:0 0 2px}h2{font-size:16px;margin:0 0 8px}h3{font-size:14px;margin:14px 0 6px}
.sub{color:var(--mute);margin:0 0 14px}.empty{color:var(--mute);padding:20px;text-align:center}
code,pre,.key{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
section.group,section.key{background:var(--card);border:1px solid var(--line);border-radius:6px;
padding:12px 14px;margin:0 0 14px}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:10px 18px}
figure{margin:0}figcaption{font-weight:600;font-size:12.5px;color:var(--mute);text-transform:uppercase;
letter-spacing:.04em}
svg.chart{display:block;width:100%;height:auto}
.grid{stroke:var(--line);stroke-width:1}.tick{fill:var(--mute);font-size:11px}
.line{fill:none;stroke-width:2}.pt{stroke:var(--card);stroke-width:1}
.s0.line{stroke:var(--a)}.s0.pt,.s0.sw{fill:var(--a);background:var(--a)}
.s1.line{stroke:var(--b)}.s1.pt,.s1.sw{fill:var(--b);background:var(--b)}
.pt.marked{stroke:var(--ink);stroke-width:2}
.legend{display:flex;flex-wrap:wrap;gap:10px;font-size:12px;color:var(--mute);margin:2px 0 0 64px}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px}
table{border-collapse:collapse;width:100%;font-size:12.5px}
th,td{border-top:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}
th{color:var(--mute);font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.changed td{background:rgba(181,137,0,.14)}.mark{font-weight:700;color:#b58900}
pre{margin:0;white-space:pre-wrap;word-break:break-word;max-height:160px;overflow:auto}
section.key figure{max-width:720px}details{margin-top:8px}summary{cursor:pointer;color:var(--mute)}
"""
_CSS += "".join(
    f".v-{name}{{fill:{colour};background:{colour}}}" for name, colour in _VERDICT_COLOURS.items()
)


def _hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


# No script-src at all: the page has no script, and none may run.
CSP = f"default-src 'none'; style-src '{_hash(_CSS)}'; base-uri 'none'; form-action 'none'"


def render_history_html(data: dict[str, Any]) -> str:
    """The page for `history_query.page_data`'s answer: a section per suite and target with its
    trend charts, then one per key when `keys` is there, then the runs looked at."""
    runs = data["runs"]
    labels = [_label(run) for run in runs]
    body = [_header(data)]
    if not runs:
        body.append(
            '<p class="empty">No runs in the history yet: <code>prompttest run</code> adds each run.</p>'
        )
    else:
        body += [_group(index, group, runs, labels) for index, group in enumerate(data["groups"])]
        if not data["groups"]:
            body.append('<p class="empty">No suite and target of these runs matches.</p>')
        if data.get("keys") is not None:
            body.append(_keys(data["keys"], runs, labels))
        body.append(_runs_table(runs))
    page = f"""{page_head("prompttest history", css=_CSS, csp=CSP)}
<body>
<main>
{"".join(body)}
</main>
</body>
</html>
"""
    # A lone surrogate in an output cannot be written as UTF-8: replace it, not crash the writer.
    return page.encode("utf-8", errors="replace").decode("utf-8")


def _header(data: dict[str, Any]) -> str:
    runs, where = data["runs"], data.get("filters") or {}
    span = f"{len(runs)} run(s), {_e(runs[0]['started_at'])} .. {_e(runs[-1]['started_at'])}" if runs else ""
    chosen = [f"{name} <code>{_e(value)}</code>" for name, value in where.items() if value]
    sub = " · ".join(filter(None, [span, *chosen]))
    return f'<h1>prompttest history</h1>\n<p class="sub">{sub}</p>\n'


def _group(index: int, group: dict[str, Any], runs: list[dict[str, Any]], labels: list[str]) -> str:
    """One suite and target: pass rate, latency, cost, tokens and verdicts over the runs."""
    by_run = {point["run_id"]: point for point in group["points"]}
    points = [by_run.get(run["id"]) for run in runs]

    def values(read: Any) -> list[float | None]:
        return [None if point is None else read(point) for point in points]

    def lines(*series: tuple[str, Any]) -> list[Series]:
        return [Series(name, values(read), f"s{i}") for i, (name, read) in enumerate(series)]

    verdicts = [name for name in _VERDICT_COLOURS if any(p and p["verdicts"].get(name) for p in points)]
    layers = [
        Series(name, values(lambda p, n=name: p["verdicts"].get(n, 0)), f"v-{name}") for name in verdicts
    ]
    charts = [
        (
            "pass rate",
            line_chart(
                title="pass rate",
                labels=labels,
                top=1.0,
                fmt=_percent,
                lines=lines(("pass rate", lambda p: p["pass_rate"])),
            ),
        ),
        (
            "latency (ms)",
            line_chart(
                title="latency p50 and p95, ms",
                labels=labels,
                fmt=_count,
                lines=lines(
                    ("p50", lambda p: p["latency_ms"]["p50"]), ("p95", lambda p: p["latency_ms"]["p95"])
                ),
            ),
        ),
        (
            "cost (USD)",
            line_chart(
                title="cost per run, USD",
                labels=labels,
                fmt=_money,
                lines=lines(("cost", lambda p: p["cost_usd"])),
            ),
        ),
        (
            "tokens",
            line_chart(
                title="tokens per run",
                labels=labels,
                fmt=_count,
                lines=lines(
                    ("prompt", lambda p: p["tokens"]["prompt"]),
                    ("completion", lambda p: p["tokens"]["completion"]),
                ),
            ),
        ),
        ("verdicts", bar_chart(title="verdicts per run", labels=labels, layers=layers)),
    ]
    figures = "".join(
        f'<figure data-chart="{name}"><figcaption>{name}</figcaption>{svg}</figure>' for name, svg in charts
    )
    title = f'<span class="key">{_e(group["suite"])}</span> · <span class="key">{_e(group["target"])}</span>'
    return (
        f'<section class="group" id="g{index}" data-suite="{_e(group["suite"])}" '
        f'data-target="{_e(group["target"])}">'
        f'<h2>{title}</h2><div class="charts">{figures}</div>{_numbers(group["points"], runs)}</section>\n'
    )


def _numbers(points: list[dict[str, Any]], runs: list[dict[str, Any]]) -> str:
    """The charts' values as a table: readable by a screen reader, and copyable."""
    started = {run["id"]: run["started_at"] for run in runs}
    rows = "".join(
        f'<tr><td>{_e(started[p["run_id"]])}</td><td class="n">{p["results"]}</td>'
        f'<td class="n">{p["pass_rate"]:.1%}</td><td class="n">{_ms(p["latency_ms"]["p50"])}</td>'
        f'<td class="n">{_ms(p["latency_ms"]["p95"])}</td>'
        f'<td class="n">{p["tokens"]["prompt"] + p["tokens"]["completion"]:,}</td>'
        f'<td class="n">{_money(p["cost_usd"])}</td>'
        f"<td>{_e(', '.join(f'{n} {v}' for v, n in p['verdicts'].items() if n))}</td></tr>"
        for p in points
    )
    head = "<tr><th>run started</th><th>keys</th><th>pass rate</th><th>p50 ms</th><th>p95 ms</th>"
    head += "<th>tokens</th><th>cost</th><th>verdicts</th></tr>"
    return f'<details><summary>numbers</summary><table class="numbers">{head}{rows}</table></details>'


def _keys(keys: list[dict[str, Any]], runs: list[dict[str, Any]], labels: list[str]) -> str:
    if not keys:
        return (
            '<section class="key"><h2>Keys</h2><p class="empty">No key matches in these runs.</p></section>\n'
        )
    return "".join(_key(index, item, runs, labels) for index, item in enumerate(keys))


def _key(index: int, item: dict[str, Any], runs: list[dict[str, Any]], labels: list[str]) -> str:
    """One key run by run: its latency (a ring where the output changed), then its outputs."""
    by_run = {entry["run_id"]: entry for entry in item["history"]}
    entries = [by_run.get(run["id"]) for run in runs]
    chart = line_chart(
        title="latency, ms (ringed: output changed)",
        labels=labels,
        fmt=_count,
        lines=[Series("latency", [e and e["latency_ms"] for e in entries], "s0")],
        marked=[bool(e and e["output_changed"]) for e in entries],
    )
    rows = "".join(_key_row(entry) for entry in item["history"])
    changes = sum(entry["output_changed"] for entry in item["history"])
    head = "<tr><th></th><th>run started</th><th>verdict</th><th>ms</th><th>cost</th><th>output</th></tr>"
    return (
        f'<section class="key" id="k{index}" data-key="{_e(item["key"])}">'
        f'<h2 class="key">{_e(item["key"])}</h2>'
        f'<p class="sub">{len(item["history"])} run(s), the output changed {changes} time(s)</p>'
        '<figure data-chart="key latency"><figcaption>latency (ms), ringed where the output changed'
        f"</figcaption>{chart}</figure>"
        f'<table class="outputs">{head}{rows}</table></section>\n'
    )


def _key_row(entry: dict[str, Any]) -> str:
    changed = entry["output_changed"]
    mark = '<span class="mark" title="output changed">changed</span>' if changed else ""
    text = entry["error"] or entry["output"] or ""
    return (
        f'<tr class="{"changed" if changed else "same"}"><td>{mark}</td><td>{_e(entry["started_at"])}</td>'
        f'<td>{_e(entry["verdict"])}</td><td class="n">{_ms(entry["latency_ms"])}</td>'
        f'<td class="n">{"cached" if entry["cached"] else _money(entry["cost_usd"])}</td>'
        f"<td><pre>{_e(text)}</pre></td></tr>"
    )


def _runs_table(runs: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td><code>{_e(run['id'])}</code></td><td>{_e(run['started_at'])}</td>"
        f"<td>{'CI' if run['ci'] else 'local'}</td><td><code>{_e((run['git_commit'] or '')[:10])}</code></td>"
        f'<td>{_e(run["git_branch"] or "")}</td><td class="n">{run["keys"]}</td>'
        f'<td class="n">{run["passed"]}</td><td class="n">{_money(run["cost_usd"])}</td></tr>'
        for run in reversed(runs)
    )
    head = "<tr><th>run</th><th>started</th><th></th><th>commit</th><th>branch</th><th>keys</th>"
    head += "<th>passed</th><th>cost</th></tr>"
    return (
        f'<section class="group" id="runs"><h2>Runs, newest first</h2><table>{head}{rows}</table></section>\n'
    )


def _label(run: dict[str, Any]) -> str:
    """A run on the charts' axis: its start to the minute."""
    return str(run["started_at"])[:16].replace("T", " ")


def _percent(value: float) -> str:
    return f"{value:.0%}"


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _money(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.4f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)

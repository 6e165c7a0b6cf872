"""`prompttest history --html`: the trend page's content, its escaping, and the page in
headless Chromium (charts drawn and visible, nothing requested, no script); the series it
draws and the covering index they are read from."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, replies
from test_history import suite
from test_html_report import Opened, browser  # noqa: F401  (the module's Chromium, a fixture)

from prompttest.model import CheckResult, Result, Verdict
from prompttest.records.history import SCHEMA_VERSION, append_run, open_history
from prompttest.records.history_query import key_history, page_data, select_runs, trends
from prompttest.records.history_series import percentiles, run_series
from prompttest.records.runs import RunRecord
from prompttest.report.history_html import CSP, render_history_html

HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'
START = datetime(2026, 3, 1, 12, tzinfo=UTC)
CHARTS = ["pass rate", "latency (ms)", "cost (USD)", "tokens", "verdicts"]


def result(case: str, run: int, **fields: Any) -> Result:
    """Key `case` in run `run`: passes but in run 1, slower each run, case `b` answers anew in run 2."""
    passed = run != 1 or case != "a"
    check = CheckResult(label="contains: x", passed=passed, reason="why", name="contains")
    values: dict[str, Any] = {
        "suite": "words",
        "case": case,
        "target": "fake",
        "model": "openai/fake",
        "verdict": Verdict.UNCHANGED if passed else Verdict.REGRESSED,
        "output": f"answer {case}" + (" v2" if case == "b" and run >= 2 else ""),
        "checks": (check,),
        "latency_ms": 100.0 * (run + 1) + ord(case[0]),
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_usd": 0.001 * (run + 1),
    }
    return Result(**(values | fields))


def record(run: int, results: list[Result]) -> RunRecord:
    started = START + timedelta(days=run)
    return RunRecord(
        id=f"2026030{run + 1}T120000-{run}",
        started_at=started.isoformat(),
        wall_s=1.0,
        results=tuple(results),
    )


def three_runs(path: Path) -> sqlite3.Connection:
    """words@fake keys a, b, c over three runs, plus a hostile suite/case/output in the last."""
    conn = open_history(path)
    assert conn is not None
    for run in range(3):
        results = [result(case, run) for case in "abc"]
        if run == 2:
            results.append(result(HOSTILE, run, suite=HOSTILE, output=HOSTILE, cost_usd=None))
        append_run(conn, record(run, results))
    return conn


@pytest.fixture
def store(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = three_runs(tmp_path / "history.sqlite")
    yield conn
    conn.close()


def test_series_has_a_point_per_run_with_its_rate_latency_cost_and_verdicts(
    store: sqlite3.Connection,
) -> None:
    runs = select_runs(store)
    [hostile, words] = run_series(store, runs)
    assert (words["suite"], words["target"]) == ("words", "fake") and hostile["suite"] == HOSTILE
    assert [p["run_id"] for p in words["points"]] == [run["id"] for run in runs]
    assert [p["pass_rate"] for p in words["points"]] == [1.0, round(2 / 3, 4), 1.0]
    assert (
        words["points"][1]["verdicts"]["regressed"] == 1 and words["points"][1]["verdicts"]["unchanged"] == 2
    )
    latencies = [sorted(100.0 * (run + 1) + ord(c) for c in "abc") for run in range(3)]
    assert [p["latency_ms"] for p in words["points"]] == [percentiles(values) for values in latencies]
    assert [p["cost_usd"] for p in words["points"]] == [0.003, 0.006, 0.009]
    assert [p["tokens"] for p in words["points"]] == [{"prompt": 30, "completion": 15}] * 3
    assert hostile["points"][0]["cost_usd"] is None  # a price unknown: the spend is unknown


def test_trends_are_the_series_summed(store: sqlite3.Connection) -> None:
    runs = select_runs(store)
    [_, words] = trends(store, runs)["groups"]
    assert (words["runs"], words["results"], words["passed"]) == (3, 9, 8)
    assert words["latency_ms"] == percentiles(
        sorted(100.0 * (r + 1) + ord(c) for r in range(3) for c in "abc")
    )
    assert words["cost_usd"] == pytest.approx(0.018)
    assert words["verdicts"]["regressed"] == 1 and words["verdicts"]["unchanged"] == 8
    only = trends(store, runs, suite="words", target="fake")["groups"]
    assert only == [words]


def test_a_cached_answer_adds_no_latency_or_cost(tmp_path: Path) -> None:
    conn = open_history(tmp_path / "history.sqlite")
    assert conn is not None
    append_run(conn, record(0, [result("a", 0), result("b", 0, cached=True, latency_ms=5000.0)]))
    [group] = run_series(conn, select_runs(conn))
    assert group["points"][0]["latency_ms"] == {"p50": 197.0, "p95": 197.0}
    assert group["points"][0]["cost_usd"] == 0.001
    conn.close()


def test_page_has_five_charts_per_suite_and_target_and_escapes_everything(store: sqlite3.Connection) -> None:
    runs = select_runs(store)
    page = render_history_html(page_data(store, runs, pattern="b"))
    assert page.count('<section class="group" id="g') == 2
    assert re.findall(r'<figure data-chart="([^"]+)">', page) == CHARTS * 2 + ["key latency"]
    assert HOSTILE not in page and "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page
    assert not re.search(r"<(script|img|link|iframe)\b", page) and "href=" not in page
    assert f'content="{CSP}"' in page.replace("&#x27;", "'")
    # One point per run and line: pass rate 3, latency 2 × 3, cost 3, tokens 2 × 3 in words' section.
    words = page.split('id="g1"')[1].split("</section>")[0]
    assert words.count('<circle class="pt') == 18 and words.count('<rect class="bar') == 4
    key = page.split('data-key="words/b@fake"')[1].split("</section>")[0]
    assert key.count("pt s0 marked") == 1 and key.count('<tr class="changed">') == 1
    assert "answer b v2" in key and "the output changed 1 time(s)" in key


def test_a_page_with_no_runs_says_so() -> None:
    page = render_history_html({"runs": [], "groups": [], "keys": None})
    assert "No runs in the history yet" in page and "<svg" not in page


def test_an_older_store_gets_the_trend_index(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    three_runs(path).close()
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX keys_trend")  # what a version 1 file lacks: the index, the request column
    conn.execute("ALTER TABLE keys DROP COLUMN request")
    conn.execute("UPDATE meta SET value = '1' WHERE name = 'schema_version'")
    conn.commit()
    conn.close()
    reopened = open_history(path, create=False)
    assert reopened is not None
    indexes = {row[0] for row in reopened.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "keys_trend" in indexes
    assert reopened.execute("SELECT value FROM meta").fetchone() == (str(SCHEMA_VERSION),)
    plan = reopened.execute(
        "EXPLAIN QUERY PLAN SELECT suite, sum(passed) FROM keys WHERE run_id = 'x' GROUP BY suite"
    ).fetchall()
    assert "COVERING INDEX keys_trend" in str(plan)
    reopened.close()


def test_history_html_writes_the_page_and_still_prints_the_table(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """Real runs: answers, latency and prices change between them, as the page should show."""
    suite(project)
    project.server.reply = replies({"one": "uno", "two": "dos"})
    project.run("run", capsys=capsys)
    project.server.latency = 0.3
    project.server.reply = replies({"one": "uno", "two": "zwei"})
    suite(project, "openai/history-html", "0.002")
    project.run("run", "--no-cache", capsys=capsys)
    page = project.root / "out" / "history.html"
    done = project.run("history", "--html", str(page), "--key", "two", capsys=capsys)
    assert done.code == 0 and "zwei" in done.out and f"wrote {page}" in done.err
    text = page.read_text(encoding="utf-8")
    assert re.findall(r'<figure data-chart="([^"]+)">', text) == [*CHARTS, "key latency"]
    assert [p.name for p in page.parent.iterdir()] == ["history.html"]  # no temporary file left
    [entry] = key_history_of(project)
    assert [e["output_changed"] for e in entry["history"]] == [False, True]


def key_history_of(project: Project) -> list[dict[str, Any]]:
    conn = open_history(project.root / ".prompttest" / "history.sqlite", create=False)
    assert conn is not None
    try:
        return list(key_history(conn, select_runs(conn), "two")["keys"])
    finally:
        conn.close()


def test_history_html_with_no_history_writes_an_empty_page(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    page = project.root / "history.html"
    assert project.run("history", "--html", str(page), capsys=capsys).code == 0
    assert "No runs in the history yet" in page.read_text(encoding="utf-8")
    assert not (project.root / ".prompttest" / "history.sqlite").exists()


# --------------------------------------------------------------------------- browser


@pytest.fixture
def opened(browser: Any, store: sqlite3.Connection, tmp_path: Path) -> Iterator[Opened]:  # noqa: F811
    path = tmp_path / "history.html"
    path.write_text(render_history_html(page_data(store, select_runs(store), pattern="b")), encoding="utf-8")
    page = Opened(browser, path)
    yield page
    page.context.close()


def test_charts_are_drawn_visible_and_nothing_is_requested(opened: Opened) -> None:
    page = opened.page
    assert page.locator("svg.chart:visible").count() == 2 * len(CHARTS) + 1
    for chart in page.locator("svg.chart").all():
        box = chart.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 60
    # Lines are drawn in their colour: the page's stylesheet applied under its own policy.
    line = page.locator("#g1 polyline.line.s0").first
    assert line.evaluate("e => getComputedStyle(e).stroke") not in ("", "none")
    assert page.locator("#g1 circle.pt").count() == 18
    assert opened.requests == [opened.url]
    assert opened.errors == []  # no policy violation: no inline style or script was refused


def test_hostile_names_and_outputs_are_text_and_never_run(opened: Opened) -> None:
    page = opened.page
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("script, img").count() == 0
    assert HOSTILE in page.inner_text("#g0 h2")


def test_the_key_section_marks_the_run_its_output_changed_in(opened: Opened) -> None:
    page = opened.page
    rows = page.locator("section.key table.outputs tr.changed")
    assert rows.count() == 1 and "answer b v2" in rows.inner_text() and "changed" in rows.inner_text()
    ring = page.locator("section.key circle.marked")
    assert ring.count() == 1 and ring.is_visible()
    assert "output changed" in ring.locator("title").text_content()


def test_one_run_draws_points_and_an_empty_series_says_so(tmp_path: Path) -> None:
    conn = open_history(tmp_path / "history.sqlite")
    assert conn is not None
    append_run(conn, record(0, [result("a", 0, cached=True, cost_usd=None)]))
    runs = select_runs(conn)
    page = render_history_html(page_data(conn, runs))
    assert "<polyline" not in page and page.count('<circle class="pt') == 4  # pass rate, cost 0, tokens 2
    assert page.count("no values in these runs") == 1  # the latency of a cached answer is not this run's
    filtered = render_history_html(page_data(conn, runs, suite="nope"))
    assert "No suite and target of these runs matches." in filtered and "<svg" not in filtered
    conn.close()

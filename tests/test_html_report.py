"""The `--html` report in a real browser: headless Chromium (Debian's) driven by Playwright.

Skipped when Playwright or Chromium is missing, except in CI (CI=true), which installs both
(`scripts/install-browser.sh`) and must not go green by skipping them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from prompttest.model import CheckResult, Result, Verdict
from prompttest.records.runs import RunRecord
from prompttest.report.html import render_html

CHROMIUM = Path("/usr/bin/chromium")
# Without the networking flags Chromium phones home at start; this machine refuses it.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOSTILE = (
    "<script>window.__pwned=1</script>\n"
    '<img src=x onerror="window.__pwned=1">\n'
    "</script><script>window.__pwned=1</script>"
)


def _check(label: str, passed: bool, reason: str) -> CheckResult:
    return CheckResult(label=label, passed=passed, reason=reason, name=label.split(":")[0])


def _result(suite: str, case: str, verdict: Verdict, **fields: Any) -> Result:
    return Result(suite=suite, case=case, target="gpt", model="openai/gpt-4o-mini", verdict=verdict, **fields)


def sample_record() -> RunRecord:
    """Ten keys over two suites, one of each verdict, one of them with a hostile output."""
    paris = _check("contains: Paris", True, "found 'Paris'")
    results = (
        _result(
            "capitals",
            "unchanged-a",
            Verdict.UNCHANGED,
            output="Paris.",
            snapshot_output="Paris.",
            checks=(paris,),
            snapshot_checks={"contains: Paris": True},
            cached=True,
        ),
        _result(
            "capitals",
            "france",
            Verdict.REGRESSED,
            output=HOSTILE,
            snapshot_output="The capital of France is Paris.",
            checks=(
                _check("contains: Paris", False, "expected 'Paris' in output"),
                _check("max_length: 200", True, "length 140 <= 200"),
            ),
            snapshot_checks={"contains: Paris": True, "max_length: 200": True},
            flags=("prompt changed",),
            cost_usd=None,
            prompt_tokens=12,
            completion_tokens=30,
        ),
        _result(
            "capitals",
            "spain",
            Verdict.CHANGED,
            output="Madrid is the capital of Spain.",
            snapshot_output="The capital of Spain is Madrid.",
            checks=(paris,),
            snapshot_checks={"contains: Paris": True},
            cost_usd=0.0002,
            prompt_tokens=10,
            completion_tokens=8,
        ),
        _result(
            "capitals",
            "italy",
            Verdict.IMPROVED,
            output="Rome.",
            snapshot_output="Milan.",
            checks=(_check("contains: Rome", True, "found 'Rome'"),),
            snapshot_checks={"contains: Rome": False},
            cached=True,
        ),
        _result(
            "capitals",
            "gone",
            Verdict.OBSOLETE,
            output=None,
            snapshot_output="Bern.",
            snapshot_checks={"contains: Bern": True},
        ),
        _result(
            "capitals",
            "coinflip",
            Verdict.INCONCLUSIVE,
            output="Maybe Paris.",
            snapshot_output="Paris.",
            checks=(paris,),
            snapshot_checks={"contains: Paris": True},
        ),
        _result(
            "json",
            "japan",
            Verdict.NEW,
            output='{"capital": "Tokyo"}',
            checks=(_check("is_json: true", True, "valid JSON"),),
            cost_usd=0.0001,
        ),
        _result(
            "json",
            "broken",
            Verdict.ERROR,
            output=None,
            error="RateLimitError: the provider refused after 3 attempts",
            attempts=3,
        ),
        _result(
            "json",
            "fenced",
            Verdict.FAILING,
            output="```json\n{}\n```",
            snapshot_output="```json\n{}\n```",
            checks=(_check("is_json: true", False, "a fenced block is not JSON"),),
            snapshot_checks={"is_json: true": False},
            cached=True,
        ),
        _result("json", "unchanged-b", Verdict.UNCHANGED, output="{}", snapshot_output="{}", cached=True),
    )
    return RunRecord(
        id="20260101T120000",
        started_at="2026-01-01T12:00:00+00:00",
        wall_s=4.25,
        results=results,
        ci=True,
        calls=3,
        cache_hits=4,
    )


# --------------------------------------------------------------------------- browser


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}:
        pytest.fail(f"{reason}: CI must run the browser tests (scripts/install-browser.sh)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module; each test gets its own context."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    if not CHROMIUM.exists():
        _unavailable(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        # Playwright gives the browser a fresh, empty profile (user data dir) of its own.
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


class Opened:
    """A report opened in a page, with every request and console error the page made."""

    def __init__(self, browser: Any, path: Path, *, javascript: bool = True) -> None:
        self.url = path.resolve().as_uri()
        self.context = browser.new_context(java_script_enabled=javascript)
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.failed: dict[str, str | None] = {}
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("requestfailed", lambda request: self.failed.update({request.url: request.failure}))
        self.page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.goto(self.url)

    def visible_rows(self) -> list[str]:
        return [str(key) for key in self.page.locator("details.result:visible .key").all_inner_texts()]


@pytest.fixture
def report(browser: Any, tmp_path: Path) -> Iterator[Opened]:
    path = tmp_path / "report.html"
    path.write_text(render_html(sample_record()), encoding="utf-8")
    opened = Opened(browser, path)
    yield opened
    opened.context.close()


# --------------------------------------------------------------------------- tests


def test_summary_counts_totals_and_one_row_per_key_regressions_first(report: Opened) -> None:
    page = report.page
    counts = {
        chip.get_attribute("data-verdict"): int(chip.locator("b").inner_text())
        for chip in page.locator("#counts .chip").all()
    }
    assert counts == {v.value: 2 if v is Verdict.UNCHANGED else 1 for v in Verdict}
    assert page.inner_text("#stat-keys") == "10"
    assert page.inner_text("#stat-calls") == "3"
    assert page.inner_text("#stat-cache-hits") == "4"
    assert page.inner_text("#stat-cost") == "unknown"  # the regressed key's price is unknown
    assert page.inner_text("#stat-wall-time") == "4.2 s"
    rows = report.visible_rows()
    assert len(rows) == 10
    assert rows[:3] == ["capitals/france@gpt", "json/broken@gpt", "json/fenced@gpt"]
    assert page.inner_text("#shown") == "10 of 10 shown"


def test_verdict_filter_shows_only_that_verdict(report: Opened) -> None:
    page = report.page
    page.select_option("#verdict", "unchanged")
    assert report.visible_rows() == ["capitals/unchanged-a@gpt", "json/unchanged-b@gpt"]
    page.select_option("#verdict", "")
    assert len(report.visible_rows()) == 10
    page.click('#counts .chip[data-verdict="error"]')  # a summary chip filters too
    assert report.visible_rows() == ["json/broken@gpt"]


def test_suite_filter_combines_with_verdict_filter(report: Opened) -> None:
    page = report.page
    page.select_option("#suite", "json")
    assert sorted(report.visible_rows()) == [
        "json/broken@gpt",
        "json/fenced@gpt",
        "json/japan@gpt",
        "json/unchanged-b@gpt",
    ]
    page.select_option("#verdict", "unchanged")
    assert report.visible_rows() == ["json/unchanged-b@gpt"]
    page.select_option("#suite", "")
    assert len(report.visible_rows()) == 2


def test_search_matches_keys_outputs_and_reasons(report: Opened) -> None:
    page = report.page
    page.fill("#search", "MADRID")  # an output, case-insensitively
    assert report.visible_rows() == ["capitals/spain@gpt"]
    page.fill("#search", "fenced block is not")  # a reason
    assert report.visible_rows() == ["json/fenced@gpt"]
    page.fill("#search", "capitals/ital")  # a key
    assert report.visible_rows() == ["capitals/italy@gpt"]
    page.fill("#search", "window.__pwned")  # the hostile output, read from the JSON block intact
    assert report.visible_rows() == ["capitals/france@gpt"]
    page.fill("#search", "no such text")
    assert report.visible_rows() == []
    assert page.is_visible("#none")


def test_hostile_output_is_shown_as_text_and_never_runs(report: Opened) -> None:
    page = report.page
    text = page.inner_text("#r0")
    for line in HOSTILE.splitlines():
        assert line in text
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("#results img, #results script").count() == 0
    assert report.requests == [report.url]
    assert report.errors == []


def test_csp_stops_a_missed_escape(browser: Any, tmp_path: Path) -> None:
    """Simulate a renderer bug: raw markup in the body can neither run nor load anything."""
    page_html = render_html(sample_record()).replace(
        "<main>",
        '<main><script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'
        '<img src="http://127.0.0.1:9/beacon.png">',
        1,
    )
    path = tmp_path / "leaky.html"
    path.write_text(page_html, encoding="utf-8")
    opened = Opened(browser, path)
    try:
        assert opened.page.evaluate("typeof window.__pwned") == "undefined"
        # Playwright reports each image as a request that the policy stopped before it left.
        blocked = [url for url in opened.requests if url != opened.url]
        assert [url.rsplit("/", 1)[1] for url in blocked] == ["x", "beacon.png"]
        assert all(opened.failed.get(url) == "csp" for url in blocked)
        assert sum("Content Security Policy" in error for error in opened.errors) == 4
        assert len(opened.visible_rows()) == 10  # the page's own script still runs
    finally:
        opened.context.close()


def test_the_harness_would_see_a_request_and_a_script(browser: Any, tmp_path: Path) -> None:
    """The assertions above mean something: without the policy, both are caught."""
    path = tmp_path / "canary.html"
    path.write_text("<script>window.__pwned=1</script><img src=x.png>", encoding="utf-8")
    opened = Opened(browser, path)
    try:
        assert opened.page.evaluate("window.__pwned") == 1
        assert any(url.endswith("/x.png") for url in opened.requests)
    finally:
        opened.context.close()


def test_reads_without_javascript(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    path.write_text(render_html(sample_record()), encoding="utf-8")
    opened = Opened(browser, path, javascript=False)
    try:
        page = opened.page
        assert len(opened.visible_rows()) == 10
        assert not page.is_visible("#controls")  # filters need JS: hidden rather than dead
        assert "Filters and search need JavaScript" in page.inner_text("body")
        assert "The capital of France is Paris." in page.inner_text("#r0")
        assert opened.requests == [opened.url]
    finally:
        opened.context.close()

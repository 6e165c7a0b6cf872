"""`run --junit/--markdown` and the GitHub Actions outputs, through the real CLI."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from conftest import GEO_SUITE, Project


def test_reports_of_a_regressed_ci_run(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = project.suite("geo", GEO_SUITE)
    project.server.reply = lambda r: "Paris." if "France" in r["messages"][-1]["content"] else "Tokyo."
    assert project.run("run", capsys=capsys).code == 0
    project.server.reply = lambda r: "Lyon." if "France" in r["messages"][-1]["content"] else "Tokyo."
    summary = project.root / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = project.run(
        "run", "--ci", "--no-cache", "--junit", "r/junit.xml", "--markdown", "r/pr.md", capsys=capsys
    )
    assert result.code == 1

    suites = ET.parse(project.root / "r" / "junit.xml").getroot()
    (suite,) = suites.findall("testsuite")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures")) == ("geo", "3", "1")
    failure = suite.find("testcase[@name='france@fake']/failure")
    assert failure is not None and failure.get("type") == "regressed"
    assert "expected 'Paris'" in (failure.text or "") and "+Lyon." in (failure.text or "")

    markdown = (project.root / "r" / "pr.md").read_text()
    assert markdown.index("regressed") < markdown.index("unchanged")
    assert summary.read_text().strip() == markdown.strip()

    annotation = next(line for line in result.out.splitlines() if line.startswith("::error"))
    assert f"file=suites/{path.name},line=4" in annotation
    assert "geo/france@fake" in annotation


def test_html_report_from_run_and_diff(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.suite("geo", GEO_SUITE)
    project.server.reply = lambda r: "<script>alert(1)</script>"
    assert project.run("run", "--html", "report.html", capsys=capsys).code == 1
    page = (project.root / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "geo/france@fake" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert project.run("diff", "--format", "html", "-o", "diff.html", capsys=capsys).code == 0
    assert "geo/japan@fake" in (project.root / "diff.html").read_text()

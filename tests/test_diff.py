"""`prompttest diff`: two runs, a run against the snapshots, snapshots at a git ref."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import GEO_SUITE, Project, replies

FIRST = {"France": "Paris.", "Japan": "Tokyo.", "Peru": "Lima."}
SECOND = {"France": "Lyon.", "Japan": "Tokyo.", "Peru": "Lima, Peru."}


@pytest.fixture
def two_runs(project: Project, capsys: pytest.CaptureFixture[str]) -> tuple[Project, list[str]]:
    project.suite("geo", GEO_SUITE)
    project.server.reply = replies(FIRST)
    project.run("run", capsys=capsys)
    project.server.reply = replies(SECOND)
    project.run("run", "--no-cache", capsys=capsys)
    ids = sorted(p.stem for p in (project.root / ".prompttest" / "runs").glob("*.json"))
    assert len(ids) == 2
    return project, ids


def test_diff_alone_is_the_last_run_against_the_snapshots(
    two_runs: tuple[Project, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    project, _ = two_runs
    result = project.run("diff", capsys=capsys)
    assert result.code == 0
    out = result.out
    assert out.index("regressed") < out.index("changed")  # regressions first
    assert "geo/france@fake" in out and "-Paris." in out and "+Lyon." in out
    assert "+Lima, Peru." in out
    assert "pass rate" in out and "100% → 67%" in out


def test_diff_of_two_runs_in_json_has_verdicts_and_suite_deltas(
    two_runs: tuple[Project, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    project, ids = two_runs
    result = project.run("diff", ids[0], ids[1], "--format", "json", capsys=capsys)
    data = json.loads(result.out)
    assert data["verdicts"]["regressed"] == 1 and data["verdicts"]["changed"] == 1
    assert data["verdicts"]["unchanged"] == 1
    assert [r["verdict"] for r in data["results"]][0] == "regressed"
    stats = data["suites"]["geo"]
    assert stats["a"]["pass_rate"] == 1.0 and stats["b"]["pass_rate"] == pytest.approx(2 / 3)
    assert stats["a"]["latency_p50_ms"] is not None  # runs have latency; snapshots do not


def test_diff_markdown_to_a_file(
    two_runs: tuple[Project, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    project, ids = two_runs
    result = project.run("diff", ids[0], "last", "--format", "markdown", "-o", "d.md", capsys=capsys)
    assert result.code == 0 and result.out == ""
    text = (project.root / "d.md").read_text()
    assert text.startswith("**run ") and "regressed" in text and "| suite" in text


def test_diff_base_compares_snapshots_committed_at_a_git_ref(
    two_runs: tuple[Project, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    project, _ = two_runs
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=project.root, check=True)
    subprocess.run([*git, "add", "snapshots"], cwd=project.root, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=project.root, check=True)
    project.run("accept", capsys=capsys)  # the working tree now differs from HEAD
    result = project.run("diff", "--base", "HEAD", capsys=capsys)
    assert result.code == 0
    assert result.out.startswith("snapshots at HEAD → snapshots")
    assert "regressed" in result.out and "+Lyon." in result.out
    clean = project.run("diff", "--base", "HEAD", "last", capsys=capsys)
    assert "geo/france@fake" in clean.out


def test_diff_with_an_unknown_ref_is_a_clear_error(
    two_runs: tuple[Project, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    project, _ = two_runs
    subprocess.run(["git", "init", "-q"], cwd=project.root, check=True)
    result = project.run("diff", "--base", "no-such-branch", capsys=capsys)
    assert result.code == 2
    assert "git ref" in result.err and "Traceback" not in result.err


def _commit_snapshots_then_accept(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    """HEAD holds the first run's snapshots; the working tree, the second run's outputs."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=project.root, check=True)
    subprocess.run([*git, "add", "snapshots"], cwd=project.root, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=project.root, check=True)
    project.run("accept", capsys=capsys)


def test_diff_base_between_two_sets_of_snapshots_gives_every_check_a_reason(
    two_runs: tuple[Project, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    project, _ = two_runs
    _commit_snapshots_then_accept(project, capsys)
    text = project.run("diff", "--base", "HEAD", capsys=capsys).out
    row = next(line for line in text.splitlines() if line.startswith("regressed"))
    assert row.split(None, 2)[2] == "contains: Paris: fails in snapshots (snapshots keep no reasons)"
    markdown = project.run("diff", "--base", "HEAD", "--format", "markdown", capsys=capsys).out
    assert "- `contains: Paris`: fails in snapshots (snapshots keep no reasons)\n" in markdown
    html = project.run("diff", "--base", "HEAD", "--format", "html", capsys=capsys).out
    assert "passes in snapshots at HEAD" not in html  # side B's checks are the ones shown
    assert "fails in snapshots (snapshots keep no reasons)" in html


def test_diff_markdown_footer_does_not_claim_a_ci_run(
    two_runs: tuple[Project, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    project, ids = two_runs
    _commit_snapshots_then_accept(project, capsys)
    for args in (["--base", "HEAD"], [ids[0], ids[1]]):
        markdown = project.run("diff", *args, "--format", "markdown", capsys=capsys).out
        footer = next(line for line in markdown.splitlines() if line.startswith("3 keys"))
        assert footer == "3 keys"  # a comparison makes no calls and takes no time: no --ci either


def test_a_diff_of_two_runs_labels_its_sides_with_the_runs(
    two_runs: tuple[Project, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    project, ids = two_runs
    text = project.run("diff", ids[0], ids[1], capsys=capsys).out
    assert f"--- run {ids[0]}\n+++ run {ids[1]}\n" in text
    assert "--- snapshot\n" not in text and "+++ new\n" not in text
    markdown = project.run("diff", ids[0], ids[1], "--format", "markdown", capsys=capsys).out
    assert f"--- run {ids[0]}\n+++ run {ids[1]}\n" in markdown
    html = project.run("diff", ids[0], ids[1], "--format", "html", capsys=capsys).out
    assert f"<h3>run {ids[0]}</h3>" in html and f"<h3>run {ids[1]}</h3>" in html
    assert "<h3>snapshot</h3>" not in html and "<h3>new output</h3>" not in html
    # against the snapshots, the snapshot side is still "snapshot" and the run's is the run
    against = project.run("diff", ids[1], capsys=capsys).out
    assert f"--- snapshots\n+++ run {ids[1]}\n" in against

"""`run --ci` in a git repository: a snapshot file git does not track is not a committed snapshot."""

from __future__ import annotations

import subprocess

import pytest
from conftest import GEO_SUITE, Project, replies

ANSWERS = {"France": "Paris.", "Japan": "Tokyo.", "Peru": "Lima."}


def git(project: Project, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", *args],
        cwd=project.root,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def geo(project: Project) -> Project:
    project.suite("geo", GEO_SUITE)
    project.server.reply = replies(ANSWERS)
    return project


def test_ci_fails_on_a_snapshot_file_git_does_not_track(
    geo: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    git(geo, "init", "-q")
    assert geo.run("run", capsys=capsys).code == 0  # writes snapshots/geo.yaml, not committed
    before = geo.tree()
    gate = geo.run("run", "--ci", capsys=capsys)
    assert gate.code == 1, gate.out
    assert "3 new" in gate.out
    assert "snapshots/geo.yaml is not tracked by git" in gate.err
    assert "commit snapshots/" in gate.out
    assert geo.tree() == before  # the gate writes nothing
    git(geo, "add", "-A")
    git(geo, "commit", "-q", "-m", "snapshots")
    committed = geo.run("run", "--ci", capsys=capsys)
    assert committed.code == 0, committed.out
    assert "3 unchanged" in committed.out and "not tracked" not in committed.err


def test_ci_outside_a_git_repository_trusts_the_snapshot_files(
    geo: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    assert geo.run("run", capsys=capsys).code == 0
    gate = geo.run("run", "--ci", capsys=capsys)
    assert gate.code == 0, gate.out
    assert "3 unchanged" in gate.out


def test_without_ci_an_untracked_snapshot_file_is_used(
    geo: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    git(geo, "init", "-q")
    geo.run("run", capsys=capsys)
    again = geo.run("run", capsys=capsys)
    assert again.code == 0 and "3 unchanged" in again.out

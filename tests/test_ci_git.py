"""`run --ci` in a git repository: a snapshot file git does not track is not a committed snapshot."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import GEO_SUITE, Project, replies
from fake_server import FakeServer

ANSWERS = {"France": "Paris.", "Japan": "Tokyo.", "Peru": "Lima."}


def git(project: Project | Path, *args: str) -> None:
    """git in the project's root (or in a folder)."""
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", *args],
        cwd=project if isinstance(project, Path) else project.root,
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


def test_diff_base_from_a_project_in_a_subfolder_of_the_repository(
    tmp_path: Path,
    fake_server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The repository's top is not the project's root (a monorepo, the action's
    working-directory): the base's snapshots are found all the same, from the root or deeper."""
    for name in list(os.environ):
        if name == "CI" or name.startswith("PROMPTTEST_") or name.endswith("_API_KEY"):
            monkeypatch.delenv(name)
    (tmp_path / "app").mkdir()
    monkeypatch.chdir(tmp_path / "app")
    app = Project(tmp_path / "app", fake_server)
    app.suite("geo", GEO_SUITE)
    fake_server.reply = replies(ANSWERS)
    assert app.run("run", capsys=capsys).code == 0
    git(tmp_path, "init", "-q")  # the repository's top is the project's parent
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "base")
    fake_server.reply = replies(ANSWERS | {"France": "Lyon."})
    assert app.run("run", "--no-cache", "-u", capsys=capsys).code == 1  # regressed, accepted
    for where in (app.root, app.root / "suites"):  # prompttest finds the root from below too
        monkeypatch.chdir(where)
        diff = app.run("diff", "--base", "HEAD", capsys=capsys)
        assert diff.code == 0, diff.err
        assert diff.out.startswith("snapshots at HEAD → snapshots"), diff.out
        assert "regressed" in diff.out and "geo/france@fake" in diff.out
        assert "\nnew " not in diff.out  # the base's snapshots were read: no key is new


def test_diff_base_names_a_snapshots_folder_outside_the_repository(
    tmp_path: Path,
    fake_server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    project = Project(tmp_path / "repo", fake_server)
    (project.root / "pyproject.toml").write_text('[tool.prompttest]\nsnapshots = "../elsewhere"\n')
    git(project, "init", "-q")
    result = project.run("diff", "--base", "HEAD", capsys=capsys)
    assert result.code == 2
    assert "not in the git repository" in result.err and "Traceback" not in result.err

"""Files prompttest writes get the modes an editor would give them: a new file the umask's
mode, a rewritten file the mode it had (atomic writes must not make them owner-only)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import GEO_SUITE, Project, replies

from prompttest.cli import main

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, whatever the test process was started with."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_snapshots_and_reports_get_the_umask_mode(
    project: Project, capsys: pytest.CaptureFixture[str], umask_022: None
) -> None:
    project.suite("geo", GEO_SUITE)
    project.server.reply = replies({"France": "Paris.", "Japan": "Tokyo.", "Peru": "Lima."})
    reports = ["--json", "r.json", "--junit", "r.xml", "--html", "r.html", "--markdown", "r.md"]
    assert project.run("run", *reports, capsys=capsys).code == 0
    written = [project.root / "snapshots" / "geo.yaml"] + [project.root / name for name in reports[1::2]]
    assert {path.name: oct(mode(path)) for path in written} == {path.name: "0o644" for path in written}
    assert project.run("diff", "-o", "d.txt", capsys=capsys).code == 0
    assert oct(mode(project.root / "d.txt")) == "0o644"


def test_a_new_file_follows_a_stricter_umask(
    project: Project, capsys: pytest.CaptureFixture[str], umask_022: None
) -> None:
    project.suite("geo", GEO_SUITE)
    project.server.reply = replies({"France": "Paris.", "Japan": "Tokyo.", "Peru": "Lima."})
    os.umask(0o027)
    project.run("run", "--json", "r.json", capsys=capsys)
    assert oct(mode(project.root / "snapshots" / "geo.yaml")) == "0o640"
    assert oct(mode(project.root / "r.json")) == "0o640"


def test_a_rewritten_snapshot_keeps_its_mode(
    project: Project, capsys: pytest.CaptureFixture[str], umask_022: None
) -> None:
    project.suite("geo", GEO_SUITE)
    project.server.reply = replies({"France": "Paris.", "Japan": "Tokyo.", "Peru": "Lima."})
    project.run("run", capsys=capsys)
    snapshot = project.root / "snapshots" / "geo.yaml"
    snapshot.chmod(0o664)  # group-writable, which the umask alone would not give
    project.server.reply = replies({"France": "Paris!", "Japan": "Tokyo.", "Peru": "Lima."})
    assert project.run("run", "-u", "--no-cache", capsys=capsys).code == 0
    assert "Paris!" in project.snapshot("geo")
    assert oct(mode(snapshot)) == "0o664"


def test_init_keeps_the_modes_of_pyproject_and_gitignore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask_022: None
) -> None:
    monkeypatch.chdir(tmp_path)
    pyproject, gitignore = tmp_path / "pyproject.toml", tmp_path / ".gitignore"
    pyproject.write_text('[project]\nname = "x"\n')
    gitignore.write_text("build/\n")
    pyproject.chmod(0o644)
    gitignore.chmod(0o664)
    with pytest.raises(SystemExit) as done:
        main(["init"])
    assert done.value.code == 0
    assert "[tool.prompttest]" in pyproject.read_text() and ".prompttest/" in gitignore.read_text()
    assert (oct(mode(pyproject)), oct(mode(gitignore))) == ("0o644", "0o664")
    assert oct(mode(tmp_path / "suites" / "example.yaml")) == "0o644"

"""`prompttest history import` of many run records: a progress bar on stderr when a terminal
watches, nothing of it otherwise, and stdout's one line per record either way."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Project
from test_history import record

from prompttest.cli import history as history_cli


def saved_records(project: Project, count: int) -> list[str]:
    paths = []
    for n in range(count):
        path = project.root / "artifacts" / f"run-{n:02d}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(record(f"20260301T1200{n:02d}-000000-{n}").to_json(), encoding="utf-8")
        paths.append(str(path))
    return paths


def test_many_records_on_a_terminal_show_a_bar_on_stderr(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history_cli, "_watched", lambda: True)
    paths = saved_records(project, history_cli.IMPORT_BAR_MIN + 2)
    done = project.run("history", "import", *paths, capsys=capsys)
    total = len(paths)
    assert done.code == 0 and done.out.count("added") == total and "\r" not in done.out
    assert f"] {total}/{total} run records read" in done.err and f"] {total}/{total} runs added" in done.err
    assert "\r[" in done.err and done.err.endswith("\r")  # erased at the end


@pytest.mark.parametrize(("watched", "count"), [(False, 30), (True, 3)])
def test_no_bar_when_nobody_watches_or_for_a_few_records(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    watched: bool,
    count: int,
) -> None:
    monkeypatch.setattr(history_cli, "_watched", lambda: watched)
    done = project.run("history", "import", *saved_records(project, count), capsys=capsys)
    assert done.code == 0 and done.out.count("added") == count and done.err == ""


def test_a_record_that_cannot_be_read_leaves_no_bar_behind(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history_cli, "_watched", lambda: True)
    paths = saved_records(project, history_cli.IMPORT_BAR_MIN)
    Path(paths[-1]).write_text("{", encoding="utf-8")
    done = project.run("history", "import", *paths, capsys=capsys)
    assert done.code == 2 and "not a readable run record" in done.err
    bar_end = done.err.rindex("\r")
    assert "[" not in done.err[bar_end:]  # the bar was erased before the error was written
    assert not (project.root / ".prompttest" / "history.sqlite").exists()

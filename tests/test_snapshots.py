"""Snapshot files: readable in a diff, byte-stable, atomic, and loud when broken."""

from __future__ import annotations

from pathlib import Path

import pytest

from prompttest.errors import SnapshotError
from prompttest.snapshots import Entry, read_snapshot, render_snapshot, write_snapshot


def entry(case: str, target: str = "m", output: str = "Paris", **checks: bool) -> Entry:
    return Entry(
        case=case,
        target=target,
        model="openai/m",
        request="abc",
        output=output,
        checks=checks or {"contains: Paris": True},
    )


def test_entries_are_sorted_by_case_then_target() -> None:
    entries = {e.name: e for e in [entry("b", "y"), entry("a", "z"), entry("b", "x")]}
    text = render_snapshot("s", entries)
    order = [
        line.strip().rstrip(":")
        for line in text.splitlines()
        if line.startswith("  ") and not line.startswith("   ")
    ]
    assert order == ["a@z", "b@x", "b@y"]


def test_multiline_output_is_a_literal_block_and_round_trips(tmp_path: Path) -> None:
    tricky = [
        "line one\nline two\n",
        "  leading spaces\nx",
        "trailing \nspace",
        "colon: yes\n- dash",
        "unicode é ✓\n",
        "'quotes' and \"doubles\"\n",
        "",
        "#not a comment",
        "a\n\n\nb",
    ]
    path = tmp_path / "s.yaml"
    entries = {f"c{i}@m": entry(f"c{i}", output=text) for i, text in enumerate(tricky)}
    write_snapshot(path, "s", entries)
    assert "output: |" in path.read_text()
    back = read_snapshot(path)
    assert {name: e.output for name, e in back.items()} == {name: e.output for name, e in entries.items()}


def test_same_entries_give_the_same_bytes_and_leave_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    entries = {"a@m": entry("a", output="one\ntwo")}
    assert write_snapshot(path, "s", entries) is True
    before = path.read_bytes()
    mtime = path.stat().st_mtime_ns
    assert write_snapshot(path, "s", read_snapshot(path)) is False
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == mtime


def test_checks_are_stored_as_pass_or_fail_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    write_snapshot(path, "s", {"a@m": entry("a", **{"contains: Paris": True, "max_length: 5": False})})
    assert "contains: Paris': pass" in path.read_text()
    assert read_snapshot(path)["a@m"].checks == {"contains: Paris": True, "max_length: 5": False}


def test_no_temporary_files_are_left_behind(tmp_path: Path) -> None:
    write_snapshot(tmp_path / "s.yaml", "s", {"a@m": entry("a")})
    assert [p.name for p in tmp_path.iterdir()] == ["s.yaml"]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("suite: s\nresults:\n  a@m:\n    output: [1, 2]\n", 3, "`output` must be a string"),
        ("suite: s\nresults:\n  a@m:\n    output: x\n    checks: {c: maybe}\n", 3, "pass` or `fail"),
        ("suite: s\nresults:\n  nocase:\n    output: x\n", 3, "case@target"),
        ("suite: s\nresults:\n<<<<<<< HEAD\n", 3, "merge conflict"),
        ("- just\n- a list\n", 1, "not a prompttest snapshot"),
    ],
)
def test_a_broken_snapshot_names_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(SnapshotError) as caught:
        read_snapshot(path)
    assert caught.value.file == str(path)
    assert caught.value.line == line
    assert words in caught.value.message

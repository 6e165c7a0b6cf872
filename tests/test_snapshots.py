"""Snapshot files: readable in a diff, byte-stable, atomic, and loud when broken."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FUZZ
from hypothesis import given
from hypothesis import strategies as st

from prompttest.errors import SnapshotError
from prompttest.records.snapshot_writer import render_snapshot, write_snapshot
from prompttest.records.snapshots import Entry, read_snapshot


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


def _whole_document(suite: str, entries: dict[str, Entry]) -> str:
    """The text as PyYAML dumps the whole file at once, to hold the streamed one to."""
    import yaml

    from prompttest.records.snapshot_writer import _DUMP_OPTIONS, HEADER, _SnapshotDumper

    ordered = sorted(entries.values(), key=lambda e: (e.case, e.target))
    body = {"suite": suite, "results": {e.name: e.to_yaml_data() for e in ordered}}
    return HEADER.format(suite=suite) + yaml.dump(body, Dumper=_SnapshotDumper, **_DUMP_OPTIONS)


_texts = st.text(max_size=40) | st.sampled_from(["a\nb\n", "  x\n", "", "yes", "x: y", "- z", "#", "é ✓\n\n"])


@st.composite
def _entries(draw: st.DrawFn) -> dict[str, Entry]:
    found: dict[str, Entry] = {}
    shared_params = {"stop": ["\n"], "temperature": 0}  # one object for every judge, as a suite gives
    for i in range(draw(st.integers(0, 4))):
        samples = draw(st.integers(1, 3))
        judges = (
            {"judge": {"model": "m", "params": shared_params, "rubric": "h"}} if draw(st.booleans()) else {}
        )
        made = Entry(
            case=draw(st.sampled_from(["c", "d", "é"])) + str(i),
            target=draw(_texts.filter(lambda t: "\n" not in t)) or "t",
            model=draw(_texts),
            request="abc",
            output=draw(_texts),
            checks={draw(_texts): draw(st.booleans())},
            known_failing=draw(st.booleans()),
            samples=samples,
            distribution=tuple((draw(_texts), 1) for _ in range(samples)) if samples > 1 else (),
            counts={"c": (1, samples)} if samples > 1 else {},
            judges=judges,
        )
        found[made.name] = made
    return found


@FUZZ
@given(entries=_entries(), suite=_texts)
def test_the_streamed_file_is_the_whole_documents_text(entries: dict[str, Entry], suite: str) -> None:
    assert render_snapshot(suite, entries) == _whole_document(suite, entries)


def test_judges_that_share_params_are_written_out_in_every_entry(tmp_path: Path) -> None:
    params = {"stop": ["\n"], "temperature": 0}  # one object, as a suite-level judged check gives
    judges = {"judge": {"model": "openai/j", "params": params, "rubric": "h"}}
    entries = {f"{c}@m": Entry(c, "m", "openai/m", "r", "out", {"judge": True}, judges=judges) for c in "ab"}
    path = tmp_path / "s.yaml"
    write_snapshot(path, "s", entries)
    text = path.read_text()
    assert "&id" not in text and "*id" not in text  # each entry reads whole in a PR diff
    assert text.count("stop:") == 2
    assert read_snapshot(path)["b@m"].judges["judge"]["params"] == params

"""Big JSON documents built one item at a time are byte-identical to `json.dumps`, and are
read one item at a time as `json.loads` reads them."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import FUZZ
from hypothesis import given
from hypothesis import strategies as st

from prompttest.errors import PromptTestError
from prompttest.io.jsontext import dumps_with_items, scan_object
from prompttest.model import CheckResult, Result, Verdict
from prompttest.records.runs import RunRecord, read_run, scan_run

VALUES: list[Any] = [None, True, 1, 2.5, 'é\n"x"', [], {}, [1, {"a": []}], {"k": {"n": [None, "y"]}}]


@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("head", [{}, {"a": 1}, {"a": {"b": [1, 2]}, "c": "d"}])
@pytest.mark.parametrize("items", [[], [1], VALUES])
def test_same_text_as_json_dumps(indent: int | None, head: dict[str, Any], items: list[Any]) -> None:
    separators = (",", ":") if indent is None else None
    want = json.dumps({**head, "results": items}, ensure_ascii=False, indent=indent, separators=separators)
    assert dumps_with_items(head, "results", items, indent=indent) == want


def test_a_run_records_json_is_its_to_dict() -> None:
    result = Result(
        suite="s",
        case="c",
        target="t",
        model="m",
        verdict=Verdict.CHANGED,
        output="new\ntext",
        checks=(CheckResult(label="contains: x", passed=True, reason="found 'x'", name="contains"),),
        snapshot_output="old",
    )
    record = RunRecord(id="r", started_at="now", wall_s=1.0, results=(result, result), options={"x": [1]})
    for indent in (None, 2):
        separators = (",", ":") if indent is None else None
        want = json.dumps(record.to_dict(), ensure_ascii=False, indent=indent, separators=separators)
        assert record.to_json(indent=indent) == want


def test_a_loaded_record_keeps_an_unchanged_output_once() -> None:
    data = Result(
        suite="s", case="c", target="t", model="m", verdict=Verdict.UNCHANGED, output="same"
    ).to_dict()
    data["snapshot"] = {"output": "sa" + "me", "checks": {}}
    loaded = Result.from_dict(json.loads(json.dumps(data)))
    assert loaded.snapshot_output == "same" and loaded.snapshot_output is loaded.output


# ---------------------------------------------------------------- reading a piece at a time

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=12,
)
json_objects = st.dictionaries(
    st.sampled_from(["id", "results", "summary", "x"]), json_values | st.lists(json_values, max_size=4)
)


def scanned(text: str, chunk: int) -> dict[str, Any]:
    """What scan_object gives, put back together as one object."""
    listed = isinstance(json.loads(text).get("results"), list)
    data: dict[str, Any] = {}
    for name, value in scan_object(io.StringIO(text), "results", chunk=chunk):
        if name == "results" and listed:
            data["results"] = list(value)
        else:
            data[name] = value
    return data


@FUZZ
@given(json_objects, st.sampled_from([None, 1, 2]), st.integers(1, 40))
def test_scan_object_reads_what_json_loads_reads(
    data: dict[str, Any], indent: int | None, chunk: int
) -> None:
    text = json.dumps(data, indent=indent, ensure_ascii=False)
    assert scanned(text, chunk) == json.loads(text)


@FUZZ
@given(json_objects, st.integers(0, 200), st.sampled_from(["", "x", "}", ",", "]", "1", '"', "{"]))
def test_scan_object_refuses_what_json_loads_refuses(data: dict[str, Any], at: int, junk: str) -> None:
    text = json.dumps(data)
    at = at % (len(text) + 1)
    broken = text[:at] + junk + text[at + 1 :]
    try:
        json.loads(broken)
        valid = isinstance(json.loads(broken), dict)
    except ValueError:
        valid = False
    if valid:
        list(scan_object(io.StringIO(broken), "results", chunk=3))
    else:
        with pytest.raises(ValueError):
            list(scan_object(io.StringIO(broken), "results", chunk=3))


def test_scan_run_reads_a_run_without_results(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text(
        RunRecord(id="empty", started_at="now", wall_s=0.0, results=()).to_json(), encoding="utf-8"
    )
    got: list[Result] = []
    assert scan_run(path, got.append) == "empty" and got == []


def test_scan_run_hands_out_the_results_read_run_reads(tmp_path: Path) -> None:
    results = tuple(
        Result(suite="s", case=f"c{i}", target="t", model="m", verdict=Verdict.NEW, output=f"out {i}")
        for i in range(5)
    )
    record = RunRecord(id="run-1", started_at="now", wall_s=1.0, results=results)
    path = tmp_path / "run.json"
    path.write_text(record.to_json(indent=2), encoding="utf-8")
    got: list[Result] = []
    assert scan_run(path, got.append) == "run-1"
    assert tuple(got) == read_run(path).results == results


@pytest.mark.parametrize(
    "text",
    [
        '{"id": "r", "results": [1]}',
        '{"id": 3, "results": []}',
        '{"id": "r"}',
        '{"id": "r", "results": [{',
        "",
    ],
)
def test_scan_run_turns_a_broken_record_into_an_error_naming_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / "run.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PromptTestError) as caught:
        scan_run(path, lambda result: None)
    assert caught.value.file == str(path) and "not a readable run record" in caught.value.message

"""Big JSON documents built one item at a time are byte-identical to `json.dumps`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from prompttest.jsontext import dumps_with_items
from prompttest.model import CheckResult, Result, Verdict
from prompttest.runs import RunRecord

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

"""The `--json` report: the run record's JSON form, described by a schema in the package."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

from ..records.runs import RunRecord


def render_json(record: RunRecord) -> str:
    return "".join(json_chunks(record))


def json_chunks(record: RunRecord) -> Iterator[str]:
    """The text of `render_json` in pieces, one result's at a time, for writing as they come."""
    yield from record.json_chunks(indent=2)
    yield "\n"


@cache
def report_schema() -> dict[str, Any]:
    """The JSON Schema of the report (prompttest/schemas/report.schema.json)."""
    text = resources.files("prompttest").joinpath("schemas/report.schema.json").read_text("utf-8")
    return dict(json.loads(text))

"""The `--json` report: the run record's JSON form, described by a schema in the package."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from ..runs import RunRecord


def render_json(record: RunRecord) -> str:
    return record.to_json(indent=2) + "\n"


@cache
def report_schema() -> dict[str, Any]:
    """The JSON Schema of the report (prompttest/schemas/report.schema.json)."""
    text = resources.files("prompttest").joinpath("schemas/report.schema.json").read_text("utf-8")
    return dict(json.loads(text))

"""The records data flows through, named with the product's words. No I/O here.

suite file -> Suite/Case/Target -> Job (one result key, its Call and checks)
-> Output (provider or cache) -> CheckResult -> Result (with its Verdict) -> RunRecord

`inputs`, `outputs` and `results` hold the records, `stats` the statistics of repeated samples
(`pooled`: a suite's keys together, `sequential`: `repeat: auto`, `familywise`: one run's
claims under one alpha), and `selection` how results are filtered and ordered. Imports nothing
else of prompttest.
"""

from __future__ import annotations

from .inputs import (
    Call,
    Case,
    CheckSpec,
    Job,
    RenderedTurn,
    Suite,
    Target,
    Turn,
    canonical_json,
    key_matches,
    result_key,
)
from .outputs import Output, Said, ToolCall, tool_calls_from
from .results import VERDICT_ORDER, CheckContext, CheckError, CheckResult, Result, Verdict

__all__ = [
    "Call",
    "Case",
    "CheckContext",
    "CheckError",
    "CheckResult",
    "CheckSpec",
    "Job",
    "RenderedTurn",
    "Output",
    "Result",
    "Said",
    "Suite",
    "Target",
    "Turn",
    "ToolCall",
    "VERDICT_ORDER",
    "Verdict",
    "canonical_json",
    "key_matches",
    "result_key",
    "tool_calls_from",
]

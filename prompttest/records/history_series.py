"""The history run by run: per suite and target, one point per run (pass rate, verdict
counts, latency p50/p95, tokens, cost), the series `history --html` draws as trends, and
what the `history` table sums over the runs.

Aggregated by SQLite over the covering index `keys_trend`: a history of a million key rows
is never walked row by row in Python (that took 3.4 s at 100 runs × 10,000 keys). Plain
dicts out, like `history_query`.
"""

from __future__ import annotations

import json
import math
import sqlite3
from typing import Any

from ..model import Verdict

# A key's row counts towards latency and cost only when it was answered in that run: a
# cached answer's latency is an old one, and it cost nothing.
_CALLED = "NOT cached AND output_hash IS NOT NULL"
_COUNTS = f"""
SELECT suite, target, run_id, verdict, count(*), sum(passed), sum(coalesce(prompt_tokens, 0)),
       sum(coalesce(completion_tokens, 0)), sum(CASE WHEN {_CALLED} THEN cost_usd END),
       max({_CALLED} AND cost_usd IS NULL)
FROM keys WHERE {{where}} GROUP BY suite, target, run_id, verdict
"""
# One JSON array per suite, target and run: parsed and sorted in C, not a Python loop a row.
_LATENCIES = f"""
SELECT suite, target, run_id, json_group_array(latency_ms)
FROM keys WHERE {{where}} AND {_CALLED} AND latency_ms IS NOT NULL GROUP BY suite, target, run_id
"""
VERDICT_NAMES = tuple(v.value for v in Verdict if v is not Verdict.OBSOLETE)

Cell = tuple[str, str, str]  # (suite, target, run id)


def run_cells(
    conn: sqlite3.Connection,
    runs: list[dict[str, Any]],
    *,
    suite: str | None = None,
    target: str | None = None,
) -> dict[Cell, dict[str, Any]]:
    """Per suite, target and run: results, passed, verdict counts, tokens, cost spent (None
    when a price was unknown) and the sorted latencies of the answers called in that run."""
    where, args = _where(runs, suite=suite, target=target)
    cells: dict[Cell, dict[str, Any]] = {}
    for name, target_id, run_id, verdict, results, passed, prompt, completion, cost, unknown in conn.execute(
        _COUNTS.format(where=where), args
    ):
        cell = cells.setdefault((name, target_id, run_id), _empty_cell())
        cell["results"] += results
        cell["passed"] += passed
        cell["verdicts"][verdict] = cell["verdicts"].get(verdict, 0) + results
        cell["tokens"]["prompt"] += prompt
        cell["tokens"]["completion"] += completion
        spent = cell["cost_usd"]
        cell["cost_usd"] = None if spent is None or unknown else spent + (cost or 0.0)
    for name, target_id, run_id, latencies in conn.execute(_LATENCIES.format(where=where), args):
        cells[(name, target_id, run_id)]["latencies"] = sorted(json.loads(latencies))
    return cells


def run_series(
    conn: sqlite3.Connection,
    runs: list[dict[str, Any]],
    *,
    suite: str | None = None,
    target: str | None = None,
) -> list[dict[str, Any]]:
    """Per suite and target (sorted), its `points`: one per run of `runs` it has keys in,
    oldest first, each with pass rate, verdict counts, latency p50/p95, tokens and cost."""
    order = {run["id"]: index for index, run in enumerate(runs)}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for (name, target_id, run_id), cell in run_cells(conn, runs, suite=suite, target=target).items():
        groups.setdefault((name, target_id), []).append(
            {
                "run_id": run_id,
                "results": cell["results"],
                "passed": cell["passed"],
                "pass_rate": round(cell["passed"] / cell["results"], 4),
                "verdicts": {v: cell["verdicts"].get(v, 0) for v in VERDICT_NAMES},
                "latency_ms": percentiles(cell["latencies"]),
                "tokens": cell["tokens"],
                "cost_usd": None if cell["cost_usd"] is None else round(cell["cost_usd"], 6),
            }
        )
    return [
        {"suite": name, "target": target_id, "points": sorted(points, key=lambda p: order[p["run_id"]])}
        for (name, target_id), points in sorted(groups.items())
    ]


def percentiles(ordered: list[float]) -> dict[str, float | None]:
    """p50 and p95 of sorted values by nearest rank: a latency some answer really had."""
    if not ordered:
        return {"p50": None, "p95": None}
    rank = {q: ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] for q in (50, 95)}
    return {"p50": round(rank[50], 1), "p95": round(rank[95], 1)}


def _empty_cell() -> dict[str, Any]:
    return {
        "results": 0,
        "passed": 0,
        "verdicts": {},
        "tokens": {"prompt": 0, "completion": 0},
        "cost_usd": 0.0,
        "latencies": [],
    }


def _where(runs: list[dict[str, Any]], *, suite: str | None, target: str | None) -> tuple[str, list[Any]]:
    where = "run_id IN (SELECT value FROM json_each(?))"
    args: list[Any] = [json.dumps([run["id"] for run in runs])]
    for column, value in (("suite", suite), ("target", target)):
        if value is not None:
            where += f" AND {column} = ?"
            args.append(value)
    return where, args

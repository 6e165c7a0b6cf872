"""Reading the history store: trends per suite and target, and one key's outputs over time.

Both answers are plain dicts (the JSON of `prompttest history --format json`); the CLI
turns them into tables.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from typing import Any

from ..model.inputs import key_matches
from .history_series import VERDICT_NAMES, percentiles, run_cells, run_series

_RUN_COLUMNS = "id, started_at, wall_s, ci, git_commit, git_branch, keys, passed, cost_usd"


def select_runs(
    conn: sqlite3.Connection, *, last: int | None = None, since: str | None = None
) -> list[dict[str, Any]]:
    """The runs looked at, oldest first: the newest `last` of them, started on or after `since`."""
    query = f"SELECT {_RUN_COLUMNS} FROM runs"
    args: list[Any] = []
    if since:
        query += " WHERE started_at >= ?"
        args.append(since)
    query += " ORDER BY started_at DESC, id DESC"
    if last:
        query += " LIMIT ?"
        args.append(last)
    names = [name.strip() for name in _RUN_COLUMNS.split(",")]
    runs = [dict(zip(names, row, strict=True)) for row in conn.execute(query, args)]
    for run in runs:
        run["ci"] = bool(run["ci"])
    return runs[::-1]


def trends(
    conn: sqlite3.Connection,
    runs: list[dict[str, Any]],
    *,
    suite: str | None = None,
    target: str | None = None,
) -> dict[str, Any]:
    """Per suite and target over `runs`: pass rate, verdict counts, latency p50/p95 (of
    answers called in those runs: a cached answer's latency is an old one), tokens and cost
    (spent: cache hits cost nothing; None when a price was unknown)."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for (name, target_id, _), cell in sorted(run_cells(conn, runs, suite=suite, target=target).items()):
        group = groups.setdefault((name, target_id), _empty_group(name, target_id))
        group["runs"] += 1
        group["results"] += cell["results"]
        group["passed"] += cell["passed"]
        group["verdicts"].update(cell["verdicts"])
        group["tokens"]["prompt"] += cell["tokens"]["prompt"]
        group["tokens"]["completion"] += cell["tokens"]["completion"]
        spent = group["cost_usd"]
        group["cost_usd"] = None if spent is None or cell["cost_usd"] is None else spent + cell["cost_usd"]
        group["latencies"].extend(cell["latencies"])
    listed = []
    for group in groups.values():
        latencies, spent = group.pop("latencies"), group["cost_usd"]
        listed.append(
            {
                **group,
                "pass_rate": round(group["passed"] / group["results"], 4) if group["results"] else None,
                "verdicts": {name: group["verdicts"].get(name, 0) for name in VERDICT_NAMES},
                "latency_ms": percentiles(sorted(latencies)),
                "cost_usd": None if spent is None else round(spent, 6),
            }
        )
    return {"runs": runs, "groups": listed}


def _empty_group(suite: str, target: str) -> dict[str, Any]:
    return {
        "suite": suite,
        "target": target,
        "results": 0,
        "passed": 0,
        "verdicts": Counter[str](),
        "tokens": {"prompt": 0, "completion": 0},
        "cost_usd": 0.0,
        "runs": 0,
        "latencies": [],
    }


def key_history(conn: sqlite3.Connection, runs: list[dict[str, Any]], pattern: str) -> dict[str, Any]:
    """Each key matching `pattern` (as `-k` does: a glob, or a part of the key), run by run,
    oldest first, with `output_changed` where its output differs from its previous run's."""
    keys: dict[str, list[dict[str, Any]]] = {}
    started = {run["id"]: run["started_at"] for run in runs}
    ids = _ids(runs)
    every = conn.execute(
        "SELECT DISTINCT key FROM keys WHERE run_id IN (SELECT value FROM json_each(?))", (ids,)
    )
    wanted = json.dumps([key for (key,) in every if key_matches(key, [pattern])])
    query = (
        "SELECT key, run_id, verdict, passed, latency_ms, prompt_tokens, completion_tokens, cost_usd, "
        "cached, error, output_hash, output FROM keys WHERE run_id IN (SELECT value FROM json_each(?)) "
        "AND key IN (SELECT value FROM json_each(?))"
    )
    rows = conn.execute(query, (ids, wanted)).fetchall()
    rows.sort(key=lambda row: (row[0], started[row[1]], row[1]))
    for key, run_id, verdict, passed, latency, prompt, completion, cost, cached, error, digest, text in rows:
        seen = keys.setdefault(key, [])
        before = next((entry["output_hash"] for entry in reversed(seen) if entry["output_hash"]), None)
        seen.append(
            {
                "run_id": run_id,
                "started_at": started[run_id],
                "verdict": verdict,
                "passed": bool(passed),
                "latency_ms": latency,
                "tokens": {"prompt": prompt, "completion": completion},
                "cost_usd": cost,
                "cached": bool(cached),
                "error": error,
                "output_hash": digest,
                "output_changed": bool(before and digest and digest != before),
                "output": text,
            }
        )
    return {"runs": runs, "keys": [{"key": key, "history": entries} for key, entries in sorted(keys.items())]}


def page_data(
    conn: sqlite3.Connection,
    runs: list[dict[str, Any]],
    *,
    suite: str | None = None,
    target: str | None = None,
    pattern: str | None = None,
) -> dict[str, Any]:
    """What `history --html` draws: the runs, each suite and target run by run, and with
    `pattern` those keys' histories (else `keys` is None)."""
    return {
        "runs": runs,
        "filters": {"suite": suite, "target": target, "key": pattern},
        "groups": run_series(conn, runs, suite=suite, target=target),
        "keys": key_history(conn, runs, pattern)["keys"] if pattern else None,
    }


def _ids(runs: list[dict[str, Any]]) -> str:
    """The runs' ids as one JSON list: a query parameter however many there are."""
    return json.dumps([run["id"] for run in runs])

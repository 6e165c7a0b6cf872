"""Run records: everything one run produced, under `.prompttest/runs/`, for later commands."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from ..errors import PromptTestError
from ..io.atomic import atomic_write
from ..io.jsontext import chunks_with_items, scan_object
from ..model import Result, Verdict
from ..verdicts.scores import ScoreDrop
from ..verdicts.suites import SuiteVerdict

RECORD_VERSION = 1
T = TypeVar("T")


@dataclass(frozen=True)
class RunRecord:
    """One run: its results (obsolete snapshot entries included) and how it went."""

    id: str
    started_at: str
    wall_s: float
    # A tuple, or for a run just made a ResultSpool: read from disk as it is gone through.
    results: Sequence[Result]
    ci: bool = False
    update: bool = False
    calls: int = 0  # provider requests sent, retries included
    cache_hits: int = 0
    interrupted: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    # Suites (on a target) whose repeated keys were pooled: their pass rate's verdict.
    suites: tuple[SuiteVerdict, ...] = ()
    # Suites (on a target) whose scored checks' scores dropped over their keys.
    score_drops: tuple[ScoreDrop, ...] = ()

    @property
    def regressed_suites(self) -> list[SuiteVerdict]:
        return [suite for suite in self.suites if suite.fails]

    def counts(self) -> dict[str, int]:
        """How many keys got each verdict (every verdict listed, zeros included)."""
        return dict(self._totals["verdicts"])

    def summary(self) -> dict[str, Any]:
        totals = self._totals
        return {
            "keys": totals["keys"],
            "verdicts": dict(totals["verdicts"]),
            "passed": totals["passed"],
            "tokens": dict(totals["tokens"]),
            # Spend of this run (cache hits cost nothing); None when any price is unknown.
            "cost_usd": totals["cost_usd"],
            # What the judged checks' own calls cost (judges, embeddings), apart.
            "judge_cost_usd": totals["judge_cost_usd"],
            "calls": self.calls,
            "cache_hits": self.cache_hits,
            "wall_s": round(self.wall_s, 3),
        }

    @cached_property
    def _totals(self) -> dict[str, Any]:
        """The summary's sums, in one pass over the results (which may be read from disk)."""
        verdicts = Counter[Verdict]()
        keys = passed = prompt = completion = 0
        cost: float | None = 0.0
        judge_cost: float | None = 0.0
        answered: set[str] = set()  # models a fresh answer came from (it told their price)
        failed: set[str] = set()  # models called this run that gave no answer to a key
        for result in self.results:
            keys += 1
            verdicts[result.verdict] += 1
            passed += result.passed and result.verdict is not Verdict.OBSOLETE
            if result.judge_cost_usd is None or judge_cost is None:
                judge_cost = None
            else:
                judge_cost += result.judge_cost_usd
            if result.output is None:
                if result.error is not None and result.attempts:
                    failed.add(result.model)
                continue
            if not result.cached:
                answered.add(result.model)
            prompt += result.prompt_tokens or 0
            completion += result.completion_tokens or 0
            if not result.cached:
                cost = None if cost is None or result.cost_usd is None else cost + result.cost_usd
        return {
            "keys": keys,
            "verdicts": {verdict.value: verdicts.get(verdict, 0) for verdict in Verdict},
            "passed": passed,
            "tokens": {"prompt": prompt, "completion": completion},
            # Calls that all failed told nothing of their model's price: not $0, unknown.
            "cost_usd": None if cost is None or failed - answered else round(cost, 6),
            "judge_cost_usd": None if judge_cost is None else round(judge_cost, 6),
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.header(), "results": [result.to_dict() for result in self.results]}

    def header(self) -> dict[str, Any]:
        """Everything of `to_dict` but the results (which come last)."""
        return {
            "version": RECORD_VERSION,
            "id": self.id,
            "started_at": self.started_at,
            "ci": self.ci,
            "update": self.update,
            "interrupted": self.interrupted,
            "options": self.options,
            "summary": self.summary(),
            "suites": [suite.to_dict() for suite in self.suites],
            "score_drops": [drop.to_dict() for drop in self.score_drops],
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """`json.dumps(self.to_dict())`, one result at a time (see jsontext)."""
        return "".join(self.json_chunks(indent=indent))

    def json_chunks(self, *, indent: int | None = None) -> Iterator[str]:
        """The text of `to_json` in pieces, one result's at a time, for writing as they come."""
        return chunks_with_items(
            self.header(), "results", self.results, indent=indent, to_json=Result.to_dict
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        summary = data.get("summary", {})
        return cls(
            id=data["id"],
            started_at=data["started_at"],
            wall_s=float(summary.get("wall_s", 0.0)),
            results=tuple(Result.from_dict(item) for item in data["results"]),
            ci=bool(data.get("ci")),
            update=bool(data.get("update")),
            calls=int(summary.get("calls", 0)),
            cache_hits=int(summary.get("cache_hits", 0)),
            interrupted=bool(data.get("interrupted")),
            options=dict(data.get("options") or {}),
            suites=tuple(SuiteVerdict.from_dict(item) for item in data.get("suites") or ()),
            score_drops=tuple(ScoreDrop.from_dict(item) for item in data.get("score_drops") or ()),
        )


def write_run(runs_dir: Path, record: RunRecord) -> Path:
    """Write the record as `<id>.json`, atomically."""
    path = runs_dir / f"{record.id}.json"
    # Compact: json's C encoder only runs without `indent` (5x faster on a 10,000-key record).
    atomic_write(path, itertools.chain(record.json_chunks(), ["\n"]))
    return path


def read_run(path: Path) -> RunRecord:
    """Load a run record; a broken one is a clear error, not a traceback."""
    return _guarded(path, lambda: _checked(RunRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))))


def scan_run(path: Path, add: Callable[[Result], None]) -> str:
    """Hand each result of a run record to `add` as it is read, and return the run's id:
    the file is read a piece at a time, so a 10,000-key record is never held whole."""
    return _guarded(path, lambda: _scan(path, add))


def _scan(path: Path, add: Callable[[Result], None]) -> str:
    run_id: Any = None
    listed = False  # a `results` array was there (if empty, nothing is handed out)
    with path.open(encoding="utf-8") as handle:
        for name, value in scan_object(handle, "results"):
            if name == "id":
                run_id = value
            elif name == "results":
                if not isinstance(value, Iterator):
                    raise TypeError("`results` must be a list")
                listed = True
                for index, item in enumerate(value):
                    if not isinstance(item, dict):
                        raise TypeError(f"results[{index}] must be an object")
                    add(_check_result(Result.from_dict(item), f"results[{index}]"))
    if not isinstance(run_id, str):
        raise TypeError("`id` must be a string")
    if not listed:
        raise LookupError("'results'")
    return run_id


def _guarded(path: Path, read: Callable[[], T]) -> T:
    """What `read` gives; whatever reading a run record raises becomes a clear error naming it."""
    try:
        return read()
    except FileNotFoundError:
        raise PromptTestError(f"no run record at {path}", hint="run `prompttest run` first") from None
    except OSError as exc:
        raise PromptTestError(f"cannot read run record: {exc.strerror or exc}", file=str(path)) from None
    except (ValueError, LookupError, TypeError, AttributeError, RecursionError) as exc:
        # LookupError, AttributeError: a missing key or a value of the wrong JSON type;
        # RecursionError: absurdly deep nesting. All of them mean a broken file, not a bug.
        raise PromptTestError(
            f"not a readable run record ({type(exc).__name__}: {exc})",
            file=str(path),
            hint="run records are written by `prompttest run`; delete this one",
        ) from None


_NONE = type(None)
_NUMBER = (int, float, _NONE)
_RESULT_FIELDS: dict[str, tuple[type, ...]] = {
    "suite": (str,),
    "case": (str,),
    "target": (str,),
    "model": (str,),
    "output": (str, _NONE),
    "error": (str, _NONE),
    "request": (str,),
    "change": (str, _NONE),
    "similarity": _NUMBER,
    "latency_ms": _NUMBER,
    "cost_usd": _NUMBER,
    "judge_cost_usd": _NUMBER,
    "prompt_tokens": (int, _NONE),
    "completion_tokens": (int, _NONE),
    "snapshot_output": (str, _NONE),
    "snapshot_checks": (dict, _NONE),
    "refusal": (str, _NONE),
    "snapshot_refusal": (str, _NONE),
    "suite_path": (str,),
    "case_file": (str,),
    "case_line": (int, _NONE),
}
_CHECK_FIELDS: dict[str, tuple[type, ...]] = {
    "label": (str,),
    "passed": (bool,),
    "reason": (str,),
    "name": (str,),
    "passed_count": (int, _NONE),
    "samples": (int, _NONE),
    "p_value": _NUMBER,
    "error": (str, _NONE),
    "judge": (dict, _NONE),
    "stale": (bool,),
}


def _checked(record: RunRecord) -> RunRecord:
    """The record, if every value has the type the reports rely on; else a TypeError."""
    if not isinstance(record.id, str) or not isinstance(record.started_at, str):
        raise TypeError("`id` and `started_at` must be strings")
    for index, result in enumerate(record.results):
        _check_result(result, f"results[{index}]")
    return record


def _check_result(result: Result, where: str) -> Result:
    _check_fields(result, _RESULT_FIELDS, where)
    if not all(isinstance(text, str) for text in (*result.outputs, *result.flags)):
        raise TypeError(f"{where}: `output` and `flags` must hold strings")
    if not all(isinstance(call.name, str) for call in (*result.tool_calls, *result.snapshot_tool_calls)):
        raise TypeError(f"{where}: every tool call needs a name")
    for check in result.checks:
        _check_fields(check, _CHECK_FIELDS, f"{where}.checks")
        counts = [(check.passed_count or 0, check.samples or 0)] + ([check.before] if check.before else [])
        if check.samples is not None and not all(0 <= k <= n for k, n in counts):
            raise ValueError(f"{where}.checks: pass counts must be 0 <= passed <= samples")
    return result


def _check_fields(item: object, fields: dict[str, tuple[type, ...]], where: str) -> None:
    for name, kinds in fields.items():
        if not isinstance(getattr(item, name), kinds):
            raise TypeError(f"{where}.{name} has the wrong type")


def latest_run(runs_dir: Path) -> Path | None:
    """The newest run record (ids sort by time)."""
    records = sorted(runs_dir.glob("*.json")) if runs_dir.exists() else []
    return records[-1] if records else None


def previous_results(runs_dir: Path, *, before: str, keys: set[str], depth: int = 10) -> dict[str, Result]:
    """For each key, its result in the newest run older than run `before` that has it."""
    older = [p for p in sorted(runs_dir.glob("*.json"), reverse=True) if p.stem < before]
    found: dict[str, Result] = {}
    for path in older[:depth]:
        try:
            record = read_run(path)
        except PromptTestError:
            continue  # an unreadable old record only means fewer deltas
        for result in record.results:
            if result.key in keys and result.key not in found and result.output is not None:
                found[result.key] = result
        if len(found) == len(keys):
            break
    return found


def last_run(runs_dir: Path) -> tuple[Path, RunRecord]:
    """The newest run record, or a clear error when there is none."""
    path = latest_run(runs_dir)
    if path is None:
        raise PromptTestError("no run to review yet", hint="run `prompttest run` first")
    return path, read_run(path)


def find_run(runs_dir: Path, ref: str) -> Path:
    """Where a run record is: a path, a run id (a file in the runs folder), or `last`."""
    if ref == "last":
        found = latest_run(runs_dir)
        if found is None:
            raise PromptTestError("no run record yet", hint="run `prompttest run` first")
        return found
    path = Path(ref)
    if not path.suffix and (runs_dir / f"{ref}.json").exists():
        return runs_dir / f"{ref}.json"
    return path

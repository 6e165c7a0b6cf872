"""Drift: did the latest run move away from the runs before it, though the model's name and the
prompts stayed? What `prompttest history --check` answers, from the history store.

Per suite and target, the latest run is compared with the previous K runs that ran it:
- pass rate: the pooled pass counts, with the one-sided Fisher exact test the gate uses;
- latency: each key against its own median before (Wilcoxon signed-rank, one-sided), and the
  p95 up by more than a tolerance: both, so that a noisy night alone never alarms;
- cost: the cost per token of each key against its median before (a price change);
- silent model swap: the share of outputs that changed with the same model and request,
  against how often they changed between the earlier runs (Fisher exact, one-sided).
Only answers called in a run count for latency, cost and swaps: a cache hit replays an old
answer and its old latency. The p-values are Bonferroni-corrected over every test made, so
a check over many suites stays quiet on noise.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..errors import HistoryError
from .drift_measures import Finding, Group, Row, RunRef, Skipped, cost, latency, pass_rate, swap

DEFAULT_WINDOW = 7
# Stricter than a gate's 0.05: a nightly check looks every night, and ten nights of noise
# should pass without a false alarm (at 0.01, 19 in 20 of them do: tests/test_history_check.py).
DEFAULT_ALPHA = 0.01
DEFAULT_LATENCY_TOLERANCE = 0.20  # p95 up by more than this share
DEFAULT_COST_TOLERANCE = 0.10  # cost per token moved by more than this share, either way


@dataclass(frozen=True)
class DriftReport:
    latest: RunRef
    baseline: tuple[RunRef, ...]  # newest first
    window: int
    alpha: float
    tests: int  # p-values corrected together
    checked: tuple[Finding, ...]
    skipped: tuple[Skipped, ...]

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.checked if f.drifted)

    @property
    def drifted(self) -> bool:
        return bool(self.findings)

    def to_dict(self) -> dict[str, Any]:
        """The JSON of `prompttest history --check --format json`."""
        return {
            "drifted": self.drifted,
            "latest": asdict(self.latest),
            "baseline": [asdict(run) for run in self.baseline],
            "window": self.window,
            "alpha": self.alpha,
            "tests": self.tests,
            "correction": "bonferroni",
            "findings": [asdict(f) for f in self.findings],
            "quiet": [asdict(f) for f in self.checked if not f.drifted],
            "skipped": [asdict(s) for s in self.skipped],
        }


def check_drift(
    conn: sqlite3.Connection,
    *,
    window: int = DEFAULT_WINDOW,
    alpha: float = DEFAULT_ALPHA,
    latency_tolerance: float = DEFAULT_LATENCY_TOLERANCE,
    cost_tolerance: float = DEFAULT_COST_TOLERANCE,
    suite: str | None = None,
    target: str | None = None,
) -> DriftReport:
    """Compare the latest run with the previous `window` runs of the same suites and targets."""
    where = _Filter(suite, target)
    latest = _latest_run(conn, where)
    if latest is None:
        raise HistoryError(
            "no runs in the history" + where.said(), hint="every `prompttest run` adds its run to the history"
        )
    pairs = _groups_of(conn, latest, where)
    baseline = _earlier_runs(conn, latest, pairs, window)
    if not baseline:
        raise HistoryError(
            f"only one run in the history{where.said()} (run {latest.id}): nothing to compare it with",
            hint="--check compares the latest run with the ones before it; run the suites again first",
        )
    groups = list(_load_groups(conn, latest, baseline, pairs, where))
    measured: list[Finding] = []
    skipped: list[Skipped] = []
    for group in groups:
        for outcome in (
            pass_rate(group),
            latency(group, latency_tolerance),
            cost(group, cost_tolerance),
            swap(group),
        ):
            if isinstance(outcome, Finding):
                measured.append(outcome)
            else:
                skipped.append(outcome)
    tests = sum(f.p_value is not None for f in measured)
    checked = tuple(_decide(f, tests=tests, alpha=alpha) for f in measured)
    return DriftReport(latest, tuple(baseline), window, alpha, tests, checked, tuple(skipped))


def _decide(finding: Finding, *, tests: int, alpha: float) -> Finding:
    """Bonferroni: a p-value times the number of tests, so noise in one of many stays quiet."""
    if finding.p_value is None:
        return replace(finding, drifted=finding.beyond_threshold)
    adjusted = min(1.0, finding.p_value * tests)
    return replace(finding, adjusted_p=adjusted, drifted=finding.beyond_threshold and adjusted < alpha)


# --------------------------------------------------------------------------- reading the store


@dataclass(frozen=True)
class _Filter:
    suite: str | None
    target: str | None

    def chosen(self) -> list[tuple[str, str]]:
        return [(name, value) for name, value in (("suite", self.suite), ("target", self.target)) if value]

    def sql(self) -> tuple[str, list[str]]:
        """` AND suite = ? ...` and its arguments: nothing when there is no filter."""
        return "".join(f" AND {name} = ?" for name, _ in self.chosen()), [value for _, value in self.chosen()]

    def said(self) -> str:
        parts = [f"{name} {value}" for name, value in self.chosen()]
        return f" for {' and '.join(parts)}" if parts else ""


def _latest_run(conn: sqlite3.Connection, where: _Filter) -> RunRef | None:
    extra, args = where.sql()
    row = conn.execute(
        f"SELECT id, started_at FROM runs WHERE id IN (SELECT run_id FROM keys WHERE 1 = 1{extra}) "
        "ORDER BY started_at DESC, id DESC LIMIT 1",
        args,
    ).fetchone()
    return RunRef(*row) if row else None


def _groups_of(conn: sqlite3.Connection, run: RunRef, where: _Filter) -> list[tuple[str, str]]:
    extra, args = where.sql()
    query = f"SELECT DISTINCT suite, target FROM keys WHERE run_id = ?{extra} ORDER BY suite, target"
    return [(suite, target) for suite, target in conn.execute(query, [run.id, *args])]


def _earlier_runs(
    conn: sqlite3.Connection, latest: RunRef, pairs: list[tuple[str, str]], window: int
) -> list[RunRef]:
    """The newest `window` runs before the latest that ran at least one of its suites and targets."""
    ids: set[str] = set()
    for suite, target in pairs:  # the (suite, target, run_id) index answers each
        query = "SELECT DISTINCT run_id FROM keys WHERE suite = ? AND target = ?"
        ids.update(run_id for (run_id,) in conn.execute(query, (suite, target)))
    ids.discard(latest.id)
    query = (
        "SELECT id, started_at FROM runs WHERE id IN (SELECT value FROM json_each(?)) "
        "AND (started_at < ? OR (started_at = ? AND id < ?)) ORDER BY started_at DESC, id DESC LIMIT ?"
    )
    args = (json.dumps(sorted(ids)), latest.started_at, latest.started_at, latest.id, window)
    return [RunRef(*row) for row in conn.execute(query, args)]


def _load_groups(
    conn: sqlite3.Connection,
    latest: RunRef,
    baseline: list[RunRef],
    pairs: list[tuple[str, str]],
    where: _Filter,
) -> Iterator[Group]:
    extra, args = where.sql()
    ids = json.dumps([run.id for run in [latest, *baseline]])
    query = (
        # A key passes when its checks do: `passed` also holds the run's mode (a `new` key fails
        # a CI run, a `changed` one a strict run), which may differ from one run to the next.
        "SELECT suite, target, run_id, key, model, request, checks_passed = checks_total, latency_ms, "
        "coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0), cost_usd, cached, error IS NOT NULL, "
        f"output_hash FROM keys WHERE run_id IN (SELECT value FROM json_each(?)){extra}"
    )
    rows: dict[tuple[str, str], dict[str, list[Row]]] = defaultdict(lambda: defaultdict(list))
    for record in conn.execute(query, [ids, *args]):
        suite, target, row = _row(record)
        rows[(suite, target)][row.run_id].append(row)
    for suite, target in pairs:
        by_run = rows[(suite, target)]
        earlier = [run for run in baseline if by_run.get(run.id)]
        if earlier:  # a suite or target new in the latest run has nothing to be compared with
            yield Group(
                suite,
                target,
                tuple(by_run[latest.id]),
                tuple(tuple(by_run[run.id]) for run in earlier),
                since=earlier[0],
            )


def _row(record: tuple[Any, ...]) -> tuple[str, str, Row]:
    suite, target, run_id, key, model, request, passed, latency, tokens, cost, cached, error, digest = record
    row = Row(
        run_id=run_id,
        key=key,
        model=model,
        request=request,
        passed=bool(passed),
        latency_ms=latency,
        tokens=tokens,
        cost_usd=cost,
        cached=bool(cached),
        error=bool(error),
        output_hash=digest,
    )
    return suite, target, row

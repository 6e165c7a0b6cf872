"""`prompttest diff`: compare any two sides, key by key, with the verdict table.

A side is a set of results by key: a run record, the working tree's snapshots, or the
snapshots committed at a git ref. Side B is judged against side A exactly as a run is
judged against its snapshots, so every report renderer works on the comparison too.
"""

from __future__ import annotations

import itertools
import statistics
import subprocess
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import PromptTestError
from ..model import CheckResult, Result, Verdict
from ..verdicts.table import Baseline, Outcome, decide, flags
from .runs import RunRecord, find_run, scan_run
from .snapshots import Entry, parse_snapshot, refusing_duplicates, scan_snapshot
from .spool import ResultsByKey, ResultSpool


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a label and results by key."""

    label: str
    results: ResultsByKey  # on disk: a side of 10,000 keys is never held
    has_metrics: bool  # run records have latency, tokens and cost; snapshots do not


@dataclass(frozen=True)
class SuiteStats:
    keys: int
    pass_rate: float | None
    latency_p50: float | None
    latency_p95: float | None
    tokens: int | None
    cost_usd: float | None


@dataclass(frozen=True)
class Comparison:
    a: Side
    b: Side
    record: RunRecord  # B's results judged against A, for the renderers
    suites: dict[str, tuple[SuiteStats, SuiteStats]]


def run_side(runs_dir: Path, ref: str) -> Side:
    """A run record: a path, a run id, or `last`."""
    results = ResultsByKey()

    def add(result: Result) -> None:
        if result.verdict is not Verdict.OBSOLETE:
            results.add(result)

    run_id = scan_run(find_run(runs_dir, ref), add)
    return Side(label=f"run {run_id}", results=results, has_metrics=True)


def snapshot_side(snapshots_dir: Path, label: str = "snapshots") -> Side:
    """The snapshot files of the working tree."""
    files = sorted(snapshots_dir.glob("*.yaml")) if snapshots_dir.exists() else []
    results = ResultsByKey()
    for file in files:
        _add_snapshot(results, file.stem, file, label=label)
    return Side(label=label, results=results, has_metrics=False)


def _add_snapshot(results: ResultsByKey, suite: str, path: Path, *, label: str) -> None:
    """Read one snapshot file (as a stream) into `results`."""
    scan_snapshot(
        path, refusing_duplicates(lambda entry, _: results.add(_from_entry(suite, entry, side=label)), path)
    )


def git_side(root: Path, snapshots_dir: Path, ref: str) -> Side:
    """The snapshot files as committed at a git ref (e.g. the PR's base branch)."""
    top = Path(_git(root, "rev-parse", "--show-toplevel").strip()).resolve()
    try:
        folder = snapshots_dir.resolve().relative_to(top)
    except ValueError:
        raise PromptTestError(
            f"the snapshots folder {snapshots_dir} is not in the git repository at {top}",
            hint="--base reads the snapshots committed in the project's own repository",
        ) from None
    # `ref:path` names the folder from the repository's top; --full-tree lists it whole even
    # when the project (git's working directory here) is a subfolder of the repository.
    tree = f"{ref}:{folder.as_posix()}"
    listing = _git(root, "ls-tree", "--full-tree", "--name-only", tree, missing_ok=True)
    suites = {}
    for name in sorted(listing.split()):
        if name.endswith(".yaml"):
            text = _git(root, "show", f"{ref}:{(folder / name).as_posix()}")
            suites[name[: -len(".yaml")]] = parse_snapshot(text, file=f"{ref}:{(folder / name).as_posix()}")
    return _entries_side(f"snapshots at {ref}", suites)


def _git(root: Path, *args: str, missing_ok: bool = False) -> str:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise PromptTestError("git is not installed", hint="--base needs git") from None
    if done.returncode != 0:
        if missing_ok and ("does not exist" in done.stderr or "not a tree object" in done.stderr):
            return ""  # no snapshots folder at that ref: every key is new
        raise PromptTestError(
            f"git {' '.join(args)} failed: {done.stderr.strip()}",
            hint="--base takes a git ref this repository knows (a branch, tag or commit)",
        )
    return done.stdout


def _entries_side(label: str, suites: Mapping[str, Mapping[str, Entry]]) -> Side:
    results = ResultsByKey()
    for suite, entries in suites.items():
        for entry in entries.values():
            results.add(_from_entry(suite, entry, side=label))
    return Side(label=label, results=results, has_metrics=False)


def _from_entry(suite: str, entry: Entry, *, side: str) -> Result:
    checks = tuple(
        CheckResult(
            label=label,
            passed=ok,
            reason=_snapshot_reason(ok, side),
            name=label.partition(":")[0],
            judge=entry.judges.get(label),
        )
        for label, ok in entry.checks.items()
    )
    return Result(
        suite=suite,
        case=entry.case,
        target=entry.target,
        model=entry.model,
        verdict=Verdict.UNCHANGED,
        output=entry.output,
        checks=checks,
        request=entry.request,
        known_failing=entry.known_failing,
        tool_calls=entry.tool_calls,
        refusal=entry.refusal,
        transcript=entry.transcript,
    )


def _snapshot_reason(passed: bool, side: str) -> str:
    """What a snapshot tells of a check: its outcome only (reasons are not kept, so that a
    rerun with the same outcomes rewrites nothing)."""
    return f"passes in {side}" if passed else f"fails in {side} (snapshots keep no reasons)"


def compare(a: Side, b: Side) -> Comparison:
    """Judge every key of B against A; keys only in A are obsolete."""
    results = ResultSpool()
    positions = itertools.count()
    for key, after in b.results.items():
        results.add(next(positions), _judge(a.results.get(key), after))
    for key in a.results:
        if key not in b.results:
            before = a.results[key]
            obsolete = replace(
                before,
                verdict=Verdict.OBSOLETE,
                fails_run=None,
                output=None,
                checks=(),
                snapshot_output=before.output,
                snapshot_checks=_checks(before),
                snapshot_tool_calls=before.tool_calls,
                snapshot_refusal=before.refusal,
                snapshot_transcript=before.transcript,
                tool_calls=(),
                refusal=None,
                transcript=(),
            )
            results.add(next(positions), obsolete)
    # ci=True: a comparison writes nothing, and a key missing from A fails like an uncommitted one.
    # `sides` tells the renderers this is a comparison: its diffs are labelled with the sides.
    record = RunRecord(
        id=f"{a.label} → {b.label}",
        started_at="",
        wall_s=0.0,
        results=results,
        ci=True,
        options={"sides": [a.label, b.label]},
    )
    names = sorted(a.results.suites() | b.results.suites())
    suites = {
        name: (
            _stats(a.results.of_suite(name), a.has_metrics),
            _stats(b.results.of_suite(name), b.has_metrics),
        )
        for name in names
    }
    return Comparison(a=a, b=b, record=record, suites=suites)


def _checks(result: Result) -> dict[str, bool]:
    return {check.label: check.passed for check in result.checks}


def _judge(before: Result | None, after: Result) -> Result:
    baseline = None
    if before is not None and before.output is not None:
        baseline = Baseline(
            output=before.answer or "",
            checks=_checks(before),
            model=before.model,
            request=before.request,
            known_failing=before.known_failing,
            judges={c.label: c.judge for c in before.checks if c.judge is not None},
        )
    # A judged check graded by another judge on each side: its flip is not counted.
    stale = frozenset(c.label for c in after.checks if baseline and baseline.is_stale(c.label, c.judge))
    outcome = Outcome(output=after.answer, checks=_checks(after), error=after.error, stale=stale)
    return replace(
        after,
        fails_run=None,  # what its run made of it does not hold in the comparison
        verdict=decide(baseline, outcome),
        flags=flags(baseline, model=after.model, request=after.request, stale=stale),
        snapshot_output=before.output if baseline and before else None,
        snapshot_checks=dict(baseline.checks) if baseline else None,
        snapshot_tool_calls=before.tool_calls if baseline and before else (),
        snapshot_refusal=before.refusal if baseline and before else None,
        snapshot_transcript=before.transcript if baseline and before else (),
    )


def _stats(results: Iterable[Result], has_metrics: bool) -> SuiteStats:
    keys = passed = tokens = 0
    latencies = array("d")  # 8 bytes a key: the percentiles need them all
    cost: float | None = 0.0
    answered = 0
    for result in results:
        keys += 1
        passed += result.checks_passed  # the pass rate of the checks, whatever a run made of them
        if result.output is None:
            continue
        answered += 1
        if result.latency_ms is not None:
            latencies.append(result.latency_ms)
        tokens += result.completion_tokens or 0
        cost = None if cost is None or result.cost_usd is None else cost + result.cost_usd
    ordered = sorted(latencies)
    return SuiteStats(
        keys=keys,
        pass_rate=passed / keys if keys else None,
        latency_p50=statistics.median(ordered) if has_metrics and ordered else None,
        latency_p95=_percentile(ordered, 0.95) if has_metrics and ordered else None,
        tokens=tokens if has_metrics else None,
        cost_usd=cost if has_metrics and answered else None,
    )


def _percentile(ordered: list[float], fraction: float) -> float:
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def stats_to_dict(stats: SuiteStats) -> dict[str, Any]:
    return {
        "keys": stats.keys,
        "pass_rate": stats.pass_rate,
        "latency_p50_ms": stats.latency_p50,
        "latency_p95_ms": stats.latency_p95,
        "completion_tokens": stats.tokens,
        "cost_usd": stats.cost_usd,
    }

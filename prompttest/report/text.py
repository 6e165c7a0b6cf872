"""The terminal report: a table of every key that needs a look, then one summary line."""

from __future__ import annotations

from tabulate import tabulate

from ..model import VERDICT_ORDER, CheckResult, Result, Verdict
from ..model.familywise import DEFAULT_POOLED_SHARE
from ..model.selection import matching, sorted_results
from ..model.stats import min_p_value, wilson_interval
from ..records.runs import RunRecord
from .suitelines import lines as suite_lines

DETAIL_WIDTH = 70
TABLE_ROWS = 200  # the terminal table's rows at most


def render_table(record: RunRecord, *, limit: int | None = TABLE_ROWS) -> str:
    """Every key whose verdict is not `unchanged`, what a reviewer must see first on top.

    At most `limit` rows (None: all): a terminal (or a CI log) of 10,000 rows is read by
    nobody, so the rest are counted, with where to see them.
    """
    rows: list[tuple[str, str, str]] = []
    hidden = 0
    for result in sorted_results(record.results, only="notable"):
        if result.verdict is Verdict.UNCHANGED and not result.flags:
            continue
        if limit is None or len(rows) < limit:
            rows.append((result.verdict.value, result.key, _detail(result, ci=record.ci)))
        else:
            hidden += 1
    if not rows:
        return ""
    table = tabulate(rows, headers=("verdict", "key", "why"), tablefmt="simple")
    if not hidden:
        return table
    return (
        f"{table}\n... and {hidden:,} more key(s) to look at: "
        "see them all with `prompttest review`, `prompttest diff` or the --json/--html reports"
    )


def render_suites(record: RunRecord) -> str:
    """Each pooled suite's verdict, regressed suites first: above the keys' table."""
    return "\n".join(suite_lines(record.suites, record.score_drops))


def render_errors(record: RunRecord) -> str:
    """Each distinct provider error in full, once, with how many keys it hit."""
    seen: dict[str, list[str]] = {}
    for result in matching(record.results, "erred"):
        if result.error:
            # Keys not called because their target refused an earlier call share its error.
            seen.setdefault(result.error.removeprefix("not called: "), []).append(result.key)
    lines = []
    for message, keys in seen.items():
        more = f" (+{len(keys) - 1} more)" if len(keys) > 1 else ""
        lines.append(f"error in {keys[0]}{more}:\n  {message}")
    return "\n".join(lines)


def _detail(result: Result, *, ci: bool) -> str:
    notes = ", ".join(result.flags)
    text = _why(result, ci=ci)
    if notes:
        text = f"{text} [{notes}]"
    return _short(text)


def _why(result: Result, *, ci: bool) -> str:
    verdict = result.verdict
    if verdict is Verdict.ERROR:
        return result.error or "error"
    if verdict is Verdict.NEW:
        failed = [c for c in result.checks if not c.passed]
        base = "no snapshot yet" + ("" if ci else " (written)")
        return f"{base}; {failed[0].label}: {failed[0].reason}" if failed else base
    if verdict is Verdict.OBSOLETE:
        return "in the snapshot, no longer in the suite"
    if any(check.samples for check in result.checks) and verdict in (
        Verdict.REGRESSED,
        Verdict.IMPROVED,
        Verdict.INCONCLUSIVE,
        Verdict.FAILING,
    ):
        notes = [_rate_note(c) for c in result.checks if c.before or not c.passed]
        return "; ".join([result.comparison, *notes] if result.comparison else notes)
    before = result.snapshot_checks or {}
    flipped_any = any(c.passed != before.get(c.label, c.passed) for c in result.checks)
    judged = verdict in (Verdict.REGRESSED, Verdict.IMPROVED, Verdict.CHANGED)
    if result.comparison and judged and not flipped_any:
        return result.comparison  # the compare judge decided (or, for changed, had no preference)
    if verdict is Verdict.REGRESSED:
        flipped = [c for c in result.checks if not c.passed and before.get(c.label) is True]
        return "; ".join(f"{c.label}: {c.reason}" for c in flipped)
    if verdict is Verdict.IMPROVED:
        flipped = [c for c in result.checks if c.passed and before.get(c.label) is False]
        return "now passes " + "; ".join(c.label for c in flipped)
    if verdict is Verdict.FAILING:
        failed = [c for c in result.checks if not c.passed]
        known = " (known failing)" if result.known_failing else ""
        return "; ".join(f"{c.label}: {c.reason}" for c in failed) + known
    if verdict is Verdict.CHANGED:
        return (
            f"every check as before; {result.change}"
            if result.change
            else "output changed, every check as before"
        )
    return ""


def _rate_note(check: CheckResult) -> str:
    """`contains: Paris 6/10 [0.31–0.83] was 10/10, p=0.043` for a check over samples."""
    return f"{check.label} {rate_text(check)}"


def rate_text(check: CheckResult) -> str:
    """`6/10 [0.31–0.83] was 10/10, p=0.043`: a check's pass rate over samples, its Wilson
    95 % interval, the snapshot's rate and the adjusted p-value (the ones it has)."""
    k, n = check.passed_count or 0, check.samples or 0
    low, high = wilson_interval(k, n)
    note = f"{k}/{n} [{low:.2f}–{high:.2f}]"
    if check.before:
        note += f" was {check.before[0]}/{check.before[1]}"
    if check.p_value is not None:
        note += f", p={check.p_value:.3g}"
    return note


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= DETAIL_WIDTH else flat[: DETAIL_WIDTH - 1] + "…"


def render_summary(record: RunRecord, *, exit_code: int, snapshots_written: int = 0) -> str:
    """One line of counts by verdict, then the next command to type."""
    counts = record.counts()
    parts = [f"{counts[v.value]} {v.value}" for v in VERDICT_ORDER if counts[v.value]]
    summary = record.summary()
    stats = (
        f"{counted(summary['keys'], 'key')} in {summary['wall_s']:.1f}s, "
        f"{counted(record.calls, 'call')}, {record.cache_hits} cached"
    )
    cost, judging = summary["cost_usd"], summary["judge_cost_usd"]
    if record.calls:
        stats += ", cost unknown" if cost is None else f", ${cost:.4f}"
        if judging is None or judging > 0:
            stats += ", judges' cost unknown" if judging is None else f" + ${judging:.4f} for judges"
    line = f"{', '.join(parts) or 'nothing to run'} ({stats})"
    if snapshots_written:
        line += f"; {snapshots_written} snapshot file(s) written"
    for warning in (too_few_samples(record), stale_judges(record)):
        if warning:
            line += f"\n{warning}"
    return f"{line}\n{_next_step(record, counts, exit_code)}"


def counted(number: int, noun: str) -> str:
    """`1 key`, `2 keys`: a count with its noun in the right number."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def stale_judges(record: RunRecord) -> str:
    """A note when judged checks were graded by another judge than their snapshots: their
    flips are not counted until the new judge's results are accepted."""
    stale = [r.key for r in matching(record.results, "stale")]
    if not stale:
        return ""
    return (
        f"note: {len(stale)} key(s) have judged checks whose judge (model, params or rubric) changed "
        "since the snapshot: their flips count neither as regressions nor as improvements until you "
        "accept this run (`prompttest review` or `prompttest accept`)"
    )


def too_few_samples(record: RunRecord) -> str:
    """A warning when some repeated keys can never be found `regressed`, whatever happens.

    The run's smallest p-value among m key tests is tested at alpha / m (half of that when
    suites are pooled too); a pair of sample counts whose smallest possible p-value is above
    that cannot get there.
    """
    tests = [
        (r.key, c) for r in matching(record.results, "sampled") for c in r.checks if c.samples and c.before
    ]
    alpha = float(record.options.get("alpha") or 0.05)
    # With pooled suites, the keys share what the suites' tests leave (see verdicts/suites.py).
    level = alpha * (1 - DEFAULT_POOLED_SHARE if record.suites else 1.0) / max(len(tests), 1)
    blind = {
        key
        for key, c in tests
        if c.samples and c.before and min_p_value(c.before[1], c.samples) >= level
    }
    if not blind:
        return ""
    return (
        f"note: {len(blind)} repeated key(s) have too few samples for any drop to be significant "
        f"among this run's {len(tests)} test(s) at alpha {alpha:g}: raise `repeat` (10 or more)"
    )


# Why keys are `error`, by how their messages start (runner.py, session.py), and what helps;
# any other error is a provider's. In this order, one line each.
_ERROR_HINTS = (
    (
        "budget: not called: the cost of",
        "a price is unknown, so --max-cost cannot be kept: set `input_cost_per_token` and "
        "`output_cost_per_token` in the target's params, or run `prompttest run` without --max-cost",
    ),
    (
        "budget: ",
        "budget reached: run `prompttest run` again with a higher --max-cost "
        "(finished calls are cached and cost nothing again)",
    ),
    ("--offline: ", "cache misses: run `prompttest run` without --offline to make the missing calls"),
    (
        "check '",
        "checks could not decide: fix the check or its judge (model, rubric) named above and run "
        "again; `prompttest run --no-cache` asks a judge anew",
    ),
)
_PROVIDER_HINT = "provider errors: fix the cause above, then run again (finished calls are cached)"
# Verdicts that leave a change for `review` (without --update; `new` keys are written).
_REVIEWABLE = ("regressed", "failing", "improved", "changed", "inconclusive", "obsolete")


def _error_hints(record: RunRecord) -> str:
    """One line per cause of the run's `error` keys, each naming what helps with it."""
    causes: set[str] = set()
    for result in matching(record.results, "erred"):
        error = result.error or ""
        causes.add(next((hint for start, hint in _ERROR_HINTS if error.startswith(start)), _PROVIDER_HINT))
    ordered = [hint for _, hint in _ERROR_HINTS] + [_PROVIDER_HINT]
    return "\n".join(hint for hint in ordered if hint in causes)


def _next_step(record: RunRecord, counts: dict[str, int], exit_code: int) -> str:
    if record.interrupted:
        return "interrupted: finished calls are cached; run again to resume"
    if counts["error"]:
        return _error_hints(record) or _PROVIDER_HINT
    if record.ci and counts["new"]:
        return "new keys have no committed snapshot: run `prompttest run` locally and commit snapshots/"
    if exit_code:
        if record.ci:
            return "fix the prompt or the checks; to accept the new outputs, run `prompttest review` locally"
        if record.update:
            return (
                "fix the prompt or the checks and run again: this run, failing checks included, "
                "was accepted into the snapshots (see `git diff snapshots/`)"
            )
        if not any(counts[verdict] for verdict in _REVIEWABLE):
            return (
                "fix the prompt or the checks and run again: the new keys' snapshots were written "
                "with their failing checks (see `git diff snapshots/`)"
            )
        return "fix the prompt or the checks, or accept the new outputs with `prompttest review`"
    pending = counts["changed"] + counts["improved"] + (counts["obsolete"] if not record.update else 0)
    if pending and not record.update and not record.ci:
        return f"{pending} pending change(s): run `prompttest review` (or `prompttest accept`)"
    if counts["new"] and not record.ci:
        return "new snapshot entries written: look at `git diff snapshots/` and commit them"
    if record.score_drops and not record.update:
        return "checks pass, but scores dropped (above): look at the outputs; --strict fails on it"
    return "all good"

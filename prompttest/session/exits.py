"""A run's exit code from its verdicts: 0 all good, 1 it fails, 3 errors (see errors.py)."""

from __future__ import annotations

from ..errors import EXIT_FAILED, EXIT_OK, EXIT_PROVIDER
from ..model import Result, Verdict
from ..model.selection import matching
from ..records.runs import RunRecord
from ..verdicts.scores import SCORE_DROPPED
from ..verdicts.table import is_failure


def exit_code(record: RunRecord, *, strict: bool | None = None) -> int:
    """0 all good, 1 regressions or failing checks, 3 provider errors (`strict`: as the run was made)."""
    if strict is None:
        strict = bool(record.options.get("strict"))
    # An unchanged key that passes changes nothing: only the others are gone through.
    notable = matching(record.results, "notable")
    codes = {key_exit_code(r, ci=record.ci, update=record.update, strict=strict) for r in notable}
    if not record.update and (record.regressed_suites or (strict and record.score_drops)):
        codes.add(EXIT_FAILED)  # --update accepted the suites' new rates and scores
    return max(codes, default=EXIT_OK)  # EXIT_PROVIDER (3) > EXIT_FAILED (1) > EXIT_OK (0)


def key_exit_code(result: Result, *, ci: bool, update: bool = False, strict: bool = False) -> int:
    """What one key makes of the run: 0 fine, 1 it fails the run, 3 it is an error."""
    if result.verdict is Verdict.ERROR:
        return EXIT_PROVIDER
    if not result.checks_passed and not result.known_failing:
        return EXIT_FAILED  # a failing check fails the run, whatever its verdict
    # With --update every verdict was accepted into the snapshots.
    if not update and is_failure(result.verdict, ci=ci, strict=strict, known_failing=result.known_failing):
        return EXIT_FAILED
    if not update and strict and SCORE_DROPPED in result.flags:
        return EXIT_FAILED  # a score that slid but still passes its threshold
    return EXIT_OK

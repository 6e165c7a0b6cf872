"""The verdict table of PRODUCT.md, row by row."""

from __future__ import annotations

import pytest

from prompttest.model import Verdict
from prompttest.verdicts.table import Baseline, Outcome, decide, flags, is_failure

P, F = True, False


def snap(output: str = "Paris", **checks: bool) -> Baseline:
    return Baseline(output=output, checks=checks, model="m", request="r1")


@pytest.mark.parametrize(
    ("baseline", "outcome", "verdict"),
    [
        # unchanged: same output, same check outcomes
        (snap(a=P), Outcome("Paris", {"a": P}), Verdict.UNCHANGED),
        # changed: output differs, every check outcome the same
        (snap(a=P), Outcome("Paris!", {"a": P}), Verdict.CHANGED),
        # regressed: a check that passed now fails
        (snap(a=P, b=P), Outcome("Lyon", {"a": P, "b": F}), Verdict.REGRESSED),
        # regressed wins over an improvement elsewhere
        (snap(a=P, b=F), Outcome("Lyon", {"a": F, "b": P}), Verdict.REGRESSED),
        # improved: a check that failed now passes
        (snap(a=F), Outcome("Paris", {"a": P}), Verdict.IMPROVED),
        # new: no snapshot entry
        (None, Outcome("Paris", {"a": P}), Verdict.NEW),
        (None, Outcome("Paris", {"a": F}), Verdict.NEW),
        # error: the call failed; wins over everything
        (snap(a=P), Outcome(None, error="HTTP 401"), Verdict.ERROR),
        (None, Outcome(None, error="timed out"), Verdict.ERROR),
        # failing: fails now and failed in the snapshot too (same or other output)
        (snap(a=F), Outcome("Paris", {"a": F}), Verdict.FAILING),
        (snap(a=F), Outcome("Lyon", {"a": F}), Verdict.FAILING),
        # a check the snapshot did not have that fails: failing, not regressed
        (snap(a=P), Outcome("Paris", {"a": P, "new": F}), Verdict.FAILING),
        # a check the snapshot did not have that passes: as if it had passed
        (snap(a=P), Outcome("Paris", {"a": P, "new": P}), Verdict.UNCHANGED),
    ],
)
def test_verdict_table(baseline: Baseline | None, outcome: Outcome, verdict: Verdict) -> None:
    assert decide(baseline, outcome) is verdict


@pytest.mark.parametrize(
    ("verdict", "ci", "strict", "known_failing", "fails"),
    [
        (Verdict.UNCHANGED, True, True, False, False),
        (Verdict.CHANGED, True, False, False, False),
        (Verdict.CHANGED, True, True, False, True),
        (Verdict.REGRESSED, False, False, False, True),
        (Verdict.IMPROVED, True, True, False, False),
        (Verdict.NEW, True, False, False, True),
        (Verdict.NEW, False, False, False, False),  # written locally
        (Verdict.ERROR, False, False, False, True),
        (Verdict.OBSOLETE, True, True, False, False),
        (Verdict.FAILING, True, False, False, True),
        (Verdict.FAILING, True, False, True, False),  # known failing
        (Verdict.INCONCLUSIVE, True, False, False, False),
        (Verdict.INCONCLUSIVE, True, True, False, True),
    ],
)
def test_which_verdicts_fail(
    verdict: Verdict, ci: bool, strict: bool, known_failing: bool, fails: bool
) -> None:
    assert is_failure(verdict, ci=ci, strict=strict, known_failing=known_failing) is fails


def test_flags_name_what_changed_in_the_call() -> None:
    base = snap(a=P)
    assert flags(base, model="m", request="r1") == ()
    assert flags(base, model="m", request="r2") == ("prompt changed",)
    assert flags(base, model="other", request="r2") == ("prompt changed", "model changed")
    assert flags(None, model="m", request="r1") == ()

"""A suite's pooled verdict as one sentence: what every report leads with.

"suite regressed: greet on local: pass rate 80.0% → 64.7% (-15.3 pts, 95% CI -20.1 to
-10.5 pts), p 0.0004 (adjusted), 30 keys pooled" -- and for a suite that did not move, what the run could have
seen, so that "no regression" reads with its limits.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..verdicts.scores import SCORE_DROPPED, ScoreDrop
from ..verdicts.suites import IMPROVED, NO_CHANGE, REGRESSED, SuiteVerdict

_ORDER = {REGRESSED: 0, IMPROVED: 1, NO_CHANGE: 2}


def ordered(suites: Iterable[SuiteVerdict]) -> list[SuiteVerdict]:
    """Regressed suites first, then improved, then the rest; by name within each."""
    return sorted(suites, key=lambda s: (_ORDER.get(s.verdict, 3), s.suite, s.target))


def headline(suite: SuiteVerdict) -> str:
    """`suite regressed`, `suite improved` or `no significant change`: the verdict's words."""
    if suite.verdict == NO_CHANGE:
        return "no significant change"
    return f"suite {suite.verdict}"


def sentence(suite: SuiteVerdict) -> str:
    """The suite's rates, interval and p-value; for no change, also the drops it would have seen."""
    parts = [f"pass rate {_pct(suite.rate_before)} → {_pct(suite.rate_after)}"]
    if suite.difference is not None and suite.interval is not None:
        low, high = suite.interval
        parts[0] += f" ({_pts(suite.difference)}, 95% CI {100 * low:+.1f} to {_pts(high)})"
    parts.append(f"p {suite.p_value:.2g} (adjusted)")
    parts.append(f"{suite.keys} keys pooled")
    if suite.keys_regressed:
        parts.append(f"{suite.keys_regressed} key(s) regressed on their own")
    if suite.keys_improved:
        parts.append(f"{suite.keys_improved} key(s) improved on their own")
    text = ", ".join(parts)
    seen = detectable(suite)
    return f"{text}; {seen}" if suite.verdict == NO_CHANGE and seen else text


def detectable(suite: SuiteVerdict) -> str:
    """What the run would have flagged with 80 % power: a drop on every key, or in one alone."""
    shares = []
    if suite.detectable_drop is not None:
        shares.append(f"a drop of {_size(suite.detectable_drop)} on every key")
    if suite.detectable_key_drop is not None:
        shares.append(f"of {_size(suite.detectable_key_drop)} in one key alone")
    elif suite.detectable_drop is not None:
        shares.append("no drop in one key alone (too few samples a key)")
    if not shares:
        return "too few samples to see any drop"
    return f"it would have seen {' or '.join(shares)} (80% power)"


def lines(suites: Iterable[SuiteVerdict], drops: Iterable[ScoreDrop] = ()) -> Iterator[str]:
    """`<headline>: <suite> on <target>: <sentence>`, one a suite, regressed ones first; then
    the suites whose scores dropped."""
    for suite in ordered(suites):
        yield f"{headline(suite)}: {suite.suite} on {suite.target}: {sentence(suite)}"
    for drop in drops:
        yield f"{SCORE_DROPPED}: {drop.suite} on {drop.target}: {score_sentence(drop)}"


def score_sentence(drop: ScoreDrop) -> str:
    """A suite's scores of one kind of check, before and after, over its keys."""
    return (
        f"{drop.check} mean score {drop.mean_before:.3f} → {drop.mean_after:.3f} over {drop.keys} keys, "
        f"p {drop.p_value:.2g} (paired t, adjusted); reported even while checks pass their thresholds"
        " (fails the run only with --strict)"
    )


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{100 * rate:.1f}%"


def _pts(value: float) -> str:
    """A change in percentage points: `-15.3 pts`."""
    return f"{100 * value:+.1f} pts"


def _size(value: float) -> str:
    """The size of a drop in percentage points: `15.3 pts`."""
    return f"{100 * abs(value):.1f} pts"

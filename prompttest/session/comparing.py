"""`compare:` in a run: the judge's calls for a key whose output changed, and what its answers
make of the key's verdict (see verdicts.pairwise for the procedure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..calls.runner import Answer
from ..model import CheckContext, CheckError, Job, Output, Result, Verdict
from ..model.stats import holm
from ..verdicts import pairwise
from ..verdicts.table import Baseline


def compare_spec(job: Job) -> dict[str, Any] | None:
    """The job's resolved compare judge ({rubric, model, params...}), or None."""
    return job.compare if isinstance(job.compare, dict) and job.compare.get("model") else None


def compare_calls(job: Job, outputs: Sequence[Output], baseline: Baseline) -> list[Any]:
    """Two calls (both orders) for each distinct output that differs from the snapshot's."""
    spec = compare_spec(job)
    if spec is None:
        return []
    prompt = CheckContext(messages=job.call.messages).prompt
    calls = []
    for text in pairwise.distinct_pairs([o.answer for o in outputs], baseline.output):
        calls += pairwise.compare_calls(spec, prompt=prompt, accepted=baseline.output, new=text)
    return calls


def compared(
    job: Job, result: Result, baseline: Baseline | None, answers: Mapping[str, Answer], *, sampled: bool
) -> Result:
    """The result with the judge's preference; a single sample's `changed` verdict becomes
    `regressed` or `improved` when the preference holds in both orders (and the judge is the
    snapshot's). A sampled key's verdict waits for the run's sign tests (`judge_preference`)."""
    spec = compare_spec(job)
    assert spec is not None
    pinned = pairwise.provenance(spec)
    result = replace(result, compare_judge=pinned)
    if baseline is None or result.error is not None or result.output is None:
        return result
    texts = list(result.outputs) if sampled and result.outputs else [result.answer or ""]
    try:
        verdicts = {
            text: _preference(spec, job, baseline.output, text, answers)
            for text in pairwise.distinct_pairs(texts, baseline.output)
        }
    except CheckError as error:
        return replace(result, error=f"compare judge: {error}", verdict=Verdict.ERROR)
    earlier = baseline.judges.get(pairwise.COMPARE_LABEL)
    stale = earlier is not None and dict(earlier) != pinned
    if stale:
        result = replace(result, flags=tuple(dict.fromkeys((*result.flags, "stale"))))
    if not verdicts:
        return result
    if sampled:
        worse = sum(texts.count(t) for t, (p, _) in verdicts.items() if p == pairwise.SNAPSHOT)
        better = sum(texts.count(t) for t, (p, _) in verdicts.items() if p == pairwise.NEW)
        counts = (0, 0, 0) if stale else (worse, better, len(texts))
        reason = next((r for p, r in verdicts.values() if p == pairwise.SNAPSHOT), "")
        return replace(result, compare_counts=counts, compare_reason=reason or None)
    preference, reason = next(iter(verdicts.values()))
    result = replace(
        result, preference=preference, comparison=pairwise.describe(preference, reason, stale=stale)
    )
    if stale or result.verdict is not Verdict.CHANGED:
        return result  # checks decide first; another judge's opinion decides nothing
    if preference == pairwise.SNAPSHOT:
        return replace(result, verdict=Verdict.REGRESSED)
    if preference == pairwise.NEW:
        return replace(result, verdict=Verdict.IMPROVED)
    return result


def _preference(
    spec: Mapping[str, Any], job: Job, accepted: str, new: str, answers: Mapping[str, Answer]
) -> tuple[str, str]:
    prompt = CheckContext(messages=job.call.messages).prompt
    first, second = pairwise.compare_calls(spec, prompt=prompt, accepted=accepted, new=new)
    said = []
    for call in (first, second):
        answer = answers.get(call.cache_key())
        if answer is None or answer.output is None:
            raise CheckError(answer.error if answer and answer.error else f"{call.model} gave no answer")
        said.append(pairwise.parse_preference(answer.output.text))
    return pairwise.combine(said[0], said[1])


def sign_tests(items: Iterable[tuple[int, Result]]) -> dict[int, tuple[float, float]]:
    """Each compared sampled key's (p worse, p better), Holm-adjusted over the run's keys."""
    keyed = [
        (position, r.compare_counts) for position, r in items if r.compare_counts and r.compare_counts[2]
    ]
    worse = holm([pairwise.sign_test_p(w, b) for _, (w, b, _) in keyed])
    better = holm([pairwise.sign_test_p(b, w) for _, (w, b, _) in keyed])
    return {position: (pw, pb) for (position, _), pw, pb in zip(keyed, worse, better, strict=True)}


def judge_preference(result: Result, tests: tuple[float, float] | None, *, alpha: float) -> Result:
    """A sampled key's verdict with its sign test: `changed` becomes `regressed` when the judge
    preferred the snapshot significantly more often (both orders agreeing), `improved` when
    the new outputs."""
    if tests is None or result.compare_counts is None:
        return result
    worse, better, total = result.compare_counts
    p_worse, p_better = tests
    if p_worse < alpha:
        preference, p = pairwise.SNAPSHOT, p_worse
    elif p_better < alpha:
        preference, p = pairwise.NEW, p_better
    else:
        preference, p = pairwise.SPLIT, min(p_worse, p_better)
    line = pairwise.counted(worse, better, total, p)
    if result.compare_reason and preference == pairwise.SNAPSHOT:
        line += f"; e.g. {result.compare_reason}"
    result = replace(result, preference=preference, comparison=line)
    if result.verdict is not Verdict.CHANGED or preference == pairwise.SPLIT:
        return result
    return replace(result, verdict=Verdict.REGRESSED if preference == pairwise.SNAPSHOT else Verdict.IMPROVED)

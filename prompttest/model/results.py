"""What a run finds: the Output of a call, each CheckResult, and the key's Result with its
Verdict. No I/O here."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .inputs import Call, content_text, result_key
from .outputs import Output, Said, ToolCall, answer_text, tool_calls_from, transcript_from, transcript_text
from .stats import wilson_interval


class CheckError(Exception):
    """Raised inside a check that could not decide (a judge that answered garbage, a custom
    check that crashed): its result is an `error`, never a pass or a fail."""


def _no_answers(call: Call) -> Output:
    raise CheckError(f"no answer was fetched for this {call.kind} call to {call.model}")


@dataclass(frozen=True)
class CheckContext:
    """What a check may look at besides the output text.

    Custom checks (`python: module:function`) receive it as their second argument.
    """

    vars: dict[str, Any] = field(default_factory=dict)
    model: str = ""
    latency_ms: float | None = None
    cost_usd: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    suite: str = ""
    case: str = ""
    target: str = ""
    messages: tuple[dict[str, Any], ...] = ()
    # What the answer held besides its text, and the tool definitions the call offered.
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    refusal: str | None = None
    tools: tuple[dict[str, Any], ...] = ()
    # A conversation up to the graded answer, as one text: what a judge of it reads.
    transcript: str = ""
    metadata: Any = None  # what an application target returned besides its answer
    # Judged checks read the answers to the calls they asked for (judge, embeddings) here;
    # it raises CheckError when that call failed.
    answer_for: Callable[[Call], Output] = _no_answers

    @property
    def prompt(self) -> str:
        """The last user message as sent: what the output answers."""
        users = [m.get("content", "") for m in self.messages if m.get("role") == "user"]
        return content_text(users[-1]) if users else ""

    @property
    def metrics(self) -> dict[str, float | int | None]:
        return {
            "latency_ms": self.latency_ms,
            "cost_usd": self.cost_usd,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check on one output, with a one-line reason."""

    label: str
    passed: bool
    reason: str
    name: str = ""
    # With repeats: how many samples passed, and the snapshot's count it was judged against.
    passed_count: int | None = None
    samples: int | None = None
    before: tuple[int, int] | None = None
    p_value: float | None = None  # adjusted over the run (Holm); None when not tested
    error: str | None = None  # the check could not decide: the key's verdict is `error`
    # A judged check's judge (model, params, rubric hash): a change makes its flips `stale`.
    judge: Mapping[str, Any] | None = None
    stale: bool = False
    # `repeat: auto`: the samples that passed by each look taken (model.sequential).
    looks: tuple[int, ...] = ()
    # A scored check (a judge with a threshold, `similar`): its score, with repeats the mean
    # over the samples and their standard deviation.
    score: float | None = None
    score_sd: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": self.name,
            "label": self.label,
            "passed": self.passed,
            "reason": self.reason,
        }
        if self.error is not None:
            data["error"] = self.error
        if self.score is not None:
            data["score"] = round(self.score, 4)
            if self.score_sd is not None:
                data["score_sd"] = round(self.score_sd, 4)
        if self.judge is not None:
            data["judge"] = dict(self.judge)
            data["stale"] = self.stale
        if self.samples is not None:
            low, high = wilson_interval(self.passed_count or 0, self.samples)
            data |= {
                "passed_count": self.passed_count,
                "samples": self.samples,
                "interval": [round(low, 4), round(high, 4)],
                "before": list(self.before) if self.before else None,
                "p_value": self.p_value,
            }
            if self.looks:
                data["looks"] = list(self.looks)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        before = data.get("before")
        return cls(
            label=data["label"],
            passed=data["passed"],
            reason=data["reason"],
            name=data["type"],
            passed_count=data.get("passed_count"),
            samples=data.get("samples"),
            before=(int(before[0]), int(before[1])) if before else None,
            p_value=data.get("p_value"),
            error=data.get("error"),
            judge=data.get("judge"),
            stale=bool(data.get("stale")),
            looks=tuple(int(k) for k in data.get("looks") or ()),
            score=data.get("score"),
            score_sd=data.get("score_sd"),
        )


class Verdict(enum.StrEnum):
    """What a result key's new result means against its snapshot."""

    UNCHANGED = "unchanged"
    CHANGED = "changed"
    REGRESSED = "regressed"
    IMPROVED = "improved"
    NEW = "new"
    ERROR = "error"
    OBSOLETE = "obsolete"
    FAILING = "failing"
    INCONCLUSIVE = "inconclusive"


# Order in which verdicts are shown: what a reviewer must see first comes first.
VERDICT_ORDER = (
    Verdict.REGRESSED,
    Verdict.ERROR,
    Verdict.FAILING,
    Verdict.NEW,
    Verdict.INCONCLUSIVE,
    Verdict.IMPROVED,
    Verdict.CHANGED,
    Verdict.OBSOLETE,
    Verdict.UNCHANGED,
)


@dataclass(frozen=True, slots=True)
class Result:
    """A result key's outcome in one run: output, checks, verdict and what it is compared to."""

    suite: str
    case: str
    target: str
    model: str
    verdict: Verdict
    output: str | None
    checks: tuple[CheckResult, ...] = ()
    error: str | None = None
    request: str = ""
    flags: tuple[str, ...] = ()
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    judge_cost_usd: float | None = 0.0  # its judged checks' calls (judges, embeddings); None: unknown
    cached: bool = False
    attempts: int = 0
    known_failing: bool = False
    snapshot_output: str | None = None
    snapshot_checks: dict[str, bool] | None = None
    outputs: tuple[str, ...] = ()  # every sample, in order, when the key has more than one
    all_passed: int | None = None  # with repeats: the samples on which every check passed
    # `repeat: auto`: the most samples it could take, and how many of its first look's
    # samples passed every check (its suite's pooled test reads that fixed-size look).
    max_repeat: int | None = None
    first_look_passed: int | None = None
    # How the output moved from the snapshot's: a score in [0, 1] and one line of explanation
    # ("reworded (0.82)", "meaning changed (0.41): negation added").
    similarity: float | None = None
    change: str | None = None
    suite_path: str = ""
    case_file: str = ""
    case_line: int | None = None
    # What the answer held besides its text (a sampled key keeps them in `outputs`' texts).
    tool_calls: tuple[ToolCall, ...] = ()
    refusal: str | None = None
    snapshot_tool_calls: tuple[ToolCall, ...] = ()
    snapshot_refusal: str | None = None
    # A conversation: every assistant message, turn by turn (`output` is the last one's text).
    transcript: tuple[Said, ...] = ()
    snapshot_transcript: tuple[Said, ...] = ()
    metadata: Any = None  # what an application target returned besides its answer (JSON)
    # `compare:`: the judge's preference between the snapshot's output and this one (snapshot,
    # new, equal or split), the line that explains it, the judge (pinned in the snapshot) and,
    # with repeats, the samples preferred worse and better, of those compared.
    preference: str | None = None
    comparison: str | None = None
    compare_judge: Mapping[str, Any] | None = None
    compare_counts: tuple[int, int, int] | None = None
    compare_reason: str | None = None  # with repeats: the judge's reason for a worse sample
    # Does it fail the run it is part of (decided with the run's --ci, --strict, --update)?
    # None outside a run: a snapshot entry, a side of a diff. Not part of equality: it is
    # the run's reading of the result (a record read back without it takes it from `passed`).
    fails_run: bool | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        return result_key(self.suite, self.case, self.target)

    @property
    def answer(self) -> str | None:
        """The output with its tool calls and refusal, as one text: what reports show and diff."""
        if self.output is None:
            return None
        if self.transcript:
            return transcript_text(self.transcript)
        return answer_text(self.output, self.tool_calls, self.refusal)

    @property
    def snapshot_answer(self) -> str | None:
        if self.snapshot_output is None:
            return None
        if self.snapshot_transcript:
            return transcript_text(self.snapshot_transcript)
        return answer_text(self.snapshot_output, self.snapshot_tool_calls, self.snapshot_refusal)

    @property
    def checks_passed(self) -> bool:
        """No error and every check passed, whatever the verdict."""
        return self.error is None and all(check.passed for check in self.checks)

    @property
    def passed(self) -> bool:
        """The key does not fail its run, in the run's mode: a `new` key fails a CI run and
        a `changed` one a strict run though their checks pass. Outside a run: checks_passed."""
        return self.checks_passed if self.fails_run is None else not self.fails_run

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used by run records and the `--json` report (tool calls and a
        refusal only when the answer had them: a text answer's form is as it always was)."""
        data = {
            "key": self.key,
            "suite": self.suite,
            "case": self.case,
            "target": self.target,
            "model": self.model,
            "verdict": self.verdict.value,
            "passed": self.passed,
            "output": list(self.outputs) if len(self.outputs) > 1 else self.output,
            "checks": [check.to_dict() for check in self.checks],
            "error": self.error,
            "flags": list(self.flags),
            "similarity": self.similarity,
            "change": self.change,
            "request": self.request,
            "latency_ms": self.latency_ms,
            "tokens": {"prompt": self.prompt_tokens, "completion": self.completion_tokens},
            "cost_usd": self.cost_usd,
            "judge_cost_usd": self.judge_cost_usd,
            "cached": self.cached,
            "attempts": self.attempts,
            "known_failing": self.known_failing,
            "snapshot": None if self.snapshot_output is None else self._snapshot_dict(),
            "location": {
                "suite_file": self.suite_path,
                "case_file": self.case_file,
                "line": self.case_line,
            },
        }
        if self.all_passed is not None:
            data["all_passed"] = self.all_passed
        if self.max_repeat is not None:
            data["max_repeat"] = self.max_repeat
            data["first_look_passed"] = self.first_look_passed
        if self.tool_calls:
            data["tool_calls"] = [call.to_data() for call in self.tool_calls]
        if self.refusal is not None:
            data["refusal"] = self.refusal
        if self.transcript:
            data["turns"] = [said.to_data() for said in self.transcript]
        if self.metadata is not None:
            data["metadata"] = self.metadata
        if self.compare_judge is not None:
            data["comparison"] = {
                "preference": self.preference,
                "reason": self.comparison,
                "judge": dict(self.compare_judge),
                "counts": list(self.compare_counts) if self.compare_counts else None,
                "example": self.compare_reason,
            }
        return data

    def _snapshot_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"output": self.snapshot_output, "checks": self.snapshot_checks or {}}
        if self.snapshot_tool_calls:
            data["tool_calls"] = [call.to_data() for call in self.snapshot_tool_calls]
        if self.snapshot_refusal is not None:
            data["refusal"] = self.snapshot_refusal
        if self.snapshot_transcript:
            data["turns"] = [said.to_data() for said in self.snapshot_transcript]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        snapshot = data.get("snapshot") or {}
        location = data.get("location") or {}
        tokens = data.get("tokens") or {}
        output = data.get("output")
        outputs = tuple(output) if isinstance(output, list) else ()
        if outputs:
            output = max(outputs, key=outputs.count)  # the most frequent sample, first one on ties
        before = snapshot.get("output") if snapshot else None
        if before is not None and before == output:
            before = output  # one string, not two equal ones: a 10,000-key record holds each output once
        return cls(
            suite=data["suite"],
            case=data["case"],
            target=data["target"],
            model=data.get("model", ""),
            verdict=Verdict(data["verdict"]),
            output=output,
            outputs=outputs,
            checks=tuple(CheckResult.from_dict(c) for c in data.get("checks", [])),
            all_passed=data.get("all_passed"),
            max_repeat=data.get("max_repeat"),
            first_look_passed=data.get("first_look_passed"),
            error=data.get("error"),
            similarity=data.get("similarity"),
            change=data.get("change"),
            request=data.get("request", ""),
            flags=tuple(data.get("flags", [])),
            latency_ms=data.get("latency_ms"),
            prompt_tokens=tokens.get("prompt"),
            completion_tokens=tokens.get("completion"),
            cost_usd=data.get("cost_usd"),
            judge_cost_usd=data.get("judge_cost_usd", 0.0),
            cached=bool(data.get("cached")),
            attempts=int(data.get("attempts") or 0),
            known_failing=bool(data.get("known_failing")),
            snapshot_output=before,
            snapshot_checks=snapshot.get("checks") if snapshot else None,
            suite_path=location.get("suite_file", ""),
            case_file=location.get("case_file", ""),
            case_line=location.get("line"),
            tool_calls=tool_calls_from(data.get("tool_calls")),
            refusal=data.get("refusal"),
            snapshot_tool_calls=tool_calls_from(snapshot.get("tool_calls")) if snapshot else (),
            snapshot_refusal=snapshot.get("refusal") if snapshot else None,
            transcript=transcript_from(data.get("turns")),
            snapshot_transcript=transcript_from(snapshot.get("turns")) if snapshot else (),
            metadata=data.get("metadata"),
            **_comparison_fields(data.get("comparison")),
            fails_run=None if "passed" not in data else not data["passed"],
        )


def _comparison_fields(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        return {}
    counts = data.get("counts")
    return {
        "preference": data.get("preference"),
        "comparison": data.get("reason"),
        "compare_judge": data.get("judge"),
        "compare_counts": tuple(int(c) for c in counts) if counts else None,
        "compare_reason": data.get("example"),
    }

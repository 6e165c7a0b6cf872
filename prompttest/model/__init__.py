"""The records data flows through, named with the product's words. No I/O here.

suite file -> Suite/Case/Target -> Job (one result key, its Call and checks)
-> Output (provider or cache) -> CheckResult -> Result (with its Verdict) -> RunRecord
"""

from __future__ import annotations

import enum
import fnmatch
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .stats import PassRule, wilson_interval


def canonical_json(value: Any) -> str:
    """One stable text for a JSON-able value: the basis of hashes and check labels."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def key_matches(key: str, patterns: Sequence[str]) -> bool:
    """`-k` selection: a key matches a glob whole, or contains it (`-k france`); no patterns: all."""
    return not patterns or any(
        fnmatch.fnmatchcase(key, p) or fnmatch.fnmatchcase(key, f"*{p}*") for p in patterns
    )


@dataclass(frozen=True)
class Target:
    """One model to run against."""

    id: str
    model: str
    api_base: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    line: int | None = field(default=None, compare=False)  # in its suite file (for --safe)


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """One expected property as written in a suite: `{name: value}`."""

    name: str
    value: Any
    line: int | None = None
    # Set by checks whose label must not change with every field of their value: a judge
    # keeps its label when its rubric is edited, so the edit shows as `stale`, not a new check.
    label_text: str | None = None

    @property
    def label(self) -> str:
        """How the check is named in snapshots and reports: `contains: Paris`."""
        if self.label_text is not None:
            return self.label_text
        value = self.value if isinstance(self.value, str) else canonical_json(self.value)
        return f"{self.name}: {value}"


@dataclass(frozen=True, slots=True)
class Case:
    """One set of template variables plus checks, as loaded (not yet rendered)."""

    id: str
    vars: dict[str, Any]
    expect: tuple[CheckSpec, ...] = ()
    prompt: str | None = None
    system: str | None = None
    messages: tuple[dict[str, Any], ...] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    file: str = ""
    line: int | None = None
    repeat: int | None = None
    pass_rule: PassRule | None = None


@dataclass(frozen=True)
class Suite:
    """One suite file, validated."""

    name: str
    path: str
    targets: tuple[Target, ...]
    cases: Sequence[Case]  # a tuple, or a CaseFile: read from its file as it is gone through
    description: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    system: str | None = None
    prompt: str | None = None
    messages: tuple[dict[str, Any], ...] | None = None
    expect: tuple[CheckSpec, ...] = ()
    repeat: int | None = None
    pass_rule: PassRule | None = None
    params_line: int | None = None  # where `params:` is, for errors found once targets are known


def result_key(suite: str, case: str, target: str) -> str:
    """`suite/case@target`: what names a result everywhere (reports, -k, snapshots' files)."""
    return f"{suite}/{case}@{target}"


@dataclass(frozen=True, slots=True)
class Call:
    """Everything that shapes a provider response; its hash is the cache key.

    The API key is deliberately absent: it never shapes the answer and must never
    reach disk.
    """

    model: str
    messages: tuple[dict[str, Any], ...]
    params: dict[str, Any]
    api_base: str | None = None
    sample: int = 0
    # "chat" asks for a completion; "embedding" for the vector of the one message's content.
    kind: str = "chat"
    # cache_key, once computed: a key's call is looked up several times on its way.
    _key: str = field(default="", init=False, repr=False, compare=False)

    def cache_key(self) -> str:
        if self._key:
            return self._key
        payload: dict[str, Any] = {
            "model": self.model,
            "api_base": self.api_base,
            "messages": list(self.messages),
            "params": self.params,
            "sample": self.sample,
        }
        if self.kind != "chat":
            payload["kind"] = self.kind  # chat keys stay as they were before kinds existed
        key = hashlib.sha256(canonical_json(payload).encode()).hexdigest()
        object.__setattr__(self, "_key", key)  # frozen: set as the dataclass's own __init__ does
        return key

    def request_hash(self) -> str:
        """Hash of the rendered prompt and params (not the model): flags `prompt changed`."""
        payload = {"messages": list(self.messages), "params": self.params}
        return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Job:
    """One result key, ready to run: its call and its rendered checks."""

    suite: str
    case: str
    target: str
    call: Call
    checks: tuple[CheckSpec, ...]
    vars: dict[str, Any]
    suite_path: str = ""
    case_file: str = ""
    case_line: int | None = None
    samples: int = 1
    pass_rule: PassRule = field(default_factory=PassRule)
    _calls: tuple[Call, ...] = field(default=(), init=False, repr=False, compare=False)

    @property
    def key(self) -> str:
        return result_key(self.suite, self.case, self.target)

    def calls(self) -> list[Call]:
        """One call per sample; the sample index is in each cache key, so samples are independent."""
        if not self._calls:
            # The same Call objects each time: their cache keys are computed once.
            calls = tuple(
                self.call if index == self.call.sample == 0 else replace(self.call, sample=index)
                for index in range(self.samples)
            )
            object.__setattr__(self, "_calls", calls)  # frozen: set as the dataclass's own __init__ does
        return list(self._calls)


@dataclass(frozen=True, slots=True)
class Output:
    """One provider answer (fresh or from the cache)."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None  # None = unknown, never silently 0
    latency_ms: float | None = None
    cached: bool = False
    embedding: tuple[float, ...] | None = None  # the answer to an embedding call

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "text": self.text,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
            "latency_ms": self.latency_ms,
        }
        if self.embedding is not None:
            data["embedding"] = list(self.embedding)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, cached: bool = False) -> Output:
        vector = data.get("embedding")
        return cls(
            text=data["text"],
            prompt_tokens=data.get("prompt_tokens"),
            completion_tokens=data.get("completion_tokens"),
            cost_usd=data.get("cost_usd"),
            latency_ms=data.get("latency_ms"),
            cached=cached,
            embedding=tuple(float(x) for x in vector) if vector is not None else None,
        )


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
    # Judged checks read the answers to the calls they asked for (judge, embeddings) here;
    # it raises CheckError when that call failed.
    answer_for: Callable[[Call], Output] = _no_answers

    @property
    def prompt(self) -> str:
        """The last user message as sent: what the output answers."""
        users = [m.get("content", "") for m in self.messages if m.get("role") == "user"]
        return str(users[-1]) if users else ""

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

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": self.name,
            "label": self.label,
            "passed": self.passed,
            "reason": self.reason,
        }
        if self.error is not None:
            data["error"] = self.error
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
    # How the output moved from the snapshot's: a score in [0, 1] and one line of explanation
    # ("reworded (0.82)", "meaning changed (0.41): negation added").
    similarity: float | None = None
    change: str | None = None
    suite_path: str = ""
    case_file: str = ""
    case_line: int | None = None
    # Does it fail the run it is part of (decided with the run's --ci, --strict, --update)?
    # None outside a run: a snapshot entry, a side of a diff. Not part of equality: it is
    # the run's reading of the result (a record read back without it takes it from `passed`).
    fails_run: bool | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        return result_key(self.suite, self.case, self.target)

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
        """The JSON form used by run records and the `--json` report."""
        return {
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
            "snapshot": None
            if self.snapshot_output is None
            else {"output": self.snapshot_output, "checks": self.snapshot_checks or {}},
            "location": {
                "suite_file": self.suite_path,
                "case_file": self.case_file,
                "line": self.case_line,
            },
        }

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
            fails_run=None if "passed" not in data else not data["passed"],
        )

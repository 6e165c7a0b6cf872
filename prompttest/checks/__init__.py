"""The check registry: every check is a small function registered by name.

A check is `(output, value, ctx) -> (passed, reason)`; `run_check` wraps its answer in a
`CheckResult`. Suites are validated at load time with `prepare_check`, so a broken regex
or schema is a suite error, not a failure discovered after paying for a run.

Judged checks (`llm_judge`, `similar`) also say which provider calls they need for an
output (`calls_for`); the run answers those through the same cache and provider path as
the suite's own calls, and the check reads them from `ctx.answer_for`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from prompttest.errors import SuiteError
from prompttest.model import Call, CheckContext, CheckError, CheckResult, CheckSpec, canonical_json

CheckFn = Callable[[str, Any, CheckContext], tuple[bool, str]]
PrepareFn = Callable[[Any], str | None]
LabelFn = Callable[[Any, int], str]  # (value, n-th check of that name in the key)
ResolveFn = Callable[[Any, "Defaults"], Any]
CallsFn = Callable[[Any, str, CheckContext], list[Call]]
JudgeFn = Callable[[Any], dict[str, Any]]
F = TypeVar("F", bound=CheckFn)

QUOTE_LIMIT = 60
# A reason is one cell of a report row; anything longer is noise (or a runaway custom check).
REASON_LIMIT = 300

__all__ = [
    "CheckError",
    "CheckFailure",
    "CheckFn",
    "Defaults",
    "PrepareFn",
    "calls_for",
    "check_label",
    "known_checks",
    "prepare_check",
    "quote",
    "register",
    "resolve_check",
    "run_check",
    "shorten",
]


class CheckFailure(Exception):
    """Raised inside a check to fail it with this reason (e.g. output is not JSON at all)."""


@dataclass(frozen=True)
class Defaults:
    """Project settings that judged checks fall back on when the suite does not say."""

    judge: str = ""
    judge_api_base: str | None = None
    embedding: str = ""
    embedding_api_base: str | None = None
    compare: str = ""  # the project's compare rubric
    compare_judge: str = ""
    root: str | None = None  # the project root: where custom checks are imported from


@dataclass(frozen=True)
class _Entry:
    fn: CheckFn
    prepare: PrepareFn | None
    label: LabelFn | None = None
    resolve: ResolveFn | None = None
    calls: CallsFn | None = None
    judge: JudgeFn | None = None


_REGISTRY: dict[str, _Entry] = {}


def register(
    name: str,
    *,
    prepare: PrepareFn | None = None,
    label: LabelFn | None = None,
    resolve: ResolveFn | None = None,
    calls: CallsFn | None = None,
    judge: JudgeFn | None = None,
) -> Callable[[F], F]:
    """Register a check under `name`; `prepare(value)` validates its value at load time.

    Judged checks add: `label(value, nth)` (a label that survives edits of the judge),
    `resolve(value, defaults)` (fill in the project's judge), `calls(value, output, ctx)`
    (the provider calls the check reads) and `judge(value)` (what graded it, stored in
    the snapshot so a change of judge is told apart from a change of output).
    """

    def decorate(fn: F) -> F:
        if name in _REGISTRY:
            raise ValueError(f"check {name!r} is already registered")
        _REGISTRY[name] = _Entry(
            fn=fn, prepare=prepare, label=label, resolve=resolve, calls=calls, judge=judge
        )
        return fn

    return decorate


def needs_resolving(name: str) -> bool:
    """Does the check take project defaults or import code (see resolve_check)?"""
    entry = _REGISTRY.get(name)
    return entry is not None and entry.resolve is not None


def known_checks() -> list[str]:
    """The names of all registered checks, sorted."""
    return sorted(_REGISTRY)


def _unknown_message(name: str) -> str:
    known = known_checks()
    close = difflib.get_close_matches(name, known, n=1)
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown check {name!r}{guess}; known checks: {', '.join(known)}"


def prepare_check(name: str, value: Any) -> str | None:
    """Validate a check's value beyond the schema; return an error message or None."""
    entry = _REGISTRY.get(name)
    if entry is None:
        return _unknown_message(name)
    return entry.prepare(value) if entry.prepare else None


def check_label(name: str, value: Any, nth: int) -> str | None:
    """The label a check asks for instead of `name: value`, or None."""
    entry = _REGISTRY.get(name)
    return entry.label(value, nth) if entry and entry.label else None


def resolve_check(spec: CheckSpec, defaults: Defaults) -> CheckSpec:
    """The check with the project's defaults filled in (e.g. the judge model)."""
    entry = _REGISTRY.get(spec.name)
    if entry is None or entry.resolve is None:
        return spec
    return replace(spec, value=entry.resolve(spec.value, defaults))


def calls_for(spec: CheckSpec, output: str, ctx: CheckContext) -> list[Call]:
    """The provider calls a judged check needs to grade `output`; [] for the others."""
    entry = _REGISTRY.get(spec.name)
    return entry.calls(spec.value, output, ctx) if entry and entry.calls else []


def _entry(spec: CheckSpec) -> _Entry:
    entry = _REGISTRY.get(spec.name)
    if entry is None:
        # Suites are prepared at load time, so reaching this means a caller skipped that.
        raise SuiteError(_unknown_message(spec.name), line=spec.line)
    return entry


def run_check(spec: CheckSpec, output: str, ctx: CheckContext) -> CheckResult:
    """Run one check on one output; the reason is always a single short line.

    A check that cannot decide (CheckError, or any exception: a custom check's bug) gives
    an error result that names the exception; it never passes and never crashes the run.
    """
    entry = _entry(spec)
    judge = entry.judge(spec.value) if entry.judge else None
    error, score = None, None
    try:
        # A scored check (a judge with a threshold, `similar`) also returns its score.
        passed, reason, *scored = entry.fn(output, spec.value, ctx)
        score = scored[0] if scored else None
    except CheckFailure as failure:
        passed, reason = False, str(failure)
    except CheckError as failure:
        passed, reason = False, f"error: {failure}"
        error = shorten(str(failure), REASON_LIMIT)
    except Exception as exc:  # noqa: BLE001  (a check's bug is the key's error, not a crash)
        passed, reason = False, f"error: {type(exc).__name__}: {exc}"
        error = shorten(f"{type(exc).__name__}: {exc}", REASON_LIMIT)
    return CheckResult(
        label=spec.label,
        passed=passed,
        reason=shorten(reason, REASON_LIMIT),
        name=spec.name,
        error=error,
        judge=judge,
        score=None if score is None or error is not None else float(score),
    )


def shorten(message: str, limit: int) -> str:
    """Flatten `message` to one line and cut it to `limit` characters with an ellipsis."""
    flat = " ".join(part.strip() for part in message.splitlines())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """Show a value in a reason: repr-quoted strings, JSON otherwise, cut to `limit`."""
    if isinstance(value, str):
        # Cut before repr so the quotes survive; repr escapes newlines, keeping one line.
        cut = value if len(value) <= limit else value[: limit - 1] + "…"
        return repr(cut)
    return shorten(canonical_json(value), limit)


# The families register themselves on import; they need the names above, hence at the end.
from prompttest.checks import custom, judged, metrics, structure, text, tools  # noqa: E402,F401  (registers the families)

"""The check registry: every check is a small function registered by name.

A check is `(output, value, ctx) -> (passed, reason)`; `run_check` wraps its answer in a
`CheckResult`. Suites are validated at load time with `prepare_check`, so a broken regex
or schema is a suite error, not a failure discovered after paying for a run.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from prompttest.errors import SuiteError
from prompttest.model import CheckContext, CheckResult, CheckSpec, canonical_json

CheckFn = Callable[[str, Any, CheckContext], tuple[bool, str]]
PrepareFn = Callable[[Any], str | None]
F = TypeVar("F", bound=CheckFn)

QUOTE_LIMIT = 60
# A reason is one cell of a report row; anything longer is noise (or a runaway custom check).
REASON_LIMIT = 300

__all__ = [
    "CheckFailure",
    "CheckFn",
    "PrepareFn",
    "known_checks",
    "prepare_check",
    "quote",
    "register",
    "run_check",
    "shorten",
]


class CheckFailure(Exception):
    """Raised inside a check to fail it with this reason (e.g. output is not JSON at all)."""


@dataclass(frozen=True)
class _Entry:
    fn: CheckFn
    prepare: PrepareFn | None


_REGISTRY: dict[str, _Entry] = {}


def register(name: str, *, prepare: PrepareFn | None = None) -> Callable[[F], F]:
    """Register a check under `name`; `prepare(value)` validates its value at load time."""

    def decorate(fn: F) -> F:
        if name in _REGISTRY:
            raise ValueError(f"check {name!r} is already registered")
        _REGISTRY[name] = _Entry(fn=fn, prepare=prepare)
        return fn

    return decorate


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


def run_check(spec: CheckSpec, output: str, ctx: CheckContext) -> CheckResult:
    """Run one check on one output; the reason is always a single short line."""
    entry = _REGISTRY.get(spec.name)
    if entry is None:
        # Suites are prepared at load time, so reaching this means a caller skipped that.
        raise SuiteError(_unknown_message(spec.name), line=spec.line)
    try:
        passed, reason = entry.fn(output, spec.value, ctx)
    except CheckFailure as failure:
        passed, reason = False, str(failure)
    return CheckResult(label=spec.label, passed=passed, reason=shorten(reason, REASON_LIMIT), name=spec.name)


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
from prompttest.checks import metrics, structure, text  # noqa: E402,F401  (registers the families)

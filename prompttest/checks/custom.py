"""Custom checks: `python: package.module:function`, trusted code from the project.

The function gets the output and a `CheckContext` (vars, case, target, metrics, prompt)
and returns a bool, a `(bool, reason)` pair or a `CheckResult`. Its module is imported
from the project root before any provider call, so a typo stops the run before it costs
anything; an exception inside it is the key's `error`, with the exception and where it
was raised. `--safe` refuses these checks (they run code from the suite's repository).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prompttest.checks import Defaults, register
from prompttest.io.pycode import REFERENCE, load_function
from prompttest.model import CheckContext, CheckError, CheckResult

CustomFn = Callable[[str, CheckContext], Any]


def _prepare(value: Any) -> str | None:
    if not isinstance(value, str) or not REFERENCE.match(value):
        return f"expected 'package.module:function', got {value!r}"
    return None


def _label(value: Any, nth: int) -> str:
    return f"python: {value}"  # stays the same once the value carries its project root


def _resolve(value: str, defaults: Defaults) -> dict[str, Any]:
    """Import the function now: a missing module or function is a suite error, before any call."""
    load_function(value, root=defaults.root)
    return {"reference": value, "root": defaults.root}


@register("python", prepare=_prepare, label=_label, resolve=_resolve)
def python(output: str, value: Any, ctx: CheckContext) -> tuple[bool, str]:
    reference, root = (value, None) if isinstance(value, str) else (value["reference"], value["root"])
    function = load_function(reference, root=root)
    try:
        answer = function(output, ctx)
    except Exception as exc:  # noqa: BLE001  (the check's bug: an error result, not a crash)
        raise CheckError(f"{reference} raised {type(exc).__name__}: {exc}{_where(exc, root)}") from None
    return _read_answer(answer, reference)


def _read_answer(answer: Any, reference: str) -> tuple[bool, str]:
    if isinstance(answer, bool):
        return answer, f"{reference} returned {answer}"
    if isinstance(answer, CheckResult):
        if answer.error:
            raise CheckError(f"{reference}: {answer.error}")
        return answer.passed, answer.reason or f"{reference} returned {answer.passed}"
    if isinstance(answer, tuple) and len(answer) == 2 and isinstance(answer[0], bool):
        return answer[0], str(answer[1]) or f"{reference} returned {answer[0]}"
    raise CheckError(
        f"{reference} returned {type(answer).__name__} {answer!r:.60}; "
        "expected True/False, (bool, reason) or a CheckResult"
    )


def _where(exc: BaseException, root: str | None) -> str:
    """` (at checks/tone.py:12)`: the innermost frame, so the author finds the line."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    path = Path(last.filename).resolve()
    base = Path(root or Path.cwd()).resolve()
    shown = path.relative_to(base).as_posix() if path.is_relative_to(base) else path.name
    return f" (at {shown}:{last.lineno})"

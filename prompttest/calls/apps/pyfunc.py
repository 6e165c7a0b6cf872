"""`python:` targets: a function of the project, called with the case's input."""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...io.pycode import load_function
from ...model import Call
from ..faults import ProviderError, RetryPolicy, one_line
from .base import Fields, bounded, in_thread, request_of
from .replies import BadReply, read_reply


async def answer_python(call: Call, policy: RetryPolicy) -> Fields:
    app = call.app or {}
    reference, root = app["python"], app.get("root")
    # An import problem is the suite's (SuiteError): it propagates, as for a custom check.
    function = load_function(
        reference, root=root, what="python target", signature="def answer(request): return 'the answer'"
    )
    reply = await bounded(_invoke(function, request_of(call), root), policy)
    try:
        return read_reply(reply)
    except BadReply as problem:
        raise ProviderError(f"returned {problem}") from None


async def _invoke(function: Callable[..., Any], request: dict[str, Any], root: str | None) -> Any:
    """The function's reply. An async function runs on the event loop, a sync one in a thread
    of its own (one that overruns the timeout is abandoned, not stopped: see `in_thread`).

    Its exceptions are converted here, inside the timeout, so that a TimeoutError the app
    raises itself reads as the app's error, not as the call timing out.
    """
    try:
        if inspect.iscoroutinefunction(function):
            return await function(request)
        reply = await in_thread(_run_in_thread, function, request, root)
        return await reply if inspect.isawaitable(reply) else reply  # a callable with an async __call__
    except ProviderError:
        raise
    except (Exception, SystemExit) as exc:  # noqa: BLE001  (the app's bug: the key's error, not a crash)
        raise _app_error(exc, root) from None


def _run_in_thread(function: Callable[..., Any], request: dict[str, Any], root: str | None) -> Any:
    """The sync function, its exceptions converted in its own thread: asyncio replaces a
    TimeoutError that crosses from a thread with a new one, which has lost its traceback."""
    try:
        return function(request)
    except (Exception, SystemExit) as exc:  # noqa: BLE001  (the app's bug: the key's error, not a crash)
        raise _app_error(exc, root) from None


def _app_error(exc: BaseException, root: str | None) -> ProviderError:
    """`KeyError: 'x' (at myapp/assistant.py:12)`: final, as the same input raises again."""
    message = one_line(str(exc))
    said = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return ProviderError(f"{said} (at {_where(exc, root)})")


def _where(exc: BaseException, root: str | None) -> str:
    """`myapp/assistant.py:12`: the innermost frame in the app's own code (under its root), so
    that an error raised deep inside a library points at the app's line that called it; else
    the innermost frame, by file name only (no machine path reaches a record)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown line"
    base = Path(root or Path.cwd()).resolve()
    for frame in reversed(frames):
        path = Path(frame.filename).resolve()
        if path.is_relative_to(base):
            return f"{path.relative_to(base).as_posix()}:{frame.lineno}"
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}"

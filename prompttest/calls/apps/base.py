"""What every kind of application target shares: the call's input, its time limit, threads."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ...model import Call
from ..faults import ProviderError, RetryPolicy

T = TypeVar("T")
KINDS = ("python", "http", "exec")
Fields = dict[str, Any]  # Output's fields but latency, as read from an app's reply

# A secret this short is too likely to be part of an ordinary answer to be scrubbed from it
# (as in `secrets`); error messages are scrubbed of every header value, whatever its length.
MIN_SCRUBBED_IN_ANSWERS = 8
STDERR_TAIL = 300
REAP_S = 5.0  # how long a killed process is waited for
SNIPPET = 200


async def bounded(work: Awaitable[T], policy: RetryPolicy) -> T:
    """`work` within the call's timeout; a timeout is worth a retry, as for a model."""
    try:
        return await asyncio.wait_for(work, policy.timeout_s)
    except TimeoutError:
        raise ProviderError(f"timed out after {policy.timeout_s:g} s", retryable=True) from None


async def in_thread(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a daemon thread of its own, awaited.

    Not `asyncio.to_thread`: a thread cannot be stopped, and the default executor's threads are
    joined when the event loop closes and when Python exits, so one app call that never returns
    would hold the finished run open for ever. A daemon thread is left behind instead. How many
    run at once is the caller's to bound (the target's concurrency), as for async calls.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def settle(result: Any, error: BaseException | None) -> None:
        if done.done():
            return  # cancelled: the caller stopped waiting (a timeout)
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)

    def run() -> None:
        try:
            result, error = context.run(function, *args), None
        except BaseException as exc:  # noqa: BLE001  (handed to the awaiting task as it is)
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="prompttest-app", daemon=True).start()
    return await done


def request_of(call: Call) -> dict[str, Any]:
    """What an app is called with. A deep copy: an app that edits it must not edit the call,
    whose cache key is made of these values."""
    return copy.deepcopy({"vars": call.vars or {}, "messages": list(call.messages), "params": call.params})

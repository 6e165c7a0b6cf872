"""Application targets: the team's own code answers a Call, not a model.

- `python: package.module:function`: a function imported from the project root, called with
  one mapping `{vars, messages, params}`; an async one is awaited on the event loop, a sync
  one runs in a thread.
- `http: {url, method, headers, body, output}`: a JSON request to the team's service.
- `exec: {command, input}`: one process a call, its input on stdin, its answer on stdout.

`answer_app` makes ONE attempt; `providers.complete` wraps it in the retries a model call
gets, so every error says whether a retry can help (`ProviderError.retryable`).

What an app answers is read the same way whatever its kind (a function's return value, a
service's JSON body at the default output path, a JSON object a process prints): a string
is the answer's text; a mapping (or an object with attributes) has `text`, and optionally
`tool_calls` (a list of `{name, arguments}`, arguments an object or JSON text; OpenAI's
`{function: {name, arguments}}` too), `metadata` (any JSON value), `tokens` (`{prompt,
completion}`, or an int: the completion tokens) and `cost_usd`. `text` may be left out
when there are tool calls, as a model may answer with tool calls alone.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ...io.urls import is_loopback_url
from ...model import Call, Output
from ..faults import RetryPolicy
from .base import Fields
from .command import answer_exec, command_of, exec_spec
from .pyfunc import answer_python
from .service import answer_http, http_spec

__all__ = ["KINDS", "answer_app", "app_kind", "describe", "is_loopback_url"]

KINDS = ("python", "http", "exec")


def app_kind(app: Mapping[str, Any]) -> str:
    """`python`, `http` or `exec`: the one kind of application the spec names."""
    kinds = [kind for kind in KINDS if kind in app]
    if len(kinds) != 1:
        raise ValueError(f"an application target names one of python, http, exec; got {kinds or 'none'}")
    return kinds[0]


def describe(app: Mapping[str, Any]) -> str:
    """The target's model string: `python:myapp.assistant:answer`, `http:<url>`, `exec:<command>`."""
    kind = app_kind(app)
    if kind == "python":
        return f"python:{app['python']}"
    if kind == "http":
        return f"http:{http_spec(app)['url']}"
    return f"exec:{shlex.join(command_of(exec_spec(app)))}"


async def answer_app(call: Call, policy: RetryPolicy) -> Output:
    """One attempt at the call by its application; ProviderError when it fails."""
    if call.app is None:
        raise ValueError("answer_app needs a call to an application target")
    kind = app_kind(call.app)
    started = time.perf_counter()
    fields = await _ANSWERERS[kind](call, policy)
    return Output(**fields, latency_ms=round((time.perf_counter() - started) * 1000, 1))


_ANSWERERS: dict[str, Callable[[Call, RetryPolicy], Awaitable[Fields]]] = {
    "python": answer_python,
    "http": answer_http,
    "exec": answer_exec,
}

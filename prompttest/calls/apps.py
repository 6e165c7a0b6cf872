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

import asyncio
import contextlib
import contextvars
import copy
import email.utils
import functools
import http.client
import inspect
import ipaddress
import json
import os
import re
import shlex
import signal
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from ..io.jsonpath import PathNotFound, PathSyntaxError, parse_path, resolve_path
from ..io.pycode import load_function
from ..model import Call, Output, ToolCall, canonical_json
from .providers import RETRYABLE_STATUS, ProviderError, RetryPolicy, _one_line

T = TypeVar("T")
KINDS = ("python", "http", "exec")
Fields = dict[str, Any]  # Output's fields but latency, as read from an app's reply

# A secret this short is too likely to be part of an ordinary answer to be scrubbed from it
# (as in `secrets`); error messages are scrubbed of every header value, whatever its length.
_MIN_SCRUBBED_IN_ANSWERS = 8
_STDERR_TAIL = 300
_REAP_S = 5.0  # how long a killed process is waited for
_SNIPPET = 200


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
        return f"http:{_http_spec(app)['url']}"
    return f"exec:{shlex.join(_command(_exec_spec(app)))}"


def is_loopback_url(url: str) -> bool:
    """Whether `url` names this machine by a loopback address or `localhost` (what --safe allows;
    a host name that merely resolves to one is not trusted to keep doing so)."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def answer_app(call: Call, policy: RetryPolicy) -> Output:
    """One attempt at the call by its application; ProviderError when it fails."""
    if call.app is None:
        raise ValueError("answer_app needs a call to an application target")
    kind = app_kind(call.app)
    started = time.perf_counter()
    fields = await _ANSWERERS[kind](call, policy)
    return Output(**fields, latency_ms=round((time.perf_counter() - started) * 1000, 1))


async def _bounded(work: Awaitable[T], policy: RetryPolicy) -> T:
    """`work` within the call's timeout; a timeout is worth a retry, as for a model."""
    try:
        return await asyncio.wait_for(work, policy.timeout_s)
    except TimeoutError:
        raise ProviderError(f"timed out after {policy.timeout_s:g} s", retryable=True) from None


async def _in_thread(function: Callable[..., T], *args: Any) -> T:
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


def _request(call: Call) -> dict[str, Any]:
    """What an app is called with. A deep copy: an app that edits it must not edit the call,
    whose cache key is made of these values."""
    return copy.deepcopy({"vars": call.vars or {}, "messages": list(call.messages), "params": call.params})


# ---------------------------------------------------------------- python


async def _answer_python(call: Call, policy: RetryPolicy) -> Fields:
    app = call.app or {}
    reference, root = app["python"], app.get("root")
    # An import problem is the suite's (SuiteError): it propagates, as for a custom check.
    function = load_function(
        reference, root=root, what="python target", signature="def answer(request): return 'the answer'"
    )
    reply = await _bounded(_invoke(function, _request(call), root), policy)
    try:
        return _read_reply(reply)
    except _BadReply as problem:
        raise ProviderError(f"returned {problem}") from None


async def _invoke(function: Callable[..., Any], request: dict[str, Any], root: str | None) -> Any:
    """The function's reply. An async function runs on the event loop, a sync one in a thread
    of its own (one that overruns the timeout is abandoned, not stopped: see `_in_thread`).

    Its exceptions are converted here, inside the timeout, so that a TimeoutError the app
    raises itself reads as the app's error, not as the call timing out.
    """
    try:
        if inspect.iscoroutinefunction(function):
            return await function(request)
        reply = await _in_thread(_run_in_thread, function, request, root)
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
    message = _one_line(str(exc))
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


# ---------------------------------------------------------------- what an app answers


class _BadReply(ValueError):
    """A reply that is no answer; each kind says who gave it (`returned`, `printed`, ...)."""


def _read_reply(reply: Any) -> Fields:
    """Output fields from a string, a mapping or an object with a `text` attribute."""
    if isinstance(reply, str):
        return {"text": reply}
    kind = "None" if reply is None else type(reply).__name__
    if not isinstance(reply, Mapping) and not hasattr(reply, "text"):
        raise _BadReply(f"{kind}, expected a string or a mapping with text")
    get = functools.partial(_field, reply)
    tool_calls = _tool_calls(get("tool_calls"), kind)
    text = get("text")
    if text is None and not tool_calls:
        raise _BadReply(f"{kind} without text, expected a string or a mapping with text")
    if text is not None and not isinstance(text, str):
        raise _BadReply(f"{kind} whose text is {type(text).__name__}, expected a string")
    prompt_tokens, completion_tokens = _tokens(get("tokens"), kind)
    return {
        "text": text or "",
        "tool_calls": tool_calls,
        "metadata": _json_value(get("metadata"), f"{kind} whose metadata"),
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "cost_usd": _number(get("cost_usd"), f"{kind} whose cost_usd"),
    }


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)


def _tool_calls(raw: Any, kind: str) -> tuple[ToolCall, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, (list, tuple)):
        raise _BadReply(
            f"{kind} whose tool_calls is {type(raw).__name__}, expected a list of {{name, arguments}}"
        )
    calls = []
    for item in raw:
        function = _field(item, "function")  # OpenAI's shape: {type: function, function: {...}}
        source = function if function is not None else item
        name, arguments = _field(source, "name"), _field(source, "arguments")
        if not isinstance(name, str) or not name:
            raise _BadReply(f"{kind} with a tool call that has no name")
        if arguments is not None and not isinstance(arguments, str):
            arguments = json.dumps(_json_value(arguments, f"{kind} whose tool call {name}'s arguments"))
        calls.append(ToolCall.parse(name, arguments))
    return tuple(calls)


def _json_value(value: Any, what: str) -> Any:
    """`value` as JSON reads it back: what is cached and snapshotted must equal what was
    answered (a tuple would come back from the cache as a list, and show as a change)."""
    if value is None:
        return None
    try:
        return json.loads(json.dumps(value, ensure_ascii=False))
    except (TypeError, ValueError) as exc:
        raise _BadReply(f"{what} is not JSON: {exc}") from None


def _tokens(raw: Any, kind: str) -> tuple[int | None, int | None]:
    """`{prompt, completion}`, or an int: the completion tokens (what an app knows most often)."""
    if raw is None:
        return None, None
    if _is_count(raw):
        return None, raw
    parts = ("prompt", "completion")
    if isinstance(raw, Mapping) and set(raw) <= set(parts) and all(_is_count(raw.get(p)) for p in parts):
        return raw.get("prompt"), raw.get("completion")
    raise _BadReply(
        f"{kind} whose tokens is {_one_line(repr(raw), 60)}, expected {{prompt, completion}} or an int"
    )


def _is_count(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)


def _number(raw: Any, what: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    raise _BadReply(f"{what} is {type(raw).__name__}, expected a number")


# ---------------------------------------------------------------- http


def _http_spec(app: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = app["http"]
    return {"url": spec} if isinstance(spec, str) else spec


async def _answer_http(call: Call, policy: RetryPolicy) -> Fields:
    """POST (by default) the body as JSON; read the answer from the JSON response.

    Header values taken from the environment are secrets: they are scrubbed from every error
    message (a server may echo a header back), and from the answer when 8 characters or longer.
    """
    spec = _http_spec(call.app or {})
    secrets: dict[str, str] = {}  # a header's value read from the environment -> its variable
    try:
        request = _http_request(spec, call, secrets)
        status, body = await _bounded(_in_thread(_send, request, policy.timeout_s), policy)
        data = _scrubbed_data(_parse_json(status, body), secrets)
        return _http_answer(data, spec.get("output"))
    except ProviderError as error:
        error.message = _scrub(error.message, secrets, min_length=1)
        error.args = (error.message,)
        raise


def _http_request(spec: Mapping[str, Any], call: Call, secrets: dict[str, str]) -> urllib.request.Request:
    if "body" in spec:
        body = _fill(spec["body"], call.vars or {})
    else:
        body = {"vars": call.vars or {}, "messages": list(call.messages), "params": call.params}
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    for name, value in (spec.get("headers") or {}).items():
        headers[str(name)] = _header_value(str(name), str(value), secrets)
    try:
        return urllib.request.Request(
            spec["url"],
            data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
            headers=headers,
            method=str(spec.get("method") or "POST").upper(),
        )
    except ValueError as exc:  # no scheme, say
        raise ProviderError(f"invalid url: {exc}", fatal=True) from None


# `{{ name }}` as in prompts (suites.template, which this stage may not import): a dotted
# name walks nested mappings and lists.
_PLACEHOLDER = re.compile(r"\{\{\s*([^\W\d][\w-]*(?:\.[\w-]+)*)\s*\}\}")


def _fill(value: Any, vars: Mapping[str, Any]) -> Any:
    """The body with its placeholders filled from the case's vars. A string that is nothing but
    one placeholder takes the variable's value as it is (a number stays a number, a list a
    list); one inside other text takes its text, as in a prompt."""
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value.strip())
        if whole:
            return _var(vars, whole[1])
        return _PLACEHOLDER.sub(lambda match: _as_text(_var(vars, match[1])), value)
    if isinstance(value, list):
        return [_fill(item, vars) for item in value]
    if isinstance(value, Mapping):
        return {key: _fill(item, vars) for key, item in value.items()}
    return value


def _var(vars: Mapping[str, Any], name: str) -> Any:
    """An exact key first (a CSV column may be called `a.b`), then a walk through the dots."""
    if name in vars:
        return vars[name]
    value: Any = vars
    for part in name.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise ProviderError(f"the http body uses {{{{ {name} }}}} but the case has no variable '{name}'")
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return canonical_json(value) if isinstance(value, (list, dict)) else str(value)


_ENV_IN_VALUE = re.compile(r"\$\{([A-Za-z_]\w*)\}")
_ENV_WHOLE = re.compile(r"\$([A-Za-z_]\w*)")


def _header_value(header: str, value: str, secrets: dict[str, str]) -> str:
    """`${NAME}` anywhere in the value (`Bearer ${TOKEN}`), or `$NAME` as the whole value, read
    from the environment now: the spec keeps the name, so the value is never stored."""
    whole = _ENV_WHOLE.fullmatch(value)
    if whole:
        return _from_environment(header, whole[1], secrets)
    return _ENV_IN_VALUE.sub(lambda match: _from_environment(header, match[1], secrets), value)


def _from_environment(header: str, name: str, secrets: dict[str, str]) -> str:
    value = os.environ.get(name)
    if not value:  # every call would fail the same: the breaker stops the target
        raise ProviderError(f"the http header {header} reads ${{{name}}}, which is not set", fatal=True)
    secrets[value] = name
    return value


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an error, not followed: urllib would send the request's headers (its
    keys) on to wherever it points, and --safe allowed the URL, not where it leads."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None


def _send(request: urllib.request.Request, timeout_s: float) -> tuple[int, bytes]:
    """The status and body of a 2xx answer (runs in a thread: urllib blocks)."""
    handlers: list[urllib.request.BaseHandler] = [_NoRedirects()]
    if is_loopback_url(request.full_url):
        handlers.append(urllib.request.ProxyHandler({}))  # a proxy cannot reach our loopback
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout_s) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        raise _status_error(error) from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError):
            raise ProviderError(f"timed out after {timeout_s:g} s", retryable=True) from None
        raise ProviderError(
            f"could not connect to {request.host}: {_reason(error.reason)}", retryable=True
        ) from None
    except TimeoutError:
        raise ProviderError(f"timed out after {timeout_s:g} s", retryable=True) from None
    except (OSError, http.client.HTTPException) as error:  # reset, closed mid-answer
        raise ProviderError(
            f"connection error: {type(error).__name__}: {_reason(error)}", retryable=True
        ) from None
    except ValueError as error:  # a header value http.client refuses: its message quotes the value
        raise ProviderError(
            f"invalid request ({type(error).__name__}): a header value or the url has a character "
            "HTTP cannot carry (a newline, a character outside Latin-1)",
            fatal=True,
        ) from None


def _reason(reason: Any) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return _one_line(str(reason)) or type(reason).__name__


def _status_error(error: urllib.error.HTTPError) -> ProviderError:
    """429 and 5xx are worth a retry (after Retry-After, if the service says); other statuses
    are final, and 401/403/404 stop the target (`ProviderError.fatal_for_target`)."""
    status = error.code
    if 300 <= status < 400:
        where = error.headers.get("Location", "elsewhere")
        return ProviderError(
            f"HTTP {status}: redirected to {where}; redirects are not followed", status_code=status
        )
    snippet = ""
    with contextlib.suppress(Exception):  # a body cut short: the status says enough
        snippet = _snippet(error.read())
    said = f"HTTP {status} {error.reason}".rstrip()
    retryable = status >= 500 or status in RETRYABLE_STATUS
    return ProviderError(
        f"{said}: {snippet}" if snippet else said,
        status_code=status,
        retryable=retryable,
        retry_after=_retry_after(error.headers.get("Retry-After")) if retryable else None,
    )


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds, or as an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _snippet(body: bytes) -> str:
    return _one_line(body.decode("utf-8", errors="replace"), _SNIPPET)


def _parse_json(status: int, body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        shown = _snippet(body) or "an empty body"
        raise ProviderError(
            f"malformed response: not JSON (HTTP {status}): {shown}", retryable=True
        ) from None


def _http_answer(data: Any, output: str | None) -> Fields:
    """The answer at `output`: its text only. Without `output` (or with `$.text`), the body is
    read as a reply: a JSON string is the text; an object gives `text` and also `tool_calls`,
    `metadata`, `tokens` and `cost_usd` when present."""
    if output is None or output == "$.text":
        if isinstance(data, str):
            return {"text": data}
        if isinstance(data, dict) and ("text" in data or "tool_calls" in data):
            try:
                return _read_reply(data)
            except _BadReply as problem:
                raise ProviderError(f"malformed response: {problem}", retryable=True) from None
        output = "$.text"
    try:
        value = resolve_path(data, parse_path(output))
    except PathSyntaxError as exc:
        raise ProviderError(f"the http output {output!r} is not a JSON path: {exc}", fatal=True) from None
    except PathNotFound as exc:
        raise ProviderError(f"malformed response: {output} not found: {exc}", retryable=True) from None
    return {"text": value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}


def _scrub(text: str, secrets: Mapping[str, str], *, min_length: int) -> str:
    for value, name in sorted(secrets.items(), key=lambda item: -len(item[0])):
        if len(value) >= min_length:
            text = text.replace(value, f"[REDACTED:{name}]")
    return text


def _scrubbed_data(data: Any, secrets: Mapping[str, str]) -> Any:
    """The response with the headers' secrets scrubbed from every string in it (a service that
    echoes its request would otherwise put a key in the cache and the snapshot)."""
    if not secrets:
        return data
    # Replaced in the JSON text, as JSON escapes them: a value with a quote is still found.
    escaped = {json.dumps(value, ensure_ascii=False)[1:-1]: name for value, name in secrets.items()}
    return json.loads(
        _scrub(json.dumps(data, ensure_ascii=False), escaped, min_length=_MIN_SCRUBBED_IN_ANSWERS)
    )


# ---------------------------------------------------------------- exec


def _exec_spec(app: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = app["exec"]
    return {"command": spec} if isinstance(spec, (str, list)) else spec


def _command(spec: Mapping[str, Any]) -> list[str]:
    command = spec["command"]
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


async def _answer_exec(call: Call, policy: RetryPolicy) -> Fields:
    """Run the command (in the project root), input on stdin, the answer on stdout."""
    app = call.app or {}
    spec = _exec_spec(app)
    command = _command(spec)
    stdin = _exec_input(call, spec.get("input") or "json")
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=app.get("root"),
            start_new_session=True,  # its own process group: a timeout kills what it started too
        )
    except OSError as exc:  # no such command, not executable: every call would fail the same
        raise ProviderError(f"cannot run {command[0]}: {exc.strerror or exc}", fatal=True) from None
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(stdin), policy.timeout_s)
    except TimeoutError:
        _kill(process)
        # Bounded: asyncio waits for its pipes to close too, which one that left its group holds.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), _REAP_S)
        raise ProviderError(f"timed out after {policy.timeout_s:g} s", retryable=True) from None
    except BaseException:  # cancelled (Ctrl-C, a stopped run): the process must not outlive the call
        _kill(process)
        raise
    if process.returncode != 0:
        raise ProviderError(_exit_message(process.returncode, stderr))
    return _exec_answer(stdout.decode("utf-8", errors="replace"))


def _exec_input(call: Call, mode: str) -> bytes:
    """`json`: `{vars, messages, params}`; `text`: the last user message's content."""
    if mode not in ("json", "text"):
        raise ProviderError(f"exec input {mode!r}: expected json or text", fatal=True)
    if mode == "text":
        return _last_user_text(call.messages).encode("utf-8")
    return json.dumps(_request(call), ensure_ascii=False).encode("utf-8")


def _last_user_text(messages: tuple[dict[str, Any], ...]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # parts: their text, an image has none
                return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
            return content if isinstance(content, str) else ""
    return ""


def _kill(process: asyncio.subprocess.Process) -> None:
    """Kill the process and every process it started (its own group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()


def _exit_message(code: int | None, stderr: bytes) -> str:
    """`exit code 2: ValueError: no question`: the code, and stderr's last line, where a
    traceback or a usage message ends."""
    lines = [line.strip() for line in stderr.decode("utf-8", errors="replace").splitlines() if line.strip()]
    tail = _one_line(lines[-1], _STDERR_TAIL) if lines else "(nothing on stderr)"
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}: {tail}"
    return f"exit code {code}: {tail}"


def _exec_answer(stdout: str) -> Fields:
    """stdout, less one trailing newline, is the text; a JSON object with `text` is a reply."""
    text = stdout[:-2] if stdout.endswith("\r\n") else stdout.removesuffix("\n")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return {"text": text}
    if not isinstance(data, dict) or "text" not in data:
        return {"text": text}
    try:
        return _read_reply(data)
    except _BadReply as problem:
        raise ProviderError(f"printed {problem}") from None


_ANSWERERS: dict[str, Callable[[Call, RetryPolicy], Awaitable[Fields]]] = {
    "python": _answer_python,
    "http": _answer_http,
    "exec": _answer_exec,
}

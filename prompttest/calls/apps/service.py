"""`http:` targets: a JSON request to the team's own service."""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ...io.jsonpath import PathNotFound, PathSyntaxError, parse_path, resolve_path
from ...io.urls import is_loopback_url
from ...model import Call
from ..faults import RETRYABLE_STATUS, ProviderError, RetryPolicy, one_line
from .base import MIN_SCRUBBED_IN_ANSWERS, SNIPPET, Fields, bounded, in_thread
from .replies import BadReply, read_reply


def http_spec(app: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = app["http"]
    return {"url": spec} if isinstance(spec, str) else spec


async def answer_http(call: Call, policy: RetryPolicy) -> Fields:
    """POST (by default) the body as JSON; read the answer from the JSON response.

    Header values taken from the environment are secrets: they are scrubbed from every error
    message (a server may echo a header back), and from the answer when 8 characters or longer.
    """
    spec = http_spec(call.app or {})
    secrets: dict[str, str] = {}  # a header's value read from the environment -> its variable
    try:
        request = _http_request(spec, call, secrets)
        status, body = await bounded(in_thread(_send, request, policy.timeout_s), policy)
        data = _scrubbed_data(_parse_json(status, body), secrets)
        return _http_answer(data, spec.get("output"))
    except ProviderError as error:
        error.message = _scrub(error.message, secrets, min_length=1)
        error.args = (error.message,)
        raise


def _http_request(spec: Mapping[str, Any], call: Call, secrets: dict[str, str]) -> urllib.request.Request:
    if "body" in spec:
        body = spec["body"]  # filled from the case's vars when its job was made
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
    return one_line(str(reason)) or type(reason).__name__


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
    return one_line(body.decode("utf-8", errors="replace"), SNIPPET)


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
                return read_reply(data)
            except BadReply as problem:
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
        _scrub(json.dumps(data, ensure_ascii=False), escaped, min_length=MIN_SCRUBBED_IN_ANSWERS)
    )

"""GitHub's REST API over urllib: a request with the headers GitHub asks for, a list read page
by page (`Link: rel="next"`), and every failure sorted in two: `Refused`, a 4xx that waiting
will not change (401, 403, 404, 422), or `Pause`, worth another try (a rate limit, with how
long it asks to wait; a 5xx; a refused or dropped connection). `retrying` runs an operation
again after a `Pause`, a few times, and gives up with `GaveUp`.

The token goes only to the API's host: redirects are not followed, nor a next page elsewhere.
No text made here carries it (`redact`): GitHub's error messages are redacted before they
are kept.
"""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ..io.urls import is_loopback_host
from .target import TOKEN_VARIABLE

T = TypeVar("T")

API_VERSION = "2022-11-28"
USER_AGENT = "prompttest"
TIMEOUT = 30.0  # seconds, one request
ATTEMPTS = 4  # an operation and three retries
BACKOFF = (1.0, 2.0, 4.0)  # seconds before each retry after a 5xx or a connection error
MAX_WAIT = 60.0  # a rate limit that asks for longer is not waited for: the job's minutes cost more
RATE_LIMIT_WAIT = 60.0  # GitHub's advice when a rate limit does not say how long
MAX_PAGES = 100  # of 100 comments each
SNIPPET = 200  # characters of GitHub's error message kept
# Bearer tokens, and GitHub's token shapes (classic, OAuth, app, refresh, fine-grained).
_TOKEN_SHAPES = re.compile(
    r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}|\b(?:gh[pousr]_|github_pat_)[A-Za-z0-9_]{8,}"
)
_NEXT = re.compile(r'<([^>]+)>\s*;[^,]*\brel="?next"?')


def redact(text: str, token: str) -> str:
    """`text` without the token, nor anything shaped like a GitHub token or a bearer token."""
    if token:
        text = text.replace(token, f"[REDACTED:{TOKEN_VARIABLE}]")
    return _TOKEN_SHAPES.sub(lambda m: f"{m.group(1) or ''}[REDACTED]", text)


class Refused(Exception):
    """GitHub said no, and saying it again will not change that.

    `status` 0 is no HTTP status: a request not made (a next page on another host)."""

    def __init__(self, status: int, message: str, request: str, *, said: str = "") -> None:
        said = said or (f"HTTP {status}" if status else "")
        text = f"{said} to {request}" if said else request
        super().__init__(f"{text}: {message}" if message else text)
        self.status = status
        self.message = message
        self.request = request


class Pause(Exception):
    """Not now: a rate limit (`wait` is how long it asked for), a 5xx or a dropped connection
    (`wait` None: the backoff decides, unless the 5xx said Retry-After)."""

    def __init__(self, reason: str, *, wait: float | None = None, rate_limited: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait
        self.rate_limited = rate_limited


class GaveUp(Exception):
    """`retrying` stopped: `tries` attempts ended in `pause`, or it asked to wait `too_long`."""

    def __init__(self, pause: Pause, tries: int, *, too_long: float | None = None) -> None:
        super().__init__(pause.reason)
        self.pause = pause
        self.tries = tries
        self.too_long = too_long


@dataclass(frozen=True)
class Answer:
    status: int
    data: Any
    next_url: str | None  # the Link header's rel="next"


def retrying(operation: Callable[[], T], *, sleep: Callable[[float], None] = time.sleep) -> T:
    """`operation()`, run again after each Pause (as long as it asked to wait, else the backoff),
    at most ATTEMPTS times in all; a wait over MAX_WAIT is not waited for."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return operation()
        except Pause as pause:
            if attempt == ATTEMPTS:
                raise GaveUp(pause, attempt) from None
            wait = pause.wait if pause.wait is not None else BACKOFF[min(attempt, len(BACKOFF)) - 1]
            if wait > MAX_WAIT:
                raise GaveUp(pause, attempt, too_long=wait) from None
            sleep(wait)
    raise AssertionError("unreachable")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not followed: urllib would send the token on to wherever it points."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None


class GitHub:
    """One API (https://api.github.com, or a GitHub Enterprise Server's) with one token."""

    def __init__(self, api_url: str, token: str, *, timeout: float = TIMEOUT) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self._token = token
        self._origin = _origin(self.api_url)
        handlers: list[urllib.request.BaseHandler] = [_NoRedirects()]
        if is_loopback_host(urllib.parse.urlsplit(self.api_url).hostname or ""):
            handlers.append(urllib.request.ProxyHandler({}))  # a proxy cannot reach this machine
        self._opener = urllib.request.build_opener(*handlers)

    def redact(self, text: str) -> str:
        return redact(text, self._token)

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Answer:
        """One request: `path` below the API URL, or a full URL on its host (a next page)."""
        url = path if "://" in path else self.api_url + path
        request_name = f"{method} {urllib.parse.urlsplit(url).path}"
        if _origin(url) != self._origin:
            raise Refused(0, f"points away from {self.api_url}: not followed", request_name)
        request = urllib.request.Request(
            url,
            data=None if body is None else json.dumps(body).encode("utf-8"),
            method=method,
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": USER_AGENT,
                **({} if body is None else {"Content-Type": "application/json; charset=utf-8"}),
            },
        )
        request.add_unredirected_header("Authorization", f"Bearer {self._token}")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status, headers, raw = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            raise self._status_error(error, request_name) from None
        except urllib.error.URLError as error:
            reason = error.reason
            if isinstance(reason, TimeoutError):
                raise Pause(f"{request_name}: no answer within {self.timeout:g} s") from None
            why = reason.strerror if isinstance(reason, OSError) and reason.strerror else str(reason)
            raise Pause(self.redact(f"{request_name}: could not connect to {self._origin}: {why}")) from None
        except TimeoutError:
            raise Pause(f"{request_name}: no answer within {self.timeout:g} s") from None
        except (OSError, http.client.HTTPException) as error:  # reset, closed mid-answer
            raise Pause(f"{request_name}: the connection broke ({type(error).__name__})") from None
        except ValueError:  # a header http.client refuses: its message would quote the token
            raise Refused(0, "a request HTTP cannot carry (the token?)", request_name) from None
        try:
            data = json.loads(raw) if raw.strip() else None
        except (ValueError, RecursionError):
            raise Pause(f"{request_name}: HTTP {status} with an answer that is not JSON") from None
        return Answer(status=status, data=data, next_url=_next_link(headers.get("Link")))

    def pages(self, path: str) -> Iterator[Any]:
        """Every item of a list, page after page, as long as there is a next page."""
        url: str | None = path
        for _ in range(MAX_PAGES):
            if url is None:
                return
            answer = self.call("GET", url)
            if not isinstance(answer.data, list):
                raise Refused(answer.status, "a list was expected, something else came", f"GET {path}")
            yield from answer.data
            url = answer.next_url
        if url is not None:
            raise Refused(0, f"more than {MAX_PAGES} pages: not read to the end", f"GET {path}")

    def _status_error(self, error: urllib.error.HTTPError, request_name: str) -> Refused | Pause:
        status, headers = error.code, error.headers
        said = f"HTTP {status} {error.reason or ''}".rstrip()
        if 300 <= status < 400:
            moved = "a redirect, not followed (the token goes to the API's host only)"
            return Refused(status, moved, request_name, said=said)
        message = self._message(error)
        said_all = f"{said}: {message}" if message else said
        retry_after = _seconds(headers.get("Retry-After"))
        remaining = (headers.get("X-RateLimit-Remaining") or "").strip()
        if status == 429 or (
            status == 403 and (remaining == "0" or retry_after is not None or "rate limit" in message.lower())
        ):
            wait = retry_after
            reset = _seconds(headers.get("X-RateLimit-Reset"))
            if wait is None and remaining == "0" and reset is not None:
                wait = max(reset - time.time(), 0.0) + 1.0  # the reset's second has to be over
            wait = RATE_LIMIT_WAIT if wait is None else wait
            return Pause(f"{request_name}: rate limited ({said_all})", wait=wait, rate_limited=True)
        if status >= 500:
            return Pause(f"{request_name}: {said_all}", wait=retry_after)
        same = message.lower() == str(error.reason or "").lower()  # "Not Found" twice says it once
        return Refused(status, "" if same else message, request_name, said=said)

    def _message(self, error: urllib.error.HTTPError) -> str:
        """GitHub's `message` (or the body's start), on one line, redacted."""
        try:
            raw = error.read()
        except Exception:  # a body cut short: the status says enough
            return ""
        text = raw.decode("utf-8", errors="replace")
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            text = data["message"]
        text = " ".join(self.redact(text).split())
        return text if len(text) <= SNIPPET else text[: SNIPPET - 1] + "…"


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _next_link(link: str | None) -> str | None:
    """The `rel="next"` URL of a Link header, if any."""
    found = _NEXT.search(link or "")
    return found.group(1) if found else None


def _seconds(value: str | None) -> float | None:
    """A header's whole or decimal number (Retry-After in seconds, X-RateLimit-Reset in epoch seconds)."""
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None

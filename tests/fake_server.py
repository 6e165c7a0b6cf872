"""A real OpenAI-compatible HTTP/1.1 server on 127.0.0.1, for tests and benchmarks.

Standard library only. The server runs an asyncio event loop in its own daemon
thread, so a synchronous test (or litellm's own event loop) can talk to it over
real sockets: real HTTP, real keep-alive, real status codes and headers, real
dropped connections. Nothing is ever written to disk and nothing leaves loopback.

Usage in a test::

    server = FakeServer().start()
    server.url                                  # "http://127.0.0.1:PORT/v1"
    server.reply = lambda request: "Paris"      # default answer (str or behaviour)
    server.script(Status(429, retry_after=2), "Paris")  # one per request, then `reply`
    server.latency = 0.05                       # seconds before every answer
    server.requests[0].headers["authorization"] # "Bearer sk-dummy"
    server.count                                # chat-completion requests received
    server.reset()
    server.stop()

Behaviours (what the server does with one chat-completion request):

- ``Reply(text, prompt_tokens=None, completion_tokens=None, finish_reason=None,
  tool_calls=(), refusal=None)``:
  200 with an OpenAI chat-completion body (or SSE chunks if the request has
  ``"stream": true``). Token counts default to whitespace word counts. A plain
  ``str`` anywhere a behaviour is accepted means ``Reply(str)``.
- ``Status(code, body=None, retry_after=None, headers={})``: that HTTP status with
  an OpenAI-style error body (``{"error": {"message", "type", "param", "code"}}``)
  suited to the code unless ``body`` is given (a dict is sent as JSON, str/bytes as
  they are); ``retry_after`` becomes a ``Retry-After`` header.
- ``Hang(seconds, then=None)``: wait that long, then perform ``then`` (any
  behaviour) or, if ``then`` is None, close the connection without answering.
- ``Malformed(body="this is not JSON {")``: 200 with a body that is not a valid
  completion; ``Malformed.without_choices()`` is valid JSON lacking ``choices``.
- ``Drop(reset=False)``: close the connection without answering (``reset=True``
  sends a TCP RST instead of a FIN).

``reply`` and scripted items may also be callables ``request_json -> str | behaviour``.
They run on the server's event-loop thread, so they must be quick (use ``Hang``
or ``latency`` to slow answers down); if one raises, the request gets a 500.

Endpoints: ``POST /v1/chat/completions``, ``POST /v1/embeddings`` (vectors from
``embed``, a callable ``text -> list[float] | Status``; default ``bag_of_words``),
``GET /v1/models``, ``GET /v1/models/{id}``;
anything else is a 404 (405 for a wrong method) with an OpenAI-style error body.

Standalone (for benchmarks): ``python tests/fake_server.py --port 8123 --latency 0.05``
prints its URL on the first line of stdout, then serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
import signal
import socket
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from types import FrameType, TracebackType
from typing import Any, Self, TypeAlias

__all__ = [
    "Behaviour",
    "Drop",
    "FakeServer",
    "Hang",
    "Malformed",
    "RecordedRequest",
    "Reply",
    "ReplyFn",
    "Status",
    "default_reply",
    "main",
]

HOST = "127.0.0.1"
MODELS = ("fake",)
_MAX_HEAD = 64 * 1024


# --------------------------------------------------------------------------- behaviours


@dataclass(frozen=True)
class Reply:
    """Answer 200 with a chat completion whose assistant message is ``text``.

    ``prompt_tokens`` / ``completion_tokens`` default to whitespace word counts of
    the request's messages / of ``text``. ``text=None`` sends ``"content": null``.

    ``tool_calls``: ``(name, arguments)`` pairs sent as the message's ``tool_calls``
    (arguments: a dict is sent as its JSON text, a str as it is, invalid JSON included);
    with tool calls ``finish_reason`` defaults to ``tool_calls``. ``refusal`` is sent as
    the message's ``refusal`` (OpenAI's structured outputs).
    """

    text: str | None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None  # "stop", or "tool_calls" when there are tool calls
    tool_calls: tuple[tuple[str, dict[str, Any] | str], ...] = ()
    refusal: str | None = None

    def message(self, serial: int) -> dict[str, Any]:
        """The assistant message of the completion."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": f"call_fake{serial}_{index}",
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
                    },
                }
                for index, (name, arguments) in enumerate(self.tool_calls)
            ]
        if self.refusal is not None:
            message["refusal"] = self.refusal
        return message

    @property
    def finish(self) -> str:
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"


@dataclass(frozen=True)
class Status:
    """Answer with HTTP status ``code`` and an error body.

    ``body``: a dict is sent as JSON, a str/bytes as it is; None picks an
    OpenAI-style error for the code (401 invalid_api_key, 404 model_not_found,
    429 rate_limit_exceeded, 5xx server_error, ...). ``retry_after`` (seconds)
    becomes a ``Retry-After`` header; ``headers`` are added as they are.
    """

    code: int
    body: dict[str, Any] | str | bytes | None = None
    retry_after: float | str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Hang:
    """Wait ``seconds``, then perform ``then``, or close without answering if None."""

    seconds: float
    then: Behaviour | str | None = None


@dataclass(frozen=True)
class Malformed:
    """Answer 200 with ``body``, which is not a valid chat completion."""

    body: str | bytes = "this is not JSON {"
    content_type: str = "application/json"

    @classmethod
    def without_choices(cls) -> Malformed:
        """A body that is valid JSON but has no ``choices``."""
        return cls(json.dumps({"id": "chatcmpl-fake", "object": "chat.completion", "model": "fake"}))


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering (``reset=True``: abort with a TCP RST)."""

    reset: bool = False


Behaviour: TypeAlias = Reply | Status | Hang | Malformed | Drop
ReplyFn: TypeAlias = Callable[[dict[str, Any]], "str | Behaviour"]
ScriptItem: TypeAlias = "str | Behaviour | ReplyFn"


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the server received it.

    ``headers`` has lowercase names (repeated headers joined with ", ");
    ``json`` is the parsed body, or None if it was empty or not JSON.
    Headers and raw body are left out of ``repr`` so keys do not end up in logs.
    """

    method: str
    path: str
    headers: dict[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    json: Any
    at: float = 0.0  # time.monotonic() at arrival
    in_flight: int = 0  # chat requests being answered at arrival, this one included


# --------------------------------------------------------------------------- helpers


def _content_text(content: Any) -> str:
    """The text of a message's ``content`` (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def _messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    messages = request.get("messages")
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


def default_reply(request: dict[str, Any]) -> str:
    """``"echo: " + the last user message`` (deterministic, useful in assertions)."""
    for message in reversed(_messages(request)):
        if message.get("role") == "user":
            return "echo: " + _content_text(message.get("content"))
    return "echo: "


def bag_of_words(text: str, size: int = 64) -> list[float]:
    """A deterministic stand-in embedding: lowercase words hashed into `size` buckets, so
    texts that share words point the same way and texts that share none are orthogonal."""
    vector = [0.0] * size
    for word in re.findall(r"\w+", text.lower()):
        vector[zlib.crc32(word.encode()) % size] += 1.0
    return vector


def _word_count(text: str | None) -> int:
    return len(text.split()) if text else 0


def _prompt_words(request: dict[str, Any]) -> int:
    return sum(_word_count(_content_text(m.get("content"))) for m in _messages(request))


def _error_body(code: int, request: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI-style error body for ``code``."""
    model = request.get("model", "fake")
    known: dict[int, tuple[str, str, str | None]] = {
        400: ("Invalid request.", "invalid_request_error", None),
        401: ("Incorrect API key provided", "invalid_request_error", "invalid_api_key"),
        403: (
            "You are not allowed to sample from this model",
            "invalid_request_error",
            None,
        ),
        404: (
            f"The model `{model}` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
        ),
        429: ("Rate limit reached for requests", "requests", "rate_limit_exceeded"),
        500: (
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        ),
        503: (
            "The engine is currently overloaded, please try again later",
            "server_error",
            None,
        ),
    }
    if code in known:
        message, kind, err_code = known[code]
    else:
        message, kind, err_code = (
            _phrase(code),
            "server_error" if code >= 500 else "invalid_request_error",
            None,
        )
    return {"error": {"message": message, "type": kind, "param": None, "code": err_code}}


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"


_PIECES = re.compile(r"\S*\s*")


def _stream_pieces(text: str) -> list[str]:
    """``text`` cut into word-sized pieces whose concatenation is ``text``."""
    return [piece for piece in _PIECES.findall(text) if piece] or [""]


# --------------------------------------------------------------------------- server


class _BadRequest(Exception):
    """The bytes on the wire were not a request we can parse; answer 400 and close."""


class FakeServer:
    """An OpenAI-compatible HTTP/1.1 server on 127.0.0.1 in a background thread.

    Attributes tests may set at any time: ``reply`` (the default answer, a
    callable ``request_json -> str | Behaviour``) and ``latency`` (seconds slept
    before every answer). ``script()`` queues behaviours consumed one per
    chat-completion request before falling back to ``reply``.
    """

    def __init__(self, port: int = 0, *, latency: float = 0.0, record: bool = True) -> None:
        """Prepare (not start) a server; ``port=0`` picks a free port.

        ``record=False`` keeps no ``requests`` (for long benchmark runs).
        """
        self.reply: ReplyFn = default_reply
        self.embed: Callable[[str], list[float] | Status] = bag_of_words
        self.embedding_count = 0  # embedding requests received
        self.latency: float = latency
        self.record = record
        self._port = port
        self._lock = threading.Lock()
        self._script: collections.deque[ScriptItem] = collections.deque()
        self._requests: list[RecordedRequest] = []
        self._count = 0
        self._in_flight = 0
        self._serial = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = threading.Event()
        self._start_error: BaseException | None = None

    # ----------------------------------------------------------------------- public API

    @property
    def port(self) -> int:
        """The TCP port listened on (after ``start``)."""
        if self._server is None:
            raise RuntimeError("FakeServer is not started")
        return self._port

    @property
    def running(self) -> bool:
        """Whether the server is started and not stopped."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def url(self) -> str:
        """The OpenAI base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"http://{HOST}:{self.port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received since the last reset, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def count(self) -> int:
        """How many chat-completion requests arrived since the last reset."""
        with self._lock:
            return self._count

    @property
    def in_flight(self) -> int:
        """Chat requests being answered now (hung ones from earlier tests included)."""
        with self._lock:
            return self._in_flight

    @property
    def pending(self) -> int:
        """How many scripted behaviours are still queued."""
        with self._lock:
            return len(self._script)

    def script(self, *behaviours: ScriptItem) -> None:
        """Queue behaviours, one per chat-completion request, before ``reply`` applies.

        Each item is a behaviour, a str (``Reply(str)``) or a callable like ``reply``.
        Calls add to the end of the queue.
        """
        for item in behaviours:
            if not isinstance(item, (str, Reply, Status, Hang, Malformed, Drop)) and not callable(item):
                raise TypeError(f"not a behaviour: {item!r}")
        with self._lock:
            self._script.extend(behaviours)

    def reset(self) -> None:
        """Forget script, requests and count; latency back to 0, reply to the default."""
        with self._lock:
            self._script.clear()
            self._requests.clear()
            self._count = 0
            self.embedding_count = 0
        self.latency = 0.0
        self.reply = default_reply
        self.embed = bag_of_words

    def start(self) -> Self:
        """Bind and serve in a daemon thread; return self once it accepts connections."""
        if self._thread is not None:
            raise RuntimeError("FakeServer already started")
        self._started.clear()
        self._start_error = None
        self._thread = threading.Thread(target=self._run, name="fake-openai-server", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            self._thread.join()
            self._thread = None
            raise self._start_error
        return self

    def stop(self) -> None:
        """Close the listener and every connection, then end the thread. Idempotent."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if thread.is_alive():  # also right after start(), before run_forever() began
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = None
        self._server = None

    def __enter__(self) -> Self:
        """Start the server for a ``with`` block."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server at the end of a ``with`` block."""
        self.stop()

    # ----------------------------------------------------------------------- loop thread

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._connection, HOST, self._port, limit=_MAX_HEAD, backlog=1024)
            )
            self._port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
            self._start_error = exc
            self._started.set()
            loop.close()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                try:
                    request = await self._read_request(reader, writer)
                except _BadRequest as exc:
                    body = _error_body(400, {})
                    body["error"]["message"] = f"Bad request: {exc}"
                    await self._send_json(writer, 400, body, keep_alive=False)
                    break
                if request is None or not await self._answer(request, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except asyncio.CancelledError:
            pass  # stop(): end quietly (asyncio logs a connection task that ends cancelled)
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[str, str, str, dict[str, str], bytes] | None:
        """Read one request; None when the client closed the connection between requests."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise _BadRequest("incomplete request head") from None
            return None
        except asyncio.LimitOverrunError:
            raise _BadRequest("request head too large") from None
        lines = head[:-4].decode("latin-1").lstrip("\r\n").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            raise _BadRequest(f"bad request line {lines[0]!r}") from None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise _BadRequest(f"bad header line {line!r}")
            name, value = name.strip().lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._read_chunked(reader)
        else:
            try:
                length = int(headers.get("content-length") or 0)
            except ValueError:
                raise _BadRequest("bad Content-Length") from None
            body = await reader.readexactly(length) if length > 0 else b""
        return method.upper(), target, version.strip().upper(), headers, body

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest("bad chunk size") from None
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)

    async def _answer(
        self,
        request: tuple[str, str, str, dict[str, str], bytes],
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Answer one request; return whether the connection stays open."""
        method, target, version, headers, body = request
        connection = headers.get("connection", "").lower()
        keep_alive = "keep-alive" in connection if version == "HTTP/1.0" else "close" not in connection
        path = target.split("?", 1)[0]
        payload: Any = None
        if body:
            try:
                payload = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                payload = None
        is_chat = path == "/v1/chat/completions" and method == "POST"
        with self._lock:
            self._serial += 1
            serial = self._serial
            if is_chat:
                self._count += 1
                self._in_flight += 1
            if self.record:
                self._requests.append(
                    RecordedRequest(method, path, headers, body, payload, time.monotonic(), self._in_flight)
                )
        try:
            return await self._respond(method, path, payload, serial, writer, keep_alive, is_chat)
        finally:
            if is_chat:
                with self._lock:
                    self._in_flight -= 1

    async def _respond(
        self,
        method: str,
        path: str,
        payload: Any,
        serial: int,
        writer: asyncio.StreamWriter,
        keep_alive: bool,
        is_chat: bool,
    ) -> bool:
        latency = self.latency
        if latency > 0:
            await asyncio.sleep(latency)

        if is_chat:
            if not isinstance(payload, dict):
                err = _error_body(400, {})
                err["error"]["message"] = "We could not parse the JSON body of your request."
                return await self._send_json(writer, 400, err, keep_alive)
            return await self._perform(self._next_behaviour(payload), payload, serial, writer, keep_alive)
        if path == "/v1/embeddings" and method == "POST":
            return await self._send_embeddings(payload, writer, keep_alive)
        if path == "/v1/models" and method == "GET":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "prompttest"} for m in MODELS]
            return await self._send_json(writer, 200, {"object": "list", "data": data}, keep_alive)
        if path.startswith("/v1/models/") and method == "GET":
            model = path[len("/v1/models/") :]
            if model in MODELS:
                return await self._send_json(
                    writer,
                    200,
                    {
                        "id": model,
                        "object": "model",
                        "created": 0,
                        "owned_by": "prompttest",
                    },
                    keep_alive,
                )
            return await self._send_json(writer, 404, _error_body(404, {"model": model}), keep_alive)
        if path in ("/v1/chat/completions", "/v1/models"):
            err = _error_body(405, {})
            err["error"]["message"] = f"Method {method} not allowed on {path}"
            return await self._send_json(writer, 405, err, keep_alive)
        err = _error_body(404, {})
        err["error"].update(message=f"Unknown request URL: {method} {path}", code="unknown_url")
        return await self._send_json(writer, 404, err, keep_alive)

    async def _send_embeddings(self, payload: Any, writer: asyncio.StreamWriter, keep_alive: bool) -> bool:
        """`POST /v1/embeddings`: one vector per input text, from ``embed``."""
        texts = payload.get("input") if isinstance(payload, dict) else None
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return await self._send_json(writer, 400, _error_body(400, {}), keep_alive)
        with self._lock:
            self.embedding_count += 1
        answers = [self.embed(text) for text in texts]
        failure = next((a for a in answers if isinstance(a, Status)), None)
        if failure is not None:
            body = failure.body if isinstance(failure.body, dict) else _error_body(failure.code, payload)
            return await self._send_json(writer, failure.code, body, keep_alive)
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(answers)]
        tokens = sum(_word_count(t) for t in texts)
        body = {
            "object": "list",
            "data": data,
            "model": payload.get("model", "fake"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return await self._send_json(writer, 200, body, keep_alive)

    def _next_behaviour(self, payload: dict[str, Any]) -> Behaviour:
        """The scripted item if any, else ``reply``; resolved to a behaviour."""
        with self._lock:
            item: ScriptItem = self._script.popleft() if self._script else self.reply
        return self._resolve(item, payload)

    @staticmethod
    def _resolve(item: ScriptItem | None, payload: dict[str, Any]) -> Behaviour:
        if callable(item) and not isinstance(item, (Reply, Status, Hang, Malformed, Drop)):
            try:
                item = item(payload)
            except Exception as exc:  # noqa: BLE001 - reported to the client as a 500
                return Status(
                    500,
                    {
                        "error": {
                            "message": f"fake_server: reply raised {exc!r}",
                            "type": "server_error",
                        }
                    },
                )
        if isinstance(item, str):
            return Reply(item)
        if isinstance(item, (Reply, Status, Hang, Malformed, Drop)):
            return item
        message = f"fake_server: reply returned {item!r}, not a str or behaviour"
        return Status(500, {"error": {"message": message, "type": "server_error"}})

    async def _perform(
        self,
        behaviour: Behaviour,
        payload: dict[str, Any],
        serial: int,
        writer: asyncio.StreamWriter,
        keep_alive: bool,
    ) -> bool:
        """Carry out one behaviour for a chat request; return whether to keep the connection."""
        while isinstance(behaviour, Hang):
            await asyncio.sleep(behaviour.seconds)
            if behaviour.then is None:
                return False
            behaviour = self._resolve(behaviour.then, payload)
        if isinstance(behaviour, Drop):
            if behaviour.reset:
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
            return False
        extra = [("x-request-id", f"req_fake_{serial}")]
        if isinstance(behaviour, Status):
            if behaviour.retry_after is not None:
                retry_after = behaviour.retry_after
                if isinstance(retry_after, float) and retry_after.is_integer():
                    retry_after = int(retry_after)
                extra.append(("retry-after", str(retry_after)))
            extra.extend(behaviour.headers.items())
            body = behaviour.body if behaviour.body is not None else _error_body(behaviour.code, payload)
            if isinstance(body, dict):
                return await self._send_json(writer, behaviour.code, body, keep_alive, extra)
            raw = body.encode() if isinstance(body, str) else body
            return await self._send(writer, behaviour.code, raw, "application/json", keep_alive, extra)
        stream = payload.get("stream") is True
        if isinstance(behaviour, Malformed):
            raw = behaviour.body.encode() if isinstance(behaviour.body, str) else behaviour.body
            if stream:
                raw = b"data: " + raw + b"\n\ndata: [DONE]\n\n"
                return await self._send(writer, 200, raw, "text/event-stream", keep_alive, extra)
            return await self._send(writer, 200, raw, behaviour.content_type, keep_alive, extra)
        prompt_tokens = (
            behaviour.prompt_tokens if behaviour.prompt_tokens is not None else _prompt_words(payload)
        )
        completion_tokens = (
            behaviour.completion_tokens
            if behaviour.completion_tokens is not None
            else _word_count(behaviour.text)
        )
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        model = payload.get("model", "fake")
        ident = f"chatcmpl-fake{serial}"
        created = int(time.time())
        if stream:
            return await self._stream(
                writer,
                behaviour,
                payload,
                ident,
                created,
                model,
                usage,
                keep_alive,
                extra,
            )
        completion = {
            "id": ident,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": behaviour.message(serial),
                    "logprobs": None,
                    "finish_reason": behaviour.finish,
                }
            ],
            "usage": usage,
        }
        return await self._send_json(writer, 200, completion, keep_alive, extra)

    async def _stream(
        self,
        writer: asyncio.StreamWriter,
        reply: Reply,
        payload: dict[str, Any],
        ident: str,
        created: int,
        model: Any,
        usage: dict[str, int],
        keep_alive: bool,
        extra: list[tuple[str, str]],
    ) -> bool:
        """Send ``reply`` as server-sent events in HTTP chunks, ending with ``[DONE]``."""

        def chunk(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
            choice = {
                "index": 0,
                "delta": delta,
                "logprobs": None,
                "finish_reason": finish_reason,
            }
            return {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [choice],
            }

        events: list[dict[str, Any]] = [chunk({"role": "assistant", "content": ""}, None)]
        if reply.text is not None:
            events.extend(chunk({"content": piece}, None) for piece in _stream_pieces(reply.text))
        events.append(chunk({}, reply.finish))
        options = payload.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            last = chunk({}, None)
            last["choices"] = []
            last["usage"] = usage
            events.append(last)
        head = self._head(
            200,
            [
                ("content-type", "text/event-stream"),
                ("cache-control", "no-cache"),
                ("transfer-encoding", "chunked"),
            ],
            keep_alive,
            extra,
        )
        writer.write(head)
        for event in events:
            data = b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"
            writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        done = b"data: [DONE]\n\n"
        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done))
        await writer.drain()
        return keep_alive

    @staticmethod
    def _head(
        code: int,
        headers: list[tuple[str, str]],
        keep_alive: bool,
        extra: list[tuple[str, str]],
    ) -> bytes:
        lines = [f"HTTP/1.1 {code} {_phrase(code)}", "server: prompttest-fake"]
        lines.extend(f"{name}: {value}" for name, value in headers)
        lines.extend(f"{name}: {value}" for name, value in extra)
        lines.append("connection: keep-alive" if keep_alive else "connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        code: int,
        body: bytes,
        content_type: str,
        keep_alive: bool,
        extra: list[tuple[str, str]] | None = None,
    ) -> bool:
        head = self._head(
            code,
            [("content-type", content_type), ("content-length", str(len(body)))],
            keep_alive,
            extra or [],
        )
        writer.write(head + body)
        await writer.drain()
        return keep_alive

    async def _send_json(
        self,
        writer: asyncio.StreamWriter,
        code: int,
        body: Any,
        keep_alive: bool,
        extra: list[tuple[str, str]] | None = None,
    ) -> bool:
        return await self._send(
            writer,
            code,
            json.dumps(body).encode(),
            "application/json",
            keep_alive,
            extra,
        )


# --------------------------------------------------------------------------- standalone


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT/SIGTERM; print the base URL on stdout first."""
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible server on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: any free port)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--record", action="store_true", help="keep every request in memory")
    args = parser.parse_args(argv)
    server = FakeServer(args.port, latency=args.latency, record=args.record)
    try:
        server.start()
    except OSError as exc:
        print(f"fake_server: cannot listen on {HOST}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(server.url, flush=True)
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not done.wait(0.5):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

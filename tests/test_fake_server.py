"""The fake OpenAI server behaves like a real one, over real HTTP.

Most tests speak HTTP with the standard library (``urllib.request``,
``http.client``); the last ones go through ``litellm.acompletion`` to pin down
what the provider layer will see (exception classes, status codes, headers).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fake_server import (
    Drop,
    FakeServer,
    Hang,
    Malformed,
    Reply,
    Status,
    default_reply,
)

USER = [{"role": "user", "content": "What is the capital of France?"}]


# --------------------------------------------------------------------------- helpers


class Answer:
    """One HTTP answer as the client saw it."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        """Keep status, lowercase headers and raw body."""
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def call(
    server: FakeServer,
    payload: Any = None,
    *,
    path: str = "/chat/completions",
    method: str = "POST",
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
    raw: bytes | None = None,
) -> Answer:
    """Send one request with urllib (a fresh connection); errors become Answers too."""
    data = raw if raw is not None else (None if payload is None else json.dumps(payload).encode())
    sent = {"Content-Type": "application/json", "Authorization": "Bearer sk-test"}
    sent.update(headers or {})
    request = urllib.request.Request(server.url + path, data=data, headers=sent, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                response.read(),
            )
    except urllib.error.HTTPError as err:
        return Answer(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())


def chat(server: FakeServer, **extra: Any) -> Answer:
    """POST a chat completion for model "fake" with the standard user message."""
    return call(server, {"model": "fake", "messages": USER, **extra})


def sse_events(body: bytes) -> list[str]:
    """The ``data:`` payloads of a server-sent-events body, in order."""
    return [line[len("data: ") :] for line in body.decode().split("\n\n") if line.startswith("data: ")]


# --------------------------------------------------------------------------- replies


def test_default_reply_is_an_openai_chat_completion(fake_server: FakeServer) -> None:
    answer = call(
        fake_server,
        {
            "model": "gpt-test",
            "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": "first answer"},
                {"role": "user", "content": "What is the capital of France?"},
            ],
        },
    )
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == "gpt-test"
    choice = body["choices"][0]
    assert choice["message"] == {
        "role": "assistant",
        "content": "echo: What is the capital of France?",
    }
    assert choice["finish_reason"] == "stop"
    # whitespace word counts: 2 + 2 + 2 + 6 words in, 7 words out
    assert body["usage"] == {
        "prompt_tokens": 12,
        "completion_tokens": 7,
        "total_tokens": 19,
    }


def test_default_reply_reads_content_parts() -> None:
    content = [
        {"type": "text", "text": "hello"},
        {"type": "image_url", "image_url": {"url": "x"}},
    ]
    assert default_reply({"messages": [{"role": "user", "content": content}]}) == "echo: hello"
    assert default_reply({"messages": []}) == "echo: "


def test_reply_can_be_replaced(fake_server: FakeServer) -> None:
    fake_server.reply = lambda request: "Paris"
    assert chat(fake_server).json()["choices"][0]["message"]["content"] == "Paris"


def test_reply_sees_the_request_and_may_return_a_behaviour(
    fake_server: FakeServer,
) -> None:
    fake_server.reply = lambda request: Status(404) if request["model"] == "nope" else request["model"]
    assert call(fake_server, {"model": "nope", "messages": USER}).status == 404
    assert (
        call(fake_server, {"model": "yes", "messages": USER}).json()["choices"][0]["message"]["content"]
        == "yes"
    )


def test_reply_with_explicit_token_counts_and_finish_reason(
    fake_server: FakeServer,
) -> None:
    fake_server.script(Reply("cut", prompt_tokens=100, completion_tokens=7, finish_reason="length"))
    body = chat(fake_server).json()
    assert body["usage"] == {
        "prompt_tokens": 100,
        "completion_tokens": 7,
        "total_tokens": 107,
    }
    assert body["choices"][0]["finish_reason"] == "length"


def test_reply_with_null_content(fake_server: FakeServer) -> None:
    fake_server.script(Reply(None))
    body = chat(fake_server).json()
    assert body["choices"][0]["message"]["content"] is None
    assert body["usage"]["completion_tokens"] == 0


def test_script_is_consumed_in_order_then_reply_applies(
    fake_server: FakeServer,
) -> None:
    fake_server.reply = lambda request: "fallback"
    fake_server.script("one", Status(500))
    fake_server.script(lambda request: "three")
    assert fake_server.pending == 3
    assert chat(fake_server).json()["choices"][0]["message"]["content"] == "one"
    assert chat(fake_server).status == 500
    assert chat(fake_server).json()["choices"][0]["message"]["content"] == "three"
    assert chat(fake_server).json()["choices"][0]["message"]["content"] == "fallback"
    assert fake_server.pending == 0
    assert fake_server.count == 4


def test_script_rejects_what_is_not_a_behaviour(fake_server: FakeServer) -> None:
    with pytest.raises(TypeError):
        fake_server.script(42)  # type: ignore[arg-type]


def test_a_reply_that_raises_becomes_a_500(fake_server: FakeServer) -> None:
    def broken(request: dict[str, Any]) -> str:
        raise KeyError("oops")

    fake_server.reply = broken
    answer = chat(fake_server)
    assert answer.status == 500
    assert "oops" in answer.json()["error"]["message"]


# --------------------------------------------------------------------------- errors


def test_429_with_retry_after(fake_server: FakeServer) -> None:
    fake_server.script(Status(429, retry_after=2))
    answer = chat(fake_server)
    assert answer.status == 429
    assert answer.headers["retry-after"] == "2"
    assert answer.json()["error"]["code"] == "rate_limit_exceeded"


def test_401_is_openai_invalid_api_key(fake_server: FakeServer) -> None:
    fake_server.script(Status(401))
    answer = chat(fake_server)
    assert answer.status == 401
    assert answer.json() == {
        "error": {
            "message": "Incorrect API key provided",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }


def test_404_names_the_missing_model(fake_server: FakeServer) -> None:
    fake_server.script(Status(404))
    answer = call(fake_server, {"model": "gpt-nope", "messages": USER})
    assert answer.status == 404
    error = answer.json()["error"]
    assert error["code"] == "model_not_found"
    assert "gpt-nope" in error["message"]


@pytest.mark.parametrize("code", [500, 502, 503, 418])
def test_other_statuses_have_an_error_body(fake_server: FakeServer, code: int) -> None:
    fake_server.script(Status(code))
    answer = chat(fake_server)
    assert answer.status == code
    assert answer.json()["error"]["message"]


def test_status_with_custom_body_and_headers(fake_server: FakeServer) -> None:
    fake_server.script(
        Status(503, body="upstream down", headers={"x-custom": "1"}),
        Status(400, body={"error": {"message": "bad"}}),
    )
    first = chat(fake_server)
    assert (first.status, first.body, first.headers["x-custom"]) == (
        503,
        b"upstream down",
        "1",
    )
    assert chat(fake_server).json() == {"error": {"message": "bad"}}


def test_malformed_bodies(fake_server: FakeServer) -> None:
    fake_server.script(Malformed(), Malformed.without_choices())
    first = chat(fake_server)
    assert first.status == 200
    with pytest.raises(ValueError):
        first.json()
    second = chat(fake_server)
    assert second.status == 200
    assert "choices" not in second.json()


@pytest.mark.parametrize("reset", [False, True])
def test_drop_closes_without_answering(fake_server: FakeServer, reset: bool) -> None:
    fake_server.script(Drop(reset=reset))
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError, urllib.error.URLError)):
        chat(fake_server)
    assert fake_server.count == 1
    assert chat(fake_server).status == 200  # the server itself is fine


def test_hang_outlasts_a_client_timeout(fake_server: FakeServer) -> None:
    fake_server.script(Hang(2))
    start = time.monotonic()
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        call(fake_server, {"model": "fake", "messages": USER}, timeout=0.3)
    assert time.monotonic() - start < 1.5
    assert chat(fake_server).status == 200  # other connections are served meanwhile


def test_hang_then_answers(fake_server: FakeServer) -> None:
    fake_server.script(Hang(0.2, then="late"), Hang(0.05, then=Hang(0.05, then=Status(500))))
    start = time.monotonic()
    assert chat(fake_server).json()["choices"][0]["message"]["content"] == "late"
    assert time.monotonic() - start >= 0.2
    assert chat(fake_server).status == 500


def test_hang_without_then_closes(fake_server: FakeServer) -> None:
    fake_server.script(Hang(0.05))
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError, urllib.error.URLError)):
        chat(fake_server)


def test_latency_delays_every_answer(fake_server: FakeServer) -> None:
    fake_server.latency = 0.2
    start = time.monotonic()
    assert chat(fake_server).status == 200
    assert time.monotonic() - start >= 0.2


# --------------------------------------------------------------------------- HTTP


def test_requests_are_recorded_with_lowercase_headers(fake_server: FakeServer) -> None:
    chat(fake_server, temperature=0)
    call(fake_server, path="/models", method="GET")
    first, second = fake_server.requests
    assert (first.method, first.path) == ("POST", "/v1/chat/completions")
    assert first.headers["authorization"] == "Bearer sk-test"
    assert first.headers["content-type"] == "application/json"
    assert first.json == {"model": "fake", "messages": USER, "temperature": 0}
    assert json.loads(first.body) == first.json
    assert (second.method, second.path, second.json) == ("GET", "/v1/models", None)
    assert fake_server.count == 1  # only chat completions are counted
    assert "sk-test" not in repr(first)


def test_models_endpoints(fake_server: FakeServer) -> None:
    listing = call(fake_server, path="/models", method="GET")
    assert listing.status == 200
    assert listing.json()["object"] == "list"
    assert [m["id"] for m in listing.json()["data"]] == ["fake"]
    assert call(fake_server, path="/models/fake", method="GET").json()["id"] == "fake"
    assert call(fake_server, path="/models/other", method="GET").status == 404


def test_unknown_paths_and_methods(fake_server: FakeServer) -> None:
    missing = call(fake_server, {"x": 1}, path="/completions")
    assert missing.status == 404
    assert missing.headers["content-type"] == "application/json"
    assert missing.json()["error"]["code"] == "unknown_url"
    assert call(fake_server, path="/chat/completions", method="GET").status == 405
    assert fake_server.count == 0


def test_a_body_that_is_not_json_is_a_400(fake_server: FakeServer) -> None:
    answer = call(fake_server, raw=b"{not json")
    assert answer.status == 400
    assert "parse" in answer.json()["error"]["message"]


def test_keep_alive_serves_many_requests_on_one_connection(
    fake_server: FakeServer,
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", fake_server.port, timeout=5)
    body = json.dumps({"model": "fake", "messages": USER})
    connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    first = connection.getresponse()
    assert first.getheader("connection") == "keep-alive"
    first.read()
    sock = connection.sock
    fake_server.script(Status(500))
    for expected in (500, 200, 200):
        connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        assert response.status == expected
    assert connection.sock is sock  # same socket all along
    connection.request("GET", "/v1/models", headers={"Connection": "close"})
    last = connection.getresponse()
    assert last.getheader("connection") == "close"
    last.read()
    connection.close()


def test_chunked_request_body(fake_server: FakeServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", fake_server.port, timeout=5)
    parts = [
        b'{"model": "fake", ',
        b'"messages": [{"role": "user", "content": "chunky"}]}',
    ]
    connection.request(
        "POST",
        "/v1/chat/completions",
        iter(parts),
        {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        encode_chunked=True,
    )
    response = connection.getresponse()
    assert json.loads(response.read())["choices"][0]["message"]["content"] == "echo: chunky"
    connection.close()


def test_streaming_answers_with_sse_chunks(fake_server: FakeServer) -> None:
    fake_server.reply = lambda request: "The capital  is Paris."
    answer = chat(fake_server, stream=True, stream_options={"include_usage": True})
    assert answer.status == 200
    assert answer.headers["content-type"] == "text/event-stream"
    events = sse_events(answer.body)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "fake" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "The capital  is Paris."
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 4


def test_streaming_without_usage_and_with_errors(fake_server: FakeServer) -> None:
    fake_server.script("hi", Status(429, retry_after=1))
    events = sse_events(chat(fake_server, stream=True).body)
    assert events[-1] == "[DONE]"
    assert all("usage" not in json.loads(event) for event in events[:-1])
    assert chat(fake_server, stream=True).status == 429


def test_concurrent_requests_are_served_in_parallel(fake_server: FakeServer) -> None:
    fake_server.latency = 0.2
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda: statuses.append(chat(fake_server).status)) for _ in range(64)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 64
    assert time.monotonic() - start < 2.0  # 64 x 0.2 s would be 12.8 s if serial
    assert fake_server.count == 64


def test_reset_forgets_everything(fake_server: FakeServer) -> None:
    fake_server.reply = lambda request: "x"
    fake_server.latency = 0.01
    fake_server.script("a", "b")
    chat(fake_server)
    fake_server.reset()
    assert (fake_server.count, fake_server.requests, fake_server.pending) == (0, [], 0)
    assert fake_server.latency == 0
    assert fake_server.reply is default_reply


def test_own_server_start_stop() -> None:
    with FakeServer(latency=0.01) as server:
        assert server.running
        assert server.url == f"http://127.0.0.1:{server.port}/v1"
        server.script(Hang(30))  # a pending hang must not block stop()

        def hanging_call() -> None:
            with contextlib.suppress(OSError, http.client.HTTPException):
                call(server, {"model": "f"}, timeout=10)

        threading.Thread(target=hanging_call, daemon=True).start()
        time.sleep(0.1)
        port = server.port
        start = time.monotonic()
    assert time.monotonic() - start < 2
    assert not server.running
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", port), timeout=1),
    ):
        pass


def test_standalone_prints_url_and_serves_until_terminated() -> None:
    script = Path(__file__).with_name("fake_server.py")
    process = subprocess.Popen(
        [sys.executable, str(script), "--port", "0", "--latency", "0.05"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        request = urllib.request.Request(
            url + "/chat/completions",
            data=json.dumps({"model": "fake", "messages": USER}).encode(),
            headers={"Content-Type": "application/json"},
        )
        start = time.monotonic()
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.loads(response.read())["choices"][0]["message"]["content"].startswith("echo: ")
        assert time.monotonic() - start >= 0.05
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


# --------------------------------------------------------------------------- through litellm


@pytest.fixture(scope="module")
def litellm() -> ModuleType:
    """litellm, imported offline (local cost map) and quiet."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    import litellm

    litellm.suppress_debug_info = True
    return litellm


def complete(litellm: ModuleType, server: FakeServer, **extra: Any) -> Any:
    """One ``litellm.acompletion`` against the fake server, without retries."""
    kwargs: dict[str, Any] = {
        "model": "openai/fake",
        "messages": USER,
        "api_base": server.url,
        "api_key": "sk-dummy",
        "num_retries": 0,
    }
    kwargs.update(extra)
    return asyncio.run(litellm.acompletion(**kwargs))


def test_litellm_completion(litellm: ModuleType, fake_server: FakeServer) -> None:
    fake_server.reply = lambda request: "Paris"
    response = complete(litellm, fake_server, temperature=0)
    assert response.choices[0].message.content == "Paris"
    assert response.usage.prompt_tokens == 6
    assert response.usage.completion_tokens == 1
    (request,) = fake_server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-dummy"
    assert request.json["model"] == "fake"
    assert request.json["messages"] == USER
    assert request.json["temperature"] == 0


def test_litellm_streaming(litellm: ModuleType, fake_server: FakeServer) -> None:
    fake_server.reply = lambda request: "The capital is Paris."

    async def collect() -> str:
        stream = await litellm.acompletion(
            model="openai/fake",
            messages=USER,
            api_base=fake_server.url,
            api_key="sk-dummy",
            num_retries=0,
            stream=True,
        )
        return "".join([chunk.choices[0].delta.content or "" async for chunk in stream])

    assert asyncio.run(collect()) == "The capital is Paris."
    assert fake_server.requests[0].json["stream"] is True


def test_litellm_rate_limit_exposes_retry_after(litellm: ModuleType, fake_server: FakeServer) -> None:
    fake_server.script(Status(429, retry_after=2))
    start = time.monotonic()
    with pytest.raises(litellm.RateLimitError) as caught:
        complete(litellm, fake_server)
    assert time.monotonic() - start < 1  # num_retries=0: no sleeping, no retry
    assert caught.value.status_code == 429
    assert caught.value.litellm_response_headers["retry-after"] == "2"
    assert fake_server.count == 1


@pytest.mark.parametrize(
    ("behaviour", "error", "status_code", "text"),
    [
        (Status(401), "AuthenticationError", 401, "Incorrect API key provided"),
        (Status(404), "NotFoundError", 404, "does not exist"),
        (Status(500), "InternalServerError", 500, "Sorry about that"),
        (Malformed(), "InternalServerError", 500, "Expecting value"),
        (Drop(), "InternalServerError", 500, "Connection error"),
    ],
)
def test_litellm_errors(
    litellm: ModuleType,
    fake_server: FakeServer,
    behaviour: Status | Malformed | Drop,
    error: str,
    status_code: int,
    text: str,
) -> None:
    fake_server.script(behaviour)
    with pytest.raises(getattr(litellm, error)) as caught:
        complete(litellm, fake_server)
    assert caught.value.status_code == status_code
    assert text in str(caught.value)
    assert fake_server.count == 1


def test_litellm_timeout(litellm: ModuleType, fake_server: FakeServer) -> None:
    fake_server.script(Hang(5))
    start = time.monotonic()
    with pytest.raises(litellm.Timeout) as caught:
        complete(litellm, fake_server, timeout=0.5)
    assert time.monotonic() - start < 2
    assert caught.value.status_code == 408
    assert fake_server.count == 1

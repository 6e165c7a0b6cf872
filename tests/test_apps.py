"""Application targets, one attempt each: real Python modules written into a project root,
a real HTTP service on 127.0.0.1, real processes.

`answer_app` is called directly; the retries around it are `providers.complete`'s, so what is
checked here is that each failure says whether a retry can help.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from prompttest.calls.apps import answer_app, app_kind, describe, is_loopback_url
from prompttest.calls.providers import ProviderError, RetryPolicy
from prompttest.errors import SuiteError
from prompttest.model import Call, Output, ToolCall
from prompttest.suites.template import render_body

QUICK = RetryPolicy(timeout_s=5.0)
MESSAGES = ({"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why is the sky blue?"})


def make_call(app: dict[str, Any], vars: dict[str, Any] | None = None, **params: Any) -> Call:
    return Call(
        model=describe(app),
        messages=MESSAGES,
        params=params or {"temperature": 0},
        app=app,
        vars=vars if vars is not None else {"question": "Why is the sky blue?"},
    )


def answer(app: dict[str, Any], policy: RetryPolicy = QUICK, **kwargs: Any) -> Output:
    return asyncio.run(answer_app(make_call(app, **kwargs), policy))


def failure(app: dict[str, Any], policy: RetryPolicy = QUICK, **kwargs: Any) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        answer(app, policy, **kwargs)
    return caught.value


# --------------------------------------------------------------------------- kinds


def test_each_kind_is_named_and_described_as_the_target_model_string() -> None:
    python = {"python": "myapp.assistant:answer", "root": "/project"}
    http = {"http": {"url": "http://127.0.0.1:8000/answer"}}
    command = {"exec": {"command": ["python", "app.py", "--mode", "two words"]}}
    assert [app_kind(app) for app in (python, http, command)] == ["python", "http", "exec"]
    assert describe(python) == "python:myapp.assistant:answer"
    assert describe(http) == "http:http://127.0.0.1:8000/answer"
    assert describe(command) == "exec:python app.py --mode 'two words'"
    with pytest.raises(ValueError, match="one of python, http, exec"):
        app_kind({"python": "a:b", "exec": {"command": ["x"]}})


def test_loopback_urls_are_told_from_others() -> None:
    for url in ("http://127.0.0.1:8000/a", "http://localhost/a", "http://[::1]:9/", "http://127.9.9.9/"):
        assert is_loopback_url(url), url
    for url in ("https://api.example.com/a", "http://10.0.0.1/", "http://localhost.example.com/"):
        assert not is_loopback_url(url), url


# --------------------------------------------------------------------------- python


@pytest.fixture
def project_root(tmp_path: Path) -> Iterator[Path]:
    """A project root for app modules; forgotten by the import system afterwards."""
    root = tmp_path / "project"
    root.mkdir()
    yield root
    while str(root) in sys.path:
        sys.path.remove(str(root))
    for name, module in list(sys.modules.items()):
        if getattr(module, "__file__", None) and Path(module.__file__).is_relative_to(root):
            del sys.modules[name]


def write_app(root: Path, source: str, module: str = "myapp/assistant.py") -> dict[str, Any]:
    """`myapp/assistant.py` in the root; the app spec that calls its `answer`."""
    path = root / module
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.parent / "__init__.py").touch()
    path.write_text(textwrap.dedent(source))
    reference = module.removesuffix(".py").replace("/", ".") + ":answer"
    return {"python": reference, "root": str(root)}


def test_a_python_function_returning_a_string_gets_vars_messages_and_params(project_root: Path) -> None:
    app = write_app(
        project_root,
        """
        import json

        def answer(request):
            return json.dumps(request, sort_keys=True)
        """,
    )
    output = answer(app, vars={"question": "Why?", "n": 2}, temperature=0.2)
    assert json.loads(output.text) == {
        "vars": {"question": "Why?", "n": 2},
        "messages": [dict(m) for m in MESSAGES],
        "params": {"temperature": 0.2},
    }
    assert output.tool_calls == () and output.metadata is None and output.cost_usd is None
    assert output.latency_ms is not None and output.latency_ms >= 0


def test_a_mapping_gives_tool_calls_metadata_tokens_and_cost(project_root: Path) -> None:
    app = write_app(
        project_root,
        """
        def answer(request):
            return {
                "text": "It is Rayleigh scattering.",
                "tool_calls": [
                    {"name": "search", "arguments": {"query": request["vars"]["question"], "k": 2}},
                    {"name": "cite", "arguments": '{"doc": "physics.txt"}'},
                    {"type": "function", "function": {"name": "log", "arguments": "not json"}},
                ],
                "metadata": {"sources": ("physics.txt", "sky.txt"), "score": 0.9},
                "tokens": {"prompt": 120, "completion": 8},
                "cost_usd": 0.0004,
            }
        """,
    )
    output = answer(app)
    assert output.text == "It is Rayleigh scattering."
    assert output.tool_calls == (
        ToolCall("search", {"query": "Why is the sky blue?", "k": 2}),
        ToolCall("cite", {"doc": "physics.txt"}),
        ToolCall("log", "not json", valid_json=False),
    )
    # As JSON reads it back: the cache must give the same metadata as the fresh answer.
    assert output.metadata == {"sources": ["physics.txt", "sky.txt"], "score": 0.9}
    assert (output.prompt_tokens, output.completion_tokens, output.cost_usd) == (120, 8, 0.0004)
    assert Output.from_dict(json.loads(json.dumps(output.to_dict()))).metadata == output.metadata


def test_an_object_with_attributes_is_read_like_a_mapping(project_root: Path) -> None:
    app = write_app(
        project_root,
        """
        from dataclasses import dataclass, field

        @dataclass
        class Answer:
            text: str
            metadata: dict = field(default_factory=dict)
            tokens: int = 0

        def answer(request):
            return Answer("Blue light scatters most.", {"retrieved": 3}, tokens=5)
        """,
    )
    output = answer(app)
    assert (output.text, output.metadata) == ("Blue light scatters most.", {"retrieved": 3})
    assert (output.prompt_tokens, output.completion_tokens) == (None, 5)


def test_tool_calls_alone_are_an_answer(project_root: Path) -> None:
    app = write_app(project_root, 'def answer(request):\n    return {"tool_calls": [{"name": "lookup"}]}\n')
    output = answer(app)
    assert output.text == "" and output.tool_calls == (ToolCall("lookup", {}),)


def test_an_async_function_is_awaited_on_the_loop_and_a_sync_one_runs_in_a_thread(project_root: Path) -> None:
    app = write_app(
        project_root,
        """
        import asyncio
        import threading

        async def answer(request):
            await asyncio.sleep(0.01)
            return f"async in {threading.current_thread().name}"

        def answer_sync(request):
            return f"sync in {threading.current_thread().name}"
        """,
    )
    assert answer(app).text == f"async in {threading.current_thread().name}"
    sync = answer({**app, "python": "myapp.assistant:answer_sync"}).text
    assert sync.startswith("sync in ") and sync != f"sync in {threading.current_thread().name}"


def test_the_app_gets_a_copy_of_the_call_it_may_edit(project_root: Path) -> None:
    app = write_app(
        project_root,
        """
        def answer(request):
            request["vars"]["question"] = "edited"
            request["messages"][0]["content"] = "edited"
            return "ok"
        """,
    )
    call = make_call(app)
    key = call.cache_key()
    asyncio.run(answer_app(call, QUICK))
    assert call.vars == {"question": "Why is the sky blue?"} and call.messages == MESSAGES
    assert Call(**vars_of(call)).cache_key() == key  # what the key is made of is unchanged


def vars_of(call: Call) -> dict[str, Any]:
    """The call's fields, to build an equal one (whose key is computed afresh)."""
    return {
        "model": call.model,
        "messages": call.messages,
        "params": call.params,
        "app": call.app,
        "vars": call.vars,
    }


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("return 42", "returned int, expected a string or a mapping with text"),
        ("return None", "returned None, expected a string or a mapping with text"),
        ("return {'answer': 'x'}", "returned dict without text, expected a string or a mapping with text"),
        ("return {'text': 3}", "returned dict whose text is int, expected a string"),
        ("return {'text': 'x', 'tool_calls': 'search'}", "returned dict whose tool_calls is str"),
        ("return {'text': 'x', 'metadata': object()}", "returned dict whose metadata is not JSON"),
        ("return {'text': 'x', 'tokens': 'many'}", "returned dict whose tokens is 'many'"),
    ],
)
def test_a_wrong_return_value_is_a_final_error_naming_what_came_back(
    project_root: Path, body: str, said: str
) -> None:
    app = write_app(project_root, f"def answer(request):\n    {body}\n")
    error = failure(app)
    assert error.message.startswith(said), error.message
    assert not error.retryable and not error.fatal_for_target


def test_an_exception_is_a_final_error_with_the_apps_file_and_line(project_root: Path) -> None:
    app = write_app(
        project_root,
        """
        import json

        def parse(text):
            return json.loads(text)

        def answer(request):
            if request["vars"]["question"] == "boom":
                raise KeyError("no documents for 'boom'")
            return parse("{not json")
        """,
    )
    error = failure(app, vars={"question": "boom"})
    assert error.message == "KeyError: \"no documents for 'boom'\" (at myapp/assistant.py:9)"
    assert not error.retryable
    # Raised inside the json library: the line shown is the app's own that called it.
    error = failure(app)
    assert error.message.startswith("JSONDecodeError: Expecting property name")
    assert error.message.endswith("(at myapp/assistant.py:5)")


def test_a_timeout_error_the_app_raises_is_its_error_not_a_timeout(project_root: Path) -> None:
    app = write_app(project_root, "def answer(request):\n    raise TimeoutError('the vector store')\n")
    error = failure(app)
    assert error.message == "TimeoutError: the vector store (at myapp/assistant.py:2)"
    assert not error.retryable


@pytest.mark.parametrize("asynchronous", [True, False])
def test_a_slow_function_times_out_and_may_be_retried(project_root: Path, asynchronous: bool) -> None:
    if asynchronous:
        source = "import asyncio\n\nasync def answer(request):\n    await asyncio.sleep(5)\n"
    else:
        source = "import time\n\ndef answer(request):\n    time.sleep(30)\n    return 'late'\n"
    app = write_app(project_root, source)
    started = time.perf_counter()
    error = failure(app, RetryPolicy(timeout_s=0.1))
    assert error.message == "timed out after 0.1 s" and error.retryable
    # A thread cannot be stopped; one left running does not hold the event loop's end.
    assert time.perf_counter() - started < 2


def test_a_module_that_cannot_be_imported_is_a_suite_error(project_root: Path) -> None:
    app = write_app(project_root, "import not_installed_anywhere\n")
    with pytest.raises(SuiteError, match="python target 'myapp.assistant:answer': cannot import"):
        answer(app)
    app = write_app(project_root, "def other(request):\n    return ''\n", module="second/mod.py")
    with pytest.raises(SuiteError, match="has no function 'answer'"):
        answer(app)


# --------------------------------------------------------------------------- http


@dataclass
class Reply:
    """What the service answers one request with."""

    status: int = 200
    body: Any = None  # JSON-able, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class Service:
    """A real HTTP service on 127.0.0.1: answers scripted replies in order, then `reply(request)`."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.scripted: list[Reply] = []
        self.reply: Callable[[Seen], Reply] = lambda seen: Reply(body={"text": "ok"})
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                seen = Seen(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    json.loads(raw) if raw else None,
                )
                service.requests.append(seen)
                reply = service.scripted.pop(0) if service.scripted else service.reply(seen)
                time.sleep(reply.delay)
                body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            do_GET = do_POST
            do_PUT = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def script(self, *replies: Reply) -> None:
        self.scripted.extend(replies)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def service() -> Iterator[Service]:
    running = Service()
    yield running
    running.stop()


def test_the_body_is_sent_as_its_job_rendered_it_and_the_output_path_read(service: Service) -> None:
    service.reply = lambda seen: Reply(body={"data": {"answer": f"Because {seen.body['question']}"}})
    vars = {"question": "why?", "k": 3, "filters": {"lang": "en"}, "topic": {"name": "optics"}}
    template = {
        "question": "{{ question }}",
        "top_k": "{{ k }}",
        "filters": "{{ filters }}",
        "note": "about {{ topic.name }}, top {{ k }}",
        "fixed": [1, True, None],
    }
    body = render_body(template, vars, where="case 'c'", file="s.yaml", line=1)
    app = {"http": {"url": f"{service.url}/answer", "body": body, "output": "$.data.answer"}}
    output = answer(app, vars=vars)
    assert output.text == "Because why?"
    seen = service.requests[0]
    assert (seen.method, seen.path) == ("POST", "/answer")
    assert seen.headers["content-type"] == "application/json"
    # A string that is one placeholder takes the value itself; inside text, its text.
    assert seen.body == {
        "question": "why?",
        "top_k": 3,
        "filters": {"lang": "en"},
        "note": "about optics, top 3",
        "fixed": [1, True, None],
    }


def test_a_body_that_names_a_missing_variable_is_a_suite_error_before_any_call() -> None:
    with pytest.raises(SuiteError, match="has no variable 'missing'"):
        render_body({"q": "{{ missing }}"}, {"question": "x"}, where="case 'c'", file="s.yaml", line=3)


def test_without_a_body_the_call_is_sent_and_the_reply_read_whole(service: Service) -> None:
    service.reply = lambda seen: Reply(
        body={
            "text": "Rayleigh.",
            "tool_calls": [{"name": "search", "arguments": {"q": "sky"}}],
            "metadata": {"sources": ["sky.txt"]},
            "tokens": {"prompt": 10, "completion": 2},
            "extra": "ignored",
        }
    )
    output = answer({"http": {"url": service.url, "method": "put"}}, temperature=0)
    assert service.requests[0].method == "PUT"
    assert service.requests[0].body == {
        "vars": {"question": "Why is the sky blue?"},
        "messages": [dict(m) for m in MESSAGES],
        "params": {"temperature": 0},
    }
    assert output.text == "Rayleigh." and output.tool_calls == (ToolCall("search", {"q": "sky"}),)
    assert output.metadata == {"sources": ["sky.txt"]}
    assert (output.prompt_tokens, output.completion_tokens) == (10, 2)


def test_a_json_string_body_is_the_text_and_a_non_string_at_the_path_is_its_json(service: Service) -> None:
    service.script(Reply(body="Just text."), Reply(body={"score": {"value": 0.5, "ok": True}}))
    assert answer({"http": {"url": service.url}}).text == "Just text."
    output = answer({"http": {"url": service.url, "output": "$.score"}})
    assert json.loads(output.text) == {"value": 0.5, "ok": True}


SECRET = "tok-9f8e7d6c5b4a"


def test_header_values_are_read_from_the_environment_and_never_shown(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PT_APP_TOKEN", SECRET)
    monkeypatch.setenv("PT_APP_TENANT", "acme-tenant-1")
    app = {
        "http": {
            "url": service.url,
            "headers": {
                "Authorization": "Bearer ${PT_APP_TOKEN}",
                "X-Tenant": "$PT_APP_TENANT",
                "X-Plain": "1",
            },
        }
    }
    # A service that echoes its request headers, in its answer and in its errors.
    service.script(
        Reply(body={"text": f"you sent {SECRET}", "metadata": {"auth": f"Bearer {SECRET}"}}),
        Reply(status=400, body={"error": f"token {SECRET} has no access to acme-tenant-1"}),
    )
    output = answer(app)
    seen = service.requests[0].headers
    assert seen["authorization"] == f"Bearer {SECRET}" and seen["x-tenant"] == "acme-tenant-1"
    assert seen["x-plain"] == "1"
    assert output.text == "you sent [REDACTED:PT_APP_TOKEN]"
    assert output.metadata == {"auth": "Bearer [REDACTED:PT_APP_TOKEN]"}
    error = failure(app)
    assert error.status_code == 400 and not error.retryable
    assert SECRET not in error.message and "acme-tenant-1" not in error.message
    assert "token [REDACTED:PT_APP_TOKEN] has no access to [REDACTED:PT_APP_TENANT]" in error.message
    assert app["http"]["headers"]["Authorization"] == "Bearer ${PT_APP_TOKEN}"  # the spec keeps the name


def test_a_header_value_http_cannot_carry_is_refused_without_showing_it(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PT_APP_TOKEN", f"{SECRET}\r\nX-Injected: yes")
    error = failure({"http": {"url": service.url, "headers": {"X-Key": "${PT_APP_TOKEN}"}}})
    assert "invalid request" in error.message and SECRET not in error.message
    assert error.fatal_for_target and service.requests == []


def test_a_header_naming_an_unset_variable_stops_the_target(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PT_APP_MISSING", raising=False)
    error = failure({"http": {"url": service.url, "headers": {"X-Key": "${PT_APP_MISSING}"}}})
    assert error.message == "the http header X-Key reads ${PT_APP_MISSING}, which is not set"
    assert error.fatal_for_target and not error.retryable and service.requests == []


def test_a_server_error_may_be_retried_and_names_its_status(service: Service) -> None:
    service.script(Reply(status=500, body={"detail": "database is down"}), Reply(status=503, body=b""))
    error = failure({"http": {"url": service.url}})
    assert (error.status_code, error.retryable) == (500, True)
    assert error.message == 'HTTP 500 Internal Server Error: {"detail": "database is down"}'
    error = failure({"http": {"url": service.url}})
    assert (error.status_code, error.retryable, error.message) == (503, True, "HTTP 503 Service Unavailable")


def test_a_429_is_retried_after_the_time_the_service_asks(service: Service) -> None:
    service.script(Reply(status=429, headers={"Retry-After": "7"}), Reply(status=429))
    error = failure({"http": {"url": service.url}})
    assert (error.status_code, error.retryable, error.retry_after) == (429, True, 7.0)
    assert failure({"http": {"url": service.url}}).retry_after is None


def test_a_client_error_is_final(service: Service) -> None:
    service.script(Reply(status=400, body={"error": "question is required"}), Reply(status=404))
    error = failure({"http": {"url": service.url}})
    assert (error.status_code, error.retryable) == (400, False)
    assert "question is required" in error.message and not error.fatal_for_target
    error = failure({"http": {"url": service.url}})
    assert error.status_code == 404 and error.fatal_for_target  # a wrong URL: every call would fail


def test_a_redirect_is_not_followed(service: Service) -> None:
    service.script(Reply(status=302, headers={"Location": "http://example.com/steal"}))
    error = failure({"http": {"url": service.url}})
    assert error.message == "HTTP 302: redirected to http://example.com/steal; redirects are not followed"
    assert not error.retryable and len(service.requests) == 1


def test_a_response_that_is_not_json_or_lacks_the_output_is_malformed(service: Service) -> None:
    service.script(
        Reply(body=b"<html>Bad gateway</html>"),
        Reply(body={"data": {}}),
        Reply(body={"answer": "no text key"}),
        Reply(body={"text": 5}),
    )
    error = failure({"http": {"url": service.url}})
    assert error.message == "malformed response: not JSON (HTTP 200): <html>Bad gateway</html>"
    assert error.retryable and error.status_code is None
    error = failure({"http": {"url": service.url, "output": "$.data.answer"}})
    assert error.message == "malformed response: $.data.answer not found: $.data has no 'answer'"
    assert error.retryable
    assert (
        failure({"http": {"url": service.url}}).message
        == "malformed response: $.text not found: $ has no 'text'"
    )
    error = failure({"http": {"url": service.url}})
    assert (
        error.message == "malformed response: dict whose text is int, expected a string" and error.retryable
    )


def test_a_refused_connection_may_be_retried() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = failure({"http": {"url": f"http://127.0.0.1:{port}/answer"}})
    assert error.message.startswith(f"could not connect to 127.0.0.1:{port}: ")
    assert error.retryable and error.status_code is None


def test_a_slow_service_times_out(service: Service) -> None:
    service.script(Reply(body={"text": "late"}, delay=1.0))
    started = time.perf_counter()
    error = failure({"http": {"url": service.url}}, RetryPolicy(timeout_s=0.2))
    assert error.message == "timed out after 0.2 s" and error.retryable
    assert time.perf_counter() - started < 1.0


# --------------------------------------------------------------------------- exec


def write_script(root: Path, source: str, name: str = "app.py") -> None:
    (root / name).write_text(textwrap.dedent(source))


def exec_app(root: Path, *args: str, input: str | None = None) -> dict[str, Any]:
    """The script run from the project root, by a relative path (the root is its cwd)."""
    spec: dict[str, Any] = {"command": [sys.executable, *args]}
    if input is not None:
        spec["input"] = input
    return {"exec": spec, "root": str(root)}


def test_exec_json_input_round_trip(tmp_path: Path) -> None:
    write_script(
        tmp_path,
        """
        import json, sys
        request = json.load(sys.stdin)
        print(request["vars"]["question"], len(request["messages"]), request["params"])
        print()
        """,
    )
    output = answer(exec_app(tmp_path, "app.py"), temperature=0)
    assert output.text == "Why is the sky blue? 2 {'temperature': 0}\n"  # one trailing newline stripped
    assert output.latency_ms is not None and output.tool_calls == ()


def test_exec_text_input_is_the_last_user_message(tmp_path: Path) -> None:
    write_script(tmp_path, "import sys\nsys.stdout.write(sys.stdin.read().upper() + '\\n')\n")
    assert answer(exec_app(tmp_path, "app.py", input="text")).text == "WHY IS THE SKY BLUE?"


def test_exec_a_json_object_with_text_is_read_as_a_reply(tmp_path: Path) -> None:
    write_script(
        tmp_path,
        """
        import json
        print(json.dumps({"text": "Rayleigh.", "metadata": {"k": 2},
                          "tool_calls": [{"name": "search", "arguments": {"q": "sky"}}]}))
        """,
    )
    output = answer(exec_app(tmp_path, "app.py"))
    assert (output.text, output.metadata) == ("Rayleigh.", {"k": 2})
    assert output.tool_calls == (ToolCall("search", {"q": "sky"}),)
    write_script(
        tmp_path, 'print(\'{"answer": "not a reply"}\')\nprint(\'[1, 2]\', end="")\n', name="other.py"
    )
    assert answer(exec_app(tmp_path, "other.py")).text == '{"answer": "not a reply"}\n[1, 2]'


def test_exec_a_non_zero_exit_names_the_code_and_the_last_line_of_stderr(tmp_path: Path) -> None:
    write_script(
        tmp_path,
        """
        import sys
        print("partial answer")
        print("Traceback (most recent call last):", file=sys.stderr)
        print("ValueError: no documents found", file=sys.stderr)
        print("", file=sys.stderr)
        sys.exit(3)
        """,
    )
    error = failure(exec_app(tmp_path, "app.py"))
    assert error.message == "exit code 3: ValueError: no documents found" and not error.retryable
    write_script(tmp_path, "raise SystemExit(1)\n", name="quiet.py")
    assert failure(exec_app(tmp_path, "quiet.py")).message == "exit code 1: (nothing on stderr)"


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie waiting for its parent to reap it does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state != "Z"


@pytest.mark.skipif(sys.platform == "win32", reason="process groups")
def test_exec_a_timeout_kills_the_process_and_what_it_started(tmp_path: Path) -> None:
    write_script(
        tmp_path,
        """
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        with open("pids", "w") as out:
            out.write(f"{__import__('os').getpid()} {child.pid}")
        time.sleep(60)
        """,
    )
    started = time.perf_counter()
    error = failure(exec_app(tmp_path, "app.py"), RetryPolicy(timeout_s=1.0))
    assert error.message == "timed out after 1 s" and error.retryable
    assert time.perf_counter() - started < 10
    pids = [int(pid) for pid in (tmp_path / "pids").read_text().split()]
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in pids)


def test_exec_a_command_that_does_not_exist_stops_the_target(tmp_path: Path) -> None:
    error = failure({"exec": {"command": ["./no-such-program"]}, "root": str(tmp_path)})
    assert error.message.startswith("cannot run ./no-such-program: ") and error.fatal_for_target

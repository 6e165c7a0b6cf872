"""Application targets end to end: a Python function, an HTTP service and a command, gated
like a model (snapshots, verdicts, errors), cached only by their key files, refused by
--safe, bounded by -j. Real code in the project folder, a real loopback server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import Project

APP = """\
import json, threading, time
from pathlib import Path

COUNT = Path(__file__).with_name("calls.txt")
lock = threading.Lock()
state = {"now": 0, "most": 0}

def answer(request):
    with lock:
        COUNT.write_text(str(int(COUNT.read_text() or 0) + 1) if COUNT.exists() else "1")
    question = request["vars"]["question"]
    if question == "boom":
        raise ValueError("no answer for boom")
    known = ("Paris is the capital of France.", "Lima is in Peru.")
    passages = [p for p in known if p.split()[0] in question]
    return {"text": f"Answer: {question}", "metadata": {"sources": passages}}

def busy(request):
    with lock:
        if not Path(__file__).with_name("most.txt").exists():
            state["most"] = 0  # a new count (the module stays imported between runs)
        state["now"] += 1
        state["most"] = max(state["most"], state["now"])
        Path(__file__).with_name("most.txt").write_text(str(state["most"]))
    time.sleep(0.2)
    with lock:
        state["now"] -= 1
    return "done"
"""

SUITE = """\
    targets:
      - {id: app, python: "assistant:answer"{cache}}
    prompt: "{{ question }}"
    cases:
      - id: paris
        vars: {question: "Paris?"}
        expect:
          - contains: Paris
          - json_path: {path: "$.metadata.sources[0]", equals: "Paris is the capital of France."}
      - id: lima
        vars: {question: "Lima?"}
"""


def calls(project: Project) -> int:
    path = project.root / "calls.txt"
    return int(path.read_text()) if path.exists() else 0


@pytest.fixture
def app(project: Project) -> Project:
    (project.root / "assistant.py").write_text(APP)
    (project.root / "prompts").mkdir()
    (project.root / "prompts" / "system.txt").write_text("Be brief.")
    return project


def test_a_python_target_is_gated_like_a_model(app: Project, capsys: pytest.CaptureFixture[str]) -> None:
    app.suite("app", SUITE.replace("{cache}", ""))
    result = app.run("run", "--json", "r.json", capsys=capsys)
    assert result.code == 0, result.out + result.err
    assert calls(app) == 2
    report = {r["case"]: r for r in json.loads((app.root / "r.json").read_text())["results"]}
    assert report["paris"]["metadata"] == {"sources": ["Paris is the capital of France."]}
    assert all(check["passed"] for check in report["paris"]["checks"])
    snapshot = app.snapshot("app")
    assert (
        "paris@app:\n    model: python:assistant:answer\n" in snapshot
        and "output: 'Answer: Paris?'" in snapshot
    )
    again = app.run("run", capsys=capsys)  # never cached: the app is called again
    assert again.code == 0 and "2 unchanged" in again.out and calls(app) == 4


def test_an_exception_is_the_keys_error_with_its_file_and_line(
    app: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    app.suite("app", SUITE.replace("{cache}", "").replace('"Lima?"', "boom"))
    result = app.run("run", "--json", "r.json", capsys=capsys)
    assert result.code == 3
    lima = next(r for r in json.loads((app.root / "r.json").read_text())["results"] if r["case"] == "lima")
    assert lima["verdict"] == "error"
    assert "ValueError: no answer for boom" in lima["error"] and "assistant.py:13" in lima["error"]


def test_key_files_cache_an_app_until_one_of_them_changes(
    app: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    app.suite("app", SUITE.replace("{cache}", ', cache: {key_files: ["assistant.py", "prompts/*.txt"]}'))
    assert app.run("run", capsys=capsys).code == 0
    assert calls(app) == 2
    (app.root / "notes.md").write_text("not a key file")
    assert "2 cached" in app.run("run", capsys=capsys).out
    assert calls(app) == 2
    offline = app.run("run", "--offline", capsys=capsys)
    assert offline.code == 0 and calls(app) == 2
    (app.root / "prompts" / "system.txt").write_text("Be very brief.")
    app.run("run", capsys=capsys)
    assert calls(app) == 4  # a key file changed: called again


def test_offline_with_an_uncached_app_is_refused_before_any_call(
    app: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    app.suite("app", SUITE.replace("{cache}", ", cache: false"))
    result = app.run("run", "--offline", capsys=capsys)
    assert result.code == 2
    assert "--offline: target 'app' (python:assistant:answer) is never cached" in result.err
    assert "app.yaml:2" in result.err and calls(app) == 0


def test_a_key_files_glob_that_matches_nothing_is_a_suite_error(
    app: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    app.suite("app", SUITE.replace("{cache}", ', cache: {key_files: ["src/**/*.py"]}'))
    result = app.run("run", capsys=capsys)
    assert result.code == 2 and "key_files 'src/**/*.py' matches no file" in result.err


def test_j_bounds_the_calls_in_flight_and_a_target_may_cap_itself(
    app: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = "".join(f"      - {{id: c{i}, vars: {{question: q{i}}}}}\n" for i in range(8))
    head = 'targets: [{id: app, python: "assistant:busy"}]\nprompt: "{{ question }}"\n'
    app.suite("busy", f"{head}cases:\n{rows}")
    assert app.run("run", "-j", "3", capsys=capsys).code == 0
    most = int((app.root / "most.txt").read_text())
    assert 2 <= most <= 3
    capped = head.replace('busy"}', 'busy", concurrency: 1}')
    app.suite("busy", f"{capped}cases:\n{rows}")
    (app.root / "most.txt").unlink()
    assert app.run("run", "-j", "4", "--no-cache", capsys=capsys).code == 0
    assert int((app.root / "most.txt").read_text()) == 1


class _Service(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802  (the stdlib's name)
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        _Service.seen.append({"body": body, "auth": self.headers.get("authorization")})
        reply = json.dumps({"answer": {"text": f"Service says: {body['q']}"}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def service() -> Iterator[str]:
    _Service.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Service)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/answer"
    server.shutdown()
    server.server_close()


def test_an_http_target_fills_its_body_and_keeps_header_secrets_off_disk(
    project: Project, service: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "svc-token-0123456789abcdef"
    monkeypatch.setenv("SERVICE_TOKEN", secret)
    project.suite(
        "svc",
        f"""\
        targets:
          - id: svc
            http:
              url: "{service}"
              headers: {{authorization: "Bearer ${{SERVICE_TOKEN}}"}}
              body: {{q: "{{{{ question }}}}"}}
              output: $.answer.text
        prompt: "{{{{ question }}}}"
        cases:
          - id: one
            vars: {{question: "Hello?"}}
            expect: [{{contains: "Service says: Hello?"}}]
        """,
    )
    result = project.run("run", "--json", "r.json", "--html", "r.html", capsys=capsys)
    assert result.code == 0, result.out + result.err
    assert _Service.seen == [{"body": {"q": "Hello?"}, "auth": f"Bearer {secret}"}]
    for name, data in project.tree(include_state=True).items():
        assert secret.encode() not in data, name
    assert project.run("run", "--safe", "--no-cache", capsys=capsys).code == 0  # loopback: allowed


def test_safe_refuses_code_and_remote_services_naming_each(
    app: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    app.suite(
        "risky",
        """\
        targets:
          - {id: fn, python: "assistant:answer"}
          - {id: cmd, exec: {command: [python, tool.py]}}
          - {id: remote, http: {url: "https://api.example.com/answer"}}
          - {id: near, http: {url: "http://127.0.0.1:9/answer"}}
        prompt: hi
        cases: [{id: one}]
        """,
    )
    result = app.run("run", "--safe", capsys=capsys)
    assert result.code == 2
    assert "risky.yaml:2" in result.err and "target 'fn' is a python: target" in result.err
    assert "risky.yaml:3" in result.err and "target 'cmd' is a exec: target" in result.err
    assert "risky.yaml:4" in result.err and "sends requests to api.example.com" in result.err
    assert "'near'" not in result.err and calls(app) == 0


def test_an_exec_target_runs_a_command_and_a_failure_is_the_keys_error(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    (project.root / "tool.py").write_text(
        "import json, sys\n"
        "request = json.load(sys.stdin)\n"
        "q = request['vars']['question']\n"
        "if q == 'fail':\n"
        "    print('bad input', file=sys.stderr); sys.exit(4)\n"
        "print('Tool says ' + q)\n"
    )
    project.suite(
        "cmd",
        """\
        targets: [{id: cmd, exec: {command: [python, tool.py]}}]
        prompt: "{{ question }}"
        cases:
          - {id: ok, vars: {question: hi}, expect: [{equals: Tool says hi}]}
          - {id: bad, vars: {question: fail}}
        """,
    )
    result = project.run("run", "--json", "r.json", capsys=capsys)
    assert result.code == 3
    keys = {r["case"]: r for r in json.loads((project.root / "r.json").read_text())["results"]}
    assert keys["ok"]["checks"][0]["passed"] is True
    assert (
        "exit" in keys["bad"]["error"] and "4" in keys["bad"]["error"] and "bad input" in keys["bad"]["error"]
    )


def test_a_target_with_neither_model_nor_app_is_a_suite_error(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite("x", "targets: [{id: a}]\nprompt: hi\ncases: [{id: one}]\n")
    result = project.run("validate", capsys=capsys)
    assert result.code == 2 and "a target needs model:, or one of python:, http:, exec:" in result.err
    project.suite("x", 'targets: [{python: "a:b"}]\nprompt: hi\ncases: [{id: one}]\n')
    result = project.run("validate", capsys=capsys)
    assert result.code == 2 and "needs an id:" in result.err


def test_a_run_of_app_targets_only_never_imports_litellm(app: Project, tmp_path: Path) -> None:
    import subprocess
    import sys

    app.suite("app", SUITE.replace("{cache}", ""))
    probe = (
        "import sys, prompttest.cli as c\n"
        "try:\n    c.main(['run'])\n"
        "except SystemExit as e:\n    print(e.code, 'litellm' in sys.modules)\n"
    )
    command = [sys.executable, "-c", probe]
    done = subprocess.run(command, cwd=app.root, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip().splitlines()[-1] == "0 False", done.stdout + done.stderr


def test_an_http_service_that_keeps_failing_is_retried_then_taken_as_down(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    class Down(BaseHTTPRequestHandler):
        hits = 0

        def do_POST(self) -> None:  # noqa: N802  (the stdlib's name)
            Down.hits += 1
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(503)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Down)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/answer"
        rows = "".join(f"  - {{id: c{i}, vars: {{q: q{i}}}}}\n" for i in range(8))
        project.suite(
            "down", f'targets: [{{id: svc, http: {{url: "{url}"}}}}]\nprompt: "{{{{ q }}}}"\ncases:\n{rows}'
        )
        result = project.run("run", "-j", "1", "--retries", "1", "--json", "r.json", capsys=capsys)
    finally:
        server.shutdown()
        server.server_close()
    assert result.code == 3
    errors = [r["error"] for r in json.loads((project.root / "r.json").read_text())["results"]]
    assert all(error and "503" in error for error in errors[:5])
    assert all(error.startswith("not called:") for error in errors[5:])  # the breaker opened
    assert Down.hits == 10  # 5 keys x 2 attempts, then nothing more was sent


def test_a_secret_an_app_echoes_into_its_metadata_reaches_no_file(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-planted-secret-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    (project.root / "leaky.py").write_text(
        "import os\n\ndef answer(request):\n"
        "    return {'text': 'ok', 'metadata': {'env': os.environ['OPENAI_API_KEY']}}\n"
    )
    project.suite("leaky", 'targets: [{id: app, python: "leaky:answer"}]\nprompt: hi\ncases: [{id: one}]\n')
    result = project.run("run", "--json", "r.json", "--html", "r.html", "--markdown", "r.md", capsys=capsys)
    assert result.code == 0, result.out + result.err
    for name, data in project.tree(include_state=True).items():
        assert secret.encode() not in data, name
    assert "[REDACTED:OPENAI_API_KEY]" in (project.root / "r.json").read_text()


def test_an_http_body_naming_a_missing_variable_stops_the_run_before_any_call(
    project: Project, service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite(
        "svc",
        f"""\
        targets: [{{id: svc, http: {{url: "{service}", body: {{q: "{{{{ qestion }}}}"}}}}}}]
        prompt: "{{{{ question }}}}"
        cases: [{{id: one, vars: {{question: hi}}}}]
        """,
    )
    result = project.run("validate", capsys=capsys)
    assert result.code == 2 and "has no variable 'qestion'" in result.err and "svc.yaml" in result.err
    assert _Service.seen == []

"""`prompttest comment`: one pull-request comment, kept current, against a fake GitHub REST API
on 127.0.0.1 (real HTTP, a thread of this process), driven through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import Outcome
from test_cli_commands import PROBE

from prompttest.cli import main
from prompttest.publish.comment import COMMENT_LIMIT, DEFAULT_MARKER, fit_body

REPO = "octo/prompts"
PR = 7
TOKEN = "ghs_FakeToken0123456789abcdefABCDEF"
OPAQUE_TOKEN = "opaque-secret-value-4711-zz"  # no known token shape: redacted by its value
FORK = {"message": "Resource not accessible by integration", "documentation_url": "https://docs.github.com"}


# --------------------------------------------------------------------------- the fake GitHub API


@dataclass
class Canned:
    """An answer given instead of the real one, to the first request of `method` (None: any);
    with `then_apply` the request is carried out first (an answer lost on the way back)."""

    status: int
    body: Any = None  # a dict (JSON), or a callable of the request's headers giving one
    headers: dict[str, str] = field(default_factory=dict)
    method: str | None = None
    then_apply: bool = False


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class FakeGitHub:
    """Issue comments of one repository's pull requests, as GitHub's REST API serves them."""

    def __init__(self) -> None:
        self.comments: dict[int, list[dict[str, Any]]] = {PR: []}
        self.requests: list[Seen] = []
        self.canned: list[Canned] = []
        self.always: Canned | None = None
        self.page_size = 100
        self.user_login: str | None = None  # GET /user: 403 (an app's token) unless set
        self.writer = {"login": "github-actions[bot]", "type": "Bot"}
        self._ids = iter(range(1001, 10**6))
        self._clock = iter(range(10**6))
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeGitHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add(self, body: str, *, pr: int = PR, login: str = "someone", kind: str = "User") -> dict[str, Any]:
        """A comment someone wrote."""
        comment_id = next(self._ids)
        comment = {
            "id": comment_id,
            "body": body,
            "user": {"login": login, "type": kind},
            "created_at": (datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=next(self._clock)))
            .isoformat()
            .replace("+00:00", "Z"),
            "html_url": f"https://github.com/{REPO}/pull/{pr}#issuecomment-{comment_id}",
        }
        self.comments.setdefault(pr, []).append(comment)
        return comment

    def seen(self, method: str | None = None) -> list[Seen]:
        return [r for r in self.requests if method in (None, r.method)]

    def answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, dict, Any]:
        with self._lock:
            self.requests.append(Seen(method, path, headers, body))
            canned = next((c for c in self.canned if c.method in (None, method)), None)
            if canned is not None:
                self.canned.remove(canned)
            elif self.always is not None and self.always.method in (None, method):
                canned = self.always
            real = self._route(method, path, body) if canned is None or canned.then_apply else None
            if canned is None:
                assert real is not None
                return real
            answer = canned.body(headers) if callable(canned.body) else canned.body
            return canned.status, canned.headers, answer

    def _route(self, method: str, path: str, body: Any) -> tuple[int, dict, Any]:
        url = urlsplit(path)
        parts = url.path.strip("/").split("/")
        query = parse_qs(url.query)
        not_found = (404, {}, {"message": "Not Found", "documentation_url": "https://docs.github.com"})
        if parts == ["user"] and method == "GET":
            return (200, {}, {"login": self.user_login}) if self.user_login else (403, {}, FORK)
        if len(parts) < 5 or parts[0] != "repos" or "/".join(parts[1:3]) != REPO or parts[3] != "issues":
            return not_found
        if parts[4] == "comments" and len(parts) == 6 and method == "PATCH":
            for comment in (c for thread in self.comments.values() for c in thread):
                if str(comment["id"]) == parts[5]:
                    comment["body"] = body["body"]
                    return 200, {}, comment
            return not_found
        if len(parts) != 6 or parts[5] != "comments" or int(parts[4]) not in self.comments:
            return not_found
        pr = int(parts[4])
        if method == "POST":
            comment = self.add(body["body"], pr=pr, login=self.writer["login"], kind=self.writer["type"])
            return 201, {}, comment
        per_page = min(int(query.get("per_page", ["30"])[0]), self.page_size)
        page = int(query.get("page", ["1"])[0])
        thread = self.comments[pr]
        items = thread[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(thread):
            headers["Link"] = f'<{self.url}{url.path}?per_page={per_page}&page={page + 1}>; rel="next"'
        return 200, headers, items


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        fake: FakeGitHub = self.server.fake  # type: ignore[attr-defined]
        status, extra, answer = fake.answer(
            self.command, self.path, headers, json.loads(raw) if raw else None
        )
        payload = json.dumps(answer).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **extra}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub().start()
    yield fake
    fake.stop()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, github: FakeGitHub) -> pytest.MonkeyPatch:
    """What GitHub Actions sets, pointing at the fake; no event file; retries that back off fast."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("GITHUB_", "PROMPTTEST_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    monkeypatch.setattr("prompttest.publish.github.BACKOFF", (0.01, 0.02, 0.04))
    return monkeypatch


def summary(text: str = "## prompttest: 3 passed\n", name: str = "summary.md") -> str:
    Path(name).write_text(text, encoding="utf-8")
    return name


def run(*args: str, capsys: pytest.CaptureFixture[str]) -> Outcome:
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(["comment", *args])
    out, err = capsys.readouterr()
    return Outcome(int(done.value.code or 0), out, err)


def only_warning(outcome: Outcome) -> str:
    """The one stderr line of a comment not posted, with exit 0 and nothing on stdout."""
    assert outcome.code == 0, outcome.err
    assert outcome.out == ""
    lines = outcome.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: prompttest comment: not posted"), outcome.err
    assert "the gate's result stands" in lines[0] or "hint: " in lines[0]
    return lines[0]


# --------------------------------------------------------------------------- create and update


def test_creates_the_comment_with_a_hidden_marker_and_githubs_headers(
    env: pytest.MonkeyPatch, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    done = run(summary("## prompttest: 3 passed\n"), "--pr", str(PR), capsys=capsys)
    assert done.code == 0, done.err
    (comment,) = github.comments[PR]
    assert done.out == f"prompttest comment: created {comment['html_url']}\n"
    assert done.err == ""
    assert comment["body"] == f"## prompttest: 3 passed\n\n{DEFAULT_MARKER}\n"
    listed, posted = github.requests
    assert (listed.method, listed.path) == ("GET", f"/repos/{REPO}/issues/{PR}/comments?per_page=100")
    assert (posted.method, posted.path) == ("POST", f"/repos/{REPO}/issues/{PR}/comments")
    for request in github.requests:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["accept"] == "application/vnd.github+json"
        assert request.headers["x-github-api-version"] == "2022-11-28"
        assert request.headers["user-agent"].startswith("prompttest")


def test_the_next_push_updates_the_marked_comment_only_reading_every_page(
    env: pytest.MonkeyPatch, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    github.page_size = 2
    for n in range(3):
        github.add(f"looks good {n}")
    assert run(summary("first"), "--pr", str(PR), capsys=capsys).code == 0
    for n in range(2):  # the marked comment ends up on page 2 of 3, others after it
        github.add(f"another remark {n}")
    others = [dict(c) for c in github.comments[PR] if DEFAULT_MARKER not in c["body"]]
    github.requests.clear()

    done = run(summary("second"), "--pr", str(PR), capsys=capsys)
    assert done.code == 0, done.err
    marked = [c for c in github.comments[PR] if DEFAULT_MARKER in c["body"]]
    assert len(marked) == 1 and marked[0]["body"].startswith("second")
    assert done.out == f"prompttest comment: updated {marked[0]['html_url']}\n"
    assert [c for c in github.comments[PR] if DEFAULT_MARKER not in c["body"]] == others
    gets = [r.path for r in github.seen("GET")]
    assert gets == [
        f"/repos/{REPO}/issues/{PR}/comments?per_page=100",
        f"/repos/{REPO}/issues/{PR}/comments?per_page=2&page=2",
        f"/repos/{REPO}/issues/{PR}/comments?per_page=2&page=3",
    ]
    (patch,) = github.seen("PATCH")
    assert patch.path == f"/repos/{REPO}/issues/comments/{marked[0]['id']}"
    assert github.seen("POST") == []


def test_two_markers_keep_two_comments(
    env: pytest.MonkeyPatch, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    for round_ in ("one", "two"):
        assert run(summary(f"main {round_}"), "--pr", str(PR), capsys=capsys).code == 0
        nightly = run(summary(f"nightly {round_}"), "--pr", str(PR), "--marker", "nightly", capsys=capsys)
        assert nightly.code == 0
    assert nightly.out.startswith("prompttest comment: updated ")
    bodies = sorted(c["body"] for c in github.comments[PR])
    assert bodies == [f"main two\n\n{DEFAULT_MARKER}\n", "nightly two\n\n<!-- prompttest: nightly -->\n"]


@pytest.mark.parametrize("login", [None, "alice"])
def test_of_several_marked_comments_the_token_users_newest_is_updated(
    env: pytest.MonkeyPatch, github: FakeGitHub, capsys: pytest.CaptureFixture[str], login: str | None
) -> None:
    old_bot = github.add(f"old\n{DEFAULT_MARKER}", login="github-actions[bot]", kind="Bot")
    new_bot = github.add(f"new\n{DEFAULT_MARKER}", login="github-actions[bot]", kind="Bot")
    alice = github.add(f"quoted by a person\n{DEFAULT_MARKER}", login="alice")
    github.user_login = login  # None: an app's token (GITHUB_TOKEN), which cannot read /user
    assert run(summary("fresh"), "--pr", str(PR), capsys=capsys).code == 0
    (patch,) = github.seen("PATCH")
    expected = alice if login == "alice" else new_bot
    assert patch.path.endswith(f"/comments/{expected['id']}")
    assert old_bot["body"].startswith("old")


def test_a_post_whose_answer_was_lost_is_found_again_not_posted_twice(
    env: pytest.MonkeyPatch, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    github.canned.append(Canned(502, {"message": "Server Error"}, method="POST", then_apply=True))
    done = run(summary(), "--pr", str(PR), capsys=capsys)
    assert done.code == 0, done.err
    assert done.out.startswith("prompttest comment: updated ")
    assert len(github.comments[PR]) == 1
    assert [r.method for r in github.requests] == ["GET", "POST", "GET", "PATCH"]


# --------------------------------------------------------------------------- refusals: warn, exit 0


def test_a_forks_read_only_token_warns_once_and_exits_0(
    env: pytest.MonkeyPatch, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    github.always = Canned(403, FORK, method="POST")
    line = only_warning(run(summary(), "--pr", str(PR), capsys=capsys))
    assert f"on {REPO}#{PR}" in line and "403" in line and "Resource not accessible by integration" in line
    assert "fork" in line and "the gate's result stands" in line
    assert [r.method for r in github.requests] == ["GET", "POST"]  # no retry storm


def test_a_pull_request_not_found_warns_and_exits_0(
    env: pytest.MonkeyPatch, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    line = only_warning(run(summary(), "--pr", "404", capsys=capsys))
    assert "404" in line and "Not Found" in line and "--pr" in line
    assert len(github.requests) == 1


def test_without_a_token_it_warns_and_calls_nothing(
    env: pytest.MonkeyPatch, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    env.delenv("GITHUB_TOKEN")
    line = only_warning(run(summary(), "--pr", str(PR), capsys=capsys))
    assert "GITHUB_TOKEN is not set" in line and "pull-requests: write" in line
    assert github.requests == []


def test_outside_a_pull_request_event_it_warns(
    env: pytest.MonkeyPatch, github: FakeGitHub, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert "GITHUB_EVENT_PATH is not set" in only_warning(run(summary(), capsys=capsys))
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"ref": "refs/heads/main", "commits": []}))  # a push
    env.setenv("GITHUB_EVENT_PATH", str(event))
    assert "not a pull_request event" in only_warning(run(summary(), capsys=capsys))
    env.delenv("GITHUB_REPOSITORY")
    assert "GITHUB_REPOSITORY is not set" in only_warning(run(summary(), "--pr", "7", capsys=capsys))
    assert github.requests == []


@pytest.mark.parametrize("event", [{"action": "synchronize", "pull_request": {"number": PR}}, {"number": PR}])
def test_the_pull_request_number_comes_from_the_event_file(
    env: pytest.MonkeyPatch,
    github: FakeGitHub,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    event: dict[str, Any],
) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    env.setenv("GITHUB_EVENT_PATH", str(path))
    done = run(summary(), capsys=capsys)
    assert done.code == 0, done.err
    assert len(github.comments[PR]) == 1


# --------------------------------------------------------------------------- rate limits and failures


def test_429_with_retry_after_is_waited_for_then_the_comment_is_created(
    env: pytest.MonkeyPatch, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    github.canned.append(Canned(429, {"message": "Too Many Requests"}, {"Retry-After": "1"}, method="POST"))
    started = time.monotonic()
    done = run(summary(), "--pr", str(PR), capsys=capsys)
    assert done.code == 0, done.err
    assert time.monotonic() - started >= 1.0
    assert done.out.startswith("prompttest comment: created ")
    assert [r.method for r in github.requests] == ["GET", "POST", "GET", "POST"]
    assert len(github.comments[PR]) == 1


def test_a_secondary_rate_limit_403_with_no_requests_left_waits_for_the_reset(
    env: pytest.MonkeyPatch, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()))}
    limited = {"message": "You have exceeded a secondary rate limit."}
    github.canned.append(Canned(403, limited, headers, method="GET"))
    done = run(summary(), "--pr", str(PR), capsys=capsys)
    assert done.code == 0, done.err
    assert done.out.startswith("prompttest comment: created ")
    assert [r.method for r in github.requests] == ["GET", "GET", "POST"]


def test_a_rate_limit_longer_than_a_minute_is_not_waited_for(
    env: pytest.MonkeyPatch, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    github.always = Canned(429, {"message": "Too Many Requests"}, {"Retry-After": "3600"})
    started = time.monotonic()
    line = only_warning(run(summary(), "--pr", str(PR), capsys=capsys))
    assert time.monotonic() - started < 5
    assert "rate limited" in line and "3600 s" in line and "next push" in line
    assert len(github.requests) == 1


def test_rate_limited_every_time_it_gives_up_after_a_few_tries(
    env: pytest.MonkeyPatch, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    github.always = Canned(429, {"message": "Too Many Requests"}, {"Retry-After": "0"})
    line = only_warning(run(summary(), "--pr", str(PR), capsys=capsys))
    assert "rate limited" in line and "(4 tries)" in line
    assert len(github.requests) == 4


def test_5xx_is_retried_with_backoff_then_warns(
    env: pytest.MonkeyPatch, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    github.canned.append(Canned(503, {"message": "Service Unavailable"}, method="GET"))
    assert run(summary(), "--pr", str(PR), capsys=capsys).code == 0
    assert len(github.comments[PR]) == 1
    github.requests.clear()
    github.always = Canned(500, {"message": "Server Error"})
    line = only_warning(run(summary(), "--pr", str(PR), capsys=capsys))
    assert "HTTP 500" in line and "(4 tries)" in line
    assert len(github.requests) == 4


def test_a_refused_connection_is_retried_then_warns(
    env: pytest.MonkeyPatch, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    github.stop()
    line = only_warning(run(summary(), "--pr", str(PR), "--api-url", github.url, capsys=capsys))
    assert "could not connect" in line and "(4 tries)" in line


# --------------------------------------------------------------------------- the token


@pytest.mark.parametrize("token", [TOKEN, OPAQUE_TOKEN])
@pytest.mark.parametrize("status", [401, 403, 500])
def test_the_token_is_never_printed_even_when_github_echoes_it(
    env: pytest.MonkeyPatch,
    github: FakeGitHub,
    capsys: pytest.CaptureFixture[str],
    token: str,
    status: int,
) -> None:
    env.setenv("GITHUB_TOKEN", token)

    def echo(headers: dict[str, str]) -> dict[str, str]:
        return {"message": f"Bad credentials: {headers['authorization']} (token {token})"}

    github.always = Canned(status, echo)
    done = run(summary(), "--pr", str(PR), capsys=capsys)
    line = only_warning(done)
    assert token not in done.out + done.err
    assert "Bad credentials" in line and "[REDACTED" in line
    posted = run(summary(), "--pr", str(PR), "--api-url", "http://127.0.0.1:1", capsys=capsys)
    assert token not in posted.out + posted.err


def test_a_redirect_is_not_followed_nor_a_next_page_on_another_host(
    env: pytest.MonkeyPatch, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = FakeGitHub().start()
    try:
        github.canned.append(
            Canned(301, {}, {"Location": f"{elsewhere.url}/repos/{REPO}/issues/{PR}/comments"})
        )
        assert "redirect, not followed" in only_warning(run(summary(), "--pr", str(PR), capsys=capsys))
        github.canned.append(
            Canned(
                200, [], {"Link": f'<{elsewhere.url}/repos/{REPO}/issues/{PR}/comments?page=2>; rel="next"'}
            )
        )
        assert "points away from" in only_warning(run(summary(), "--pr", str(PR), capsys=capsys))
        assert elsewhere.requests == []
    finally:
        elsewhere.stop()


# --------------------------------------------------------------------------- the body


def test_a_summary_over_githubs_limit_is_cut_with_a_note_and_still_found_again(
    env: pytest.MonkeyPatch, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    big = "## prompttest\n\n```text\n" + "a line of model output\n" * 4000  # a fence open at the cut
    assert len(big) > COMMENT_LIMIT
    assert run(summary(big), "--pr", str(PR), capsys=capsys).code == 0
    (comment,) = github.comments[PR]
    body = comment["body"]
    assert len(body) <= COMMENT_LIMIT
    assert body.endswith(f"{DEFAULT_MARKER}\n")
    assert "cut here" in body and f"{len(big.rstrip()):,} characters" in body
    before_note = body.split("**… cut here:**")[0]
    assert before_note.count("```") == 2  # the fence is closed before the note
    assert run(summary(big + "more\n"), "--pr", str(PR), capsys=capsys).out.startswith(
        "prompttest comment: updated "
    )
    assert len(github.comments[PR]) == 1


def test_fit_body_closes_details_and_keeps_whole_lines() -> None:
    text = "<details><summary>more</summary>\n\n" + "".join(f"line {n}\n" for n in range(100))
    body = fit_body(text, DEFAULT_MARKER, limit=500)
    assert len(body) <= 500
    kept = body.split("\n\n**… cut here:**")[0]
    assert kept.endswith("</details>")
    assert all(line.startswith(("line ", "<details", "</details")) for line in kept.splitlines() if line)
    assert fit_body("short", DEFAULT_MARKER) == f"short\n\n{DEFAULT_MARKER}\n"


# --------------------------------------------------------------------------- usage: exit 2


@pytest.mark.parametrize(
    "args, said",
    [
        (["missing.md", "--pr", "7"], "does not exist"),
        (["summary.md", "--pr", "7", "--repo", "not-a-repo"], "is not a repository's OWNER/NAME"),
        (["summary.md", "--pr", "7", "--repo", "octo/.."], "is not a repository's OWNER/NAME"),
        (["summary.md", "--pr", "7", "--api-url", "http://api.example.com"], "plain http"),
        (["summary.md", "--pr", "7", "--api-url", "ftp://127.0.0.1"], "not an http(s) URL"),
        (["summary.md", "--pr", "7", "--marker", "a-->b"], "cannot go inside an HTML comment"),
        (["summary.md", "--pr", "0"], "not a pull request number"),
    ],
)
def test_bad_usage_exits_2_and_calls_nothing(
    env: pytest.MonkeyPatch,
    github: FakeGitHub,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    said: str,
) -> None:
    summary()
    done = run(*args, capsys=capsys)
    assert done.code == 2
    assert said in done.err
    assert github.requests == []


def test_bad_usage_wins_over_a_missing_token(
    env: pytest.MonkeyPatch, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    env.delenv("GITHUB_TOKEN")
    done = run(summary(), "--pr", "7", "--repo", "nope", capsys=capsys)
    assert done.code == 2 and "'nope'" in done.err


# --------------------------------------------------------------------------- as a process


def test_as_a_process_it_comments_without_importing_litellm(
    env: pytest.MonkeyPatch, github: FakeGitHub, tmp_path: Path
) -> None:
    probe = tmp_path / "probe.json"
    environ = {k: v for k, v in os.environ.items() if k != "CI"} | {"PROBE_OUT": str(probe)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "comment", summary(), "--pr", str(PR)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("prompttest comment: created https://github.com/")
    assert TOKEN not in done.stdout + done.stderr
    assert json.loads(probe.read_text()) == {"litellm": False}

"""Shared pytest fixtures for prompttest's tests."""

from __future__ import annotations

import importlib.util
import os
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fake_server import FakeServer
from hypothesis import HealthCheck, settings

from prompttest.cli import main

# litellm must never fetch its price map from the internet, whoever imports it first.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

# Property-based tests: derandomized, so CI sees the same examples every run.
FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --------------------------------------------------------------------------- a CI's environment

# What GitHub Actions sets that changes what prompttest does: the step summary and annotations
# (`run`, `merge`), annotation paths, and where `comment` posts. Run inside a workflow, these
# tests would otherwise write into the job's summary or see the workflow's own pull request.
GITHUB_VARIABLES = (
    "GITHUB_ACTIONS",
    "GITHUB_STEP_SUMMARY",
    "GITHUB_WORKSPACE",
    "GITHUB_TOKEN",
    "GITHUB_REPOSITORY",
    "GITHUB_EVENT_PATH",
    "GITHUB_EVENT_NAME",
    "GITHUB_API_URL",
    "GITHUB_BASE_REF",
    "GITHUB_OUTPUT",
    "GITHUB_ENV",
    "GITHUB_PATH",
)


@pytest.fixture(autouse=True)
def _outside_github_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts outside GitHub Actions; a test that wants it sets the variables."""
    for name in GITHUB_VARIABLES:
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------------- fake_server


@pytest.fixture(scope="session")
def _fake_server_process() -> Iterator[FakeServer]:
    """One FakeServer for the whole session (started once: tests only reset it)."""
    server = FakeServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_server(_fake_server_process: FakeServer) -> Iterator[FakeServer]:
    """A real OpenAI-compatible HTTP server on 127.0.0.1, reset for this test.

    ``fake_server.url`` is the ``api_base`` (``http://127.0.0.1:PORT/v1``); set
    ``reply``/``latency`` or call ``script(...)`` (see tests/fake_server.py).
    Script, requests, count, latency and reply are reset before and after each test.
    """
    server = _fake_server_process
    if not server.running:  # a test stopped it: bring it back for the next ones
        server.start()
    server.reset()
    yield server
    server.reset()


# --------------------------------------------------------------------------- project


class Project:
    """A throwaway prompttest project in tmp_path, driven through the real CLI."""

    def __init__(self, root: Path, server: FakeServer) -> None:
        self.root = root
        self.server = server
        (root / "suites").mkdir()
        (root / "pyproject.toml").write_text("[tool.prompttest]\n")

    def suite(self, name: str, text: str) -> Path:
        """Write suites/<name>.yaml; `{api_base}` in the text becomes the fake server's URL."""
        path = self.root / "suites" / f"{name}.yaml"
        path.write_text(textwrap.dedent(text).replace("{api_base}", self.server.url))
        return path

    def run(self, *args: str, capsys: pytest.CaptureFixture[str]) -> Outcome:
        """`prompttest ARGS` in-process; returns exit code and output."""
        capsys.readouterr()
        with pytest.raises(SystemExit) as done:
            main(list(args))
        out, err = capsys.readouterr()
        return Outcome(int(done.value.code or 0), out, err)

    def rerun(
        self, first: dict[str, str], then: dict[str, str], *args: str, capsys: pytest.CaptureFixture[str]
    ) -> Outcome:
        """Run once answering `first` (its outputs become the snapshots), then again, uncached,
        answering `then`, with `args` added to the second run; returns the second run."""
        self.server.reply = replies(first)
        assert self.run("run", capsys=capsys).code == 0
        self.server.reply = replies(then)
        return self.run("run", "--no-cache", *args, capsys=capsys)

    def tree(self, *, include_state: bool = False) -> dict[str, bytes]:
        """Every file below the root with its bytes (the state folder left out by default)."""
        files = {}
        for path in sorted(self.root.rglob("*")):
            rel = path.relative_to(self.root).as_posix()
            if path.is_file() and (include_state or not rel.startswith(".prompttest/")):
                files[rel] = path.read_bytes()
        return files

    def snapshot(self, suite: str) -> str:
        return (self.root / "snapshots" / f"{suite}.yaml").read_text()


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


# `PROMPTTEST_WORKERS=2 pytest ...` runs the tests with hosted models' calls sent by two
# worker processes (calls/pool.py), however small the run: kept through the env clean-up.
CALL_WORKERS = os.environ.get("PROMPTTEST_WORKERS")


@pytest.fixture
def project(tmp_path: Path, fake_server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A project folder as the working directory, outside CI, with no provider keys set."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name == "CI" or name.startswith("PROMPTTEST_") or name.endswith("_API_KEY"):
            monkeypatch.delenv(name)
    if CALL_WORKERS is not None:
        monkeypatch.setenv("PROMPTTEST_WORKERS", CALL_WORKERS)
    return Project(tmp_path, fake_server)


# --------------------------------------------------------------------------- shared suite data

# Three capitals; france and japan have a check, peru none. `{api_base}` is the fake server.
GEO_SUITE = """\
    target: {id: fake, model: openai/fake, api_base: "{api_base}"}
    prompt: "Capital of {{ country }}?"
    cases:
      - id: france
        vars: {country: France}
        expect: [{contains: Paris}]
      - id: japan
        vars: {country: Japan}
        expect: [{contains: Tokyo}]
      - id: peru
        vars: {country: Peru}
"""


def replies(table: dict[str, str]) -> Callable[[dict[str, Any]], str]:
    """A fake-server reply: the value of the first key found in the last message."""
    return lambda request: next(v for k, v in table.items() if k in request["messages"][-1]["content"])


# --------------------------------------------------------------------------- optional extras


def require_installed(modules: tuple[str, ...], what: str, install: str) -> None:
    """Skip the test when an extra's modules are missing, except under CI=true, where a
    silent skip would hide a broken install: there it fails."""
    if all(importlib.util.find_spec(name) is not None for name in modules):
        return
    message = f"{what} is not installed; install it with: {install}"
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}:
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)

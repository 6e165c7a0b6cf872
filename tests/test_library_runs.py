"""Runs driven from Python leave nothing open behind them."""

from __future__ import annotations

import gc

import aiohttp
import pytest
from conftest import Project

from prompttest.config import load_project
from prompttest.session import RunOptions, run


def test_a_run_closes_the_http_sessions_litellm_opened(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    # litellm caches an aiohttp session per event loop and each run has a loop of its own:
    # unclosed, they pile up in a process that runs many times (a notebook, the pytest plugin).
    project.suite(
        "a", 'target: {id: f, model: openai/fake, api_base: "{api_base}"}\nprompt: hi\ncases: [{id: one}]\n'
    )
    run(load_project(project.root, environ={}), RunOptions(use_cache=False))
    sessions = [o for o in gc.get_objects() if isinstance(o, aiohttp.ClientSession)]
    assert project.server.count == 1
    assert sessions and all(session.closed for session in sessions)

"""Mistakes made on this machine (no key, a wrong endpoint, a model string no provider
answers to, a param the local model lacks) are told as such, not as provider errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import Project

ONE_CASE = """\
    prompt: "Capital of {{ country }}?"
    cases:
      - id: france
        vars: {country: France}
      - id: japan
        vars: {country: Japan}
      - id: peru
        vars: {country: Peru}
"""


def test_a_missing_api_key_is_final_at_once_and_told_once(project: Project, capsys: Any) -> None:
    # The fixture unsets every *_API_KEY: the openai client refuses before sending anything.
    project.suite("geo", ONE_CASE)
    done = project.run("run", "-m", "openai/gpt-4o-mini", "-j", "1", "--json", "r.json", capsys=capsys)
    assert done.code == 3, done.out + done.err
    assert "HTTP 500" not in done.out
    errors = done.out.split("error in ", 1)[1]
    assert errors.startswith("geo/france@openai/gpt-4o-mini (+2 more):")  # one message for all keys
    assert "no API key: set OPENAI_API_KEY" in errors and "(after 1 attempt(s))" in errors
    assert "error in " not in errors
    report = json.loads((project.root / "r.json").read_text())
    assert report["summary"]["calls"] == 1  # not retried, and the other keys were not tried


def test_a_refused_connection_names_the_endpoint(project: Project, capsys: Any) -> None:
    project.suite("geo", ONE_CASE)
    done = project.run(
        "run", "-m", "openai/x", "--api-base", "http://127.0.0.1:1/v1", "--retries", "0", capsys=capsys
    )
    assert done.code == 3, done.out + done.err
    assert "HTTP 500" not in done.out
    assert "could not connect to http://127.0.0.1:1/v1" in done.out


@pytest.mark.parametrize("model", ["nosuchprovider/foo", "gpt-99-turbo"])
def test_a_model_no_provider_answers_to_is_bad_usage_before_any_call(
    project: Project, capsys: Any, model: str
) -> None:
    project.suite("geo", ONE_CASE)
    done = project.run("run", "-m", model, capsys=capsys)
    assert done.code == 2, done.out + done.err
    assert f"'{model}'" in done.err
    assert "hint:" in done.err
    assert "HTTP 400" not in done.out + done.err
    assert not (project.root / ".prompttest" / "runs").exists() or not any(
        (project.root / ".prompttest" / "runs").iterdir()
    )


def test_a_param_the_local_model_lacks_is_a_validation_error(project: Project, capsys: Any) -> None:
    path = project.suite(
        "geo",
        """\
        target: local/gemma-3-270m
        params: {temperature: 0, response_format: {type: json_object}}
        prompt: "Capital of {{ country }}?"
        cases:
          - id: france
            vars: {country: France}
        """,
    )
    for command in (["validate"], ["run"]):
        done = project.run(*command, capsys=capsys)
        assert done.code == 2, done.out + done.err
        assert "response_format" in done.err
        assert f"{path.relative_to(project.root)}:2:" in done.err or f"{path}:2:" in done.err
        assert "Traceback" not in done.out + done.err


def test_a_case_param_the_local_model_lacks_names_the_case_line(project: Project, capsys: Any) -> None:
    path = project.suite(
        "geo",
        """\
        prompt: "Capital of {{ country }}?"
        cases:
          - id: france
            vars: {country: France}
          - id: japan
            vars: {country: Japan}
            params: {tools: [{type: function, function: {name: f}}]}
        """,
    )
    done = project.run("run", "-m", "local/gemma-3-270m", capsys=capsys)
    assert done.code == 2, done.out + done.err
    assert "tools" in done.err and "japan" in done.err
    assert f"{path.relative_to(project.root)}:5:" in done.err or f"{path}:5:" in done.err

"""What a run says about its cost: no litellm noise, no $0 it does not know, no call a
budget cannot pay for."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import Project
from fake_server import Status

# litellm remembers per-call prices process-wide, by model name: names of their own here.
SUITE = """\
    target: {id: fake, model: MODEL, api_base: "{api_base}"}
    params: PARAMS
    prompt: "Say {{ n }}"
    cases:
      - id: one
        vars: {n: 1}
      - id: two
        vars: {n: 2}
      - id: three
        vars: {n: 3}
"""
PRICES = "{input_cost_per_token: 0.001, output_cost_per_token: 0.001, max_tokens: 10}"


def suite(project: Project, model: str, params: str = "{max_tokens: 10}") -> None:
    project.suite("costs", SUITE.replace("MODEL", model).replace("PARAMS", params))


def test_per_target_prices_print_no_litellm_warning(project: Project) -> None:
    suite(project, "openai/priced-quietly", PRICES)
    project.server.reply = lambda request: "one two three"
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    done = subprocess.run(
        [sys.executable, "-m", "prompttest", "run"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 new" in done.stdout and "$0.0150" in done.stdout  # the prices were used
    assert "custom pricing" not in done.stdout + done.stderr
    assert "register_model" not in done.stdout + done.stderr


def test_a_run_whose_keys_all_erred_has_an_unknown_cost(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    suite(project, "openai/unpriced-erring")
    project.server.reply = lambda request: "one two"
    good = project.run("run", capsys=capsys)
    assert "cost unknown" in good.out  # no price for this model
    project.server.reply = lambda request: Status(400)
    bad = project.run("run", "--no-cache", capsys=capsys)
    assert bad.code == 3
    assert "3 error" in bad.out
    assert "cost unknown" in bad.out
    assert "$0.0000" not in bad.out


def test_a_budget_with_an_unknown_price_calls_nothing(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    suite(project, "openai/unpriced-budget")
    project.server.reply = lambda request: "one two"
    done = project.run("run", "-j", "4", "--max-cost", "1", capsys=capsys)
    assert done.code == 3
    assert project.server.count == 0  # the price is unknown before the first call
    assert "budget: not called: the cost of openai/unpriced-budget is unknown" in done.out
    assert "3 error" in done.out

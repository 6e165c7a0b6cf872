"""--max-cost stops new calls at the budget; --dry-run calls and writes nothing."""

from __future__ import annotations

import pytest
from conftest import Project

# litellm remembers per-call prices process-wide, by model name: these tests use names of
# their own so that no other test's model gets a price.
PRICED = """\
    target: {id: fake, model: openai/priced, api_base: "{api_base}"}
    # Per-call prices, as litellm takes them: 1 token = $0.001 either way.
    params: {input_cost_per_token: 0.001, output_cost_per_token: 0.001, max_tokens: 10}
    prompt: "Say {{ n }}"
    cases:
CASES"""


def priced_suite(project: Project, count: int, head: str = PRICED) -> None:
    cases = "".join(f"      - id: c{i}\n        vars: {{n: {i}}}\n" for i in range(count))
    project.suite("priced", head.replace("CASES", cases))


def test_the_budget_stops_new_calls_and_the_rest_are_errors(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    priced_suite(project, 10)
    project.server.reply = lambda request: "one two three"  # 2 prompt + 3 completion tokens = $0.005
    result = project.run("run", "-j", "1", "--max-cost", "0.012", capsys=capsys)
    assert result.code == 3
    assert project.server.count == 3  # $0.005, $0.010, $0.015: the fourth call would start over budget
    assert "7 error" in result.out
    assert "budget: not called: --max-cost $0.012 reached (spent $0.0150)" in result.out


def test_a_budget_cannot_be_kept_when_a_price_is_unknown(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    unpriced = PRICED.replace("input_cost_per_token: 0.001, output_cost_per_token: 0.001, ", "")
    priced_suite(project, 3, unpriced.replace("openai/priced", "openai/unpriced"))
    result = project.run("run", "-j", "1", "--max-cost", "1", capsys=capsys)
    assert result.code == 3
    assert project.server.count == 0  # the price is looked up before the first call
    assert "the cost of openai/unpriced is unknown" in result.out


def test_dry_run_counts_calls_cache_hits_and_cost_without_calling(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    priced_suite(project, 4)
    project.run("run", "-k", "*c0*", capsys=capsys)

    def state() -> dict[str, bytes]:  # the cache's SQLite file changes on open: count its entries instead
        return {k: v for k, v in project.tree(include_state=True).items() if "/cache/" not in k}

    before = state()
    calls_before = project.server.count
    result = project.run("run", "--dry-run", "--repeat", "2", capsys=capsys)
    assert result.code == 0
    assert project.server.count == calls_before
    assert state() == before  # no run record, no snapshot
    assert "1 cached answer(s)" in project.run("cache", "info", capsys=capsys).out
    row = next(line for line in result.out.splitlines() if line.startswith("openai/priced"))
    assert row.split()[1:5] == ["4", "8", "1", "7"]  # keys, calls, cached, to call
    # each call: 10 prompt tokens (litellm's count of "Say N" with its message overhead)
    # + 10 output tokens (max_tokens), at $0.001 each: 7 x $0.020
    assert row.endswith("$0.1400")
    assert "dry run: 7 call(s) to make, 1 answered by the cache" in result.out

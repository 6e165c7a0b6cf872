"""The last line of a run (and what Ctrl-C in `review` prints) names the command that helps."""

from __future__ import annotations

import pytest
from conftest import GEO_SUITE, Project, replies
from terminal import drive_review

GOOD = {"France": "Paris.", "Japan": "Tokyo.", "Peru": "Lima."}
BAD = {"France": "Lyon.", "Japan": "Kyoto.", "Peru": "Lima."}


def next_step(out: str) -> str:
    return out.strip().splitlines()[-1]


def test_a_first_run_with_failing_new_keys_points_at_the_written_snapshots_not_review(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite("geo", GEO_SUITE)
    project.server.reply = replies(BAD)
    result = project.run("run", capsys=capsys)
    assert result.code == 1
    hint = next_step(result.out)
    assert "review" not in hint and "accept" not in hint, hint
    assert "git diff snapshots/" in hint and "fix the prompt or the checks" in hint
    # the hint is right: review and accept have nothing to offer
    assert "0 change(s) accepted" in project.run("accept", capsys=capsys).out


def test_run_update_with_failing_checks_says_the_run_was_accepted(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite("geo", GEO_SUITE)
    result = project.rerun(GOOD, BAD, "-u", capsys=capsys)
    assert result.code == 1
    hint = next_step(result.out)
    assert "review" not in hint and "accepted" in hint and "git diff snapshots/" in hint, hint
    assert "0 change(s) accepted" in project.run("accept", capsys=capsys).out


def test_pending_regressions_still_point_at_review(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite("geo", GEO_SUITE)
    result = project.rerun(GOOD, BAD, capsys=capsys)
    assert result.code == 1
    assert "`prompttest review`" in next_step(result.out)


PRICED = """\
    target: {id: fake, model: openai/hint-priced, api_base: "{api_base}"}
    params: {input_cost_per_token: 0.001, output_cost_per_token: 0.001, max_tokens: 10}
    prompt: "Say {{ n }}"
    cases:
      - {id: c0, vars: {n: 0}}
      - {id: c1, vars: {n: 1}}
      - {id: c2, vars: {n: 2}}
"""


def test_a_spent_budget_says_to_raise_max_cost(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.suite("priced", PRICED)
    project.server.reply = lambda request: "one two three"
    result = project.run("run", "-j", "1", "--max-cost", "0.001", capsys=capsys)
    assert result.code == 3
    hint = next_step(result.out)
    assert "provider errors" not in hint and "--max-cost" in hint and "prompttest run" in hint, hint


def test_an_unknown_price_under_a_budget_says_how_to_give_one(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    unpriced = PRICED.replace("input_cost_per_token: 0.001, output_cost_per_token: 0.001, ", "")
    project.suite("unpriced", unpriced.replace("openai/hint-priced", "openai/hint-unpriced"))
    project.server.reply = lambda request: "one two three"
    result = project.run("run", "-j", "1", "--max-cost", "1", capsys=capsys)
    assert result.code == 3
    hint = next_step(result.out)
    assert "provider errors" not in hint and "input_cost_per_token" in hint, hint


def test_offline_misses_say_to_run_without_offline(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite("geo", GEO_SUITE)
    result = project.run("run", "--offline", capsys=capsys)
    assert result.code == 3 and project.server.count == 0
    hint = next_step(result.out)
    assert "provider errors" not in hint and "without --offline" in hint, hint


JUDGED = """\
    target: {id: fake, model: openai/fake, api_base: "{api_base}"}
    prompt: "Capital of {{ country }}?"
    expect:
      - llm_judge: {rubric: "The answer is polite.", model: openai/judge, api_base: "{api_base}"}
    cases:
      - id: france
        vars: {country: France}
"""


def test_an_unreadable_judge_answer_points_at_the_check(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite("geo", JUDGED)
    project.server.reply = lambda request: (
        "Looks polite to me!" if "Rubric:" in request["messages"][-1]["content"] else "Paris."
    )
    result = project.run("run", capsys=capsys)
    assert result.code == 3
    hint = next_step(result.out)
    assert "provider errors" not in hint and "could not decide" in hint, hint


def test_errors_of_several_kinds_get_a_hint_each(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite("judged", JUDGED)
    project.server.reply = lambda request: (
        "Looks polite to me!" if "Rubric:" in request["messages"][-1]["content"] else "Paris."
    )
    project.run("run", capsys=capsys)  # the target's and the judge's answers are cached now
    project.suite("geo", GEO_SUITE)
    result = project.run("run", "--offline", capsys=capsys)
    assert result.code == 3
    hints = " | ".join(result.out.strip().splitlines()[-2:])
    assert "could not decide" in hints and "without --offline" in hints, hints
    assert "provider errors" not in result.out


def test_ctrl_c_in_review_says_no_decision_was_applied(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite("geo", GEO_SUITE)
    project.rerun(GOOD, BAD, capsys=capsys)
    before = project.tree()
    code, screen = drive_review(str(project.root), ["a"], then_ctrl_c=True)
    assert code == 130, screen
    assert "no decision was applied" in screen and "prompttest review" in screen
    assert "finished calls are cached" not in screen
    assert project.tree() == before

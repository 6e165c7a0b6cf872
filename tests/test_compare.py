"""`compare:`: a pinned pairwise judge decides whether a changed output is better or worse, on
the test server (the model and the judge are both scripted replies of the fake server)."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest
from conftest import Project

from prompttest.model import CheckError
from prompttest.verdicts.pairwise import NEW, SAME, SNAPSHOT, SPLIT, Preference, combine, parse_preference

RUBRIC = "COMPARE-RUBRIC: prefer the answer that states the refund deadline."


def compare_suite(project: Project, rubric: str = RUBRIC, repeat: int = 1, graded: bool = False) -> None:
    judge = ', {llm_judge: {rubric: "GRADE-RUBRIC", model: openai/judge, api_base: "{api_base}"}}'

    project.suite(
        "refunds",
        f"""\
    target: {{id: fake, model: openai/fake, api_base: "{{api_base}}"}}
    prompt: "How do I get a refund for {{{{ item }}}}?"
    repeat: {repeat}
    compare: {{rubric: "{rubric}", model: openai/judge, api_base: "{{api_base}}"}}
    expect: [{{contains: refund}}{judge if graded else ""}]
    cases:
      - id: shoes
        vars: {{item: shoes}}
      - id: hat
        vars: {{item: hat}}
""",
    )


class Server:
    """The model answers from `answers` (by item); the compare judge prefers the output that says
    "deadline" (or, `biased`, always the first one shown; or answers `garbage`)."""

    def __init__(self, answers: dict[str, Any], *, judge: str = "fair") -> None:
        self.answers, self.judge = answers, judge
        self.judge_calls = 0
        self.seen: Counter[str] = Counter()

    def __call__(self, request: dict[str, Any]) -> str:
        text = request["messages"][-1]["content"]
        if "GRADE-RUBRIC" in json.dumps(request["messages"]):  # an llm_judge check's judge
            return json.dumps({"pass": True, "reason": "mentions a refund"})
        if "COMPARE-RUBRIC" not in json.dumps(request["messages"]):
            item = re.search(r"refund for (\w+)", text)
            answer = self.answers[item.group(1) if item else ""]
            if isinstance(answer, list):  # one answer a sample, in turn
                self.seen[text] += 1
                return answer[(self.seen[text] - 1) % len(answer)]
            return answer
        self.judge_calls += 1
        if self.judge == "garbage":
            return "I like both of them."
        if self.judge == "biased":
            return json.dumps({"better": "A", "reason": "the first one reads better"})
        first, second = re.findall(r"<<<\n(.*?)\n>>>", text, re.DOTALL)[1:3]
        a, b = "deadline" in first, "deadline" in second
        better = "equal" if a == b else ("A" if a else "B")
        return json.dumps(
            {"better": better, "reason": "drops the refund deadline" if better != "equal" else "same"}
        )


GOOD = {
    "shoes": "Return them within 30 days for a refund; the deadline is firm.",
    "hat": "Ask for a refund before the deadline on your receipt.",
}
WORSE = {"shoes": "You can ask the store for a refund.", "hat": GOOD["hat"]}
REWORDED = {"shoes": "For a refund, return them within 30 days: that deadline is firm.", "hat": GOOD["hat"]}


def accepted(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.server.reply = Server(GOOD)
    first = project.run("run", capsys=capsys)
    assert first.code == 0, first.out
    assert "    (compare):\n        model: openai/judge" in project.snapshot("refunds")  # the judge is pinned


def test_a_worse_output_is_regressed_with_the_judges_reason(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    compare_suite(project)
    accepted(project, capsys)
    server = Server(WORSE)
    project.server.reply = server
    gate = project.run("run", "--ci", "--no-cache", "--json", "r.json", "--markdown", "r.md", capsys=capsys)
    assert gate.code == 1, gate.out
    assert server.judge_calls == 2  # one changed key, both orders
    report = json.loads((project.root / "r.json").read_text())
    shoes = next(r for r in report["results"] if r["case"] == "shoes")
    assert shoes["verdict"] == "regressed"
    assert shoes["comparison"]["preference"] == "snapshot"
    assert "drops the refund deadline" in shoes["comparison"]["reason"]
    row = "regressed  refunds/shoes@fake  judge prefers the snapshot (both orders): drops the refund"
    assert row in gate.out
    assert "drops the refund deadline" in (project.root / "r.md").read_text()
    # A cached rerun asks the judge nothing.
    again = project.run("run", "--ci", capsys=capsys)
    assert again.code == 1 and server.judge_calls == 2


def test_keys_with_judged_checks_are_compared_once_graded(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    compare_suite(project, graded=True)
    accepted(project, capsys)
    server = Server(WORSE)
    project.server.reply = server
    gate = project.run("run", "--ci", "--no-cache", "--json", "r.json", capsys=capsys)
    assert gate.code == 1, gate.out
    assert server.judge_calls == 2  # the compare judge's two calls, after the check's judge
    verdicts = {r["case"]: r["verdict"] for r in json.loads((project.root / "r.json").read_text())["results"]}
    assert verdicts == {"shoes": "regressed", "hat": "unchanged"}


def test_a_rewording_stays_changed_and_a_better_one_improves(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    compare_suite(project)
    project.server.reply = Server(WORSE)
    project.run("run", capsys=capsys)
    project.server.reply = Server(REWORDED)
    gate = project.run("run", "--ci", "--no-cache", "--json", "r.json", capsys=capsys)
    assert gate.code == 0, gate.out
    verdicts = {r["case"]: r["verdict"] for r in json.loads((project.root / "r.json").read_text())["results"]}
    assert verdicts == {"shoes": "improved", "hat": "unchanged"}
    compare_suite(project)
    project.run("run", "-u", capsys=capsys)
    project.server.reply = Server({**REWORDED, "shoes": GOOD["shoes"]})
    reworded = project.run("run", "--ci", "--no-cache", "--json", "r.json", capsys=capsys)
    assert reworded.code == 0
    shoes = next(
        r for r in json.loads((project.root / "r.json").read_text())["results"] if r["case"] == "shoes"
    )
    assert (shoes["verdict"], shoes["comparison"]["preference"]) == ("changed", "equal")


def test_a_judge_with_position_bias_decides_nothing(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    compare_suite(project)
    accepted(project, capsys)
    project.server.reply = Server(WORSE, judge="biased")
    gate = project.run("run", "--ci", "--no-cache", "--json", "r.json", capsys=capsys)
    assert gate.code == 0, gate.out
    shoes = next(
        r for r in json.loads((project.root / "r.json").read_text())["results"] if r["case"] == "shoes"
    )
    assert (shoes["verdict"], shoes["comparison"]["preference"]) == ("changed", "split")


def test_an_unreadable_judge_answer_is_an_error(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    compare_suite(project)
    accepted(project, capsys)
    project.server.reply = Server(WORSE, judge="garbage")
    gate = project.run("run", "--ci", "--no-cache", capsys=capsys)
    assert gate.code == 3
    assert "compare judge: the compare judge's answer is not JSON" in gate.out


def test_a_rubric_edit_is_stale_until_accepted(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    compare_suite(project)
    accepted(project, capsys)
    compare_suite(project, rubric=RUBRIC + " Be strict.")
    project.server.reply = Server(WORSE)
    gate = project.run("run", "--ci", "--no-cache", "--json", "r.json", capsys=capsys)
    assert gate.code == 0, gate.out
    shoes = next(
        r for r in json.loads((project.root / "r.json").read_text())["results"] if r["case"] == "shoes"
    )
    assert shoes["verdict"] == "changed" and "stale" in shoes["flags"]
    assert "[stale: another judge compared the snapshot]" in shoes["comparison"]["reason"]


def test_dry_run_counts_two_calls_per_changed_key(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    compare_suite(project)
    accepted(project, capsys)
    project.server.reply = Server(WORSE)
    dry = project.run("run", "--dry-run", "--no-cache", capsys=capsys)
    assert "plus up to 4 judge/embedding call(s)" in dry.out  # 2 keys, outputs not fetched yet
    project.run("run", "--ci", "--no-cache", capsys=capsys)  # now the new outputs are cached
    cached = project.run("run", "--dry-run", capsys=capsys)
    # One key's output differs from its snapshot: its two compare calls, answered by the cache.
    assert re.search(r"openai/judge\s+0\s+2\s+2\s+0\b", cached.out), cached.out


def test_repeats_are_decided_by_a_sign_test(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    compare_suite(project, repeat=10)
    project.server.reply = Server({"shoes": GOOD["shoes"], "hat": GOOD["hat"]})
    assert project.run("run", capsys=capsys).code == 0
    worse = [f"Ask the store for a refund ({i})." for i in range(9)] + [GOOD["shoes"]]
    mixed = [f"Ask the store for a refund ({i})." for i in range(2)] + [
        f"A refund is yours before the deadline ({i})." for i in range(8)
    ]
    project.server.reply = Server({"shoes": worse, "hat": mixed})
    gate = project.run("run", "--ci", "--no-cache", "--json", "r.json", capsys=capsys)
    assert gate.code == 1, gate.out
    results = {r["case"]: r for r in json.loads((project.root / "r.json").read_text())["results"]}
    assert results["shoes"]["verdict"] == "regressed"
    assert results["shoes"]["comparison"]["counts"] == [9, 0, 10]
    assert results["hat"]["comparison"]["counts"] == [2, 0, 10]  # 2 worse, 8 as good: not enough
    assert results["hat"]["verdict"] == "changed"
    reason = results["shoes"]["comparison"]["reason"]
    assert reason.startswith("judge prefers the snapshot for 9 of 10 samples")
    assert reason.endswith("; e.g. drops the refund deadline")
    # Sharded and merged, the keys are judged again as one run: the same verdicts and lines.
    runs = project.root / ".prompttest" / "runs"
    shards = []
    for i in (1, 2):
        project.run("run", "--ci", "--shard", f"{i}/2", capsys=capsys)
        shards.append(sorted(runs.glob("*.json"))[-1])
    project.run("merge", *map(str, shards), "--json", "m.json", capsys=capsys)
    merged = {r["case"]: r for r in json.loads((project.root / "m.json").read_text())["results"]}
    assert {c: (r["verdict"], r["comparison"]) for c, r in merged.items()} == {
        c: (r["verdict"], r["comparison"]) for c, r in results.items()
    }


# --------------------------------------------------------------------------- reading the judge


@pytest.mark.parametrize(
    ("answer", "better"),
    [
        ('{"better": "A", "reason": "x"}', "A"),
        ('```json\n{"better": "b"}\n```', "B"),
        ('{"better": "tie"}', SAME),
    ],
)
def test_preferences_are_read(answer: str, better: str) -> None:
    assert parse_preference(answer).better == better


@pytest.mark.parametrize("answer", ["A is better", '{"better": "C"}', '{"reason": "no choice"}'])
def test_an_answer_without_a_preference_is_an_error(answer: str) -> None:
    with pytest.raises(CheckError):
        parse_preference(answer)


def test_only_a_preference_in_both_orders_counts() -> None:
    a, b, same = Preference("A", "r1"), Preference("B", "r2"), Preference(SAME, "")
    assert combine(a, b)[0] == SNAPSHOT  # the snapshot was A, then B
    assert combine(b, a)[0] == NEW
    assert combine(a, a)[0] == SPLIT  # always the first shown: position bias
    assert combine(same, same)[0] == SAME
    assert combine(a, same)[0] == SPLIT


def test_review_shows_the_preference_and_puts_worse_first(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    from prompttest.cli.review_tty import describe
    from prompttest.config import load_project
    from prompttest.records.review import pending_changes
    from prompttest.records.runs import last_run

    compare_suite(project)
    project.server.reply = Server({"shoes": REWORDED["shoes"], "hat": "A refund is possible."})
    project.run("run", capsys=capsys)  # shoes says the deadline, hat does not
    project.server.reply = Server({"shoes": "Ask for a refund.", "hat": "A refund: before the deadline."})
    project.run("run", "--no-cache", capsys=capsys)  # shoes got worse, hat better
    loaded = load_project(project.root, environ={})
    _, record = last_run(loaded.runs_dir)
    changes = pending_changes(record, loaded.snapshots_dir)
    assert [c.result.case for c in changes] == ["shoes", "hat"]  # regressed first, improved last
    lines = describe(changes[0], index=1, total=2, previous=None)
    expected = "  judge: judge prefers the snapshot (both orders): drops the refund deadline"
    assert expected in lines


def test_the_project_sets_compare_for_every_suite(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    (project.root / "pyproject.toml").write_text(
        f'[tool.prompttest]\ncompare = "{RUBRIC}"\ncompare_judge = "openai/judge"\n'
        f'judge_api_base = "{project.server.url}"\n'
    )
    project.suite(
        "plain",
        """\
    target: {id: fake, model: openai/fake, api_base: "{api_base}"}
    prompt: "How do I get a refund for {{ item }}?"
    cases:
      - id: shoes
        vars: {item: shoes}
      - id: hat
        vars: {item: hat}
        compare: false
""",
    )
    project.server.reply = Server(GOOD)
    project.run("run", capsys=capsys)
    server = Server({"shoes": WORSE["shoes"], "hat": "No refunds."})
    project.server.reply = server
    gate = project.run("run", "--ci", "--no-cache", "--json", "r.json", capsys=capsys)
    verdicts = {r["case"]: r["verdict"] for r in json.loads((project.root / "r.json").read_text())["results"]}
    assert verdicts == {"shoes": "regressed", "hat": "changed"}  # `compare: false` turns it off
    assert gate.code == 1 and server.judge_calls == 2


def test_a_compare_without_a_judge_model_stops_the_run(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite(
        "nojudge",
        """\
    target: {id: fake, model: openai/fake, api_base: "{api_base}"}
    prompt: hi
    compare: "Which is better?"
    cases: [{id: a}]
""",
    )
    result = project.run("run", capsys=capsys)
    assert result.code == 2 and project.server.count == 0
    assert "compare of nojudge/a@fake: no judge model" in result.err and "compare_judge" in result.err


def test_the_compare_judge_is_paid_for_and_kept_to_the_budget(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite(
        "refunds",
        """\
    target: {id: fake, model: openai/fake-priced, api_base: "{api_base}",
             params: {input_cost_per_token: 0.001, output_cost_per_token: 0.001}}
    prompt: "How do I get a refund for {{ item }}?"
    compare: {rubric: "RUBRIC", model: openai/judge-priced, api_base: "{api_base}",
              params: {input_cost_per_token: 0.001, output_cost_per_token: 0.001}}
    expect: [{contains: refund}]
    cases:
      - id: shoes
        vars: {item: shoes}
""".replace("RUBRIC", RUBRIC),
    )
    project.server.reply = Server(GOOD)
    project.run("run", capsys=capsys)
    server = Server(WORSE)
    project.server.reply = server
    broke = project.run("run", "--ci", "--no-cache", "--max-cost", "0.001", "--json", "r.json", capsys=capsys)
    assert broke.code == 3 and server.judge_calls == 0  # the model's answer spent the budget
    (shoes,) = json.loads((project.root / "r.json").read_text())["results"]
    assert "--max-cost $0.001 reached" in shoes["error"]
    paid = project.run("run", "--ci", "--no-cache", "--json", "r.json", capsys=capsys)
    assert paid.code == 1 and server.judge_calls == 2
    (shoes,) = json.loads((project.root / "r.json").read_text())["results"]
    assert shoes["judge_cost_usd"] > 0 and "for judges" in paid.out

"""Changed outputs are scored and labelled, and the most-moved come first in every report."""

from __future__ import annotations

import json

import pytest
from conftest import Project

SUITE = """\
    target: {id: fake, model: openai/fake, api_base: "{api_base}"}
    prompt: "Tell me about {{ topic }}"
    cases:
      - id: meeting
        vars: {topic: meeting}
      - id: paris
        vars: {topic: paris}
      - id: price
        vars: {topic: price}
"""
BEFORE = {
    "meeting": "The meeting is on Monday.",
    "paris": "The capital of France is Paris.",
    "price": "It costs 5 dollars.",
}
AFTER = {
    "meeting": "The meeting is not on Monday.",
    "paris": "Paris is the capital of France.",
    "price": "Bananas are yellow and curved.",
}


def test_changed_keys_say_reworded_or_meaning_changed_lowest_similarity_first(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite("facts", SUITE)
    result = project.rerun(BEFORE, AFTER, "--json", "r.json", capsys=capsys)
    assert result.code == 0
    assert "3 changed" in result.out
    rows = [line for line in result.out.splitlines() if line.startswith("changed")]
    assert [row.split()[1] for row in rows] == ["facts/price@fake", "facts/meeting@fake", "facts/paris@fake"]
    assert "reworded" in rows[2] and "meaning changed" in rows[1] and "negation" in rows[1]
    report = json.loads((project.root / "r.json").read_text())
    by_case = {r["case"]: r for r in report["results"]}
    assert by_case["paris"]["change"].startswith("reworded")
    assert by_case["price"]["similarity"] < by_case["meeting"]["similarity"] < 1.0


def test_every_report_carries_the_change_description(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite("facts", SUITE)
    project.rerun(BEFORE, AFTER, "--markdown", "r.md", "--junit", "r.xml", "--html", "r.html", capsys=capsys)
    for name in ("r.md", "r.html"):
        assert "meaning changed" in (project.root / name).read_text(), name

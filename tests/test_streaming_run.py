"""A run streams its keys: calls, checks and verdicts key by key, results and snapshot
entries on disk. What that must not change: a call made twice is made once, results keep
the plan's order, snapshots keep another run's entries, cases files are read as validated."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import Project

import prompttest
from prompttest.calls import runner
from prompttest.errors import SuiteError
from prompttest.model import Case
from prompttest.records.spool import EntrySpool, ResultSpool
from prompttest.suites.loading import load_suite

# Eight cases, two prompts: every prompt is asked by four keys far apart from each other.
SUITE = """\
target: {{id: fake, model: openai/fake, api_base: "{api_base}"}}
prompt: "Say {{{{ word }}}}."
expect:
  - contains: "{{{{ word }}}}"
cases: words.csv
"""
WORDS = "id,word\n" + "".join(f"w{i},{'yes' if i % 2 else 'no'}\n" for i in range(8))


def echo(request: dict) -> str:
    return request["messages"][-1]["content"].removeprefix("Say ").rstrip(".")


@pytest.fixture
def words(project: Project) -> Project:
    (project.root / "suites" / "words.csv").write_text(WORDS, encoding="utf-8")
    project.suite("words", SUITE.format(api_base=project.server.url))
    project.server.reply = echo
    return project


def test_a_call_many_keys_share_is_made_once_even_far_apart_and_without_the_cache(
    words: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run keeps one answer at hand: the shared calls come back through the cache's
    # record of what this run stored, which --no-cache does not turn off.
    monkeypatch.setattr(runner, "RECENT_ANSWERS", 1)
    first = words.run("run", "-j", "1", capsys=capsys)
    assert first.code == 0, first.err
    assert words.server.count == 2
    words.server.reset()
    words.server.reply = echo
    again = words.run("run", "-j", "1", "--no-cache", capsys=capsys)
    assert again.code == 0, again.err
    assert words.server.count == 2  # called again (--no-cache), but each prompt once
    assert "8 unchanged" in again.out


def test_results_keep_the_plan_order_whatever_order_answers_arrive_in(
    words: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    assert words.run("run", "-j", "8", capsys=capsys).code == 0
    record = prompttest.read_run(next((words.root / ".prompttest" / "runs").glob("*.json")))
    assert [r.case for r in record.results] == [f"w{i}" for i in range(8)]


def test_a_run_made_in_process_keeps_its_results_in_a_spool(words: Project) -> None:
    record = prompttest.run(project_dir=words.root)
    assert isinstance(record.results, ResultSpool)
    assert [r.case for r in record.results] == [f"w{i}" for i in range(8)]
    assert record.summary()["verdicts"]["new"] == 8
    assert json.loads(record.to_json())["results"][3]["output"] == "yes"


def test_obsolete_entries_are_found_on_disk_and_listed_by_name(
    words: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    assert words.run("run", capsys=capsys).code == 0
    (words.root / "suites" / "words.csv").write_text("id,word\nw5,yes\nw1,yes\n", encoding="utf-8")
    again = words.run("run", capsys=capsys)
    record = prompttest.read_run(max((words.root / ".prompttest" / "runs").glob("*.json")))
    obsolete = [r.case for r in record.results if r.verdict.value == "obsolete"]
    assert obsolete == ["w0", "w2", "w3", "w4", "w6", "w7"]
    assert [r.case for r in record.results][:2] == ["w5", "w1"]  # the run's keys first, in plan order
    assert again.code == 0


def snapshot_text(names: list[str]) -> str:
    entries = "".join(
        f"  {name}:\n    model: m\n    request: r\n    output: out {name}\n    checks: {{}}\n"
        for name in names
    )
    return f"suite: s\nresults:\n{entries}"


def test_an_entry_spool_merges_changes_into_the_file_as_it_is_now(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(snapshot_text(["b@m", "d@m"]), encoding="utf-8")
    spool = EntrySpool()
    spool.load("s", path)
    kept = spool.get("s", "b@m")
    assert kept is not None and kept.output == "out b@m"
    spool.change("s", "a@m", kept.__class__(**{**_fields(kept), "case": "a", "output": "new a"}))
    spool.change("s", "d@m", None)
    # Another run wrote the file meanwhile: its entry c@m stays, this run's changes apply.
    os.replace(_written(tmp_path, snapshot_text(["b@m", "c@m", "d@m"])), path)
    merged = [(e.name, e.output) for e in spool.merged("s", path)]
    assert merged == [("a@m", "new a"), ("b@m", "out b@m"), ("c@m", "out c@m")]


def test_an_entry_spool_refuses_a_duplicate_entry_with_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(snapshot_text(["a@m", "a@m"]), encoding="utf-8")
    with pytest.raises(prompttest.PromptTestError) as caught:
        EntrySpool().load("s", path)
    assert caught.value.line == 8 and "first on line 3" in caught.value.message


def test_a_cases_file_is_read_again_as_it_was_checked(tmp_path: Path) -> None:
    (tmp_path / "words.csv").write_text(WORDS, encoding="utf-8")
    (tmp_path / "words.yaml").write_text(SUITE.format(api_base="http://127.0.0.1:9"), encoding="utf-8")
    suite = load_suite(tmp_path / "words.yaml")
    assert len(suite.cases) == 8
    first, second = list(suite.cases), list(suite.cases)
    assert first == second and all(isinstance(case, Case) for case in first)
    assert suite.cases[3].vars == {"word": "yes"}


def test_a_cases_file_changed_after_it_was_checked_is_refused(tmp_path: Path) -> None:
    (tmp_path / "words.csv").write_text(WORDS, encoding="utf-8")
    (tmp_path / "words.yaml").write_text(SUITE.format(api_base="http://127.0.0.1:9"), encoding="utf-8")
    suite = load_suite(tmp_path / "words.yaml")
    os.replace(_written(tmp_path, "id,word\nw0,{{ broken\n"), tmp_path / "words.csv")
    with pytest.raises(SuiteError, match="changed while prompttest was using it"):
        list(suite.cases)


def _written(folder: Path, text: str) -> Path:
    path = folder / "new.tmp"
    path.write_text(text, encoding="utf-8")
    return path


def _fields(entry: object) -> dict[str, object]:
    return {name: getattr(entry, name) for name in entry.__slots__}  # type: ignore[attr-defined]

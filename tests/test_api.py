"""The Python API: `import prompttest` is cheap, and `prompttest.run` is `prompttest run`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GEO_SUITE, Project, replies

import prompttest

ANSWERS = {"France": "Paris.", "Japan": "Tokyo.", "Peru": "Lima."}


def test_import_prompttest_imports_nothing_heavy() -> None:
    code = (
        "import json, sys, prompttest\n"
        "bare = sorted(m for m in sys.modules if m.startswith('prompttest'))\n"
        "prompttest.RunRecord, prompttest.run, prompttest.load_suites, prompttest.merge_runs\n"
        "print(json.dumps({'bare': bare, 'litellm': 'litellm' in sys.modules}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen == {"bare": ["prompttest"], "litellm": False}


def test_every_public_name_resolves_and_is_typed() -> None:
    assert sorted(prompttest.__all__) == sorted(prompttest._EXPORTS)
    for name in prompttest.__all__:
        assert getattr(prompttest, name).__doc__, name
        assert name in dir(prompttest)
    with pytest.raises(AttributeError):
        prompttest.nothing_here  # noqa: B018


def test_run_end_to_end_from_another_directory(
    project: Project, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.suite("geo", GEO_SUITE)
    project.server.reply = replies(ANSWERS)
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))  # the project comes from project_dir

    first = prompttest.run(project_dir=project.root)
    assert isinstance(first, prompttest.RunRecord)
    assert {r.key: r.verdict for r in first.results} == {
        "geo/france@fake": prompttest.Verdict.NEW,
        "geo/japan@fake": prompttest.Verdict.NEW,
        "geo/peru@fake": prompttest.Verdict.NEW,
    }
    assert prompttest.exit_code(first) == 0
    assert (project.root / "snapshots" / "geo.yaml").is_file()  # new keys written, as the CLI does

    project.server.reply = replies({**ANSWERS, "France": "Lyon."})
    again = prompttest.run("suites/geo.yaml", ci=True, use_cache=False, project_dir=project.root)
    france = next(r for r in again.results if r.case == "france")
    assert france.verdict is prompttest.Verdict.REGRESSED
    assert [c.reason for c in france.checks if not c.passed] == ["expected 'Paris' in output"]
    assert prompttest.exit_code(again) == 1
    saved = prompttest.read_run(project.root / ".prompttest" / "runs" / f"{again.id}.json")
    assert saved.id == again.id and len(saved.results) == 3


def test_sharded_runs_merge_through_the_api(project: Project) -> None:
    project.suite("geo", GEO_SUITE)
    project.server.reply = replies(ANSWERS)
    prompttest.run()
    shards = [prompttest.run(ci=True, shard=f"{i}/2") for i in (1, 2)]
    assert shards[0].options["shard"] == [1, 2]
    merged = prompttest.merge_runs(shards)
    assert merged.record_path is not None and merged.record_path.stem == merged.record.id
    assert merged.obsolete_checked and not merged.warnings
    assert len(merged.record.results) == 3 and prompttest.exit_code(merged.record) == 0


def test_update_with_ci_is_refused(project: Project) -> None:
    with pytest.raises(ValueError, match="ci"):
        prompttest.run(update=True, ci=True)


def test_a_bad_suite_raises_a_user_error_with_its_exit_code(project: Project) -> None:
    project.suite("broken", "prompt: hi\n")
    with pytest.raises(prompttest.PromptTestError) as caught:
        prompttest.run()
    assert caught.value.exit_code == 2 and caught.value.file and "broken.yaml" in caught.value.file
    assert project.server.count == 0


def test_load_suite_and_load_suites(project: Project) -> None:
    path = project.suite("geo", GEO_SUITE)
    suite = prompttest.load_suite(path)
    assert isinstance(suite, prompttest.Suite)
    assert [case.id for case in suite.cases] == ["france", "japan", "peru"]
    assert [s.name for s in prompttest.load_suites([Path("suites")])] == ["geo"]


def test_passed_means_the_key_does_not_fail_the_run_in_every_mode(project: Project) -> None:
    """`result.passed` agrees with `exit_code`: a `new` key fails a CI run, a `changed` one
    a strict run, though every check of theirs passes."""
    project.suite("geo", GEO_SUITE)
    project.server.reply = replies(ANSWERS)

    gate = prompttest.run(ci=True)
    assert prompttest.exit_code(gate) == 1
    assert {r.key: r.passed for r in gate.results} == {
        "geo/france@fake": False,
        "geo/japan@fake": False,
        "geo/peru@fake": False,
    }
    saved = prompttest.read_run(project.root / ".prompttest" / "runs" / f"{gate.id}.json")
    assert not any(r.passed for r in saved.results)  # the record keeps what the run decided

    local = prompttest.run()  # the same new keys, written: nothing fails
    assert prompttest.exit_code(local) == 0 and all(r.passed for r in local.results)

    project.server.reply = replies({**ANSWERS, "Peru": "Lima, of course."})
    for strict in (False, True):
        record = prompttest.run(ci=True, strict=strict, use_cache=False)
        peru = next(r for r in record.results if r.case == "peru")
        assert peru.verdict is prompttest.Verdict.CHANGED
        # exit_code(record) judges the run as it was made: strict when it ran strict.
        assert peru.passed is not strict and prompttest.exit_code(record) == int(strict)

"""The history store (`.prompttest/history.sqlite`) and `prompttest history`: what each run
adds, import, concurrent writers, broken or foreign files, retention, and no litellm."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import Project, replies

from prompttest.errors import HistoryError
from prompttest.model import Result, Verdict
from prompttest.records.history import SCHEMA_VERSION, append_run, open_history
from prompttest.records.runs import RunRecord

# Prices per token, by model: litellm remembers a model's price process-wide, so a new
# price comes with a model name of its own (the key, `suite/case@target`, stays).
SUITE = """\
    target: {id: fake, model: MODEL, api_base: "{api_base}"}
    params: {input_cost_per_token: PRICE, output_cost_per_token: PRICE, max_tokens: 10}
    prompt: "Say {{ n }}"
    cases:
      - id: one
        vars: {n: one}
        expect: [{contains: uno}]
      - id: two
        vars: {n: two}
"""


def suite(project: Project, model: str = "openai/history-a", price: str = "0.001") -> None:
    project.suite("words", SUITE.replace("MODEL", model).replace("PRICE", price))


def history_file(project: Project) -> Path:
    return project.root / ".prompttest" / "history.sqlite"


def rows(project: Project, query: str, *args: object) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(history_file(project))
    try:
        return conn.execute(query, args).fetchall()
    finally:
        conn.close()


def key_rows(project: Project, run_id: str) -> dict[str, tuple[object, ...]]:
    query = (
        "SELECT case_id, verdict, checks_passed, checks_total, latency_ms, cost_usd, output_hash, output "
        'FROM (SELECT "case" AS case_id, * FROM keys) WHERE run_id = ?'
    )
    return {str(row[0]): row[1:] for row in rows(project, query, run_id)}


def run_ids(project: Project) -> list[str]:
    return [str(row[0]) for row in rows(project, "SELECT id FROM runs ORDER BY started_at, id")]


def test_each_run_adds_its_keys_answers_latency_and_cost(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    suite(project)
    project.server.reply = replies({"one": "uno", "two": "dos"})
    assert project.run("run", capsys=capsys).code == 0
    [first] = run_ids(project)
    keys = key_rows(project, first)
    assert keys["one"][:3] == ("new", 1, 1) and keys["two"][:3] == ("new", 0, 0)
    assert keys["one"][6] == "uno" and keys["two"][6] == "dos"
    cost_one = keys["one"][4]
    assert isinstance(cost_one, float) and cost_one > 0
    assert rows(project, "SELECT schema_version FROM (SELECT value AS schema_version FROM meta)") == [
        (str(SCHEMA_VERSION),)
    ]
    assert rows(project, "PRAGMA journal_mode") == [("wal",)]

    # Second run: a slower server, and case two answers something else.
    project.server.latency = 0.8
    project.server.reply = replies({"one": "uno", "two": "zwei"})
    project.run("run", "--no-cache", capsys=capsys)
    second = run_ids(project)[1]
    keys2 = key_rows(project, second)
    assert keys2["two"][0] == "changed" and keys2["two"][6] == "zwei"
    assert keys2["two"][5] != keys["two"][5] and keys2["one"][5] == keys["one"][5]  # output hashes
    assert all(float(row[3]) >= 800 for row in keys2.values())  # type: ignore[arg-type]

    # Third run: the same answers, at twice the price.
    project.server.latency = 0.0
    suite(project, "openai/history-b", "0.002")
    project.run("run", "--no-cache", capsys=capsys)
    third = run_ids(project)[2]
    keys3 = key_rows(project, third)
    assert keys3["one"][4] == pytest.approx(2 * cost_one)
    assert keys3["two"][5] == keys2["two"][5]
    assert len(run_ids(project)) == 3

    # The trends over those runs.
    data = json.loads(project.run("history", "--format", "json", capsys=capsys).out)
    assert [run["id"] for run in data["runs"]] == [first, second, third]
    [group] = data["groups"]
    assert (group["suite"], group["target"], group["runs"], group["results"]) == ("words", "fake", 3, 6)
    assert group["verdicts"]["new"] == 2 and group["verdicts"]["changed"] == 2  # not accepted
    assert group["latency_ms"]["p95"] >= 800 and group["latency_ms"]["p50"] < 800
    spent = sum(float(row[0]) for row in rows(project, "SELECT cost_usd FROM keys"))  # type: ignore[arg-type]
    assert group["cost_usd"] == pytest.approx(spent) and spent > 0
    text = project.run("history", capsys=capsys)
    assert text.code == 0 and "words" in text.out and "3 run(s)" in text.out

    # One key over time: its output changed in the second run only.
    one_key = json.loads(project.run("history", "--key", "*two*", "--format", "json", capsys=capsys).out)
    [entry] = one_key["keys"]
    assert entry["key"] == "words/two@fake"
    assert [e["output_changed"] for e in entry["history"]] == [False, True, False]
    assert [e["output"] for e in entry["history"]] == ["dos", "zwei", "zwei"]
    shown = project.run("history", "--key", "two", capsys=capsys).out
    assert "zwei" in shown and "* " in shown and "output changed" in shown
    last_two = json.loads(project.run("history", "--last", "2", "--format", "json", capsys=capsys).out)
    assert [run["id"] for run in last_two["runs"]] == [second, third]


def test_import_adds_a_run_once(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    suite(project)
    project.server.reply = replies({"one": "uno", "two": "dos"})
    project.run("run", capsys=capsys)
    project.run("run", "--no-cache", capsys=capsys)
    records = sorted(str(p) for p in (project.root / ".prompttest" / "runs").glob("*.json"))
    history_file(project).unlink()
    for name in ("history.sqlite-wal", "history.sqlite-shm"):
        (project.root / ".prompttest" / name).unlink(missing_ok=True)
    first = project.run("history", "import", *records, capsys=capsys)
    assert first.code == 0 and first.out.count("added") == 2
    again = project.run("history", "import", *records, "last", capsys=capsys)
    assert again.code == 0 and again.out.count("skipped (already there)") == 3
    assert len(run_ids(project)) == 2
    assert rows(project, "SELECT count(*) FROM keys") == [(4,)]


def test_an_unreadable_run_record_imports_nothing(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = project.root / "bad.json"
    bad.write_text("{")
    done = project.run("history", "import", str(bad), capsys=capsys)
    assert done.code == 2 and "not a readable run record" in done.err
    assert not history_file(project).exists()


def test_runs_at_once_all_land(project: Project) -> None:
    suite(project)
    project.server.reply = replies({"one": "uno", "two": "dos"})
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    command = [sys.executable, "-m", "prompttest", "run", "--no-cache"]
    running = [
        subprocess.Popen(command, cwd=project.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    for process in running:
        out, err = process.communicate(timeout=120)
        assert b"history not written" not in out + err
    assert len(run_ids(project)) == 3


def test_writers_in_threads_wait_for_each_other(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"

    def write(worker: int) -> None:
        conn = open_history(path)
        assert conn is not None
        for n in range(10):
            assert append_run(conn, record(f"run-{worker}-{n}")) == "added"
        conn.close()

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    conn = open_history(path)
    assert conn is not None
    assert conn.execute("SELECT count(*) FROM runs").fetchone() == (40,)
    assert conn.execute("SELECT count(*) FROM keys").fetchone() == (40,)


def record(run_id: str, started: datetime | None = None) -> RunRecord:
    when = (started or datetime.now(UTC)).isoformat(timespec="seconds")
    result = Result(suite="s", case="c", target="t", model="m", verdict=Verdict.NEW, output="hi")
    return RunRecord(id=run_id, started_at=when, wall_s=0.1, results=(result,))


def foreign_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE songs (title TEXT)")
    conn.execute("INSERT INTO songs VALUES ('la')")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda path: path.write_bytes(os.urandom(4096)), "not a SQLite database"),
        (foreign_database, "another application's SQLite database"),
    ],
)
def test_a_broken_or_foreign_file_is_refused_and_kept(
    project: Project, capsys: pytest.CaptureFixture[str], make: object, said: str
) -> None:
    path = history_file(project)
    path.parent.mkdir()
    make(path)  # type: ignore[operator]
    before = path.read_bytes()
    done = project.run("history", capsys=capsys)
    assert done.code == 2 and said in done.err and str(path) in done.err and "hint:" in done.err
    assert "Traceback" not in done.err
    suite(project)
    project.server.reply = replies({"one": "uno", "two": "dos"})
    ran = project.run("run", capsys=capsys)
    assert ran.code == 0 and "history not written" in ran.out + ran.err and said in ran.out + ran.err
    imported = project.run("history", "import", "last", capsys=capsys)
    assert imported.code == 2 and said in imported.err
    assert path.read_bytes() == before


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    conn = open_history(path)
    assert conn is not None
    conn.execute("UPDATE meta SET value = '99' WHERE name = 'schema_version'")
    conn.close()
    with pytest.raises(HistoryError, match="schema version 99"):
        open_history(path)


def test_old_runs_are_dropped_as_runs_are_added(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    conn = open_history(history_file(project))
    assert conn is not None
    old = record("20200101T000000-000000-1", datetime.now(UTC) - timedelta(days=120))
    assert append_run(conn, old) == "added"  # kept forever when keep_days is 0
    conn.close()
    suite(project)
    project.server.reply = replies({"one": "uno", "two": "dos"})
    project.run("run", capsys=capsys)
    assert old.id not in run_ids(project) and len(run_ids(project)) == 1
    assert rows(project, "SELECT count(*) FROM keys WHERE run_id = ?", old.id) == [(0,)]
    path = project.root / "old.json"
    path.write_text(old.to_json())
    said = project.run("history", "import", str(path), capsys=capsys).out
    assert "skipped (past history_keep_days)" in said
    (project.root / "pyproject.toml").write_text("[tool.prompttest]\nhistory_keep_days = 0\n")
    assert "added" in project.run("history", "import", str(path), capsys=capsys).out


def test_shard_runs_wait_for_their_merge(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    suite(project)
    project.server.reply = replies({"one": "uno", "two": "dos"})
    shards = []
    for i in (1, 2):
        project.run("run", "--shard", f"{i}/2", capsys=capsys)
        shards.append(sorted((project.root / ".prompttest" / "runs").glob("*.json"))[-1])
    assert not history_file(project).exists()
    assert project.run("merge", *map(str, shards), capsys=capsys).code == 0
    [merged] = run_ids(project)
    assert set(key_rows(project, merged)) == {"one", "two"}


def test_no_history_yet_and_a_bad_day(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    assert "no runs in the history yet" in project.run("history", capsys=capsys).out
    assert not history_file(project).exists()  # reading never creates it
    assert json.loads(project.run("history", "--format", "json", capsys=capsys).out) == {
        "runs": [],
        "groups": [],
    }
    assert project.run("history", "--since", "yesterday", capsys=capsys).code == 2


def test_history_never_imports_litellm(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    from test_cli_commands import probed

    suite(project)
    project.server.reply = replies({"one": "uno", "two": "dos"})
    project.run("run", capsys=capsys)
    for args in (["history"], ["history", "--key", "one", "--format", "json"], ["history", "import", "last"]):
        done, imported = probed(project.root, args)
        assert done.returncode == 0, done.stderr
        assert imported is False


def test_a_record_without_git_or_prices_is_kept_with_nulls(tmp_path: Path) -> None:
    conn = open_history(tmp_path / "history.sqlite")
    assert conn is not None
    plain = replace(record("r1"), options={"ci": True})
    assert append_run(conn, plain) == "added"
    assert conn.execute("SELECT git_commit, git_branch, options FROM runs").fetchone() == (
        None,
        None,
        '{"ci": true}',
    )

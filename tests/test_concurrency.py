"""Two prompttest processes in one project at once: no lost snapshot entries, no shared
run record, a readable cache; and the snapshot lock that makes it so."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import diskcache
import pytest
from conftest import Project

from prompttest.errors import EXIT_USAGE, LockTimeout
from prompttest.records import locking
from prompttest.records.locking import file_lock, lock_path, read_holder, snapshot_lock
from prompttest.records.runs import read_run
from prompttest.records.snapshots import read_snapshot

CASES = 6  # per group; two groups of cases per suite and per process, one group shared


def _suite(project: Project, name: str) -> None:
    rows = "\n".join(
        f"  - id: {group}-{i}\n    vars: {{n: {group}-{i}}}"
        for group in ("a", "b", "shared")
        for i in range(CASES)
    )
    project.suite(
        name,
        f'target: {{id: fake, model: openai/fake, api_base: "{{api_base}}"}}\n'
        f'prompt: "{name} {{{{ n }}}}"\ncases:\n{rows}\n',
    )


def _start(project: Project, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}  # in CI, `run` would write nothing
    return subprocess.Popen(
        [sys.executable, "-m", "prompttest", *args],
        cwd=project.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextmanager
def held_in_a_thread(path: Path) -> Iterator[None]:
    """Hold `path`'s lock from another thread (its own open file, so flock really conflicts)."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with file_lock(path, timeout=5):
            taken.set()
            release.wait(120)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert taken.wait(5)
    try:
        yield
    finally:
        release.set()
        thread.join(5)


def test_two_runs_at_once_keep_every_snapshot_entry_and_their_own_run_records(project: Project) -> None:
    for name in ("one", "two"):
        _suite(project, name)
    project.server.latency = 0.05
    state = project.root / ".prompttest"
    # Hold the snapshot lock while both runs make their calls: both read the (missing)
    # snapshots before either writes, then both wait, then they write one after the other.
    # Without the lock and the re-read under it, the second would drop the first's entries.
    with held_in_a_thread(lock_path(state)):
        # --no-cache: both call their shared keys too, so both write them into the cache.
        first = _start(project, "run", "--no-cache", "-j", "4", "-k", "*/a-*", "-k", "*/shared-*")
        second = _start(project, "run", "--no-cache", "-j", "4", "-k", "*/b-*", "-k", "*/shared-*")
        deadline = time.time() + 90
        while project.server.count < 8 * CASES and time.time() < deadline:
            time.sleep(0.05)
        assert project.server.count == 8 * CASES
        time.sleep(2.5)  # long enough for both to be waiting, and to say so
    results = [child.communicate(timeout=90) for child in (first, second)]
    for child, (out, err) in zip((first, second), results, strict=True):
        assert child.returncode == 0, out + err
        assert "Traceback" not in err
        # Past the quiet first second, each says whom it waits for: here, this test's thread.
        assert f"waiting for another prompttest process (pid {os.getpid()}, since " in err

    for name in ("one", "two"):
        entries = read_snapshot(project.root / "snapshots" / f"{name}.yaml")
        expected = {f"{group}-{i}@fake" for group in ("a", "b", "shared") for i in range(CASES)}
        assert set(entries) == expected
        assert all(entry.output == f"echo: {name} {entry.case}" for entry in entries.values())

    records = sorted((state / "runs").glob("*.json"))
    assert len(records) == 2
    keys = [{result.key for result in read_run(path).results} for path in records]
    assert len({read_run(path).id for path in records}) == 2
    assert sorted(len(k) for k in keys) == [4 * CASES, 4 * CASES]
    assert keys[0] & keys[1] == {f"{name}/shared-{i}@fake" for name in ("one", "two") for i in range(CASES)}

    with diskcache.Cache(str(state / "cache")) as cache:
        assert cache.check() == []  # SQLite and the value files agree
        values = [json.loads(cache[key]) for key in cache.iterkeys()]
    assert len(values) == 6 * CASES  # a, b and shared cases of two suites (shared: written twice)
    assert all(value["text"].startswith("echo: ") for value in values)
    for folder in (project.root / "snapshots", state / "runs"):
        assert not list(folder.glob(".*.tmp"))  # atomic writes left no temporary file behind


def test_a_second_writer_times_out_with_the_holders_pid(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from prompttest.records.locking import snapshot_lock\n"
        "with snapshot_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        start = time.monotonic()
        with pytest.raises(LockTimeout) as caught, snapshot_lock(tmp_path, timeout=0.5):
            pytest.fail("the lock was taken twice")
        assert 0.5 <= time.monotonic() - start < 3
    finally:
        holder.kill()
        holder.wait(10)
    error = caught.value
    assert error.exit_code == EXIT_USAGE
    assert error.file == str(lock_path(tmp_path))
    text = error.render()
    assert f"another prompttest process is updating snapshots (pid {holder.pid}, since " in text
    assert "gave up after 0.5 s" in text
    assert "run this again" in (error.hint or "")
    # The kernel dropped the killed holder's lock: no stale lock to remove by hand.
    with snapshot_lock(tmp_path, timeout=0.5):
        assert read_holder(lock_path(tmp_path)).pid == str(os.getpid())
    assert read_holder(lock_path(tmp_path)).pid == ""  # a released lock names no holder


def test_a_thread_with_its_own_file_waits_for_the_lock_too(tmp_path: Path) -> None:
    path = lock_path(tmp_path)
    with held_in_a_thread(path), pytest.raises(LockTimeout), file_lock(path, timeout=0.2):
        pytest.fail("the lock was taken twice")


@pytest.mark.parametrize(("hold_s", "notice"), [(0.3, False), (1.6, True)])
def test_a_short_wait_says_nothing_and_a_long_one_names_the_holder(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, hold_s: float, notice: bool
) -> None:
    path = lock_path(tmp_path)
    taken = threading.Event()

    def hold() -> None:
        with file_lock(path, timeout=5):
            taken.set()
            time.sleep(hold_s)

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(5)
    with caplog.at_level(logging.WARNING, logger="prompttest"), file_lock(path, timeout=5):
        pass
    holder.join(5)
    said = [record.getMessage() for record in caplog.records]
    assert bool(said) is notice, said
    if notice:
        assert said[0].startswith(f"waiting for another prompttest process (pid {os.getpid()}, since ")


def test_taking_the_lock_again_in_the_same_thread_does_not_deadlock(tmp_path: Path) -> None:
    with snapshot_lock(tmp_path, timeout=0.2), snapshot_lock(tmp_path, timeout=0.2):
        assert read_holder(lock_path(tmp_path)).pid == str(os.getpid())


def test_a_run_that_cannot_get_the_lock_exits_2_and_writes_nothing(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import GEO_SUITE

    project.suite("geo", GEO_SUITE)
    monkeypatch.setattr(locking, "DEFAULT_TIMEOUT_S", 0.3)
    with held_in_a_thread(lock_path(project.root / ".prompttest")):
        outcome = project.run("run", capsys=capsys)
    assert outcome.code == 2
    assert outcome.err.startswith(f"error: {lock_path(project.root / '.prompttest')}: ")
    assert f"another prompttest process is updating snapshots (pid {os.getpid()}, since " in outcome.err
    assert not (project.root / "snapshots").exists()
    assert not list((project.root / ".prompttest" / "runs").glob("*.json"))
    # The answers were cached: once the other process is done, running again calls nothing.
    calls = project.server.count
    assert project.run("run", capsys=capsys).code == 1  # GEO_SUITE's checks fail on echo replies
    assert project.server.count == calls
    assert (project.root / "snapshots" / "geo.yaml").exists()


def test_run_ids_of_two_processes_started_in_the_same_microsecond_differ() -> None:
    from prompttest.session.loop import run_id as _run_id

    started = 1_700_000_000.123456
    code = f"from prompttest.session.loop import run_id as _run_id; print(_run_id({started!r}))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() != _run_id(started)
    assert other.stdout.strip().split("-")[:2] == _run_id(started).split("-")[:2]  # same time prefix

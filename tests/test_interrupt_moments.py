"""A stop signal at any moment of a run: exit 130/143, no snapshot touched, finished calls cached.

Each moment is a real `prompttest run` in a child process, stopped by a real signal while
a busy process loads the CPU: after k finished calls, while the run waits for the snapshot
lock, while it renders the snapshot files (fresh, and with -u over existing ones). Half the
children start with SIGINT ignored, as a background job of a shell script starts.

PROMPTTEST_INTERRUPT_ROUNDS=N repeats every moment N times (the stress form).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from conftest import Project
from fake_server import FakeServer

from prompttest.calls.cache import ResponseCache
from prompttest.records.snapshot_writer import write_snapshot
from prompttest.records.snapshots import Entry, read_snapshot

ROUNDS = int(os.environ.get("PROMPTTEST_INTERRUPT_ROUNDS", "1"))
CASES = 2  # per suite; suites a and b
BIG = ("a line of a long answer that takes a while to render\n" * 40_000)[:-1]  # ~2 MB
CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
STOPPED = "interrupted: finished calls are cached, no snapshot was written"


def _suites(root: Path, url: str) -> None:
    (root / "suites").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text("[tool.prompttest]\n")
    for name, prompt in (("a", "Say {{ n }}"), ("b", "Say big {{ n }}")):
        rows = "".join(f"  - id: c{i}\n    vars: {{n: {i}}}\n" for i in range(CASES))
        target = f'target: {{id: fake, model: openai/fake, api_base: "{url}"}}\n'
        (root / "suites" / f"{name}.yaml").write_text(f'{target}prompt: "{prompt}"\ncases:\n{rows}')


def _reply(request: dict[str, object]) -> str:
    messages = request["messages"]
    assert isinstance(messages, list)
    return BIG if "big" in messages[-1]["content"] else "ok"


def _files(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _cached(root: Path) -> int:
    cache = ResponseCache(root / ".prompttest" / "cache")
    try:
        return int(cache.info()["entries"]) if cache.directory.exists() else 0
    finally:
        cache.close()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as `prompttest run &` in a shell script


@dataclass(frozen=True)
class Moment:
    name: str
    args: tuple[str, ...]
    ready: Callable[[Path, FakeServer, Path], bool]  # root, server, stderr file: send now?
    min_cached: int  # calls that must be in the cache afterwards


def _after_calls(k: int) -> Moment:
    # With -j 1 the (k+1)-th request arrives only once k calls have finished.
    return Moment(f"after {k} call(s)", ("-j", "1"), lambda root, server, err: server.count > k, k)


def _rendering(root: Path, server: FakeServer, err: Path) -> bool:
    return any((root / "snapshots").glob(".b.yaml.*.tmp"))  # b is rendered after a


def _waiting_for_lock(root: Path, server: FakeServer, err: Path) -> bool:
    return "waiting for another prompttest process" in err.read_text()


MOMENTS = [
    *(_after_calls(k) for k in range(2 * CASES)),
    Moment("waiting for the snapshot lock", (), _waiting_for_lock, 2 * CASES),
    Moment("rendering new snapshots", (), _rendering, 2 * CASES),
    Moment("rendering snapshots with -u", ("-u",), _rendering, 2 * CASES),
]


def _env() -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k != "CI" and not k.endswith("_API_KEY")}
    return {k: v for k, v in keep.items() if not k.startswith("PROMPTTEST_")}


def _stop_at(root: Path, server: FakeServer, moment: Moment, stop: signal.Signals, ignore: bool) -> str:
    """Run in `root`, send `stop` at `moment`; returns what went wrong ('' if nothing)."""
    before = _files(root / "snapshots")
    err_path = root / "stderr.txt"
    lock = None
    if moment.ready is _waiting_for_lock:
        lock_file = root / ".prompttest" / "locks" / "snapshots.lock"
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(lock_file, os.O_RDWR | os.O_CREAT)
        fcntl.flock(lock, fcntl.LOCK_EX)  # another writer holds it: the run waits for it
    try:
        with open(root / "stdout.txt", "w") as out, open(err_path, "w") as err:
            child = subprocess.Popen(
                [sys.executable, "-m", "prompttest", "run", *moment.args],
                cwd=root,
                env=_env(),
                stdout=out,
                stderr=err,
                preexec_fn=_ignore_sigint if ignore else None,
            )
            deadline = time.monotonic() + 90
            while child.poll() is None and not moment.ready(root, server, err_path):
                if time.monotonic() > deadline:
                    child.kill()
                    return "the moment never came"
                time.sleep(0.01)
            child.send_signal(stop)
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
                return "the run did not stop"
    finally:
        if lock is not None:
            os.close(lock)
    out_text, err_text = (root / "stdout.txt").read_text(), err_path.read_text()
    problems = []
    if child.returncode != CODES[stop]:
        problems.append(f"exit {child.returncode}, not {CODES[stop]}")
    if STOPPED not in err_text or "Traceback" in err_text:
        problems.append("no one-line interruption message")
    after = _files(root / "snapshots")
    if after != before:
        touched = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
        problems.append(f"snapshots touched: {touched}")
    if _cached(root) < moment.min_cached:
        problems.append(f"only {_cached(root)} of {moment.min_cached} finished calls cached")
    if problems:
        return "; ".join(problems) + f"\n--- stdout\n{out_text[-800:]}\n--- stderr\n{err_text[-800:]}"
    return ""


@pytest.fixture
def cpu_load() -> Iterator[subprocess.Popen[bytes]]:
    """A busy process on the CPU for the test's length (bounded; killed at the end)."""
    spin = "import time\nend = time.time() + 600\nwhile time.time() < end: pass"
    busy = subprocess.Popen([sys.executable, "-c", spin])
    yield busy
    busy.kill()
    busy.wait()


def test_a_stop_signal_at_any_moment_writes_no_snapshot_and_keeps_finished_calls(
    project: Project,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    cpu_load: subprocess.Popen[bytes],
) -> None:
    # One finished run in-process: its cache answers every call of the snapshot-phase moments.
    project.server.reply = _reply
    _suites(project.root, project.server.url)
    assert project.run("run", capsys=capsys).code == 0
    template = tmp_path_factory.mktemp("template")
    shutil.copytree(project.root, template, dirs_exist_ok=True)

    def scenario(index: int, round_: int) -> str:
        moment = MOMENTS[index]
        stop = (signal.SIGINT, signal.SIGTERM)[(index + round_) % 2]
        ignore = (index // 2 + round_) % 2 == 0
        root = tmp_path_factory.mktemp("moment")
        if index < 2 * CASES:  # the calls are made: each needs answers
            server = FakeServer(latency=0.3).start()  # its own, so its count is this run's
            _suites(root, server.url)
        else:
            server = project.server
            shutil.copytree(template, root, dirs_exist_ok=True)
            shutil.rmtree(root / ".prompttest" / "runs", ignore_errors=True)
            if "-u" in moment.args:  # accepted outputs that this run's answers change
                for suite in ("a", "b"):
                    path = root / "snapshots" / f"{suite}.yaml"
                    entries = read_snapshot(path)
                    write_snapshot(path, suite, {k: _older(e) for k, e in entries.items()})
            else:
                shutil.rmtree(root / "snapshots")
        try:
            problem = _stop_at(root, server, moment, stop, ignore)
        finally:
            if server is not project.server:
                server.stop()
        sigint = "SIGINT (ignored at start)" if ignore else "SIGINT"
        name = sigint if stop is signal.SIGINT else "SIGTERM"
        return f"round {round_}, {moment.name}, {name}: {problem}" if problem else ""

    with ThreadPoolExecutor(max_workers=len(MOMENTS)) as pool:
        jobs = [pool.submit(scenario, i, r) for r in range(ROUNDS) for i in range(len(MOMENTS))]
        problems = [p for p in (job.result() for job in jobs) if p]
    assert not problems, "\n\n".join(problems)


def _older(entry: Entry) -> Entry:
    return replace(entry, output="an older accepted answer")

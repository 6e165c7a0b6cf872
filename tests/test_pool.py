"""Calls sent by worker processes (calls/pool.py): the same results and bytes as in-process,
litellm kept out of the run's own process, a worker that dies mid-call retried elsewhere."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Project
from fake_server import FakeServer, Status

from prompttest.calls.faults import ProviderError, RetryPolicy
from prompttest.calls.pool import MIN_CALLS_FOR_POOL, WorkerPool, pool_size
from prompttest.calls.providers import complete
from prompttest.calls.throttle import AdaptiveLimit
from prompttest.model import Call

ROOT = Path(__file__).resolve().parent.parent

SUITE = """\
target: {id: fake, model: openai/fake, api_base: "{api_base}"}
prompt: "Capital of {{ country }}?"
expect:
  - contains: "echo"
cases:
""" + "".join(f"  - id: c{i}\n    vars: {{country: land-{i}}}\n" for i in range(24))

# Runs the CLI, then says whether this process imported litellm.
PROBE = (
    "import atexit, json, sys, runpy\n"
    "atexit.register(lambda: print(json.dumps({'litellm': 'litellm' in sys.modules}), file=sys.stderr))\n"
    "sys.argv = ['prompttest'] + sys.argv[1:]\n"
    "runpy.run_module('prompttest', run_name='__main__', alter_sys=True)\n"
)


def test_pool_size_follows_setting_cores_concurrency_and_run_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("prompttest.calls.pool.usable_cores", lambda: 4)
    assert pool_size(0, concurrency=64, calls=10_000) == 0  # `workers = 0`: in-process
    assert pool_size(3, concurrency=1, calls=1) == 3  # set: as set
    assert pool_size(-1, concurrency=64, calls=MIN_CALLS_FOR_POOL - 1) == 0  # too small to pay
    assert pool_size(-1, concurrency=64, calls=10_000) == 4  # one per core
    assert pool_size(-1, concurrency=16, calls=10_000) == 2  # one per 8 calls in flight
    assert pool_size(-1, concurrency=8, calls=10_000) == 0  # one worker: no gain over this process
    monkeypatch.setattr("prompttest.calls.pool.usable_cores", lambda: 1)
    assert pool_size(-1, concurrency=64, calls=10_000) == 0


def _run(project: Project, workers: str) -> tuple[subprocess.CompletedProcess[str], dict[str, bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMPTTEST_")}
    env |= {"PROMPTTEST_WORKERS": workers, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "run", "-j", "8", "--json", "report.json", "--no-cache"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done, project.tree()


def test_a_pooled_run_gives_the_same_bytes_and_keeps_litellm_out(project: Project) -> None:
    project.suite("geo", SUITE)
    alone, _ = _run(project, "0")  # snapshots written in-process
    assert alone.returncode == 0, alone.stderr
    assert json.loads(alone.stderr.strip().splitlines()[-1]) == {"litellm": True}
    snapshots = project.tree()
    report = json.loads((project.root / "report.json").read_text())
    project.server.reset()

    pooled, after = _run(project, "2")
    assert pooled.returncode == 0, pooled.stderr
    # The run's own process never imported litellm: its workers did the calls.
    assert json.loads(pooled.stderr.strip().splitlines()[-1]) == {"litellm": False}
    assert project.server.count == 24
    # Same outputs, same verdicts (all unchanged against the first run), same snapshot bytes.
    assert {k: v for k, v in after.items() if k.startswith("snapshots/")} == {
        k: v for k, v in snapshots.items() if k.startswith("snapshots/")
    }
    pooled_report = json.loads((project.root / "report.json").read_text())
    assert {r["key"]: r["verdict"] for r in pooled_report["results"]} == {
        r["key"]: "unchanged" for r in report["results"]
    }


def _call(server: FakeServer, n: int) -> Call:
    return Call(
        model="openai/fake",
        messages=({"role": "user", "content": f"question {n}"},),
        params={},
        api_base=server.url,
    )


def test_a_worker_that_dies_mid_call_is_retried_on_another(fake_server: FakeServer) -> None:
    fake_server.latency = 1.0

    async def main() -> list[str]:
        pool = WorkerPool(2)
        await pool.start()
        try:
            policy = RetryPolicy(timeout_s=30, max_attempts=3, base_delay_s=0.01)
            limit = AdaptiveLimit(ceiling=8)
            calls = [
                asyncio.ensure_future(complete(_call(fake_server, n), policy, limit, pool)) for n in range(4)
            ]
            while fake_server.in_flight < 4:  # both workers have calls in flight
                await asyncio.sleep(0.05)
            os.kill(pool.workers[1].pid, signal.SIGKILL)  # a forked one: the first keeps serving
            done = await asyncio.gather(*calls)
            assert pool.workers[0].alive and not pool.workers[1].alive
            assert max(attempts for _, attempts in done) == 2  # the dead worker's calls: once more
            return [output.text for output, _ in done]
        finally:
            await pool.close()

    texts = asyncio.run(main())
    assert texts == [f"echo: question {n}" for n in range(4)]


def test_provider_errors_cross_the_pipe_as_they_are(fake_server: FakeServer) -> None:
    fake_server.script(Status(401))

    async def main() -> ProviderError:
        pool = WorkerPool(1)
        await pool.start()
        try:
            with pytest.raises(ProviderError) as failed:
                await complete(_call(fake_server, 1), RetryPolicy(timeout_s=30), None, pool)
            return failed.value
        finally:
            await pool.close()

    error = asyncio.run(main())
    assert error.status_code == 401 and error.fatal_for_target and not error.retryable


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "one-process-each"])
def test_closing_the_pool_ends_calls_in_flight_and_every_worker(fake_server: FakeServer, fork: bool) -> None:
    fake_server.latency = 30.0

    async def main() -> list[int]:
        pool = WorkerPool(2, fork=fork)
        await pool.start()
        while any(worker.pid is None for worker in pool.workers):  # all ready: a graceful close
            await asyncio.sleep(0.05)
        pending = asyncio.ensure_future(
            pool.request("attempt", _call(fake_server, 1), RetryPolicy(timeout_s=60))
        )
        while fake_server.in_flight < 1:
            await asyncio.sleep(0.05)
        pending.cancel()  # as Ctrl-C does: the worker is told to drop the request
        await asyncio.gather(pending, return_exceptions=True)
        started = asyncio.get_running_loop().time()
        await pool.close()
        assert asyncio.get_running_loop().time() - started < 5  # no wait for the 30 s answer
        assert [process.returncode for process in pool.processes] == ([0] if fork else [0, 0])
        return [worker.pid for worker in pool.workers if worker.pid is not None]

    pids = asyncio.run(main())
    assert len(pids) == 2
    for pid in pids:  # both gone, the forked one included
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_the_workers_setting(tmp_path: Path) -> None:
    from prompttest.config import load_project
    from prompttest.errors import ConfigError

    def workers(value: str, env: dict[str, str] | None = None) -> int:
        (tmp_path / "pyproject.toml").write_text(f"[tool.prompttest]\nworkers = {value}\n")
        return load_project(tmp_path, environ=env or {}).settings.workers

    assert workers('"auto"') == -1
    assert workers("0") == 0
    assert workers("3") == 3
    assert workers("3", {"PROMPTTEST_WORKERS": "auto"}) == -1
    with pytest.raises(ConfigError, match="workers"):
        workers('"many"')
    (tmp_path / "pyproject.toml").write_text("[tool.prompttest]\n")
    assert load_project(tmp_path, environ={}).settings.workers == -1  # auto unless set


def test_only_litellms_request_preparation_runs_on_the_loop_thread() -> None:
    import contextvars
    import functools
    import threading

    from prompttest.calls import litellm_door

    litellm = litellm_door.load_litellm()
    main = sys.modules["litellm.main"]

    async def threads() -> tuple[int, int, bool]:
        loop = asyncio.get_running_loop()
        litellm_door.prepare_requests_inline(loop)
        other = await loop.run_in_executor(None, threading.get_ident)  # e.g. a host name lookup
        context = contextvars.copy_context()
        preparation = functools.partial(context.run, functools.partial(main.completion, model="x"))
        return other, threading.get_ident(), litellm_door._is_request_preparation(preparation)

    other, loop_thread, recognised = asyncio.run(threads())
    assert other != loop_thread  # anything else still goes to a thread
    assert recognised  # what acompletion hands over is run inline
    assert litellm.completion is not None


@pytest.mark.parametrize("after_s", [0.8, 4.0], ids=["while-workers-import", "while-calling"])
def test_ctrl_c_stops_a_pooled_run_at_once_and_quietly(project: Project, after_s: float) -> None:
    project.server.latency = 0.5
    project.suite("geo", SUITE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMPTTEST_")}
    env |= {"PROMPTTEST_WORKERS": "2", "PYTHONPATH": str(ROOT)}
    run = subprocess.Popen(
        [sys.executable, "-m", "prompttest", "run", "-j", "4"],
        cwd=project.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(after_s)
    stopped = time.monotonic()
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=30)
    assert run.returncode == 130, err
    assert time.monotonic() - stopped < 2.0  # a worker still importing litellm is not waited for
    assert "interrupted:" in err
    assert "never retrieved" not in err and "Traceback" not in err

"""Provider calls spread over worker processes, so a large run uses every core.

litellm costs a few milliseconds of CPU per call, and one Python process runs them on one
core. A pool starts `size` workers (`python -m prompttest.calls.worker`); each imports
litellm once and sends the attempts it is given, many at a time, on its own event loop.
The run keeps everything else in its own process: the cache, retries and backoff, the
adaptive limits, the breaker, the budget and the redaction of secrets. A worker only
turns one attempt (a Call) into an Output or a ProviderError.

Frames on the worker's stdin and stdout: a 4-byte big-endian length, then a pickle.
Requests are `(kind, id, *args)`, `("cancel", id)`; replies `(id, ok, value)`, where
`value` is the result or the exception to raise. Closing a worker's stdin stops it.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import pickle
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .faults import ProviderError

# A pool pays for itself only above this many calls: each worker imports litellm
# (seconds of CPU), and a small run is over before that pays back.
MIN_CALLS_FOR_POOL = 200
# Calls in flight that one worker keeps busy (below this, a second worker would idle).
CALLS_PER_WORKER = 8

_FRAME_HEAD = struct.Struct(">I")


def pool_size(setting: int, *, concurrency: int, calls: int) -> int:
    """How many workers a run gets: `setting` when set (0: calls stay in this process),
    else one per core, at most one per CALLS_PER_WORKER calls in flight, none for a small run."""
    if setting >= 0:
        return setting
    if calls < MIN_CALLS_FOR_POOL:
        return 0
    size = min(usable_cores(), -(-concurrency // CALLS_PER_WORKER))
    return size if size >= 2 else 0


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS has no affinity
        return os.cpu_count() or 1


def encode(message: Any) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _FRAME_HEAD.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader) -> Any:
    """The next message; raises IncompleteReadError at the end of the stream."""
    (length,) = _FRAME_HEAD.unpack(await reader.readexactly(_FRAME_HEAD.size))
    return pickle.loads(await reader.readexactly(length))


@dataclass
class _Worker:
    process: asyncio.subprocess.Process
    pending: dict[int, asyncio.Future[Any]] = field(default_factory=dict)
    reading: asyncio.Task[None] | None = None
    alive: bool = True

    def send(self, message: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(encode(message))


class WorkerPool:
    """Worker processes that answer attempts; started by `start`, stopped by `close`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.workers: list[_Worker] = []
        self.ids = itertools.count(1)

    async def start(self) -> None:
        env = dict(os.environ)
        # The workers import this very prompttest, wherever it was imported from.
        package_parent = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
        for _ in range(self.size):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "prompttest.calls.worker",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=env,
                # Out of the terminal's process group: Ctrl-C reaches the run, which stops
                # its workers itself (a worker killed mid-call would look like a failure).
                start_new_session=True,
                limit=2**26,
            )
            worker = _Worker(process)
            worker.reading = asyncio.ensure_future(self._read(worker))
            self.workers.append(worker)

    @property
    def alive(self) -> bool:
        return any(worker.alive for worker in self.workers)

    async def request(self, kind: str, *args: Any) -> Any:
        """Ask the least busy worker; its exception is raised here."""
        live = [worker for worker in self.workers if worker.alive]
        if not live:
            raise ProviderError("every call worker process has exited", retryable=False)
        worker = min(live, key=lambda w: len(w.pending))
        request_id = next(self.ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        worker.pending[request_id] = future
        try:
            worker.send((kind, request_id, *args))
            return await future
        except asyncio.CancelledError:
            if worker.alive:
                worker.send(("cancel", request_id))  # stop its HTTP request too
            raise
        finally:
            worker.pending.pop(request_id, None)

    async def _read(self, worker: _Worker) -> None:
        assert worker.process.stdout is not None
        try:
            while True:
                request_id, ok, value = await read_frame(worker.process.stdout)
                future = worker.pending.get(request_id)
                if future is None or future.done():
                    continue  # cancelled meanwhile
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        except (asyncio.IncompleteReadError, pickle.UnpicklingError, EOFError, ValueError):
            pass
        finally:
            worker.alive = False
            code = worker.process.returncode
            for future in worker.pending.values():
                if not future.done():
                    # Sent again by the run's retries, to another worker.
                    future.set_exception(
                        ProviderError(
                            "a call worker process exited"
                            + (f" (exit code {code})" if code is not None else "")
                            + " while the call was in flight",
                            retryable=True,
                        )
                    )

    async def close(self) -> None:
        """Stop every worker: end of input, then a short wait, then a kill."""
        for worker in self.workers:
            stdin = worker.process.stdin
            if stdin is not None and not stdin.is_closing():
                stdin.close()
        for worker in self.workers:
            try:
                await asyncio.wait_for(worker.process.wait(), timeout=5)
            except (TimeoutError, asyncio.CancelledError):
                _kill(worker.process)
                await worker.process.wait()
            if worker.reading is not None:
                await asyncio.gather(worker.reading, return_exceptions=True)


def _kill(process: asyncio.subprocess.Process) -> None:
    try:
        process.kill()
    except ProcessLookupError:
        pass

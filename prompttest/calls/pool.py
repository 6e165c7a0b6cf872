"""Provider calls spread over worker processes, so a large run uses every core.

litellm costs a few milliseconds of CPU per call, and one Python process runs them on one
core. A pool starts one worker (`python -m prompttest.calls.worker`), which imports litellm and
forks the other `size - 1`; each sends the attempts it is given, many at a time, on its own
event loop.
The run keeps everything else in its own process: the cache, retries and backoff, the
adaptive limits, the breaker, the budget and the redaction of secrets. A worker only
turns one attempt (a Call) into an Output or a ProviderError.

Each worker has a pipe for requests and one for replies, made by the pool. Frames: a
4-byte big-endian length, then a pickle. Requests are `(kind, id, *args)`,
`("cancel", id)`; replies `(id, ok, value)`, where `value` is the result or the exception
to raise; the first reply is `(0, True, pid)`. Closing the request pipe stops a worker.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import pickle
import signal
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
    if os.name != "posix":  # the workers' pipes are handed over as POSIX file descriptors
        return 0
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
    requests: asyncio.WriteTransport
    replies: asyncio.StreamReader
    process: asyncio.subprocess.Process  # it, or the process that forked it
    pid: int | None = None  # told by the worker in its first frame
    pending: dict[int, asyncio.Future[Any]] = field(default_factory=dict)
    reading: asyncio.Task[None] | None = None
    alive: bool = True

    def send(self, message: Any) -> None:
        self.requests.write(encode(message))


class WorkerPool:
    """Worker processes that answer attempts; started by `start`, stopped by `close`.

    One process is started; it imports litellm, then forks the others, which share its
    memory (litellm's ~190 MB is imported and paid for once) and start at once.
    """

    def __init__(self, size: int, *, fork: bool = sys.platform == "linux") -> None:
        self.size = size
        # On Linux one process forks the rest; elsewhere (macOS: fork without exec is unsafe
        # once system frameworks are loaded) each worker is a process of its own.
        self.fork = fork
        self.workers: list[_Worker] = []
        self.ids = itertools.count(1)
        self.processes: list[asyncio.subprocess.Process] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        env = dict(os.environ)
        # The workers import this very prompttest, wherever it was imported from.
        package_parent = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
        ours: list[tuple[int, int, asyncio.subprocess.Process]] = []
        groups = [self.size] if self.fork else [1] * self.size
        for size in groups:
            theirs: list[int] = []
            pipes: list[tuple[int, int]] = []
            for _ in range(size):
                request_read, request_write = os.pipe()
                reply_read, reply_write = os.pipe()
                theirs += [request_read, reply_write]
                pipes.append((request_write, reply_read))
            try:
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "prompttest.calls.worker",
                    ",".join(map(str, theirs)),
                    stdin=asyncio.subprocess.DEVNULL,
                    env=env,
                    pass_fds=theirs,
                    # Out of the terminal's process group: Ctrl-C reaches the run, which stops
                    # its workers itself (a worker killed mid-call would look like a failure).
                    start_new_session=True,
                )
            finally:
                for fd in theirs:
                    os.close(fd)
            self.processes.append(process)
            ours += [(request_write, reply_read, process) for request_write, reply_read in pipes]
        for request_write, reply_read, process in ours:
            requests, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(request_write, "wb"))
            replies = asyncio.StreamReader(limit=2**26)
            await loop.connect_read_pipe(
                lambda r=replies: asyncio.StreamReaderProtocol(r),
                os.fdopen(reply_read, "rb"),  # type: ignore[misc]
            )
            worker = _Worker(requests, replies, process)  # type: ignore[arg-type]
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
        try:
            _, _, worker.pid = await read_frame(worker.replies)
            while True:
                request_id, ok, value = await read_frame(worker.replies)
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
            for future in worker.pending.values():
                if not future.done():
                    # Sent again by the run's retries, to another worker.
                    future.set_exception(
                        ProviderError("a call worker exited while the call was in flight", retryable=True)
                    )

    async def close(self) -> None:
        """Stop every worker: end of input, then a short wait, then a kill."""
        for worker in self.workers:
            worker.requests.close()
        for worker in self.workers:
            if worker.pid is None and worker.alive and worker.process.returncode is None:
                # Still importing litellm (a stop in a run's first seconds): nothing is in
                # flight yet, and it would only see the closed pipe once the import is done.
                worker.process.kill()
        readers = [worker.reading for worker in self.workers if worker.reading is not None]
        try:
            await asyncio.wait_for(asyncio.gather(*readers, return_exceptions=True), timeout=5)
        except (TimeoutError, asyncio.CancelledError):
            for worker in self.workers:
                if worker.alive and worker.pid is not None:
                    _kill(worker.pid)
        for process in self.processes:
            if process.returncode is None:
                try:
                    await asyncio.wait_for(process.wait(), timeout=5)
                except (TimeoutError, asyncio.CancelledError):
                    process.kill()
                    await process.wait()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass

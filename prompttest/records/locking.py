"""One writer of snapshot files at a time, across processes.

Two `prompttest` processes in one project (a `run` in two terminals, a `run` while
`accept` or `review` applies decisions) would otherwise each read a snapshot file, merge
their own results into it and write it back, and the later write would drop the earlier
one's entries. Writers take an exclusive `flock` on `.prompttest/locks/snapshots.lock`.
The kernel releases it when its holder exits, however it exits, so a crashed run never
leaves a stale lock behind.

A second writer waits up to `DEFAULT_TIMEOUT_S` seconds. It says nothing when the lock
comes quickly; after `NOTICE_AFTER_S` it logs one warning naming the holder (the CLI shows
it on stderr, a library user decides through `logging`); when the time is up it raises
`LockTimeout`, a user error (exit 2: nothing was written; the calls it made are cached,
so running again is free). The holder's pid, start time and command are written into the
lock file for that message.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..errors import LockTimeout

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: there is no flock to take
    fcntl = None  # type: ignore[assignment]

DEFAULT_TIMEOUT_S = 30.0
NOTICE_AFTER_S = 1.0
_POLL_S = 0.05

log = logging.getLogger("prompttest")
_held = threading.local()  # paths this thread holds: taking a lock it holds is a no-op


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as written in its lock file (fields are empty when unknown)."""

    pid: str = ""
    since: str = ""
    command: str = ""

    def describe(self) -> str:
        parts = [f"pid {self.pid}" if self.pid else "", f"since {self.since}" if self.since else ""]
        if self.command:
            parts.append(f"`{self.command}`")
        known = ", ".join(p for p in parts if p)
        return f" ({known})" if known else ""


def lock_path(state_dir: Path, name: str = "snapshots") -> Path:
    """`locks/<name>.lock` in the project's state folder (`.prompttest/`)."""
    return state_dir / "locks" / f"{name}.lock"


@contextmanager
def snapshot_lock(state_dir: Path, *, timeout: float | None = None) -> Iterator[None]:
    """Hold the project's snapshot lock for the body: wait up to `timeout` s, then LockTimeout."""
    with file_lock(lock_path(state_dir), timeout=timeout, doing="updating snapshots"):
        yield


@contextmanager
def file_lock(path: Path, *, timeout: float | None = None, doing: str = "working") -> Iterator[None]:
    """An exclusive lock on `path` (created if missing), re-entrant within one thread."""
    held: set[Path] = _held.__dict__.setdefault("paths", set())
    key = path.absolute()
    if fcntl is None or key in held:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, timeout=DEFAULT_TIMEOUT_S if timeout is None else timeout, doing=doing)
        held.add(key)
        try:
            _write_holder(fd)
            yield
        finally:
            held.discard(key)
            os.ftruncate(fd, 0)  # the next reader must not name a holder that has gone
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, *, timeout: float, doing: str) -> None:
    start = time.monotonic()
    noticed = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        waited = time.monotonic() - start
        if waited >= timeout:
            holder = read_holder(path)
            raise LockTimeout(
                f"another prompttest process is {doing}{holder.describe()}; gave up after {timeout:g} s",
                file=str(path),
                hint="wait for it to finish (or stop it), then run this again: answers already "
                "received are cached, so that costs nothing",
            )
        if not noticed and waited >= min(NOTICE_AFTER_S, timeout / 2):
            noticed = True
            log.warning(
                "waiting for another prompttest process%s to finish %s...",
                read_holder(path).describe(),
                doing,
            )
        time.sleep(_POLL_S)


def _write_holder(fd: int) -> None:
    since = datetime.now().astimezone().isoformat(timespec="seconds")
    command = " ".join([_program(), *sys.argv[1:]]) if sys.argv and sys.argv[0] else ""
    text = f"{os.getpid()}\n{since}\n{command[:200]}\n"
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode("utf-8", "replace"), 0)


def _program() -> str:
    """`prompttest` for both the script and `python -m prompttest` (argv[0] is __main__.py)."""
    program = Path(sys.argv[0])
    return program.parent.name if program.name == "__main__.py" else program.name


def read_holder(path: Path) -> Holder:
    """The pid, start time and command written by the lock's holder, as far as known."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return Holder()
    pid, since, command = (lines + ["", "", ""])[:3]
    return Holder(
        pid=pid.strip() if pid.strip().isdigit() else "", since=since.strip(), command=command.strip()
    )

"""Stop signals (Ctrl-C, SIGTERM): remembered the moment they arrive, so none can be lost.

Python turns SIGINT into a KeyboardInterrupt wherever the main thread is (asyncio into a
cancellation of its main task), and either can be swallowed on its way out: by a
library's `except BaseException`, by asyncio.wait_for on Python 3.11 when the awaited call
ends at that moment. A run asks `raise_if_stopped()` before each new call and before it
puts snapshot files in place, so a stop that was swallowed still stops it there.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_received: int | None = None  # the first stop signal while `handling_stops` is on
_left_behind = ""  # what a stop now leaves behind, as the running command says
_cancel: Callable[[], None] | None = None  # while `run_stoppable` runs: cancel its run


class Terminated(KeyboardInterrupt):
    """SIGTERM (a CI job cancelled): stop exactly as on Ctrl-C, but exit 143."""


def _stop_for(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _record(signum: int, frame: FrameType | None) -> None:
    global _received
    if _received is None:
        _received = signum


def _on_stop(signum: int, frame: FrameType | None) -> None:
    _record(signum, frame)
    if _cancel is not None:
        _cancel()  # raising inside the event loop would leave its tasks half-run
        return
    raise _stop_for(signum)


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def handling_stops() -> Iterator[None]:
    """SIGINT and SIGTERM stop the body (KeyboardInterrupt, Terminated), even when SIGINT
    came in ignored (a shell script's background job): a stop sent is a stop meant."""
    global _received, _left_behind
    if not _on_main_thread():  # only the main thread may set handlers
        yield
        return
    _received, _left_behind = None, ""
    previous = {signum: signal.signal(signum, _on_stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _received, _left_behind = None, ""


def received() -> bool:
    """Did a stop signal arrive (while `handling_stops` is on)?"""
    return _received is not None


def run_stoppable(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)`, where a stop signal cancels the run, and is raised once the loop
    is closed (the way asyncio.run treats Ctrl-C, which it does not when SIGINT is ours)."""
    global _cancel

    async def cancellable() -> T:
        global _cancel
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        assert task is not None

        def cancel() -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(task.cancel)

        _cancel = cancel
        return await main

    try:
        return asyncio.run(cancellable())
    except asyncio.CancelledError:
        raise_if_stopped()
        raise
    finally:
        _cancel = None
        raise_if_stopped()  # a cancellation that some await swallowed


def raise_if_stopped() -> None:
    """Raise the stop received earlier, in case the code it interrupted swallowed it."""
    if _received is not None:
        raise _stop_for(_received)


@contextmanager
def deferred() -> Iterator[None]:
    """A stop arriving in the body is raised once the body is done (a few renames that must
    all happen or none); one that arrived before is raised at once, running no body."""
    if not _on_main_thread() or signal.getsignal(signal.SIGINT) is not _on_stop:
        yield
        return
    for signum in STOP_SIGNALS:
        signal.signal(signum, _record)
    try:
        raise_if_stopped()
        yield
    finally:
        for signum in STOP_SIGNALS:
            signal.signal(signum, _on_stop)
    raise_if_stopped()


def note_left_behind(note: str) -> None:
    """Say what a stop from now on leaves behind, and what helps; shown after `interrupted:`."""
    global _left_behind
    _left_behind = note


def left_behind() -> str:
    return _left_behind


def note_snapshots_written() -> None:
    """The run put its snapshot files in place: a stop from now on comes too late for them."""
    note_left_behind("finished calls are cached, the snapshot files were written")

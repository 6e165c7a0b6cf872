"""Files written whole or not at all: a temporary file beside the target, flushed to disk,
then renamed over it. A rewritten file keeps its mode, a new one takes the umask's.

`staged()` puts several files in place together, or none: a stop signal (Ctrl-C) while a
run writes its snapshot files must leave every one of them as it was.
"""

from __future__ import annotations

import contextlib
import filecmp
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TextIO

from .. import stopping


def atomic_write(path: Path, text: str | Iterable[str]) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename over it.

    `text` may come in pieces (an iterable of strings), so a big document is never held whole.
    """

    def fill(handle: TextIO) -> None:
        if isinstance(text, str):
            handle.write(text)
        else:
            handle.writelines(text)

    write_atomically(path, fill)


class Stage:
    """Files written beside their places, all put in place by `commit` or none.

    Each is rendered to a temporary file first and the renames happen together, with stop
    signals held back for their few microseconds.
    """

    def __init__(self) -> None:
        self.moves: list[tuple[str, Path]] = []  # (temporary file, its place)
        self.removals: list[Path] = []

    def commit(self) -> None:
        """Put every file in place (a stop received before this raises, changing nothing)."""
        with stopping.deferred():
            for tmp, path in self.moves:
                os.replace(tmp, path)
            for path in self.removals:
                path.unlink(missing_ok=True)
            self.moves, self.removals = [], []
            stopping.note_snapshots_written()

    def discard(self) -> None:
        """Remove the temporary files not committed."""
        for tmp, _ in self.moves:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self.moves, self.removals = [], []


@contextlib.contextmanager
def staged() -> Iterator[Stage]:
    """A Stage for the body's writes, committed when the body ends without an exception."""
    stage = Stage()
    try:
        yield stage
        stage.commit()
    finally:
        stage.discard()


def write_atomically(
    path: Path, fill: Callable[[TextIO], None], *, keep_if_same: bool = False, stage: Stage | None = None
) -> bool:
    """Write through `fill` atomically; with `keep_if_same`, a file whose bytes would not
    change is left untouched (its time too). Returns True if the file was replaced (with
    `stage`: is to be, when the stage is committed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = ""
    try:
        with stopping.deferred():  # a stop between creating the file and knowing its name would leave it
            fd, tmp = _temporary_beside(path)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if keep_if_same and path.is_file() and filecmp.cmp(tmp, path, shallow=False):
            os.unlink(tmp)
            return False
        if stage is not None:
            stage.moves.append((tmp, path))
        else:
            os.replace(tmp, path)
        return True
    except BaseException:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _temporary_beside(path: Path) -> tuple[int, str]:
    """Create a temporary file beside `path` with the mode the finished file should have.

    A rewritten file keeps its mode; a new one gets what the umask leaves of 0666, as from
    any editor (`tempfile.mkstemp` would make every snapshot and report owner-only).
    """
    try:
        kept: int | None = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        kept = None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)  # the kernel applies the umask
        except FileExistsError:
            continue
        break
    if kept is not None:
        try:
            os.chmod(tmp, kept)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
    return fd, tmp

"""What tells a file apart from the same path rewritten, without reading it."""

from __future__ import annotations

import os
from pathlib import Path

Stamp = tuple[int, int, int]


def stamp(path: Path) -> Stamp | None:
    """Inode, size and modification time (None: no such file). A rewrite through a
    temporary file and a rename (as every writer here does) changes the inode."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns

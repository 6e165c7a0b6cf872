"""Which snapshot files git tracks: in CI, a file git does not track is no committed snapshot.

The CI gate fails on keys without a committed snapshot. A snapshot file left in the working
tree by an earlier step (or by hand) and never committed would otherwise make them pass.
Only asked when the project is in a git repository; elsewhere every file counts.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path


def untracked(root: Path, folder: Path, files: Sequence[Path]) -> list[Path]:
    """The existing `files` (all in `folder`) that git does not track, in the given order.

    Empty when `root` is in no git repository, `folder` is outside it, or git is missing.
    """
    existing = [path for path in files if path.is_file()]
    if not existing:
        return []
    try:
        # Names come relative to `root` (git's working directory here).
        done = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--", str(folder)], capture_output=True, check=False
        )
    except OSError:  # no git: nothing to check against
        return []
    if done.returncode != 0:
        return []  # not a repository, or the snapshots live outside it
    tracked = {(root / os.fsdecode(name)).resolve() for name in done.stdout.split(b"\0") if name}
    return [path for path in existing if path.resolve() not in tracked]

"""Provider responses on disk (diskcache), keyed by everything that shapes them.

The key is `Call.cache_key()`: model, api_base, messages, params and sample index,
never the API key. Values are JSON text, not pickles, so a cache directory from
elsewhere cannot run code here.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from ..model import Call, Output


class ResponseCache:
    """A read/write view of `.prompttest/cache/`; opened on first use."""

    def __init__(self, directory: Path, *, read: bool = True, write: bool = True) -> None:
        self.directory = directory
        self.read = read
        self.write = write
        self._store: Any = None
        # Answers stored through this view carry this tag: a call made twice in one run is
        # read back the second time, even when the cache is not read (--no-cache).
        self._run_tag = uuid.uuid4().hex

    def _open(self) -> Any:
        if self._store is None:
            import diskcache  # light, but only needed once a run touches the cache

            # diskcache's SQLite defaults keep up to 32 MB of pages and map up to 64 MB of the
            # file, which a 10,000-key run fills (~0.8 MB a thousand keys): 2 MB and no
            # mapping keep a run's memory flat, and are no slower for one lookup a key.
            self._store = diskcache.Cache(str(self.directory), sqlite_cache_size=512, sqlite_mmap_size=0)
        return self._store

    def get(self, call: Call) -> Output | None:
        """The cached answer to `call`, or None."""
        found = self.lookup(call) if self.read else None
        return found[0] if found else None

    def lookup(self, call: Call) -> tuple[Output, bool] | None:
        """The answer to `call` from the cache, or stored earlier through this view (then
        with True: not a cache hit, and not marked cached)."""
        if not self.directory.exists() or not (self.read or self.write) or not call.cacheable:
            return None
        raw, tag = self._open().get(call.cache_key(), tag=True)
        this_run = tag == self._run_tag
        if raw is None or not (self.read or this_run):
            return None
        try:
            return Output.from_dict(json.loads(raw), cached=not this_run), this_run
        except (ValueError, KeyError, TypeError):
            return None  # an unreadable entry is a miss, not a crash

    def put(self, call: Call, output: Output) -> None:
        """Store a fresh answer at once, so an interrupted run keeps it."""
        if self.write and call.cacheable:
            self._open().set(call.cache_key(), json.dumps(output.to_dict()), tag=self._run_tag)

    def info(self) -> dict[str, Any]:
        """Where the cache is, how many answers it holds and its size on disk."""
        if not self.directory.exists():
            return {"directory": str(self.directory), "entries": 0, "bytes": 0}
        store = self._open()
        return {"directory": str(self.directory), "entries": len(store), "bytes": store.volume()}

    def clear(self) -> int:
        """Remove every cached answer; returns how many there were."""
        if not self.directory.exists():
            return 0
        return int(self._open().clear())

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

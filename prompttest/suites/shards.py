"""`--shard I/N`: one deterministic slice of the result keys, for N parallel CI jobs.

A key's shard is a hash of the key itself, not its position in the suite: adding,
removing or reordering cases moves no other key to another shard, so each CI job keeps
(and its cache keeps answering) the keys it had.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Shard:
    """Shard `index` of `count` (1-based, as written: `--shard 2/4`)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise ValueError(f"expected I/N with 1 <= I <= N, got {self.index}/{self.count}")

    def to_list(self) -> list[int]:
        """As run records keep it: `[index, count]`."""
        return [self.index, self.count]

    def holds(self, key: str) -> bool:
        """Is this result key (suite/case@target) in this shard?"""
        return shard_of(key, self.count) == self.index


def shard_of(key: str, count: int) -> int:
    """The shard (1..count) a result key belongs to: sha256 of the key, modulo count.

    sha256 rather than `hash()`: Python salts str hashes per process, and every CI job
    must agree on the split.
    """
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def parse_shard(text: str) -> Shard:
    """`"2/4"` -> Shard(2, 4); a ValueError that says what is wrong otherwise."""
    index, sep, count = text.strip().partition("/")
    try:
        numbers = int(index), int(count)
    except ValueError:
        raise ValueError(f"expected I/N such as 2/4, got {text!r}") from None
    return Shard(*numbers)


def from_recorded(value: object) -> Shard | None:
    """The shard a run record's `options.shard` holds (`[i, n]`), or None if it has none."""
    if value is None:
        return None
    if isinstance(value, list) and len(value) == 2 and all(type(x) is int for x in value):
        return Shard(value[0], value[1])
    raise ValueError(f"`options.shard` must be [I, N], got {value!r}")

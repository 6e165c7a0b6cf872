"""Adaptive concurrency: fewer calls in flight while a provider answers 429, more again after.

Additive increase, multiplicative decrease (as TCP does): a 429 halves the limit of its
target, once per round (429s from attempts that started before the last cut say nothing
new: they were sent at the old rate); every `limit` successes in a row raise it by one, up
to `-j`. Limits are per target (model and endpoint), so a throttled judge does not slow
down the model under test.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass
class AdaptiveLimit:
    """How many attempts to one target may be in flight; changes with the target's answers."""

    ceiling: int
    limit: int = 0
    in_flight: int = 0
    lowest: int = 0  # the lowest limit reached: reported, so a slow run explains itself
    cuts: int = 0
    _successes: int = 0
    _last_cut: float = float("-inf")
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def __post_init__(self) -> None:
        self.ceiling = max(1, self.ceiling)
        self.limit = self.lowest = self.ceiling

    @contextlib.asynccontextmanager
    async def attempt(self) -> AsyncIterator[float]:
        """Hold one slot for one attempt; yields when it started (for `rate_limited`)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1
        try:
            yield time.monotonic()
        finally:
            async with self._changed:
                self.in_flight -= 1
                self._changed.notify_all()

    def rate_limited(self, started: float) -> None:
        """A 429 for an attempt that started at `started`: halve the limit, once per round."""
        if started < self._last_cut:
            return
        self.limit = max(1, self.limit // 2)
        self.lowest = min(self.lowest, self.limit)
        self.cuts += 1
        self._successes = 0
        self._last_cut = time.monotonic()

    def succeeded(self) -> None:
        """An answer: after `limit` of them in a row, allow one more in flight."""
        self._successes += 1
        if self._successes >= self.limit and self.limit < self.ceiling:
            self.limit += 1
            self._successes = 0

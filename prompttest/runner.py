"""Answer calls (the suites' and then the judges'): from the cache, else from its provider, N calls in flight.

litellm is imported (by `providers.load_litellm`) only when a call misses the cache,
so a fully cached run never pays for its import.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

from . import embeddings_local
from .cache import ResponseCache
from .local_model import check_available, is_local
from .model import Call, Output
from .providers import ProviderError, RetryPolicy, close_clients, complete
from .throttle import AdaptiveLimit

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Answer:
    """A call's output, or the error that ended it, and what it cost to get."""

    output: Output | None
    error: str | None = None
    attempts: int = 0


@dataclass
class Tally:
    """Counters for the run record, and the spend that --max-cost watches."""

    calls: int = 0  # requests sent, retries included
    cache_hits: int = 0
    spent_usd: float = 0.0
    unpriced: str | None = None  # a model whose cost is unknown: the budget cannot be kept
    throttled: dict[str, int] = field(default_factory=dict)  # model -> fewest calls in flight after 429s


@dataclass(frozen=True)
class CallOptions:
    """How calls are made: the same for the suite's calls and the judges' calls."""

    concurrency: int
    offline: bool
    timeout_s: float
    max_attempts: int
    redact: Callable[[str], str]
    max_cost: float | None = None  # USD for the whole run, shared by every phase


def answer_calls(
    calls: Iterable[Call],
    *,
    cache: ResponseCache,
    options: CallOptions,
    tally: Tally | None = None,
    on_progress: ProgressFn | None = None,
) -> tuple[dict[str, Answer], Tally]:
    """Answers by cache key. Identical calls (same cache key) are made once.

    With `max_cost`, no new call starts once the spend (counted in `tally`, which later
    phases share) reaches it: calls already in flight finish, so the overshoot is at most
    `concurrency` calls; the rest are budget errors.
    """
    unique: dict[str, Call] = {}
    for call in calls:
        unique.setdefault(call.cache_key(), call)
    answers: dict[str, Answer] = {}
    tally = tally or Tally()
    misses: dict[str, Call] = {}
    for key, call in unique.items():
        cached = cache.get(call)
        if cached is not None:
            answers[key] = Answer(cached)
            tally.cache_hits += 1
        elif options.offline:
            answers[key] = Answer(None, error=_offline_miss(call))
        else:
            misses[key] = call
    # A model that cannot run here stops the run before any call, with the fix.
    for model, kind in sorted({(c.model, c.kind) for c in misses.values()}):
        if kind != "embedding":
            check_available(model)
        elif is_local(model):
            embeddings_local.check_available(model)
    progress = _Progress(len(unique), len(answers), on_progress)
    if misses:
        asyncio.run(
            _call_all(misses, answers=answers, tally=tally, cache=cache, options=options, progress=progress)
        )
    return answers, tally


class _Progress:
    def __init__(self, total: int, done: int, report: ProgressFn | None) -> None:
        self.total, self.done, self.report = total, done, report
        self.tick(0)

    def tick(self, n: int = 1) -> None:
        self.done += n
        if self.report is not None:
            self.report(self.done, self.total)


def _offline_miss(call: Call) -> str:
    first = next((m.get("content", "") for m in call.messages if m.get("role") == "user"), "")
    return (
        f"--offline: no cached answer for {call.model} "
        f"(prompt {str(first)[:60]!r}); run once without --offline to fill the cache"
    )


# After this many calls in a row to one target fail for good (each after its retries), the
# target is taken as down: the rest of its calls are not sent (the breaker opens).
BREAKER_AFTER = 5


@dataclass
class _Target:
    """What the run learned about one model at one endpoint while calling it."""

    limit: AdaptiveLimit
    failures_in_a_row: int = 0
    refused: str | None = None  # why its remaining calls are not sent


class _Targets:
    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.by_key: dict[tuple[str, str | None], _Target] = {}

    def of(self, call: Call) -> _Target:
        key = (call.model, call.api_base)
        if key not in self.by_key:
            self.by_key[key] = _Target(limit=AdaptiveLimit(ceiling=self.concurrency))
        return self.by_key[key]


async def _call_all(
    misses: dict[str, Call],
    *,
    answers: dict[str, Answer],
    tally: Tally,
    cache: ResponseCache,
    options: CallOptions,
    progress: _Progress,
) -> None:
    policy = RetryPolicy(timeout_s=options.timeout_s, max_attempts=options.max_attempts)
    slots = asyncio.Semaphore(max(1, options.concurrency))
    max_cost, redact = options.max_cost, options.redact
    # An in-process model answers one call at a time: more in flight would only queue, and
    # the queueing would count as latency (and against the timeout). Its calls get one worker.
    local_models = {
        model
        for model in {c.model for c in misses.values()}
        if is_local(model) or embeddings_local.is_local_embedding(model)
    }
    targets = _Targets(options.concurrency)

    async def one(key: str, call: Call) -> None:
        async with slots:
            target = targets.of(call)
            over_budget = _over_budget(tally, max_cost)
            if target.refused:
                answers[key] = Answer(None, error=f"not called: {target.refused}")
            elif over_budget:
                answers[key] = Answer(None, error=over_budget)
            else:
                answers[key] = await _call_one(call, policy, cache, tally, redact, target)
                if max_cost is not None and answers[key].output is not None:
                    _spend(tally, call, answers[key])
        progress.tick()

    async def worker(lane: Iterator[tuple[str, Call]]) -> None:
        for key, call in lane:  # a shared iterator: each call goes to one worker
            await one(key, call)

    # A fixed pool of workers per lane, not a task per call: 10,000 calls made at once
    # would hold 10,000 coroutines and tasks (~1 KB each) until the last one ends. An
    # in-process model's calls have a lane (and a worker) of their own, so that waiting
    # for it never holds a worker the other calls could use.
    def lane_of(call: Call) -> str | None:
        return call.model if call.model in local_models else None

    def lane(model: str | None) -> Iterator[tuple[str, Call]]:
        return ((key, call) for key, call in misses.items() if lane_of(call) == model)

    workers = []
    for model, size in Counter(lane_of(call) for call in misses.values()).items():
        count = 1 if model is not None else min(max(1, options.concurrency), size)
        shared = lane(model)
        workers += [worker(shared) for _ in range(count)]
    try:
        await asyncio.gather(*workers)
    finally:
        await close_clients()  # litellm keeps an HTTP session per event loop: each run has its own
        tally.throttled |= {
            model: target.limit.lowest for (model, _), target in targets.by_key.items() if target.limit.cuts
        }


def _over_budget(tally: Tally, max_cost: float | None) -> str | None:
    if max_cost is None:
        return None
    if tally.unpriced:
        return f"budget: not called: the cost of {tally.unpriced} is unknown, so --max-cost cannot be kept"
    if tally.spent_usd >= max_cost:
        return f"budget: not called: --max-cost ${max_cost:g} reached (spent ${tally.spent_usd:.4f})"
    return None


def _spend(tally: Tally, call: Call, answer: Answer) -> None:
    cost = answer.output.cost_usd if answer.output else None
    if cost is None:
        tally.unpriced = call.model
    else:
        tally.spent_usd += cost


async def _call_one(
    call: Call,
    policy: RetryPolicy,
    cache: ResponseCache,
    tally: Tally,
    redact: Callable[[str], str],
    target: _Target,
) -> Answer:
    try:
        output, attempts = await complete(call, policy, target.limit)
    except ProviderError as error:
        tally.calls += error.attempts
        message = redact(f"{call.model}: {error.message} (after {error.attempts} attempt(s))")
        target.failures_in_a_row += 1
        if error.fatal_for_target:
            # A wrong key, a missing model, an empty account: every call would fail the same.
            target.refused = target.refused or message
        elif target.failures_in_a_row >= BREAKER_AFTER and not target.refused:
            target.refused = (
                f"{call.model} failed {BREAKER_AFTER} calls in a row, each after its retries; last: {message}"
            )
        return Answer(None, error=message, attempts=error.attempts)
    target.failures_in_a_row = 0
    tally.calls += attempts
    output = replace(output, text=redact(output.text))
    cache.put(call, output)
    return Answer(output, attempts=attempts)

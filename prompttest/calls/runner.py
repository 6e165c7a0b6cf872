"""Answer calls (the suites' and then the judges'): from the cache, else from its provider, N calls in flight.

litellm is imported (by `litellm_door.load_litellm`) only when a call misses the cache,
so a fully cached run never pays for its import.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from ..model import Call, Output, ToolCall
from ..stopping import received as stop_received
from ..stopping import run_stoppable
from .cache import ResponseCache
from .local import embeddings as embeddings_local
from .local.llama import check_available, is_local
from .pool import WorkerPool
from .providers import ProviderError, RetryPolicy, check_model, close_clients, complete, has_price, in_pool
from .throttle import AdaptiveLimit

ProgressFn = Callable[[int, int], None]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Answer:
    """A call's output, or the error that ended it, and what it cost to get."""

    output: Output | None
    error: str | None = None
    attempts: int = 0
    # Another key's call brought it (the same call, in flight or earlier in this run):
    # its cost is that key's to pay.
    reused: bool = False


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
    workers: int = 0  # worker processes that send hosted models' calls (0: this process does)


def answer_stream(
    items: Iterable[T],
    *,
    calls: Callable[[T], Sequence[Call]],
    follow_up: Callable[[T, Mapping[str, Answer]], Sequence[Call]],
    done: Callable[[T, Mapping[str, Answer]], None],
    total: int,
    cache: ResponseCache,
    options: CallOptions,
    on_progress: ProgressFn | None = None,
) -> Tally:
    """Answer each item's calls, then its follow-up calls, round after round (a conversation's
    next turns, then its judges) until it asks for none it has no answer to; then hand it to `done`.

    Items are taken from `items` as workers free up and handed to `done` as soon as their
    answers are in, so a run holds the items in flight, never all of them: memory stays
    flat however many keys a run has. `total` is how many calls the items make (for the
    progress line); follow-up calls are added to it as they appear.

    Identical calls (same cache key) are made once: a call in flight is waited for, one
    answered earlier in this run is read back from the cache (even with read=False).
    With `max_cost`, no new call starts once the spend reaches it: calls already in
    flight finish, so the overshoot is at most `concurrency` calls; the rest are budget
    errors.
    """
    tally = Tally()
    progress = _Progress(total, 0, on_progress)
    asker = _Asker(cache=cache, options=options, tally=tally, progress=progress)

    async def worker(shared: Iterator[T]) -> None:
        for item in shared:  # a shared iterator: each item goes to one worker
            if stop_received():  # a Ctrl-C that some await swallowed must not start more calls
                raise asyncio.CancelledError
            answers = await asker.answer_all(calls(item))
            # Rounds of follow-up calls (a conversation's next turns, then judges) until the
            # item asks nothing it has no answer to.
            while more := [call for call in follow_up(item, answers) if call.cache_key() not in answers]:
                progress.total += len(more)
                answers = {**answers, **await asker.answer_all(more)}
            done(item, answers)

    async def main() -> None:
        shared = iter(items)
        try:
            await asyncio.gather(*(worker(shared) for _ in range(max(1, options.concurrency))))
        finally:
            await close_clients()  # litellm keeps an HTTP session per event loop: each run has its own
            if asker.pool is not None:
                await asker.pool.close()
            tally.throttled |= {
                model: target.limit.lowest
                for (model, _), target in asker.targets.by_key.items()
                if target.limit.cuts
            }

    run_stoppable(main())
    return tally


class _Progress:
    def __init__(self, total: int, done: int, report: ProgressFn | None) -> None:
        self.total, self.done, self.report = total, done, report
        self.tick(0)

    def tick(self, n: int = 1) -> None:
        self.done += n
        if self.report is not None:
            self.report(self.done, max(self.total, self.done))


def _offline_miss(call: Call) -> str:
    # The same text for every miss of a model (the key names the case), so that the report
    # shows the misses as one block with a count rather than one block each.
    return f"--offline: no cached answer for {call.model}; run once without --offline to fill the cache"


# How many answers a run keeps at hand for keys that share a call (see _Asker.recent).
RECENT_ANSWERS = 1024

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


class _Asker:
    """Answers one call at a time, from the cache or its provider, within the run's limits.

    At most `concurrency` provider calls are in flight. An in-process model answers one
    call at a time: more in flight would only queue, and the queueing would count as
    latency (and against the timeout), so each such model has a lane of one.
    """

    def __init__(
        self, *, cache: ResponseCache, options: CallOptions, tally: Tally, progress: _Progress
    ) -> None:
        self.cache, self.options, self.tally, self.progress = cache, options, tally, progress
        self.policy = RetryPolicy(timeout_s=options.timeout_s, max_attempts=options.max_attempts)
        self.targets = _Targets(options.concurrency)
        self.slots = asyncio.Semaphore(max(1, options.concurrency))
        self.local_lanes: dict[str, asyncio.Semaphore] = {}
        self.in_flight: dict[str, asyncio.Future[Answer]] = {}
        # The last answers, by cache key: a call many keys share (a `similar:` check's
        # reference text) is read once, and counted once as a cache hit. Bounded, so
        # memory stays flat; an answer that fell out is read back from the cache.
        self.recent: OrderedDict[str, Answer] = OrderedDict()
        self.ready: dict[tuple[str, str], asyncio.Future[None]] = {}
        self.priced: dict[str, bool] = {}  # model -> its cost will be known (for --max-cost)
        self.pool: WorkerPool | None = None  # started at the first call it can send
        self.pool_started: asyncio.Future[None] | None = None

    async def answer_all(self, calls: Sequence[Call]) -> dict[str, Answer]:
        answers: dict[str, Answer] = {}
        asked: list[tuple[str, Call]] = []
        for call in calls:
            key = call.cache_key()
            # Most answers of a rerun are at hand: no task, no await.
            answer = self.at_hand(key, call)
            if answer is None:
                asked.append((key, call))
            else:
                answers[key] = self.remember(key, answer)
        if len(asked) == 1:
            key, call = asked[0]
            answers[key] = self.remember(key, await self.answer(key, call))
        elif asked:
            got = await asyncio.gather(*(self.answer(key, call) for key, call in asked))
            answers |= {key: self.remember(key, answer) for (key, _), answer in zip(asked, got, strict=True)}
        return answers

    def remember(self, key: str, answer: Answer) -> Answer:
        self.recent[key] = answer
        self.recent.move_to_end(key)
        if len(self.recent) > RECENT_ANSWERS:
            self.recent.popitem(last=False)
        self.progress.tick()
        return answer

    def at_hand(self, key: str, call: Call) -> Answer | None:
        """The answer this run has already, else the cache's; else None (it must be asked)."""
        if key in self.recent:
            return replace(self.recent[key], reused=True)
        if key in self.in_flight:
            return None
        found = self.cache.lookup(call)
        if found is not None:
            output, earlier_this_run = found
            if not earlier_this_run:
                self.tally.cache_hits += 1
            return Answer(output, reused=earlier_this_run)
        if self.options.offline:
            return Answer(None, error=_offline_miss(call))
        return None

    async def answer(self, key: str, call: Call) -> Answer:
        """The answer of a call that is in flight, or else of its provider."""
        pending = self.in_flight.get(key)
        if pending is not None:
            return replace(await asyncio.shield(pending), reused=True)
        return await self.new(key, call)

    async def new(self, key: str, call: Call) -> Answer:
        """Ask the call's provider."""
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.in_flight[key] = future
        try:
            await self.make_ready(call)
            async with self.lane(call):
                answer = await self.fetch(call)
            future.set_result(answer)
        except BaseException as error:
            if isinstance(error, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(error)
                future.exception()  # retrieved: a run that stops here logs no "never retrieved"
            raise
        finally:
            del self.in_flight[key]
        return answer

    async def make_ready(self, call: Call) -> None:
        """A model that cannot run here stops the run before its first call, with the fix."""
        model = (call.model, call.kind)
        if model not in self.ready:  # set before any await: the model's other calls wait for it
            self.ready[model] = _retrieved(asyncio.ensure_future(self.check_ready(call)))
        await asyncio.shield(self.ready[model])

    async def check_ready(self, call: Call) -> None:
        pool = await self.pool_for(call)
        if pool is not None:  # the workers have litellm: this process need not import it
            await pool.request("check", call.model, call.api_base)
        else:
            # Loading an in-process model (or litellm) takes seconds: not on the event loop.
            await asyncio.to_thread(_check_ready, call)

    async def pool_for(self, call: Call) -> WorkerPool | None:
        """The run's worker processes, started the first time a call can use them."""
        if self.options.workers <= 0 or not in_pool(call):
            return None
        if self.pool_started is None:
            self.pool = WorkerPool(self.options.workers)
            self.pool_started = _retrieved(asyncio.ensure_future(self.pool.start()))
        await asyncio.shield(self.pool_started)
        return self.pool

    def lane(self, call: Call) -> asyncio.Semaphore | _Both:
        if is_local(call.model) or embeddings_local.is_local_embedding(call.model):
            return self.local_lanes.setdefault(call.model, asyncio.Semaphore(1))
        cap = call.app.get("concurrency") if call.app else None
        if cap:  # an app target that caps itself: its own lane, within the run's slots
            return _Both(self.local_lanes.setdefault(call.model, asyncio.Semaphore(cap)), self.slots)
        return self.slots

    async def fetch(self, call: Call) -> Answer:
        target = self.targets.of(call)
        if self.options.max_cost is not None and not self.tally.unpriced and call.app is None:
            # A model without a price is known to be one before its first call, not after.
            if call.model not in self.priced:
                pool = await self.pool_for(call)
                self.priced[call.model] = await pool.request("price", call) if pool else has_price(call)
            if not self.priced[call.model]:
                self.tally.unpriced = call.model
        over_budget = _over_budget(self.tally, self.options.max_cost)
        if target.refused:
            return Answer(None, error=f"not called: {target.refused}")
        if over_budget:
            return Answer(None, error=over_budget)
        # make_ready started the pool for the calls it can send; complete() picks those out.
        answer = await _call_one(
            call, self.policy, self.cache, self.tally, self.options.redact, target, self.pool
        )
        if self.options.max_cost is not None and answer.output is not None:
            _spend(self.tally, call, answer)
        return answer


def _retrieved(task: asyncio.Future[None]) -> asyncio.Future[None]:
    """A task awaited through `shield` by many: a run stopped while it is still going must not
    log its failure as "never retrieved" when it ends."""
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    return task


def _check_ready(call: Call) -> None:
    """Raise (with the fix) when the call's model cannot run here or names no provider."""
    if call.app is not None:
        return  # the team's own code: its import or endpoint fails with the call, as its error
    if call.kind == "embedding":
        if is_local(call.model):
            embeddings_local.check_available(call.model)
    else:
        check_available(call.model)
    check_model(call.model, call.api_base)


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
    pool: WorkerPool | None,
) -> Answer:
    try:
        output, attempts = await complete(call, policy, target.limit, pool)
    except ProviderError as error:
        tally.calls += error.attempts
        message = redact(f"{call.model}: {error.message} (after {error.attempts} attempt(s))")
        # A function's or a command's failure is its case's; only an endpoint that keeps
        # failing is taken as down.
        target.failures_in_a_row += 1 if call.app is None or "http" in call.app else 0
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
    output = _redacted(output, redact)
    cache.put(call, output)
    return Answer(output, attempts=attempts)


def _redacted(output: Output, redact: Callable[[str], str]) -> Output:
    """The output with every secret redacted: text, refusal, tool-call arguments and an app's
    metadata (a key echoed into them would otherwise reach the cache and the snapshot)."""
    calls = tuple(
        ToolCall(call.name, redact(call.arguments), valid_json=False)
        if not call.valid_json
        else ToolCall(call.name, json.loads(redact(json.dumps(call.arguments))))
        for call in output.tool_calls
    )
    refusal = redact(output.refusal) if output.refusal is not None else None
    metadata = None if output.metadata is None else json.loads(redact(json.dumps(output.metadata)))
    return replace(output, text=redact(output.text), tool_calls=calls, refusal=refusal, metadata=metadata)


class _Both:
    """Two semaphores held together: a capped target's lane and the run's slots."""

    def __init__(self, first: asyncio.Semaphore, second: asyncio.Semaphore) -> None:
        self.first, self.second = first, second

    async def __aenter__(self) -> None:
        await self.first.acquire()
        try:
            await self.second.acquire()
        except BaseException:
            self.first.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self.second.release()
        self.first.release()

"""`prompttest run --dry-run`: the calls a run would make, what the cache answers, the cost."""

from __future__ import annotations

from dataclasses import dataclass

from .cache import ResponseCache
from .config import Project
from .model import Call
from .session import RunOptions, plan


@dataclass(frozen=True)
class ModelPlan:
    """What a run would do with one model."""

    model: str
    keys: int
    calls: int  # distinct calls (samples included)
    cached: int
    estimated_usd: float | None  # of the calls to make; None when a price is unknown

    @property
    def to_call(self) -> int:
        return self.calls - self.cached


def dry_run(project: Project, options: RunOptions) -> list[ModelPlan]:
    """Plan the run and look every call up in the cache; nothing is called or written."""
    the_plan = plan(project, options)
    keys: dict[str, int] = {}
    calls: dict[str, dict[str, Call]] = {}
    for job in the_plan.jobs:
        keys[job.call.model] = keys.get(job.call.model, 0) + 1
        for call in job.calls():
            calls.setdefault(call.model, {})[call.cache_key()] = call
    cache = ResponseCache(project.cache_dir, read=options.use_cache, write=False)
    try:
        plans = [
            _model_plan(model, keys[model], list(by_key.values()), cache) for model, by_key in calls.items()
        ]
    finally:
        cache.close()
    return plans


def _model_plan(model: str, keys: int, calls: list[Call], cache: ResponseCache) -> ModelPlan:
    misses = [call for call in calls if cache.get(call) is None]
    estimate: float | None = 0.0
    if misses:
        from .providers import estimate_cost  # imports litellm: only when something would be called

        costs = [estimate_cost(call) for call in misses]
        estimate = None if None in costs else sum(c for c in costs if c is not None)
    return ModelPlan(
        model=model, keys=keys, calls=len(calls), cached=len(calls) - len(misses), estimated_usd=estimate
    )

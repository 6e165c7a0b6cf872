"""`prompttest run --dry-run`: the calls a run would make, what the cache answers, the cost."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..calls.cache import ResponseCache
from ..checks import calls_for
from ..config import Project
from ..model import Call, CheckContext
from .options import RunOptions
from .plan import plan


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


@dataclass(frozen=True)
class DryRun:
    """Per model, the calls a run would make; judged checks' calls on outputs not known yet."""

    models: list[ModelPlan]
    unknown_judged: int  # judge/embedding calls that depend on outputs still to be fetched


def dry_run(project: Project, options: RunOptions) -> DryRun:
    """Plan the run and look every call up in the cache; nothing is called or written.

    Judged checks (llm_judge, similar) grade outputs: their calls are listed for outputs
    the cache already holds, and only counted for outputs still to be fetched.
    """
    the_plan = plan(project, options)
    keys: dict[str, int] = {}
    calls: dict[str, dict[str, Call]] = {}
    unknown_judged = 0
    cache = ResponseCache(project.cache_dir, read=options.use_cache, write=False)
    try:
        for job in the_plan.jobs:
            keys[job.call.model] = keys.get(job.call.model, 0) + 1
            for call in job.calls():
                calls.setdefault(call.model, {})[call.cache_key()] = call
                output = cache.get(call)
                ctx = CheckContext(vars=job.vars, messages=job.call.messages)
                if output is not None:  # a judge grades the tool calls too: its call names them
                    ctx = replace(ctx, tool_calls=output.tool_calls, refusal=output.refusal)
                for spec in job.checks:
                    needed = calls_for(spec, output.text if output else "...", ctx)
                    if output is None:
                        unknown_judged += len(needed)
                        continue
                    for judged in needed:
                        keys.setdefault(judged.model, 0)
                        calls.setdefault(judged.model, {})[judged.cache_key()] = judged
        plans = [
            _model_plan(model, keys[model], list(by_key.values()), cache) for model, by_key in calls.items()
        ]
    finally:
        cache.close()
    return DryRun(models=plans, unknown_judged=unknown_judged)


def _model_plan(model: str, keys: int, calls: list[Call], cache: ResponseCache) -> ModelPlan:
    misses = [call for call in calls if cache.get(call) is None]
    estimate: float | None = 0.0
    if misses:
        from ..calls.providers import estimate_cost  # imports litellm: only when something would be called

        costs = [estimate_cost(call) for call in misses]
        estimate = None if None in costs else sum(c for c in costs if c is not None)
    return ModelPlan(
        model=model, keys=keys, calls=len(calls), cached=len(calls) - len(misses), estimated_usd=estimate
    )

"""`prompttest run --dry-run`: the calls a run would make, what the cache answers, the cost."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..calls.cache import ResponseCache
from ..checks import calls_for
from ..config import Project
from ..model import Call, CheckContext, Job
from ..records.snapshots import Entry, read_snapshot, snapshot_path
from ..verdicts.table import Baseline
from .comparing import compare_calls, compare_spec
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
    snapshots = _Snapshots(project)
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
            unknown_judged += _compare_calls(job, snapshots, cache, keys, calls)
        plans = [
            _model_plan(model, keys[model], list(by_key.values()), cache) for model, by_key in calls.items()
        ]
    finally:
        cache.close()
    return DryRun(models=plans, unknown_judged=unknown_judged)


class _Snapshots:
    """The suites' snapshot entries, each file read when a compared key first needs it."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.read: dict[str, dict[str, Entry]] = {}

    def baseline(self, job: Job) -> Baseline | None:
        if job.suite not in self.read:
            self.read[job.suite] = read_snapshot(snapshot_path(self.project.snapshots_dir, job.suite))
        entry = self.read[job.suite].get(f"{job.case}@{job.target}")
        return entry.baseline() if entry else None


def _compare_calls(
    job: Job,
    snapshots: _Snapshots,
    cache: ResponseCache,
    keys: dict[str, int],
    calls: dict[str, dict[str, Call]],
) -> int:
    """The compare judge's calls (two per output that differs from the snapshot's): listed for
    outputs the cache holds; for the others counted as unknown, as if every one will differ."""
    spec = compare_spec(job)
    baseline = snapshots.baseline(job) if spec else None
    if spec is None or baseline is None:
        return 0
    outputs = [cache.get(call) for call in job.calls()]
    if any(output is None for output in outputs):
        return 2 * len(outputs)
    for judged in compare_calls(job, [o for o in outputs if o is not None], baseline):
        keys.setdefault(judged.model, 0)
        calls.setdefault(judged.model, {})[judged.cache_key()] = judged
    return 0


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

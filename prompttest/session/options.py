"""What a run was asked to do: `RunOptions`, built one way from flags and settings.

The CLI, the Python API and `merge` all go through `run_options`, so a flag means the same
and contradictory flags are refused the same way (an OptionsError, exit 2) everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import OptionsError
from ..model.stats import DEFAULT_ALPHA
from ..suites.shards import Shard, parse_shard


@dataclass(frozen=True)
class RunOptions:
    """What `prompttest run` was asked to do. Unset values come from the project settings."""

    paths: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    api_base: str | None = None
    update: bool = False
    ci: bool = False
    strict: bool = False
    concurrency: int | None = None
    timeout: float | None = None
    retries: int | None = None
    use_cache: bool = True
    offline: bool = False
    filters: tuple[str, ...] = ()
    repeat: int | str | None = None  # samples per key (or `auto`), instead of the suites' `repeat:`
    alpha: float = DEFAULT_ALPHA  # significance level of the statistical verdicts
    max_cost: float | None = None  # USD: no new call once the spend reaches it
    safe: bool = False  # suites from untrusted PRs: refuse code, outside files, suite endpoints
    shard: Shard | None = None  # --shard I/N: only the keys of that slice
    # Exactly these result keys (callers that select keys themselves, such as the pytest plugin).
    keys: frozenset[str] | None = None


def run_options(
    *,
    paths: Sequence[str] = (),
    models: Sequence[str] = (),
    api_base: str | None = None,
    update: bool = False,
    ci: bool = False,
    strict: bool = False,
    concurrency: int | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    use_cache: bool = True,
    offline: bool = False,
    filters: Sequence[str] = (),
    repeat: int | str | None = None,
    alpha: float = DEFAULT_ALPHA,
    max_cost: float | None = None,
    safe: bool = False,
    shard: Shard | str | Sequence[int] | None = None,
) -> RunOptions:
    """The one way to build RunOptions: flags that contradict each other are refused here."""
    if ci and update:
        raise OptionsError("--update cannot be used with --ci: the CI gate never writes snapshots")
    if offline and not use_cache:
        raise OptionsError("--offline answers only from the cache; it cannot be used with --no-cache")
    if api_base and not models:
        raise OptionsError("--api-base applies to --model targets: give -m MODEL too")
    return RunOptions(
        paths=tuple(paths),
        models=tuple(models),
        api_base=api_base,
        update=update,
        ci=ci,
        strict=strict,
        concurrency=concurrency,
        timeout=timeout,
        retries=retries,
        use_cache=use_cache,
        offline=offline,
        filters=tuple(filters),
        repeat=repeat,
        alpha=alpha,
        max_cost=max_cost,
        safe=safe,
        shard=_shard(shard),
    )


def _shard(value: Shard | str | Sequence[int] | None) -> Shard | None:
    """A Shard from `--shard 2/4`, the API's "2/4", or a run record's [2, 4]."""
    if value is None or isinstance(value, Shard):
        return value
    if isinstance(value, str):
        return parse_shard(value)
    index, total = value
    return Shard(index, total)


def recorded_options(options: RunOptions) -> dict[str, object]:
    """What a run record keeps of its options (`merge` and `diff` read them back)."""
    return {
        "paths": list(options.paths),
        "models": list(options.models),
        "api_base": options.api_base,
        "strict": options.strict,
        "filters": list(options.filters),
        "offline": options.offline,
        "use_cache": options.use_cache,
        "repeat": options.repeat,
        "alpha": options.alpha,
        "max_cost": options.max_cost,
        "safe": options.safe,
        "shard": options.shard.to_list() if options.shard else None,
    }


def options_from_record(recorded: Mapping[str, object], **overrides: object) -> RunOptions:
    """What selects a recorded run's keys (its suites, models, filters, repeats, --safe), plus
    `overrides`; not its shard: `merge` plans the whole of what the shards split."""
    known = ("paths", "models", "api_base", "filters", "repeat", "safe")
    given = {name: recorded[name] for name in known if recorded.get(name) is not None}
    return run_options(**{**given, **overrides})  # type: ignore[arg-type]

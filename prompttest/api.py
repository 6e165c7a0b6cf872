"""prompttest from Python: what `prompttest run` and `prompttest merge` do, as functions.

    import prompttest

    record = prompttest.run(["suites/geo.yaml"], ci=True)
    failing = [r.key for r in record.results if not r.passed]  # what fails the run, in its mode
    raise SystemExit(prompttest.exit_code(record))

Settings come from the project (`[tool.prompttest]` in the nearest pyproject.toml, from
`project_dir` or the working directory up, then `PROMPTTEST_*` variables); arguments win.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .calls.runner import ProgressFn
from .config import load_project
from .model.stats import DEFAULT_ALPHA
from .records.runs import RunRecord
from .session import run as _run
from .session import run_options
from .session.merge import Merged
from .session.merge import merge_runs as _merge_runs
from .suites.shards import Shard


def run(
    paths: str | Path | Sequence[str | Path] = (),
    *,
    models: Sequence[str] = (),
    api_base: str | None = None,
    update: bool = False,
    ci: bool = False,
    strict: bool = False,
    filters: Sequence[str] = (),
    shard: Shard | str | None = None,
    concurrency: int | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    use_cache: bool = True,
    offline: bool = False,
    repeat: int | str | None = None,
    alpha: float = DEFAULT_ALPHA,
    max_cost: float | None = None,
    safe: bool = False,
    project_dir: str | Path | None = None,
    on_progress: ProgressFn | None = None,
) -> RunRecord:
    """Run suites (files or folders; default: the project's `suites` setting) and return the run.

    The project is found from `project_dir` (else the working directory) up; relative
    `paths` are taken from `project_dir` when it is given.

    As `prompttest run`: snapshots are written locally (new keys; everything with `update`),
    never with `ci`; the run record is written under `.prompttest/runs/`. Pass the record
    to `exit_code` for what the command would exit with. `shard` is `"2/4"` or a Shard.
    Raises a PromptTestError (its `exit_code` is 2 or 3) for a bad suite or config, and an
    OptionsError (also a ValueError) for options that contradict each other.
    """
    options = run_options(
        paths=_paths(paths, project_dir),
        models=models,
        api_base=api_base,
        update=update,
        ci=ci,
        strict=strict,
        concurrency=concurrency,
        timeout=timeout,
        retries=retries,
        use_cache=use_cache,
        offline=offline,
        filters=filters,
        repeat=repeat,
        alpha=alpha,
        max_cost=max_cost,
        safe=safe,
        shard=shard,
    )
    project = load_project(Path(project_dir) if project_dir is not None else None)
    return _run(project, options, on_progress=on_progress).record


def merge_runs(
    runs: Sequence[RunRecord | str | Path],
    *,
    allow_partial: bool = False,
    write: bool = True,
    project_dir: str | Path | None = None,
) -> Merged:
    """Combine shard runs (records, paths or run ids) into one, as `prompttest merge`.

    Returns the merged record (`.record`), where it was written (`.record_path`, unless
    `write=False`) and the warnings of a partial merge. Raises MergeError (exit code 2) for
    runs that overlap, split the keys differently or ran with other options, and for
    missing shards unless `allow_partial`.
    """
    project = load_project(Path(project_dir) if project_dir is not None else None)
    return _merge_runs(project, runs, allow_partial=allow_partial, write=write)


def _paths(paths: str | Path | Sequence[str | Path], project_dir: str | Path | None) -> tuple[str, ...]:
    """As strings; relative ones taken from `project_dir` when it is given (else the working dir)."""
    given = [paths] if isinstance(paths, str | Path) else list(paths)
    base = Path(project_dir) if project_dir is not None else None
    return tuple(str(base / path if base is not None else path) for path in given)

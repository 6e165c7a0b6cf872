"""`prompttest run`: flags in, one call to the core, the verdict table and reports out."""

from __future__ import annotations

import sys

import click

from .. import stopping
from ..suites.shards import Shard
from .options import (
    RepeatType,
    current_project,
    filter_option,
    in_ci,
    report_option,
    safe_option,
    shard_option,
)
from .output import ProgressBar, echo_run, show_dry_run, write_reports


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "-m",
    "--model",
    "models",
    multiple=True,
    metavar="MODEL",
    help="Run against this litellm model instead of the suites' targets (repeatable).",
)
@click.option("--api-base", metavar="URL", help="Endpoint for the --model targets.")
@click.option("-u", "--update", is_flag=True, help="Accept this run's outputs into the snapshots.")
@click.option(
    "--ci/--no-ci",
    default=None,
    help="The CI gate: never write snapshots; new keys fail. Default: on when CI=true.",
)
@click.option(
    "-j",
    "--concurrency",
    type=click.IntRange(1, 1024),
    metavar="N",
    help="Provider calls in flight at once. [default: 8]",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    metavar="SECONDS",
    help="Time limit of one attempt of a call. [default: 60]",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 20),
    metavar="N",
    help="Retries after a 429, 5xx, timeout or broken answer. [default: 3]",
)
@click.option("--no-cache", is_flag=True, help="Do not read cached answers (fresh ones are still cached).")
@click.option("--offline", is_flag=True, help="Never call a provider: a cache miss is an error.")
@filter_option("Only result keys (suite/case@target) matching this glob (repeatable).")
@click.option("--strict", is_flag=True, help="`changed` and `inconclusive` keys fail too.")
@click.option(
    "--repeat",
    type=RepeatType(),
    metavar="N|auto",
    help="Samples per result key (instead of the suites' `repeat:`); each is its own cached call. "
    "`auto`: 10, then more while the comparison with the snapshot is undecided (up to max_repeat, 40).",
)
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.05,
    show_default=True,
    metavar="LEVEL",  # click's default metavar reads "FLOAT RANGE"
    help="Significance level of regressed/improved with repeats.",
)
@click.option(
    "--max-cost",
    type=click.FloatRange(min=0),
    metavar="USD",
    help="Budget: no new call once the spend reaches it; the rest are errors (exit 3).",
)
@safe_option
@shard_option
@click.option(
    "--dry-run",
    is_flag=True,
    help="Show the calls the run would make, what the cache answers and the estimated cost; call nothing.",
)
@report_option("--json", "Write the JSON report here.")
@report_option("--junit", "Write a JUnit XML report here (one testcase per result key).")
@report_option("--markdown", "Write a PR-comment-sized Markdown summary here.")
@report_option("--html", "Write a self-contained HTML report here (filters, search, side-by-side diffs).")
def run(
    paths: tuple[str, ...],
    models: tuple[str, ...],
    api_base: str | None,
    update: bool,
    ci: bool | None,
    concurrency: int | None,
    timeout: float | None,
    retries: int | None,
    no_cache: bool,
    offline: bool,
    filters: tuple[str, ...],
    strict: bool,
    repeat: int | str | None,
    alpha: float,
    max_cost: float | None,
    safe: bool,
    shard: Shard | None,
    dry_run: bool,
    json_path: str | None,
    junit_path: str | None,
    markdown_path: str | None,
    html_path: str | None,
) -> int:
    """Run suites (files or folders; default: suites/) and judge them against the snapshots."""
    from ..errors import OptionsError
    from ..session import exit_code, run_options
    from ..session import run as run_suites

    try:
        options = run_options(
            paths=paths,
            models=models,
            api_base=api_base,
            update=update,
            ci=in_ci() if ci is None else ci,
            strict=strict,
            concurrency=concurrency,
            timeout=timeout,
            retries=retries,
            use_cache=not no_cache,
            offline=offline,
            filters=filters,
            repeat=repeat,
            alpha=alpha,
            max_cost=max_cost,
            safe=safe,
            shard=shard,
        )
    except OptionsError as error:
        raise click.UsageError(error.message) from None
    if dry_run:
        return show_dry_run(current_project(), options)
    stopping.note_left_behind("finished calls are cached, no snapshot was written; run again to resume")
    progress = ProgressBar() if sys.stderr.isatty() else None
    try:
        outcome = run_suites(current_project(), options, on_progress=progress)
    finally:
        if progress:
            progress.close()
    code = exit_code(outcome.record, strict=strict)
    write_reports(
        outcome.record,
        json_path=json_path,
        junit_path=junit_path,
        markdown_path=markdown_path,
        html_path=html_path,
    )
    notes = [f"note: {n}" for n in outcome.notes]
    echo_run(outcome.record, code, notes=notes, snapshots_written=len(outcome.snapshots_written))
    return code


COMMANDS = (run,)

"""The command line: parse options, call one core function, render, return an exit code.

`cli.py` (the group, `run` and the commands on suites), `cli_records.py` (the commands on
run records: diff, review, accept, reject, merge) and `cli_output.py` (what runs print and
write) are the only modules that import click; `main` is the only place where errors
become text. Set PROMPTTEST_DEBUG=1 to get tracebacks of user errors too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from . import __version__, stopping
from .config import Project, load_project

if TYPE_CHECKING:
    from .shards import Shard
from .errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, EXIT_USAGE, PromptTestError
from .stopping import Terminated

F = TypeVar("F", bound=Callable[..., Any])
TRUTHY = {"1", "true", "yes", "on"}


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in TRUTHY


def _project() -> Project:
    return load_project()


_safe_option = click.option(
    "--safe",
    is_flag=True,
    help="For suites from untrusted pull requests: refuse python: checks, files outside the "
    "repository and endpoints set by a suite (exit 2, nothing called).",
)


def _filter_option(help: str) -> Callable[[F], F]:
    """`-k/--filter PATTERN`, repeatable: result keys by glob (see `model.key_matches`)."""
    return click.option("-k", "--filter", "filters", multiple=True, metavar="PATTERN", help=help)


class _ShardType(click.ParamType):
    """`I/N` with 1 <= I <= N, as a Shard; anything else is a usage error (exit 2)."""

    name = "I/N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from .shards import Shard, parse_shard

        if isinstance(value, Shard):
            return value
        try:
            return parse_shard(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


_shard_option = click.option(
    "--shard",
    type=_ShardType(),
    metavar="I/N",
    help="Only slice I of N of the result keys (split by a hash of each key, stable as cases "
    "come and go), for N parallel CI jobs; combine their runs with `prompttest merge`.",
)


def _report_option(flag: str, help: str) -> Callable[[F], F]:
    """`--json PATH` and its siblings: a file path stored as `<name>_path`."""
    return click.option(flag, f"{flag[2:]}_path", type=click.Path(dir_okay=False), metavar="PATH", help=help)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="prompttest")
def cli() -> None:
    """Prompt regression testing: run suites of prompts against any model, check the
    outputs, keep the accepted ones as snapshots in git, and fail CI on regressions.

    \b
    Start with `prompttest init`, then `prompttest run`.
    Exit codes: 0 all good, 1 regressions or failing checks, 2 bad suite, config or
    usage (nothing called, nothing written), 3 errors (provider calls, or checks that
    could not decide), 130/143 interrupted (Ctrl-C/SIGTERM).
    """


@cli.command()
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
@_filter_option("Only result keys (suite/case@target) matching this glob (repeatable).")
@click.option("--strict", is_flag=True, help="`changed` and `inconclusive` keys fail too.")
@click.option(
    "--repeat",
    type=click.IntRange(1, 10000),
    metavar="N",
    help="Samples per result key (instead of the suites' `repeat:`); each is its own cached call.",
)
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.05,
    show_default=True,
    help="Significance level of regressed/improved with repeats.",
)
@click.option(
    "--max-cost",
    type=click.FloatRange(min=0),
    metavar="USD",
    help="Budget: no new call once the spend reaches it; the rest are errors (exit 3).",
)
@_safe_option
@_shard_option
@click.option(
    "--dry-run",
    is_flag=True,
    help="Show the calls the run would make, what the cache answers and the estimated cost; call nothing.",
)
@_report_option("--json", "Write the JSON report here.")
@_report_option("--junit", "Write a JUnit XML report here (one testcase per result key).")
@_report_option("--markdown", "Write a PR-comment-sized Markdown summary here.")
@_report_option("--html", "Write a self-contained HTML report here (filters, search, side-by-side diffs).")
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
    repeat: int | None,
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
    from .session import RunOptions, exit_code
    from .session import run as run_suites

    ci = _in_ci() if ci is None else ci
    if ci and update:
        raise click.UsageError("--update cannot be used with --ci: the CI gate never writes snapshots")
    if offline and no_cache:
        raise click.UsageError("--offline answers only from the cache; it cannot be used with --no-cache")
    if api_base and not models:
        raise click.UsageError("--api-base applies to --model targets: give -m MODEL too")
    options = RunOptions(
        paths=paths,
        models=models,
        api_base=api_base,
        update=update,
        ci=ci,
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
    if dry_run:
        return show_dry_run(_project(), options)
    progress = ProgressBar() if sys.stderr.isatty() else None
    try:
        outcome = run_suites(_project(), options, on_progress=progress)
    finally:
        if progress:
            progress.close()
    record = outcome.record
    code = exit_code(record, strict=strict)
    write_reports(
        record, json_path=json_path, junit_path=junit_path, markdown_path=markdown_path, html_path=html_path
    )
    echo_run(
        record,
        code,
        notes=[f"note: {n}" for n in outcome.notes],
        snapshots_written=len(outcome.snapshots_written),
    )
    return code


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@_safe_option
def validate(paths: tuple[str, ...], safe: bool) -> int:
    """Check suite files (and their cases files) without calling anything.

    Custom checks (`python:`) are imported to check that they exist; with --safe they
    are refused instead.
    """
    from .session import RunOptions, plan

    the_plan = plan(_project(), RunOptions(paths=paths, safe=safe))
    cases = sum(len(suite.cases) for suite in the_plan.suites)
    click.echo(f"ok: {len(the_plan.suites)} suite(s), {cases} case(s), {len(the_plan.jobs)} result key(s)")
    return EXIT_OK


@cli.command(name="list")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("-m", "--model", "models", multiple=True, metavar="MODEL", help="As in `run`.")
@_filter_option("As in `run`.")
@_shard_option
def list_keys(
    paths: tuple[str, ...], models: tuple[str, ...], filters: tuple[str, ...], shard: Shard | None
) -> int:
    """List the result keys (suite/case@target) a run would make, with their models."""
    from .session import RunOptions, plan

    options = RunOptions(paths=paths, models=models, filters=filters, shard=shard)
    the_plan = plan(_project(), options, resolve=False)
    for job in the_plan.jobs:
        click.echo(f"{job.key}\t{job.call.model}")
    return EXIT_OK


@cli.command()
def init() -> int:
    """Scaffold suites/, snapshots/, a [tool.prompttest] config and an example suite."""
    from .scaffold import scaffold

    for line in scaffold(Path.cwd()):
        click.echo(line)
    click.echo("next: `prompttest run`")
    return EXIT_OK


@cli.group()
def cache() -> None:
    """Inspect or clear the response cache (.prompttest/cache/)."""


@cache.command(name="info")
def cache_info() -> int:
    """Where the cache is, how many answers it holds, its size."""
    from .cache import ResponseCache

    info = ResponseCache(_project().cache_dir).info()
    click.echo(f"{info['directory']}: {info['entries']} cached answer(s), {info['bytes'] / 1e6:.1f} MB")
    return EXIT_OK


@cache.command(name="clear")
def cache_clear() -> int:
    """Remove every cached answer (the next run calls the providers again)."""
    from .cache import ResponseCache

    removed = ResponseCache(_project().cache_dir).clear()
    click.echo(f"removed {removed} cached answer(s)")
    return EXIT_OK


# The commands on run records register themselves on `cli`; they need it, hence here.
from . import cli_records  # noqa: E402,F401
from .cli_output import ProgressBar, echo_run, show_dry_run, write_reports  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    """Entry point: run a command, turn user errors into one paragraph and an exit code."""
    with stopping.handling_stops():  # Ctrl-C and SIGTERM, even when SIGINT came in ignored
        code = _run_cli(argv)
    sys.exit(code)


def _run_cli(argv: list[str] | None) -> int:
    try:
        code = cli.main(args=argv, prog_name="prompttest", standalone_mode=False)
    except click.exceptions.Exit as done:  # --help, --version
        code = done.exit_code
    except click.UsageError as error:
        error.show()
        code = EXIT_USAGE
    except (click.Abort, KeyboardInterrupt) as stop:
        if stopping.snapshots_written():  # the stop came after they were put in place
            click.echo("interrupted: finished calls are cached, the snapshot files were written", err=True)
        else:
            click.echo("interrupted: finished calls are cached, no snapshot was written", err=True)
        # click turns a KeyboardInterrupt into Abort, keeping it as the cause
        terminated = isinstance(stop, Terminated) or isinstance(stop.__cause__, Terminated)
        code = EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    except click.ClickException as error:
        error.show()
        code = error.exit_code
    except PromptTestError as error:
        if os.environ.get("PROMPTTEST_DEBUG"):
            raise
        click.echo(error.render(), err=True)
        code = error.exit_code
    return code if isinstance(code, int) else EXIT_OK

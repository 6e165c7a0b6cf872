"""Commands on suite files that call nothing: `validate` and `list`."""

from __future__ import annotations

import click

from ..errors import EXIT_OK
from ..suites.shards import Shard
from .options import current_project, filter_option, safe_option, shard_option


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@safe_option
def validate(paths: tuple[str, ...], safe: bool) -> int:
    """Check suite files (and their cases files) without calling anything.

    Custom checks (`python:`) are imported to check that they exist; with --safe they
    are refused instead.
    """
    from ..session import plan, run_options

    the_plan = plan(current_project(), run_options(paths=paths, safe=safe))
    cases = sum(len(suite.cases) for suite in the_plan.suites)
    click.echo(f"ok: {len(the_plan.suites)} suite(s), {cases} case(s), {len(the_plan.jobs)} result key(s)")
    return EXIT_OK


@click.command(name="list")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("-m", "--model", "models", multiple=True, metavar="MODEL", help="As in `run`.")
@filter_option("As in `run`.")
@shard_option
def list_keys(
    paths: tuple[str, ...], models: tuple[str, ...], filters: tuple[str, ...], shard: Shard | None
) -> int:
    """List the result keys (suite/case@target) a run would make, with their models."""
    from ..session import plan, run_options

    options = run_options(paths=paths, models=models, filters=filters, shard=shard)
    the_plan = plan(current_project(), options, resolve=False)
    for job in the_plan.jobs:
        click.echo(f"{job.key}\t{job.call.model}")
    return EXIT_OK


COMMANDS = (validate, list_keys)

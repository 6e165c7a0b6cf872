"""Commands on the project's workspace: `init` and the response cache."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import EXIT_OK
from .options import current_project


@click.command()
def init() -> int:
    """Scaffold suites/, snapshots/, a [tool.prompttest] config and an example suite."""
    from .scaffold import scaffold

    for line in scaffold(Path.cwd()):
        click.echo(line)
    click.echo("next: `prompttest run`")
    return EXIT_OK


@click.group()
def cache() -> None:
    """Inspect or clear the response cache (.prompttest/cache/)."""


@cache.command(name="info")
def cache_info() -> int:
    """Where the cache is, how many answers it holds, its size."""
    from ..calls.cache import ResponseCache

    info = ResponseCache(current_project().cache_dir).info()
    click.echo(f"{info['directory']}: {info['entries']} cached answer(s), {info['bytes'] / 1e6:.1f} MB")
    return EXIT_OK


@cache.command(name="clear")
def cache_clear() -> int:
    """Remove every cached answer (the next run calls the providers again)."""
    from ..calls.cache import ResponseCache

    removed = ResponseCache(current_project().cache_dir).clear()
    click.echo(f"removed {removed} cached answer(s)")
    return EXIT_OK


COMMANDS = (init, cache)

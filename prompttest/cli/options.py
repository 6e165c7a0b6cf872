"""Options several commands share, and where the project comes from."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..config import Project, load_project

F = TypeVar("F", bound=Callable[..., Any])
TRUTHY = {"1", "true", "yes", "on"}


def in_ci() -> bool:
    """Is CI=true (or 1, yes, on) set, as CI services do?"""
    return os.environ.get("CI", "").strip().lower() in TRUTHY


def current_project() -> Project:
    """The project of the working directory (the nearest pyproject.toml up)."""
    return load_project()


safe_option = click.option(
    "--safe",
    is_flag=True,
    help="For suites from untrusted pull requests: refuse python: checks, files outside the "
    "repository and endpoints set by a suite (exit 2, nothing called).",
)


def filter_option(help: str) -> Callable[[F], F]:
    """`-k/--filter PATTERN`, repeatable: result keys by glob (see `model.key_matches`)."""
    return click.option("-k", "--filter", "filters", multiple=True, metavar="PATTERN", help=help)


class ShardType(click.ParamType):
    """`I/N` with 1 <= I <= N, as a Shard; anything else is a usage error (exit 2)."""

    name = "I/N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from ..suites.shards import Shard, parse_shard

        if isinstance(value, Shard):
            return value
        try:
            return parse_shard(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


shard_option = click.option(
    "--shard",
    type=ShardType(),
    metavar="I/N",
    help="Only slice I of N of the result keys (split by a hash of each key, stable as cases "
    "come and go), for N parallel CI jobs; combine their runs with `prompttest merge`.",
)


def report_option(flag: str, help: str) -> Callable[[F], F]:
    """`--json PATH` and its siblings: a file path stored as `<name>_path`."""
    return click.option(flag, f"{flag[2:]}_path", type=click.Path(dir_okay=False), metavar="PATH", help=help)


class RepeatType(click.ParamType):
    """A number of samples from 1 to 10,000, or `auto`."""

    name = "repeat"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int | str:
        if isinstance(value, int) or str(value).strip().lower() == "auto":
            return value if isinstance(value, int) else "auto"
        try:
            number = int(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a number of samples or 'auto'", param, ctx)
        if not 1 <= number <= 10000:
            self.fail(f"{number} is not in the range 1 to 10000", param, ctx)
        return number

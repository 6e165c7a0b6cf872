"""Commands that publish a run's results: `comment`, the pull request's one comment."""

from __future__ import annotations

import os

import click

from .. import stopping
from ..errors import EXIT_OK, NotPublished


@click.command()
@click.argument("markdown_file", type=click.Path(exists=True, dir_okay=False), metavar="MARKDOWN_FILE")
@click.option(
    "--repo",
    metavar="OWNER/NAME",
    help="The repository. Default: $GITHUB_REPOSITORY (set by GitHub Actions).",
)
@click.option(
    "--pr",
    type=int,
    callback=lambda ctx, param, value: _positive(value),
    metavar="NUMBER",
    help="The pull request. Default: the one of the event in $GITHUB_EVENT_PATH "
    "(pull_request.number, else number).",
)
@click.option(
    "--marker",
    metavar="TEXT",
    help="Keep a comment of this gate's own, its hidden marker naming TEXT (two gates in one "
    "repository, two comments). Default: the one marker `<!-- prompttest -->`.",
)
@click.option(
    "--api-url",
    metavar="URL",
    help="GitHub's REST API. Default: $GITHUB_API_URL, else https://api.github.com.",
)
def comment(
    markdown_file: str, repo: str | None, pr: int | None, marker: str | None, api_url: str | None
) -> int:
    """Post MARKDOWN_FILE (from `run --markdown`) as a comment on the pull request, or update
    the comment posted before: one comment, kept current, found by a hidden marker.

    \b
    The token is read from $GITHUB_TOKEN, never from a flag, and never printed. It needs
    `permissions: pull-requests: write`. Run it whether the gate passed or failed.

    \b
    Exit codes: 0 when the comment was created or updated (one line names it), and 0 with a
    one-line warning when it could not be (no token, a fork's read-only token, a pull
    request not found, GitHub rate limiting or failing after a few retries): commenting
    never turns the gate's result into a failure. 2 only for bad usage (no such file, a
    --repo that is not OWNER/NAME, a plain-http --api-url to another machine).
    """
    from ..publish import marker_for, post_comment, read_summary, read_token, resolve_target

    markdown = read_summary(markdown_file)
    the_marker = marker_for(marker)
    try:
        target = resolve_target(repo=repo, pr=pr, api_url=api_url, environ=os.environ)
        token = read_token(os.environ)
        stopping.note_left_behind("the pull request's comment may not be updated; the gate's result stands")
        posted = post_comment(target, markdown, marker=the_marker, token=token)
    except NotPublished as warning:
        click.echo(warning.render(), err=True)
        return EXIT_OK
    click.echo(f"prompttest comment: {posted.action} {posted.url}")
    return EXIT_OK


def _positive(value: int | None) -> int | None:
    if value is not None and value < 1:
        raise click.BadParameter(f"{value} is not a pull request number (1 or more)")
    return value


COMMANDS = (comment,)

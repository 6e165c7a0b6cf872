"""The `prompttest` group, its commands, and `main`: the one place errors become text.

Set PROMPTTEST_DEBUG=1 to get tracebacks of user errors too.
"""

from __future__ import annotations

import os
import sys

import click

from .. import __version__, stopping
from ..errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, EXIT_USAGE, PromptTestError
from ..stopping import Terminated
from . import history, publish, records, run, suites, workspace


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


for module in (run, suites, workspace, records, history, publish):
    for command in module.COMMANDS:
        cli.add_command(command)


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
        note = stopping.left_behind()  # each command says what a stop leaves behind
        click.echo(f"interrupted: {note}" if note else "interrupted", err=True)
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

"""The command line: parse options, call one core function, render, return an exit code.

Takes argv, gives an exit code. Only this folder imports click. `main` holds the group and is
the only place where errors become text; `run`, `suites`, `workspace`, `records` and
`publish` hold the commands, `options` the flags they share, `output` what runs print and write.
"""

from __future__ import annotations

from .main import cli, main

__all__ = ["cli", "main"]

"""Errors a user can cause. Raised deep, rendered once by the CLI."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # regressions or failing checks
EXIT_USAGE = 2  # bad suite, bad config or bad usage: nothing called, nothing written
EXIT_PROVIDER = 3  # provider calls failed after retries, or a check could not decide
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT)
EXIT_TERMINATED = 143  # SIGTERM


class PromptTestError(Exception):
    """Base of every error a user can cause; carries where it happened and a hint."""

    exit_code = EXIT_USAGE

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.hint = hint

    def render(self) -> str:
        """One paragraph: `file:line: message` then the hint."""
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        text = f"error: {where}{self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class SuiteError(PromptTestError):
    """A suite file (or its cases file) is broken."""


class OptionsError(PromptTestError, ValueError):
    """Options that contradict each other (`--ci` with `--update`): bad usage, nothing run.

    A ValueError too, as the Python API raised before the options were built in one place.
    """


class ConfigError(PromptTestError):
    """pyproject.toml / PROMPTTEST_* settings are broken."""


class SnapshotError(PromptTestError):
    """A snapshot file cannot be read (hand-edited, corrupt, merge markers)."""


class LockTimeout(PromptTestError):
    """Another prompttest process kept the snapshot files locked for longer than we waited.

    Exit 2 like any usage error: nothing was written (the answers received are cached).
    """


class ModelError(PromptTestError):
    """A model string no provider answers to: nothing can be sent, so it is bad usage (exit 2)."""


class ProviderSetupError(PromptTestError):
    """A provider cannot be used at all (extra not installed, unknown local model)."""

    exit_code = EXIT_PROVIDER


class PublishError(PromptTestError):
    """`prompttest comment` called wrongly: its Markdown file unreadable, a --repo that is not
    OWNER/NAME, an API URL the token must not travel to. Usage (exit 2), nothing sent."""


class NotPublished(PromptTestError):
    """A comment that could not be posted (no token, a fork's read-only token, a pull request
    not found, GitHub rate limiting or down): a one-line warning, and exit 0 — commenting
    never turns a gate's result into a failure."""

    exit_code = EXIT_OK

    def render(self) -> str:
        """One line: `warning: prompttest comment: message; hint: hint`."""
        text = f"warning: prompttest comment: {self.message}"
        return f"{text}; hint: {self.hint}" if self.hint else text


class HistoryError(PromptTestError):
    """The history database (`.prompttest/history.sqlite`) cannot be used: not a SQLite file,
    another application's, or written by a newer prompttest. Never overwritten: `history`
    exits 2, and a run only warns (its exit code is its own)."""

"""`--safe`: what a suite from an untrusted pull request may not make prompttest do.

Refused: `python:` checks (they run the PR's code), files read from outside the
repository (case files or suite files reached through `..` or a symlink), settings that
point outside it, and endpoints chosen by the suite (`api_base:` on a target or a judged
check), since the provider key from the environment would be sent there. Everything is
checked before anything is called, and every refusal is named in one message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ..errors import PromptTestError
from ..model import CheckSpec, Suite

HINT = (
    "--safe is for suites from untrusted pull requests; run without it only on suites you trust, "
    "and pass endpoints with --api-base or PROMPTTEST_* variables instead"
)


class SafeModeError(PromptTestError):
    """A suite asked for something --safe refuses (exit 2: nothing was called or written)."""


def inside(path: Path, root: Path) -> bool:
    """Is `path`, with every symlink followed, inside `root`?"""
    return path.resolve().is_relative_to(root.resolve())


def refuse_outside(
    path: Path, root: Path, *, what: str, file: str | None = None, line: int | None = None
) -> None:
    """Stop before reading a file outside the repository."""
    if not inside(path, root):
        raise SafeModeError(
            f"--safe refused: {what} '{path}' is outside the repository ({root.name or root})",
            file=file,
            line=line,
            hint=HINT,
        )


def check_settings(paths: Iterable[tuple[str, str]], root: Path) -> None:
    """Settings that point outside the repository (snapshots, state, suites) are refused."""
    for name, value in paths:
        refuse_outside(root / value, root, what=f"the setting '{name}'")


ENDPOINT_SETTINGS = ("judge_api_base", "embedding_api_base")


def check_endpoint_settings(pyproject: Mapping[str, object], environ: Mapping[str, str], file: str) -> None:
    """pyproject.toml comes with the pull request: an endpoint it sets (and the workflow does
    not override) would receive the provider key."""
    found = [
        name
        for name in ENDPOINT_SETTINGS
        if pyproject.get(name) and f"PROMPTTEST_{name.upper()}" not in environ
    ]
    if found:
        raise SafeModeError(
            f"--safe refused: [tool.prompttest] sets {', '.join(found)} "
            "(the provider key would be sent there)",
            file=file,
            hint=f"set it from the workflow instead (PROMPTTEST_{found[0].upper()}), or run without --safe "
            "only on a pull request you trust",
        )


def check_suites(suites: Sequence[Suite], *, targets: bool = True) -> None:
    """Refuse custom checks and suite-chosen endpoints, naming each with its file and line.

    `targets=False` when the command line replaces the suites' targets (`-m`).
    """
    found = [refusal for suite in suites for refusal in _suite_refusals(suite, targets)]
    if found:
        listed = "; ".join(found[:10]) + (f"; and {len(found) - 10} more" if len(found) > 10 else "")
        raise SafeModeError(f"--safe refused {len(found)} thing(s): {listed}", hint=HINT)


def _suite_refusals(suite: Suite, targets: bool) -> list[str]:
    found = [
        f"{suite.path}: target '{target.id}' sets api_base (the provider key would be sent there)"
        for target in suite.targets
        if target.api_base and targets
    ]
    found += _check_refusals(suite.expect, suite.path)
    for case in suite.cases:
        found += _check_refusals(case.expect, case.file or suite.path)
    return sorted(set(found), key=found.index)  # a suite check repeats in no case, but be sure


def _check_refusals(checks: Iterable[CheckSpec], file: str) -> list[str]:
    found = []
    for check in checks:
        where = f"{file}:{check.line}" if check.line else file
        if check.name == "python":
            found.append(f"{where}: the custom check `python: {check.value}` runs code")
        elif isinstance(check.value, dict) and check.value.get("api_base"):
            found.append(f"{where}: `{check.name}` sets api_base (the provider key would be sent there)")
    return found

"""`--safe`: what a suite from an untrusted pull request may not make prompttest do.

Refused: `python:` checks, tool results and targets, and `exec:` targets (they run the
PR's code), `http:` targets that are not this machine, files read from outside the
repository (case files or suite files reached through `..` or a symlink), settings that
point outside it, and endpoints chosen by the suite (`api_base:` on a target or a judged
check), since the provider key from the environment would be sent there. Everything is
checked before anything is called, and every refusal is named in one message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import PromptTestError
from ..io.urls import is_loopback_url
from ..model import CheckSpec, Suite, Target
from .toolresults import is_python

HINT = (
    "--safe is for suites from untrusted pull requests; run without it only on suites you trust, "
    "and pass endpoints with --api-base or PROMPTTEST_* variables instead"
)


@dataclass(frozen=True)
class Refusal:
    """One thing --safe refuses, and where it is written."""

    what: str
    file: str | None = None
    line: int | None = None

    def render(self) -> str:
        if self.file and self.line:
            return f"{self.file}:{self.line}: {self.what}"
        return f"{self.file}: {self.what}" if self.file else self.what


class SafeModeError(PromptTestError):
    """A suite asked for something --safe refuses (exit 2: nothing was called or written)."""

    def __init__(self, refusals: Sequence[Refusal]) -> None:
        # Every refusal on its own line: the whole pull request is judged in one go.
        listed = "".join(f"\n  {refusal.render()}" for refusal in refusals)
        super().__init__(f"--safe refused {len(refusals)} thing(s):{listed}", hint=HINT)
        self.refusals = tuple(refusals)


def refuse_all(refusals: Sequence[Refusal]) -> None:
    """Raise one SafeModeError naming every refusal, if there is any, file by file (in the
    order they were first named) and by line in each."""
    files: dict[str | None, int] = {}
    for refusal in refusals:
        files.setdefault(refusal.file, len(files))
    if refusals:
        raise SafeModeError(sorted(refusals, key=lambda r: (files[r.file], r.line or 0)))


def inside(path: Path, root: Path) -> bool:
    """Is `path`, with every symlink followed, inside `root`?"""
    return path.resolve().is_relative_to(root.resolve())


def outside_refusal(
    path: Path, root: Path, *, what: str, file: str | None = None, line: int | None = None
) -> Refusal | None:
    """The refusal of a file outside the repository (None: it is inside), named by where it
    really is when a symlink leads there."""
    if inside(path, root):
        return None
    real = path.resolve()
    # Through a symlink, the path in the repository does not say where the file really is.
    linked = real != Path(os.path.normpath(path.absolute()))
    where = f" (it links to '{real}')" if linked else ""
    return Refusal(
        f"{what} '{path}'{where} is outside the repository ({root.name or root})", file=file, line=line
    )


def refuse_outside(
    path: Path, root: Path, *, what: str, file: str | None = None, line: int | None = None
) -> None:
    """Stop before reading a file outside the repository."""
    refuse_all([r for r in [outside_refusal(path, root, what=what, file=file, line=line)] if r])


def setting_lines(path: Path) -> dict[str, int]:
    """The line of each key of [tool.prompttest] in pyproject.toml (tomllib gives none)."""
    lines: dict[str, int] = {}
    table = ""
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        header = re.match(r"\s*\[+\s*([^\]]+?)\s*\]+\s*(#.*)?$", text)
        if header:
            table = header.group(1).replace('"', "").replace(" ", "")
            continue
        key = re.match(r"\s*\"?([A-Za-z0-9_-]+)\"?\s*=", text)
        if key and table == "tool.prompttest":
            lines.setdefault(key.group(1), number)
    return lines


def settings_refusals(
    paths: Iterable[tuple[str, str]],
    root: Path,
    *,
    file: str | None = None,
    lines: Mapping[str, int] | None = None,
) -> list[Refusal]:
    """Settings that point outside the repository (snapshots, state, suites) are refused."""
    lines = lines or {}
    found = []
    for name, value in paths:
        refusal = outside_refusal(root / value, root, what=f"the setting '{name}'")
        if refusal:  # set in pyproject.toml (with its line), else by a PROMPTTEST_* variable
            where = file if name in lines else None
            found.append(Refusal(refusal.what, file=where, line=lines.get(name)))
    return found


ENDPOINT_SETTINGS = ("judge_api_base", "embedding_api_base")


def endpoint_setting_refusals(
    pyproject: Mapping[str, object],
    environ: Mapping[str, str],
    file: str,
    lines: Mapping[str, int] | None = None,
) -> list[Refusal]:
    """pyproject.toml comes with the pull request: an endpoint it sets (and the workflow does
    not override) would receive the provider key."""
    return [
        Refusal(
            f"[tool.prompttest] sets {name} (the provider key would be sent there; "
            f"the workflow may set PROMPTTEST_{name.upper()} instead)",
            file=file,
            line=(lines or {}).get(name),
        )
        for name in ENDPOINT_SETTINGS
        if pyproject.get(name) and f"PROMPTTEST_{name.upper()}" not in environ
    ]


def suite_refusals(suites: Sequence[Suite], *, targets: bool = True) -> list[Refusal]:
    """Custom checks and suite-chosen endpoints, each with its file and line.

    `targets=False` when the command line replaces the suites' targets (`-m`).
    """
    return [refusal for suite in suites for refusal in _suite_refusals(suite, targets)]


def _suite_refusals(suite: Suite, targets: bool) -> list[Refusal]:
    found = [
        Refusal(
            f"target '{target.id}' sets api_base (the provider key would be sent there)",
            file=suite.path,
            line=target.line,
        )
        for target in suite.targets
        if target.api_base and targets
    ]
    found += [
        Refusal(refusal, file=suite.path, line=target.line)
        for target in suite.targets
        if target.app is not None and targets and (refusal := _app_refusal(target))
    ]
    found += _check_refusals(suite.expect, suite.path)
    found += _check_refusals([check for turn in suite.turns or () for check in turn.expect], suite.path)
    found += _tool_result_refusals(suite.tool_results, suite.path, None)
    for case in suite.cases:
        found += _check_refusals(case.expect, case.file or suite.path)
        turn_checks = [check for turn in case.turns or () for check in turn.expect]
        found += _check_refusals(turn_checks, case.file or suite.path)
        found += _tool_result_refusals(case.tool_results, case.file or suite.path, case.line)
    return list(dict.fromkeys(found))  # a suite check repeats in no case, but be sure


def _app_refusal(target: Target) -> str | None:
    """An application target runs the pull request's code, or sends its data out."""
    app = target.app or {}
    if "python" in app or "exec" in app:
        kind = "python" if "python" in app else "exec"
        return f"target '{target.id}' is a {kind}: target ({target.model}): it runs code"
    url = app["http"]["url"]
    if not is_loopback_url(url):
        host = urlsplit(url).hostname or url
        return f"target '{target.id}' sends requests to {host}, not to this machine (loopback)"
    return None


def _tool_result_refusals(
    tool_results: Mapping[str, Any] | None, file: str, line: int | None
) -> list[Refusal]:
    return [
        Refusal(f"the tool result `{name}: {{python: {spec['python']}}}` runs code", file, line)
        for name, spec in (tool_results or {}).items()
        if is_python(spec)
    ]


def _check_refusals(checks: Iterable[CheckSpec], file: str) -> list[Refusal]:
    found = []
    for check in checks:
        if check.name == "python":
            found.append(Refusal(f"the custom check `python: {check.value}` runs code", file, check.line))
        elif isinstance(check.value, dict) and check.value.get("api_base"):
            found.append(
                Refusal(
                    f"`{check.name}` sets api_base (the provider key would be sent there)", file, check.line
                )
            )
    return found

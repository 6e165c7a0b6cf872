"""Settings: `[tool.prompttest]` in pyproject.toml, then `PROMPTTEST_*` variables; flags win.

The project root is the nearest folder, from the working directory up, that holds a
pyproject.toml; without one, the working directory. Relative paths in settings are
relative to the root.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError

EMBEDDED_TARGET = "local/gemma-3-270m"


@dataclass(frozen=True)
class Settings:
    """Every setting with its default; each field can be set in pyproject or the env."""

    target: str = EMBEDDED_TARGET  # used by suites that name no target
    concurrency: int = 8
    timeout: float = 60.0  # seconds per attempt
    retries: int = 3  # retries after the first attempt, on 429/5xx/timeouts/bad bodies
    suites: tuple[str, ...] = ("suites",)
    snapshots: str = "snapshots"
    state: str = ".prompttest"  # cache and run records
    judge: str = ""  # the model of llm_judge checks that name none
    judge_api_base: str = ""
    embedding: str = ""  # the model of `similar` checks; none: they compare lexically
    # `compare:` for every suite that sets none (a rubric), and the judge of comparisons that
    # name none (defaults to `judge`).
    compare: str = ""
    compare_judge: str = ""
    embedding_api_base: str = ""
    # Worker processes that send hosted models' calls: "auto" (-1) picks by cores, -j and
    # the run's size; 0 keeps every call in the run's own process.
    workers: int = -1
    # Runs older than this are dropped from .prompttest/history.sqlite as runs are added; 0 keeps all.
    history_keep_days: int = 90

    @property
    def max_attempts(self) -> int:
        return self.retries + 1


@dataclass(frozen=True)
class Project:
    """Where the project is, and its settings."""

    root: Path
    settings: Settings

    @property
    def snapshots_dir(self) -> Path:
        return self.root / self.settings.snapshots

    @property
    def cache_dir(self) -> Path:
        return self.root / self.settings.state / "cache"

    @property
    def state_dir(self) -> Path:
        return self.root / self.settings.state

    @property
    def runs_dir(self) -> Path:
        return self.root / self.settings.state / "runs"

    def suite_paths(self) -> list[Path]:
        return [self.root / p for p in self.settings.suites]


def find_root(start: Path | None = None) -> Path:
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return here


def load_project(start: Path | None = None, environ: Mapping[str, str] | None = None) -> Project:
    """Find the root and read its settings (pyproject, then environment)."""
    root = find_root(start)
    settings = Settings()
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        settings = _apply(settings, read_pyproject(pyproject), source=str(pyproject))
    env = os.environ if environ is None else environ
    from_env = {
        f.name: env[f"PROMPTTEST_{f.name.upper()}"]
        for f in fields(Settings)
        if f"PROMPTTEST_{f.name.upper()}" in env
    }
    settings = _apply(settings, from_env, source="environment (PROMPTTEST_*)")
    return Project(root=root, settings=settings)


def read_pyproject(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read pyproject.toml: {exc}", file=str(path)) from None
    section = data.get("tool", {}).get("prompttest", {})
    if not isinstance(section, dict):
        raise ConfigError("[tool.prompttest] must be a table", file=str(path))
    return section


def _apply(settings: Settings, values: Mapping[str, Any], *, source: str) -> Settings:
    known = {f.name: f for f in fields(Settings)}
    changes: dict[str, Any] = {}
    for name, raw in values.items():
        if name not in known:
            raise ConfigError(f"unknown setting '{name}'", file=source, hint=_unknown_hint(name, known))
        changes[name] = _convert(name, raw, type(getattr(Settings(), name)), source)
    return replace(settings, **changes)


def _unknown_hint(name: str, known: Mapping[str, Any]) -> str:
    """The known settings, led by the one a typo most likely meant."""
    listing = f"known settings: {', '.join(sorted(known))}"
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"did you mean '{close[0]}'? {listing}" if close else listing


def _convert(name: str, raw: Any, kind: type, source: str) -> Any:
    try:
        if kind is tuple:
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            return tuple(str(item).strip() for item in items if str(item).strip())
        if name == "workers" and raw == "auto":
            return -1
        if kind is int and not isinstance(raw, bool):
            number = int(raw)
            if number < (1 if name == "concurrency" else 0):
                raise ValueError("too small")
            return number
        if kind is float:
            seconds = float(raw)
            if seconds <= 0:
                raise ValueError("must be positive")
            return seconds
        if kind is str and isinstance(raw, str) and raw:
            return raw
    except (TypeError, ValueError):
        pass
    raise ConfigError(
        f"setting '{name}' has a wrong value: {raw!r}",
        file=source,
        hint=f"'{name}' takes a {kind.__name__}",
    )

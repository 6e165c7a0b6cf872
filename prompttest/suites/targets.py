"""A suite's targets: models (a litellm model string, or one with its own id, endpoint and
params) and applications (`python:`, `http:`, `exec:`), each with an id unique in the suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import SuiteError
from ..io.yamlsource import Lines, YamlPath
from ..model import Target
from ..model.inputs import APP_KINDS, app_name
from .offers import offers_of


def read_targets(data: dict[str, Any], lines: Lines, file: str, here: Path) -> tuple[Target, ...]:
    """`target:` or `targets:`; the id is `id` or the model string, unique, no `@`."""
    if "target" in data:
        entries: list[tuple[YamlPath, Any]] = [(("target",), data["target"])]
    else:
        entries = [(("targets", i), t) for i, t in enumerate(data.get("targets", []))]
    targets: list[Target] = []
    first_line: dict[str, int | None] = {}
    for path, value in entries:
        if isinstance(value, str):
            target = Target(id=value, model=value)
        elif any(kind in value for kind in APP_KINDS):
            target = _app_target(value, lines, path, file, here)
        else:
            if "model" not in value:
                raise SuiteError(
                    "a target needs model:, or one of python:, http:, exec: (an application)",
                    file=file,
                    line=lines.get(path),
                    hint="targets: [openai/gpt-4o-mini, {id: app, python: myapp.assistant:answer}]",
                )
            target = Target(
                id=value.get("id", value["model"]),
                model=value["model"],
                api_base=value.get("api_base"),
                params={
                    **value.get("params", {}),
                    **offers_of(value, lines, path, file=file, suite_dir=here),
                },
                line=lines.get((*path, "api_base")) or lines.get(path),
            )
        line = lines.get(path)
        if "@" in target.id or any(c.isspace() for c in target.id):
            raise SuiteError(
                f"target id '{target.id}' must not contain '@' or spaces",
                file=file,
                line=line,
                hint="result keys are suite/case@target; give the target an id:",
            )
        if target.id in first_line:
            raise SuiteError(
                f"duplicate target id '{target.id}' (lines {first_line[target.id]} and {line})",
                file=file,
                line=line,
                hint="give one of them its own id: {id: ..., model: ...}",
            )
        first_line[target.id] = line
        targets.append(target)
    return tuple(targets)


def _app_target(value: dict[str, Any], lines: Lines, path: YamlPath, file: str, here: Path) -> Target:
    """An application target: exactly one of python:, http:, exec:, and an id to key it by."""
    kinds = [kind for kind in APP_KINDS if kind in value]
    problem = None
    if len(kinds) > 1 or "model" in value or "api_base" in value:
        problem = "a target is one of model:, python:, http:, exec:, not several"
    elif "id" not in value:
        problem = f"a {kinds[0]}: target needs an id: (its results are keyed by it)"
    if problem:
        raise SuiteError(
            problem, file=file, line=lines.get(path), hint="e.g. {id: app, python: myapp.assistant:answer}"
        )
    app = {kinds[0]: value[kinds[0]]}
    return Target(
        id=value["id"],
        model=app_name(app),
        params={**value.get("params", {}), **offers_of(value, lines, path, file=file, suite_dir=here)},
        line=lines.get(path),
        app=app,
        cache=value.get("cache", False),
        concurrency=value.get("concurrency"),
    )

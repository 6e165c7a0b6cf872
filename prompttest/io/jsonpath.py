"""A small JSONPath subset, no dependency: `$`, `.name`, `['name']` / `["name"]` and
`[index]` (negative counts from the end).

Shared by the stages that look into JSON: the `json_path` and tool checks, and application
targets that name where their service's answer is (`output: $.answer`); it lives here so
that `calls` and `checks` use one parser without importing each other.
"""

from __future__ import annotations

import functools
import re
from typing import Any

Step = str | int

_DOT_NAME = re.compile(r"[^.\[\]\s'\"*]+")
_INDEX = re.compile(r"\[\s*(-?\d+)\s*\]")
_QUOTED = re.compile(r"""\[\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*\]""")


class PathSyntaxError(ValueError):
    """A json_path `path` outside the supported subset."""


def _bracket_step(path: str, pos: int) -> tuple[Step, int]:
    index = _INDEX.match(path, pos)
    if index:
        return int(index[1]), index.end()
    quoted = _QUOTED.match(path, pos)
    if quoted:
        raw = quoted[1] if quoted[1] is not None else quoted[2]
        return re.sub(r"\\(.)", r"\1", raw), quoted.end()
    raise PathSyntaxError(f"expected [index] or ['name'] at position {pos}")


def _dot_step(path: str, pos: int) -> tuple[Step, int]:
    name = _DOT_NAME.match(path, pos + 1)
    if name is None:
        if path.startswith(("..", ".*"), pos):
            raise PathSyntaxError(f"{path[pos : pos + 2]!r} is not supported (position {pos})")
        raise PathSyntaxError(f"expected a name after '.' at position {pos}")
    return name[0], name.end()


@functools.lru_cache(maxsize=256)
def parse_path(path: str) -> tuple[Step, ...]:
    """Split `$.a['b'][0]` into steps ('a', 'b', 0); PathSyntaxError when unsupported."""
    if not path.startswith("$"):
        raise PathSyntaxError("must start with '$'")
    steps: list[Step] = []
    pos = 1
    while pos < len(path):
        if path[pos] == ".":
            step, pos = _dot_step(path, pos)
        elif path[pos] == "[":
            step, pos = _bracket_step(path, pos)
        else:
            raise PathSyntaxError(f"unexpected {path[pos]!r} at position {pos}")
        steps.append(step)
    return tuple(steps)


def format_path(steps: tuple[Step, ...]) -> str:
    """The canonical text of steps, used to say how far a lookup got."""
    parts = ["$"]
    for step in steps:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif _DOT_NAME.fullmatch(step):
            parts.append(f".{step}")
        else:
            parts.append(f"[{step!r}]")
    return "".join(parts)


def _kind(node: Any) -> str:
    kinds = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if node is None:
        return "null"
    return kinds.get(type(node), "a number")


class PathNotFound(Exception):
    """A path step that leads nowhere; the message says where and why."""


def _step_into(node: Any, step: Step, where: str) -> Any:
    """One step down; raises PathNotFound naming where and why the path stops."""
    if isinstance(step, str):
        if not isinstance(node, dict):
            raise PathNotFound(f"{where} is {_kind(node)}")
        if step not in node:
            raise PathNotFound(f"{where} has no {step!r}")
        return node[step]
    if not isinstance(node, list):
        raise PathNotFound(f"{where} is {_kind(node)}")
    if not -len(node) <= step < len(node):
        raise PathNotFound(f"{where} has {len(node)} items")
    return node[step]


def resolve_path(data: Any, steps: tuple[Step, ...]) -> Any:
    """The value at `steps` in `data`; PathNotFound names where and why the path stops."""
    node = data
    for depth, step in enumerate(steps):
        node = _step_into(node, step, format_path(steps[:depth]))
    return node

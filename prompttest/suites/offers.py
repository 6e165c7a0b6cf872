"""What a call offers the model besides its messages: `tools`, `tool_choice`, `response_format`.

Written at suite, target or case level (or inside `params`), they are merged like params
and go to litellm as OpenAI's API takes them, so they are part of the cache key and of
the `request` hash. `tools` may name a JSON or YAML file, relative to the suite. Each
tool definition and each JSON Schema in them is checked here, at load time: a broken
one is a file:line error before anything is called.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import SuiteError
from ..io.yamlsource import Lines, YamlPath, line_of, load_yaml_file

OFFERS = ("tools", "tool_choice", "response_format")
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TOOL_FORM = "{type: function, function: {name: get_weather, description: ..., parameters: {JSON Schema}}}"
_TOOL_CHOICES = ("auto", "none", "required")
_FORMATS = ("text", "json_object", "json_schema")


def offers_of(
    node: dict[str, Any], lines: Lines, path: YamlPath, *, file: str, suite_dir: Path
) -> dict[str, Any]:
    """The offers of a suite, target or case mapping (and of its `params`), checked, with a
    `tools` file read: what to merge into that level's params."""
    found: dict[str, Any] = {}
    params = node.get("params") if isinstance(node.get("params"), dict) else {}
    for place, holder in ((path + ("params",), params), (path, node)):
        for key in OFFERS:
            if key in holder:
                where = _Where(file, lines, place + (key,))
                found[key] = _checked(key, holder[key], where, suite_dir)
    return found


class _Where:
    """A node's place, for errors: the file and the lines of the document it is in."""

    def __init__(self, file: str, lines: Lines, path: YamlPath) -> None:
        self.file, self.lines, self.path = file, lines, path

    def error(self, message: str, *, at: YamlPath = (), hint: str | None = None) -> SuiteError:
        return SuiteError(message, file=self.file, line=line_of(self.lines, self.path + at), hint=hint)


def _checked(key: str, value: Any, where: _Where, suite_dir: Path) -> Any:
    if key == "tools":
        if isinstance(value, str):
            value, where = _tools_file(suite_dir / value, where)
        return _tools(value, where)
    if key == "tool_choice":
        return _tool_choice(value, where)
    return _response_format(value, where)


def _tools_file(path: Path, where: _Where) -> tuple[Any, _Where]:
    if not path.is_file():
        raise where.error(
            f"tools file '{path.as_posix()}' does not exist",
            hint="tools: takes a list of tool definitions, or a JSON/YAML file of one, relative to the suite",
        )
    data, lines = load_yaml_file(path)  # JSON is YAML: one reader, with lines, for both
    if isinstance(data, dict) and "tools" in data:
        return data["tools"], _Where(str(path), lines, ("tools",))
    return data, _Where(str(path), lines, ())


def _tools(value: Any, where: _Where) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise where.error("tools must be a non-empty list of tool definitions", hint=f"each one: {TOOL_FORM}")
    names: dict[str, int] = {}
    for index, tool in enumerate(value):
        name = _tool(tool, where, (index,))
        if name in names:
            twice = f"tool '{name}' is defined twice (items {names[name] + 1} and {index + 1})"
            raise where.error(twice, at=(index,))
        names[name] = index
    return value


def _tool(tool: Any, where: _Where, at: YamlPath) -> str:
    """Check one OpenAI-style tool definition; return its name."""
    if not isinstance(tool, dict) or not isinstance(tool.get("function"), dict):
        raise where.error("a tool definition must be a mapping with a 'function'", at=at, hint=TOOL_FORM)
    if tool.get("type", "function") != "function":
        raise where.error(f"tool type must be 'function', got {tool.get('type')!r}", at=at + ("type",))
    function = tool["function"]
    name = function.get("name")
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        raise where.error(
            "a tool has no name" if name is None else f"tool name {name!r} is not valid",
            at=at + ("function",),
            hint="a tool's function needs a name of 1 to 64 letters, digits, _ or -",
        )
    if "parameters" in function:
        what = f"tool '{name}' parameters"
        _schema(function["parameters"], where, at + ("function", "parameters"), what=what)
    return name


def _tool_choice(value: Any, where: _Where) -> Any:
    if value in _TOOL_CHOICES:
        return value
    function = value.get("function") if isinstance(value, dict) else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return value
    raise where.error(
        f"tool_choice must be one of {', '.join(_TOOL_CHOICES)} or a function to call, got {value!r}",
        hint="tool_choice: {type: function, function: {name: get_weather}}",
    )


def _response_format(value: Any, where: _Where) -> Any:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in _FORMATS:
        raise where.error(
            f"response_format must be a mapping whose type is one of {', '.join(_FORMATS)}",
            hint="response_format: {type: json_schema, json_schema: {name: answer, schema: {...}}}",
        )
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or "schema" not in spec:
            raise where.error(
                "response_format json_schema needs a name and a schema",
                at=("json_schema",),
                hint="json_schema: {name: answer, schema: {type: object, properties: {...}}, strict: true}",
            )
        _schema(spec["schema"], where, ("json_schema", "schema"), what="response_format schema")
    return value


def _schema(schema: Any, where: _Where, at: YamlPath, *, what: str) -> None:
    """A JSON Schema that the 2020-12 metaschema accepts (the one checks use too)."""
    from jsonschema import Draft202012Validator, SchemaError

    if not isinstance(schema, dict | bool):
        raise where.error(f"{what} must be a JSON Schema (a mapping)", at=at)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        message = f"{what} is not a valid JSON Schema at {exc.json_path}: {exc.message}"
        raise where.error(message, at=at) from None

"""Tool checks: which tools the model called, in what order, with what arguments.

They read `ctx.tool_calls` (and `ctx.tools`, `ctx.finish_reason`), never the output text.
Arguments that were not valid JSON fail every check that looks at arguments. Paths in
reasons are relative to the arguments: `city`, `location.city`, `tags[0]`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

from prompttest.checks import CheckFailure, quote, register, shorten
from prompttest.checks.structure import (
    SCHEMA_REASON_LIMIT,
    _prepare_json_path,
    _prepare_schema,
    _validator,
    json_equal,
)
from prompttest.io.jsonpath import PathNotFound, format_path, parse_path, resolve_path
from prompttest.model import CheckContext, CheckError, ToolCall, canonical_json

CONDITIONS = ("json_schema", "equals", "contains", "json_path")
_TOOL_ARGS_KEYS = ("name", "all", *CONDITIONS)

# ---------------------------------------------------------------- helpers


def _names(ctx: CheckContext) -> list[str]:
    return [call.name for call in ctx.tool_calls]


def _called(ctx: CheckContext) -> str:
    """What was called, for a reason: `called: a, b` or `no tool was called`."""
    names = _names(ctx)
    return f"called: {', '.join(names)}" if names else "no tool was called"


def _times(count: int) -> str:
    return "1 time" if count == 1 else f"{count} times"


def _tool_name(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return f"expected a tool name, got {quote(value)}"
    return None


def _schema_problem(schema: Any, data: Any) -> str | None:
    """Why `data` does not validate against `schema` (the best match, short), or None."""
    from jsonschema.exceptions import best_match
    from referencing.exceptions import Unresolvable

    try:
        error = best_match(_validator(canonical_json(schema)).iter_errors(data))
    except Unresolvable as exc:
        raise CheckFailure(f"schema reference cannot be resolved: {exc}") from exc
    return None if error is None else shorten(f"{error.json_path}: {error.message}", SCHEMA_REASON_LIMIT)


def _not_json(call: ToolCall) -> str:
    return f"arguments are not valid JSON: {quote(call.arguments)}"


# ---------------------------------------------------------------- tool_called, no_tool_call


def _prepare_tool_called(value: Any) -> str | None:
    if isinstance(value, str):
        return _tool_name(value)
    if not isinstance(value, dict) or "name" not in value or not set(value) <= {"name", "times"}:
        return f"expected a tool name or {{name: <tool>, times: <n>}}, got {quote(value)}"
    times = value.get("times", 1)
    if isinstance(times, bool) or not isinstance(times, int) or times < 0:
        return f"times must be a non-negative integer, got {quote(times)}"
    return _tool_name(value["name"])


def _tool_called_label(value: Any, nth: int) -> str:
    """`tool_called: get_weather`, `tool_called: get_weather 2 times`: read as a sentence."""
    if isinstance(value, str) or "times" not in value:
        return f"tool_called: {value if isinstance(value, str) else value['name']}"
    return f"tool_called: {value['name']} {_times(value['times'])}"


@register("tool_called", prepare=_prepare_tool_called, label=_tool_called_label)
def tool_called(output: str, value: str | dict[str, Any], ctx: CheckContext) -> tuple[bool, str]:
    """A call to the tool is present; with `times`, exactly that many calls to it."""
    name, times = (value, None) if isinstance(value, str) else (value["name"], value.get("times"))
    count = _names(ctx).count(name)
    if times is not None:
        reason = f"{name} called {_times(count)}"
        return (True, reason) if count == times else (False, f"{reason}, expected {times}")
    if count:
        return True, f"{name} called {_times(count)}"
    return False, f"{name} not called; {_called(ctx)}"


def _prepare_true(value: Any) -> str | None:
    return None if value is True else f"expected true, got {quote(value)}"


@register("no_tool_call", prepare=_prepare_true)
def no_tool_call(output: str, value: bool, ctx: CheckContext) -> tuple[bool, str]:
    """The answer has no tool call at all."""
    if not ctx.tool_calls:
        return True, "no tool was called"
    count = len(ctx.tool_calls)
    return False, f"expected no tool call, got {count}: {', '.join(_names(ctx))}"


# ---------------------------------------------------------------- tool_args: conditions


def _where(steps: tuple[str | int, ...]) -> str:
    """A place inside the arguments: `city`, `location.city`, `tags[0]`; the root is `arguments`."""
    return format_path(steps)[1:].removeprefix(".") or "arguments"


def _difference(got: Any, want: Any, steps: tuple[str | int, ...], *, partial: bool) -> str | None:
    """The first place where `got` differs from `want`, or None when they agree.

    `partial` (contains): only the keys of `want` count, and a mapping nested in it is
    itself partial; lists are always compared whole, item by item.
    """
    if isinstance(got, dict) and isinstance(want, dict):
        return _dict_difference(got, want, steps, partial=partial)
    if isinstance(got, list) and isinstance(want, list):
        if len(got) != len(want):
            return f"{_where(steps)} has {len(got)} items, expected {len(want)}"
        for index, (item, wanted) in enumerate(zip(got, want, strict=True)):
            problem = _difference(item, wanted, (*steps, index), partial=False)
            if problem:
                return problem
        return None
    if json_equal(got, want):
        return None
    return f"{_where(steps)} is {quote(got)}, expected {quote(want)}"


def _dict_difference(
    got: dict[str, Any], want: dict[str, Any], steps: tuple[str | int, ...], *, partial: bool
) -> str | None:
    for key, wanted in want.items():
        if key not in got:
            return f"{_where((*steps, key))} is missing, expected {quote(wanted)}"
        problem = _difference(got[key], wanted, (*steps, key), partial=partial)
        if problem:
            return problem
    extra = None if partial else next((key for key in got if key not in want), None)
    if extra is not None:
        return f"{_where((*steps, extra))} is {quote(got[extra])}, expected it absent"
    return None


def _path_difference(arguments: Any, value: dict[str, Any]) -> str | None:
    path, want = value["path"], value["equals"]
    try:
        got = resolve_path(arguments, parse_path(path))
    except PathNotFound as exc:
        return f"{path} not found: {exc}"
    return None if json_equal(got, want) else f"{path} is {quote(got)}, expected {quote(want)}"


# Each condition: why the arguments fail it (None: they pass), and what a pass says.
_CONDITION_FNS: dict[str, Callable[[Any, Any], str | None]] = {
    "json_schema": lambda arguments, schema: _schema_problem(schema, arguments),
    "equals": lambda arguments, want: _difference(arguments, want, (), partial=False),
    "contains": lambda arguments, want: _difference(arguments, want, (), partial=True),
    "json_path": _path_difference,
}
_CONDITION_PASSED: dict[str, Callable[[Any], str]] = {
    "json_schema": lambda schema: "arguments match the JSON schema",
    "equals": lambda want: f"arguments equal {quote(want)}",
    "contains": lambda want: f"arguments contain {quote(want)}",
    "json_path": lambda value: f"{value['path']} == {quote(value['equals'])}",
}

# ---------------------------------------------------------------- tool_args


def _condition(value: Any) -> str:
    """The one condition `value` sets; CheckFailure when the value is not a tool_args value."""
    problem = _tool_args_shape(value)
    if problem:
        raise CheckFailure(problem)
    return next(key for key in CONDITIONS if key in value)


def _tool_args_shape(value: Any) -> str | None:
    if not isinstance(value, dict) or "name" not in value:
        return f"expected {{name: <tool>, <one of {', '.join(CONDITIONS)}>}}, got {quote(value)}"
    unknown = [key for key in value if key not in _TOOL_ARGS_KEYS]
    if unknown:
        return f"unknown key {quote(unknown[0])}; allowed: {', '.join(_TOOL_ARGS_KEYS)}"
    given = [key for key in CONDITIONS if key in value]
    if len(given) != 1:
        found = ", ".join(given) if given else "none"
        return f"expected exactly one of {', '.join(CONDITIONS)}, got {found}"
    if not isinstance(value.get("all", False), bool):
        return f"all must be true or false, got {quote(value['all'])}"
    return _tool_name(value["name"])


def _prepare_condition(kind: str, want: Any) -> str | None:
    if kind == "json_schema":
        return _prepare_schema(want)
    if kind == "json_path":
        return _prepare_json_path(want)
    if not isinstance(want, dict):
        return f"expected a mapping of argument names to values, got {quote(want)}"
    if kind == "contains" and not want:
        return "empty mapping: any arguments contain it"
    return None


def _prepare_tool_args(value: Any) -> str | None:
    problem = _tool_args_shape(value)
    if problem:
        return problem
    kind = next(key for key in CONDITIONS if key in value)
    problem = _prepare_condition(kind, value[kind])
    return f"{kind}: {problem}" if problem else None


def _which(name: str, index: int, count: int) -> str:
    return name if count == 1 else f"{name} call {index + 1} of {count}"


def _tool_args_label(value: Any, nth: int) -> str:
    """`tool_args: get_weather contains {"city":"Paris"}`: the tool, then the condition."""
    calls = f"every {value['name']} call" if value.get("all") is True else value["name"]
    conditions = ("json_schema", "equals", "contains", "json_path")
    condition = next((key for key in conditions if key in value), None)
    if condition is None:  # a malformed value: prepare_check reports it with its line
        return f"tool_args: {canonical_json(value)}"
    if condition == "json_path":
        path = value["json_path"]
        return f"tool_args: {calls} {path['path']} equals {canonical_json(path['equals'])}"
    return f"tool_args: {calls} {condition.replace('_', ' ')} {canonical_json(value[condition])}"


@register("tool_args", prepare=_prepare_tool_args, label=_tool_args_label)
def tool_args(output: str, value: dict[str, Any], ctx: CheckContext) -> tuple[bool, str]:
    """A call to the tool has arguments meeting the one condition (`all: true`: every call)."""
    kind = _condition(value)
    name, want = value["name"], value[kind]
    calls = [call for call in ctx.tool_calls if call.name == name]
    if not calls:
        return False, f"{name} not called; {_called(ctx)}"
    count, passed = len(calls), _CONDITION_PASSED[kind](want)
    problems = [_CONDITION_FNS[kind](c.arguments, want) if c.valid_json else _not_json(c) for c in calls]
    failing = next((i for i, problem in enumerate(problems) if problem), None)
    if value.get("all", False):
        if failing is not None:
            return False, f"{_which(name, failing, count)}: {problems[failing]}"
        return True, f"{name}: {passed}" if count == 1 else f"all {count} {name} calls: {passed}"
    matching = next((i for i, problem in enumerate(problems) if problem is None), None)
    if matching is not None:
        return True, f"{_which(name, matching, count)}: {passed}"
    if count == 1:
        return False, f"{name}: {problems[0]}"
    return False, f"none of {count} {name} calls matches; call 1: {problems[0]}"


# ---------------------------------------------------------------- tool_order


def _prepare_tool_order(value: Any) -> str | None:
    if not isinstance(value, list) or not value:
        return f"expected a non-empty list of tool names, got {quote(value)}"
    return next(filter(None, map(_tool_name, value)), None)


@register("tool_order", prepare=_prepare_tool_order)
def tool_order(output: str, value: list[str], ctx: CheckContext) -> tuple[bool, str]:
    """The tools were called in this order (other calls may come between them)."""
    names = _names(ctx)
    calls = iter(names)
    if all(name in calls for name in value):  # `in` consumes the iterator: a subsequence test
        return True, f"called in order: {', '.join(value)}"
    actual = ", ".join(names) if names else "no tool was called"
    return False, f"expected order {', '.join(value)}; actual order: {actual}"


# ---------------------------------------------------------------- tool_args_valid


def _offered(tools: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    """Each offered function's parameters schema by name; none given: an object."""
    schemas: dict[str, Any] = {}
    for tool in tools:
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            schemas[function["name"]] = function.get("parameters", {"type": "object"})
    return schemas


@functools.lru_cache(maxsize=64)
def _schema_error(schema_json: str) -> str | None:
    """A tool definition's schema is checked once per distinct schema."""
    return _prepare_schema(json.loads(schema_json))


def _argument_problem(call: ToolCall, schemas: dict[str, Any]) -> str | None:
    if call.name not in schemas:
        offered = f"offered: {', '.join(schemas)}" if schemas else "no tools were offered"
        return f"{call.name} was not offered ({offered})"
    if not call.valid_json:
        return _not_json(call)
    schema = schemas[call.name]
    invalid = _schema_error(canonical_json(schema))
    if invalid:
        raise CheckError(f"the parameters of tool {call.name} are not a valid schema: {invalid}")
    return _schema_problem(schema, call.arguments)


@register("tool_args_valid", prepare=_prepare_true)
def tool_args_valid(output: str, value: bool, ctx: CheckContext) -> tuple[bool, str]:
    """Every call is to an offered tool, with JSON arguments valid against its parameters."""
    if not ctx.tool_calls:
        return True, "no tool calls to check"
    schemas = _offered(ctx.tools)
    count = len(ctx.tool_calls)
    for index, call in enumerate(ctx.tool_calls):
        problem = _argument_problem(call, schemas)
        if problem:
            where = call.name if count == 1 else f"call {index + 1} of {count} ({call.name})"
            return False, f"{where}: {problem}"
    return (
        True,
        "1 tool call has valid arguments" if count == 1 else f"all {count} tool calls have valid arguments",
    )


# ---------------------------------------------------------------- finish_reason


def _prepare_finish_reason(value: Any) -> str | None:
    reasons = value if isinstance(value, list) and value else [value]
    if all(isinstance(reason, str) and reason for reason in reasons):
        return None
    return f"expected a finish reason (e.g. stop) or a non-empty list of them, got {quote(value)}"


@register("finish_reason", prepare=_prepare_finish_reason)
def finish_reason(output: str, value: str | list[str], ctx: CheckContext) -> tuple[bool, str]:
    """The provider's finish reason is `value` (or one of a list of them)."""
    allowed = [value] if isinstance(value, str) else value
    expected = quote(allowed[0]) if len(allowed) == 1 else f"one of {', '.join(map(quote, allowed))}"
    actual = ctx.finish_reason
    if actual is None:
        return False, f"the provider gave no finish reason, expected {expected}"
    if actual in allowed:
        return True, f"finish reason is {quote(actual)}"
    return False, f"finish reason is {quote(actual)}, expected {expected}"

"""Canned tool results: what an agent loop answers to the model's tool calls, from the suite.

`tool_results:` maps a tool's name to a fixed result (any JSON value), to a list of
`{when: {arguments...}, result: ...}` tried in order (`when` holds the given keys with
these values, like the `contains` of `tool_args`; an item without `when` matches any call),
or to `{python: module:function}`, called with the tool's name and arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..model import ToolCall

NO_RESULT = object()  # a call no canned result answers
ResultFn = Callable[[str, Any], Any]


def is_python(spec: Any) -> bool:
    return isinstance(spec, Mapping) and set(spec) == {"python"} and isinstance(spec["python"], str)


def tool_results_problem(value: Any) -> str | None:
    """What is wrong with a `tool_results:` mapping, or None."""
    if not isinstance(value, Mapping) or not value:
        return "tool_results must map each tool's name to its result"
    for name, spec in value.items():
        if is_python(spec):
            if spec["python"].count(":") != 1:
                return f"tool_results.{name}: python must name module:function, got {spec['python']!r}"
            continue
        if isinstance(spec, list):
            problem = next((p for i, item in enumerate(spec, 1) if (p := _item_problem(name, i, item))), None)
            if problem:
                return problem
    return None


def _item_problem(name: str, index: int, item: Any) -> str | None:
    if not isinstance(item, Mapping) or "result" not in item or not set(item) <= {"when", "result"}:
        return f"tool_results.{name}[{index}] must be {{when: {{...}}, result: ...}}"
    if "when" in item and not isinstance(item["when"], Mapping):
        return f"tool_results.{name}[{index}].when must map arguments to their values"
    return None


def canned_result(
    tool_results: Mapping[str, Any], call: ToolCall, *, python: Callable[[str], ResultFn]
) -> Any:
    """The suite's result for one tool call, or NO_RESULT. `python(reference)` loads a function."""
    spec = tool_results.get(call.name, NO_RESULT)
    if spec is NO_RESULT:
        return NO_RESULT
    if is_python(spec):
        return python(spec["python"])(call.name, call.arguments)
    if isinstance(spec, list):
        arguments = call.arguments if call.valid_json else {}
        for item in spec:
            if "when" not in item or _holds(arguments, item["when"]):
                return item["result"]
        return NO_RESULT
    return spec


def _holds(arguments: Any, wanted: Mapping[str, Any]) -> bool:
    """Every wanted key is in the arguments with that value (nested mappings likewise)."""
    if not isinstance(arguments, Mapping):
        return False
    for key, value in wanted.items():
        if key not in arguments:
            return False
        if isinstance(value, Mapping):
            if not _holds(arguments[key], value):
                return False
        elif arguments[key] != value or type(arguments[key]) is bool and type(value) is not bool:
            return False
    return True

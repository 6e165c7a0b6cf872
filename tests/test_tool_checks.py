"""Tool checks: which tools were called, in what order, with what arguments, and why the answer ended."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from prompttest.checks import prepare_check, run_check
from prompttest.errors import SuiteError
from prompttest.model import CheckContext, CheckResult, CheckSpec, ToolCall
from prompttest.suites.loading import load_suite

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "units": {"enum": ["metric", "imperial"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
SEARCH_TOOL = {"type": "function", "function": {"name": "search", "description": "Search the web."}}
TOOLS = (WEATHER_TOOL, SEARCH_TOOL)

CITY_SCHEMA = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}


def call(name: str, arguments: str = "{}") -> ToolCall:
    return ToolCall.parse(name, arguments)


PARIS = call("get_weather", '{"city": "Paris", "units": "metric"}')
LOWER_PARIS = call("get_weather", '{"city": "paris", "units": "metric"}')
SEARCH = call("search", '{"query": "weather"}')
BROKEN = call("get_weather", "{city: Paris")


def check(name: str, value: Any, *calls: ToolCall, **ctx: Any) -> CheckResult:
    context = CheckContext(tool_calls=calls, tools=ctx.pop("tools", TOOLS), **ctx)
    return run_check(CheckSpec(name, value), "some text the tool checks ignore", context)


def passes(result: CheckResult, reason: str) -> None:
    assert (result.passed, result.reason) == (True, reason)
    assert result.error is None


def fails(result: CheckResult, reason: str) -> None:
    assert (result.passed, result.reason) == (False, reason)
    assert result.error is None


def test_tool_calls_parse_invalid_json_as_text() -> None:
    assert BROKEN == ToolCall(name="get_weather", arguments="{city: Paris", valid_json=False)


# ---------------------------------------------------------------- tool_called


def test_tool_called_passes_when_present() -> None:
    passes(check("tool_called", "get_weather", SEARCH, PARIS), "get_weather called 1 time")


@pytest.mark.parametrize(
    ("calls", "reason"),
    [
        ((SEARCH,), "get_weather not called; called: search"),
        ((SEARCH, call("lookup")), "get_weather not called; called: search, lookup"),
        ((), "get_weather not called; no tool was called"),
    ],
)
def test_tool_called_fails_listing_what_was_called(calls: tuple[ToolCall, ...], reason: str) -> None:
    fails(check("tool_called", "get_weather", *calls), reason)


def test_tool_called_times_counts_exactly() -> None:
    value = {"name": "get_weather", "times": 1}
    passes(check("tool_called", value, PARIS, SEARCH), "get_weather called 1 time")
    fails(check("tool_called", value, PARIS, PARIS), "get_weather called 2 times, expected 1")
    fails(check("tool_called", value, SEARCH), "get_weather called 0 times, expected 1")


def test_tool_called_as_a_mapping_without_times_means_at_least_once() -> None:
    passes(check("tool_called", {"name": "get_weather"}, PARIS, PARIS), "get_weather called 2 times")
    fails(check("tool_called", {"name": "get_weather"}, SEARCH), "get_weather not called; called: search")


def test_tool_called_times_zero_means_not_called() -> None:
    passes(check("tool_called", {"name": "search", "times": 0}, PARIS), "search called 0 times")


def test_tool_called_ignores_the_output_text() -> None:
    context = CheckContext(tool_calls=())
    assert not run_check(CheckSpec("tool_called", "get_weather"), "get_weather(city='Paris')", context).passed


# ---------------------------------------------------------------- no_tool_call


def test_no_tool_call_passes_without_calls() -> None:
    passes(check("no_tool_call", True), "no tool was called")


def test_no_tool_call_fails_naming_the_calls() -> None:
    fails(check("no_tool_call", True, PARIS, SEARCH), "expected no tool call, got 2: get_weather, search")


# ---------------------------------------------------------------- tool_args: one test per condition


@pytest.mark.parametrize(
    ("condition", "passed"),
    [
        ({"json_schema": CITY_SCHEMA}, "arguments match the JSON schema"),
        (
            {"equals": {"city": "Paris", "units": "metric"}},
            'arguments equal {"city":"Paris","units":"metric"}',
        ),
        ({"contains": {"city": "Paris"}}, 'arguments contain {"city":"Paris"}'),
        ({"json_path": {"path": "$.city", "equals": "Paris"}}, "$.city == 'Paris'"),
    ],
)
def test_tool_args_passes_for_each_condition(condition: dict[str, Any], passed: str) -> None:
    passes(check("tool_args", {"name": "get_weather", **condition}, SEARCH, PARIS), f"get_weather: {passed}")


@pytest.mark.parametrize(
    ("condition", "reason"),
    [
        ({"json_schema": {**CITY_SCHEMA, "required": ["country"]}}, "$: 'country' is a required property"),
        (
            {"json_schema": {"properties": {"city": {"pattern": "^[A-Z]"}}}},
            "$.city: 'paris' does not match '^[A-Z]'",
        ),
        ({"equals": {"city": "Paris", "units": "metric"}}, "city is 'paris', expected 'Paris'"),
        ({"equals": {"city": "paris"}}, "units is 'metric', expected it absent"),
        ({"equals": {"city": "paris", "units": "metric", "days": 3}}, "days is missing, expected 3"),
        ({"contains": {"city": "Paris"}}, "city is 'paris', expected 'Paris'"),
        ({"contains": {"country": "FR"}}, "country is missing, expected 'FR'"),
        ({"json_path": {"path": "$.city", "equals": "Paris"}}, "$.city is 'paris', expected 'Paris'"),
        ({"json_path": {"path": "$.country", "equals": "FR"}}, "$.country not found: $ has no 'country'"),
    ],
)
def test_tool_args_fails_naming_the_first_difference(condition: dict[str, Any], reason: str) -> None:
    fails(check("tool_args", {"name": "get_weather", **condition}, LOWER_PARIS), f"get_weather: {reason}")


def test_tool_args_equals_is_json_equality() -> None:
    flag = call("set_flag", '{"on": 1, "ratio": 1.0}')
    fails(
        check("tool_args", {"name": "set_flag", "equals": {"on": True, "ratio": 1}}, flag),
        "set_flag: on is 1, expected true",
    )
    passes(
        check("tool_args", {"name": "set_flag", "equals": {"on": 1, "ratio": 1}}, flag),
        'set_flag: arguments equal {"on":1,"ratio":1}',
    )


def test_tool_args_contains_is_recursive_for_mappings() -> None:
    booking = call("book", '{"trip": {"from": "Paris", "to": "Rome", "seat": "12A"}, "tags": ["a", "b"]}')
    value = {"name": "book", "contains": {"trip": {"to": "Rome"}}}
    passes(check("tool_args", value, booking), 'book: arguments contain {"trip":{"to":"Rome"}}')
    wrong = {"name": "book", "contains": {"trip": {"to": "Milan"}}}
    fails(check("tool_args", wrong, booking), "book: trip.to is 'Rome', expected 'Milan'")
    missing = {"name": "book", "contains": {"trip": {"class": "first"}}}
    fails(check("tool_args", missing, booking), "book: trip.class is missing, expected 'first'")


def test_tool_args_contains_compares_lists_whole() -> None:
    booking = call("book", '{"tags": ["a", {"k": 1, "extra": 2}]}')
    fails(
        check("tool_args", {"name": "book", "contains": {"tags": ["a"]}}, booking),
        "book: tags has 2 items, expected 1",
    )
    partial_item = {"name": "book", "contains": {"tags": ["a", {"k": 1}]}}
    fails(check("tool_args", partial_item, booking), "book: tags[1].extra is 2, expected it absent")


def test_tool_args_any_call_may_match_by_default() -> None:
    value = {"name": "get_weather", "contains": {"city": "Paris"}}
    passes(
        check("tool_args", value, LOWER_PARIS, PARIS),
        'get_weather call 2 of 2: arguments contain {"city":"Paris"}',
    )
    fails(
        check("tool_args", value, LOWER_PARIS, call("get_weather", '{"city": "Rome"}')),
        "none of 2 get_weather calls matches; call 1: city is 'paris', expected 'Paris'",
    )


def test_tool_args_all_needs_every_call_to_match() -> None:
    value = {"name": "get_weather", "contains": {"city": "Paris"}, "all": True}
    passes(
        check("tool_args", value, PARIS, SEARCH, PARIS),
        'all 2 get_weather calls: arguments contain {"city":"Paris"}',
    )
    fails(
        check("tool_args", value, PARIS, LOWER_PARIS),
        "get_weather call 2 of 2: city is 'paris', expected 'Paris'",
    )


@pytest.mark.parametrize("all_calls", [False, True])
def test_tool_args_fails_on_arguments_that_are_not_json(all_calls: bool) -> None:
    value = {"name": "get_weather", "json_schema": {}, "all": all_calls}
    fails(check("tool_args", value, BROKEN), "get_weather: arguments are not valid JSON: '{city: Paris'")


def test_tool_args_fails_when_the_tool_was_not_called() -> None:
    value = {"name": "get_weather", "equals": {"city": "Paris"}}
    fails(check("tool_args", value, SEARCH), "get_weather not called; called: search")
    fails(check("tool_args", value), "get_weather not called; no tool was called")


def test_tool_args_on_arguments_that_are_not_an_object() -> None:
    listed = call("get_weather", '["Paris"]')
    fails(
        check("tool_args", {"name": "get_weather", "equals": {"city": "Paris"}}, listed),
        'get_weather: arguments is ["Paris"], expected {"city":"Paris"}',
    )
    fails(
        check(
            "tool_args", {"name": "get_weather", "json_path": {"path": "$.city", "equals": "Paris"}}, listed
        ),
        "get_weather: $.city not found: $ is an array",
    )


# ---------------------------------------------------------------- tool_order


@pytest.mark.parametrize(
    "calls",
    [(SEARCH, PARIS), (SEARCH, call("lookup"), PARIS), (PARIS, SEARCH, PARIS)],
)
def test_tool_order_passes_on_a_subsequence(calls: tuple[ToolCall, ...]) -> None:
    passes(check("tool_order", ["search", "get_weather"], *calls), "called in order: search, get_weather")


@pytest.mark.parametrize(
    ("calls", "actual"),
    [
        ((PARIS, SEARCH), "get_weather, search"),
        ((SEARCH,), "search"),
        ((), "no tool was called"),
    ],
)
def test_tool_order_fails_showing_the_actual_order(calls: tuple[ToolCall, ...], actual: str) -> None:
    fails(
        check("tool_order", ["search", "get_weather"], *calls),
        f"expected order search, get_weather; actual order: {actual}",
    )


def test_tool_order_counts_repeated_names() -> None:
    assert not check("tool_order", ["search", "search"], SEARCH, PARIS).passed
    assert check("tool_order", ["search", "search"], SEARCH, PARIS, SEARCH).passed


# ---------------------------------------------------------------- tool_args_valid


def test_tool_args_valid_passes_on_valid_calls() -> None:
    passes(check("tool_args_valid", True, PARIS, SEARCH), "all 2 tool calls have valid arguments")
    passes(check("tool_args_valid", True, PARIS), "1 tool call has valid arguments")


def test_tool_args_valid_passes_without_calls() -> None:
    passes(check("tool_args_valid", True), "no tool calls to check")


@pytest.mark.parametrize(
    ("calls", "reason"),
    [
        ((call("get_weather", '{"city": 75}'),), "get_weather: $.city: 75 is not of type 'string'"),
        (
            (call("get_weather", '{"city": "Paris", "units": "kelvin"}'),),
            "get_weather: $.units: 'kelvin' is not one of ['metric', 'imperial']",
        ),
        ((call("get_weather", "{}"),), "get_weather: $: 'city' is a required property"),
        ((SEARCH, BROKEN), "call 2 of 2 (get_weather): arguments are not valid JSON: '{city: Paris'"),
        (
            (PARIS, call("lookup")),
            "call 2 of 2 (lookup): lookup was not offered (offered: get_weather, search)",
        ),
        ((call("search", "[1]"),), "search: $: [1] is not of type 'object'"),
    ],
)
def test_tool_args_valid_fails_on_the_first_bad_call(calls: tuple[ToolCall, ...], reason: str) -> None:
    fails(check("tool_args_valid", True, *calls), reason)


def test_tool_args_valid_fails_when_no_tools_were_offered() -> None:
    fails(
        check("tool_args_valid", True, PARIS, tools=()),
        "get_weather: get_weather was not offered (no tools were offered)",
    )


def test_tool_args_valid_is_an_error_when_a_tool_schema_is_broken() -> None:
    broken = {"type": "function", "function": {"name": "f", "parameters": {"type": "nope"}}}
    result = check("tool_args_valid", True, call("f"), tools=(broken,))
    assert not result.passed
    assert result.error is not None
    assert result.error.startswith(
        "the parameters of tool f are not a valid schema: invalid JSON schema at $.type"
    )


# ---------------------------------------------------------------- finish_reason


@pytest.mark.parametrize(("value", "actual"), [("stop", "stop"), (["stop", "tool_calls"], "tool_calls")])
def test_finish_reason_passes_on_an_allowed_reason(value: str | list[str], actual: str) -> None:
    passes(check("finish_reason", value, finish_reason=actual), f"finish reason is {actual!r}")


@pytest.mark.parametrize(
    ("value", "actual", "reason"),
    [
        ("stop", "length", "finish reason is 'length', expected 'stop'"),
        (
            ["stop", "tool_calls"],
            "content_filter",
            "finish reason is 'content_filter', expected one of 'stop', 'tool_calls'",
        ),
        ("stop", None, "the provider gave no finish reason, expected 'stop'"),
    ],
)
def test_finish_reason_fails_quoting_the_actual(
    value: str | list[str], actual: str | None, reason: str
) -> None:
    fails(check("finish_reason", value, finish_reason=actual), reason)


# ---------------------------------------------------------------- prepare


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("tool_called", "get_weather"),
        ("tool_called", {"name": "get_weather", "times": 2}),
        ("no_tool_call", True),
        ("tool_args", {"name": "get_weather", "json_schema": CITY_SCHEMA, "all": True}),
        ("tool_args", {"name": "get_weather", "equals": {}}),
        ("tool_args", {"name": "get_weather", "json_path": {"path": "$.a[0]", "equals": None}}),
        ("tool_order", ["search", "get_weather"]),
        ("tool_args_valid", True),
        ("finish_reason", "stop"),
        ("finish_reason", ["stop", "length"]),
    ],
)
def test_prepare_accepts_good_values(name: str, value: Any) -> None:
    assert prepare_check(name, value) is None


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("tool_called", "", "expected a tool name, got ''"),
        ("tool_called", {"name": "f", "count": 2}, "expected a tool name or {name: <tool>, times: <n>}"),
        ("tool_called", {"name": "get_weather", "times": -1}, "times must be a non-negative integer, got -1"),
        (
            "tool_called",
            {"name": "get_weather", "times": True},
            "times must be a non-negative integer, got true",
        ),
        ("no_tool_call", False, "expected true, got false"),
        ("tool_args_valid", False, "expected true, got false"),
        ("tool_args", {"equals": {"city": "Paris"}}, "expected {name: <tool>, <one of json_schema, equals,"),
        ("tool_args", {"name": "", "equals": {}}, "expected a tool name, got ''"),
        (
            "tool_args",
            {"name": "f", "equals": {}, "contains": {"a": 1}},
            "expected exactly one of json_schema, equals, contains, json_path, got equals, contains",
        ),
        (
            "tool_args",
            {"name": "f"},
            "expected exactly one of json_schema, equals, contains, json_path, got none",
        ),
        (
            "tool_args",
            {"name": "f", "equals": {}, "any": True},
            "unknown key 'any'; allowed: name, all, json_schema",
        ),
        ("tool_args", {"name": "f", "equals": {}, "all": "yes"}, "all must be true or false, got 'yes'"),
        (
            "tool_args",
            {"name": "f", "json_schema": {"type": "nope"}},
            "json_schema: invalid JSON schema at $.type",
        ),
        ("tool_args", {"name": "f", "json_schema": []}, "json_schema: expected a JSON schema object, got []"),
        (
            "tool_args",
            {"name": "f", "equals": "Paris"},
            "equals: expected a mapping of argument names to values",
        ),
        ("tool_args", {"name": "f", "contains": {}}, "contains: empty mapping: any arguments contain it"),
        (
            "tool_args",
            {"name": "f", "json_path": {"path": "city", "equals": 1}},
            "json_path: invalid JSON path 'city'",
        ),
        (
            "tool_args",
            {"name": "f", "json_path": {"path": "$.city"}},
            "json_path: expected {path: '$...', equals: <value>}",
        ),
        ("tool_order", "search", "expected a non-empty list of tool names, got 'search'"),
        ("tool_order", [], "expected a non-empty list of tool names, got []"),
        ("tool_order", ["search", 3], "expected a tool name, got 3"),
        ("finish_reason", "", "expected a finish reason (e.g. stop) or a non-empty list of them"),
        ("finish_reason", [], "expected a finish reason (e.g. stop) or a non-empty list of them"),
        (
            "finish_reason",
            ["stop", ["length"]],
            "expected a finish reason (e.g. stop) or a non-empty list of them",
        ),
    ],
)
def test_prepare_refuses_bad_values(name: str, value: Any, message: str) -> None:
    problem = prepare_check(name, value)
    assert problem is not None
    assert problem.startswith(message)


def test_tool_args_run_without_prepare_fails_cleanly() -> None:
    fails(
        check("tool_args", {"name": "get_weather", "equals": {}, "contains": {"a": 1}}, PARIS),
        "expected exactly one of json_schema, equals, contains, json_path, got equals, contains",
    )


# ---------------------------------------------------------------- in a suite file

SUITE = """
prompt: weather in {{city}}?
target: openai/gpt-4o-mini
cases:
  - id: paris
    vars: {city: Paris}
    expect:
      - %s
"""

GOOD_CHECKS = [
    "tool_called: {name: get_weather, times: 1}",
    "no_tool_call: true",
    "tool_args: {name: get_weather, contains: {city: Paris}, all: true}",
    "tool_args: {name: get_weather, json_path: {path: $.city, equals: Paris}}",
    "tool_order: [search, get_weather]",
    "tool_args_valid: true",
    "finish_reason: [stop, tool_calls]",
]


def test_a_suite_file_takes_every_tool_check(tmp_path: Path) -> None:
    path = tmp_path / "weather.yaml"
    path.write_text(textwrap.dedent(SUITE) % "\n      - ".join(GOOD_CHECKS), encoding="utf-8")
    (case,) = load_suite(path).cases
    assert [spec.name for spec in case.expect] == [line.split(":")[0] for line in GOOD_CHECKS]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("tool_args: {name: get_weather, contans: {city: Paris}}", "unknown key 'contans'"),
        ("tool_args: {name: get_weather, equals: {}, contains: {a: 1}}", "expected exactly one of"),
        ("no_tool_call: false", "expected true, got false"),
        ("tool_order: search", "tool_order must be a list"),
    ],
)
def test_a_suite_file_refuses_bad_tool_checks(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "weather.yaml"
    path.write_text(textwrap.dedent(SUITE) % line, encoding="utf-8")
    with pytest.raises(SuiteError, match=message):
        load_suite(path)

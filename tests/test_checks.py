"""Checks: each one's pass and fail, with the reasons a reviewer reads."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from prompttest import checks
from prompttest.checks import (
    CheckFailure,
    known_checks,
    prepare_check,
    quote,
    register,
    run_check,
)
from prompttest.errors import SuiteError
from prompttest.model import CheckContext, CheckResult, CheckSpec

FENCED = '```json\n{"capital": "Tokyo"}\n```'


def check(name: str, value: Any, output: str, **ctx: Any) -> CheckResult:
    return run_check(CheckSpec(name, value), output, CheckContext(**ctx))


# ---------------------------------------------------------------- registry


def test_known_checks_lists_all_three_families_sorted() -> None:
    names = known_checks()
    assert names == sorted(names)
    assert {"contains", "is_json", "json_path", "max_cost_usd"} <= set(names)


def test_result_carries_label_name_and_reason() -> None:
    result = check("contains", "Paris", "It is Paris.")
    assert result == CheckResult(
        label="contains: Paris", passed=True, reason="found 'Paris' in output", name="contains"
    )


def test_prepare_unknown_check_lists_known_checks_and_a_guess() -> None:
    message = prepare_check("contians", "x")
    assert message is not None
    assert message.startswith("unknown check 'contians' (did you mean 'contains'?)")
    assert "known checks: contains, contains_all" in message


def test_run_unknown_check_is_a_suite_error() -> None:
    with pytest.raises(SuiteError, match="unknown check 'nope'"):
        check("nope", 1, "out")


def test_register_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register("contains")(lambda output, value, ctx: (True, ""))


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checks registered by a test vanish after it."""
    monkeypatch.setattr(checks, "_REGISTRY", dict(checks._REGISTRY))


@pytest.mark.usefixtures("scratch_registry")
def test_check_failure_becomes_a_failed_result() -> None:
    @register("_test_raises")
    def raises(output: str, value: Any, ctx: CheckContext) -> tuple[bool, str]:
        raise CheckFailure("cannot judge\nthis")

    result = check("_test_raises", None, "out")
    assert (result.passed, result.reason) == (False, "cannot judge this")


def test_quote_cuts_long_values_and_keeps_one_line() -> None:
    assert quote("line one\nline two") == "'line one\\nline two'"
    assert quote("x" * 100) == "'" + "x" * 59 + "…'"
    assert quote({"b": 1, "a": None}) == '{"a":null,"b":1}'


def test_importing_checks_does_not_import_jsonschema() -> None:
    code = "import sys, prompttest.checks; print('jsonschema' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------- text


def test_equals_ignores_surrounding_whitespace() -> None:
    assert check("equals", "Paris", "  Paris\n").passed


def test_equals_fails_with_both_values() -> None:
    result = check("equals", "Paris", "Paris.")
    assert (result.passed, result.reason) == (False, "expected 'Paris', got 'Paris.'")


def test_equals_on_long_values_points_at_the_first_difference() -> None:
    result = check("equals", "a" * 80 + "b", "a" * 80 + "c")
    assert result.reason.endswith("(first difference at char 80)")


def test_contains_fails_naming_the_missing_text() -> None:
    result = check("contains", "Paris", "It is Lyon.")
    assert (result.passed, result.reason) == (False, "expected 'Paris' in output")


def test_contains_is_case_sensitive() -> None:
    assert not check("contains", "paris", "Paris").passed


def test_icontains_ignores_case() -> None:
    assert check("icontains", "PARIS", "it is paris").passed
    assert check("icontains", "straße", "STRASSE").passed  # casefold, not lower


def test_icontains_fails() -> None:
    result = check("icontains", "Rome", "Paris")
    assert (result.passed, result.reason) == (False, "expected 'Rome' in output (ignoring case)")


def test_not_contains_passes_when_absent_and_fails_when_present() -> None:
    assert check("not_contains", "sorry", "Paris").passed
    result = check("not_contains", "sorry", "I'm sorry, no.")
    assert (result.passed, result.reason) == (False, "found 'sorry' in output, expected it absent")


def test_contains_any_passes_on_one_match() -> None:
    result = check("contains_any", ["Rome", "Paris"], "Paris")
    assert (result.passed, result.reason) == (True, "found 'Paris' in output")


def test_contains_any_fails_listing_all() -> None:
    result = check("contains_any", ["Rome", "Oslo"], "Paris")
    assert result.reason == "expected any of 'Rome', 'Oslo' in output"


def test_contains_all_passes_when_every_string_is_there() -> None:
    assert check("contains_all", ["a", "b"], "b and a").passed


def test_contains_all_names_only_the_missing_ones() -> None:
    result = check("contains_all", ["Paris", "France", "Seine"], "Paris, France")
    assert (result.passed, result.reason) == (False, "missing from output: 'Seine'")


def test_starts_with_ignores_leading_whitespace() -> None:
    assert check("starts_with", "Yes", "\n  Yes, it is.").passed


def test_starts_with_fails_showing_the_start() -> None:
    result = check("starts_with", "Yes", "No.\nNever.")
    assert result.reason == "expected output to start with 'Yes', got 'No.\\nNever.'"


def test_regex_searches_anywhere() -> None:
    result = check("regex", r"\d{4}", "in 1789, the")
    assert (result.passed, result.reason) == (True, r"found '1789' matching /\d{4}/")


def test_regex_fails_when_no_match() -> None:
    result = check("regex", r"^\d+$", "about 12")
    assert (result.passed, result.reason) == (False, r"no match for /^\d+$/ in output")


def test_not_regex_fails_showing_the_match() -> None:
    assert check("not_regex", r"(?i)as an ai", "Fine.").passed
    result = check("not_regex", r"(?i)as an ai", "As an AI, I")
    assert (result.passed, result.reason) == (False, "found 'As an AI' matching /(?i)as an ai/")


def test_prepare_rejects_invalid_regex() -> None:
    message = "invalid regex 'a(': missing ), unterminated subpattern at position 1"
    assert prepare_check("regex", "a(") == message
    assert prepare_check("not_regex", "a(") == message
    assert prepare_check("regex", r"\d+") is None


def test_invalid_regex_that_skipped_prepare_fails_cleanly() -> None:
    result = check("regex", "a(", "a")
    assert not result.passed and result.reason.startswith("invalid regex")


def test_max_length_counts_stripped_chars() -> None:
    assert check("max_length", 5, "  Paris  \n").passed
    result = check("max_length", 200, "x" * 312)
    assert (result.passed, result.reason) == (False, "output is 312 chars, max 200")


def test_min_length_fails_on_short_output() -> None:
    result = check("min_length", 10, "  ok ")
    assert (result.passed, result.reason) == (False, "output is 2 chars, min 10")
    assert check("min_length", 2, "ok").passed


def test_max_words_counts_whitespace_separated_words() -> None:
    assert check("max_words", 3, "one two\nthree").passed
    result = check("max_words", 2, "one two three")
    assert (result.passed, result.reason) == (False, "output is 3 words, max 2")


@pytest.mark.parametrize(
    ("name", "value"),
    [("contains", ""), ("contains_all", []), ("contains_any", ["a", ""]), ("max_length", -1)],
)
def test_prepare_rejects_values_that_make_a_check_meaningless(name: str, value: Any) -> None:
    assert prepare_check(name, value) is not None


# ---------------------------------------------------------------- is_json


def test_is_json_passes_on_json() -> None:
    assert check("is_json", True, ' {"a": [1, 2]}\n').reason == "output is valid JSON"


def test_is_json_fails_on_prose() -> None:
    result = check("is_json", True, "Sure! Here it is.")
    assert not result.passed
    assert result.reason.startswith("output is not valid JSON: Expecting value")


def test_is_json_rejects_nan() -> None:
    assert not check("is_json", True, "NaN").passed


def test_is_json_fence_does_not_count_and_hints_allow_fence() -> None:
    result = check("is_json", True, FENCED)
    assert not result.passed
    assert "fence" in result.reason and "`allow_fence: true`" in result.reason


def test_is_json_allow_fence_strips_the_fence() -> None:
    assert check("is_json", {"allow_fence": True}, FENCED).passed
    assert check("is_json", {"allow_fence": True}, "```\n[1]\n```").passed


def test_is_json_allow_fence_still_needs_valid_json_inside() -> None:
    result = check("is_json", {"allow_fence": True}, "```json\n{oops}\n```")
    assert not result.passed and result.reason.startswith("fenced block is not valid JSON")


def test_is_json_false_passes_when_output_is_not_json() -> None:
    assert check("is_json", False, "Paris").passed
    assert check("is_json", False, FENCED).passed  # a fence is not JSON
    result = check("is_json", False, "[1]")
    assert (result.passed, result.reason) == (False, "output is valid JSON, expected it not to be")


def test_prepare_is_json_rejects_unknown_options() -> None:
    assert prepare_check("is_json", {"allow_fence": True}) is None
    assert prepare_check("is_json", {"fence": True}) is not None


# ---------------------------------------------------------------- json_schema

PERSON = {
    "type": "object",
    "properties": {"age": {"type": "integer"}},
    "required": ["age"],
}


def test_json_schema_passes_on_matching_output() -> None:
    result = check("json_schema", PERSON, '{"age": 30}')
    assert (result.passed, result.reason) == (True, "output matches the JSON schema")


def test_json_schema_fails_with_path_and_message() -> None:
    result = check("json_schema", PERSON, '{"age": "thirty"}')
    assert (result.passed, result.reason) == (False, "$.age: 'thirty' is not of type 'integer'")


def test_json_schema_reason_is_one_short_line() -> None:
    schema = {"type": "array"}
    result = check("json_schema", schema, '{"text": "' + "line\\n" * 100 + '"}')
    assert not result.passed
    assert len(result.reason) <= 200 and "\n" not in result.reason


def test_json_schema_fails_when_output_is_not_json() -> None:
    result = check("json_schema", PERSON, "thirty")
    assert not result.passed and result.reason.startswith("output is not valid JSON")


def test_json_schema_unwraps_a_lone_fenced_block() -> None:
    assert check("json_schema", PERSON, '```json\n{"age": 30}\n```').passed


def test_json_schema_does_not_unwrap_a_fence_inside_prose() -> None:
    assert not check("json_schema", PERSON, 'Here:\n```json\n{"age": 30}\n```').passed


def test_prepare_rejects_invalid_schema() -> None:
    message = prepare_check("json_schema", {"type": "strin"})
    assert message is not None
    assert message.startswith("invalid JSON schema at $.type: 'strin' is not valid")
    assert prepare_check("json_schema", PERSON) is None


# ---------------------------------------------------------------- json_path

DOC = '{"capital": "Kyoto", "cities": [{"name": "Osaka"}, {"name": "Nara"}], "ok": true}'


def test_json_path_equals_passes() -> None:
    result = check("json_path", {"path": "$.capital", "equals": "Kyoto"}, DOC)
    assert (result.passed, result.reason) == (True, "$.capital == 'Kyoto'")


def test_json_path_fails_with_expected_and_got() -> None:
    result = check("json_path", {"path": "$.capital", "equals": "Tokyo"}, DOC)
    assert result.reason == "expected $.capital == 'Tokyo', got 'Kyoto'"


def test_json_path_follows_indexes_and_quoted_names() -> None:
    assert check("json_path", {"path": "$.cities[0].name", "equals": "Osaka"}, DOC).passed
    assert check("json_path", {"path": "$['cities'][-1]['name']", "equals": "Nara"}, DOC).passed


def test_json_path_missing_key_says_where_it_stopped() -> None:
    result = check("json_path", {"path": "$.country", "equals": "Japan"}, DOC)
    assert (result.passed, result.reason) == (False, "$.country not found: $ has no 'country'")


def test_json_path_index_out_of_range_is_not_found() -> None:
    result = check("json_path", {"path": "$.cities[5].name", "equals": "Kobe"}, DOC)
    assert result.reason == "$.cities[5].name not found: $.cities has 2 items"


def test_json_path_through_a_scalar_is_not_found() -> None:
    result = check("json_path", {"path": "$.capital.name", "equals": "x"}, DOC)
    assert result.reason == "$.capital.name not found: $.capital is a string"


def test_json_path_true_is_not_1() -> None:
    assert check("json_path", {"path": "$.ok", "equals": True}, DOC).passed
    result = check("json_path", {"path": "$.ok", "equals": 1}, DOC)
    assert (result.passed, result.reason) == (False, "expected $.ok == 1, got true")


def test_json_path_numbers_compare_as_json() -> None:
    assert check("json_path", {"path": "$[0]", "equals": 1}, "[1.0]").passed


@pytest.mark.parametrize("path", ["capital", "$..name", "$.*", "$.cities[*]", "$.a[", "$[x]"])
def test_prepare_json_path_rejects_unsupported_syntax(path: str) -> None:
    message = prepare_check("json_path", {"path": path, "equals": 1})
    assert message is not None and message.startswith(f"invalid JSON path {path!r}")


def test_prepare_json_path_needs_path_and_equals() -> None:
    assert prepare_check("json_path", {"path": "$.a"}) is not None
    assert prepare_check("json_path", {"path": "$.a", "equals": None}) is None


# ---------------------------------------------------------------- metrics


def test_max_latency_ms() -> None:
    assert check("max_latency_ms", 1000, "", latency_ms=230.4).passed
    result = check("max_latency_ms", 1000, "", latency_ms=1234.0)
    assert (result.passed, result.reason) == (False, "latency 1,234 ms, max 1,000 ms")


def test_max_cost_usd_passes_under_budget() -> None:
    result = check("max_cost_usd", 0.01, "", cost_usd=0.000015, model="m")
    assert (result.passed, result.reason) == (True, "cost $0.000015, max $0.01")


def test_max_cost_usd_fails_over_budget() -> None:
    assert not check("max_cost_usd", 0.001, "", cost_usd=0.0021, model="m").passed


def test_max_cost_usd_unknown_cost_fails_never_counts_as_zero() -> None:
    result = check("max_cost_usd", 1.0, "", cost_usd=None, model="openai/mystery")
    assert not result.passed
    assert result.reason == (
        "cost unknown for model openai/mystery (no price known); set a price or drop this check"
    )


def test_max_tokens() -> None:
    assert check("max_tokens", 50, "", completion_tokens=50).passed
    result = check("max_tokens", 50, "", completion_tokens=51)
    assert (result.passed, result.reason) == (False, "51 completion tokens, max 50")


def test_max_tokens_unknown_count_fails() -> None:
    result = check("max_tokens", 50, "")
    assert not result.passed and result.reason.startswith("token count unknown")


def test_prepare_metric_limits_must_be_non_negative_numbers() -> None:
    assert prepare_check("max_cost_usd", 0.5) is None
    assert prepare_check("max_cost_usd", -1) is not None
    assert prepare_check("max_tokens", 1.5) is not None

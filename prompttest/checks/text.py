"""Text checks: what the output says, compared as plain strings or regexes."""

from __future__ import annotations

import re
from typing import Any

from prompttest.checks import QUOTE_LIMIT, CheckFailure, quote, register
from prompttest.model import CheckContext

# ---------------------------------------------------------------- load-time validators


def _non_empty(value: Any) -> str | None:
    """An empty needle is in every output: such a check can never tell anything."""
    if not isinstance(value, str):
        return f"expected a string, got {quote(value)}"
    return "empty string: it is in every output" if value == "" else None


def _string_list(value: Any) -> str | None:
    """A list of non-empty strings; an empty list would make the check vacuous."""
    if not isinstance(value, list) or not value:
        return "expected a non-empty list of strings"
    for item in value:
        problem = _non_empty(item)
        if problem:
            return f"list item {quote(item)}: {problem}"
    return None


def _count(value: Any) -> str | None:
    """A count of characters or words: a non-negative integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return f"expected a non-negative integer, got {quote(value)}"
    return None


def _regex_problem(value: Any) -> str | None:
    """Compile the pattern now, so a typo is a suite error rather than a failed run."""
    if not isinstance(value, str):
        return f"expected a regex string, got {quote(value)}"
    try:
        re.compile(value)
    except re.error as exc:
        return f"invalid regex {quote(value)}: {exc}"
    except (OverflowError, RecursionError):  # `a{99999999999}`, thousands of nested groups
        return f"regex {quote(value)} is too large or nested too deeply to compile"
    return None


# ---------------------------------------------------------------- helpers


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _pattern(value: str) -> re.Pattern[str]:
    """Compile a regex; a suite that skipped `prepare_check` still fails cleanly."""
    problem = _regex_problem(value)
    if problem:
        raise CheckFailure(problem)
    return re.compile(value)


def _show_pattern(value: str) -> str:
    """Patterns read best unescaped (`/\\d+/`, not `'\\\\d+'`); only line breaks are escaped."""
    cut = value if len(value) <= QUOTE_LIMIT else value[: QUOTE_LIMIT - 1] + "…"
    return "/" + cut.replace("\r", "\\r").replace("\n", "\\n") + "/"


def _first_difference(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


# ---------------------------------------------------------------- checks


@register("equals")
def equals(output: str, value: str, ctx: CheckContext) -> tuple[bool, str]:
    """The whole output, ignoring surrounding whitespace, is exactly `value`."""
    got, want = output.strip(), value.strip()
    if got == want:
        return True, f"output equals {quote(want)}"
    reason = f"expected {quote(want)}, got {quote(got)}"
    if max(len(got), len(want)) > QUOTE_LIMIT:
        # Both values are cut in the reason; say where to look.
        reason += f" (first difference at char {_first_difference(got, want)})"
    return False, reason


@register("contains", prepare=_non_empty)
def contains(output: str, value: str, ctx: CheckContext) -> tuple[bool, str]:
    """`value` appears in the output (case-sensitive)."""
    if value in output:
        return True, f"found {quote(value)} in output"
    return False, f"expected {quote(value)} in output"


@register("icontains", prepare=_non_empty)
def icontains(output: str, value: str, ctx: CheckContext) -> tuple[bool, str]:
    """`value` appears in the output, ignoring case (casefold, so 'ß' matches 'SS')."""
    if value.casefold() in output.casefold():
        return True, f"found {quote(value)} in output (ignoring case)"
    return False, f"expected {quote(value)} in output (ignoring case)"


@register("not_contains", prepare=_non_empty)
def not_contains(output: str, value: str, ctx: CheckContext) -> tuple[bool, str]:
    """`value` does not appear in the output (case-sensitive)."""
    if value in output:
        return False, f"found {quote(value)} in output, expected it absent"
    return True, f"{quote(value)} not in output"


@register("contains_any", prepare=_string_list)
def contains_any(output: str, value: list[str], ctx: CheckContext) -> tuple[bool, str]:
    """At least one of the strings appears in the output."""
    found = next((item for item in value if item in output), None)
    if found is not None:
        return True, f"found {quote(found)} in output"
    return False, f"expected any of {', '.join(quote(item) for item in value)} in output"


@register("contains_all", prepare=_string_list)
def contains_all(output: str, value: list[str], ctx: CheckContext) -> tuple[bool, str]:
    """Every one of the strings appears in the output; the reason names the missing ones."""
    missing = [item for item in value if item not in output]
    if not missing:
        return True, f"found all {len(value)} strings in output"
    return False, f"missing from output: {', '.join(quote(item) for item in missing)}"


@register("starts_with", prepare=_non_empty)
def starts_with(output: str, value: str, ctx: CheckContext) -> tuple[bool, str]:
    """The output, ignoring leading whitespace, starts with `value`."""
    head = output.lstrip()
    if head.startswith(value):
        return True, f"output starts with {quote(value)}"
    shown = quote(head, limit=min(60, max(20, len(value) + 10)))
    return False, f"expected output to start with {quote(value)}, got {shown}"


@register("regex", prepare=_regex_problem)
def regex(output: str, value: str, ctx: CheckContext) -> tuple[bool, str]:
    """`re.search` finds the pattern in the output (use inline flags such as `(?i)`)."""
    match = _pattern(value).search(output)
    if match:
        return True, f"found {quote(match.group(0))} matching {_show_pattern(value)}"
    return False, f"no match for {_show_pattern(value)} in output"


@register("not_regex", prepare=_regex_problem)
def not_regex(output: str, value: str, ctx: CheckContext) -> tuple[bool, str]:
    """`re.search` does not find the pattern anywhere in the output."""
    match = _pattern(value).search(output)
    if match:
        return False, f"found {quote(match.group(0))} matching {_show_pattern(value)}"
    return True, f"no match for {_show_pattern(value)} in output"


@register("max_length", prepare=_count)
def max_length(output: str, value: int, ctx: CheckContext) -> tuple[bool, str]:
    """The stripped output has at most `value` characters."""
    length = len(output.strip())
    return length <= value, f"output is {_plural(length, 'char')}, max {value}"


@register("min_length", prepare=_count)
def min_length(output: str, value: int, ctx: CheckContext) -> tuple[bool, str]:
    """The stripped output has at least `value` characters."""
    length = len(output.strip())
    return length >= value, f"output is {_plural(length, 'char')}, min {value}"


@register("max_words", prepare=_count)
def max_words(output: str, value: int, ctx: CheckContext) -> tuple[bool, str]:
    """The output has at most `value` whitespace-separated words."""
    words = len(output.split())
    return words <= value, f"output is {_plural(words, 'word')}, max {value}"

"""Structure checks: is the output JSON, does it match a schema, what is at a path.

Fences: `is_json` counts a markdown fenced block (```json ... ``` or ``` ... ```) as JSON
only with `allow_fence: true`, because a caller doing `json.loads(output)` would choke on
it. `json_schema` and `json_path` are about the data, not the wrapping: they use the
output as-is when it is valid JSON, and otherwise unwrap it when it is one single fenced
block and nothing else.

`json_path` reads paths with `prompttest.io.jsonpath`, a small JSONPath subset (no dependency):
`$`, `.name`, `['name']` / `["name"]` and `[index]` (negative counts from the end).
"""

from __future__ import annotations

import functools
import json
import re
from typing import TYPE_CHECKING, Any, NamedTuple

from prompttest.checks import CheckFailure, quote, register, shorten
from prompttest.io.jsonpath import PathNotFound, PathSyntaxError, parse_path, resolve_path
from prompttest.model import CheckContext, canonical_json

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

SCHEMA_REASON_LIMIT = 200
PATH_SUBSET = "supported: $, .name, ['name'], [index]"

# One fenced block and nothing around it; the language tag may be `json` or absent.
_FENCE = re.compile(r"\A```[ \t]*(?P<lang>[A-Za-z]*)[ \t]*\r?\n(?P<body>.*?)\r?\n?[ \t]*```\Z", re.DOTALL)

# ---------------------------------------------------------------- parsing the output


class _Parsed(NamedTuple):
    ok: bool
    value: Any = None
    error: str = ""


def _reject_constant(name: str) -> Any:
    # json.loads accepts NaN and Infinity, which no strict JSON parser does.
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(text: str) -> _Parsed:
    if not text.strip():
        return _Parsed(ok=False, error="empty, not JSON")
    try:
        return _Parsed(ok=True, value=json.loads(text, parse_constant=_reject_constant))
    except (ValueError, RecursionError) as exc:
        return _Parsed(ok=False, error=f"not valid JSON: {exc}")


def _unfence(text: str) -> str | None:
    """The body of `text` if it is exactly one ```json (or bare ```) fenced block."""
    match = _FENCE.match(text.strip())
    if match is None or match["lang"].lower() not in ("", "json") or "```" in match["body"]:
        return None
    return match["body"]


def _load_output_json(output: str) -> Any:
    """The output's JSON value, unwrapping a lone fenced block; CheckFailure otherwise."""
    parsed = _parse_json(output.strip())
    if parsed.ok:
        return parsed.value
    body = _unfence(output)
    if body is None:
        raise CheckFailure(f"output is {parsed.error}")
    inner = _parse_json(body)
    if not inner.ok:
        raise CheckFailure(f"fenced block is {inner.error}")
    return inner.value


# ---------------------------------------------------------------- is_json


def _prepare_is_json(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    is_options = isinstance(value, dict) and set(value) <= {"allow_fence"}
    if is_options and isinstance(value.get("allow_fence", False), bool):
        return None
    return f"expected true, false or {{allow_fence: true|false}}, got {quote(value)}"


def _expect_json(parsed: _Parsed, fenced: _Parsed | None, *, allow_fence: bool) -> tuple[bool, str]:
    if parsed.ok:
        return True, "output is valid JSON"
    if fenced is None:
        return False, f"output is {parsed.error}"
    if not fenced.ok:
        return False, f"fenced block is {fenced.error}"
    if allow_fence:
        return True, "output is valid JSON inside a ``` fence"
    return False, (
        "output is JSON wrapped in a ``` fence, which does not count as JSON; "
        "set `allow_fence: true` to accept it"
    )


def _expect_not_json(parsed: _Parsed, fenced: _Parsed | None) -> tuple[bool, str]:
    if parsed.ok:
        return False, "output is valid JSON, expected it not to be"
    if fenced is not None and fenced.ok:
        return True, "output is not JSON (only a ``` fence around JSON, which does not count)"
    return True, "output is not JSON"


@register("is_json", prepare=_prepare_is_json)
def is_json(output: str, value: bool | dict[str, bool], ctx: CheckContext) -> tuple[bool, str]:
    """The stripped output parses as JSON (`false`: it does not); fences need `allow_fence`."""
    text = output.strip()
    parsed = _parse_json(text)
    body = None if parsed.ok else _unfence(text)
    fenced = None if body is None else _parse_json(body)
    if value is False:
        return _expect_not_json(parsed, fenced)
    allow_fence = isinstance(value, dict) and value.get("allow_fence") is True
    return _expect_json(parsed, fenced, allow_fence=allow_fence)


# ---------------------------------------------------------------- json_schema


def _prepare_schema(value: Any) -> str | None:
    """Check the schema itself against the Draft 2020-12 metaschema."""
    if not isinstance(value, (dict, bool)):
        return f"expected a JSON schema object, got {quote(value)}"
    from jsonschema import Draft202012Validator, SchemaError

    try:
        Draft202012Validator.check_schema(value)
    except SchemaError as exc:
        message = f"invalid JSON schema at {exc.json_path}: {exc.message}"
        return shorten(message, SCHEMA_REASON_LIMIT)
    return None


@functools.lru_cache(maxsize=64)
def _validator(schema_json: str) -> Draft202012Validator:
    """One validator per distinct schema: a suite reuses its schema across many outputs."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(schema_json), format_checker=Draft202012Validator.FORMAT_CHECKER)


@register("json_schema", prepare=_prepare_schema)
def json_schema(output: str, value: Any, ctx: CheckContext) -> tuple[bool, str]:
    """The output's JSON value validates against the schema `value` (Draft 2020-12)."""
    from jsonschema.exceptions import best_match
    from referencing.exceptions import Unresolvable

    data = _load_output_json(output)
    try:
        error = best_match(_validator(canonical_json(value)).iter_errors(data))
    except Unresolvable as exc:
        raise CheckFailure(f"schema reference cannot be resolved: {exc}") from exc
    if error is None:
        return True, "output matches the JSON schema"
    return False, shorten(f"{error.json_path}: {error.message}", SCHEMA_REASON_LIMIT)


# ---------------------------------------------------------------- json_path


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1 (as it would be in Python)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(json_equal, a, b))
    return type(a) is type(b) and a == b


def _prepare_json_path(value: Any) -> str | None:
    if not isinstance(value, dict) or set(value) != {"path", "equals"}:
        return f"expected {{path: '$...', equals: <value>}}, got {quote(value)}"
    if not isinstance(value["path"], str):
        return f"path must be a string, got {quote(value['path'])}"
    try:
        parse_path(value["path"])
    except PathSyntaxError as exc:
        return f"invalid JSON path {quote(value['path'])}: {exc} ({PATH_SUBSET})"
    return None


@register("json_path", prepare=_prepare_json_path)
def json_path(output: str, value: dict[str, Any], ctx: CheckContext) -> tuple[bool, str]:
    """The output's JSON value at `path` equals `equals` (`$.metadata...`: an app's metadata)."""
    problem = _prepare_json_path(value)
    if problem:
        raise CheckFailure(problem)
    path, want = value["path"], value["equals"]
    steps = parse_path(path)
    if steps and steps[0] == "metadata" and ctx.metadata is not None:
        data = {"metadata": ctx.metadata}  # what an application returned besides its answer
    else:
        data = _load_output_json(output)
    try:
        got = resolve_path(data, steps)
    except PathNotFound as exc:
        return False, f"{path} not found: {exc}"
    if json_equal(got, want):
        return True, f"{path} == {quote(want)}"
    return False, f"expected {path} == {quote(want)}, got {quote(got)}"

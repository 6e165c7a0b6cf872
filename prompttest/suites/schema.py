"""Validate suite data against the shipped JSON Schema; say what is wrong in words.

jsonschema finds the problem; this module turns the most relevant one into a single
sentence ("unknown key 'promt' in case 'france'") with the line of the offending node.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from prompttest.errors import SuiteError
from prompttest.io.yamlsource import Lines, YamlPath, line_of

if TYPE_CHECKING:  # jsonschema costs ~50 ms to import: only load it to validate
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true/false)",
    "null": "empty",
}
# Keys people reach for that live somewhere else.
PLACEMENT_HINTS = {
    "model": "a model is a target: target: openai/gpt-4o-mini",
    "api_key": "keys come from the environment (e.g. OPENAI_API_KEY), never from suite files",
    "api_base": "api_base belongs on a target: targets: [{model: ..., api_base: ...}]",
    "base_url": "the endpoint is a target's api_base: {model: ..., api_base: ...}",
    "assert": "checks go under expect:",
    "tests": "cases go under cases:",
}
_NAME_RULE = "must start with a letter or digit and use only letters, digits and {chars}"


@functools.cache
def suite_schema() -> dict[str, Any]:
    """The JSON Schema of a suite file, as shipped in the package."""
    text = resources.files("prompttest").joinpath("schemas/suite.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def _validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(suite_schema())


@functools.cache
def _case_validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    schema = suite_schema()
    return Draft202012Validator({"$defs": schema["$defs"], "$ref": "#/$defs/case"})


def known_checks() -> list[str]:
    """Check names from the registry (the schema's list if it cannot be imported)."""
    try:
        from prompttest.checks import known_checks as registry_checks
    except ImportError:
        return list(suite_schema()["$defs"]["check"]["properties"])
    return list(registry_checks())


def validate_suite_data(data: Any, lines: Lines, *, file: str) -> None:
    """Raise SuiteError for the most relevant schema violation in a whole suite file."""
    if not isinstance(data, dict):
        got = "empty" if data is None else _type_word(data)
        raise SuiteError(
            f"a suite file must be a mapping with a 'cases' key; this one is {got}",
            file=file,
            line=lines.get(()),
            hint="see `prompttest init` for an example suite",
        )
    from jsonschema.exceptions import best_match

    error = best_match(_validator().iter_errors(data))
    if error is not None:
        path = tuple(error.absolute_path)
        raise _explain(error, data, path, file=file, line_for=lambda p: line_of(lines, p))


def validate_case_row(row: dict[str, Any], *, label: str, file: str, line: int) -> None:
    """Validate one case read from a CSV/JSONL row; errors point at the row's line."""
    from jsonschema.exceptions import best_match

    error = best_match(_case_validator().iter_errors(row))
    if error is not None:
        path = tuple(error.absolute_path)
        raise _explain(error, row, path, file=file, line_for=lambda p: line, root=label)


def _explain(
    error: ValidationError,
    data: Any,
    path: YamlPath,
    *,
    file: str,
    line_for: Callable[[YamlPath], int | None],
    root: str = "",
) -> SuiteError:
    """Turn one jsonschema error into a SuiteError a user can act on."""
    kind, value, instance = error.validator, error.validator_value, error.instance
    title = error.schema.get("title") if isinstance(error.schema, dict) else None
    where = _dotted(path, root)
    line = line_for(path)
    hint: str | None = None
    if kind == "additionalProperties" and isinstance(instance, dict):
        known = list(error.schema.get("properties", {}))
        key = next(k for k in instance if k not in known)
        line = line_for(path + (key,))
        if title == "check":
            checks = known_checks()
            message = f"unknown check '{key}'; known checks: {', '.join(checks)}"
            hint = _did_you_mean(key, checks)
        else:
            owner = _owner(path, data, root)
            message = f"unknown key '{key}' {owner}; known keys: {', '.join(known)}"
            hint = PLACEMENT_HINTS.get(key) or _did_you_mean(key, known)
            if title == "case" and key in known_checks():
                hint = f"checks go under expect: - {key}: ..."
    elif kind == "type":
        expected = [value] if isinstance(value, str) else list(value)
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in expected)
        message = f"{where} must be {words}, got {_type_word(instance)}"
        if title == "check":
            hint = "write each check as a mapping under expect:, e.g. - contains: Paris"
        elif expected == ["string"] and isinstance(instance, (int, float)):
            hint = f"quote it to make it text: '{_yaml_scalar(instance)}'"
    elif kind == "required" and isinstance(instance, dict):
        missing = [k for k in value if k not in instance]
        names = " and ".join(f"'{k}'" for k in missing)
        message = f"{where} has no {names}"
        if title == "case":
            hint = "every case needs an id that is unique in its suite, e.g. id: france"
        elif not path and not root:
            message = "the suite has no 'cases'"
            hint = "add cases: (a list) or cases: path/to/cases.csv (or .jsonl)"
    elif kind == "minProperties":
        message = f"{where} is an empty check"
        hint = "write a check name and its value, e.g. - contains: Paris"
    elif kind == "maxProperties" and isinstance(instance, dict):
        message = f"{where} has more than one check: {', '.join(instance)}"
        hint = "write each check as its own list item, starting with '-'"
    elif kind in ("minItems", "minLength"):
        message = f"{where} must not be empty"
        if path == ("cases",) and not root:
            message = "the suite has no cases"
            hint = "add at least one case: - id: first"
    elif kind == "minimum":
        message = f"{where} must be at least {value}, got {instance}"
    elif kind == "enum":
        message = f"{where} must be one of {', '.join(map(str, value))}; got {instance!r}"
    elif kind == "pattern" and path and path[-1] in ("suite", "id"):
        noun = "suite name" if path[-1] == "suite" else "case id"
        chars = "_ . -" if path[-1] == "suite" else "_ . : -"
        message = f"{noun} '{instance}' {_NAME_RULE.format(chars=chars)}"
    else:
        message = f"{where}: {error.message}"
    return SuiteError(message, file=file, line=line, hint=hint)


def _dotted(path: YamlPath, root: str = "") -> str:
    """`("cases", 2, "vars")` -> `cases[2].vars`; `root` (`row 3`) prefixes rows."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    if root:
        return f"{root}: {text}" if text else root
    return text or "the suite"


def _owner(path: YamlPath, data: Any, root: str) -> str:
    """Name the object that holds an unknown key, the way a user would."""
    if not path and not root:
        return "at the top of the suite"
    if len(path) == 2 and path[0] == "cases" and isinstance(data, dict):
        case = data["cases"][path[1]]
        if isinstance(case, dict) and isinstance(case.get("id"), (str, int)):
            return f"in case '{case['id']}'"
    if path and path[-1] in ("is_json", "json_path"):
        return f"in the {path[-1]} check"
    return f"in {_dotted(path, root)}"


def _did_you_mean(word: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def _type_word(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    for name, kind in (("object", dict), ("array", list), ("string", str)):
        if isinstance(value, kind):
            return _TYPE_WORDS[name]
    return "an integer" if isinstance(value, int) else "a number"


def _yaml_scalar(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)

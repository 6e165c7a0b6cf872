"""`{{ name }}` placeholders, filled from a case's variables.

Deliberately tiny: no filters, no logic, no escaping rules to learn. A placeholder is
`{{`, optional spaces, a name (`country`, or dotted `user.name` to walk nested mappings
and lists), optional spaces, `}}`. Anything else between double braces is left as
written, so prompts may still talk about other template languages.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from prompttest.errors import SuiteError
from prompttest.model import canonical_json

_PLACEHOLDER = re.compile(r"\{\{\s*([^\W\d][\w-]*(?:\.[\w-]+)*)\s*\}\}")
_MISSING = object()


def variables_in(text: str) -> set[str]:
    """The variable names (dotted as written) that `text` uses."""
    return {match.group(1) for match in _PLACEHOLDER.finditer(text)}


def render(
    text: str,
    vars: dict[str, Any],
    *,
    where: str,
    file: str | Path | None,
    line: int | None,
) -> str:
    """Fill every placeholder in `text` from `vars`.

    `where` names the owner of the variables for the error ("case 'france'"); a
    missing variable raises SuiteError at `file`:`line`, with the known names as hint.
    """

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        value = lookup(vars, name)
        if value is _MISSING:
            raise SuiteError(
                f"{where} uses {{{{ {name} }}}} but has no variable '{name}'",
                file=str(file) if file is not None else None,
                line=line,
                hint=_missing_hint(vars, name, where),
            )
        return to_text(value)

    return _PLACEHOLDER.sub(fill, text)


def render_value(
    value: Any,
    vars: dict[str, Any],
    *,
    where: str,
    file: str | Path | None,
    line: int | None,
) -> Any:
    """Render every string inside `value` (lists and mappings, recursively)."""
    if isinstance(value, str):
        return render(value, vars, where=where, file=file, line=line)
    if isinstance(value, list):
        return [render_value(item, vars, where=where, file=file, line=line) for item in value]
    if isinstance(value, dict):
        return {
            key: render_value(item, vars, where=where, file=file, line=line) for key, item in value.items()
        }
    return value


def lookup(vars: dict[str, Any], name: str) -> Any:
    """The value of `name`: an exact key first (a CSV column may be called `a.b`),
    then a walk through nested mappings and list indexes. `_MISSING` if absent."""
    if name in vars:
        return vars[name]
    value: Any = vars
    for part in name.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def to_text(value: Any) -> str:
    """How a value appears in a prompt: strings as is, lists and mappings as
    canonical JSON, other scalars through str()."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, dict)):
        return canonical_json(value)
    return str(value)


def _missing_hint(vars: dict[str, Any], name: str, where: str) -> str:
    if not vars:
        return f"{where} has no variables; add them under vars:"
    # For `user.nmae`, show what the deepest existing mapping offers.
    parts = name.split(".")
    for end in range(len(parts) - 1, 0, -1):
        parent = lookup(vars, ".".join(parts[:end]))
        if isinstance(parent, dict):
            keys = ", ".join(sorted(parent)) or "none"
            return f"'{'.'.join(parts[:end])}' has keys: {keys}"
    return f"variables of {where}: {', '.join(sorted(vars))}"


def render_body(
    value: Any, vars: dict[str, Any], *, where: str, file: str | Path | None, line: int | None
) -> Any:
    """A JSON body with the case's vars filled in. A string that is nothing but one
    placeholder takes the variable's value as it is (a number stays a number, a list a
    list); one inside other text takes its text, as in a prompt."""
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value.strip())
        if whole and lookup(vars, whole.group(1)) is not _MISSING:
            return lookup(vars, whole.group(1))
        return render(value, vars, where=where, file=file, line=line)
    if isinstance(value, list):
        return [render_body(item, vars, where=where, file=file, line=line) for item in value]
    if isinstance(value, dict):
        return {
            key: render_body(item, vars, where=where, file=file, line=line) for key, item in value.items()
        }
    return value

"""What an application answers, read the same way whatever its kind."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from ...model import ToolCall
from ..faults import one_line
from .base import Fields


class BadReply(ValueError):
    """A reply that is no answer; each kind says who gave it (`returned`, `printed`, ...)."""


def read_reply(reply: Any) -> Fields:
    """Output fields from a string, a mapping or an object with a `text` attribute."""
    if isinstance(reply, str):
        return {"text": reply}
    kind = "None" if reply is None else type(reply).__name__
    if not isinstance(reply, Mapping) and not hasattr(reply, "text"):
        raise BadReply(f"{kind}, expected a string or a mapping with text")
    get = functools.partial(_field, reply)
    tool_calls = _tool_calls(get("tool_calls"), kind)
    text = get("text")
    if text is None and not tool_calls:
        raise BadReply(f"{kind} without text, expected a string or a mapping with text")
    if text is not None and not isinstance(text, str):
        raise BadReply(f"{kind} whose text is {type(text).__name__}, expected a string")
    prompt_tokens, completion_tokens = _tokens(get("tokens"), kind)
    return {
        "text": text or "",
        "tool_calls": tool_calls,
        "metadata": _json_value(get("metadata"), f"{kind} whose metadata"),
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "cost_usd": _number(get("cost_usd"), f"{kind} whose cost_usd"),
    }


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)


def _tool_calls(raw: Any, kind: str) -> tuple[ToolCall, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, (list, tuple)):
        raise BadReply(
            f"{kind} whose tool_calls is {type(raw).__name__}, expected a list of {{name, arguments}}"
        )
    calls = []
    for item in raw:
        function = _field(item, "function")  # OpenAI's shape: {type: function, function: {...}}
        source = function if function is not None else item
        name, arguments = _field(source, "name"), _field(source, "arguments")
        if not isinstance(name, str) or not name:
            raise BadReply(f"{kind} with a tool call that has no name")
        if arguments is not None and not isinstance(arguments, str):
            arguments = json.dumps(_json_value(arguments, f"{kind} whose tool call {name}'s arguments"))
        calls.append(ToolCall.parse(name, arguments))
    return tuple(calls)


def _json_value(value: Any, what: str) -> Any:
    """`value` as JSON reads it back: what is cached and snapshotted must equal what was
    answered (a tuple would come back from the cache as a list, and show as a change)."""
    if value is None:
        return None
    try:
        return json.loads(json.dumps(value, ensure_ascii=False))
    except (TypeError, ValueError) as exc:
        raise BadReply(f"{what} is not JSON: {exc}") from None


def _tokens(raw: Any, kind: str) -> tuple[int | None, int | None]:
    """`{prompt, completion}`, or an int: the completion tokens (what an app knows most often)."""
    if raw is None:
        return None, None
    if _is_count(raw):
        return None, raw
    parts = ("prompt", "completion")
    if isinstance(raw, Mapping) and set(raw) <= set(parts) and all(_is_count(raw.get(p)) for p in parts):
        return raw.get("prompt"), raw.get("completion")
    raise BadReply(
        f"{kind} whose tokens is {one_line(repr(raw), 60)}, expected {{prompt, completion}} or an int"
    )


def _is_count(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)


def _number(raw: Any, what: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    raise BadReply(f"{what} is {type(raw).__name__}, expected a number")

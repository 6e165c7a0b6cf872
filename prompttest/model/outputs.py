"""What a provider answered: an Output (text, tool calls, finish reason, refusal, usage).

No I/O here; the cache, the run record and the snapshot store these as their dicts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool (function) call in an answer: its name and its arguments, parsed as JSON.

    Arguments that are not valid JSON are kept as the text the model wrote, with
    `valid_json` false: the `tool_args_valid` check fails on them, the call does not.
    """

    name: str
    arguments: Any = None
    valid_json: bool = True

    @classmethod
    def parse(cls, name: str, arguments_text: str | None) -> ToolCall:
        """From a provider's `function.name` and `function.arguments` (a JSON text)."""
        text = arguments_text if arguments_text is not None else ""
        if not text.strip():
            return cls(name=name, arguments={})  # no arguments at all: an empty object
        try:
            return cls(name=name, arguments=json.loads(text))
        except (ValueError, RecursionError):
            return cls(name=name, arguments=text, valid_json=False)

    def to_data(self) -> dict[str, Any]:
        """The snapshot and record form: name, then arguments (or their text when not JSON)."""
        if not self.valid_json:
            return {"name": self.name, "arguments_text": self.arguments}
        return {"name": self.name, "arguments": _sorted_keys(self.arguments)}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> ToolCall:
        if "arguments_text" in data:
            return cls(name=str(data["name"]), arguments=str(data["arguments_text"]), valid_json=False)
        return cls(name=str(data["name"]), arguments=data.get("arguments", {}))


def _sorted_keys(value: Any) -> Any:
    """Nested mappings with their keys sorted: the same arguments always read the same."""
    if isinstance(value, Mapping):
        return {str(k): _sorted_keys(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


def tool_calls_from(data: Any) -> tuple[ToolCall, ...]:
    """Tool calls read back from a record, a cache entry or a snapshot (absent: none)."""
    return tuple(ToolCall.from_data(item) for item in data or ())


def answer_text(text: str, tool_calls: tuple[ToolCall, ...] = (), refusal: str | None = None) -> str:
    """The whole answer as one text: what verdicts compare, repeats count and reports diff.

    The text alone when there is nothing else (so a text answer reads as it always did);
    else each tool call as its name and its arguments one per line, so that a diff shows
    which argument moved.
    """
    if not tool_calls and refusal is None:
        return text
    parts = [text] if text else []
    if refusal is not None:
        parts.append(f"[refusal] {refusal}")
    for call in tool_calls:
        if call.valid_json:
            arguments = json.dumps(call.arguments, indent=2, sort_keys=True, ensure_ascii=False)
        else:
            arguments = f"(not JSON) {call.arguments}"
        parts.append(f"[tool call] {call.name} {arguments}")
    return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class Output:
    """One provider answer (fresh or from the cache): its text, and what else the model said.

    An answer may be tool calls with no text; `finish_reason` is the provider's (`stop`,
    `length`, `tool_calls`, `content_filter`, ...), `refusal` the refusal a provider gives
    apart from the text (OpenAI's structured outputs).
    """

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None  # None = unknown, never silently 0
    latency_ms: float | None = None
    cached: bool = False
    embedding: tuple[float, ...] | None = None  # the answer to an embedding call
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    refusal: str | None = None
    metadata: Any = None  # what an application target returned besides its answer (JSON)

    @property
    def answer(self) -> str:
        """Text, refusal and tool calls as one text (see `answer_text`)."""
        return answer_text(self.text, self.tool_calls, self.refusal)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "text": self.text,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
            "latency_ms": self.latency_ms,
        }
        if self.embedding is not None:
            data["embedding"] = list(self.embedding)
        if self.tool_calls:
            data["tool_calls"] = [call.to_data() for call in self.tool_calls]
        if self.finish_reason is not None:
            data["finish_reason"] = self.finish_reason
        if self.refusal is not None:
            data["refusal"] = self.refusal
        if self.metadata is not None:
            data["metadata"] = self.metadata
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, cached: bool = False) -> Output:
        vector = data.get("embedding")
        return cls(
            text=data["text"],
            prompt_tokens=data.get("prompt_tokens"),
            completion_tokens=data.get("completion_tokens"),
            cost_usd=data.get("cost_usd"),
            latency_ms=data.get("latency_ms"),
            cached=cached,
            embedding=tuple(float(x) for x in vector) if vector is not None else None,
            tool_calls=tool_calls_from(data.get("tool_calls")),
            finish_reason=data.get("finish_reason"),
            refusal=data.get("refusal"),
            metadata=data.get("metadata"),
        )


@dataclass(frozen=True, slots=True)
class Said:
    """One assistant message of a conversation: in which turn, after which user message
    (the first step of a turn), its text and its tool calls."""

    turn: int
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    user: str | None = None  # the user message this turn opened with (first step only)

    def to_data(self) -> dict[str, Any]:
        """The snapshot and record form: turn, user, output, then the tool calls."""
        data: dict[str, Any] = {"turn": self.turn}
        if self.user is not None:
            data["user"] = self.user
        data["output"] = self.text
        if self.tool_calls:
            data["tool_calls"] = [call.to_data() for call in self.tool_calls]
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Said:
        user = data.get("user")
        return cls(
            turn=int(data["turn"]),
            text=str(data.get("output", "")),
            tool_calls=tool_calls_from(data.get("tool_calls")),
            user=None if user is None else str(user),
        )


def transcript_from(data: Any) -> tuple[Said, ...]:
    return tuple(Said.from_data(item) for item in data or ())


def transcript_text(transcript: tuple[Said, ...]) -> str:
    """A conversation as one text, turn by turn: what verdicts compare and reports diff."""
    parts = []
    for said in transcript:
        if said.user is not None:
            parts.append(f"[turn {said.turn}] user: {said.user}")
        parts.append(f"[turn {said.turn}] assistant: {answer_text(said.text, said.tool_calls)}")
    return "\n".join(parts)

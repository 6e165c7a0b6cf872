"""A conversation's calls, one after another, replayed from the answers so far.

Each turn is sent with the whole conversation before it; the model's answer is appended,
then the next user turn. With `tool_results`, an answer's tool calls are answered from the
suite and the model is called again (an agent loop), at most `max_steps` calls a turn.
Everything is a pure function of the job and the answers: the runner asks `next_calls`
until there are none, and each call's cache key is the conversation up to it, so a
changed turn 3 re-calls turns 3 and after only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..calls.runner import Answer
from ..model import Call, CheckResult, CheckSpec, Job, Output, Said, ToolCall
from ..model.inputs import content_text
from ..model.outputs import transcript_text
from ..suites.toolresults import NO_RESULT, ResultFn, canned_result

LoadFn = Callable[[str], ResultFn]  # `module:function` -> the function


@dataclass(frozen=True, slots=True)
class Step:
    """One call of the conversation and its answer."""

    turn: int
    call: Call
    answer: Answer


@dataclass(frozen=True, slots=True)
class Walk:
    """How far a conversation got with the answers at hand."""

    steps: tuple[Step, ...]
    next_call: Call | None  # what to ask next; None: the conversation is over
    stopped: str | None = None  # why it ended before its last turn was answered, if it did

    @property
    def error(self) -> str | None:
        """The error of the call that failed, naming its turn (later turns were not sent)."""
        failed = next((step for step in self.steps if step.answer.output is None), None)
        return None if failed is None else f"turn {failed.turn}: {failed.answer.error}"

    def answered(self, turn: int) -> Step | None:
        """The last answer of a turn that was answered to the end (no tool call left open)."""
        if self.stopped is not None and self.steps and turn >= self.steps[-1].turn:
            return None
        return next((step for step in reversed(self.steps) if step.turn == turn), None)

    def transcript(self, job: Job) -> tuple[Said, ...]:
        said = []
        for index, step in enumerate(self.steps):
            output = step.answer.output
            if output is None:
                break
            opens = index == 0 or self.steps[index - 1].turn != step.turn
            user = _user_text(job, step.turn) if opens else None
            said.append(Said(turn=step.turn, text=output.text, tool_calls=output.tool_calls, user=user))
        return tuple(said)


def walk(job: Job, first: Call, answers: Mapping[str, Answer], *, python: LoadFn) -> Walk:
    """Replay the conversation that starts with `first` (one sample's first call)."""
    messages = list(first.messages)
    steps: list[Step] = []
    for turn, rendered in enumerate(job.turns, 1):
        if turn > 1:
            messages.append(rendered.message)
        for step in range(1, job.max_steps + 1):
            call = first if not steps else replace(first, messages=tuple(messages))
            answer = answers.get(call.cache_key())
            if answer is None:
                return Walk(tuple(steps), call)
            steps.append(Step(turn, call, answer))
            output = answer.output
            if output is None:
                return Walk(tuple(steps), None)
            messages.append(assistant_message(output, turn, step))
            if not output.tool_calls:
                break
            if job.tool_results is None:
                if turn == len(job.turns):
                    break  # the last answer may call tools: the checks read the calls
                stopped = f"turn {turn} answered with tool calls and the suite gives no tool_results"
                return Walk(tuple(steps), None, stopped)
            if step == job.max_steps:
                stopped = f"turn {turn}: still calling tools after max_steps ({job.max_steps}) calls"
                return Walk(tuple(steps), None, stopped)
            results = _tool_messages(job.tool_results, output, turn, step, python)
            if isinstance(results, str):
                return Walk(tuple(steps), None, results)
            messages += results
    return Walk(tuple(steps), None)


def assistant_message(output: Output, turn: int, step: int) -> dict[str, Any]:
    """The answer as the next call sends it back; tool call ids are made from the position,
    not taken from the provider, so that the next call's cache key does not change."""
    message: dict[str, Any] = {"role": "assistant", "content": output.text or None}
    if output.tool_calls:
        message["tool_calls"] = [
            {
                "id": _call_id(turn, step, index),
                "type": "function",
                "function": {"name": call.name, "arguments": _arguments_text(call)},
            }
            for index, call in enumerate(output.tool_calls)
        ]
    return message


def _arguments_text(call: ToolCall) -> str:
    return json.dumps(call.arguments, sort_keys=True) if call.valid_json else str(call.arguments)


def _tool_messages(
    tool_results: Mapping[str, Any], output: Output, turn: int, step: int, python: LoadFn
) -> list[dict[str, Any]] | str:
    """The tool messages answering every call of `output`, or why one cannot be answered."""
    messages = []
    for index, call in enumerate(output.tool_calls):
        result = canned_result(tool_results, call, python=python)
        if result is NO_RESULT:
            return f"turn {turn}: no canned result for tool '{call.name}' (add it to tool_results)"
        content = result if isinstance(result, str) else json.dumps(result, sort_keys=True)
        messages.append({"role": "tool", "tool_call_id": _call_id(turn, step, index), "content": content})
    return messages


def _call_id(turn: int, step: int, index: int) -> str:
    return f"call_{turn}_{step}_{index}"


def _user_text(job: Job, turn: int) -> str:
    message = job.turns[turn - 1].message if turn > 1 else job.call.messages[-1]
    return content_text(message.get("content", ""))


@dataclass(frozen=True, slots=True)
class Grading:
    """One check of a conversation and the answer it grades (None: that turn was not reached)."""

    spec: CheckSpec
    step: Step | None
    transcript: str  # the conversation up to that answer, for judges
    tool_calls: tuple[ToolCall, ...] = ()  # every call the turn made, over its steps


def gradings(job: Job, walked: Walk) -> list[Grading]:
    """Every check of the conversation: each turn's on that turn's last answer, then the
    case's on the last answer of all."""
    said = walked.transcript(job)
    found = []
    for turn, rendered in enumerate(job.turns, 1):
        step = walked.answered(turn)
        upto = transcript_text(tuple(s for s in said if s.turn <= turn))
        calls = tuple(call for s in said if s.turn == turn for call in s.tool_calls)
        found += [Grading(spec, step, upto, calls) for spec in rendered.checks]
    turns = len(job.turns)
    last = walked.answered(turns)
    calls = tuple(call for s in said if s.turn == turns for call in s.tool_calls)
    found += [Grading(spec, last, transcript_text(said), calls) for spec in job.checks]
    return found


def completion(job: Job, walked: Walk) -> CheckResult:
    """The check every conversation has: did it get through all its turns?"""
    if walked.stopped is not None:
        return CheckResult(label=COMPLETES, passed=False, reason=walked.stopped, name="conversation")
    turns = len(job.turns)
    reason = f"{turns} turn{'s' if turns != 1 else ''} answered in {len(walked.steps)} calls"
    return CheckResult(label=COMPLETES, passed=True, reason=reason, name="conversation")


def not_reached(grading: Grading, walked: Walk) -> CheckResult:
    return CheckResult(
        label=grading.spec.label,
        passed=False,
        reason=f"not reached: {walked.stopped}",
        name=grading.spec.name,
    )


COMPLETES = "conversation completes"

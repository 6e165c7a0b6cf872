"""`exec:` targets: one process a call, the input on stdin, the answer on stdout."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import signal
from collections.abc import Mapping
from typing import Any

from ...model import Call
from ..faults import ProviderError, RetryPolicy, one_line
from .base import REAP_S, STDERR_TAIL, Fields, request_of
from .replies import BadReply, read_reply


def exec_spec(app: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = app["exec"]
    return {"command": spec} if isinstance(spec, (str, list)) else spec


def command_of(spec: Mapping[str, Any]) -> list[str]:
    command = spec["command"]
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


async def answer_exec(call: Call, policy: RetryPolicy) -> Fields:
    """Run the command (in the project root), input on stdin, the answer on stdout."""
    app = call.app or {}
    spec = exec_spec(app)
    command = command_of(spec)
    stdin = _exec_input(call, spec.get("input") or "json")
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=app.get("root"),
            start_new_session=True,  # its own process group: a timeout kills what it started too
        )
    except OSError as exc:  # no such command, not executable: every call would fail the same
        raise ProviderError(f"cannot run {command[0]}: {exc.strerror or exc}", fatal=True) from None
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(stdin), policy.timeout_s)
    except TimeoutError:
        _kill(process)
        # Bounded: asyncio waits for its pipes to close too, which one that left its group holds.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), REAP_S)
        raise ProviderError(f"timed out after {policy.timeout_s:g} s", retryable=True) from None
    except BaseException:  # cancelled (Ctrl-C, a stopped run): the process must not outlive the call
        _kill(process)
        raise
    if process.returncode != 0:
        raise ProviderError(_exit_message(process.returncode, stderr))
    return _exec_answer(stdout.decode("utf-8", errors="replace"))


def _exec_input(call: Call, mode: str) -> bytes:
    """`json`: `{vars, messages, params}`; `text`: the last user message's content."""
    if mode not in ("json", "text"):
        raise ProviderError(f"exec input {mode!r}: expected json or text", fatal=True)
    if mode == "text":
        return _last_user_text(call.messages).encode("utf-8")
    return json.dumps(request_of(call), ensure_ascii=False).encode("utf-8")


def _last_user_text(messages: tuple[dict[str, Any], ...]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # parts: their text, an image has none
                return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
            return content if isinstance(content, str) else ""
    return ""


def _kill(process: asyncio.subprocess.Process) -> None:
    """Kill the process and every process it started (its own group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()


def _exit_message(code: int | None, stderr: bytes) -> str:
    """`exit code 2: ValueError: no question`: the code, and stderr's last line, where a
    traceback or a usage message ends."""
    lines = [line.strip() for line in stderr.decode("utf-8", errors="replace").splitlines() if line.strip()]
    tail = one_line(lines[-1], STDERR_TAIL) if lines else "(nothing on stderr)"
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}: {tail}"
    return f"exit code {code}: {tail}"


def _exec_answer(stdout: str) -> Fields:
    """stdout, less one trailing newline, is the text; a JSON object with `text` is a reply."""
    text = stdout[:-2] if stdout.endswith("\r\n") else stdout.removesuffix("\n")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return {"text": text}
    if not isinstance(data, dict) or "text" not in data:
        return {"text": text}
    try:
        return read_reply(data)
    except BadReply as problem:
        raise ProviderError(f"printed {problem}") from None

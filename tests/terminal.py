"""`prompttest review` on a real pseudo-terminal: the tests type keys at its prompts."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time

PROMPT = b"q quit >"


def drive_review(
    cwd: str, keys: list[str], *, then_ctrl_c: bool = False, timeout: float = 60
) -> tuple[int, str]:
    """Type each key at its prompt; at the prompt after the last, send SIGINT if `then_ctrl_c`
    (what Ctrl-C on a terminal sends). Returns the exit code and everything the screen showed."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"TERM": "xterm", "COLUMNS": "120"}
    child = subprocess.Popen(
        [sys.executable, "-m", "prompttest", "review"],
        cwd=cwd,
        env=env,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        close_fds=True,
    )
    os.close(follower)
    screen, pending, deadline, prompts = b"", list(keys), time.time() + timeout, 0
    while time.time() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
            if screen.count(PROMPT) > prompts:
                prompts += 1
                if pending:
                    os.write(leader, pending.pop(0).encode())
                elif then_ctrl_c:
                    child.send_signal(signal.SIGINT)
        elif child.poll() is not None:
            break
    code = child.wait(timeout=10)
    os.close(leader)
    return code, screen.decode(errors="replace")

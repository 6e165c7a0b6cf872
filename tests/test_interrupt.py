"""Ctrl-C or SIGTERM during a run: finished calls stay cached, no snapshot is touched, exit 130/143."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import Project


@pytest.mark.parametrize(("stop", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_signal_keeps_finished_calls_and_the_next_run_resumes(
    project: Project, stop: signal.Signals, code: int
) -> None:
    rows = "\n".join(f"  - id: c{i}\n    vars: {{n: {i}}}" for i in range(12))
    project.suite(
        "slow",
        f'target: {{id: fake, model: openai/fake, api_base: "{{api_base}}"}}\n'
        f'prompt: "Count {{{{ n }}}}"\ncases:\n{rows}\n',
    )
    project.server.latency = 0.4
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    child = subprocess.Popen(
        [sys.executable, "-m", "prompttest", "run", "-j", "2"],
        cwd=project.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while project.server.count < 6 and time.time() < deadline:  # let a few calls finish
        time.sleep(0.05)
    child.send_signal(stop)
    out, err = child.communicate(timeout=30)
    assert child.returncode == code, out + err
    assert "interrupted: finished calls are cached, no snapshot was written" in err
    assert "Traceback" not in err
    assert not (project.root / "snapshots").exists()  # nothing half-written, nothing at all

    sent_before = project.server.count
    project.server.latency = 0
    done = subprocess.run(
        [sys.executable, "-m", "prompttest", "run", "-j", "2"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    resumed = project.server.count - sent_before
    assert 0 < resumed <= 12 - 4  # at least the first 4 finished calls were not sent again
    assert "12 new" in done.stdout

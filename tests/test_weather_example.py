"""examples/weather, the tool-calling example, against the test server standing in for the model.

The assistant here answers as a good model would; the committed snapshot is exactly what a
run writes, and the CI gate passes on it. A model that gets one argument wrong regresses
that key alone, and the diff names the argument.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fake_server import FakeServer, Reply

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "weather"

# What the assistant calls for each question (the good answers of the example).
GOOD: dict[str, Reply] = {
    "What's the weather in Paris right now?": Reply(None, tool_calls=(("get_weather", {"city": "Paris"}),)),
    "How warm is it in Tokyo? In Fahrenheit, please.": Reply(
        None, tool_calls=(("get_weather", {"city": "Tokyo", "unit": "fahrenheit"}),)
    ),
    "Will it rain in Berlin tomorrow?": Reply(
        None, tool_calls=(("get_forecast", {"city": "Berlin", "days": 1}),)
    ),
    "Is it warmer in Rome or in Madrid right now?": Reply(
        None, tool_calls=(("get_weather", {"city": "Rome"}), ("get_weather", {"city": "Madrid"}))
    ),
    "Thanks, that's all!": Reply("You're welcome! Have a nice day."),
}


def assistant(answers: dict[str, Reply]) -> Any:
    def reply(request: dict[str, Any]) -> Reply:
        return answers[request["messages"][-1]["content"]]

    return reply


@pytest.fixture
def example(tmp_path: Path) -> Path:
    root = tmp_path / "weather"
    shutil.copytree(EXAMPLE, root)
    return root


def prompttest(root: Path, server: FakeServer, *args: str) -> subprocess.CompletedProcess[str]:
    # The example names a hosted model; its OpenAI endpoint is the test server here.
    env = {k: v for k, v in os.environ.items() if k != "CI" and not k.startswith("PROMPTTEST_")}
    env |= {"OPENAI_API_BASE": server.url, "OPENAI_API_KEY": "sk-dummy-for-tests"}
    command = [sys.executable, "-m", "prompttest", *args]
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_the_committed_snapshot_is_what_a_run_writes_and_the_gate_passes(
    example: Path, fake_server: FakeServer
) -> None:
    fake_server.reply = assistant(GOOD)
    committed = (example / "snapshots" / "weather.yaml").read_bytes()
    gate = prompttest(example, fake_server, "run", "--ci")
    assert gate.returncode == 0, gate.stdout + gate.stderr
    assert "5 unchanged" in gate.stdout
    assert fake_server.count == 5  # one request a case
    rewritten = prompttest(example, fake_server, "run", "-u", "--no-cache")
    assert rewritten.returncode == 0, rewritten.stdout + rewritten.stderr
    assert (example / "snapshots" / "weather.yaml").read_bytes() == committed


def test_one_wrong_argument_regresses_one_key_and_the_diff_names_it(
    example: Path, fake_server: FakeServer
) -> None:
    wrong = dict(GOOD)
    wrong["Will it rain in Berlin tomorrow?"] = Reply(
        None, tool_calls=(("get_forecast", {"city": "Berlin", "days": 2}),)
    )
    fake_server.reply = assistant(wrong)
    gate = prompttest(example, fake_server, "run", "--ci", "--markdown", "r.md")
    assert gate.returncode == 1, gate.stdout + gate.stderr
    assert "1 regressed" in gate.stdout and "4 unchanged" in gate.stdout
    assert "weather/berlin-tomorrow@assistant" in gate.stdout
    markdown = (example / "r.md").read_text()
    assert '-  "days": 1' in markdown and '+  "days": 2' in markdown
    diffed = prompttest(example, fake_server, "diff")
    assert '-  "days": 1' in diffed.stdout and '+  "days": 2' in diffed.stdout

"""examples/support (three turns) and examples/agent (a tool call with a canned result),
against the test server answering as a good model would.

The committed snapshots are exactly what a run writes, the CI gate passes on them, and an
assistant that forgets the order number in turn 2 regresses that turn alone.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fake_server import FakeServer, Reply
from test_weather_example import prompttest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def support(request: dict[str, Any], *, forget_order: bool = False) -> Reply:
    text = request["messages"][-1]["content"]
    if text.startswith("Hi, I want to return order"):
        order = text.rsplit(" ", 1)[-1].rstrip(".")
        return Reply(f"Sure, I can help with order {order}. What is the problem?")
    if "arrived broken" in text:
        if forget_order:
            return Reply("Sorry to hear that. You get a refund within 5 days.")
        return Reply(
            "Sorry to hear that. Order A-1042 is within 30 days: you get a full refund within 5 days."
        )
    return Reply("You're welcome! Have a good day.")


def agent(request: dict[str, Any]) -> Reply:
    messages = request["messages"]
    if messages[-1]["role"] == "tool":
        weather = json.loads(messages[-1]["content"])
        return Reply(f"It is {weather['temperature_c']} °C and {weather['sky']}.")
    city = "Paris" if "Paris" in messages[-1]["content"] else "Oslo"
    return Reply(None, tool_calls=(("get_weather", {"city": city}),))


@pytest.mark.parametrize(("name", "reply", "calls"), [("support", support, 3), ("agent", agent, 4)])
def test_the_committed_snapshot_is_what_a_run_writes_and_the_gate_passes(
    tmp_path: Path, fake_server: FakeServer, name: str, reply: Any, calls: int
) -> None:
    root = tmp_path / name
    shutil.copytree(EXAMPLES / name, root)
    fake_server.reply = reply
    committed = (root / "snapshots" / f"{name}.yaml").read_bytes()
    gate = prompttest(root, fake_server, "run", "--ci")
    assert gate.returncode == 0, gate.stdout + gate.stderr
    assert fake_server.count == calls
    rewritten = prompttest(root, fake_server, "run", "-u", "--no-cache")
    assert rewritten.returncode == 0, rewritten.stdout + rewritten.stderr
    assert (root / "snapshots" / f"{name}.yaml").read_bytes() == committed


def test_forgetting_the_order_in_turn_2_regresses_that_turn(tmp_path: Path, fake_server: FakeServer) -> None:
    root = tmp_path / "support"
    shutil.copytree(EXAMPLES / "support", root)
    fake_server.reply = lambda request: support(request, forget_order=True)
    gate = prompttest(root, fake_server, "run", "--ci")
    assert gate.returncode == 1, gate.stdout + gate.stderr
    row = next(line for line in gate.stdout.splitlines() if "support/broken-item@assistant" in line)
    assert row.startswith("regressed") and "turn 2: contains: A-1042" in row

"""examples/app: a retrieval-augmented answerer tested as a `python:` function and as an
`http:` service (its own stdlib server), its model being the test server.

The committed snapshot is what a run writes; the gate passes on it; a retriever that
returns the wrong passage regresses the key whose check reads the metadata.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_server import FakeServer, Reply
from test_weather_example import prompttest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "app"


def model(request: dict[str, Any]) -> Reply:
    """Answers from the passages the app put in its system message, as a careful model would."""
    passages = request["messages"][0]["content"].split("\n\n", 1)[1]
    if passages == "(none)":
        return Reply("I don't know.")
    return Reply(f"According to our policy: {passages.splitlines()[0]}")


@pytest.fixture
def example(tmp_path: Path, fake_server: FakeServer) -> Iterator[Path]:
    """The example in a folder of its own, its service running (as `python -m ragapp.server`)."""
    root = tmp_path / "app"
    shutil.copytree(EXAMPLE, root)
    fake_server.reply = model
    env = os.environ | {"OPENAI_API_BASE": fake_server.url, "OPENAI_API_KEY": "sk-dummy-for-tests"}
    service = subprocess.Popen(
        [sys.executable, "-m", "ragapp.server"], cwd=root, env=env, stdout=subprocess.PIPE, text=True
    )
    assert service.stdout is not None
    assert "serving on" in service.stdout.readline()
    yield root
    service.terminate()
    service.wait(timeout=10)


def test_the_app_is_gated_as_a_function_and_as_a_service(example: Path, fake_server: FakeServer) -> None:
    committed = (example / "snapshots" / "app.yaml").read_bytes()
    gate = prompttest(example, fake_server, "run", "--ci")
    assert gate.returncode == 0, gate.stdout + gate.stderr
    assert "6 unchanged" in gate.stdout
    assert fake_server.count == 6  # 3 questions, asked once by the function and once by the service
    cached = prompttest(example, fake_server, "run", "--ci")
    assert "6 cached" in cached.stdout and fake_server.count == 6  # key files unchanged
    rewritten = prompttest(example, fake_server, "run", "-u", "--no-cache")
    assert rewritten.returncode == 0, rewritten.stdout + rewritten.stderr
    assert (example / "snapshots" / "app.yaml").read_bytes() == committed


def test_a_broken_retriever_regresses_the_refund_answer(example: Path, fake_server: FakeServer) -> None:
    retrieve = example / "ragapp" / "retrieve.py"
    retrieve.write_text(retrieve.read_text().replace("sorted(scored)[:k]", "sorted(scored)[1:k]"))
    gate = prompttest(example, fake_server, "run", "--ci")  # a key file changed: called again
    assert gate.returncode == 1, gate.stdout + gate.stderr
    rows = [line for line in gate.stdout.splitlines() if line.startswith("regressed")]
    assert any(re.search(r"app/refund-window@function", row) for row in rows)

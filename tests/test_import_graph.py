"""The stages import one way: no arrow runs back up `docs/architecture.md`'s table, no cycle."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "import_graph.py"

spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
assert spec and spec.loader
import_graph = importlib.util.module_from_spec(spec)
spec.loader.exec_module(import_graph)


def test_the_package_imports_down_the_stages_only() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "session -> " in done.stdout and "calls -> " in done.stdout


def test_an_arrow_up_the_stages_is_reported() -> None:
    arrows = {"calls": {"session", "model"}, "checks": {"calls"}, "report": {"records"}}
    assert import_graph.back_arrows(arrows) == ["calls -> session", "checks -> calls"]


def test_a_cycle_between_modules_is_found_and_a_package_reaching_into_itself_is_not() -> None:
    graph = {
        "prompttest.a": {"prompttest.b"},
        "prompttest.b": {"prompttest.c"},
        "prompttest.c": {"prompttest.a"},
        "prompttest.model": {"prompttest.model.inputs"},
        "prompttest.model.inputs": set(),
    }
    assert import_graph.module_cycle(graph) == [f"prompttest.{m}" for m in "abca"]
    del graph["prompttest.c"]
    graph["prompttest.b"] = set()
    assert import_graph.module_cycle(graph) is None


def test_relative_imports_resolve_to_submodules_when_they_are_modules() -> None:
    graph = import_graph.module_graph()
    assert "prompttest.stopping" in graph["prompttest.io.atomic"]
    assert "prompttest" not in graph["prompttest.io.atomic"]
    assert "prompttest.records.snapshots" in graph["prompttest.records.snapshot_writer"]

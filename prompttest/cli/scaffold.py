"""`prompttest init`: lay out a project without overwriting anything that exists."""

from __future__ import annotations

from pathlib import Path

from ..io.atomic import atomic_write

EXAMPLE_SUITE = """\
# An example suite: every case runs against every target, and its checks are the
# expected properties of the output. See the README for every key and check.
suite: example
description: Country capitals, answered in one sentence.
# No target: the configured default is used ([tool.prompttest] target, or the
# embedded local model). Try a hosted one with `prompttest run -m openai/gpt-4o-mini`.
params: {temperature: 0, max_tokens: 32}
# The system line keeps a small model on the question (without it, it may answer with
# another fact about the country).
system: Answer in one sentence.
prompt: "What is the capital of {{ country }}?"
expect:
  - max_words: 12
cases:
  - id: france
    vars: {country: France}
    expect:
      - contains: Paris
  - id: germany
    vars: {country: Germany}
    expect:
      - icontains: berlin
"""

CONFIG = """
[tool.prompttest]
# target = "openai/gpt-4o-mini"   # default target of suites that name none
# judge = "openai/gpt-4o-mini"    # the model of llm_judge checks that name none
# embedding = "local/all-minilm-l6-v2"  # similar checks compare embeddings (else lexically)
concurrency = 8
"""


def scaffold(root: Path) -> list[str]:
    """Create what is missing; returns one line per thing done or kept."""
    done: list[str] = []
    for folder in ("suites", "snapshots"):
        path = root / folder
        done.append(f"kept {folder}/" if path.exists() else f"created {folder}/")
        path.mkdir(exist_ok=True)
    example = root / "suites" / "example.yaml"
    if example.exists():
        done.append("kept suites/example.yaml")
    else:
        atomic_write(example, EXAMPLE_SUITE)
        done.append("created suites/example.yaml")
    done.append(_config(root / "pyproject.toml"))
    done.append(_gitignore(root / ".gitignore"))
    return done


def _config(pyproject: Path) -> str:
    if not pyproject.exists():
        atomic_write(pyproject, CONFIG.lstrip())
        return "created pyproject.toml with [tool.prompttest]"
    text = pyproject.read_text(encoding="utf-8")
    if "[tool.prompttest]" in text:
        return "kept [tool.prompttest] in pyproject.toml"
    atomic_write(pyproject, text.rstrip("\n") + "\n" + CONFIG)
    return "added [tool.prompttest] to pyproject.toml"


def _gitignore(path: Path) -> str:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if ".prompttest/" in text.splitlines():
        return "kept .gitignore"
    prefix = text if not text or text.endswith("\n") else text + "\n"
    atomic_write(path, prefix + ".prompttest/\n")
    return "added .prompttest/ to .gitignore"

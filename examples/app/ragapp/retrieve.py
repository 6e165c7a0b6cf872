"""Keyword retrieval: the passages of docs/ that share the most words with the question."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"
WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> set[str]:
    return {word for word in WORD.findall(text.lower()) if len(word) > 3}


def retrieve(question: str, k: int = 2) -> list[str]:
    """The k passages sharing the most words with the question (none that share nothing)."""
    asked = words(question)
    scored = []
    for path in sorted(DOCS.glob("*.txt")):
        passage = path.read_text(encoding="utf-8").strip()
        overlap = len(asked & words(passage))
        if overlap:
            scored.append((-overlap, path.name, passage))
    return [passage for _, _, passage in sorted(scored)[:k]]

"""The feature under test: retrieve passages, ask the model to answer from them alone.

`answer(request)` is what prompttest's `python:` target calls; `ragapp.server` serves the
same function over HTTP for the `http:` target. The model is RAGAPP_MODEL (default
openai/gpt-4o-mini), called through litellm like any app would.
"""

from __future__ import annotations

import os
from typing import Any

from .retrieve import retrieve

SYSTEM = (
    "Answer the customer's question in one sentence, using only these passages. "
    "If they do not answer it, say you don't know.\n\n{passages}"
)


def answer(request: dict[str, Any]) -> dict[str, Any]:
    question = request["vars"]["question"]
    passages = retrieve(question)
    # The app's own dependency; its price list is the one it ships with (no download).
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    response = litellm.completion(
        model=os.environ.get("RAGAPP_MODEL", "openai/gpt-4o-mini"),
        messages=[
            {"role": "system", "content": SYSTEM.format(passages="\n".join(passages) or "(none)")},
            {"role": "user", "content": question},
        ],
        temperature=0,
    )
    return {"text": response.choices[0].message.content, "metadata": {"sources": passages}}

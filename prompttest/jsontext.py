"""JSON text of big documents (run records, reports), built one item of their list at a time.

`json.dumps` of a 10,000-key record first turns every result into a dict, and with `indent`
(which only json's pure-Python encoder does) keeps each token of the whole document as its
own small string until the end: about 10 KB a key at the peak. Encoding one item at a time
holds only the finished text; the output is byte-identical to `json.dumps`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any


def dumps_with_items(
    head: dict[str, Any],
    key: str,
    items: Iterable[Any],
    *,
    indent: int | None = None,
    to_json: Callable[[Any], Any] = lambda item: item,
) -> str:
    """`json.dumps({**head, key: [to_json(i) for i in items]}, ...)`, one item at a time.

    `key` comes last, as it does in run records and reports. Compact (`indent=None`) uses the
    separators `(",", ":")`; `ensure_ascii` is off either way.
    """
    if indent is None:
        opening = json.dumps(head, ensure_ascii=False, separators=(",", ":"))
        parts = (json.dumps(to_json(item), ensure_ascii=False, separators=(",", ":")) for item in items)
        body = ",".join(parts)
        name = json.dumps(key, ensure_ascii=False)
        start = opening[:-1] + ("," if head else "")
        return f"{start}{name}:[{body}]}}"
    pad = " " * indent
    opening = json.dumps(head, ensure_ascii=False, indent=indent)
    name = json.dumps(key, ensure_ascii=False)
    inner = pad * 2
    body = ",\n".join(
        inner + json.dumps(to_json(item), ensure_ascii=False, indent=indent).replace("\n", "\n" + inner)
        for item in items
    )
    start = opening[:-2] + ",\n" if head else "{\n"
    listing = f"[\n{body}\n{pad}]" if body else "[]"
    return f"{start}{pad}{name}: {listing}\n}}"

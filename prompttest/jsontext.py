"""JSON text of big documents (run records, reports), built one item of their list at a time.

`json.dumps` of a 10,000-key record first turns every result into a dict, and with `indent`
(which only json's pure-Python encoder does) keeps each token of the whole document as its
own small string until the end: about 10 KB a key at the peak. Encoding one item at a time
holds only the finished text; the output is byte-identical to `json.dumps`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
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
    return "".join(chunks_with_items(head, key, items, indent=indent, to_json=to_json))


def chunks_with_items(
    head: dict[str, Any],
    key: str,
    items: Iterable[Any],
    *,
    indent: int | None = None,
    to_json: Callable[[Any], Any] = lambda item: item,
) -> Iterator[str]:
    """The text of `dumps_with_items` in pieces, one item's at a time: written to a file as
    they come, a 10,000-key document is never held whole."""
    name = json.dumps(key, ensure_ascii=False)
    if indent is None:
        opening = json.dumps(head, ensure_ascii=False, separators=(",", ":"))
        yield opening[:-1] + ("," if head else "") + name + ":["
        separator = ""
        for item in items:
            yield separator + json.dumps(to_json(item), ensure_ascii=False, separators=(",", ":"))
            separator = ","
        yield "]}"
        return
    pad = " " * indent
    inner = pad * 2
    opening = json.dumps(head, ensure_ascii=False, indent=indent)
    yield (opening[:-2] + ",\n" if head else "{\n") + pad + name + ": "
    separator = "[\n"
    for item in items:
        text = json.dumps(to_json(item), ensure_ascii=False, indent=indent)
        yield separator + inner + text.replace("\n", "\n" + inner)
        separator = ",\n"
    yield "[]\n}" if separator == "[\n" else f"\n{pad}]\n}}"

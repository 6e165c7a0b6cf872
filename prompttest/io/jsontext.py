"""JSON text of big documents (run records, reports), built one item of their list at a time.

`json.dumps` of a 10,000-key record first turns every result into a dict, and with `indent`
(which only json's pure-Python encoder does) keeps each token of the whole document as its
own small string until the end: about 10 KB a key at the peak. Encoding one item at a time
holds only the finished text; the output is byte-identical to `json.dumps`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO


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


def scan_object(handle: TextIO, items_of: str, *, chunk: int = 1 << 16) -> Iterator[tuple[str, Any]]:
    """The members of the JSON object in `handle`, read a piece at a time, as (name, value)
    pairs; the array named `items_of` comes as an iterator of its items, which reads them
    one at a time (go through it before asking for the next member). So a 10,000-key run
    record is read one result at a time, never whole.

    What `json.load` refuses, this refuses too, with a ValueError; an `items_of` that is
    not an array is given whole, as a plain member.
    """
    reader = _Reader(handle, chunk)
    reader.expect("{")
    if reader.peek() == "}":
        reader.take()
    else:
        while True:
            name = reader.value()
            if not isinstance(name, str):
                raise ValueError(f"expected a member name at character {reader.offset}")
            reader.expect(":")
            if name == items_of and reader.peek() == "[":
                items = _items(reader)
                yield name, items
                for _ in items:  # what the caller left unread
                    pass
            else:
                yield name, reader.value()
            if reader.expect(",", "}") == "}":
                break
    if reader.peek() != "":
        raise ValueError(f"extra data at character {reader.offset}")


def _items(reader: _Reader) -> Iterator[Any]:
    """The items of the array that starts at the reader, one at a time."""
    reader.expect("[")
    if reader.peek() == "]":
        reader.take()
        return
    while True:
        yield reader.value()
        if reader.expect(",", "]") == "]":
            return


_NUMBER_GOES_ON = frozenset("0123456789.eE+-")


class _Reader:
    """A window on a text stream that JSON values are decoded from one at a time."""

    def __init__(self, handle: TextIO, chunk: int) -> None:
        self.handle, self.chunk = handle, chunk
        self.text, self.at, self.done = "", 0, False
        self.before = 0  # characters dropped from the window's front
        self.decoder = json.JSONDecoder()

    @property
    def offset(self) -> int:
        return self.before + self.at

    def more(self) -> bool:
        if self.done:
            return False
        piece = self.handle.read(self.chunk)
        self.before += self.at
        self.text, self.at = self.text[self.at :] + piece, 0
        self.done = not piece
        return bool(piece)

    def peek(self) -> str:
        """The next character that is not white space ("" at the end)."""
        while True:
            while self.at < len(self.text) and self.text[self.at] in " \t\n\r":
                self.at += 1
            if self.at < len(self.text) or not self.more():
                return self.text[self.at : self.at + 1]

    def take(self) -> None:
        self.at += 1

    def expect(self, *allowed: str) -> str:
        found = self.peek()
        if found not in allowed or not found:
            raise ValueError(f"expected {' or '.join(allowed)} at character {self.offset}")
        self.take()
        return found

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.text, self.at)
            except json.JSONDecodeError:
                if self.more():
                    continue  # the value goes on past the window
                raise
            # A number cut by the window's end reads as a shorter one (`12` of `123`, `1` of
            # `1.5`): read on until what follows it cannot belong to it.
            cut = end == len(self.text) or self.text[end] in _NUMBER_GOES_ON
            if isinstance(value, (int, float)) and not isinstance(value, bool) and cut and self.more():
                continue
            self.at = end
            return value

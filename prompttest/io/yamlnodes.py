"""YAML nodes to plain data, recording the line of every value and counting aliases.

What `yamlsource` loads goes through `Converter`: only JSON-like data (no tags beyond the
core ones, no huge ints, no alias bombs, no deep nesting) comes out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from prompttest.errors import PromptTestError

YamlPath = tuple[str | int, ...]
Lines = dict[YamlPath, int]
# Takes one item of a streamed mapping: its key, its value and the key's line.
Sink = Callable[[str, Any, int], None]

MAX_ALIASES = 100
MAX_DEPTH = 200
# Python refuses to turn an int of more than 4,300 digits into text (errors would crash
# printing it): refuse such numbers up front, whether written in decimal or hex.
_MAX_INT_BITS = 14_000

_T = "tag:yaml.org,2002:"
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


_SCALARS = {
    _T + "bool": _CONSTRUCTOR.construct_yaml_bool,
    _T + "int": _CONSTRUCTOR.construct_yaml_int,
    _T + "float": _CONSTRUCTOR.construct_yaml_float,
}


def _clip(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text)} characters)"


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_T) :] if tag.startswith(_T) else tag


class Converter:
    """Turns composed nodes into plain data, recording lines and counting aliases."""

    def __init__(
        self,
        *,
        file: str,
        error: type[PromptTestError],
        first_line: int,
        lines: Lines,
        aliases: bool = True,
        line_depth: int | None = None,
    ) -> None:
        self.file = file
        self.error = error
        self.first_line = first_line
        self.lines = lines
        self.line_depth = line_depth  # record lines of paths up to this length (None: all)
        # Without aliases (a plain stream), each node is reached once: nothing to track, and
        # the ids of dropped nodes are reused.
        self.track = aliases
        # A node is first reached through its defining edge (anchors come before
        # aliases); reaching it through any other edge is following an alias. Edges
        # inside an expanded subtree are the original ones, so only aliases count.
        self.first_edge: dict[int, tuple[int, int]] = {}
        self.aliases = 0
        self.origin: int | None = None  # line of the outermost alias being expanded
        self.active: set[int] = set()
        # A mapping whose items are handed to a sink as they are converted (see stream_yaml_file).
        self.sink_at: YamlPath | None = None
        self.sink: Sink | None = None

    def line(self, node: yaml.Node) -> int:
        return int(node.start_mark.line) + self.first_line

    def fail(self, message: str, node: yaml.Node, hint: str | None = None) -> PromptTestError:
        return self.error(message, file=self.file, line=self.line(node), hint=hint)

    def convert(self, node: yaml.Node, path: YamlPath, edge: tuple[int, int], depth: int) -> Any:
        if not self.track:
            if depth > MAX_DEPTH:
                raise self.fail("the YAML document is nested too deeply", node)
            if self.line_depth is None or len(path) <= self.line_depth:
                self.lines.setdefault(path, self.line(node))
            return self.node_value(node, path, depth)
        ident = id(node)
        is_alias = self.first_edge.setdefault(ident, edge) != edge
        if is_alias:
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise self.error(
                    f"too many YAML aliases: more than {MAX_ALIASES} *alias uses",
                    file=self.file,
                    line=self.origin or self.alias_line(path),
                    hint="aliases are bounded to refuse 'billion laughs' documents; "
                    "write the repeated values out",
                )
        if ident in self.active:
            raise self.fail("a YAML alias refers to a value that contains itself", node)
        if depth > MAX_DEPTH:
            raise self.fail("the YAML document is nested too deeply", node)
        outermost = is_alias and self.origin is None
        if outermost:
            self.origin = self.alias_line(path)
        self.lines.setdefault(path, self.line(node))
        self.active.add(ident)
        try:
            return self.node_value(node, path, depth)
        finally:
            self.active.discard(ident)
            if outermost:
                self.origin = None

    def alias_line(self, path: YamlPath) -> int | None:
        """Where an alias is written: its key's line, or its list's line."""
        if path and isinstance(path[-1], int):
            return self.lines.get(path[:-1])
        return self.lines.get(path)

    def node_value(self, node: yaml.Node, path: YamlPath, depth: int) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if isinstance(node, yaml.SequenceNode) and node.tag == _T + "seq":
            return [
                self.convert(child, path + (i,), (id(node), i), depth + 1)
                for i, child in enumerate(node.value)
            ]
        if isinstance(node, yaml.MappingNode) and node.tag == _T + "map":
            return self.mapping(node, path, depth)
        raise self.fail(f"unsupported YAML tag '{_short_tag(node.tag)}'", node)

    def scalar(self, node: yaml.ScalarNode) -> Any:
        tag = node.tag
        if tag in (_T + "str", _T + "timestamp"):  # dates stay text: data is JSON-like
            return node.value
        if tag == _T + "null":
            return None
        construct = _SCALARS.get(tag)
        if construct is None:
            raise self.fail(f"unsupported YAML tag '{_short_tag(tag)}'", node)
        try:
            value = construct(node)
            if isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
                raise ValueError("too many digits")
            return value
        except (ValueError, LookupError) as exc:
            text = _clip(node.value)
            if "digits" in str(exc):  # ours above, or Python's 4,300-digit limit
                raise self.fail(
                    f"the number '{text}' is too long", node, hint="quote it to make it text"
                ) from None
            # An explicit tag on the wrong text: `!!int abc`, `!!bool` with no value.
            raise self.fail(
                f"'{text}' is not a valid {_short_tag(tag)}",
                node,
                hint="quote the value to make it text, or remove the !! tag",
            ) from None

    def key(self, node: yaml.Node) -> str:
        if isinstance(node, yaml.ScalarNode):
            return str(node.value)  # keys are always the text as written
        if isinstance(node, yaml.MappingNode):
            raise self.fail(
                "a '{' starts a YAML mapping here, so this text is not a string",
                node,
                hint='quote text that starts with a placeholder: prompt: "{{ question }}"',
            )
        raise self.fail("a mapping key must be plain text", node)

    def mapping(self, node: yaml.MappingNode, path: YamlPath, depth: int) -> dict[str, Any]:
        ident = id(node)
        if self.sink is not None and path == self.sink_at:
            for i, (key_node, value_node) in enumerate(node.value):
                if key_node.tag == _T + "merge":
                    raise self.fail("'<<' merge keys are not supported here", key_node)
                key = self.key(key_node)
                self.sink(
                    key, self.convert(value_node, path + (key,), (ident, i), depth + 1), self.line(key_node)
                )
            return {}
        record = self.line_depth is None or len(path) < self.line_depth
        merged: dict[str, tuple[Any, int]] = {}  # key -> (value, line)
        result: dict[str, Any] = {}
        key_lines: dict[str, int] = {}
        for i, (key_node, value_node) in enumerate(node.value):
            if key_node.tag == _T + "merge":  # `<<: *defaults`; explicit keys win
                self.merge(value_node, path, (ident, i), depth, merged)
                continue
            key = self.key(key_node)
            line = self.line(key_node)
            if key in key_lines:
                raise self.fail(f"duplicate key '{key}' (first on line {key_lines[key]})", key_node)
            key_lines[key] = line
            if record:
                self.lines[path + (key,)] = line
            result[key] = self.convert(value_node, path + (key,), (ident, i), depth + 1)
        for key, (value, line) in merged.items():
            if key not in result:
                result[key] = value
                key_lines[key] = line
        if record:
            for key, line in key_lines.items():  # a later `<<` must not move explicit keys
                self.lines[path + (key,)] = line
        return result

    def merge(
        self,
        node: yaml.Node,
        path: YamlPath,
        edge: tuple[int, int],
        depth: int,
        merged: dict[str, tuple[Any, int]],
    ) -> None:
        """Collect `<<: *a` or `<<: [*a, *b]` into `merged`; earlier sources win."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for j, source in enumerate(sources):
            source_edge = edge if source is node else (id(node), j)
            value = self.convert(source, path, source_edge, depth + 1)
            if not isinstance(value, dict):
                raise self.fail("'<<' merges a mapping or a list of mappings", source)
            for key, item in value.items():
                if key not in merged:
                    merged[key] = (item, self.lines.get(path + (key,), 0))

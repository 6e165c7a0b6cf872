"""Safe YAML loading that remembers the line every value came from.

The document is only *composed* (a tree of plain nodes) by PyYAML's safe loader; we
turn nodes into dicts, lists, strings, numbers, booleans and None ourselves, so no
tag can ever construct an object. Along the way we record the 1-based line of every
node under its path (`("cases", 2, "expect", 0)`), refuse duplicate keys, and bound
alias expansion so a "billion laughs" document is refused instead of eating memory.

Used for suite files and snapshot files alike, so the error class is a parameter.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import yaml

from prompttest.errors import PromptTestError, SuiteError

YamlPath = tuple[str | int, ...]
Lines = dict[YamlPath, int]
# Takes one item of a streamed mapping: its key, its value and the key's line.
Sink = Callable[[str, Any, int], None]

MAX_ALIASES = 100
MAX_DEPTH = 200
# Python refuses to turn an int of more than 4,300 digits into text (errors would crash
# printing it): refuse such numbers up front, whether written in decimal or hex.
_MAX_INT_BITS = 14_000

# The C composer is much faster; on a syntax error we re-parse with the pure-Python
# one, whose messages name the offending character or alias.
_FAST_LOADER: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_T = "tag:yaml.org,2002:"
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_SYNTAX_HINTS = {
    "\\t": "indent with spaces: YAML does not allow tabs",
    "mapping values are not allowed": "quote text that contains ': ' (colon, space)",
    "found undefined alias": "an *alias must refer to an &anchor defined above it",
}


def load_yaml(
    text: str,
    *,
    file: str,
    error: type[PromptTestError] = SuiteError,
    first_line: int = 1,
    line_depth: int | None = None,
) -> tuple[Any, Lines]:
    """Parse one YAML document into plain data plus a path -> line map.

    `first_line` shifts the reported lines, for YAML embedded in another file (a CSV
    cell). An empty document gives `None`. With `line_depth`, a document without anchors
    keeps the lines of paths of at most that many steps only (a snapshot's entries, not
    each of their fields).
    """
    try:
        plain = _refuse_deep_nesting(text, file=file, error=error, first_line=first_line)
        # Without anchors, no node is reached twice: nodes can be composed as the converter
        # reaches them and dropped once converted, instead of the whole document's tree
        # first (~5 KB a snapshot entry). A plain stream's parse errors were raised by now.
        root = _LazyNodes(text).root() if plain else yaml.compose(text, Loader=_FAST_LOADER)
    except yaml.YAMLError as exc:
        raise _syntax_error(text, exc, file=file, error=error, first_line=first_line) from None
    except RecursionError:
        raise error("the YAML document is nested too deeply", file=file) from None
    lines: Lines = {}
    if root is None:
        return None, lines
    converter = _Converter(
        file=file,
        error=error,
        first_line=first_line,
        lines=lines,
        aliases=not plain,
        line_depth=line_depth if plain else None,
    )
    return converter.convert(root, (), (0, 0), 0), lines


def _refuse_deep_nesting(
    text: str | TextIO, *, file: str, error: type[PromptTestError], first_line: int
) -> bool:
    """Count nesting in the parser's event stream before composing.

    The C composer recurses on the C stack: tens of thousands of nested `[` (a 60 KB file)
    crash the interpreter with a segmentation fault instead of raising RecursionError.
    The parser itself keeps its own stack, and stopping at the first level too deep is
    quick; this pass costs about a tenth of composing.

    Returns whether the stream is plain: at most one document, and no anchor or alias.
    """
    depth = 0
    documents = 0
    plain = True
    for event in yaml.parse(text, Loader=_FAST_LOADER):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                line = int(event.start_mark.line) + first_line
                raise error("the YAML document is nested too deeply", file=file, line=line)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.DocumentStartEvent):
            documents += 1
        if isinstance(event, yaml.NodeEvent) and event.anchor is not None:  # an alias has one too
            plain = False
    return plain and documents <= 1


class _LazyNodes:
    """Nodes composed from the parser's events as the converter reaches them.

    What PyYAML's composer makes, except that a sequence's or a mapping's `value` is a
    generator of its items: the converter takes each item in document order and is done
    with it before it asks for the next, so converted nodes are dropped as it goes. Only
    for a plain stream (see _refuse_deep_nesting): its parse errors were raised already,
    and without anchors nothing refers back to a node.
    """

    def __init__(self, text: str | TextIO) -> None:
        self.loader = _FAST_LOADER(text)

    def root(self) -> yaml.Node | None:
        self.loader.get_event()  # stream start
        if self.loader.check_event(yaml.StreamEndEvent):
            return None
        self.loader.get_event()  # document start
        return self.node()

    def node(self) -> yaml.Node:
        event = self.loader.get_event()
        tag = event.tag
        if isinstance(event, yaml.ScalarEvent):
            if tag is None or tag == "!":
                tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
            return yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
        kind = yaml.SequenceNode if isinstance(event, yaml.SequenceStartEvent) else yaml.MappingNode
        if tag is None or tag == "!":
            tag = self.loader.resolve(kind, None, event.implicit)
        items = self.items() if kind is yaml.SequenceNode else self.pairs()
        return kind(tag, items, event.start_mark, None, flow_style=event.flow_style)

    def items(self) -> Iterator[yaml.Node]:
        while not self.loader.check_event(yaml.SequenceEndEvent):
            yield self.node()
        self.loader.get_event()

    def pairs(self) -> Iterator[tuple[yaml.Node, yaml.Node]]:
        while not self.loader.check_event(yaml.MappingEndEvent):
            key = self.node()
            if not isinstance(key, yaml.ScalarNode):
                _materialize(key)  # a mapping as a key: its events come before the value's
            yield key, self.node()
        self.loader.get_event()


def _materialize(node: yaml.Node) -> None:
    """Compose a lazy node's items now, all the way down."""
    if isinstance(node, yaml.SequenceNode):
        children = []
        for child in node.value:
            _materialize(child)
            children.append(child)
        node.value = children
    elif isinstance(node, yaml.MappingNode):
        pairs = []
        for key, value in node.value:
            _materialize(value)
            pairs.append((key, value))
        node.value = pairs


def load_yaml_file(path: str | Path, *, error: type[PromptTestError] = SuiteError) -> tuple[Any, Lines]:
    """Read and parse a UTF-8 YAML file; unreadable files raise `error` too."""
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise error(f"no such file: {file}", file=file) from None
    except OSError as exc:
        raise error(f"cannot read {file}: {exc.strerror or exc}", file=file) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise error("the file is not UTF-8 text", file=file, line=line, hint="save it as UTF-8") from None
    return load_yaml(text, file=file, error=error)


def stream_yaml_file(
    path: Path, *, error: type[PromptTestError], items_at: YamlPath, sink: Sink
) -> tuple[Any, Lines]:
    """`load_yaml_file` for big files: the file is read as a stream, never whole, and the
    mapping at `items_at` is not built: each of its items goes to `sink` once converted
    (in the document it reads `{}`). Lines are kept for paths of at most `len(items_at)` steps.

    The sink must refuse duplicate keys itself (it is the one that remembers them). A
    document with anchors is loaded whole, as `load_yaml_file` does, then handed out.
    """
    file = str(path)
    _check_utf8(path, error=error)
    encoding = "utf-8-sig"  # reads a byte-order mark too
    try:
        with path.open(encoding=encoding) as stream:
            plain = _refuse_deep_nesting(stream, file=file, error=error, first_line=1)
        if not plain:
            data, lines = load_yaml(path.read_text(encoding=encoding), file=file, error=error)
            return _hand_out(data, lines, items_at, sink), lines
        with path.open(encoding=encoding) as stream:
            root = _LazyNodes(stream).root()
            lines = {}
            if root is None:
                return None, lines
            converter = _Converter(
                file=file, error=error, first_line=1, lines=lines, aliases=False, line_depth=len(items_at)
            )
            converter.sink_at, converter.sink = items_at, sink
            return converter.convert(root, (), (0, 0), 0), lines
    except yaml.YAMLError as exc:
        text = path.read_text(encoding=encoding)
        raise _syntax_error(text, exc, file=file, error=error, first_line=1) from None
    except RecursionError:
        raise error("the YAML document is nested too deeply", file=file) from None
    except OSError as exc:
        raise error(f"cannot read {file}: {exc.strerror or exc}", file=file) from None


def _check_utf8(path: Path, *, error: type[PromptTestError]) -> None:
    """Check the file is UTF-8, a megabyte at a time: a bad byte is reported with its line."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    newlines = 0
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    line = newlines + chunk[: max(0, exc.start)].count(b"\n") + 1
                    raise error(
                        "the file is not UTF-8 text", file=str(path), line=line, hint="save it as UTF-8"
                    ) from None
                newlines += chunk.count(b"\n")
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise error(
            "the file is not UTF-8 text", file=str(path), line=newlines + 1, hint="save it as UTF-8"
        ) from None
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}", file=str(path)) from None


def _hand_out(data: Any, lines: Lines, items_at: YamlPath, sink: Sink) -> Any:
    """Give the items of the (built) mapping at `items_at` to `sink`; leave `{}` there."""
    parent = data
    for step in items_at[:-1]:
        parent = parent.get(step) if isinstance(parent, dict) else None
    last = items_at[-1]
    if isinstance(parent, dict) and isinstance(parent.get(last), dict):
        for key, value in parent[last].items():
            sink(key, value, lines.get(items_at + (key,), 0))
        parent[last] = {}
    return data


def line_of(lines: Lines, path: YamlPath) -> int | None:
    """The line of `path`, or of its nearest ancestor that has one."""
    for end in range(len(path), -1, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return None


def _syntax_error(
    text: str,
    exc: yaml.YAMLError,
    *,
    file: str,
    error: type[PromptTestError],
    first_line: int,
) -> PromptTestError:
    """One-line error for a YAML syntax problem, with the line it was found on."""
    if _FAST_LOADER is not yaml.SafeLoader:
        try:
            yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as better:
            exc = better
        except RecursionError:
            pass
    line: int | None = None
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + first_line if mark is not None else None
        problem = exc.problem or exc.context or "syntax error"
        if exc.context and exc.problem:
            problem = f"{problem} ({exc.context})"
    elif isinstance(exc, yaml.reader.ReaderError):
        line = text[: exc.position].count("\n") + first_line
        problem = f"character {exc.character!r} is not allowed in YAML"
    else:
        problem = str(exc)
    problem = " ".join(str(problem).split())
    hint = next((h for key, h in _SYNTAX_HINTS.items() if key in problem), None)
    return error(f"invalid YAML: {problem}", file=file, line=line, hint=hint)


_SCALARS = {
    _T + "bool": _CONSTRUCTOR.construct_yaml_bool,
    _T + "int": _CONSTRUCTOR.construct_yaml_int,
    _T + "float": _CONSTRUCTOR.construct_yaml_float,
}


def _clip(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text)} characters)"


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_T) :] if tag.startswith(_T) else tag


class _Converter:
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

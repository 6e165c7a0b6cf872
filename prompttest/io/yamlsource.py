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
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import yaml

from prompttest.errors import PromptTestError, SuiteError
from prompttest.io.yamlnodes import MAX_DEPTH, Converter, Lines, Sink, YamlPath

# The C composer is much faster; on a syntax error we re-parse with the pure-Python
# one, whose messages name the offending character or alias.
_FAST_LOADER: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

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
    converter = Converter(
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
            converter = Converter(
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

"""Write `snapshots/<suite>.yaml` atomically, an entry at a time, in the same bytes every time.

Multi-line outputs as literal blocks, never an anchor, never a folded line: the file reads
well in a PR diff, and a file whose bytes would not change is not touched.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

import yaml

from ..io.atomic import Stage, write_atomically
from .snapshots import Entry

HEADER = (
    "# prompttest snapshot: the accepted outputs of suite '{suite}'.\n"
    "# Written by `prompttest run`; accept changes with `prompttest review`.\n"
    "# Set `known_failing: true` on an entry to stop its failing checks from failing CI.\n"
)
_DUMP_OPTIONS: dict[str, Any] = {
    "sort_keys": False,
    "allow_unicode": True,
    "width": 1_000_000,  # never fold long lines: a folded line diffs badly
    "default_flow_style": False,
}


def render_snapshot(suite: str, entries: Mapping[str, Entry]) -> str:
    """The exact text of a snapshot file: header, then entries sorted by case, target."""
    ordered = sorted(entries.values(), key=lambda e: (e.case, e.target))
    stream = io.StringIO()
    stream.write(HEADER.format(suite=suite))
    _dump_entries(suite, ordered, stream)
    return stream.getvalue()


def _dump_entries(suite: str, ordered: Iterable[Entry], stream: TextIO) -> None:
    """`yaml.dump({"suite": suite, "results": {name: data, ...}})`, one entry at a time.

    The same events reach PyYAML's emitter, so the text is the same; but only one entry's
    node tree exists at a time, not the whole file's (about 5 KB a key). That holds because
    the dumper never writes anchors (`&id001`), which would tie one entry's nodes to another's.
    """
    dumper = _SnapshotDumper(stream, **_DUMP_OPTIONS)
    try:
        dumper.open()
        # What Serializer.serialize emits around a document's root node, and what it emits
        # for a block mapping (default_flow_style=False makes every mapping a block).
        dumper.emit(yaml.DocumentStartEvent(explicit=None, version=None, tags=None))
        dumper.emit(yaml.MappingStartEvent(None, _MAP_TAG, True, flow_style=False))
        for value in ("suite", suite, "results"):
            _serialize(dumper, value)
        dumper.emit(yaml.MappingStartEvent(None, _MAP_TAG, True, flow_style=False))
        for entry in ordered:
            _serialize(dumper, entry.name)
            _serialize(dumper, entry.to_yaml_data())
        dumper.emit(yaml.MappingEndEvent())
        dumper.emit(yaml.MappingEndEvent())
        dumper.emit(yaml.DocumentEndEvent(explicit=None))
        dumper.close()
    finally:
        dumper.dispose()


def _serialize(dumper: _SnapshotDumper, value: Any) -> None:
    """Represent and emit one value inside the open document, then forget its nodes.

    The serializer keeps every node it met (to find shared ones); the representer keeps
    nothing, because `ignore_aliases` is always true.
    """
    node = dumper.represent_data(value)
    dumper.anchor_node(node)
    dumper.serialize_node(node, None, None)
    dumper.serialized_nodes, dumper.anchors = {}, {}


def write_snapshot(path: Path, suite: str, entries: Mapping[str, Entry]) -> bool:
    """Write atomically; an empty set removes the file. Returns True if anything changed."""
    return write_entries(path, suite, sorted(entries.values(), key=lambda e: (e.case, e.target)))


def write_entries(path: Path, suite: str, ordered: Iterable[Entry], *, stage: Stage | None = None) -> bool:
    """`write_snapshot` of entries already in order (case, then target), written as they
    come: no more than one entry is held. Returns True if the file changed (with `stage`:
    will change, when the stage is committed)."""
    entries = iter(ordered)
    first = next(entries, None)
    if first is None:
        if path.exists():
            if stage is not None:
                stage.removals.append(path)
            else:
                path.unlink()
            return True
        return False

    def fill(handle: TextIO) -> None:
        handle.write(HEADER.format(suite=suite))
        _dump_entries(suite, itertools.chain([first], entries), handle)

    return write_atomically(path, fill, keep_if_same=True, stage=stage)


class _SnapshotDumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, never an anchor; everything else as PyYAML decides."""

    def ignore_aliases(self, data: Any) -> bool:
        # Entries that share one object (a list in a judge's params, built through the API)
        # would otherwise read `stop: &id001` and `stop: *id001`: each entry must read whole.
        return True


_MAP_TAG = yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_SnapshotDumper.add_representer(str, _represent_str)

"""Read and atomically write `snapshots/<suite>.yaml`, built to read well in a PR diff.

One file per suite; entries keyed `case@target`, sorted by case then target; multi-line
outputs as literal blocks; no volatile fields (latency, cost, timestamps); the same
entries always give the same bytes, and a file whose bytes would not change is not
touched.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import yaml

from ..errors import SnapshotError
from ..io.atomic import Stage, write_atomically
from ..io.yamlsource import load_yaml, stream_yaml_file
from ..model import Result
from ..verdicts.table import MAX_DISTINCT_OUTPUTS, Baseline, output_distribution

HEADER = (
    "# prompttest snapshot: the accepted outputs of suite '{suite}'.\n"
    "# Written by `prompttest run`; accept changes with `prompttest review`.\n"
    "# Set `known_failing: true` on an entry to stop its failing checks from failing CI.\n"
)
PASS, FAIL = "pass", "fail"
# A repeated key keeps at most this many distinct outputs (most frequent first); the rest
# are counted, so the file stays readable whatever the sampling temperature.


@dataclass(frozen=True, slots=True)
class Entry:
    """One snapshot entry: the accepted result of `case@target`."""

    case: str
    target: str
    model: str
    request: str
    output: str
    checks: Mapping[str, bool]
    known_failing: bool = False
    samples: int = 1
    # With samples > 1: distinct outputs with their counts, and each check's passes.
    distribution: tuple[tuple[str, int], ...] = ()
    counts: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    # Judged checks: what graded each (model, params, rubric hash), by check label.
    judges: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.case}@{self.target}"

    def baseline(self) -> Baseline:
        return Baseline(
            output=self.output,
            checks=dict(self.checks),
            model=self.model,
            request=self.request,
            known_failing=self.known_failing,
            counts=dict(self.counts),
            distribution=self.distribution,
            judges=dict(self.judges),
        )

    def to_yaml_data(self) -> dict[str, Any]:
        data = self._result_yaml()
        if self.judges:
            data["judges"] = {label: _sorted(judge) for label, judge in sorted(self.judges.items())}
        return data

    def _result_yaml(self) -> dict[str, Any]:
        data: dict[str, Any] = {"model": self.model, "request": self.request}
        if self.known_failing:
            data["known_failing"] = True
        if self.samples == 1:
            data["output"] = self.output
            data["checks"] = {label: PASS if ok else FAIL for label, ok in self.checks.items()}
            return data
        data["samples"] = self.samples
        shown = self.distribution[:MAX_DISTINCT_OUTPUTS]
        data["outputs"] = [{"count": count, "output": text} for text, count in shown]
        hidden = self.samples - sum(count for _, count in shown)
        if hidden:
            data["other_outputs"] = hidden
        data["checks"] = {label: f"{k}/{n}" for label, (k, n) in self.counts.items()}
        return data


def entry_from(result: Result, *, known_failing: bool = False) -> Entry:
    """The snapshot entry that accepting `result` writes."""
    assert result.output is not None
    entry = Entry(
        case=result.case,
        target=result.target,
        model=result.model,
        request=result.request,
        output=result.output,
        checks={check.label: check.passed for check in result.checks},
        known_failing=known_failing,
        judges={check.label: dict(check.judge) for check in result.checks if check.judge is not None},
    )
    if len(result.outputs) <= 1:
        return entry
    counts = {c.label: (c.passed_count or 0, c.samples or len(result.outputs)) for c in result.checks}
    return replace(
        entry,
        samples=len(result.outputs),
        distribution=output_distribution(result.outputs),
        counts=counts,
        # A sample set is judged by its counts; `checks` only says "every sample passed".
        checks={label: k == n for label, (k, n) in counts.items()},
    )


# Takes each entry of a snapshot being read, with the line it starts on.
AddEntry = Callable[[Entry, int | None], None]


def snapshot_path(snapshots_dir: Path, suite: str) -> Path:
    return snapshots_dir / f"{suite}.yaml"


def read_snapshot(path: Path) -> dict[str, Entry]:
    """The entries of one snapshot file, by `case@target`; {} when there is none."""
    entries: dict[str, Entry] = {}
    scan_snapshot(path, refusing_duplicates(lambda entry, _: entries.__setitem__(entry.name, entry), path))
    return entries


def refusing_duplicates(add: AddEntry, path: Path) -> AddEntry:
    """`add`, but a second entry of a name is an error that gives both lines (it remembers
    each name's line: a few dozen bytes an entry)."""
    lines: dict[str, int | None] = {}

    def checked(entry: Entry, line: int | None) -> None:
        if entry.name in lines:
            raise duplicate_entry(entry.name, first=lines[entry.name], file=str(path), line=line)
        lines[entry.name] = line
        add(entry, line)

    return checked


def scan_snapshot(path: Path, add: AddEntry) -> None:
    """Hand each entry of one snapshot file to `add` (with its line), in file order, as it is
    read: the file is read as a stream, so a snapshot of 10,000 entries is never held whole.
    `add` refuses duplicate names (it is the one that remembers them: see
    `refusing_duplicates`). No file: no entries."""
    if not path.exists():
        return
    file = str(path)
    _refuse_merge_conflict_in(path)

    def entry(name: str, raw: Any, line: int) -> None:
        add(_entry(str(name), raw, file=file, line=line, hint=_BROKEN_HINT), line)

    data, _ = stream_yaml_file(path, error=SnapshotError, items_at=("results",), sink=entry)
    _check_top(data, file=file)


def duplicate_entry(name: str, *, first: int | None, file: str, line: int | None) -> SnapshotError:
    """The error for a second entry of the same name (as for any duplicate YAML key)."""
    return SnapshotError(f"duplicate key '{name}' (first on line {first})", file=file, line=line)


_BROKEN_HINT = "restore it with `git checkout -- FILE` or delete it and re-run with -u"


def _check_top(data: Any, *, file: str) -> None:
    if data is not None and (not isinstance(data, dict) or not isinstance(data.get("results", {}), dict)):
        raise SnapshotError(
            "not a prompttest snapshot (expected a mapping with `results`)",
            file=file,
            line=1,
            hint=_BROKEN_HINT,
        )


def parse_snapshot(text: str, *, file: str) -> dict[str, Entry]:
    """The entries of a snapshot file's text (from `git show`)."""
    _refuse_merge_conflict(text.splitlines(keepends=True), file=file)
    data, lines = load_yaml(text, file=file, error=SnapshotError, line_depth=2)  # entries' lines only
    if data is None:
        return {}
    _check_top(data, file=file)
    entries: dict[str, Entry] = {}
    for name, raw in (data.get("results") or {}).items():
        line = lines.get(("results", name))
        entries[str(name)] = _entry(str(name), raw, file=file, line=line, hint=_BROKEN_HINT)
    return entries


def _refuse_merge_conflict_in(path: Path) -> None:
    try:
        with path.open(encoding="utf-8", errors="replace") as stream:
            _refuse_merge_conflict(stream, file=str(path))
    except OSError as exc:
        raise SnapshotError(f"cannot read snapshot: {exc}", file=str(path)) from None


def _refuse_merge_conflict(lines: Iterable[str], *, file: str) -> None:
    """Git conflict markers are the likeliest corruption of a committed snapshot."""
    for number, line in enumerate(lines, start=1):
        if line.startswith(("<<<<<<< ", "=======\n", ">>>>>>> ")):
            raise SnapshotError(
                "unresolved git merge conflict in a snapshot",
                file=file,
                line=number,
                hint="resolve it (keep either side), or take one side and re-run with -u",
            )


def _entry(name: str, raw: Any, *, file: str, line: int | None, hint: str) -> Entry:
    def broken(what: str) -> SnapshotError:
        return SnapshotError(f"snapshot entry '{name}': {what}", file=file, line=line, hint=hint)

    case, sep, target = name.partition("@")
    if not sep or not case or not target:
        raise broken("the name must be `case@target`")
    if not isinstance(raw, dict):
        raise broken("must be a mapping")
    if "samples" in raw:
        return _sampled_entry(case, target, raw, broken)
    output = raw.get("output")
    checks = raw.get("checks") or {}
    if not isinstance(output, str):
        raise broken("`output` must be a string")
    if not isinstance(checks, dict) or any(v not in (PASS, FAIL) for v in checks.values()):
        raise broken("`checks` must map each check to `pass` or `fail`")
    return Entry(
        case=case,
        target=target,
        model=_text(raw, "model", broken),
        request=_text(raw, "request", broken),
        output=output,
        checks={str(label): value == PASS for label, value in checks.items()},
        known_failing=raw.get("known_failing") is True,
        judges=_judges(raw, broken),
    )


def _sampled_entry(case: str, target: str, raw: dict[str, Any], broken: Any) -> Entry:
    samples = raw.get("samples")
    outputs = raw.get("outputs")
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 2:
        raise broken("`samples` must be a whole number of at least 2")
    if (
        not isinstance(outputs, list)
        or not outputs
        or not all(
            isinstance(o, dict) and isinstance(o.get("output"), str) and isinstance(o.get("count"), int)
            for o in outputs
        )
    ):
        raise broken("`outputs` must list `{count, output}` pairs")
    checks = raw.get("checks") or {}
    if not isinstance(checks, dict):
        raise broken("`checks` must map each check to `passed/samples`, like 9/10")
    counts = {}
    for label, value in checks.items():
        k, slash, n = value.partition("/") if isinstance(value, str) else ("", "", "")
        if not (slash and k.isdecimal() and n.isdecimal() and len(k + n) < 20 and int(k) <= int(n)):
            raise broken(f"check '{label}' must be `passed/samples`, like 9/10")
        counts[str(label)] = (int(k), int(n))
    distribution = tuple((o["output"], o["count"]) for o in outputs)
    return Entry(
        case=case,
        target=target,
        model=_text(raw, "model", broken),
        request=_text(raw, "request", broken),
        output=distribution[0][0],
        checks={label: k == n for label, (k, n) in counts.items()},
        known_failing=raw.get("known_failing") is True,
        samples=samples,
        distribution=distribution,
        counts=counts,
        judges=_judges(raw, broken),
    )


def _text(raw: dict[str, Any], key: str, broken: Any) -> str:
    """A text field; YAML reads a hash of digits as a number, so any scalar is taken as text."""
    value = raw.get(key, "")
    if isinstance(value, (dict, list)):
        raise broken(f"`{key}` must be text")
    try:
        return str(value)
    except ValueError:  # an integer of more than 4,300 digits
        raise broken(f"`{key}` is a number too long to be read") from None


def _judges(raw: dict[str, Any], broken: Any) -> dict[str, dict[str, Any]]:
    judges = raw.get("judges") or {}
    if not isinstance(judges, dict) or not all(isinstance(j, dict) for j in judges.values()):
        raise broken("`judges` must map each judged check to its judge (model, params, rubric)")
    return {str(label): dict(judge) for label, judge in judges.items()}


def _sorted(value: Any) -> Any:
    """Nested mappings with sorted keys: a judge's params always render the same."""
    if isinstance(value, Mapping):
        return {str(k): _sorted(v) for k, v in sorted(value.items())}
    return value


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


def rebase(
    current: Mapping[str, Entry], *, before: Mapping[str, Entry], after: Mapping[str, Entry]
) -> dict[str, Entry]:
    """`current` with the changes that turned `before` into `after` (added, replaced, removed).

    A run reads a snapshot when it starts and writes it when it ends; another process may
    have written the file in between. Replaying only this run's changes on the file as it
    is now keeps the other process's entries.
    """
    merged = dict(current)
    for name in before.keys() | after.keys():
        if before.get(name) == after.get(name):
            continue
        if name in after:
            merged[name] = after[name]
        else:
            merged.pop(name, None)
    return merged


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

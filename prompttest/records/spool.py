"""A run's per-key data on disk while it runs, so memory stays flat however many keys it has.

Two spools, each a temporary SQLite database (a file of its own, removed when the spool
is closed or dropped):
- ResultSpool: each result, stored the moment its key is decided and read back one at a
  time by whatever goes through the results next (the snapshot writer, the run record,
  the reports);
- EntrySpool: the snapshot entries the run compares with, and the ones it will write.
A run of 10,000 keys holds the keys in flight, not 10,000 results or entries.

A result is stored as plain tuples (marshal: about ten times quicker to read back than
pickling the dataclasses), which is safe here: a spool only reads what its process wrote.
"""

from __future__ import annotations

import itertools
import marshal
import pickle
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, overload

from ..io.filestamp import Stamp, stamp
from ..model import CheckResult, Result, Verdict
from ..model.selection import FILTERS
from .snapshots import Entry, duplicate_entry, scan_snapshot

# How many results one read takes from SQLite at a time.
_BATCH = 256
_RESULT_FIELDS = tuple(f.name for f in fields(Result))
_CHECK_FIELDS = tuple(f.name for f in fields(CheckResult))
_VERDICT, _CHECKS = _RESULT_FIELDS.index("verdict"), _RESULT_FIELDS.index("checks")
_JUDGE = _CHECK_FIELDS.index("judge")
_MARSHAL, _PICKLE = b"m", b"p"
_SQL_VALUES = (str, int, float, bytes)


# What the gate and the terminal ask of a run without going through all of it. A spool
# keeps each as a column, so a rerun of 10,000 unchanged keys reads none of them for it.
def _sql_value(value: Any) -> Any:
    return _text(value) if isinstance(value, str) else value


def _text(value: str) -> bytes:
    # Text as UTF-8 bytes: SQLite orders them as Python orders strings, lone surrogates too.
    return value.encode("utf-8", "surrogatepass")


def _from_text(value: bytes) -> str:
    return bytes(value).decode("utf-8", "surrogatepass")


def _rows(db: sqlite3.Connection, query: str, parameters: tuple[object, ...] = ()) -> Iterator[Any]:
    """The rows of a query, fetched `_BATCH` at a time."""
    cursor = db.execute(query, parameters)
    while rows := cursor.fetchmany(_BATCH):
        yield from rows


def _pack(values: tuple[Any, ...], whole: object) -> bytes:
    """`values` marshalled; `whole` pickled if marshal cannot write one of them."""
    try:
        return _MARSHAL + marshal.dumps(values)
    except ValueError:  # an object in a judge's params (possible through the API)
        return _PICKLE + pickle.dumps(whole, pickle.HIGHEST_PROTOCOL)


def _unpack(blob: bytes) -> Any:
    """The marshalled tuple, or the pickled object, that `_pack` wrote."""
    return pickle.loads(blob[1:]) if blob[:1] == _PICKLE else marshal.loads(blob[1:])


def encode(result: Result) -> bytes:
    """The result as bytes: its fields' values in order, checks as tuples of theirs."""
    values = [getattr(result, name) for name in _RESULT_FIELDS]
    values[_VERDICT] = result.verdict.value
    values[_CHECKS] = tuple(_check_values(check) for check in result.checks)
    return _pack(tuple(values), result)


def decode(blob: bytes) -> Result:
    data = _unpack(blob)
    if isinstance(data, Result):
        return data
    values = list(data)
    values[_VERDICT] = Verdict(values[_VERDICT])
    values[_CHECKS] = tuple(CheckResult(*check) for check in values[_CHECKS])
    return Result(*values)


def _check_values(check: CheckResult) -> tuple[object, ...]:
    values = [getattr(check, name) for name in _CHECK_FIELDS]
    if check.judge is not None:
        values[_JUDGE] = dict(check.judge)
    return tuple(values)


class ResultSpool(Sequence[Result]):
    """Results by their position in the run (plan order), stored as they come in any order."""

    def __init__(self) -> None:
        # "": a private temporary database on disk; SQLite keeps at most its page cache in memory.
        self._db = sqlite3.connect("", check_same_thread=False)
        flags = "".join(f", {name} INTEGER" for name in FILTERS)
        self._db.execute(f"CREATE TABLE results (position INTEGER PRIMARY KEY, result BLOB NOT NULL{flags})")
        self._count = 0
        self._tables = itertools.count()  # names for the tables `sorted` sorts in

    def add(self, position: int, result: Result) -> None:
        flags = tuple(int(matches(result)) for matches in FILTERS.values())
        self._db.execute(
            f"INSERT INTO results VALUES (?, ?{', ?' * len(flags)})", (position, encode(result), *flags)
        )
        self._count += 1

    def only(self, name: str) -> Iterator[Result]:
        """The results that FILTERS[name] keeps, in position order, the others not even read."""
        return (result for _, result in self.positioned(name))

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Result]:
        return (result for _, result in self.positioned())

    @overload
    def __getitem__(self, index: int) -> Result: ...

    @overload
    def __getitem__(self, index: slice) -> list[Result]: ...

    def __getitem__(self, index: int | slice) -> Result | list[Result]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError("result index out of range")
        row = self._db.execute(
            "SELECT result FROM results ORDER BY position LIMIT 1 OFFSET ?", (index,)
        ).fetchone()
        return decode(row[0])

    def sorted(
        self, key: Callable[[Result], tuple[Any, ...]], *, only: str | None = None
    ) -> Iterator[Result]:
        """The results in the order of `key` (a tuple), read back one at a time.

        The keys are sorted by SQLite, in a table of their own: not even they are held.
        A key SQLite cannot store (anything but text, numbers, bytes) is sorted in memory.
        """
        keyed = ((key(result), position) for position, result in self.positioned(only))
        first = next(keyed, None)
        if first is None:
            return
        if not all(isinstance(value, _SQL_VALUES) for value in first[0]):
            order = sorted(itertools.chain([first], keyed))
            for _, position in order:
                yield self._at(position)
            return
        table = f"ordering_{next(self._tables)}"
        columns = [f"k{i}" for i in range(len(first[0]))]
        self._db.execute(f"CREATE TEMP TABLE {table} ({', '.join(columns)}, position INTEGER)")
        try:
            self._db.executemany(
                f"INSERT INTO {table} VALUES ({', '.join('?' * (len(columns) + 1))})",
                (tuple(map(_sql_value, k)) + (p,) for k, p in itertools.chain([first], keyed)),
            )
            query = (
                f"SELECT r.result FROM {table} AS o JOIN results AS r ON r.position = o.position"
                f" ORDER BY {', '.join(columns)}, o.position"
            )
            for (blob,) in _rows(self._db, query):
                yield decode(blob)
        finally:
            self._db.execute(f"DROP TABLE {table}")

    def _at(self, position: int) -> Result:
        row = self._db.execute("SELECT result FROM results WHERE position = ?", (position,)).fetchone()
        return decode(row[0])

    def positioned(self, only: str | None = None) -> Iterator[tuple[int, Result]]:
        """(position, result) pairs in position order (of those FILTERS[only] keeps)."""
        if only is not None and only not in FILTERS:
            raise KeyError(only)
        where = f" WHERE {only} = 1" if only else ""
        for position, blob in _rows(
            self._db, f"SELECT position, result FROM results{where} ORDER BY position"
        ):
            yield position, decode(blob)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ResultSpool({self._count} results)"

    def close(self) -> None:
        self._db.close()


class ResultsByKey(Mapping[str, Result]):
    """Results by result key (the last one stored wins), iterated in key order: one side of
    a `diff`, on disk like a run's spool."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("", check_same_thread=False)
        self._db.execute("CREATE TABLE results (key BLOB PRIMARY KEY, suite BLOB, result BLOB NOT NULL)")
        self._db.execute("CREATE INDEX by_suite ON results (suite, key)")

    def add(self, result: Result) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO results VALUES (?, ?, ?)",
            (_text(result.key), _text(result.suite), encode(result)),
        )

    def __getitem__(self, key: str) -> Result:
        row = self._db.execute("SELECT result FROM results WHERE key = ?", (_text(key),)).fetchone()
        if row is None:
            raise KeyError(key)
        return decode(row[0])

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        found = self._db.execute("SELECT 1 FROM results WHERE key = ?", (_text(key),)).fetchone()
        return found is not None

    def __iter__(self) -> Iterator[str]:
        # The keys alone: nothing decoded.
        return (_from_text(key) for (key,) in _rows(self._db, "SELECT key FROM results ORDER BY key"))

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def values(self) -> Iterator[Result]:  # type: ignore[override]
        return self._read("SELECT result FROM results ORDER BY key", ())

    def items(self) -> Iterator[tuple[str, Result]]:  # type: ignore[override]
        return ((result.key, result) for result in self.values())

    def of_suite(self, suite: str) -> Iterator[Result]:
        return self._read("SELECT result FROM results WHERE suite = ? ORDER BY key", (_text(suite),))

    def suites(self) -> set[str]:
        rows = self._db.execute("SELECT DISTINCT suite FROM results").fetchall()
        return {_from_text(suite) for (suite,) in rows}

    def _read(self, query: str, parameters: tuple[object, ...]) -> Iterator[Result]:
        return (decode(blob) for (blob,) in _rows(self._db, query, parameters))


class EntrySpool:
    """The snapshot entries of a run's suites: the ones read when it started (`baseline`),
    the changes it makes (`change`: a new entry, or None to remove one) and, when another
    run wrote a file meanwhile, that file as it is now (`current`)."""

    BASELINE, CURRENT, CHANGE = "baseline", "current", "change"

    def __init__(self) -> None:
        self._db = sqlite3.connect("", check_same_thread=False)
        # Names are stored as UTF-8 bytes: their order is the order of Python's strings,
        # and a lone surrogate (which YAML's escapes can make) is kept, not refused.
        self._db.execute(
            "CREATE TABLE entries (source TEXT, suite TEXT, name BLOB, case_ BLOB, target BLOB,"
            " line INTEGER, entry BLOB, produced INTEGER DEFAULT 0, PRIMARY KEY (source, suite, name))"
        )
        self._read_as: dict[str, Stamp | None] = {}  # suite -> its file when read
        self._produced: list[tuple[str, str, bytes]] = []  # marks not written yet (see produced)

    def load(self, suite: str, path: Path, *, source: str = BASELINE) -> None:
        """Read a suite's snapshot file (a stream: never whole) into `source`."""
        self._db.execute("DELETE FROM entries WHERE source = ? AND suite = ?", (source, suite))
        read_as = stamp(path)

        def add(entry: Entry, line: int | None) -> None:
            name = _text(entry.name)
            try:
                self._db.execute(
                    "INSERT INTO entries (source, suite, name, case_, target, line, entry)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (source, suite, name, _text(entry.case), _text(entry.target), line, _encode_entry(entry)),
                )
            except sqlite3.IntegrityError:
                first = self._db.execute(
                    "SELECT line FROM entries WHERE source = ? AND suite = ? AND name = ?",
                    (source, suite, name),
                ).fetchone()[0]
                raise duplicate_entry(entry.name, first=first, file=str(path), line=line) from None

        scan_snapshot(path, add)
        if source == self.BASELINE:
            self._read_as[suite] = read_as

    def get(self, suite: str, name: str) -> Entry | None:
        """The entry `name` of the suite's snapshot as the run read it."""
        row = self._db.execute(
            "SELECT entry FROM entries WHERE source = ? AND suite = ? AND name = ?",
            (self.BASELINE, suite, _text(name)),
        ).fetchone()
        return None if row is None else _decode_entry(row[0])

    def produced(self, suite: str, name: str) -> None:
        """A key of the run produces this entry: it is not obsolete."""
        self._produced.append((self.BASELINE, suite, _text(name)))
        if len(self._produced) >= _BATCH:
            self._mark_produced()

    def _mark_produced(self) -> None:
        self._db.executemany(
            "UPDATE entries SET produced = 1 WHERE source = ? AND suite = ? AND name = ?", self._produced
        )
        self._produced = []

    def unproduced(self, suite: str) -> Iterator[Entry]:
        """The entries no key produced, by name."""
        self._mark_produced()
        return self._entries(
            "SELECT entry FROM entries WHERE source = ? AND suite = ? AND produced = 0 ORDER BY name",
            (self.BASELINE, suite),
        )

    def change(self, suite: str, name: str, entry: Entry | None) -> None:
        """Write `entry` as `name` (None: remove it) when the suite's snapshot is written."""
        case, _, target = name.partition("@")
        self._db.execute(
            "INSERT OR REPLACE INTO entries (source, suite, name, case_, target, entry)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (self.CHANGE, suite, _text(name), _text(case), _text(target), entry and _encode_entry(entry)),
        )

    def changed(self, suite: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM entries WHERE source = ? AND suite = ? LIMIT 1", (self.CHANGE, suite)
        ).fetchone()
        return row is not None

    def merged(self, suite: str, path: Path) -> Iterator[Entry]:
        """The suite's snapshot with this run's changes, in file order (case, then target).

        Another run may have written the file since this one read it: then it is read
        again, and only this run's changes are replayed on it, so the other run's entries
        are kept. Call it while holding the snapshot lock.
        """
        source = self.BASELINE
        if stamp(path) != self._read_as.get(suite):
            self.load(suite, path, source=self.CURRENT)
            source = self.CURRENT
        return self._entries(
            "SELECT case_, target, entry FROM entries AS kept WHERE source = ? AND suite = ?"
            " AND NOT EXISTS (SELECT 1 FROM entries AS c WHERE c.source = ? AND c.suite = kept.suite"
            " AND c.name = kept.name)"
            " UNION ALL SELECT case_, target, entry FROM entries WHERE source = ? AND suite = ?"
            " AND entry IS NOT NULL ORDER BY 1, 2",
            (source, suite, self.CHANGE, self.CHANGE, suite),
        )

    def _entries(self, query: str, parameters: tuple[object, ...]) -> Iterator[Entry]:
        return (_decode_entry(row[-1]) for row in _rows(self._db, query, parameters))

    def close(self) -> None:
        self._db.close()


_ENTRY_FIELDS = tuple(f.name for f in fields(Entry))
_MAPPINGS = tuple(_ENTRY_FIELDS.index(name) for name in ("checks", "counts"))
_JUDGES = _ENTRY_FIELDS.index("judges")


def _encode_entry(entry: Entry) -> bytes:
    values = [getattr(entry, name) for name in _ENTRY_FIELDS]
    for index in _MAPPINGS:
        values[index] = dict(values[index])
    values[_JUDGES] = {label: dict(judge) for label, judge in entry.judges.items()}
    return _pack(tuple(values), entry)


def _decode_entry(blob: bytes) -> Entry:
    data = _unpack(blob)
    return data if isinstance(data, Entry) else Entry(*data)

"""Cases read from a data file: `cases: cases/capitals.csv` (or `.jsonl`).

One case a row. Columns (CSV) or keys (JSONL) become the case's variables, except
`id` (default `row-N`, N the 1-based data row) and `expect` (checks: YAML text in a
CSV cell, a list or a single mapping in JSONL). Every case remembers the file and the
line its row starts on, so later errors point at the row.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

from prompttest.errors import SuiteError
from prompttest.io.filestamp import stamp
from prompttest.io.yamlsource import Lines, load_yaml
from prompttest.model import Case, CheckSpec
from prompttest.suites.schema import validate_case_row

CASE_FILE_SUFFIXES = (".csv", ".jsonl")
# Ids build result keys `suite/case@target`, so they never hold `/` or `@`.
CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")

# (data row number, line the row starts on, its fields, lines of its `expect` items)
_Row = tuple[int, int, dict[str, Any], Lines]


def to_checks(expect: list[dict[str, Any]], line_for: Callable[[int], int | None]) -> tuple[CheckSpec, ...]:
    """Validated `expect` items (one-key mappings) as CheckSpecs with their lines."""
    specs = []
    for index, item in enumerate(expect):
        ((name, value),) = item.items()
        specs.append(CheckSpec(name=name, value=value, line=line_for(index)))
    return tuple(specs)


def case_id_text(value: str | float, *, file: str, line: int | None) -> str:
    """A validated case id as text: YAML/JSON numbers are accepted as ids."""
    text = str(int(value)) if isinstance(value, (int, float)) else value
    if not CASE_ID.match(text):
        raise SuiteError(
            f"case id '{text}' must start with a letter or digit and use only letters, digits and _ . : -",
            file=file,
            line=line,
        )
    return text


def read_case_file(path: Path, *, suite_file: str, line: int | None) -> CaseFile:
    """Every case in a .csv or .jsonl file; `line` is where the suite names the file."""
    file = str(path)
    if "\0" in file:  # open() would raise ValueError
        raise SuiteError("the cases file name contains a NUL character", file=suite_file, line=line)
    if path.suffix.lower() not in CASE_FILE_SUFFIXES:
        raise SuiteError(
            f"cases file '{file}' must end in .csv or .jsonl",
            file=suite_file,
            line=line,
            hint="or list the cases inline under cases:",
        )
    return CaseFile(path, suite_file=suite_file, line=line)


class CaseFile(Sequence[Case]):
    """The cases of a data file, read again each time they are gone through: a suite of
    10,000 rows holds none of them between runs of its cases.

    The first read (when the suite is loaded) checks every row, so a broken one stops the
    run before any call; later reads trust the file, unless it changed since: then it is
    refused rather than read unchecked.
    """

    def __init__(self, path: Path, *, suite_file: str, line: int | None) -> None:
        self.path, self.file = path, str(path)
        self._named_at = (suite_file, line)  # where the suite names the file
        self._stamp = stamp(path)
        self._count = sum(1 for _ in self._read(checked=True))
        if not self._count:
            raise SuiteError(f"cases file has no cases: {self.file}", file=self.file, line=1)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Case]:
        if stamp(self.path) != self._stamp:
            raise SuiteError(
                "the cases file changed while prompttest was using it",
                file=self.file,
                hint="run again once it is saved",
            )
        return self._read(checked=False)

    @overload
    def __getitem__(self, index: int) -> Case: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Case, ...]: ...

    def __getitem__(self, index: int | slice) -> Case | tuple[Case, ...]:
        cases = tuple(self)  # rare (tests, listings): the file is read whole for it
        return cases[index]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CaseFile({self.file!r}, {self._count} cases)"

    def _read(self, *, checked: bool) -> Iterator[Case]:
        suite_file, line = self._named_at
        file = self.file
        try:
            with self.path.open(encoding="utf-8-sig", newline="") as stream:
                csv_file = self.path.suffix.lower() == ".csv"
                for row in _csv_rows(stream, file) if csv_file else _jsonl_rows(stream, file):
                    yield _case(row, file, checked=checked)
        except FileNotFoundError:
            raise SuiteError(
                f"cases file not found: {file}",
                file=suite_file,
                line=line,
                hint="the path in cases: is relative to the suite file",
            ) from None
        except UnicodeDecodeError:
            raise SuiteError("the cases file is not UTF-8 text", file=file, hint="save it as UTF-8") from None
        except OSError as exc:
            raise SuiteError(
                f"cannot read cases file {file}: {exc.strerror or exc}",
                file=suite_file,
                line=line,
            ) from None


def _case(row: _Row, file: str, *, checked: bool = True) -> Case:
    number, line, fields, check_lines = row
    fields = dict(fields)
    case_id = fields.pop("id", None)
    expect = fields.pop("expect", None)
    if isinstance(case_id, str):
        case_id = case_id.strip()
    if case_id is None or case_id == "":
        case_id = f"row-{number}"
    if isinstance(expect, dict):
        expect = [expect]
    data = {
        "id": case_id,
        "vars": fields,
        "expect": expect if expect is not None else [],
    }
    if checked:
        validate_case_row(data, label=f"row {number}", file=file, line=line)
    return Case(
        id=case_id_text(case_id, file=file, line=line),
        vars=fields,
        expect=to_checks(data["expect"], lambda j: check_lines.get((j,), line)),
        file=file,
        line=line,
    )


def _csv_rows(stream: Any, file: str) -> Iterator[_Row]:
    reader = csv.reader(stream)
    try:
        header = [name.strip() for name in next(reader, [])]
        if not header:
            raise SuiteError("the CSV file has no header row", file=file, line=1)
        _check_header(header, file)
        number, previous = 0, reader.line_num
        for fields in reader:
            # A quoted cell may span lines: the row starts after the previous one ended.
            start, previous = previous + 1, reader.line_num
            if not any(cell.strip() for cell in fields):
                continue
            number += 1
            if len(fields) != len(header):
                raise SuiteError(
                    f"row {number} has {len(fields)} values but the header has {len(header)} columns",
                    file=file,
                    line=start,
                    hint="quote values that contain commas",
                )
            record: dict[str, Any] = dict(zip(header, fields, strict=False))
            check_lines: Lines = {}
            if record.get("expect", "").strip():
                record["expect"], check_lines = _expect_cell(record["expect"], number, file, start)
            else:
                record.pop("expect", None)
            yield number, start, record, check_lines
    except csv.Error as exc:
        raise SuiteError(f"unreadable CSV: {exc}", file=file, line=reader.line_num) from None


def _check_header(header: list[str], file: str) -> None:
    seen: set[str] = set()
    for name in header:
        if not name:
            raise SuiteError("the CSV header has an empty column name", file=file, line=1)
        if name in seen:
            raise SuiteError(f"the CSV header names column '{name}' twice", file=file, line=1)
        seen.add(name)


def _expect_cell(text: str, number: int, file: str, start: int) -> tuple[Any, Lines]:
    """The `expect` cell is YAML: `- contains: Paris` or `{contains: Paris}`."""
    try:
        value, lines = load_yaml(text, file=file, first_line=start)
    except SuiteError as exc:
        raise SuiteError(
            f"row {number}, expect column: {exc.message}",
            file=file,
            line=exc.line,
            hint=exc.hint,
        ) from None
    return value, lines


def _jsonl_rows(stream: Any, file: str) -> Iterator[_Row]:
    number = 0
    for line, text in enumerate(stream, start=1):
        if not text.strip():
            continue
        number += 1
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SuiteError(
                f"invalid JSON on row {number}: {exc.msg} (column {exc.colno})",
                file=file,
                line=line,
            ) from None
        except (ValueError, RecursionError) as exc:  # a 4,300+ digit number; absurd nesting
            reason = (
                "nested too deeply" if isinstance(exc, RecursionError) else "a number has too many digits"
            )
            raise SuiteError(f"unreadable JSON on row {number}: {reason}", file=file, line=line) from None
        if not isinstance(record, dict):
            raise SuiteError(
                f'row {number} must be a JSON object, like {{"id": "france", "country": "France"}}',
                file=file,
                line=line,
            )
        yield number, line, record, {}

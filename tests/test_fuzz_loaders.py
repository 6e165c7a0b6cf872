"""Hostile input: random and mutated files thrown at every loader.

Each loader must either load the file or raise a PromptTestError whose message names the
file: never a KeyError, TypeError, RecursionError or any other traceback. Mutations start
from real files (the repository's suites, examples and snapshots, plus a few rich seeds
below) and flip bytes, cut the file, delete or repeat lines, and put random YAML values
in random places. Runs are derandomized so CI sees the same examples every time; the
crashes found this way have their own example-based tests at the bottom.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from conftest import FUZZ, GEO_SUITE, replies
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prompttest.cli import main
from prompttest.errors import PromptTestError, SnapshotError, SuiteError
from prompttest.io.yamlsource import load_yaml
from prompttest.model import Target
from prompttest.records.runs import read_run
from prompttest.records.snapshot_writer import write_snapshot
from prompttest.records.snapshots import read_snapshot
from prompttest.report.jsonreport import render_json
from prompttest.report.junit import render_junit
from prompttest.report.markdown import render_markdown
from prompttest.report.text import render_errors, render_summary, render_table
from prompttest.suites.casefiles import read_case_file
from prompttest.suites.loading import expand, load_suite, load_suites

REPO = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- seeds

RICH_SUITE = """\
suite: rich
description: Every part of a suite file, so mutations reach every branch of the loader.
targets:
  - openai/gpt-4o-mini
  - id: local
    model: openai/qwen
    api_base: http://localhost:8000/v1
    params: {temperature: 0.5}
params: &params {temperature: 0, max_tokens: 64}
system: You answer in one sentence.
prompt: "What is the capital of {{ country }}?"
repeat: 3
pass: majority
expect:
  - max_length: 200
  - not_regex: "(?i)sorry"
cases:
  - id: france
    vars: {country: France}
    expect:
      - contains: Paris
      - contains_any: [Paris, paris]
  - id: json-answer
    prompt: 'Reply in JSON: {"capital": ...} for {{ country }}.'
    vars: {country: Japan}
    params: {<<: *params, max_tokens: 8}
    pass: {rate: 0.7}
    expect:
      - is_json: true
      - json_schema: {type: object, required: [capital]}
      - json_path: {path: $.capital, equals: Tokyo}
  - id: chat
    messages:
      - {role: system, content: Be brief.}
      - {role: user, content: "Capital of {{ country }}?"}
    vars: {country: Peru}
    repeat: 5
    expect: [{icontains: lima}, {max_words: 12}, {starts_with: The}]
"""

FILE_CASES_SUITE = """\
target: openai/fake
prompt: "Capital of {{ country }}?"
cases: cases.CASES_SUFFIX
"""

CSV_CASES = """\
id,country,expect
france,France,"- contains: Paris"
japan,Japan,"{contains: Tokyo}"
,Peru,
spain,Spain,"[contains: Madrid, max_words: 12]"
"""

JSONL_CASES = """\
{"id": "france", "country": "France", "expect": [{"contains": "Paris"}]}
{"id": "japan", "country": "Japan", "expect": {"contains": "Tokyo"}}
{"country": "Peru"}
{"id": 7, "country": "Spain", "expect": [{"max_words": 12}, {"regex": "Madr.d"}]}
"""

SAMPLED_SNAPSHOT = """\
suite: rich
results:
  france@openai/gpt-4o-mini:
    model: openai/gpt-4o-mini
    request: abc123
    known_failing: true
    samples: 3
    outputs:
      - count: 2
        output: Paris.
      - count: 1
        output: |
          The capital
          is Paris.
    checks:
      'contains: Paris': 3/3
      'max_length: 200': 2/3
"""


def suite_seeds() -> list[bytes]:
    files = sorted((REPO / "suites").glob("*.yaml")) + sorted((REPO / "examples").rglob("*.yaml"))
    from_file = FILE_CASES_SUITE.replace("CASES_SUFFIX", "csv")  # names a cases file that is not there
    return [f.read_bytes() for f in files] + [RICH_SUITE.encode(), from_file.encode()]


def snapshot_seeds() -> list[bytes]:
    return [f.read_bytes() for f in sorted((REPO / "snapshots").glob("*.yaml"))] + [SAMPLED_SNAPSHOT.encode()]


def run_seed() -> dict[str, Any]:
    """A run record as `prompttest run` writes it: one plain, one sampled, one failed key."""
    result = {
        "key": "geo/france@fake",
        "suite": "geo",
        "case": "france",
        "target": "fake",
        "model": "openai/fake",
        "verdict": "changed",
        "passed": True,
        "output": "Paris.",
        "checks": [{"type": "contains", "label": "contains: Paris", "passed": True, "reason": "ok"}],
        "error": None,
        "flags": ["prompt changed"],
        "similarity": 0.8,
        "change": "reworded (0.80)",
        "request": "abc123",
        "latency_ms": 12.5,
        "tokens": {"prompt": 5, "completion": 2},
        "cost_usd": 0.0001,
        "cached": False,
        "attempts": 1,
        "known_failing": False,
        "snapshot": {"output": "Paris", "checks": {"contains: Paris": True}},
        "location": {"suite_file": "suites/geo.yaml", "case_file": "suites/geo.yaml", "line": 4},
    }
    sampled = dict(
        result,
        key="geo/japan@fake",
        case="japan",
        output=["Tokyo", "Tokyo", "Kyoto"],
        checks=[
            {
                "type": "contains",
                "label": "contains: Tokyo",
                "passed": False,
                "reason": "2/3",
                "passed_count": 2,
                "samples": 3,
                "interval": [0.2, 0.9],
                "before": [3, 3],
                "p_value": 0.4,
            }
        ],
        verdict="inconclusive",
    )
    failed = dict(result, key="geo/peru@fake", case="peru", output=None, checks=[], verdict="error")
    failed["error"] = "provider error: 500"
    return {
        "version": 1,
        "id": "20240101T000000-000001",
        "started_at": "2024-01-01T00:00:00+00:00",
        "ci": False,
        "update": False,
        "interrupted": False,
        "options": {"paths": [], "filters": []},
        "summary": {"wall_s": 1.5, "calls": 3, "cache_hits": 0},
        "results": [result, sampled, failed],
    }


# --------------------------------------------------------------------------- strategies

YAML_TOKENS = [
    "&a ",
    "*a",
    "<<: *a",
    "!!python/object/apply:os.system [echo]",
    "!!binary aGk=",
    "!!set {a}",
    "!custom x",
    "{{ country }}",
    "{{",
    "}}",
    "- ",
    ": ",
    "? ",
    "\t",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "|",
    ">-",
    "'",
    '"',
    "[",
    "]",
    "{",
    "}",
    "#",
    ",",
    "\x00",
    "\ufeff",
    "\u2028",
    "\ud800",
    "\x85",
    "<<<<<<< HEAD\n",
    "=======\n",
    "~",
    ".nan",
    "-.inf",
    "0x1F",
    "1e400",
    "2024-01-01",
    "yes",
    "null",
]

# Put where a value starts: explicit tags and numbers a YAML library may choke on.
VALUE_TOKENS = [
    "!!int ",
    "!!float ",
    "!!bool ",
    "!!null ",
    "!!str ",
    "!!timestamp ",
    "!!python/name:os.system ",
    "&anchor ",
    "*anchor ",
    "*undefined",
    "9" * 5000,
    "0x" + "f" * 4000,
    "[" * 300,
    "1:2:3:4",
    "0o777",
    "-.inf",
    "[]",
    "{}",
    "~",
    "|\n",
    ">\n",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["id", "cases", "expect", "contains", "@", "a@b", "", " ", "é✓", "0", "-1", "1e999"]),
    # Template, regex, JSON path and JSON Schema text that is almost right.
    st.sampled_from(["{{ country }}", "{{ x }}", "{{", "{{ }}", "{{ a.b }}", "(", "[a-", "(?P<", "\\"]),
    st.sampled_from(["a{99999999999}", "(" * 1000 + ")" * 1000, "cases.csv", "x.jsonl", "a\0.csv", "/"]),
    st.sampled_from(["$", "$..", "$[", "$.a[?(@.b)]", "object", "string", "#/$defs/x", "pass", "fail"]),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=12,
)


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True) or [b""]


def _yaml_snippet(value: Any) -> bytes:
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10_000).strip()
    return text.removesuffix("...").strip().encode("utf-8", "surrogatepass")


@st.composite
def text_mutations(draw: st.DrawFn, seed: bytes) -> bytes:
    """1 to 4 edits of the bytes or lines of `seed`."""
    data = seed
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(
            st.sampled_from(
                ["flip", "truncate", "delete", "duplicate", "swap", "token", "tag", "value", "indent"]
            )
        )
        lines = _lines(data)
        i = draw(st.integers(0, len(lines) - 1))
        if kind == "flip" and data:
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + bytes([data[at] ^ (1 << draw(st.integers(0, 7)))]) + data[at + 1 :]
        elif kind == "truncate":
            data = data[: draw(st.integers(0, len(data)))]
        elif kind == "delete":
            data = b"".join(lines[:i] + lines[i + 1 :])
        elif kind == "duplicate":
            data = b"".join(lines[: i + 1] + lines[i:])
        elif kind == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            data = b"".join(lines)
        elif kind == "token":
            at = draw(st.integers(0, len(data)))
            token = draw(st.sampled_from(YAML_TOKENS)).encode("utf-8", "surrogatepass")
            data = data[:at] + token + data[at:]
        elif kind == "tag":  # a tag or an odd scalar right where a value starts
            line = lines[i]
            starts = [line.find(mark) + 2 for mark in (b": ", b"- ") if mark in line]
            at = max(starts, default=0)
            token = draw(st.sampled_from(VALUE_TOKENS)).encode()
            keep = line[at:] if draw(st.booleans()) else b"\n"
            lines[i] = line[:at] + token + keep
            data = b"".join(lines)
        elif kind == "value":  # a random YAML value after a key, or as a new list item/key
            line = lines[i]
            indent = line[: len(line) - len(line.lstrip(b" "))]
            snippet = _yaml_snippet(draw(json_values))
            if b": " in line:
                key = line.split(b": ", 1)[0]
                lines[i] = key + b": " + snippet + b"\n"
            else:
                key = draw(st.sampled_from([b"- ", b"extra: ", b"- id: ", b"expect: ", b""]))
                lines.insert(i, indent + key + snippet + b"\n")
            data = b"".join(lines)
        elif kind == "indent":
            lines[i] = draw(st.sampled_from([b"", b" ", b"  ", b"      "])) + lines[i].lstrip(b" ")
            data = b"".join(lines)
    return data


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, path + (index,))


@st.composite
def tree_mutations(draw: st.DrawFn, seed: Any) -> Any:
    """`seed` (plain data) with 1 to 3 values replaced, removed or added at random paths."""
    data = json.loads(json.dumps(seed))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(data))))
        value = draw(json_values)
        if not path:
            data = value if draw(st.booleans()) else data
            continue
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "replace":
            parent[path[-1]] = value
        elif action == "remove":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = value
        else:
            parent.append(value)
    return data


def _dump_yaml(data: Any) -> bytes:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False).encode("utf-8", "surrogatepass")


def suite_files() -> st.SearchStrategy[bytes]:
    seeds = suite_seeds()
    trees = [yaml.safe_load(seed) for seed in seeds]
    return st.one_of(
        st.sampled_from(seeds).flatmap(text_mutations),
        st.sampled_from(trees).flatmap(tree_mutations).map(_dump_yaml),
        st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.binary(max_size=200),
    )


def snapshot_files() -> st.SearchStrategy[bytes]:
    seeds = snapshot_seeds()
    trees = [yaml.safe_load(seed) for seed in seeds]
    return st.one_of(
        st.sampled_from(seeds).flatmap(text_mutations),
        st.sampled_from(trees).flatmap(tree_mutations).map(_dump_yaml),
        st.binary(max_size=200),
    )


def _cases(suffix: str) -> st.SearchStrategy[bytes]:
    seed = CSV_CASES if suffix == ".csv" else JSONL_CASES
    structured = (
        st.lists(st.dictionaries(st.text(max_size=6), json_values, max_size=4), max_size=4).map(
            lambda rows: "".join(json.dumps(r) + "\n" for r in rows).encode()
        )
        if suffix == ".jsonl"
        else st.lists(st.lists(st.text(max_size=12), min_size=1, max_size=4), max_size=5).map(_csv_text)
    )
    return st.one_of(text_mutations(seed.encode()), structured, st.binary(max_size=120))


def _csv_text(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows([["id", "country", "expect"], *rows])
    return out.getvalue().encode("utf-8", "surrogatepass")


# --------------------------------------------------------------------------- helpers


def plan(path: Path) -> list[Any]:
    """What `validate` and `run` do before calling anything: load, vet and expand."""
    default = Target(id="fake", model="openai/fake")
    return [job for suite in load_suites([path]) for job in expand(suite, default_target=default)]


@contextmanager
def folder() -> Iterator[Path]:
    # Function-scoped fixtures are not reset between hypothesis examples: one folder each.
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


def load_or_refuse(load: Callable[[], object], *files: Path) -> PromptTestError | None:
    """Run `load`; a PromptTestError must name one of `files` in its one-paragraph message."""
    try:
        load()
    except PromptTestError as error:
        text = error.render()
        assert text.strip(), "an error with an empty message"
        assert error.file in {str(f) for f in files}, f"error names no input file: {text}"
        assert any(f.name in text for f in files), text
        return error
    return None


# --------------------------------------------------------------------------- suites


@FUZZ
@given(data=suite_files())
def test_a_fuzzed_suite_loads_or_is_a_suite_error(data: bytes) -> None:
    with folder() as root:
        path = root / "fuzz.yaml"
        path.write_bytes(data)
        error = load_or_refuse(lambda: plan(path), path)
        assert error is None or isinstance(error, SuiteError)


@FUZZ
@given(data=st.sampled_from([".csv", ".jsonl"]).flatmap(lambda s: st.tuples(st.just(s), _cases(s))))
def test_a_fuzzed_cases_file_loads_or_is_a_suite_error(data: tuple[str, bytes]) -> None:
    suffix, cases = data
    with folder() as root:
        suite = root / "fuzz.yaml"
        suite.write_text(FILE_CASES_SUITE.replace("CASES_SUFFIX", suffix.lstrip(".")))
        path = root / f"cases{suffix}"
        path.write_bytes(cases)
        error = load_or_refuse(lambda: plan(suite), suite, path)
        assert error is None or isinstance(error, SuiteError)


@FUZZ
@given(data=st.text(max_size=300))
def test_random_yaml_text_parses_or_is_a_suite_error(data: str) -> None:
    load_or_refuse(lambda: load_yaml(data, file="random.yaml"), Path("random.yaml"))


# --------------------------------------------------------------------------- snapshots


@FUZZ
@given(data=snapshot_files())
def test_a_fuzzed_snapshot_reads_or_is_a_snapshot_error(data: bytes) -> None:
    with folder() as root:
        path = root / "fuzz.yaml"
        path.write_bytes(data)
        try:
            entries = read_snapshot(path)
        except PromptTestError as error:
            assert isinstance(error, SnapshotError)
            assert error.file == str(path) and path.name in error.render()
            return
        # What was read can be written back and read again unchanged.
        write_snapshot(path, "fuzz", entries)
        assert read_snapshot(path) == entries


# --------------------------------------------------------------------------- run records


def run_files() -> st.SearchStrategy[bytes]:
    seed = run_seed()
    text = json.dumps(seed, indent=1).encode()
    return st.one_of(
        text_mutations(text),
        tree_mutations(seed).map(lambda d: json.dumps(d).encode()),
        st.binary(max_size=120),
    )


@FUZZ
@given(data=run_files())
def test_a_fuzzed_run_record_reads_or_is_a_clear_error(data: bytes) -> None:
    with folder() as root:
        path = root / "20240101T000000-000001.json"
        path.write_bytes(data)
        try:
            record = read_run(path)
        except PromptTestError as error:
            assert error.file == str(path) and path.name in error.render()
            return
        # A record that reads is usable by the commands that read it: the reports render.
        for render in (render_table, render_errors, render_markdown, render_junit, render_json):
            assert isinstance(render(record), str)
        render_summary(record, exit_code=1)


# --------------------------------------------------------------------------- through the CLI


def cli(root: Path, *args: str) -> tuple[int, str]:
    """`prompttest ARGS` in-process under click's CliRunner, in `root`, outside CI."""
    runner = CliRunner()
    env = {name: None for name in os.environ if name == "CI" or name.startswith("PROMPTTEST_")}
    here = Path.cwd()
    os.chdir(root)
    try:
        with runner.isolation(env=env) as streams:
            try:
                main(list(args))
            except SystemExit as done:
                code = int(done.code or 0)
            output = streams[0].getvalue().decode() + streams[1].getvalue().decode()
    finally:
        os.chdir(here)
    return code, output


@settings(FUZZ, max_examples=25)
@given(data=st.sampled_from(suite_seeds()).flatmap(text_mutations))
def test_validate_on_a_fuzzed_suite_exits_0_or_2_without_a_traceback(data: bytes) -> None:
    with folder() as root:
        (root / "pyproject.toml").write_text("[tool.prompttest]\ntarget = 'openai/fake'\n")
        (root / "suites").mkdir()
        (root / "suites" / "fuzz.yaml").write_bytes(data)
        code, output = cli(root, "validate")
        assert "Traceback" not in output
        assert code in (0, 2), output
        if code == 2:
            assert "fuzz.yaml" in output and output.startswith("error: ")


@pytest.fixture
def geo(project: Any, capsys: Any) -> Any:
    """A project whose suite ran once: its answers are cached and its snapshot written."""
    project.suite("geo", GEO_SUITE)
    project.server.reply = replies({"France": "Paris", "Japan": "Tokyo", "Peru": "Lima"})
    assert project.run("run", capsys=capsys).code == 0
    return project


def _geo_snapshots() -> st.SearchStrategy[bytes]:
    # The snapshot `geo` writes (see the fixture), typed out so the strategy exists at import.
    seed = "suite: geo\nresults:\n" + "".join(
        f"  {case}@fake:\n    model: openai/fake\n    request: {request}\n    output: {city}\n"
        f"    checks:{checks}\n"
        for case, request, city, checks in [
            ("france", "8daca350bf9d", "Paris", "\n      'contains: Paris': pass"),
            ("japan", "b688ddac2811", "Tokyo", "\n      'contains: Tokyo': pass"),
            ("peru", "af1ad01b1501", "Lima", " {}"),
        ]
    )
    return st.one_of(text_mutations(seed.encode()), tree_mutations(yaml.safe_load(seed)).map(_dump_yaml))


@settings(FUZZ, max_examples=40, suppress_health_check=list(HealthCheck))
@given(data=_geo_snapshots())
def test_run_and_accept_on_a_fuzzed_snapshot_exit_cleanly(geo: Any, capsys: Any, data: bytes) -> None:
    (geo.root / "snapshots" / "geo.yaml").write_bytes(data)
    for args in (("run", "--offline"), ("run", "--offline", "--update"), ("accept",)):
        outcome = geo.run(*args, capsys=capsys)  # anything but a PromptTestError propagates
        assert outcome.code in (0, 1, 2), outcome
        if outcome.code == 2:
            assert outcome.err.startswith("error: ") and "geo.yaml" in outcome.err, outcome


# --------------------------------------------------------------------------- the seeds are valid


def test_rich_suite_seed_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "rich.yaml"
    path.write_text(RICH_SUITE)
    assert [case.id for case in load_suite(path).cases] == ["france", "json-answer", "chat"]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_cases_file_seeds_are_valid(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"cases{suffix}"
    path.write_text(CSV_CASES if suffix == ".csv" else JSONL_CASES)
    cases = read_case_file(path, suite_file="s.yaml", line=3)
    assert [c.id for c in cases] == ["france", "japan", "row-3", "spain" if suffix == ".csv" else "7"]


def test_snapshot_and_run_seeds_are_valid(tmp_path: Path) -> None:
    snapshot = tmp_path / "rich.yaml"
    snapshot.write_text(SAMPLED_SNAPSHOT)
    assert read_snapshot(snapshot)["france@openai/gpt-4o-mini"].samples == 3
    run = tmp_path / "run.json"
    run.write_text(json.dumps(run_seed()))
    assert len(read_run(run).results) == 3


# --------------------------------------------------------------------------- found by fuzzing


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a: 1\nb: !!int abc\n", "'abc' is not a valid !!int"),
        ("a: 1\nb: !!int\n", "'' is not a valid !!int"),
        ("a: 1\nb: !!bool maybe\n", "'maybe' is not a valid !!bool"),
        ("a: 1\nb: !!float x\n", "'x' is not a valid !!float"),
        ("a: 1\nb: " + "9" * 5000 + "\n", "is too long"),
        ("a: 1\nb: 0x" + "f" * 4000 + "\n", "is too long"),
    ],
)
def test_a_value_yaml_cannot_make_that_type_of_is_a_suite_error(text: str, words: str) -> None:
    # Were ValueError/KeyError/IndexError from PyYAML's constructors, or a ValueError from
    # Python's 4,300-digit limit when the number was later printed in a message.
    with pytest.raises(SuiteError) as caught:
        load_yaml(text, file="f.yaml")
    assert caught.value.line == 2
    assert words in caught.value.message


DEEP_YAML = {
    "flow sequences": '"a: " + "[" * 60_000 + "]" * 60_000',
    "flow mappings": '"{a: " * 60_000 + "1" + "}" * 60_000',
    "block sequences": '"- " * 60_000 + "x"',
    "explicit keys": '"? " * 60_000 + "x"',
    "past MAX_DEPTH only": '"a: " + "[" * 500 + "]" * 500',
    "indented mappings": '"".join("  " * i + f"k{i}:\\n" for i in range(400))',
}


@pytest.mark.parametrize("expression", DEEP_YAML.values(), ids=DEEP_YAML.keys())
def test_a_deeply_nested_yaml_document_is_refused_quickly(expression: str) -> None:
    # 60,000 levels (a 120 KB file) overflowed the C stack in PyYAML's C composer: a
    # segmentation fault, not an exception. In a child process, so a regression fails
    # this test instead of killing the test run.
    code = (
        "import time; from prompttest.io.yamlsource import load_yaml\n"
        f"text = {expression}\nstart = time.perf_counter()\n"
        "try:\n    load_yaml(text, file='deep.yaml')\n"
        "except Exception as error:\n    print(type(error).__name__, error.line, error.message)\n"
        "print(round(time.perf_counter() - start, 3))\n"
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr[-2000:]
    refused, seconds = child.stdout.splitlines()
    assert refused.startswith("SuiteError ") and refused.endswith(" the YAML document is nested too deeply")
    assert float(seconds) < 2


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ('{"id": ' + "9" * 5000 + "}", "row 2: a number has too many digits"),
        ('{"id": "a", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", "row 2: nested too deeply"),
    ],
)
def test_a_jsonl_row_python_cannot_read_is_a_suite_error(tmp_path: Path, row: str, words: str) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text('{"id": "ok"}\n' + row + "\n")
    with pytest.raises(SuiteError) as caught:
        read_case_file(path, suite_file="s.yaml", line=3)
    assert (caught.value.file, caught.value.line) == (str(path), 2)
    assert words in caught.value.message


def test_a_cases_file_name_with_a_nul_is_a_suite_error(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="NUL") as caught:
        read_case_file(tmp_path / "a\0.csv", suite_file="s.yaml", line=3)
    assert (caught.value.file, caught.value.line) == ("s.yaml", 3)


@pytest.mark.parametrize("pattern", ["a{99999999999}", "(" * 5000 + ")" * 5000])
def test_a_regex_too_large_to_compile_is_a_suite_error(tmp_path: Path, pattern: str) -> None:
    path = tmp_path / "s.yaml"
    suite = {"target": "openai/x", "prompt": "hi", "cases": [{"id": "a", "expect": [{"regex": pattern}]}]}
    path.write_text(yaml.safe_dump(suite, width=100_000))
    with pytest.raises(SuiteError, match="too large or nested too deeply") as caught:
        load_suite(path)
    assert caught.value.file == str(path)


@pytest.mark.parametrize(
    ("checks", "words"),
    [
        ("[{'contains: Paris': 3/3}]", "`checks` must map"),
        ("{'contains: Paris': ²/3}", "must be `passed/samples`"),
        ("{'contains: Paris': 3}", "must be `passed/samples`"),
    ],
)
def test_a_sampled_snapshot_entry_with_broken_checks_is_a_snapshot_error(
    tmp_path: Path, checks: str, words: str
) -> None:
    path = tmp_path / "s.yaml"
    text = SAMPLED_SNAPSHOT.split("    checks:")[0] + f"    checks: {checks}\n"
    path.write_text(text)
    with pytest.raises(SnapshotError) as caught:
        read_snapshot(path)
    assert (caught.value.file, caught.value.line) == (str(path), 3)
    assert words in caught.value.message


def _broken_run(change: Callable[[dict[str, Any]], Any]) -> Any:
    data = run_seed()
    return change(data) or data


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        _broken_run(lambda d: d["results"][0].update(checks=[None])),
        _broken_run(lambda d: d["results"][1]["checks"][0].update(before=[3])),
        _broken_run(lambda d: d["results"][1]["checks"][0].update(passed_count=9)),
        _broken_run(lambda d: d["results"][0].update(output=5)),
        _broken_run(lambda d: d["results"][0].update(tokens={"prompt": "five"})),
        _broken_run(lambda d: d["results"][0].update(flags=[1])),
        _broken_run(lambda d: d.update(id=7)),
    ],
)
def test_a_run_record_of_the_wrong_shape_is_a_clear_error(tmp_path: Path, data: Any) -> None:
    # Were AttributeError/IndexError in read_run, or a TypeError later in the reports.
    path = tmp_path / "20240101T000000-000001.json"
    path.write_text(json.dumps(data))
    with pytest.raises(PromptTestError, match="not a readable run record") as caught:
        read_run(path)
    assert caught.value.file == str(path)


def test_a_deeply_nested_run_record_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(PromptTestError, match="not a readable run record"):
        read_run(path)


@pytest.mark.parametrize(
    "text",
    ['{"rejected": [["a"], "s/c@t"]}', '{"rejected": 5}', "[]", "[" * 100_000, "\xff"],
)
def test_a_broken_review_decisions_file_only_means_nothing_was_rejected(tmp_path: Path, text: str) -> None:
    # `{"rejected": [["a"]]}` was a TypeError (an unhashable key) in `review` and `accept`.
    from prompttest.records.review import decisions_path, rejected_keys

    record = tmp_path / "runs" / "20240101T000000-000001.json"
    decisions_path(record).parent.mkdir(parents=True)
    decisions_path(record).write_text(text)
    assert rejected_keys(record) <= {"s/c@t"}


@pytest.mark.parametrize(
    ("find", "replace", "line_of"),
    [
        ("    output: Paris\n", "\toutput: Paris\n", "\toutput: Paris\n"),  # a tab: invalid YAML
        ("      'contains: Paris': pass\n", "      'contains: Paris': passed\n", "  france@fake:\n"),
    ],
)
def test_a_hand_broken_snapshot_stops_the_run_and_is_left_alone(
    project: Any, capsys: Any, find: str, replace: str, line_of: str
) -> None:
    project.suite("geo", GEO_SUITE)
    project.server.reply = replies({"France": "Paris", "Japan": "Tokyo", "Peru": "Lima"})
    assert project.run("run", capsys=capsys).code == 0
    snapshot = project.root / "snapshots" / "geo.yaml"
    lines = snapshot.read_text().splitlines(keepends=True)
    lines[lines.index(find)] = replace
    line = lines.index(line_of) + 1
    broken = "".join(lines).encode()
    snapshot.write_bytes(broken)
    for args in (("run",), ("run", "--update"), ("accept",)):
        outcome = project.run(*args, capsys=capsys)
        assert outcome.code == 2, outcome
        assert "Traceback" not in outcome.out + outcome.err
        assert outcome.err.startswith(f"error: {snapshot}:{line}: "), outcome.err
        assert snapshot.read_bytes() == broken

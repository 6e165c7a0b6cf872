"""The streaming YAML loader gives exactly what composing the whole document gives.

A plain document (no anchor, one document) is converted as its nodes are composed, so a
10,000-entry snapshot is never held as a whole node tree; the result, the lines and the
errors must be those of `yaml.compose` followed by the same conversion.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import FUZZ
from hypothesis import given, settings
from hypothesis import strategies as st

from prompttest.errors import PromptTestError, SuiteError
from prompttest.io import yamlnodes, yamlsource
from prompttest.io.yamlsource import Lines, load_yaml

REPO = Path(__file__).resolve().parent.parent


def composed_whole(text: str, line_depth: int | None = None) -> tuple[Any, Lines]:
    """What the loader did before streaming: compose the whole tree, then convert it."""
    root = yaml.compose(text, Loader=yamlsource._FAST_LOADER)
    lines: Lines = {}
    if root is None:
        return None, lines
    converter = yamlnodes.Converter(file="f.yaml", error=SuiteError, first_line=1, lines=lines)
    data = converter.convert(root, (), (0, 0), 0)
    if line_depth is not None:
        lines = {path: line for path, line in lines.items() if len(path) <= line_depth}
    return data, lines


def outcome(load: Any) -> tuple[str, Any]:
    try:
        return "ok", load()
    except PromptTestError as error:
        return "error", (error.message, error.line)


def assert_same_as_composing_whole(text: str, line_depth: int | None = None) -> None:
    streamed = outcome(lambda: load_yaml(text, file="f.yaml", line_depth=line_depth))
    whole = outcome(lambda: composed_whole(text, line_depth))
    assert streamed == whole


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(["yes", "~", "0x1f", "1e3", "2026-12-01", "{{ var }}", "a: b", "- x", "|", "#c"]),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.text(max_size=10), inner, max_size=5),
    ),
    max_leaves=40,
)


@settings(FUZZ, max_examples=300)
@given(data=documents, flow=st.sampled_from([False, True, None]), width=st.sampled_from([20, 80, 10_000]))
def test_any_dumped_document_loads_as_when_composed_whole(data: Any, flow: bool | None, width: int) -> None:
    text = yaml.safe_dump(data, default_flow_style=flow, width=width, allow_unicode=True)
    assert_same_as_composing_whole(text)
    assert_same_as_composing_whole(text, line_depth=2)


@settings(FUZZ, max_examples=300)
@given(text=st.text(alphabet=st.sampled_from(list("ab: -[]{},\n'\"#!&*<|>?x1")), max_size=80))
def test_any_text_loads_or_fails_as_when_composed_whole(text: str) -> None:
    try:
        yaml.compose(text, Loader=yamlsource._FAST_LOADER)
    except yaml.YAMLError:
        return  # a syntax error: both paths render it from the same exception
    except RecursionError:
        return
    assert_same_as_composing_whole(text)


@pytest.mark.parametrize(
    "path",
    sorted(
        p.relative_to(REPO).as_posix() for p in [*REPO.glob("suites/*.yaml"), *REPO.glob("snapshots/*.yaml")]
    ),
)
def test_the_repositorys_files_load_as_when_composed_whole(path: str) -> None:
    text = (REPO / path).read_text(encoding="utf-8")
    assert_same_as_composing_whole(text)
    assert_same_as_composing_whole(text, line_depth=2)


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\na: 2\n",  # duplicate key, found while streaming
        "a: {b: [1, 2, !!set {x}]}\n",  # unsupported tag deep inside
        "? [1, 2]\n: value\n",  # a list as a key
        "? {a: 1}\n: value\n",  # a mapping as a key: its events come before the value's
        "base: {x: 1}\nuse: {<<: {x: 2, y: 3}, x: 0}\n",  # merge of an inline mapping
        "use: {<<: [{a: 1}, {a: 2, b: 2}]}\n",  # merge of an inline list of mappings
        "use: {<<: 5}\n",  # merge of a scalar
        "- !!int 12\n- !!int abc\n",
        "",
        "# only a comment\n",
    ],
)
def test_edge_cases_load_or_fail_as_when_composed_whole(text: str) -> None:
    assert_same_as_composing_whole(text)


def test_anchors_still_take_the_whole_document_path_and_are_bounded() -> None:
    laughs = "a: &a [x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}]\n" for p, c in zip("abcdefg", "bcdefgh", strict=True)
    )
    with pytest.raises(SuiteError, match="too many YAML aliases"):
        load_yaml(laughs, file="f.yaml")
    data, lines = load_yaml("d: &d {k: 1}\nuse: *d\n", file="f.yaml")
    assert data == {"d": {"k": 1}, "use": {"k": 1}} and lines[("use",)] == 2


def test_line_depth_keeps_only_the_shallow_lines() -> None:
    text = "suite: s\nresults:\n  a@m:\n    output: x\n    checks: {c: pass}\n"
    data, lines = load_yaml(text, file="f.yaml", line_depth=2)
    assert data["results"]["a@m"]["checks"] == {"c": "pass"}
    assert lines == {(): 1, ("suite",): 1, ("results",): 2, ("results", "a@m"): 3}

"""Suites: YAML with lines, templates, validation in plain words, case files, expansion.

Every user mistake must give a SuiteError whose file and line are exactly right.
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from prompttest.errors import SnapshotError, SuiteError
from prompttest.io.yamlnodes import MAX_ALIASES
from prompttest.io.yamlsource import load_yaml, load_yaml_file
from prompttest.model import Target
from prompttest.suites.loading import (
    expand,
    find_suite_files,
    load_suite,
    load_suites,
    parse_key,
)
from prompttest.suites.schema import known_checks, suite_schema
from prompttest.suites.template import render, render_value, variables_in

DEFAULT = Target(id="local/gemma-3-270m", model="local/gemma-3-270m")


def write(path: Path, text: str) -> Path:
    """Write dedented text; its first line is line 1."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def suite_error(tmp_path: Path, text: str, name: str = "capitals.yaml") -> SuiteError:
    """Load a broken suite; return its error, checked to render as one paragraph."""
    path = write(tmp_path / name, text)
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    rendered = info.value.render()
    assert "Traceback" not in rendered and len(rendered.splitlines()) <= 2
    return info.value


def where(error: SuiteError) -> tuple[str, int | None]:
    return Path(error.file or "").name, error.line


# ------------------------------------------------------------------ yamlsource


def test_yaml_lines_map_paths_to_lines() -> None:
    text = "a: 1\nb:\n  - x\n  - {c: 2}\nd:\n  e: true\n"
    data, lines = load_yaml(text, file="f.yaml")
    assert data == {"a": 1, "b": ["x", {"c": 2}], "d": {"e": True}}
    assert lines[("a",)] == 1
    assert lines[("b",)] == 2 and lines[("b", 0)] == 3 and lines[("b", 1, "c")] == 4
    assert lines[("d", "e")] == 6


def test_yaml_keeps_dates_as_text_and_keys_as_written() -> None:
    data, _ = load_yaml("day: 2024-05-01\n1: one\nyes: no\n", file="f.yaml")
    assert data == {"day": "2024-05-01", "1": "one", "yes": False}


def test_yaml_syntax_error_names_file_line_and_problem() -> None:
    with pytest.raises(SuiteError) as info:
        load_yaml("a: 1\nb: c: d\n", file="f.yaml")
    assert (info.value.file, info.value.line) == ("f.yaml", 2)
    assert info.value.message == "invalid YAML: mapping values are not allowed here"


def test_yaml_tab_indentation_gets_a_hint() -> None:
    with pytest.raises(SuiteError) as info:
        load_yaml("a:\n\t- x\n", file="f.yaml")
    assert info.value.line == 2 and "tabs" in (info.value.hint or "")


def test_yaml_duplicate_keys_are_refused() -> None:
    with pytest.raises(SuiteError) as info:
        load_yaml("cases:\n  - id: a\n    vars: {}\n    vars: {x: 1}\n", file="f.yaml")
    assert info.value.line == 4
    assert info.value.message == "duplicate key 'vars' (first on line 3)"


def test_yaml_never_constructs_objects() -> None:
    with pytest.raises(SuiteError) as info:
        load_yaml("a: !!python/object/apply:os.system [echo hi]\n", file="f.yaml")
    assert "unsupported YAML tag '!!python/object/apply:os.system'" in info.value.message


def test_yaml_billion_laughs_is_refused_quickly() -> None:
    text = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        text += f"{level}: &{level} [{', '.join([f'*{previous}'] * 9)}]\n"
    start = time.perf_counter()
    with pytest.raises(SuiteError) as info:
        load_yaml(text, file="lol.yaml")
    assert time.perf_counter() - start < 1
    assert "too many YAML aliases" in info.value.message
    assert info.value.line == 4  # `d:` is the first alias that pushes the count past 100


def test_yaml_allows_up_to_the_alias_limit() -> None:
    ok = "x: &x 1\nys:\n" + "  - *x\n" * MAX_ALIASES
    data, _ = load_yaml(ok, file="f.yaml")
    assert data["ys"] == [1] * MAX_ALIASES
    with pytest.raises(SuiteError, match="too many YAML aliases"):
        load_yaml(ok + "  - *x\n", file="f.yaml")


def test_yaml_recursive_alias_is_refused() -> None:
    with pytest.raises(SuiteError, match="contains itself"):
        load_yaml("a: &a [1, *a]\n", file="f.yaml")


def test_yaml_merge_keys_let_explicit_keys_win() -> None:
    text = "base: &b {temperature: 0, max_tokens: 64}\nparams: {<<: *b, max_tokens: 8}\n"
    data, lines = load_yaml(text, file="f.yaml")
    assert data["params"] == {"temperature": 0, "max_tokens": 8}
    assert lines[("params", "max_tokens")] == 2


def test_yaml_merge_key_lists_let_earlier_sources_win() -> None:
    text = "a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc:\n  <<: [*a, *b]\n"
    data, _ = load_yaml(text, file="f.yaml")
    assert data["c"] == {"x": 1, "y": 1, "z": 2}


def test_yaml_unquoted_placeholder_gets_a_quoting_hint() -> None:
    with pytest.raises(SuiteError) as info:
        load_yaml("prompt: x\nsystem: {{ persona }}\n", file="f.yaml")
    assert info.value.line == 2 and "quote" in (info.value.hint or "")


def test_yaml_error_class_is_a_parameter(tmp_path: Path) -> None:
    path = write(tmp_path / "snap.yaml", "a: [1\n")
    with pytest.raises(SnapshotError) as info:
        load_yaml_file(path, error=SnapshotError)
    assert info.value.file == str(path)


def test_yaml_embedded_lines_are_shifted() -> None:
    _, lines = load_yaml("- contains: a\n- contains: b\n", file="c.csv", first_line=7)
    assert lines[(1,)] == 8


# ------------------------------------------------------------------ template


def test_render_fills_placeholders_with_or_without_spaces() -> None:
    text = "{{country}} / {{ country }} / {{   country}}"
    rendered = render(text, {"country": "France"}, where="case 'a'", file="s", line=1)
    assert rendered == "France / France / France"


def test_render_walks_dotted_names_and_list_indexes() -> None:
    vars = {"user": {"name": "Ada", "langs": ["en", "fr"]}}
    text = "{{ user.name }} speaks {{ user.langs.1 }}"
    assert render(text, vars, where="w", file=None, line=None) == "Ada speaks fr"


def test_render_prefers_an_exact_dotted_key() -> None:
    assert render("{{ a.b }}", {"a.b": "x"}, where="w", file=None, line=None) == "x"


def test_render_turns_values_into_text() -> None:
    vars = {"n": 3, "f": 0.5, "items": ["b", "a"], "obj": {"k": 1, "a": "é"}}
    text = "{{ n }} {{ f }} {{ items }} {{ obj }}"
    rendered = render(text, vars, where="w", file=None, line=None)
    assert rendered == '3 0.5 ["b","a"] {"a":"é","k":1}'


def test_render_leaves_other_double_braces_alone() -> None:
    text = "{{ x | upper }} and {{ }} stay"
    assert render(text, {}, where="w", file=None, line=None) == text


def test_render_missing_variable_names_case_variable_and_place() -> None:
    with pytest.raises(SuiteError) as info:
        render(
            "Capital of {{ country }}?",
            {"contry": "France", "lang": "en"},
            where="case 'france'",
            file="suites/capitals.yaml",
            line=12,
        )
    error = info.value
    assert error.message == "case 'france' uses {{ country }} but has no variable 'country'"
    assert (error.file, error.line) == ("suites/capitals.yaml", 12)
    assert error.hint == "variables of case 'france': contry, lang"


def test_render_missing_dotted_key_lists_the_keys_there() -> None:
    with pytest.raises(SuiteError) as info:
        render(
            "{{ user.nmae }}",
            {"user": {"name": "Ada"}},
            where="case 'a'",
            file="s",
            line=1,
        )
    assert info.value.hint == "'user' has keys: name"


def test_render_value_renders_strings_inside_lists_and_mappings() -> None:
    value = {"path": "$.{{ key }}", "equals": ["{{ v }}", 3, None]}
    rendered = render_value(value, {"key": "capital", "v": "Paris"}, where="w", file=None, line=None)
    assert rendered == {"path": "$.capital", "equals": ["Paris", 3, None]}


def test_variables_in_lists_names_as_written() -> None:
    assert variables_in("{{ a }} {{b.c}} {{ a }} {{ not a var }}") == {"a", "b.c"}


# ------------------------------------------------------------------ a good suite

CAPITALS = """
    suite: capitals
    description: Country capitals, one sentence each.
    targets:
      - openai/gpt-4o-mini
      - id: local-vllm
        model: openai/qwen2.5-7b
        api_base: http://localhost:8000/v1
        params: {temperature: 0.5, seed: 1}
    params: {temperature: 0, max_tokens: 64}
    system: You answer in one sentence.
    prompt: "What is the capital of {{ country }}?"
    expect:
      - max_length: 200
    cases:
      - id: france
        vars: {country: France}
        expect:
          - contains: "{{ capital }}"
        params: {max_tokens: 16}
      - id: json-answer
        prompt: 'Reply in JSON: {"capital": ...} for {{ country }}.'
        vars: {country: Japan, capital: Tokyo}
        expect:
          - is_json: true
          - json_schema: {type: object, required: [capital]}
"""


def test_load_suite_reads_targets_cases_and_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "capitals.yaml",
        CAPITALS.replace("{country: France}", "{country: France, capital: Paris}"),
    )
    suite = load_suite(path)
    assert suite.name == "capitals" and suite.path == str(path)
    assert [t.id for t in suite.targets] == ["openai/gpt-4o-mini", "local-vllm"]
    assert suite.targets[1].api_base == "http://localhost:8000/v1"
    assert [(c.id, c.line, c.file) for c in suite.cases] == [
        ("france", 15, str(path)),
        ("json-answer", 20, str(path)),
    ]
    assert [(c.name, c.line) for c in suite.expect] == [("max_length", 13)]
    assert [(c.name, c.line) for c in suite.cases[1].expect] == [
        ("is_json", 24),
        ("json_schema", 25),
    ]


def test_suite_name_defaults_to_the_file_stem(tmp_path: Path) -> None:
    path = write(tmp_path / "greetings.yml", "prompt: hi\ncases:\n  - id: 1\n")
    suite = load_suite(path)
    assert suite.name == "greetings" and suite.cases[0].id == "1"


# ------------------------------------------------------------------ schema errors


@pytest.mark.parametrize(
    ("text", "line", "message", "hint"),
    [
        pytest.param(
            """
            prompt: hi
            cases:
              - id: france
                promt: hello
            """,
            4,
            "unknown key 'promt' in case 'france'; known keys: id, description, vars, "
            "prompt, images, system, messages, turns, tool_results, max_steps, params, tools, tool_choice, "
            "response_format, expect, repeat, max_repeat, compare, pass",
            "did you mean 'prompt'?",
            id="unknown-case-key",
        ),
        pytest.param(
            """
            prompt: hi
            modle: x
            cases: [{id: a}]
            """,
            2,
            "unknown key 'modle' at the top of the suite; known keys: suite, "
            "description, target, targets, params, tools, tool_choice, response_format, system, "
            "prompt, images, messages, turns, tool_results, max_steps, expect, repeat, max_repeat, "
            "compare, pass, cases",
            None,
            id="unknown-top-key",
        ),
        pytest.param(
            """
            prompt: hi
            cases:
              - id: a
              - id: b
              - id: c
                vars: [1, 2]
            """,
            6,
            "cases[2].vars must be a mapping, got a list",
            None,
            id="vars-not-a-mapping",
        ),
        pytest.param(
            """
            prompt: hi
            cases:
              - id: a
                expect:
                  - contains: 42
            """,
            5,
            "cases[0].expect[0].contains must be a string, got an integer",
            "quote it to make it text: '42'",
            id="number-for-string",
        ),
        pytest.param(
            """
            prompt: hi
            cases:
              - id: a
                expect:
                  - contains: Paris
                    regex: P.*
            """,
            5,
            "cases[0].expect[0] has more than one check: contains, regex",
            "write each check as its own list item, starting with '-'",
            id="two-checks-in-one-item",
        ),
        pytest.param(
            """
            prompt: hi
            cases:
              - id: a
                expect:
                  - contains Paris
            """,
            5,
            "cases[0].expect[0] must be a mapping, got a string",
            "write each check as a mapping under expect:, e.g. - contains: Paris",
            id="check-not-a-mapping",
        ),
        pytest.param(
            """
            prompt: hi
            cases:
              - vars: {a: 1}
            """,
            3,
            "cases[0] has no 'id'",
            "every case needs an id that is unique in its suite, e.g. id: france",
            id="case-without-id",
        ),
        pytest.param(
            """
            description: nothing to run
            prompt: hi
            """,
            1,
            "the suite has no 'cases'",
            "add cases: (a list) or cases: path/to/cases.csv (or .jsonl)",
            id="no-cases",
        ),
        pytest.param(
            """
            cases:
              - id: a
                messages:
                  - role: bot
                    content: hi
            """,
            4,
            "cases[0].messages[0].role must be one of system, user, assistant; got 'bot'",
            None,
            id="bad-role",
        ),
        pytest.param(
            """
            prompt: hi
            expect:
              - max_length: -1
            cases: [{id: a}]
            """,
            3,
            "expect[0].max_length must be at least 0, got -1",
            None,
            id="negative-length",
        ),
        pytest.param(
            """
            prompt: hi
            cases:
              - id: a
                expect:
                  - json_path: {path: $.capital}
            """,
            5,
            "cases[0].expect[0].json_path has no 'equals'",
            None,
            id="json-path-without-equals",
        ),
        pytest.param(
            """
            prompt: hi
            cases:
              - id: a
                expect:
                  - is_json: {allow_fences: true}
            """,
            5,
            "unknown key 'allow_fences' in the is_json check; known keys: allow_fence",
            "did you mean 'allow_fence'?",
            id="is-json-option-typo",
        ),
        pytest.param(
            """
            prompt: hi
            targets:
              - id: x
            cases: [{id: a}]
            """,
            3,
            "a target needs model:, or one of python:, http:, exec: (an application)",
            "targets: [openai/gpt-4o-mini, {id: app, python: myapp.assistant:answer}]",
            id="target-without-model",
        ),
        pytest.param(
            """
            prompt: hi
            cases:
              - id: a
              - id: fr/1
            """,
            4,
            "case id 'fr/1' must start with a letter or digit and use only letters, digits and _ . : -",
            None,
            id="bad-case-id",
        ),
        pytest.param(
            """
            suite: my suite
            prompt: hi
            cases: [{id: a}]
            """,
            1,
            "suite name 'my suite' must start with a letter or digit and use only letters, digits and _ . -",
            None,
            id="bad-suite-name",
        ),
        pytest.param(
            """
            prompt: hi
            cases:
              - id: a
                contains: Paris
            """,
            4,
            "unknown key 'contains' in case 'a'; known keys: id, description, vars, "
            "prompt, images, system, messages, turns, tool_results, max_steps, params, tools, tool_choice, "
            "response_format, expect, repeat, max_repeat, compare, pass",
            "checks go under expect: - contains: ...",
            id="check-outside-expect",
        ),
        pytest.param(
            """
            prompt: hi
            cases: []
            """,
            2,
            "the suite has no cases",
            "add at least one case: - id: first",
            id="empty-cases",
        ),
        pytest.param(
            """
            - id: a
            """,
            1,
            "a suite file must be a mapping with a 'cases' key; this one is a list",
            "see `prompttest init` for an example suite",
            id="not-a-mapping",
        ),
    ],
)
def test_schema_errors_say_what_is_wrong_where(
    tmp_path: Path, text: str, line: int, message: str, hint: str | None
) -> None:
    error = suite_error(tmp_path, text)
    assert (error.file, error.line) == (str(tmp_path / "capitals.yaml"), line)
    assert error.message == message
    assert error.hint == hint


def test_unknown_check_lists_the_known_ones(tmp_path: Path) -> None:
    error = suite_error(
        tmp_path,
        """
        prompt: hi
        cases:
          - id: france
            expect:
              - max_length: 100
              - contans: Paris
        """,
    )
    assert where(error) == ("capitals.yaml", 6)
    assert error.message == f"unknown check 'contans'; known checks: {', '.join(known_checks())}"
    assert error.hint == "did you mean 'contains'?"


def test_schema_check_names_match_the_registry() -> None:
    schema_names = set(suite_schema()["$defs"]["check"]["properties"])
    assert set(known_checks()) == schema_names


def test_empty_suite_file_is_refused(tmp_path: Path) -> None:
    error = suite_error(tmp_path, "# nothing yet\n")
    assert error.message.endswith("this one is empty")


# ------------------------------------------------------------------ semantic errors


def test_duplicate_case_id_names_both_lines(tmp_path: Path) -> None:
    error = suite_error(
        tmp_path,
        """
        prompt: hi
        cases:
          - id: france
          - id: japan
          - id: france
        """,
    )
    assert where(error) == ("capitals.yaml", 5)
    assert error.message == "duplicate case id 'france' (lines 3 and 5)"


def test_duplicate_target_id_names_both_lines(tmp_path: Path) -> None:
    error = suite_error(
        tmp_path,
        """
        prompt: hi
        targets:
          - openai/gpt-4o-mini
          - id: openai/gpt-4o-mini
            model: openai/gpt-4o
        cases: [{id: a}]
        """,
    )
    assert where(error) == ("capitals.yaml", 4)
    assert error.message == "duplicate target id 'openai/gpt-4o-mini' (lines 3 and 4)"


def test_target_id_with_at_sign_is_refused(tmp_path: Path) -> None:
    error = suite_error(tmp_path, "prompt: hi\ntarget: {id: a@b, model: m}\ncases: [{id: a}]\n")
    assert where(error) == ("capitals.yaml", 2) and "'@'" in error.message


def test_target_and_targets_together_are_refused(tmp_path: Path) -> None:
    error = suite_error(tmp_path, "prompt: hi\ntarget: m1\ntargets: [m2]\ncases: [{id: a}]\n")
    assert where(error) == ("capitals.yaml", 3)
    assert error.message == "use either target: or targets:, not both"


def test_prompt_and_messages_together_are_refused(tmp_path: Path) -> None:
    error = suite_error(
        tmp_path,
        """
        cases:
          - id: a
            prompt: hi
            messages: [{role: user, content: hi}]
        """,
    )
    assert where(error) == ("capitals.yaml", 4)
    assert error.message == "use either prompt: or messages:, not both"


def test_case_without_any_prompt_is_refused(tmp_path: Path) -> None:
    error = suite_error(
        tmp_path,
        """
        cases:
          - id: a
            prompt: hi
          - id: b
            vars: {x: 1}
        """,
    )
    assert where(error) == ("capitals.yaml", 4)
    assert error.message == "case 'b' has no prompt"
    assert error.hint == "give the case a prompt: or messages:, or set one for the whole suite"


def test_case_system_with_suite_messages_is_refused(tmp_path: Path) -> None:
    error = suite_error(
        tmp_path,
        """
        messages: [{role: user, content: hi}]
        cases:
          - id: a
            system: be brief
        """,
    )
    assert where(error) == ("capitals.yaml", 3)
    assert "sets system:" in error.message


PARAMS_SUITE = """
    prompt: hi
    params: {temperature: 0, SUITE}
    targets:
      - {model: m, params: {TARGET}}
    cases:
      - id: a
        params:
          CASE
"""


@pytest.mark.parametrize(
    ("place", "key", "line", "hint_word"),
    [
        ("SUITE", "api_key", 2, "environment"),
        ("TARGET", "api_base", 4, "target"),
        ("CASE", "model", 8, "target"),
    ],
)
def test_keys_endpoints_and_models_are_refused_in_params(
    tmp_path: Path, place: str, key: str, line: int, hint_word: str
) -> None:
    text = PARAMS_SUITE.replace(place, f"{key}: x")
    text = text.replace("SUITE", "seed: 1").replace("TARGET", "seed: 1").replace("CASE", "seed: 1")
    error = suite_error(tmp_path, text)
    assert where(error) == ("capitals.yaml", line)
    assert error.message == f"'{key}' is not allowed in params"
    assert hint_word in (error.hint or "")


def test_missing_template_variable_is_caught_at_load(tmp_path: Path) -> None:
    error = suite_error(
        tmp_path,
        """
        prompt: "What is the capital of {{ country }}?"
        cases:
          - id: japan
            vars: {country: Japan}
          - id: france
            vars: {contry: France}
        """,
    )
    assert where(error) == ("capitals.yaml", 5)
    assert error.message == "case 'france' uses {{ country }} but has no variable 'country'"
    assert error.hint == "variables of case 'france': contry"


def test_missing_variable_in_a_check_value_is_caught_at_load(tmp_path: Path) -> None:
    error = suite_error(
        tmp_path,
        """
        prompt: hi
        expect:
          - contains: "{{ capital }}"
        cases:
          - id: france
        """,
    )
    assert where(error) == ("capitals.yaml", 5)  # the case that lacks it
    assert "has no variable 'capital'" in error.message
    assert error.hint == "case 'france' has no variables; add them under vars:"


def test_check_values_are_vetted_by_the_registry(tmp_path: Path) -> None:
    error = suite_error(
        tmp_path,
        """
        prompt: hi
        cases:
          - id: a
            expect:
              - contains: x
              - regex: "(unclosed"
        """,
    )
    assert where(error) == ("capitals.yaml", 6)
    assert error.message.startswith("check 'regex' in case 'a': ")


def test_yaml_error_in_a_suite_points_at_the_line(tmp_path: Path) -> None:
    error = suite_error(tmp_path, "prompt: hi\ncases:\n  - id: a\n   vars: {x: 1}\n")
    assert where(error) == ("capitals.yaml", 4)
    assert error.message.startswith("invalid YAML: ")


# ------------------------------------------------------------------ cases from files


def test_csv_cases_become_vars_with_ids_expect_and_lines(tmp_path: Path) -> None:
    write(
        tmp_path / "cases" / "capitals.csv",
        """
        id,country,capital,expect
        france,France,Paris,"- contains: Paris"
        ,Japan,Tokyo,"{contains: Tokyo}"

        peru,"Peru
        (South America)",Lima,
        """,
    )
    path = write(
        tmp_path / "capitals.yaml",
        'prompt: "{{ country }}"\ncases: cases/capitals.csv\n',
    )
    suite = load_suite(path)
    csv_file = str(tmp_path / "capitals.yaml").replace("capitals.yaml", "cases/capitals.csv")
    assert [(c.id, c.line, c.file) for c in suite.cases] == [
        ("france", 2, csv_file),
        ("row-2", 3, csv_file),
        ("peru", 5, csv_file),
    ]
    assert suite.cases[0].vars == {"country": "France", "capital": "Paris"}
    assert [(c.name, c.value, c.line) for c in suite.cases[1].expect] == [("contains", "Tokyo", 3)]
    assert suite.cases[2].expect == ()


def test_csv_from_excel_with_a_byte_order_mark(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_bytes("\ufeffid,country\r\nfr,France\r\n".encode())
    suite = load_suite(write(tmp_path / "s.yaml", "prompt: hi\ncases: c.csv\n"))
    assert [(c.id, c.vars, c.line) for c in suite.cases] == [("fr", {"country": "France"}, 2)]


def test_csv_row_with_wrong_number_of_values(tmp_path: Path) -> None:
    write(tmp_path / "c.csv", "id,country\na,France\nb,Japan,extra\n")
    error = suite_error(tmp_path, "prompt: hi\ncases: c.csv\n")
    assert where(error) == ("c.csv", 3)
    assert error.message == "row 2 has 3 values but the header has 2 columns"


def test_csv_bad_expect_yaml_points_at_the_row(tmp_path: Path) -> None:
    write(
        tmp_path / "c.csv",
        'country,expect\nFrance,- contains: Paris\nJapan,"- contains: [Tokyo"\n',
    )
    error = suite_error(tmp_path, "prompt: hi\ncases: c.csv\n")
    assert where(error) == ("c.csv", 3)
    assert error.message.startswith("row 2, expect column: invalid YAML: ")


def test_csv_unknown_check_in_expect_points_at_the_row(tmp_path: Path) -> None:
    write(tmp_path / "c.csv", "country,expect\nFrance,\nJapan,- contians: Tokyo\n")
    error = suite_error(tmp_path, "prompt: hi\ncases: c.csv\n")
    assert where(error) == ("c.csv", 3)
    assert error.message.startswith("unknown check 'contians'; known checks: ")


def test_csv_duplicate_ids_name_both_rows(tmp_path: Path) -> None:
    write(tmp_path / "c.csv", "id,country\nfr,France\njp,Japan\nfr,Fiji\n")
    error = suite_error(tmp_path, "prompt: hi\ncases: c.csv\n")
    assert where(error) == ("c.csv", 4)
    assert error.message == "duplicate case id 'fr' (lines 2 and 4)"


def test_csv_missing_variable_points_at_the_row(tmp_path: Path) -> None:
    write(tmp_path / "c.csv", "id,country\nfr,France\n")
    error = suite_error(tmp_path, 'prompt: "{{ country }} {{ capital }}"\ncases: c.csv\n')
    assert where(error) == ("c.csv", 2)
    assert error.message == "case 'fr' uses {{ capital }} but has no variable 'capital'"


def test_jsonl_cases_with_lines_ids_and_expect(tmp_path: Path) -> None:
    write(
        tmp_path / "c.jsonl",
        """
        {"id": "fr", "country": "France", "expect": [{"contains": "Paris"}]}

        {"id": 7, "country": "Japan", "expect": {"icontains": "tokyo"}}
        {"country": "Peru", "meta": {"continent": "SA"}}
        """,
    )
    suite = load_suite(write(tmp_path / "s.yaml", 'prompt: "{{ country }}"\ncases: c.jsonl\n'))
    assert [(c.id, c.line) for c in suite.cases] == [("fr", 1), ("7", 3), ("row-3", 4)]
    assert [(c.name, c.value, c.line) for c in suite.cases[1].expect] == [("icontains", "tokyo", 3)]
    assert suite.cases[2].vars == {"country": "Peru", "meta": {"continent": "SA"}}


def test_jsonl_bad_json_names_the_line(tmp_path: Path) -> None:
    write(tmp_path / "c.jsonl", '{"country": "France"}\n\n{"country": "Japan",}\n')
    error = suite_error(tmp_path, "prompt: hi\ncases: c.jsonl\n")
    assert where(error) == ("c.jsonl", 3)
    assert error.message.startswith("invalid JSON on row 2: ")


def test_jsonl_row_must_be_an_object(tmp_path: Path) -> None:
    write(tmp_path / "c.jsonl", '{"country": "France"}\n["Japan"]\n')
    error = suite_error(tmp_path, "prompt: hi\ncases: c.jsonl\n")
    assert where(error) == ("c.jsonl", 2)
    assert error.message.startswith("row 2 must be a JSON object")


def test_jsonl_wrong_check_type_names_the_row(tmp_path: Path) -> None:
    write(tmp_path / "c.jsonl", '{"country": "France", "expect": {"max_words": "ten"}}\n')
    error = suite_error(tmp_path, "prompt: hi\ncases: c.jsonl\n")
    assert where(error) == ("c.jsonl", 1)
    assert error.message == "row 1: expect[0].max_words must be an integer, got a string"


def test_missing_case_file_points_at_the_suite(tmp_path: Path) -> None:
    error = suite_error(tmp_path, "prompt: hi\n\ncases: cases/nope.csv\n")
    assert where(error) == ("capitals.yaml", 3)
    assert error.message == f"cases file not found: {tmp_path / 'cases' / 'nope.csv'}"
    assert error.hint == "the path in cases: is relative to the suite file"


def test_case_file_with_unknown_extension(tmp_path: Path) -> None:
    write(tmp_path / "c.txt", "x\n")
    error = suite_error(tmp_path, "prompt: hi\ncases: c.txt\n")
    assert where(error) == ("capitals.yaml", 2)
    assert "must end in .csv or .jsonl" in error.message


def test_empty_case_file_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "c.csv", "id,country\n")
    error = suite_error(tmp_path, "prompt: hi\ncases: c.csv\n")
    assert where(error) == ("c.csv", 1)


# ------------------------------------------------------------------ finding suites


def test_find_suite_files_searches_folders_sorted(tmp_path: Path) -> None:
    for name in [
        "b.yaml",
        "a/z.yml",
        "a/y.yaml",
        ".hidden/x.yaml",
        "notes.txt",
        "cases/c.csv",
    ]:
        write(tmp_path / "suites" / name, "x: 1\n")
    single = write(tmp_path / "other.yaml", "x: 1\n")
    found = find_suite_files([tmp_path / "suites", single, tmp_path / "suites" / "b.yaml"])
    relative = [p.relative_to(tmp_path).as_posix() for p in found]
    assert relative == [
        "suites/a/y.yaml",
        "suites/a/z.yml",
        "suites/b.yaml",
        "other.yaml",
    ]


def test_find_suite_files_missing_path(tmp_path: Path) -> None:
    with pytest.raises(SuiteError) as info:
        find_suite_files([tmp_path / "suites"])
    assert info.value.message == f"no such file or folder: {tmp_path / 'suites'}"
    assert "prompttest init" in (info.value.hint or "")


def test_find_suite_files_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "suites").mkdir()
    with pytest.raises(SuiteError) as info:
        find_suite_files([tmp_path / "suites"])
    assert info.value.message.startswith("no suite files (*.yaml, *.yml) in ")
    assert "prompttest init" in (info.value.hint or "")


def test_load_suites_refuses_two_files_with_one_name(tmp_path: Path) -> None:
    write(tmp_path / "suites" / "a" / "capitals.yaml", "prompt: hi\ncases: [{id: a}]\n")
    write(
        tmp_path / "suites" / "b.yaml",
        "suite: capitals\nprompt: hi\ncases: [{id: a}]\n",
    )
    with pytest.raises(SuiteError) as info:
        load_suites([tmp_path / "suites"])
    first, second = (
        tmp_path / "suites" / "a" / "capitals.yaml",
        tmp_path / "suites" / "b.yaml",
    )
    assert info.value.message == f"two suite files are named 'capitals': {first} and {second}"
    assert info.value.file == str(second)


# ------------------------------------------------------------------ expansion


def capitals(tmp_path: Path) -> Any:
    text = CAPITALS.replace("{country: France}", "{country: France, capital: Paris}")
    return load_suite(write(tmp_path / "capitals.yaml", text))


def test_expand_is_case_order_then_target_order(tmp_path: Path) -> None:
    jobs = expand(capitals(tmp_path), default_target=DEFAULT)
    assert [job.key for job in jobs] == [
        "capitals/france@openai/gpt-4o-mini",
        "capitals/france@local-vllm",
        "capitals/json-answer@openai/gpt-4o-mini",
        "capitals/json-answer@local-vllm",
    ]


def test_expand_merges_params_suite_then_target_then_case(tmp_path: Path) -> None:
    jobs = {job.key: job for job in expand(capitals(tmp_path), default_target=DEFAULT)}
    assert jobs["capitals/france@openai/gpt-4o-mini"].call.params == {
        "temperature": 0,
        "max_tokens": 16,
    }
    local = jobs["capitals/france@local-vllm"].call
    assert local.params == {"temperature": 0.5, "max_tokens": 16, "seed": 1}
    assert (local.model, local.api_base) == (
        "openai/qwen2.5-7b",
        "http://localhost:8000/v1",
    )


def test_expand_renders_messages_and_checks(tmp_path: Path) -> None:
    france = expand(capitals(tmp_path), default_target=DEFAULT)[0]
    assert france.call.messages == (
        {"role": "system", "content": "You answer in one sentence."},
        {"role": "user", "content": "What is the capital of France?"},
    )
    assert [(c.name, c.value, c.line) for c in france.checks] == [
        ("max_length", 200, 13),
        ("contains", "Paris", 18),
    ]
    assert france.vars == {"country": "France", "capital": "Paris"}
    assert (france.suite_path, france.case_line) == (
        str(tmp_path / "capitals.yaml"),
        15,
    )
    assert france.call.sample == 0


def test_expand_override_replaces_targets_and_default_fills_in(tmp_path: Path) -> None:
    suite = capitals(tmp_path)
    override = [Target(id="m", model="m"), Target(id="m", model="m")]
    jobs = expand(suite, targets_override=override, default_target=DEFAULT)
    assert [job.target for job in jobs] == ["m", "m"] and len({j.key for j in jobs}) == 2
    bare = load_suite(write(tmp_path / "bare.yaml", "prompt: hi\ncases: [{id: a}]\n"))
    assert bare.targets == ()
    (job,) = expand(bare, default_target=DEFAULT)
    assert job.key == "bare/a@local/gemma-3-270m"


def test_expand_message_sources(tmp_path: Path) -> None:
    path = write(
        tmp_path / "chat.yaml",
        """
        system: Be brief.
        messages:
          - {role: user, content: "Hi {{ name }}"}
          - {role: assistant, content: Hello.}
          - {role: user, content: Bye?}
        cases:
          - id: suite-messages
            vars: {name: Ada}
          - id: own-prompt
            prompt: "Hey {{ name }}"
            system: Be kind.
            vars: {name: Bo}
          - id: own-messages
            messages: [{role: user, content: yo}]
        """,
    )
    jobs = {job.case: job.call.messages for job in expand(load_suite(path), default_target=DEFAULT)}
    assert jobs["suite-messages"][0] == {"role": "user", "content": "Hi Ada"}
    assert len(jobs["suite-messages"]) == 3
    assert jobs["own-prompt"] == (
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Hey Bo"},
    )
    assert jobs["own-messages"] == ({"role": "user", "content": "yo"},)


def test_parse_key_splits_at_first_slash_then_first_at() -> None:
    assert parse_key("capitals/france@openai/gpt-4o-mini") == (
        "capitals",
        "france",
        "openai/gpt-4o-mini",
    )
    assert parse_key("s/c:1@ollama/llama3:8b") == ("s", "c:1", "ollama/llama3:8b")
    with pytest.raises(ValueError):
        parse_key("capitals/france")

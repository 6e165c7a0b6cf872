"""The JUnit, Markdown and GitHub-annotation reports, and the diff helpers they share."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from prompttest.model import CheckResult, Result, Verdict
from prompttest.records.runs import RunRecord
from prompttest.report.annotations import escape_data, escape_property, github_annotations
from prompttest.report.junit import render_junit
from prompttest.report.markdown import code_span, escape, render_markdown
from prompttest.report.textdiff import flipped_checks, unified_diff

PROJECT = "/srv/checkout"  # a made-up checkout: paths are made relative to it
SUITE_FILE = f"{PROJECT}/suites/capitals.yaml"
TARGET = "openai/gpt-4o-mini"


def check(label: str, passed: bool, reason: str = "") -> CheckResult:
    name = label.split(":", 1)[0]
    return CheckResult(label=label, passed=passed, reason=reason or ("ok" if passed else "failed"), name=name)


def result(case: str, verdict: Verdict, **fields: Any) -> Result:
    """A realistic result of the `capitals` suite; `fields` override any attribute."""
    values: dict[str, Any] = {
        "suite": "capitals",
        "case": case,
        "target": TARGET,
        "model": TARGET,
        "verdict": verdict,
        "output": "The capital of France is Paris.",
        "checks": (check("contains: Paris", True, "found 'Paris'"),),
        "snapshot_output": "The capital of France is Paris.",
        "snapshot_checks": {"contains: Paris": True},
        "latency_ms": 412.5,
        "prompt_tokens": 21,
        "completion_tokens": 9,
        "cost_usd": 0.000012,
        "suite_path": SUITE_FILE,
        "case_file": SUITE_FILE,
        "case_line": 12,
    }
    values.update(fields)
    return Result(**values)


def regressed(case: str = "france") -> Result:
    return result(
        case,
        Verdict.REGRESSED,
        output="France's capital is Lyon.\nIt is on the Rhône.",
        checks=(
            check("contains: Paris", False, "expected 'Paris' in output"),
            check("max_length: 200", True),
        ),
        snapshot_checks={"contains: Paris": True, "max_length: 200": True},
        flags=("prompt changed",),
        case_line=14,
    )


def error(case: str = "japan", message: str = "HTTP 401: invalid api key") -> Result:
    return result(
        case,
        Verdict.ERROR,
        output=None,
        checks=(),
        error=message,
        latency_ms=None,
        cost_usd=None,
        case_line=20,
    )


def record(*results: Result, ci: bool = False, strict: bool = False, **fields: Any) -> RunRecord:
    return RunRecord(
        id="20250101T120000",
        started_at="2025-01-01T12:00:00+00:00",
        wall_s=3.25,
        results=tuple(results),
        ci=ci,
        calls=len(results),
        options={"strict": strict},
        **fields,
    )


def mixed_record(**fields: Any) -> RunRecord:
    """One key of each interesting verdict, spread over two suites."""
    return record(
        result("germany", Verdict.UNCHANGED, case_line=30),
        result(
            "italy",
            Verdict.CHANGED,
            output="Rome is the capital of Italy.",
            snapshot_output="The capital of Italy is Rome.",
            case_line=40,
        ),
        regressed(),
        error(),
        result(
            "spain",
            Verdict.NEW,
            output="Madrid.",
            snapshot_output=None,
            snapshot_checks=None,
            checks=(check("contains: Paris", False, "expected 'Paris' in output"),),
            case_line=50,
        ),
        result(
            "peru",
            Verdict.FAILING,
            checks=(check("contains: Lima", False, "expected 'Lima' in output"),),
            snapshot_checks={"contains: Lima": False},
            known_failing=True,
            case_line=60,
        ),
        result(
            "chile",
            Verdict.FAILING,
            checks=(check("contains: Santiago", False, "expected 'Santiago'"),),
            snapshot_checks={"contains: Santiago": False},
            case_line=70,
        ),
        result("old-case", Verdict.OBSOLETE, output=None, checks=(), case_file="", case_line=None),
        result(
            "json-answer",
            Verdict.IMPROVED,
            suite="formats",
            suite_path=f"{PROJECT}/suites/formats.yaml",
            case_file=f"{PROJECT}/cases/formats.csv",
            case_line=3,
            checks=(check("is_json: true", True, "valid JSON"),),
            snapshot_checks={"is_json: true": False},
        ),
        **fields,
    )


# --- textdiff ---------------------------------------------------------------------------------


def test_unified_diff_is_labelled_snapshot_and_new() -> None:
    diff = unified_diff("a\nb\nc\n", "a\nB\nc\n")
    assert diff.splitlines()[:2] == ["--- snapshot", "+++ new"]
    assert "-b" in diff.splitlines() and "+B" in diff.splitlines()


def test_unified_diff_of_equal_texts_is_empty() -> None:
    assert unified_diff("same\n", "same\n") == ""


def test_unified_diff_is_cut_with_a_note_of_how_much_is_hidden() -> None:
    before = "\n".join(f"line {i}" for i in range(100))
    after = "\n".join(f"LINE {i}" for i in range(100))
    lines = unified_diff(before, after, max_lines=10).splitlines()
    assert len(lines) == 11
    assert lines[-1] == "… 193 more lines"  # 2 headers + 1 hunk header + 200 changed lines - 10


def test_unified_diff_notes_a_change_only_in_line_endings() -> None:
    assert "line endings" in unified_diff("Paris\n", "Paris")


def test_unified_diff_context_is_adjustable() -> None:
    before = "\n".join("abcdefghij")
    after = before.replace("e", "E")
    assert len(unified_diff(before, after, context=0).splitlines()) < len(
        unified_diff(before, after, context=3).splitlines()
    )


def test_flipped_checks_lists_changed_outcomes_and_new_failing_checks() -> None:
    item = result(
        "france",
        Verdict.REGRESSED,
        checks=(
            check("contains: Paris", False),  # passed before: flipped
            check("max_length: 200", True),  # failed before: flipped
            check("min_length: 5", True),  # same as before
            check("regex: ^The", False),  # not in the snapshot, fails: counts
            check("max_words: 50", True),  # not in the snapshot, passes: does not
        ),
        snapshot_checks={"contains: Paris": True, "max_length: 200": False, "min_length: 5": True},
    )
    assert [c.label for c in flipped_checks(item)] == ["contains: Paris", "max_length: 200", "regex: ^The"]


def test_flipped_checks_of_a_new_key_are_its_failing_checks() -> None:
    item = result(
        "spain",
        Verdict.NEW,
        snapshot_checks=None,
        snapshot_output=None,
        checks=(check("contains: Madrid", True), check("max_words: 3", False)),
    )
    assert [c.label for c in flipped_checks(item)] == ["max_words: 3"]


# --- JUnit ------------------------------------------------------------------------------------


def junit(run: RunRecord) -> ET.Element:
    return ET.fromstring(render_junit(run, cwd=PROJECT))


def find_case(root: ET.Element, name: str) -> ET.Element:
    found = [case for case in root.iter("testcase") if case.get("name") == name]
    assert len(found) == 1, name
    return found[0]


def test_junit_has_one_testsuite_per_suite_and_one_testcase_per_key() -> None:
    root = junit(mixed_record())
    assert root.tag == "testsuites"
    suites = {suite.get("name"): suite for suite in root.findall("testsuite")}
    assert set(suites) == {"capitals", "formats"}
    assert suites["capitals"].get("tests") == "8" and len(suites["capitals"].findall("testcase")) == 8
    assert suites["formats"].get("tests") == "1"
    assert root.get("tests") == "9"
    case = find_case(root, f"france@{TARGET}")
    assert case.get("classname") == "capitals"


def test_junit_counts_failures_errors_and_skipped_per_suite_and_in_total() -> None:
    root = junit(mixed_record())
    capitals = root.find("testsuite[@name='capitals']")
    assert capitals is not None
    # regressed and chile (failing) fail; peru is known failing; spain is new outside CI
    assert (capitals.get("failures"), capitals.get("errors"), capitals.get("skipped")) == ("2", "1", "1")
    assert (root.get("failures"), root.get("errors"), root.get("skipped")) == ("2", "1", "1")
    assert len(list(root.iter("failure"))) == 2


def test_junit_failure_carries_the_verdict_reasons_and_diff() -> None:
    failure = find_case(junit(mixed_record()), f"france@{TARGET}").find("failure")
    assert failure is not None
    assert failure.get("type") == "regressed"
    assert "expected 'Paris' in output" in (failure.get("message") or "")
    text = failure.text or ""
    assert "contains: Paris: expected 'Paris' in output" in text
    assert "prompt changed" in text
    assert "--- snapshot" in text and "+France's capital is Lyon." in text


def test_junit_error_verdict_is_an_error_with_the_provider_message() -> None:
    case = find_case(junit(mixed_record()), f"japan@{TARGET}")
    assert case.find("failure") is None
    element = case.find("error")
    assert element is not None and element.text == "HTTP 401: invalid api key"
    assert element.get("message") == "HTTP 401: invalid api key"


def test_junit_obsolete_key_is_skipped() -> None:
    skipped = find_case(junit(mixed_record()), f"old-case@{TARGET}").find("skipped")
    assert skipped is not None and (skipped.get("message") or "").startswith("obsolete")


def test_junit_passing_keys_have_no_outcome_element() -> None:
    root = junit(mixed_record())
    for name in ("germany", "italy", "peru", "spain", "json-answer"):
        assert list(find_case(root, f"{name}@{TARGET}")) == [], name


def test_junit_new_keys_fail_in_ci_with_their_output() -> None:
    failure = find_case(junit(mixed_record(ci=True)), f"spain@{TARGET}").find("failure")
    assert failure is not None and failure.get("type") == "new"
    assert "Madrid." in (failure.text or "")


@pytest.mark.parametrize(("strict", "fails"), [(False, False), (True, True)])
def test_junit_changed_keys_fail_only_when_strict(strict: bool, fails: bool) -> None:
    case = find_case(junit(mixed_record(strict=strict)), f"italy@{TARGET}")
    assert (case.find("failure") is not None) is fails


def test_junit_strips_characters_xml_forbids() -> None:
    bad = regressed()
    bad = replace(bad, case="fr\x01ance", output="Lyon\x00\x1b[31m red\x0b", flags=("prompt\x07 changed",))
    text = render_junit(record(bad, error("jp", "boom\x02\nline two\ttab")), cwd=PROJECT)
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f]", text)
    root = ET.fromstring(text)
    assert find_case(root, f"france@{TARGET}") is not None
    errors = list(root.iter("error"))
    assert errors[0].text == "boom\nline two\ttab"


def test_junit_escapes_markup_in_outputs() -> None:
    bad = replace(regressed(), output="</failure><script>alert(1)</script> & ]]>")
    root = ET.fromstring(render_junit(record(bad), cwd=PROJECT))
    failure = find_case(root, f"france@{TARGET}").find("failure")
    assert failure is not None and "+</failure><script>alert(1)</script> & ]]>" in (failure.text or "")


def test_junit_has_the_attributes_junit_schemas_require() -> None:
    # The Jenkins / GitLab reading of JUnit: testsuite needs name and tests; testcase needs
    # name and classname; numbers are integers and times decimal seconds.
    root = junit(mixed_record())
    integer, seconds = re.compile(r"^\d+$"), re.compile(r"^\d+\.\d+$")
    for name in ("tests", "failures", "errors", "skipped"):
        assert integer.match(root.get(name) or ""), name
    assert seconds.match(root.get("time") or "")
    for suite in root.findall("testsuite"):
        assert suite.get("name")
        for name in ("tests", "failures", "errors", "skipped"):
            assert integer.match(suite.get(name) or ""), name
        assert seconds.match(suite.get("time") or "")
        for case in suite:
            assert case.tag == "testcase"
            assert case.get("name") and case.get("classname")
            assert seconds.match(case.get("time") or "")
            assert all(child.tag in ("failure", "error", "skipped") for child in case)
    assert {child.tag for child in root} == {"testsuite"}


def test_junit_time_is_latency_in_seconds_and_zero_for_cache_hits() -> None:
    root = junit(record(result("a", Verdict.UNCHANGED), result("b", Verdict.UNCHANGED, cached=True)))
    assert find_case(root, f"a@{TARGET}").get("time") == "0.412"
    assert find_case(root, f"b@{TARGET}").get("time") == "0.000"
    assert root.get("time") == "3.250"


def test_junit_points_at_the_case_file_and_line_relative_to_the_project() -> None:
    case = find_case(junit(mixed_record()), f"json-answer@{TARGET}")
    assert (case.get("file"), case.get("line")) == ("cases/formats.csv", "3")


def test_junit_of_an_empty_run_is_valid() -> None:
    root = ET.fromstring(render_junit(record(), cwd=PROJECT))
    assert root.get("tests") == "0" and root.findall("testsuite") == []


# --- Markdown ---------------------------------------------------------------------------------


def fences(text: str) -> list[tuple[int, int]]:
    """(start, end) line numbers of each fenced code block, read as CommonMark reads them."""
    blocks, opening, start = [], "", 0
    for number, line in enumerate(text.split("\n")):
        match = re.match(r"^ {0,3}(`{3,})(.*)$", line)
        if not opening:
            if match and "`" not in match.group(2):
                opening, start = match.group(1), number
        elif match and len(match.group(1)) >= len(opening) and not match.group(2).strip():
            blocks.append((start, number))
            opening = ""
    assert not opening, "a fenced block is never closed"
    return blocks


def outside_fences(text: str) -> str:
    lines = text.split("\n")
    inside = {n for start, end in fences(text) for n in range(start, end + 1)}
    return "\n".join(line for n, line in enumerate(lines) if n not in inside)


def markup(text: str) -> str:
    """What Markdown may interpret: the text outside fenced blocks and inline code spans."""
    # a code span: a backtick run not escaped, up to the next run of the same length
    spans = re.compile(r"(?<![`\\])(`+)(?!`)(.+?)(?<!`)\1(?!`)", flags=re.DOTALL)
    return spans.sub("", outside_fences(text))


def test_markdown_title_says_failing_with_the_counts() -> None:
    title = render_markdown(mixed_record()).splitlines()[0]
    assert title.startswith("**prompttest: 1 regressed, 1 error, 2 failing, 1 new")
    assert title.endswith("— failing")


def test_markdown_title_says_passing_when_nothing_fails() -> None:
    text = render_markdown(record(result("a", Verdict.UNCHANGED), result("b", Verdict.CHANGED)))
    assert text.splitlines()[0] == "**prompttest: 1 changed** — passing"


def test_markdown_counts_table_lists_nonzero_verdicts_in_order() -> None:
    row = re.compile(r"^\| [a-z]+ \| \d+ \|$")
    rows = [line for line in render_markdown(mixed_record()).splitlines() if row.match(line)]
    assert [row.split("|")[1].strip() for row in rows] == [
        "regressed",
        "error",
        "failing",
        "new",
        "improved",
        "changed",
        "obsolete",
        "unchanged",
    ]


def test_markdown_puts_regressions_first_and_the_rest_in_details() -> None:
    text = render_markdown(mixed_record())
    headings = re.findall(r"^### (\w+)", text, flags=re.MULTILINE)
    assert headings == ["regressed", "error", "failing", "new"]
    folded = re.findall(r"<details><summary>(\w+) \(\d+\)</summary>", text)
    assert folded == ["improved", "changed", "obsolete"]
    assert text.index("### regressed") < text.index("### error") < text.index("<details>")
    assert text.count("<details>") == text.count("</details>")
    assert "germany" not in text  # unchanged keys are only counted


def test_markdown_regression_shows_reasons_flags_and_a_short_diff() -> None:
    text = render_markdown(mixed_record())
    section = text[text.index("### regressed") : text.index("### error")]
    assert f"**`capitals/france@{TARGET}`** — _prompt changed_" in section
    assert "- `contains: Paris`: expected 'Paris' in output" in section
    assert "+France's capital is Lyon." in section
    long = replace(regressed(), output="\n".join(f"line {i}" for i in range(200)))
    assert "more lines" in render_markdown(record(long))


def test_markdown_shows_changed_and_inconclusive_openly_when_strict() -> None:
    text = render_markdown(mixed_record(strict=True))
    assert "### changed" in text and "<summary>changed" not in text


def test_markdown_groups_keys_hit_by_the_same_provider_error() -> None:
    text = render_markdown(record(*(error(f"c{i}") for i in range(15))))
    assert text.count("HTTP 401: invalid api key") == 1
    assert "and 5 more" in text


def test_markdown_stays_under_the_limit_with_many_results() -> None:
    results = [replace(regressed(f"case-{i:04}"), output="x" * 3000 + f"\n{i}") for i in range(400)]
    results += [result(f"changed-{i:04}", Verdict.CHANGED, output=f"new {i}") for i in range(400)]
    text = render_markdown(record(*results))
    assert len(text) <= 60000
    assert re.search(r"… and \d+ more regressed", text)
    assert text.count("<details>") == text.count("</details>")
    fences(text)  # every block is closed


@pytest.mark.parametrize("limit", [300, 1000, 5000])
def test_markdown_respects_small_limits(limit: int) -> None:
    text = render_markdown(mixed_record(), limit=limit)
    assert len(text) <= limit
    fences(text)


def test_markdown_output_with_fences_and_html_cannot_break_out() -> None:
    evil = "Sure!\n```\n</details><script>alert(1)</script>\n````\n# Heading\n`````"
    run = record(
        result(
            "evil",
            Verdict.NEW,
            output=evil,
            snapshot_output=None,
            snapshot_checks=None,
            checks=(check("not_contains: <script>", False, "found '<script>' in `output`"),),
        ),
        replace(regressed("evil-diff"), output=evil),
        result("evil-changed", Verdict.CHANGED, output=evil),
    )
    text = render_markdown(run)
    # every output is in exactly one block: the fences opened are the fences closed
    assert len(fences(text)) == 3
    outside = markup(text)
    assert "<script>" not in outside
    assert "&lt;script&gt;" in outside  # the check's reason, escaped
    assert outside.count("</details>") == outside.count("<details>") == 1
    assert not re.search(r"^# Heading", outside, flags=re.MULTILINE)
    assert "`` not_contains: <script> ``" not in text and "`not_contains: <script>`" in text


def test_markdown_escapes_keys_reasons_and_errors() -> None:
    run = record(
        result(
            "a|b",
            Verdict.FAILING,
            snapshot_checks={"regex: [a-z]*": False},
            checks=(check("regex: [a-z]*", False, "no match for *[x](http://e)* <b>"),),
        ),
        error("c", "boom <img src=x onerror=alert(1)>"),
    )
    text = render_markdown(run)
    outside = markup(text)
    assert "<b>" not in outside and "<img" not in outside
    assert r"no match for \*\[x\](http://e)\* &lt;b&gt;" in outside
    assert "`capitals/a|b@openai/gpt-4o-mini`" in text


def test_markdown_escape_neutralises_markup_and_mentions() -> None:
    assert escape("<b>a & b</b>") == "&lt;b&gt;a &amp; b&lt;/b&gt;"
    assert escape("*a* _b_ [c](d) `e` | ~f~") == r"\*a\* \_b\_ \[c\](d) \`e\` \| \~f\~"
    assert escape("line\nbreak") == "line break"
    assert escape("ping @octocat") == "ping @\u200boctocat"
    assert escape("case@openai/gpt") == "case@openai/gpt"


def test_markdown_code_span_outgrows_backticks_inside() -> None:
    assert code_span("plain") == "`plain`"
    assert code_span("a `b` c") == "``a `b` c``"
    assert code_span("`edge`") == "`` `edge` ``"


def test_markdown_interrupted_run_says_so() -> None:
    assert "(interrupted)" in render_markdown(record(result("a", Verdict.UNCHANGED), interrupted=True))


# --- GitHub annotations -----------------------------------------------------------------------


def commands_for(run: RunRecord) -> list[str]:
    return github_annotations(run, cwd=PROJECT)


def parse(command: str) -> tuple[str, dict[str, str], str]:
    match = re.match(r"^::(\w+) (.*?)::(.*)$", command)
    assert match, command
    properties = dict(item.split("=", 1) for item in match.group(2).split(","))
    return match.group(1), properties, match.group(3)


def test_annotations_are_errors_for_keys_that_fail_the_run_most_important_first() -> None:
    commands = [parse(c) for c in commands_for(mixed_record())]
    errors = [props["title"] for level, props, _ in commands if level == "error"]
    assert errors == [
        f"prompttest regressed%3A capitals/france@{TARGET}",
        f"prompttest error%3A capitals/japan@{TARGET}",
        f"prompttest failing%3A capitals/chile@{TARGET}",
    ]


def test_annotations_point_at_the_case_line_relative_to_the_working_directory() -> None:
    _, props, _ = parse(commands_for(record(regressed()))[0])
    assert props["file"] == "suites/capitals.yaml"
    assert props["line"] == "14"


def test_annotations_keep_a_path_outside_the_working_directory_as_given() -> None:
    elsewhere = replace(regressed(), case_file="/elsewhere/suites/capitals.yaml")
    _, props, _ = parse(commands_for(record(elsewhere))[0])
    assert props["file"] == "/elsewhere/suites/capitals.yaml"


def test_annotations_use_the_real_working_directory_by_default(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    here = replace(regressed(), case_file=str(tmp_path / "suites" / "capitals.yaml"))
    _, props, _ = parse(github_annotations(record(here))[0])
    assert props["file"] == "suites/capitals.yaml"


def test_annotations_are_relative_to_github_workspace_the_repositorys_root(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """GitHub finds an annotation's file from the repository's root: a run from a subfolder
    (the action's working-directory), or on suites given by absolute path, names it from there."""
    (tmp_path / "app").mkdir()
    monkeypatch.chdir(tmp_path / "app")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    for given in ("suites/capitals.yaml", str(tmp_path / "app" / "suites" / "capitals.yaml")):
        _, props, _ = parse(github_annotations(record(replace(regressed(), case_file=given)))[0])
        assert props["file"] == "app/suites/capitals.yaml"
    outside = replace(regressed(), case_file="/elsewhere/suites/capitals.yaml")
    assert parse(github_annotations(record(outside))[0])[1]["file"] == "/elsewhere/suites/capitals.yaml"
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path / "other"))  # not above the suites
    _, props, _ = parse(github_annotations(record(replace(regressed(), case_file="suites/capitals.yaml")))[0])
    assert props["file"] == "suites/capitals.yaml"


def test_annotations_warn_for_changed_keys_unless_strict_makes_them_errors() -> None:
    levels = {parse(c)[1]["line"]: parse(c)[0] for c in commands_for(mixed_record())}
    assert levels["40"] == "warning"
    strict = {parse(c)[1]["line"]: parse(c)[0] for c in commands_for(mixed_record(strict=True))}
    assert strict["40"] == "error"


def test_annotations_skip_passing_known_failing_new_outside_ci_and_obsolete_keys() -> None:
    lines = {parse(c)[1].get("line") for c in commands_for(mixed_record())}
    assert lines == {"14", "20", "70", "40"}
    assert "50" in {parse(c)[1].get("line") for c in commands_for(mixed_record(ci=True))}


def test_annotation_message_is_one_escaped_line_with_reasons_and_diff() -> None:
    command = commands_for(record(regressed()))[0]
    assert "\n" not in command and "\r" not in command
    _, _, message = parse(command)
    lines = message.split("%0A")
    assert "contains: Paris: expected 'Paris' in output" in lines
    assert "+France's capital is Lyon." in lines


def test_annotation_escaping_follows_the_workflow_command_rules() -> None:
    assert escape_data("100% done\r\nnext: a, b") == "100%25 done%0D%0Anext: a, b"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    tricky = replace(regressed(), case="x,line=1::pwned", case_file=f"{PROJECT}/suites/a,b:c.yaml")
    command = commands_for(record(tricky))[0]
    level, props, message = parse(command)
    assert level == "error" and props["file"] == "suites/a%2Cb%3Ac.yaml" and props["line"] == "14"
    assert set(props) == {"file", "line", "title"}
    assert "::" not in command[2:].split("::", 1)[0]


def test_annotation_without_a_known_line_has_only_a_file() -> None:
    _, props, _ = parse(commands_for(record(replace(regressed(), case_line=None)))[0])
    assert "line" not in props and props["file"] == "suites/capitals.yaml"


# --- counts in the summaries -----------------------------------------------------------------


def test_summaries_count_one_key_and_one_call_in_the_singular() -> None:
    from prompttest.report.text import render_summary

    one = record(result("france", Verdict.UNCHANGED))
    line = render_summary(one, exit_code=0).splitlines()[0]
    assert "(1 key in 3.2s, 1 call, 0 cached" in line, line
    assert "1 key · 1 call · 0 cached" in render_markdown(one)
    two = record(result("france", Verdict.UNCHANGED), result("japan", Verdict.UNCHANGED))
    assert "(2 keys in 3.2s, 2 calls, 0 cached" in render_summary(two, exit_code=0)


# --- Markdown: rates of repeated keys --------------------------------------------------------


def sampled_check(passed: bool, count: int, before: tuple[int, int], p: float) -> CheckResult:
    return CheckResult(
        label="contains: Paris",
        passed=passed,
        reason=f"{count}/10 samples passed (pass: rate 0.7)",
        name="contains",
        passed_count=count,
        samples=10,
        before=before,
        p_value=p,
    )


def test_markdown_shows_rates_interval_and_p_of_an_inconclusive_key() -> None:
    checks = (sampled_check(True, 8, (10, 10), 0.237),)
    inconclusive = result("france", Verdict.INCONCLUSIVE, checks=checks, snapshot_output=None)
    for strict in (False, True):
        text = render_markdown(record(inconclusive, strict=strict))
        section = text[text.index("inconclusive (1)") :]
        assert "- `contains: Paris`: 8/10 \\[0.49–0.94\\] was 10/10, p=0.237" in section, section


def test_markdown_shows_rates_of_a_regressed_repeated_key() -> None:
    checks = (sampled_check(False, 1, (10, 10), 0.0005),)
    dropped = result("france", Verdict.REGRESSED, checks=checks, snapshot_output=None)
    text = render_markdown(record(dropped))
    assert "- `contains: Paris`: 1/10 \\[0.02–0.40\\] was 10/10, p=0.0005" in text, text

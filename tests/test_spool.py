"""The results spool: what a run stores on disk as keys are decided, read back as it was."""

from __future__ import annotations

import tracemalloc
from dataclasses import replace

import pytest
from conftest import FUZZ
from hypothesis import given
from hypothesis import strategies as st

from prompttest.model import CheckResult, Result, Verdict
from prompttest.model.selection import FILTERS, matching, sorted_results
from prompttest.records.runs import RunRecord
from prompttest.records.spool import ResultSpool, decode, encode
from prompttest.report.html import render_html
from prompttest.report.junit import render_junit
from prompttest.report.markdown import render_markdown
from prompttest.report.text import render_errors, render_summary, render_table
from prompttest.session import exit_code, key_exit_code


def result(case: str, verdict: Verdict = Verdict.NEW, **fields: object) -> Result:
    values: dict[str, object] = {
        "suite": "capitals",
        "case": case,
        "target": "openai/gpt-4o-mini",
        "model": "openai/gpt-4o-mini",
        "verdict": verdict,
        "output": f"The answer for {case}.",
        "checks": (CheckResult(label="contains: answer", passed=True, reason="found", name="contains"),),
    }
    return Result(**(values | fields))  # type: ignore[arg-type]


texts = st.text(max_size=40)
optional_floats = st.none() | st.floats(allow_nan=False, allow_infinity=False)
checks = st.builds(
    CheckResult,
    label=texts,
    passed=st.booleans(),
    reason=texts,
    name=texts,
    passed_count=st.none() | st.integers(0, 50),
    samples=st.none() | st.integers(0, 50),
    before=st.none() | st.tuples(st.integers(0, 9), st.integers(0, 9)),
    p_value=optional_floats,
    error=st.none() | texts,
    judge=st.none() | st.dictionaries(texts, st.none() | texts | st.lists(texts, max_size=3), max_size=3),
    stale=st.booleans(),
)
results = st.builds(
    Result,
    suite=texts,
    case=texts,
    target=texts,
    model=texts,
    verdict=st.sampled_from(Verdict),
    output=st.none() | texts,
    checks=st.lists(checks, max_size=3).map(tuple),
    error=st.none() | texts,
    flags=st.lists(texts, max_size=2).map(tuple),
    latency_ms=optional_floats,
    prompt_tokens=st.none() | st.integers(0, 10**6),
    cost_usd=optional_floats,
    judge_cost_usd=optional_floats,
    cached=st.booleans(),
    snapshot_output=st.none() | texts,
    snapshot_checks=st.none() | st.dictionaries(texts, st.booleans(), max_size=3),
    outputs=st.lists(texts, max_size=3).map(tuple),
    similarity=optional_floats,
    case_line=st.none() | st.integers(1, 10**6),
)


@FUZZ
@given(results)
def test_a_result_reads_back_equal_to_what_was_stored(stored: Result) -> None:
    assert decode(encode(stored)) == stored


def test_a_judge_marshal_cannot_write_still_reads_back() -> None:
    odd = CheckResult(label="judge", passed=True, reason="ok", judge={"when": object})
    stored = result("odd", checks=(odd,))
    assert decode(encode(stored)) == stored


def test_results_come_back_in_position_order_whatever_order_they_were_stored_in() -> None:
    spool = ResultSpool()
    for position in (3, 0, 2, 1):
        spool.add(position, result(f"case-{position}"))
    assert [r.case for r in spool] == ["case-0", "case-1", "case-2", "case-3"]
    assert len(spool) == 4
    assert spool[0].case == "case-0" and spool[-1].case == "case-3"
    assert [r.case for r in spool[1:3]] == ["case-1", "case-2"]
    with pytest.raises(IndexError):
        spool[4]
    assert spool == tuple(spool) and spool != tuple(spool)[:3]


def test_sorted_reads_in_the_order_of_the_key_ties_in_position_order() -> None:
    spool = ResultSpool()
    verdicts = [Verdict.UNCHANGED, Verdict.REGRESSED, Verdict.NEW, Verdict.REGRESSED]
    for position, verdict in enumerate(verdicts):
        spool.add(position, result(f"c{position}", verdict))
    expected = sorted(tuple(spool), key=lambda r: r.verdict.value)
    assert list(spool.sorted(lambda r: (r.verdict.value,))) == expected
    # The reports' own order is the same for a spool and for a tuple of the same results.
    assert list(sorted_results(spool)) == list(sorted_results(tuple(spool)))


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.integers(-5, 5) | st.floats(-5, 5), st.text(st.characters(exclude_categories=()), max_size=4)
        ),
        max_size=30,
    )
)
def test_sqlite_sorts_keys_as_python_does(keys: list[tuple[float, str]]) -> None:
    """Numbers of both kinds and any text (lone surrogates included) order as in Python."""
    spool = ResultSpool()
    for position, key in enumerate(keys):
        spool.add(position, result(f"c{position}", similarity=key[0], change=key[1]))
    by_key = lambda r: (r.similarity, r.change)  # noqa: E731
    assert [r.case for r in spool.sorted(by_key)] == [r.case for r in sorted(tuple(spool), key=by_key)]


def test_a_key_sqlite_cannot_store_is_sorted_in_memory_the_same_way() -> None:
    spool = ResultSpool()
    for position, flags in enumerate([("b",), ("a", "z"), ("a",)]):
        spool.add(position, result(f"c{position}", flags=flags))
    assert [r.flags for r in spool.sorted(lambda r: (r.flags,))] == [("a",), ("a", "z"), ("b",)]


def test_a_spool_holds_its_results_on_disk_not_in_memory() -> None:
    """10,000 results of ~2 KB each: the spool's memory must not grow with them."""
    padding = "x" * 2000
    tracemalloc.start()
    try:
        spool = ResultSpool()
        before, _ = tracemalloc.get_traced_memory()
        for position in range(10_000):
            spool.add(position, result(f"case-{position:05d}", output=padding + str(position)))
        after, _ = tracemalloc.get_traced_memory()
        seen = sum(1 for r in spool if r.output and r.output.startswith(padding))
    finally:
        tracemalloc.stop()
    assert seen == 10_000
    assert after - before < 2_000_000, f"{(after - before) / 1e6:.1f} MB held for 20 MB of results"


def test_a_record_of_a_spool_sums_and_writes_as_one_of_a_tuple() -> None:
    spool = ResultSpool()
    stored = [
        result("a", Verdict.NEW, cost_usd=0.5, prompt_tokens=3),
        result("b", Verdict.REGRESSED, cost_usd=None),
        result("c", Verdict.ERROR, output=None, error="HTTP 500"),
    ]
    for position, item in enumerate(stored):
        spool.add(position, item)
    spooled = RunRecord(id="r", started_at="t", wall_s=1.0, results=spool)
    plain = RunRecord(id="r", started_at="t", wall_s=1.0, results=tuple(stored))
    assert spooled.summary() == plain.summary()
    assert spooled.to_json() == plain.to_json()
    assert spooled == plain


def test_the_terminal_table_shows_the_first_rows_and_counts_the_rest() -> None:
    new = [result(f"case-{i:02d}") for i in range(12)]
    worst = replace(new[7], verdict=Verdict.REGRESSED)
    record = RunRecord(id="r", started_at="t", wall_s=0.0, results=(*new[:7], worst, *new[8:]))
    table = render_table(record, limit=5)
    lines = table.splitlines()
    assert len(lines) == 2 + 5 + 1  # header, rule, five rows, the count
    assert lines[2].startswith("regressed") and "case-07" in lines[2]  # the worst comes first
    assert lines[-1].startswith("... and 7 more key(s) to look at")
    assert "more key(s)" not in render_table(record, limit=None)
    assert len(render_table(record, limit=None).splitlines()) == 2 + 12


@st.composite
def valid_checks(draw: st.DrawFn) -> CheckResult:
    """Checks as runs make them: pass counts within their samples."""
    check = draw(checks)
    n = draw(st.none() | st.integers(1, 20))
    if n is None:
        return replace(check, passed_count=None, samples=None, before=None, p_value=None)
    before = draw(st.none() | st.integers(1, 20).flatmap(lambda m: st.tuples(st.integers(0, m), st.just(m))))
    return replace(check, passed_count=draw(st.integers(0, n)), samples=n, before=before)


valid_results = results.flatmap(
    lambda r: st.lists(valid_checks(), max_size=3).map(lambda cs: replace(r, checks=tuple(cs)))
)


@FUZZ
@given(st.lists(valid_results, max_size=12), st.booleans(), st.booleans())
def test_a_spooled_run_reports_and_gates_as_the_same_run_held_in_memory(
    stored: list[Result], ci: bool, strict: bool
) -> None:
    """The filter columns must keep exactly what their predicates keep: the gate, the table,
    the errors and the notes of a spool are those of a tuple of the same results."""
    spool = ResultSpool()
    for position, item in enumerate(stored):
        spool.add(position, item)
    spooled = RunRecord(id="r", started_at="t", wall_s=1.0, results=spool, ci=ci)
    held = RunRecord(id="r", started_at="t", wall_s=1.0, results=tuple(stored), ci=ci)
    for name in FILTERS:
        assert list(matching(spool, name)) == list(matching(tuple(stored), name))
    # What the filters leave out is what the gate and the notes may skip.
    notable = list(matching(spool, "notable"))
    for item in stored:
        if item not in notable:
            assert item.verdict is Verdict.UNCHANGED
            assert key_exit_code(item, ci=ci, strict=strict) == 0
    assert [r for r in stored if r.error] == list(matching(spool, "erred"))
    assert [r for r in stored if any(c.samples and c.before for c in r.checks)] == list(
        matching(spool, "sampled")
    )
    reference = max((key_exit_code(r, ci=ci, strict=strict) for r in stored), default=0)
    assert exit_code(spooled, strict=strict) == exit_code(held, strict=strict) == reference
    code = exit_code(held, strict=strict)
    for render in (render_table, render_errors, render_junit, render_html, render_markdown):
        assert render(spooled) == render(held)  # the streamed reports too, in SQLite's order
    assert render_summary(spooled, exit_code=code) == render_summary(held, exit_code=code)

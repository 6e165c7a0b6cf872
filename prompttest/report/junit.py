"""The `--junit` report: JUnit XML as Jenkins, GitLab and GitHub test reporters read it.

One `<testsuite>` per suite, one `<testcase classname=SUITE name="case@target">` per result
key. A key that fails the run is a `<failure type=VERDICT>` carrying its reasons and output
diff; a provider error is an `<error>`; an obsolete snapshot entry is `<skipped>`. Keys that
do not fail the run (improved, changed without `--strict`, known-failing…) are passing test
cases. A test case's `time` is its provider latency, 0 for a cache hit (this run spent no
time on it) and for keys without an output; the root's `time` is the run's wall time.
A suite whose repeated keys were pooled also has a `<testcase name="pass rate@TARGET">`,
first in its `<testsuite>`: a `<failure type="suite regressed">` when its pass rate dropped.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ..model import Result, Verdict
from ..model.selection import in_order
from ..records.runs import RunRecord
from ..verdicts.suites import SuiteVerdict
from .annotations import display_path
from .suitelines import headline, sentence
from .textdiff import fails_run, output_diff, reason_lines

# Characters XML 1.0 cannot carry at all, not even as character references.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
MESSAGE_WIDTH = 200


def render_junit(record: RunRecord, *, cwd: str | None = None) -> str:
    """The run as a JUnit XML document (`cwd`: what `file` attributes are relative to)."""
    return "".join(junit_chunks(record, cwd=cwd))


def junit_chunks(record: RunRecord, *, cwd: str | None = None) -> Iterator[str]:
    """The text of `render_junit` in pieces, one test case at a time (as `ET.indent` lays it
    out): a 10,000-key report is never held whole, as an element tree or as text.

    Each `<testsuite>` opens with its counts, so the results are gone through twice: once
    to count, once to write.
    """
    base = cwd if cwd is not None else os.getcwd()
    suites = {
        suite: _testsuite(record, suite, counts, base=base) for suite, counts in _counts(record).items()
    }
    root = ET.Element("testsuites", name="prompttest")
    for name in ("tests", *_OUTCOMES.values()):
        root.set(name, str(sum(int(element.get(name, "0")) for element in suites.values())))
    root.set("time", _seconds(record.wall_s * 1000))
    yield '<?xml version="1.0" encoding="UTF-8"?>\n'
    if not suites:
        yield ET.tostring(root, encoding="unicode") + "\n"
        return
    yield _opening(root) + "\n"
    current = None
    for result in _ordered(record):
        if result.suite != current:
            if current is not None:
                yield "  </testsuite>\n"
            current = result.suite
            yield f"  {_opening(suites[current])}\n"
            for pooled in _pooled_of(record, current):
                case = _pooled_case(record, pooled)
                ET.indent(case, level=2)
                yield f"    {ET.tostring(case, encoding='unicode')}\n"
        case = _testcase(record, result, base=base)
        ET.indent(case, level=2)
        yield f"    {ET.tostring(case, encoding='unicode')}\n"
    yield "  </testsuite>\n</testsuites>\n"


# A test case's child element -> the count it adds to in its <testsuite>.
_OUTCOMES = {"failure": "failures", "error": "errors", "skipped": "skipped"}


@dataclass
class _SuiteCounts:
    tests: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    time_ms: float = 0.0  # summed in the document's order, as the cases are written
    suite_path: str = ""


def _counts(record: RunRecord) -> dict[str, _SuiteCounts]:
    counts: dict[str, _SuiteCounts] = {}
    for result in _ordered(record):
        suite = counts.setdefault(result.suite, _SuiteCounts(suite_path=result.suite_path))
        suite.tests += 1
        suite.time_ms += _latency(result)
        outcome = _outcome(record, result)
        if outcome:
            suite.outcomes[_OUTCOMES[outcome]] += 1
    for pooled in record.suites:
        if pooled.suite in counts:
            counts[pooled.suite].tests += 1
            counts[pooled.suite].outcomes["failures"] += _pooled_fails(record, pooled)
    return counts


def _pooled_of(record: RunRecord, suite: str) -> list[SuiteVerdict]:
    return sorted((s for s in record.suites if s.suite == suite), key=lambda s: s.target)


def _pooled_fails(record: RunRecord, pooled: SuiteVerdict) -> bool:
    return pooled.fails and not record.update


def _pooled_case(record: RunRecord, pooled: SuiteVerdict) -> ET.Element:
    """The suite's pass rate on one target, as a test case of its own."""
    name = xml_text(f"pass rate@{pooled.target}")
    case = ET.Element("testcase", classname=xml_text(pooled.suite), name=name)
    case.set("time", "0.000")
    if _pooled_fails(record, pooled):
        text = f"{headline(pooled)}: {sentence(pooled)}"
        ET.SubElement(case, "failure", message=_one_line(text), type="suite regressed").text = xml_text(text)
    return case


def _ordered(record: RunRecord) -> Iterable[Result]:
    return in_order(record.results, key=lambda r: (r.suite, r.case, r.target))


def _opening(element: ET.Element) -> str:
    """The start tag of an element, attributes as ET writes them."""
    text = ET.tostring(element, encoding="unicode")  # `<tag a="1" />`: no children yet
    return text.removesuffix(" />") + ">"


def xml_text(text: str) -> str:
    """`text` without the characters XML 1.0 forbids (control characters but tab, LF, CR)."""
    return _NOT_XML.sub("", text)


def _testsuite(record: RunRecord, suite: str, counts: _SuiteCounts, *, base: str) -> ET.Element:
    element = ET.Element("testsuite", name=xml_text(suite))
    element.set("tests", str(counts.tests))
    for name in _OUTCOMES.values():
        element.set(name, str(counts.outcomes[name]))
    element.set("time", _seconds(counts.time_ms))
    if record.started_at:
        element.set("timestamp", xml_text(record.started_at))
    path = display_path(counts.suite_path, cwd=base)
    if path:
        element.set("file", xml_text(path))
    return element


def _outcome(record: RunRecord, result: Result) -> str | None:
    """The test case's child element: an error, a skip, a failure, or none (it passes)."""
    if result.verdict is Verdict.ERROR:
        return "error"
    if result.verdict is Verdict.OBSOLETE:
        return "skipped"
    return "failure" if fails_run(record, result) else None


def _testcase(record: RunRecord, result: Result, *, base: str) -> ET.Element:
    case = ET.Element(
        "testcase",
        classname=xml_text(result.suite),
        name=xml_text(f"{result.case}@{result.target}"),
        time=_seconds(_latency(result)),
    )
    # `file`/`line` let GitHub reporters (e.g. action-junit-report) annotate the case's line.
    path = display_path(result.case_file or result.suite_path, cwd=base)
    if path:
        case.set("file", xml_text(path))
        if result.case_line is not None:
            case.set("line", str(result.case_line))
    outcome = _outcome(record, result)
    if outcome == "error":
        error = result.error or "the provider call failed"
        ET.SubElement(case, "error", message=_one_line(error), type="error").text = xml_text(error)
    elif outcome == "skipped":
        ET.SubElement(case, "skipped", message="obsolete: in the snapshot, no longer in the suite")
    elif outcome == "failure":
        failure = ET.SubElement(
            case, "failure", message=_one_line(_message(record, result)), type=result.verdict.value
        )
        failure.text = xml_text(_details(result))
    return case


def _message(record: RunRecord, result: Result) -> str:
    reasons = reason_lines(result)
    verdict = result.verdict
    if verdict is Verdict.NEW:
        lead = "new: no committed snapshot" + (" (--ci)" if record.ci else "")
    elif verdict in (Verdict.CHANGED, Verdict.INCONCLUSIVE):
        lead = f"{verdict.value} (--strict)"
    else:
        lead = verdict.value
    return f"{lead}: {reasons[0]}" if reasons else lead


def _details(result: Result) -> str:
    parts = ["\n".join(reason_lines(result))]
    if result.flags:
        parts.append(f"flags: {', '.join(result.flags)}")
    diff = output_diff(result)
    if diff:
        parts.append(diff)
    elif result.answer is not None and result.snapshot_output is None:
        parts.append(f"output:\n{result.answer}")
    return "\n\n".join(part for part in parts if part)


def _latency(result: Result) -> float:
    if result.cached or result.output is None or result.latency_ms is None:
        return 0.0
    return result.latency_ms


def _seconds(milliseconds: float) -> str:
    return f"{milliseconds / 1000:.3f}"


def _one_line(text: str) -> str:
    flat = " ".join(xml_text(text).split())
    return flat if len(flat) <= MESSAGE_WIDTH else flat[: MESSAGE_WIDTH - 1] + "…"

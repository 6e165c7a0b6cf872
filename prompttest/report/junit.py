"""The `--junit` report: JUnit XML as Jenkins, GitLab and GitHub test reporters read it.

One `<testsuite>` per suite, one `<testcase classname=SUITE name="case@target">` per result
key. A key that fails the run is a `<failure type=VERDICT>` carrying its reasons and output
diff; a provider error is an `<error>`; an obsolete snapshot entry is `<skipped>`. Keys that
do not fail the run (improved, changed without `--strict`, known-failing…) are passing test
cases. A test case's `time` is its provider latency, 0 for a cache hit (this run spent no
time on it) and for keys without an output; the root's `time` is the run's wall time.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from itertools import groupby

from ..model import Result, Verdict
from ..runs import RunRecord
from .annotations import display_path
from .textdiff import fails_run, output_diff, reason_lines

# Characters XML 1.0 cannot carry at all, not even as character references.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
MESSAGE_WIDTH = 200


def render_junit(record: RunRecord, *, cwd: str | None = None) -> str:
    """The run as a JUnit XML document (`cwd`: what `file` attributes are relative to)."""
    base = cwd if cwd is not None else os.getcwd()
    root = ET.Element("testsuites", name="prompttest")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    ordered = sorted(record.results, key=lambda r: (r.suite, r.case, r.target))
    for suite, results in groupby(ordered, key=lambda r: r.suite):
        element = _testsuite(record, suite, list(results), base=base)
        root.append(element)
        for name in totals:
            totals[name] += int(element.get(name, "0"))
    for name, value in totals.items():
        root.set(name, str(value))
    root.set("time", _seconds(record.wall_s * 1000))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def xml_text(text: str) -> str:
    """`text` without the characters XML 1.0 forbids (control characters but tab, LF, CR)."""
    return _NOT_XML.sub("", text)


def _testsuite(record: RunRecord, suite: str, results: list[Result], *, base: str) -> ET.Element:
    element = ET.Element("testsuite", name=xml_text(suite))
    counts = {"failures": 0, "errors": 0, "skipped": 0}
    for result in results:
        case = _testcase(record, result, base=base)
        element.append(case)
        for child in case:
            counts[{"failure": "failures", "error": "errors", "skipped": "skipped"}[child.tag]] += 1
    element.set("tests", str(len(results)))
    for name, value in counts.items():
        element.set(name, str(value))
    element.set("time", _seconds(sum(_latency(r) for r in results)))
    if record.started_at:
        element.set("timestamp", xml_text(record.started_at))
    path = display_path(results[0].suite_path, cwd=base)
    if path:
        element.set("file", xml_text(path))
    return element


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
    if result.verdict is Verdict.ERROR:
        error = result.error or "the provider call failed"
        ET.SubElement(case, "error", message=_one_line(error), type="error").text = xml_text(error)
    elif result.verdict is Verdict.OBSOLETE:
        ET.SubElement(case, "skipped", message="obsolete: in the snapshot, no longer in the suite")
    elif fails_run(record, result):
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
    elif result.output is not None and result.snapshot_output is None:
        parts.append(f"output:\n{result.output}")
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

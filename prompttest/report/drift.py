"""The text of `prompttest history --check`: what moved first, then what was tested and stayed."""

from __future__ import annotations

from ..records.drift import DriftReport
from ..records.drift_measures import Finding, Skipped

KIND_NAMES = {"pass_rate": "pass rate", "latency": "latency", "cost": "cost", "swap": "model swap"}


def render_drift(report: DriftReport) -> str:
    """Findings with their evidence, quiet tests one line each, skipped ones with why, a summary."""
    latest = report.latest
    lines = [
        f"run {latest.id} ({latest.started_at}) against the {len(report.baseline)} run(s) before it "
        f"(--window {report.window})"
    ]
    for finding in report.findings:
        lines += ["", _headline("DRIFT", finding), *_evidence(finding, report)]
    quiet = [f for f in report.checked if not f.drifted]
    if quiet or report.skipped:
        lines.append("")
    lines += [_headline("ok", finding) for finding in quiet]
    lines += [_skipped(skip) for skip in report.skipped]
    lines += ["", _summary(report)]
    return "\n".join(lines)


def _headline(label: str, finding: Finding) -> str:
    return f"{label:<6} {KIND_NAMES[finding.kind]:<11} {finding.suite} @ {finding.target}: {finding.what}"


def _evidence(finding: Finding, report: DriftReport) -> list[str]:
    since = finding.since
    lines = [f"       since run {since.id} ({since.started_at}), over {finding.baseline_runs} earlier run(s)"]
    if finding.p_value is None:
        lines.append(f"       {finding.test}: {finding.threshold}")
        return lines
    adjusted = finding.adjusted_p if finding.adjusted_p is not None else finding.p_value
    lines.append(
        f"       {finding.test}: p = {finding.p_value:.2g}, {adjusted:.2g} after Bonferroni over "
        f"{report.tests} test(s) (alpha {report.alpha:g}); moved beyond the threshold: {finding.threshold}"
    )
    return lines


def _skipped(skip: Skipped) -> str:
    return f"{'skip':<6} {KIND_NAMES[skip.kind]:<11} {skip.suite} @ {skip.target}: {skip.reason}"


def _summary(report: DriftReport) -> str:
    groups = len({(f.suite, f.target) for f in report.checked})
    if not report.drifted:
        return (
            f"nothing moved: {len(report.checked)} measure(s) over {groups} suite/target pair(s), "
            f"{report.tests} of them tested at alpha {report.alpha:g} (Bonferroni)"
        )
    moved = ", ".join(f"{KIND_NAMES[f.kind]} of {f.suite}@{f.target}" for f in report.findings)
    return (
        f"{len(report.findings)} finding(s): {moved}. "
        "See each key run by run: `prompttest history --key PATTERN`"
    )

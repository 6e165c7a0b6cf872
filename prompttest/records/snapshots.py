"""Snapshot entries, and reading `snapshots/<suite>.yaml` back (`snapshot_writer` writes it).

One file per suite; entries keyed `case@target`, sorted by case then target; no volatile
fields (latency, cost, timestamps). A broken or conflicted file is refused with its line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import SnapshotError
from ..io.yamlsource import load_yaml, stream_yaml_file
from ..model import Result, Said, ToolCall, tool_calls_from
from ..model.outputs import answer_text, transcript_from, transcript_text
from ..model.scoretests import ScoreSummary
from ..verdicts.pairwise import COMPARE_LABEL
from ..verdicts.scores import score_summary
from ..verdicts.table import MAX_DISTINCT_OUTPUTS, Baseline, output_distribution

PASS, FAIL = "pass", "fail"


@dataclass(frozen=True, slots=True)
class Entry:
    """One snapshot entry: the accepted result of `case@target`."""

    case: str
    target: str
    model: str
    request: str
    output: str
    checks: Mapping[str, bool]
    known_failing: bool = False
    samples: int = 1
    # With samples > 1: distinct outputs with their counts, and each check's passes.
    distribution: tuple[tuple[str, int], ...] = ()
    counts: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    passed_samples: int | None = None  # samples on which every check passed (its suite's pooled test)
    # Scored checks (a judge with a threshold, `similar`): the score, or its mean and spread.
    scores: Mapping[str, ScoreSummary] = field(default_factory=dict)
    # Judged checks: what graded each (model, params, rubric hash), by check label.
    judges: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # What the answer held besides its text (a sampled entry counts them in its outputs).
    tool_calls: tuple[ToolCall, ...] = ()
    refusal: str | None = None
    # A conversation: every assistant message, turn by turn (`output` is the last one's text).
    transcript: tuple[Said, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.case}@{self.target}"

    def baseline(self) -> Baseline:
        return Baseline(
            output=transcript_text(self.transcript)
            if self.transcript
            else answer_text(self.output, self.tool_calls, self.refusal),
            checks=dict(self.checks),
            model=self.model,
            request=self.request,
            known_failing=self.known_failing,
            counts=dict(self.counts),
            passed_samples=self.passed_samples,
            scores=dict(self.scores),
            distribution=self.distribution,
            judges=dict(self.judges),
        )

    def to_yaml_data(self) -> dict[str, Any]:
        data = self._result_yaml()
        if self.scores:
            data["scores"] = {label: _score_yaml(score) for label, score in self.scores.items()}
        if self.judges:
            data["judges"] = {label: _sorted(judge) for label, judge in sorted(self.judges.items())}
        return data

    def _result_yaml(self) -> dict[str, Any]:
        data: dict[str, Any] = {"model": self.model, "request": self.request}
        if self.known_failing:
            data["known_failing"] = True
        if self.samples == 1 and self.transcript:
            data["turns"] = [said.to_data() for said in self.transcript]
            data["checks"] = {label: PASS if ok else FAIL for label, ok in self.checks.items()}
            return data
        if self.samples == 1:
            data["output"] = self.output
            if self.refusal is not None:
                data["refusal"] = self.refusal
            if self.tool_calls:
                data["tool_calls"] = [call.to_data() for call in self.tool_calls]
            data["checks"] = {label: PASS if ok else FAIL for label, ok in self.checks.items()}
            return data
        data["samples"] = self.samples
        shown = self.distribution[:MAX_DISTINCT_OUTPUTS]
        data["outputs"] = [{"count": count, "output": text} for text, count in shown]
        hidden = self.samples - sum(count for _, count in shown)
        if hidden:
            data["other_outputs"] = hidden
        data["checks"] = {label: f"{k}/{n}" for label, (k, n) in self.counts.items()}
        if self.passed_samples is not None and len(self.counts) > 1:  # one check: its count says it
            data["all_checks"] = f"{self.passed_samples}/{self.samples}"
        return data


def _score_yaml(score: ScoreSummary) -> float | dict[str, float]:
    if score.n == 1:
        return round(score.mean, 4)
    return {"mean": round(score.mean, 4), "sd": round(score.sd, 4)}


def entry_from(result: Result, *, known_failing: bool = False) -> Entry:
    """The snapshot entry that accepting `result` writes."""
    assert result.output is not None
    entry = Entry(
        case=result.case,
        target=result.target,
        model=result.model,
        request=result.request,
        output=result.output,
        checks={check.label: check.passed for check in result.checks},
        known_failing=known_failing,
        judges={check.label: dict(check.judge) for check in result.checks if check.judge is not None}
        | ({COMPARE_LABEL: dict(result.compare_judge)} if result.compare_judge is not None else {}),
        tool_calls=result.tool_calls,
        refusal=result.refusal,
        transcript=result.transcript,
        scores={
            check.label: summary for check in result.checks if (summary := score_summary(check)) is not None
        },
    )
    if len(result.outputs) <= 1:
        return entry
    counts = {c.label: (c.passed_count or 0, c.samples or len(result.outputs)) for c in result.checks}
    return replace(
        entry,
        samples=len(result.outputs),
        distribution=output_distribution(result.outputs),
        counts=counts,
        passed_samples=result.all_passed,
        # A sample set is judged by its counts; `checks` only says "every sample passed".
        checks={label: k == n for label, (k, n) in counts.items()},
    )


# Takes each entry of a snapshot being read, with the line it starts on.
AddEntry = Callable[[Entry, int | None], None]


def snapshot_path(snapshots_dir: Path, suite: str) -> Path:
    return snapshots_dir / f"{suite}.yaml"


def read_snapshot(path: Path) -> dict[str, Entry]:
    """The entries of one snapshot file, by `case@target`; {} when there is none."""
    entries: dict[str, Entry] = {}
    scan_snapshot(path, refusing_duplicates(lambda entry, _: entries.__setitem__(entry.name, entry), path))
    return entries


def refusing_duplicates(add: AddEntry, path: Path) -> AddEntry:
    """`add`, but a second entry of a name is an error that gives both lines (it remembers
    each name's line: a few dozen bytes an entry)."""
    lines: dict[str, int | None] = {}

    def checked(entry: Entry, line: int | None) -> None:
        if entry.name in lines:
            raise duplicate_entry(entry.name, first=lines[entry.name], file=str(path), line=line)
        lines[entry.name] = line
        add(entry, line)

    return checked


def scan_snapshot(path: Path, add: AddEntry) -> None:
    """Hand each entry of one snapshot file to `add` (with its line), in file order, as it is
    read: the file is read as a stream, so a snapshot of 10,000 entries is never held whole.
    `add` refuses duplicate names (it is the one that remembers them: see
    `refusing_duplicates`). No file: no entries."""
    if not path.exists():
        return
    file = str(path)
    _refuse_merge_conflict_in(path)

    def entry(name: str, raw: Any, line: int) -> None:
        add(_entry(str(name), raw, file=file, line=line, hint=_BROKEN_HINT), line)

    data, _ = stream_yaml_file(path, error=SnapshotError, items_at=("results",), sink=entry)
    _check_top(data, file=file)


def duplicate_entry(name: str, *, first: int | None, file: str, line: int | None) -> SnapshotError:
    """The error for a second entry of the same name (as for any duplicate YAML key)."""
    return SnapshotError(f"duplicate key '{name}' (first on line {first})", file=file, line=line)


_BROKEN_HINT = "restore it with `git checkout -- FILE` or delete it and re-run with -u"


def _check_top(data: Any, *, file: str) -> None:
    if data is not None and (not isinstance(data, dict) or not isinstance(data.get("results", {}), dict)):
        raise SnapshotError(
            "not a prompttest snapshot (expected a mapping with `results`)",
            file=file,
            line=1,
            hint=_BROKEN_HINT,
        )


def parse_snapshot(text: str, *, file: str) -> dict[str, Entry]:
    """The entries of a snapshot file's text (from `git show`)."""
    _refuse_merge_conflict(text.splitlines(keepends=True), file=file)
    data, lines = load_yaml(text, file=file, error=SnapshotError, line_depth=2)  # entries' lines only
    if data is None:
        return {}
    _check_top(data, file=file)
    entries: dict[str, Entry] = {}
    for name, raw in (data.get("results") or {}).items():
        line = lines.get(("results", name))
        entries[str(name)] = _entry(str(name), raw, file=file, line=line, hint=_BROKEN_HINT)
    return entries


def _refuse_merge_conflict_in(path: Path) -> None:
    try:
        with path.open(encoding="utf-8", errors="replace") as stream:
            _refuse_merge_conflict(stream, file=str(path))
    except OSError as exc:
        raise SnapshotError(f"cannot read snapshot: {exc}", file=str(path)) from None


def _refuse_merge_conflict(lines: Iterable[str], *, file: str) -> None:
    """Git conflict markers are the likeliest corruption of a committed snapshot."""
    for number, line in enumerate(lines, start=1):
        if line.startswith(("<<<<<<< ", "=======\n", ">>>>>>> ")):
            raise SnapshotError(
                "unresolved git merge conflict in a snapshot",
                file=file,
                line=number,
                hint="resolve it (keep either side), or take one side and re-run with -u",
            )


def _entry(name: str, raw: Any, *, file: str, line: int | None, hint: str) -> Entry:
    def broken(what: str) -> SnapshotError:
        return SnapshotError(f"snapshot entry '{name}': {what}", file=file, line=line, hint=hint)

    case, sep, target = name.partition("@")
    if not sep or not case or not target:
        raise broken("the name must be `case@target`")
    if not isinstance(raw, dict):
        raise broken("must be a mapping")
    if "samples" in raw:
        return _sampled_entry(case, target, raw, broken)
    transcript = _transcript(raw, broken)
    output = transcript[-1].text if transcript else raw.get("output")
    checks = raw.get("checks") or {}
    if not isinstance(output, str):
        raise broken("`output` must be a string")
    if not isinstance(checks, dict) or any(v not in (PASS, FAIL) for v in checks.values()):
        raise broken("`checks` must map each check to `pass` or `fail`")
    return Entry(
        case=case,
        target=target,
        model=_text(raw, "model", broken),
        request=_text(raw, "request", broken),
        output=output,
        checks={str(label): value == PASS for label, value in checks.items()},
        known_failing=raw.get("known_failing") is True,
        judges=_judges(raw, broken),
        tool_calls=_tool_calls(raw, broken),
        refusal=_optional_text(raw, "refusal", broken),
        transcript=transcript,
        scores=_scores(raw, 1, broken),
    )


def _transcript(raw: dict[str, Any], broken: Any) -> tuple[Said, ...]:
    turns = raw.get("turns")
    if turns is None:
        return ()
    well_formed = isinstance(turns, list) and all(
        isinstance(t, dict)
        and isinstance(t.get("turn"), int)
        and isinstance(t.get("output", ""), str)
        and isinstance(t.get("user", ""), str)
        for t in turns
    )
    if not well_formed or not turns:
        raise broken("`turns` must list `{turn, user, output, tool_calls}` mappings")
    for said in turns:
        _tool_calls(said, broken)
    return transcript_from(turns)


def _tool_calls(raw: dict[str, Any], broken: Any) -> tuple[ToolCall, ...]:
    calls = raw.get("tool_calls") or []
    well_formed = isinstance(calls, list) and all(
        isinstance(c, dict)
        and isinstance(c.get("name"), str)
        and (isinstance(c.get("arguments_text"), str) or "arguments_text" not in c)
        for c in calls
    )
    if not well_formed:
        raise broken("`tool_calls` must list `{name, arguments}` mappings")
    return tool_calls_from(calls)


def _optional_text(raw: dict[str, Any], key: str, broken: Any) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise broken(f"`{key}` must be a string")
    return value


def _sampled_entry(case: str, target: str, raw: dict[str, Any], broken: Any) -> Entry:
    samples = raw.get("samples")
    outputs = raw.get("outputs")
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 2:
        raise broken("`samples` must be a whole number of at least 2")
    if (
        not isinstance(outputs, list)
        or not outputs
        or not all(
            isinstance(o, dict) and isinstance(o.get("output"), str) and isinstance(o.get("count"), int)
            for o in outputs
        )
    ):
        raise broken("`outputs` must list `{count, output}` pairs")
    checks = raw.get("checks") or {}
    if not isinstance(checks, dict):
        raise broken("`checks` must map each check to `passed/samples`, like 9/10")
    counts = {}
    for label, value in checks.items():
        k, slash, n = value.partition("/") if isinstance(value, str) else ("", "", "")
        if not (slash and k.isdecimal() and n.isdecimal() and len(k + n) < 20 and int(k) <= int(n)):
            raise broken(f"check '{label}' must be `passed/samples`, like 9/10")
        counts[str(label)] = (int(k), int(n))
    distribution = tuple((o["output"], o["count"]) for o in outputs)
    passed_samples = _all_checks(raw, samples, broken) if len(counts) > 1 else None
    if len(counts) == 1:
        passed_samples = next(iter(counts.values()))[0]
    return Entry(
        case=case,
        target=target,
        model=_text(raw, "model", broken),
        request=_text(raw, "request", broken),
        output=distribution[0][0],
        checks={label: k == n for label, (k, n) in counts.items()},
        known_failing=raw.get("known_failing") is True,
        samples=samples,
        distribution=distribution,
        counts=counts,
        passed_samples=passed_samples,
        judges=_judges(raw, broken),
        scores=_scores(raw, samples, broken),
    )


def _scores(raw: dict[str, Any], samples: int, broken: Any) -> dict[str, ScoreSummary]:
    """`scores: {label: 0.91}`, or with repeats `{label: {mean: 0.91, sd: 0.03}}`."""
    value = raw.get("scores") or {}
    hint = "`scores` must map each scored check to a number (with repeats: {mean, sd})"
    if not isinstance(value, dict):
        raise broken(hint)
    scores = {}
    for label, score in value.items():
        if samples == 1 and _number(score):
            scores[str(label)] = ScoreSummary(float(score), 0.0, 1)
        elif samples > 1 and isinstance(score, dict) and all(_number(score.get(k)) for k in ("mean", "sd")):
            scores[str(label)] = ScoreSummary(float(score["mean"]), float(score["sd"]), samples)
        else:
            raise broken(hint)
    return scores


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _all_checks(raw: dict[str, Any], samples: int, broken: Any) -> int | None:
    """`all_checks: k/n`, the samples on which every check passed (absent in older snapshots)."""
    value = raw.get("all_checks")
    if value is None:
        return None
    k, slash, n = value.partition("/") if isinstance(value, str) else ("", "", "")
    if not (slash and k.isdecimal() and n.isdecimal() and len(k + n) < 20 and int(k) <= int(n) == samples):
        raise broken(f"`all_checks` must be `passed/samples` with samples {samples}, like 9/{samples}")
    return int(k)


def _text(raw: dict[str, Any], key: str, broken: Any) -> str:
    """A text field; YAML reads a hash of digits as a number, so any scalar is taken as text."""
    value = raw.get(key, "")
    if isinstance(value, (dict, list)):
        raise broken(f"`{key}` must be text")
    try:
        return str(value)
    except ValueError:  # an integer of more than 4,300 digits
        raise broken(f"`{key}` is a number too long to be read") from None


def _judges(raw: dict[str, Any], broken: Any) -> dict[str, dict[str, Any]]:
    judges = raw.get("judges") or {}
    if not isinstance(judges, dict) or not all(isinstance(j, dict) for j in judges.values()):
        raise broken("`judges` must map each judged check to its judge (model, params, rubric)")
    return {str(label): dict(judge) for label, judge in judges.items()}


def _sorted(value: Any) -> Any:
    """Nested mappings with sorted keys: a judge's params always render the same."""
    if isinstance(value, Mapping):
        return {str(k): _sorted(v) for k, v in sorted(value.items())}
    return value

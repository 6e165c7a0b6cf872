"""Suite -> Jobs: render each case's messages and checks, then pair it with each target.

The same rendering runs at load time (`vet_cases`), so a missing variable or a bad
check value is a suite error before anything is called.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from prompttest.errors import SuiteError
from prompttest.model import Call, Case, CheckSpec, Job, Suite, Target, canonical_json, result_key
from prompttest.model.stats import PassRule
from prompttest.suites.template import render, render_value

Messages = tuple[dict[str, Any], ...]


def expand(
    suite: Suite,
    *,
    targets_override: Sequence[Target] | None = None,
    default_target: Target,
    repeat: int | None = None,
) -> list[Job]:
    """Every job of the suite (see iter_jobs)."""
    return list(
        iter_jobs(suite, targets_override=targets_override, default_target=default_target, repeat=repeat)
    )


def iter_jobs(
    suite: Suite,
    *,
    targets_override: Sequence[Target] | None = None,
    default_target: Target,
    repeat: int | None = None,
) -> Iterator[Job]:
    """One Job per case x target, in case order then target order, made as they are asked for.

    `targets_override` (from --model) replaces the suite's targets; `default_target`
    is used when the suite names none. Params merge suite < target < case. Samples per
    key: `repeat` (from --repeat), else the case's `repeat:`, else the suite's, else 1.
    """
    targets = targets_of(suite, targets_override, default_target)
    for case in suite.cases:
        messages, checks = render_case(suite, case)
        for target in targets:
            call = Call(
                model=target.model,
                messages=messages,
                params={**suite.params, **target.params, **case.params},
                api_base=target.api_base,
            )
            yield Job(
                suite=suite.name,
                case=case.id,
                target=target.id,
                call=call,
                checks=checks,
                vars=case.vars,
                suite_path=suite.path,
                case_file=case.file,
                case_line=case.line,
                samples=_samples(suite, case, repeat),
                pass_rule=case.pass_rule or suite.pass_rule or PassRule(),
            )


def iter_keys(
    suite: Suite,
    *,
    targets_override: Sequence[Target] | None = None,
    default_target: Target,
    repeat: int | None = None,
) -> Iterator[tuple[Case, str, int]]:
    """What `iter_jobs` makes, without rendering anything: each job's case, key and samples."""
    targets = targets_of(suite, targets_override, default_target)
    for case in suite.cases:
        for target in targets:
            yield case, result_key(suite.name, case.id, target.id), _samples(suite, case, repeat)


def targets_of(suite: Suite, override: Sequence[Target] | None, default: Target) -> list[Target]:
    """The targets a suite runs on: -m's, else its own, else the project's default."""
    targets: list[Target] = []
    for target in override or suite.targets or [default]:
        if all(target.id != seen.id for seen in targets):  # `-m x -m x` runs x once
            targets.append(target)
    return targets


def _samples(suite: Suite, case: Case, repeat: int | None) -> int:
    return repeat or case.repeat or suite.repeat or 1


def render_case(suite: Suite, case: Case) -> tuple[Messages, tuple[CheckSpec, ...]]:
    """A case's rendered messages and checks (the suite's checks first)."""
    where = f"case '{case.id}'"
    messages = tuple(
        {
            **message,
            "content": render(
                message["content"],
                case.vars,
                where=where,
                file=case.file,
                line=case.line,
            ),
        }
        for message in _message_templates(suite, case)
    )
    checks = []
    seen: dict[str, int] = {}  # n-th check of each name: unnamed judges are told apart by it
    for check in suite.expect + case.expect:
        value = render_value(check.value, case.vars, where=where, file=case.file, line=case.line)
        seen[check.name] = seen.get(check.name, 0) + 1
        checks.append(
            CheckSpec(
                name=check.name,
                value=value,
                line=check.line,
                label_text=_label(check.name, value, seen[check.name]),
            )
        )
    return messages, tuple(checks)


def _label(name: str, value: Any, nth: int) -> str | None:
    from prompttest.checks import check_label  # the registry imports every check family

    try:
        return check_label(name, value, nth)
    except (KeyError, TypeError, AttributeError):
        return None  # a malformed value: prepare_check reports it with its line


def vet_cases(suite: Suite) -> None:
    """Render every case and let the check registry vet every rendered check value; case
    ids must be unique. One pass: a 10,000-row cases file is read once for it."""
    ids: dict[str, int | None] = {}
    vetted: dict[tuple[str, str], str | None] = {}  # suite checks repeat in every case
    for case in suite.cases:
        if case.id in ids:
            raise SuiteError(
                f"duplicate case id '{case.id}' (lines {ids[case.id]} and {case.line})",
                file=case.file,
                line=case.line,
                hint="case ids must be unique in a suite: they key snapshots",
            )
        ids[case.id] = case.line
        if len(vetted) > 4096:  # values rendered from each case's variables never repeat
            vetted.clear()
        _vet_case(suite, case, vetted)


def _vet_case(suite: Suite, case: Case, vetted: dict[tuple[str, str], str | None]) -> None:
    checks = render_case(suite, case)[1]
    try:
        from prompttest.checks import prepare_check
    except ImportError:  # the registry is optional while the package is assembled
        return
    files = [suite.path] * len(suite.expect) + [case.file] * len(case.expect)
    labels: dict[str, int | None] = {}
    for check, file in zip(checks, files, strict=False):
        if check.label in labels:
            # Snapshots keep one outcome per label: two checks under one label would clash.
            raise SuiteError(
                f"case '{case.id}' has the check '{check.label}' twice "
                f"(lines {labels[check.label]} and {check.line})",
                file=file,
                line=check.line,
                hint="drop one, or give each llm_judge its own `name:`",
            )
        labels[check.label] = check.line
        key = (check.name, canonical_json(check.value))
        if key not in vetted:
            vetted[key] = prepare_check(check.name, check.value)
        if vetted[key]:
            raise SuiteError(
                f"check '{check.name}' in case '{case.id}': {vetted[key]}",
                file=file,
                line=check.line,
            )


def _message_templates(suite: Suite, case: Case) -> Messages:
    """Case messages > case prompt > suite messages > suite prompt; a prompt gets the
    case's or else the suite's system message in front."""
    if case.messages is None and case.prompt is None and suite.messages is not None:
        if case.system is not None:
            raise SuiteError(
                f"case '{case.id}' sets system: but its prompt comes from the suite's messages:",
                file=case.file,
                line=case.line,
                hint="put the system message in messages:, or give the case a prompt:",
            )
        return suite.messages
    if case.messages is not None:
        if case.system is not None:
            raise SuiteError(
                f"case '{case.id}' sets both system: and messages:",
                file=case.file,
                line=case.line,
                hint="put the system message first in messages:",
            )
        return case.messages
    prompt = case.prompt if case.prompt is not None else suite.prompt
    if prompt is None:
        raise SuiteError(
            f"case '{case.id}' has no prompt",
            file=case.file,
            line=case.line,
            hint="give the case a prompt: or messages:, or set one for the whole suite",
        )
    system = case.system if case.system is not None else suite.system
    head = [{"role": "system", "content": system}] if system is not None else []
    return tuple(head + [{"role": "user", "content": prompt}])

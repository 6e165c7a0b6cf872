"""Suite -> Jobs: render each case's messages and checks, then pair it with each target.

The same rendering runs at load time (`vet_cases`), so a missing variable or a bad
check value is a suite error before anything is called.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from prompttest.errors import SuiteError
from prompttest.model import (
    Call,
    Case,
    CheckSpec,
    Job,
    RenderedTurn,
    Suite,
    Target,
    Turn,
    canonical_json,
    result_key,
)
from prompttest.model.inputs import DEFAULT_MAX_STEPS
from prompttest.model.sequential import DEFAULT_MAX_REPEAT
from prompttest.model.stats import PassRule
from prompttest.suites.images import render_content, with_images
from prompttest.suites.template import render, render_body, render_value

Messages = tuple[dict[str, Any], ...]


def expand(
    suite: Suite,
    *,
    targets_override: Sequence[Target] | None = None,
    default_target: Target,
    repeat: int | str | None = None,
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
    repeat: int | str | None = None,
) -> Iterator[Job]:
    """One Job per case x target, in case order then target order, made as they are asked for.

    `targets_override` (from --model) replaces the suite's targets; `default_target`
    is used when the suite names none. Params merge suite < target < case. Samples per
    key: `repeat` (from --repeat), else the case's `repeat:`, else the suite's, else 1.
    """
    targets = targets_of(suite, targets_override, default_target)
    for case in suite.cases:
        messages, checks = render_case(suite, case)
        turns, tool_results, max_steps = conversation_of(suite, case)
        for target in targets:
            call = Call(
                model=target.model,
                messages=messages,
                params={**suite.params, **target.params, **case.params},
                api_base=target.api_base,
                app=_rendered_app(target, case),
                vars=case.vars if target.app is not None else None,
                cache_salt=target.cache_salt,
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
                adaptive=is_adaptive(suite, case, repeat) and not turns and tool_results is None,
                # A conversation is not compared (its turns would need a judge of transcripts).
                compare=None if turns or tool_results is not None else _compare(suite, case),
                pass_rule=case.pass_rule or suite.pass_rule or PassRule(),
                turns=turns,
                tool_results=tool_results,
                max_steps=max_steps,
            )


def iter_keys(
    suite: Suite,
    *,
    targets_override: Sequence[Target] | None = None,
    default_target: Target,
    repeat: int | str | None = None,
) -> Iterator[tuple[Case, str, int]]:
    """What `iter_jobs` makes, without rendering anything: each job's case, key and samples."""
    targets = targets_of(suite, targets_override, default_target)
    for case in suite.cases:
        for target in targets:
            yield case, result_key(suite.name, case.id, target.id), _samples(suite, case, repeat)


def _rendered_app(target: Target, case: Case) -> dict[str, Any] | None:
    """An app's spec for one case: an `http:` body is a template of the case's vars."""
    if target.app is None or "body" not in target.app.get("http", {}):
        return target.app
    http = target.app["http"]
    where = f"case '{case.id}' (the http body of target '{target.id}')"
    body = render_body(http["body"], case.vars, where=where, file=case.file, line=case.line)
    return {**target.app, "http": {**http, "body": body}}


def targets_of(suite: Suite, override: Sequence[Target] | None, default: Target) -> list[Target]:
    """The targets a suite runs on: -m's, else its own, else the project's default."""
    targets: list[Target] = []
    for target in override or suite.targets or [default]:
        if all(target.id != seen.id for seen in targets):  # `-m x -m x` runs x once
            targets.append(target)
    return targets


def _samples(suite: Suite, case: Case, repeat: int | str | None) -> int:
    """The samples a key takes (with `repeat: auto`, the most it may take)."""
    samples = repeat or case.repeat or suite.repeat or 1
    if samples == "auto":
        return case.max_repeat or suite.max_repeat or DEFAULT_MAX_REPEAT
    return int(samples)


def _compare(suite: Suite, case: Case) -> Any:
    """The case's `compare:`, else the suite's; `false` (kept) turns the project's off."""
    return case.compare if case.compare is not None else suite.compare


def is_adaptive(suite: Suite, case: Case, repeat: int | str | None) -> bool:
    """`repeat: auto` or `--repeat auto` (--repeat N fixes the samples; a conversation takes them all)."""
    return (repeat or case.repeat or suite.repeat) == "auto"


def render_case(suite: Suite, case: Case) -> tuple[Messages, tuple[CheckSpec, ...]]:
    """A case's rendered messages and checks (the suite's checks first)."""
    where = f"case '{case.id}'"
    turns = _turns_of(suite, case)
    if turns is not None:  # a conversation: the system message, then its first turn
        _no_images(case, "turns")
        system = case.system if case.system is not None else suite.system
        head = ({"role": "system", "content": system},) if system is not None else ()
        messages: Messages = tuple(
            {**m, "content": render(m["content"], case.vars, where=where, file=case.file, line=case.line)}
            for m in head
        )
        messages += (_user_message(case, turns[0], 1),)
        return messages, _case_checks(suite, case, turns)
    messages = tuple(
        {
            **message,
            "content": render_content(
                message["content"],
                case.vars,
                where=where,
                file=case.file,
                line=case.line,
            ),
        }
        for message in _message_templates(suite, case)
    )
    return messages, _case_checks(suite, case, None)


def _case_checks(suite: Suite, case: Case, turns: tuple[Turn, ...] | None) -> tuple[CheckSpec, ...]:
    """The checks on the case's last answer: the suite's, then the case's (and the only
    turn's, when one call answers the whole case)."""
    checks = _render_checks(case, suite.expect + case.expect)
    if turns is not None and len(turns) == 1 and _tool_results_of(suite, case) is None:
        checks = _render_checks(case, turns[0].expect, turn=1) + checks
    return checks


def conversation_of(suite: Suite, case: Case) -> tuple[tuple[RenderedTurn, ...], dict[str, Any] | None, int]:
    """A case's turns (rendered; none for a single call), canned tool results and max steps."""
    turns = _turns_of(suite, case)
    tool_results = _tool_results_of(suite, case)
    max_steps = case.max_steps or suite.max_steps or DEFAULT_MAX_STEPS
    if tool_results is None and (turns is None or len(turns) == 1):
        return (), None, max_steps  # one call, as a plain case
    if turns is None:  # a prompt whose tool calls get canned results: one turn, the prompt's
        return (RenderedTurn(message={}),), tool_results, max_steps
    rendered = tuple(
        RenderedTurn(message=_user_message(case, turn, n), checks=_render_checks(case, turn.expect, turn=n))
        for n, turn in enumerate(turns, 1)
    )
    return rendered, tool_results, max_steps


def _turns_of(suite: Suite, case: Case) -> tuple[Turn, ...] | None:
    """The case's turns, else the suite's when the case names no prompt of its own."""
    if case.turns is not None:
        return case.turns
    if case.prompt is None and case.messages is None:
        return suite.turns
    return None


def _tool_results_of(suite: Suite, case: Case) -> dict[str, Any] | None:
    return case.tool_results if case.tool_results is not None else suite.tool_results


def _user_message(case: Case, turn: Turn, n: int) -> dict[str, Any]:
    where = f"case '{case.id}' turn {n}"
    text = render(turn.user, case.vars, where=where, file=case.file, line=turn.line)
    return {"role": "user", "content": with_images(text, turn.images)}


def _render_checks(
    case: Case, specs: Sequence[CheckSpec], *, turn: int | None = None
) -> tuple[CheckSpec, ...]:
    """Checks with the case's variables filled in; a turn's checks are labelled `turn N: ...`."""
    where = f"case '{case.id}'" if turn is None else f"case '{case.id}' turn {turn}"
    checks = []
    seen: dict[str, int] = {}  # n-th check of each name: unnamed judges are told apart by it
    for check in specs:
        value = render_value(check.value, case.vars, where=where, file=case.file, line=case.line)
        seen[check.name] = seen.get(check.name, 0) + 1
        label = _label(check.name, value, seen[check.name])
        if turn is not None:
            spec = CheckSpec(name=check.name, value=value)
            label = f"turn {turn}: {label or spec.label}"
        checks.append(CheckSpec(name=check.name, value=value, line=check.line, label_text=label))
    return tuple(checks)


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
    first_turn = len(checks) - len(suite.expect) - len(case.expect)  # a one-call case's turn checks
    files = [case.file] * first_turn + [suite.path] * len(suite.expect) + [case.file] * len(case.expect)
    checks += tuple(check for turn in conversation_of(suite, case)[0] for check in turn.checks)
    files += [case.file] * (len(checks) - len(files))
    try:
        from prompttest.checks import prepare_check
    except ImportError:  # the registry is optional while the package is assembled
        return
    labels: dict[str, int | None] = {}
    for check, file in zip(checks, files, strict=True):
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
        _no_images(case, "messages")
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
    images = case.images if case.images is not None else suite.images
    head = [{"role": "system", "content": system}] if system is not None else []
    return tuple(head + [{"role": "user", "content": with_images(prompt, images)}])


def _no_images(case: Case, source: str) -> None:
    """`images:` go with a prompt: a case whose messages come from the suite's `source` has none."""
    if case.images is not None:
        raise SuiteError(
            f"case '{case.id}' sets images: but its messages come from the suite's {source}:",
            file=case.file,
            line=case.line,
            hint="give the case a prompt:, or put images: on a user message in messages:",
        )

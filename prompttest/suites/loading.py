"""Find, load, validate and expand suites.

suite file -> (yamlsource, schema, plain-word errors) -> Suite -> expand (jobs.py)
-> one Job per case x target. Everything a user can get wrong is caught at load time,
missing template variables included, so nothing is called for a broken suite.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prompttest.errors import SuiteError
from prompttest.io.yamlsource import Lines, YamlPath, line_of, load_yaml_file
from prompttest.model import Case, Suite, Turn
from prompttest.model.stats import PASS_RULE_FORMS, PassRule, parse_pass_rule
from prompttest.suites.casefiles import case_id_text, read_case_file, to_checks
from prompttest.suites.images import Images
from prompttest.suites.jobs import expand, vet_cases
from prompttest.suites.offers import OFFERS, offers_of
from prompttest.suites.safety import Refusal, outside_refusal, refuse_all
from prompttest.suites.schema import PLACEMENT_HINTS, validate_suite_data
from prompttest.suites.targets import read_targets
from prompttest.suites.toolresults import tool_results_problem

__all__ = ["expand", "find_suite_files", "load_suite", "load_suites", "parse_key"]

SUITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
SUITE_SUFFIXES = (".yaml", ".yml")
# Keys, endpoints and models have their own places; `params` go to litellm as is.
_REFUSED_PARAMS = ("api_key", "api_base", "base_url", "model")


def find_suite_files(paths: Sequence[str | Path]) -> list[Path]:
    """Suite files: files as given, folders searched recursively for *.yaml / *.yml."""
    found: list[Path] = []
    seen: set[Path] = set()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            files = sorted(
                (f for f in path.rglob("*") if _is_suite_file(f, path)),
                key=lambda f: f.relative_to(path).as_posix(),
            )
        elif path.is_file():
            files = [path]
        else:
            raise SuiteError(
                f"no such file or folder: {given}",
                hint="pass suite files or folders; `prompttest init` creates suites/ with an example suite",
            )
        for file in files:
            if file.resolve() not in seen:
                seen.add(file.resolve())
                found.append(file)
    if not found:
        where = ", ".join(str(p) for p in paths) or "the given paths"
        raise SuiteError(
            f"no suite files (*.yaml, *.yml) in {where}",
            hint="run `prompttest init` to create suites/ with an example suite",
        )
    return found


def _is_suite_file(file: Path, root: Path) -> bool:
    hidden = any(part.startswith(".") for part in file.relative_to(root).parts)
    return file.suffix.lower() in SUITE_SUFFIXES and not hidden and file.is_file()


def load_suites(
    paths: Sequence[str | Path], *, confine_to: Path | None = None, refused: list[Refusal] | None = None
) -> list[Suite]:
    """Find and load every suite; two files may not share a suite name.

    With `confine_to` (--safe), no file outside that folder is read: suite files reached
    through a symlink and case files or images reached through `..` are refused before reading.
    Refusals are added to `refused` (the caller names them all at once), else raised.
    """
    suites: list[Suite] = []
    by_name: dict[str, Suite] = {}
    for file in find_suite_files(paths):
        if confine_to is not None:
            refusal = outside_refusal(file, confine_to, what="the suite file")
            if refusal is not None:
                _refuse(refusal, refused)
                continue  # never read
        suite = load_suite(file, confine_to=confine_to, refused=refused)
        if suite.name in by_name:
            raise SuiteError(
                f"two suite files are named '{suite.name}': {by_name[suite.name].path} and {suite.path}",
                file=suite.path,
                hint="suite names key snapshots, so they must be unique: set suite: "
                "to another name in one of them",
            )
        by_name[suite.name] = suite
        suites.append(suite)
    return suites


def load_suite(
    path: str | Path, *, confine_to: Path | None = None, refused: list[Refusal] | None = None
) -> Suite:
    """Load, validate and check one suite file; raises SuiteError with file and line.

    With `confine_to`, a cases file or image outside it is refused (added to `refused`, else
    raised) and not read: the suite is loaded without it, so its other refusals are found.
    """
    file = str(path)
    data, lines = load_yaml_file(path)
    validate_suite_data(data, lines, file=file)
    name = data.get("suite", Path(path).stem)
    if not SUITE_NAME.match(name):
        raise SuiteError(
            f"suite name '{name}' must start with a letter or digit and use only letters, digits and _ . -",
            file=file,
            line=lines.get(("suite",)),
            hint="rename the file or set suite: to a valid name",
        )
    _refuse_params(data, lines, file)
    here = Path(path).parent
    _one_of(data, lines, (), ("target", "targets"), file)
    _one_of(data, lines, (), ("prompt", "messages"), file)
    _one_of(data, lines, (), ("prompt", "turns"), file)
    _one_of(data, lines, (), ("messages", "turns"), file)
    images = Images(file, lines, here, confine_to=confine_to, refuse=lambda r: _refuse(r, refused))
    cases: Sequence[Case] = ()
    if isinstance(data["cases"], str):
        case_path = Path(path).parent / data["cases"]
        refusal = None
        if confine_to is not None:
            refusal = outside_refusal(
                case_path, confine_to, what="the cases file", file=file, line=lines.get(("cases",))
            )
        if refusal is not None:
            _refuse(refusal, refused)
        else:
            cases = read_case_file(case_path, suite_file=file, line=lines.get(("cases",)))
    else:
        cases = tuple(
            _inline_case(item, i, lines, file, here, images) for i, item in enumerate(data["cases"])
        )
    suite = Suite(
        name=name,
        path=file,
        targets=read_targets(data, lines, file, here),
        cases=cases,
        description=data.get("description", ""),
        params={**data.get("params", {}), **offers_of(data, lines, (), file=file, suite_dir=here)},
        system=data.get("system"),
        prompt=data.get("prompt"),
        messages=images.messages(data.get("messages"), ()),
        images=images.of(data, ()),
        expect=to_checks(data.get("expect", []), lambda j: line_of(lines, ("expect", j))),
        repeat=data.get("repeat"),
        max_repeat=data.get("max_repeat"),
        compare=data.get("compare"),
        pass_rule=_pass_rule(data, lines, (), file),
        params_line=next((lines[(key,)] for key in ("params", *OFFERS) if (key,) in lines), None),
        turns=_turns(data.get("turns"), lines, (), images),
        tool_results=_tool_results(data, lines, (), file),
        max_steps=data.get("max_steps"),
    )
    vet_cases(suite)  # and that case ids are unique
    return suite


def _refuse(refusal: Refusal, refused: list[Refusal] | None) -> None:
    if refused is None:
        refuse_all([refusal])
    else:
        refused.append(refusal)


def parse_key(key: str) -> tuple[str, str, str]:
    """`suite/case@target` -> (suite, case, target); ValueError if it is not a key.

    Model strings (target ids) contain `/`, but suite names and case ids hold neither
    `/` nor `@`: so the key splits at its first `/` and the first `@` after it.
    """
    suite, slash, rest = key.partition("/")
    case, at, target = rest.partition("@")
    if not (slash and at and suite and case and target):
        raise ValueError(f"not a result key (suite/case@target): {key!r}")
    return suite, case, target


def _inline_case(
    item: dict[str, Any], index: int, lines: Lines, file: str, here: Path, images: Images
) -> Case:
    path: YamlPath = ("cases", index)
    for pair in (("prompt", "messages"), ("prompt", "turns"), ("messages", "turns")):
        _one_of(item, lines, path, pair, file)
    return Case(
        id=case_id_text(item["id"], file=file, line=lines.get(path + ("id",))),
        vars=dict(item.get("vars", {})),
        expect=to_checks(item.get("expect", []), lambda j: line_of(lines, path + ("expect", j))),
        prompt=item.get("prompt"),
        system=item.get("system"),
        messages=images.messages(item.get("messages"), path),
        images=images.of(item, path),
        params={**item.get("params", {}), **offers_of(item, lines, path, file=file, suite_dir=here)},
        file=file,
        line=lines.get(path),
        repeat=item.get("repeat"),
        max_repeat=item.get("max_repeat"),
        compare=item.get("compare"),
        pass_rule=_pass_rule(item, lines, path, file),
        turns=_turns(item.get("turns"), lines, path, images),
        tool_results=_tool_results(item, lines, path, file),
        max_steps=item.get("max_steps"),
    )


def _tool_results(node: dict[str, Any], lines: Lines, path: YamlPath, file: str) -> dict[str, Any] | None:
    if "tool_results" not in node:
        return None
    problem = tool_results_problem(node["tool_results"])
    if problem:
        raise SuiteError(
            problem,
            file=file,
            line=line_of(lines, path + ("tool_results",)),
            hint="tool_results: {get_weather: {temp: 21}} answers every get_weather call with {temp: 21}",
        )
    return dict(node["tool_results"])


def _turns(
    items: list[dict[str, Any]] | None, lines: Lines, path: YamlPath, images: Images
) -> tuple[Turn, ...] | None:
    """A conversation's user turns, each with its images and the checks on its last answer."""
    if items is None:
        return None
    turns = []
    for i, item in enumerate(items):
        at = path + ("turns", i)
        expect = to_checks(item.get("expect", []), lambda j, at=at: line_of(lines, at + ("expect", j)))
        turns.append(Turn(user=item["user"], expect=expect, line=lines.get(at), images=images.of(item, at)))
    return tuple(turns)


def _pass_rule(data: dict[str, Any], lines: Lines, path: YamlPath, file: str) -> PassRule | None:
    if "pass" not in data:
        return None
    try:
        return parse_pass_rule(data["pass"])
    except ValueError as exc:
        raise SuiteError(
            str(exc),
            file=file,
            line=line_of(lines, path + ("pass",)),
            hint=f"write `pass:` as {PASS_RULE_FORMS}",
        ) from None


def _refuse_params(data: dict[str, Any], lines: Lines, file: str) -> None:
    """Keys, endpoints and models never go in `params`: they have their own places."""
    places: list[YamlPath] = [("params",), ("target", "params")]
    places += [("targets", i, "params") for i in range(len(data.get("targets", [])))]
    if isinstance(data["cases"], list):
        places += [("cases", i, "params") for i in range(len(data["cases"]))]
    for place in places:
        params = _at(data, place)
        for key in params if isinstance(params, dict) else ():
            if key in _REFUSED_PARAMS:
                raise SuiteError(
                    f"'{key}' is not allowed in params",
                    file=file,
                    line=lines.get(place + (key,)),
                    hint=PLACEMENT_HINTS[key],
                )


def _at(data: Any, path: YamlPath) -> Any:
    for part in path:
        if isinstance(data, dict) and isinstance(part, str):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def _one_of(data: dict[str, Any], lines: Lines, path: YamlPath, keys: tuple[str, str], file: str) -> None:
    if all(key in data for key in keys):
        raise SuiteError(
            f"use either {keys[0]}: or {keys[1]}:, not both",
            file=file,
            line=lines.get(path + (keys[1],)),
        )

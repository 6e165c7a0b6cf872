"""`pytest --prompttest`: every result key of the suites is a pytest test.

    pytest --prompttest [PATHS]        suite files or folders (default: the project's `suites`)
        --prompttest-update            accept the run into the snapshots (`prompttest run -u`)
        --prompttest-ci / --prompttest-no-ci
                                       the CI gate: write no snapshot, keys without one fail
                                       (default: on when the CI environment variable is true)
        --prompttest-strict            `changed` and `inconclusive` keys fail too
        --prompttest-model MODEL       run against this model instead of the suites' targets

Collection loads the suites, one item per key (`suites/geo.yaml::geo/france@fake`). The first
item to run runs every selected key (after -k and friends) in ONE `prompttest run`: one run
record, the cache, concurrency and snapshot writes as usual. Each item then passes or fails
as its key counts in that run's exit code. Without --prompttest this plugin does nothing and
imports nothing but pytest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr
    from _pytest.terminal import TerminalReporter

    from .config import Project
    from .errors import PromptTestError
    from .model import Result
    from .records.runs import RunRecord

SUITE_SUFFIXES = (".yaml", ".yml")
TRUTHY = {"1", "true", "yes", "on"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("prompttest", "prompt regression tests (prompttest)")
    group.addoption(
        "--prompttest",
        action="store_true",
        help="Collect every result key of the prompttest suites (PATHS, default: the project's "
        "suites) as a test; they run once, in one prompttest run.",
    )
    group.addoption(
        "--prompttest-update", action="store_true", help="Accept the run into the snapshots (run -u)."
    )
    group.addoption(
        "--prompttest-ci",
        action="store_const",
        const=True,
        default=None,
        help="The CI gate: write no snapshot; keys without one fail. Default: on when CI=true.",
    )
    group.addoption("--prompttest-no-ci", dest="prompttest_ci", action="store_const", const=False)
    group.addoption(
        "--prompttest-strict", action="store_true", help="`changed` and `inconclusive` keys fail too."
    )
    group.addoption(
        "--prompttest-model",
        action="append",
        default=[],
        metavar="MODEL",
        help="Run against this model instead of the suites' targets (repeatable).",
    )


@dataclass
class _State:
    """The session's prompttest: its settings, the keys found, and the one run."""

    project: Project
    roots: tuple[Path, ...]  # suite files are yaml files below these
    ci: bool
    update: bool
    strict: bool
    models: tuple[str, ...]
    keys: dict[str, list[str]] = field(default_factory=dict)  # suite file -> its keys
    record: RunRecord | None = None
    results: dict[str, Result] = field(default_factory=dict)
    error: PromptTestError | None = None

    def run_once(self, session: pytest.Session) -> RunRecord:
        """The run of every selected key; made by the first item that asks."""
        if self.record is None and self.error is None:
            self._run(session)
        if self.error is not None:
            raise _RunFailed(self.error)
        assert self.record is not None
        return self.record

    def _run(self, session: pytest.Session) -> None:
        from .errors import PromptTestError
        from .session import RunOptions, run

        items = [item for item in session.items if isinstance(item, PromptItem)]
        files = sorted({item.suite_file for item in items})
        selected = frozenset(item.key for item in items)
        every = {key for file in files for key in self.keys.get(file, ())}
        options = RunOptions(
            paths=tuple(files),
            models=self.models,
            update=self.update,
            ci=self.ci,
            strict=self.strict,
            keys=None if selected == every else selected,  # -k: exactly the chosen keys
        )
        try:
            self.record = run(self.project, options).record
        except PromptTestError as error:
            self.error = error
            return
        self.results = {result.key: result for result in self.record.results}


_STATE = pytest.StashKey[_State]()


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("prompttest"):
        return
    from .config import load_project

    ci = config.getoption("prompttest_ci")
    if ci is None:
        ci = os.environ.get("CI", "").strip().lower() in TRUTHY
    update = bool(config.getoption("prompttest_update"))
    if ci and update:
        raise pytest.UsageError("--prompttest-update cannot be used in CI mode: the CI gate writes nothing")
    project = load_project(config.invocation_params.dir)
    defaults = [path for path in project.suite_paths() if path.exists()]
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        # No paths given: the project's suites join whatever pytest collects by default.
        config.args = [*config.args, *(str(path) for path in defaults)]
    # Folders and files named on the command line hold suites too; pytest's defaults do not.
    given = []
    if config.args_source is pytest.Config.ArgsSource.ARGS:
        given = [config.invocation_params.dir / arg.split("::")[0] for arg in config.args]
    config.stash[_STATE] = _State(
        project=project,
        roots=tuple(path.resolve() for path in (*defaults, *given)),
        ci=ci,
        update=update,
        strict=bool(config.getoption("prompttest_strict")),
        models=tuple(config.getoption("prompttest_model")),
    )


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> SuiteFile | None:
    state = parent.config.stash.get(_STATE, None)
    if state is None or file_path.suffix.lower() not in SUITE_SUFFIXES:
        return None
    resolved = file_path.resolve()
    if not any(resolved == root or root in resolved.parents for root in state.roots):
        return None  # a yaml file that is not a suite (CI config, snapshots, ...)
    return SuiteFile.from_parent(parent, path=file_path)


class SuiteFile(pytest.File):
    """One suite file: an item per result key."""

    def collect(self) -> list[pytest.Item]:
        from .errors import PromptTestError
        from .session import RunOptions, plan

        state = self.config.stash[_STATE]
        path = _display_path(self.path, self.config.invocation_params.dir)
        try:
            jobs = plan(state.project, RunOptions(paths=(path,), models=state.models), resolve=False).jobs
        except PromptTestError as error:
            raise self.CollectError(error.render()) from None
        state.keys[path] = [job.key for job in jobs]
        items: list[pytest.Item] = [
            PromptItem.from_parent(self, name=job.key, key=job.key, suite_file=path, line=job.case_line)
            for job in jobs
        ]
        # With repeats a suite is also judged whole on each target: an item of its own.
        pooled = dict.fromkeys((job.suite, job.target) for job in jobs if job.samples > 1)
        items += [
            SuiteRateItem.from_parent(self, name=f"{suite} pass rate@{target}", suite=suite, target=target)
            for suite, target in pooled
        ]
        return items


class PromptItem(pytest.Item):
    """One result key; passes or fails by its verdict in the session's one run."""

    def __init__(self, *, key: str, suite_file: str, line: int | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.key = key
        self.suite_file = suite_file
        self.line = line

    def runtest(self) -> None:
        from .session import key_exit_code

        state = self.config.stash[_STATE]
        record = state.run_once(self.session)
        result = state.results.get(self.key)
        if result is None:
            raise _KeyFailed(self.key, None, "the run made no result for this key")
        if key_exit_code(result, ci=record.ci, update=record.update, strict=state.strict):
            raise _KeyFailed(self.key, result, "")

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, _RunFailed):
            return f"the prompttest run failed:\n{excinfo.value.error.render()}"
        if isinstance(excinfo.value, _KeyFailed):
            return excinfo.value.explain()
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, (self.line - 1 if self.line else None), f"prompttest: {self.key}"


class SuiteRateItem(pytest.Item):
    """A suite's pass rate on one target, its repeated keys pooled: fails when it regressed
    (and, with --prompttest-strict, when its judged scores dropped), as the run's exit code does."""

    def __init__(self, *, suite: str, target: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite, self.target = suite, target

    def runtest(self) -> None:
        from .report.suitelines import headline, score_sentence, sentence

        state = self.config.stash[_STATE]
        record = state.run_once(self.session)
        if record.update:
            return  # accepted into the snapshots
        for verdict in record.suites:
            if (verdict.suite, verdict.target) == (self.suite, self.target) and verdict.fails:
                raise _SuiteFailed(f"{headline(verdict)}: {sentence(verdict)}")
        for drop in record.score_drops if state.strict else ():
            if (drop.suite, drop.target) == (self.suite, self.target):
                raise _SuiteFailed(f"score dropped: {score_sentence(drop)}")

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, _SuiteFailed):
            return str(excinfo.value)
        if isinstance(excinfo.value, _RunFailed):
            return f"the prompttest run failed:\n{excinfo.value.error.render()}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"prompttest: {self.name}"


class _SuiteFailed(Exception):
    """A suite whose pooled pass rate regressed (or whose scores dropped, strict)."""


class _RunFailed(Exception):
    """The one run stopped with a user error (a bad suite, a missing provider)."""

    def __init__(self, error: PromptTestError) -> None:
        super().__init__(error.message)
        self.error = error


class _KeyFailed(Exception):
    """A key that fails the run: its verdict, reasons and output diff make the report."""

    def __init__(self, key: str, result: Result | None, message: str) -> None:
        super().__init__(message or key)
        self.key, self.result, self.message = key, result, message

    def explain(self) -> str:
        from .model import Verdict
        from .report.textdiff import output_diff, reason_lines

        result = self.result
        if result is None:
            return f"{self.key}: {self.message}"
        notes = f" ({', '.join(result.flags)})" if result.flags else ""
        failed = [f"{check.label}: {check.reason}" for check in result.checks if not check.passed]
        reasons = list(dict.fromkeys(reason_lines(result) + failed))
        if result.verdict is Verdict.NEW and not reasons:
            reasons = ["no snapshot yet: in CI mode it must be committed (run without it, commit snapshots/)"]
        # The first line is what pytest's short summary shows: the verdict and the first reason.
        lines = [f"{result.verdict.value}{notes}" + (f": {reasons[0]}" if reasons else "")]
        lines += [f"  {reason}" for reason in reasons[1:]]
        diff = output_diff(result)
        if diff:
            lines += ["", diff]
        elif result.answer is not None:
            lines += ["", "output:", result.answer]
        return "\n".join(lines)


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    state = terminalreporter.config.stash.get(_STATE, None)
    if state is None or state.record is None:
        return
    from .model import Verdict
    from .report.text import render_summary
    from .session import exit_code

    record = state.record
    terminalreporter.write_sep("-", "prompttest")
    obsolete = [r.key for r in record.results if r.verdict is Verdict.OBSOLETE]
    if obsolete:
        shown = ", ".join(obsolete[:10]) + (f" and {len(obsolete) - 10} more" if len(obsolete) > 10 else "")
        terminalreporter.write_line(
            f"warning: {len(obsolete)} obsolete snapshot entr{'y' if len(obsolete) == 1 else 'ies'} "
            f"(no longer in the suites): {shown}; --prompttest-update drops them",
            yellow=True,
        )
    terminalreporter.write_line(f"run {record.id}")
    terminalreporter.write_line(render_summary(record, exit_code=exit_code(record, strict=state.strict)))


def _display_path(path: Path, cwd: Path) -> str:
    """Relative to the working directory when below it, as `prompttest run` would be given it."""
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)

"""prompttest: prompt regression testing with snapshots and a CI gate.

The public Python API. Names are imported on first use (module `__getattr__`), so
`import prompttest` stays cheap and never imports litellm:

    import prompttest

    record = prompttest.run("suites", ci=True)
    for result in record.results:
        print(result.key, result.verdict, [c.reason for c in result.checks if not c.passed])
    raise SystemExit(prompttest.exit_code(record))
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# Public name -> the module that defines it.
_EXPORTS = {
    "run": "prompttest.api",
    "merge_runs": "prompttest.api",
    "load_suite": "prompttest.suites.loading",
    "load_suites": "prompttest.suites.loading",
    "RunOptions": "prompttest.session",
    "exit_code": "prompttest.session",
    "RunRecord": "prompttest.records.runs",
    "read_run": "prompttest.records.runs",
    "Result": "prompttest.model",
    "Verdict": "prompttest.model",
    "CheckResult": "prompttest.model",
    "CheckContext": "prompttest.model",
    "Suite": "prompttest.model",
    "Shard": "prompttest.suites.shards",
    "Merged": "prompttest.session.merge",
    "PromptTestError": "prompttest.errors",
}

__all__ = [
    "CheckContext",
    "CheckResult",
    "Merged",
    "PromptTestError",
    "Result",
    "RunOptions",
    "RunRecord",
    "Shard",
    "Suite",
    "Verdict",
    "exit_code",
    "load_suite",
    "load_suites",
    "merge_runs",
    "read_run",
    "run",
]

if TYPE_CHECKING:
    __version__: str  # the installed distribution's (module __getattr__)
    from .api import merge_runs, run
    from .errors import PromptTestError
    from .model import CheckContext, CheckResult, Result, Suite, Verdict
    from .records.runs import RunRecord, read_run
    from .session import RunOptions, exit_code
    from .session.merge import Merged
    from .suites.loading import load_suite, load_suites
    from .suites.shards import Shard


def __getattr__(name: str) -> Any:
    if name == "__version__":
        globals()[name] = value = _installed_version()
        return value
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'prompttest' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, "__version__"})


def _installed_version() -> str:
    """The version of the installed distribution: pyproject.toml's, the one place it is written."""
    from importlib import metadata

    try:
        return metadata.version("prompttest")
    except metadata.PackageNotFoundError:  # a checkout put on sys.path, never installed
        return "0+unknown"

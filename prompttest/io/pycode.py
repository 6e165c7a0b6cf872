"""The project's own Python: a function named `package.module:function`, imported with the
project root on sys.path.

Custom checks, `tool_results` functions and `python:` application targets all load code this
way; it lives here so that `checks` and `calls` share one loader (and one record of which
project each module came from) without importing each other.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prompttest.errors import SuiteError

REFERENCE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")

_loaded: dict[tuple[str | None, str], Callable[..., Any]] = {}
_roots: set[str] = set()  # project roots functions were imported from, in this process


def load_function(
    reference: str,
    *,
    root: str | None = None,
    what: str = "custom check",
    signature: str = "def name(output, context): return True, 'why'",
) -> Callable[..., Any]:
    """The function `package.module:function` names, imported with `root` on sys.path.

    `what` and `signature` word the SuiteError for the code that asked (a custom check, an
    application target), so its author reads what to write.
    """
    if (root, reference) in _loaded:
        return _loaded[(root, reference)]
    if not isinstance(reference, str) or not REFERENCE.match(reference):
        raise SuiteError(f"{what} {reference!r}: expected 'package.module:function'")
    module_name, function_name = reference.split(":")
    if root:
        _forget_other_projects(module_name, root)
        if root not in sys.path:
            sys.path.insert(0, root)  # the suite's repository: where its code lives
        _roots.add(root)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001  (any import-time failure is the suite's problem)
        raise SuiteError(
            f"{what} {reference!r}: cannot import {module_name}: {type(exc).__name__}: {exc}",
            hint=f"the module must be importable from the project root ({Path(root or '.').name or '.'})",
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise SuiteError(
            f"{what} {reference!r}: {module_name} has no function {function_name!r}",
            hint=f"define it as {signature}",
        )
    _loaded[(root, reference)] = function
    return function


def _forget_other_projects(module_name: str, root: str) -> None:
    """A process that runs several projects (the Python API, the pytest plugin) must import
    each project's `checks.tone` from that project, not reuse the first one's."""
    parts = module_name.split(".")
    for depth in range(len(parts), 0, -1):
        name = ".".join(parts[:depth])
        module = sys.modules.get(name)
        where = getattr(module, "__file__", None)
        if where is None:
            continue
        home = next((r for r in _roots if Path(where).resolve().is_relative_to(Path(r).resolve())), None)
        if home is not None and home != root:
            del sys.modules[name]
    for other in _roots - {root}:
        while other in sys.path:
            sys.path.remove(other)

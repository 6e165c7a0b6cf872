"""Application targets at plan time: where their code is imported from, and whether their
answers may come from the cache.

A model's answer depends on its request; an application's also on its code. So an app
target is cached only when it names the files its answers depend on
(`cache: {key_files: [globs]}`): the hash of their bytes joins the cache key, and an edit
to any of them calls the app again. Without it (or with `cache: false`) every run calls it,
and `--offline` cannot run it: that is said before anything is called.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from ..errors import SuiteError
from ..model import Suite, Target


def prepare_apps(suite: Suite, root: Path) -> Suite:
    """The suite, each app target's spec told where the project is, its key files hashed."""
    targets = tuple(_prepared(t, root, suite.path) if t.app is not None else t for t in suite.targets)
    return replace(suite, targets=targets)


def _prepared(target: Target, root: Path, file: str) -> Target:
    assert target.app is not None
    app = {**target.app, "root": str(root)}
    if target.concurrency is not None:
        app["concurrency"] = target.concurrency
    salt = None
    if isinstance(target.cache, dict):
        salt = key_files_hash(root, target.cache["key_files"], target=target, file=file)
    return replace(target, app=app, cache_salt=salt)


def key_files_hash(root: Path, patterns: Iterable[str], *, target: Target, file: str) -> str:
    """The hash of every file the globs match (paths and bytes), relative to the project."""
    digest = hashlib.sha256()
    for pattern in patterns:
        files = sorted(path for path in root.glob(pattern) if path.is_file())
        if not files:
            raise SuiteError(
                f"target '{target.id}': cache key_files '{pattern}' matches no file",
                file=file,
                line=target.line,
                hint="globs are relative to the project root, e.g. myapp/**/*.py",
            )
        for path in files:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def refuse_uncached_apps(suite: Suite, targets: Sequence[Target]) -> None:
    """--offline answers from the cache only: an app target that is never cached cannot run."""
    for target in targets:
        if target.app is not None and target.cache_salt is None:
            raise SuiteError(
                f"--offline: target '{target.id}' ({target.model}) is never cached, so it cannot run offline",
                file=suite.path,
                line=target.line,
                hint="give it cache: {key_files: [...]}, the files its answers depend on; or run online",
            )

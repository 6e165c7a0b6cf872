"""Is the installed llama.cpp build safe to load on this CPU? Asked once, in a subprocess.

llama-cpp-python is compiled on install. A build tuned to another CPU dies with SIGILL at
the first inference, which would kill the run; so one token is generated in a child
process first, and a pass is remembered per build (version, native libraries' path, size
and mtime) under the user's cache folder.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ...errors import ProviderSetupError

# --no-cache-dir: pip's wheel cache does not tell a native build from a portable one.
REBUILD_COMMAND = (
    'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --force-reinstall --no-cache-dir llama-cpp-python==0.3.36'
)
PROBE_TIMEOUT_S = 180.0
# One token from the real model: the crashing builds die at the first inference.
PROBE_CODE = """\
import sys, llama_cpp
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=64, n_threads=int(sys.argv[2]), verbose=False)
llm.create_completion("Q: 1 + 1?\\nA:", max_tokens=1, temperature=0)
"""


def check_build(model_path: str, *, threads: int) -> None:
    """Run one token in a subprocess once per llama.cpp build: a bad build dies there, not here."""
    marker = _marker_path()
    if marker is not None and marker.is_file():
        return
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-c", PROBE_CODE, model_path, str(threads)],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise ProviderSetupError(
            f"the llama.cpp self-test did not finish in {PROBE_TIMEOUT_S:g} s",
            hint=f"reinstall it: {REBUILD_COMMAND}",
        ) from None
    if done.returncode < 0:
        name = _signal_name(-done.returncode)
        why = " (illegal instruction: it was built for another CPU)" if name == "SIGILL" else ""
        raise ProviderSetupError(
            f"the installed llama-cpp-python build crashes on this machine with {name}{why}",
            hint=f"rebuild it portably (about 10 minutes): {REBUILD_COMMAND}",
        )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ProviderSetupError(
            f"the llama.cpp self-test failed: {last}",
            hint=f"reinstall it: {REBUILD_COMMAND}",
        )
    if marker is not None:
        _write_marker(marker, seconds=time.perf_counter() - started)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def build_fingerprint() -> dict[str, Any] | None:
    """llama-cpp-python's version and its native libraries (path, size, mtime); None if absent."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(next(iter(spec.submodule_search_locations))).resolve()
    libraries = sorted(
        {p.resolve() for pattern in ("*.so*", "*.dylib", "*.dll") for p in package.rglob(pattern)}
    )
    try:
        version = importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return {
        "version": version,
        "libraries": [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in libraries if p.is_file()],
    }


def _marker_path() -> Path | None:
    """Where a passed self-test of this exact build is remembered (None: cannot tell)."""
    fingerprint = build_fingerprint()
    if fingerprint is None:
        return None
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "prompttest" / f"llama-cpp-ok-{digest}.json"


def _write_marker(marker: Path, *, seconds: float) -> None:
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        temporary = marker.with_suffix(f".{os.getpid()}.tmp")
        data = {"fingerprint": build_fingerprint(), "probe_seconds": round(seconds, 2)}
        temporary.write_text(json.dumps(data, indent=2))
        os.replace(temporary, marker)
    except OSError:
        pass  # a read-only home: the self-test simply runs again next time

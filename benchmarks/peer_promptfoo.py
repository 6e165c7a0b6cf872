"""promptfoo as a peer in bench_core.py: the same N prompts, server, concurrency and checks.

Found, in this order: `--promptfoo PATH`; a `promptfoo` executable on PATH;
`$PROMPTFOO_DIR/node_modules/.bin/promptfoo`. Its project, written in the benchmark's
temporary folder:

- `promptfooconfig.yaml`: provider `openai:chat:fake` with `apiBaseUrl` the fake server
  (temperature 0, max_tokens 32, as the prompttest suite), the prompt
  `What is the capital of {{country}}?`, the two checks in `defaultTest.assert`
  (`contains "echo: What is the capital"`, `javascript: output.length <= 200`) and
  `tests: file://tests.csv`;
- `tests.csv`: one column `country`, the same N values as the prompttest suite's CSV.

It runs `promptfoo eval -c promptfooconfig.yaml --no-cache -j N -o out.json
--no-progress-bar --no-table --no-share`: no response cache, no console table of every
row (prompttest prints a summary too), results written to its database and to out.json as
usual. HOME and PROMPTFOO_CONFIG_DIR point into the benchmark's temporary folder (its
database, logs and settings go there, not into the user's home); telemetry, update checks
and sharing are off (PROMPTFOO_DISABLE_TELEMETRY, PROMPTFOO_DISABLE_UPDATE,
PROMPTFOO_SELF_HOSTED).

Exit status of `promptfoo eval`: 0 when every test passed, 100 when some failed (its
PROMPTFOO_FAILED_TEST_EXIT_CODE), 1 on an error. Here every test passes, so 0 is expected.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

CONFIG = """\
description: prompttest benchmark peer (benchmarks/bench_core.py)
prompts:
  - "What is the capital of {{{{country}}}}?"
providers:
  - id: openai:chat:fake
    config:
      apiBaseUrl: "{url}"
      apiKey: dummy
      temperature: 0
      max_tokens: 32
defaultTest:
  assert:
    - type: contains
      value: "echo: What is the capital"
    - type: javascript
      value: "output.length <= 200"
tests: file://tests.csv
"""


def find(explicit: str | None) -> tuple[str | None, str]:
    """(the promptfoo executable or None, how it was found or why not)."""
    if explicit:
        path = shutil.which(explicit) or (explicit if Path(explicit).is_file() else None)
        if path is None:
            return None, f"--promptfoo {explicit}: not found"
        return str(Path(path).absolute()), "--promptfoo"
    on_path = shutil.which("promptfoo")
    if on_path:
        return on_path, "PATH"
    folder = os.environ.get("PROMPTFOO_DIR")
    if folder:
        candidate = Path(folder) / "node_modules" / ".bin" / "promptfoo"
        if candidate.is_file():
            return str(candidate.absolute()), "PROMPTFOO_DIR"
        return None, "PROMPTFOO_DIR has no node_modules/.bin/promptfoo"
    return None, "no --promptfoo, none on PATH, PROMPTFOO_DIR not set"


class Promptfoo:
    """A promptfoo project of N tests in `root`, and how to run and check it."""

    def __init__(self, executable: str, root: Path, base_env: dict[str, str]) -> None:
        self.executable = executable
        self.root = root
        home = root / "home"
        (home / ".promptfoo").mkdir(parents=True, exist_ok=True)
        self.env = {
            **base_env,
            "HOME": str(home),
            "PROMPTFOO_CONFIG_DIR": str(home / ".promptfoo"),
            "PROMPTFOO_CACHE_PATH": str(home / "cache"),
            "PROMPTFOO_DISABLE_TELEMETRY": "1",
            "PROMPTFOO_DISABLE_UPDATE": "1",
            "PROMPTFOO_SELF_HOSTED": "1",
            "PROMPTFOO_DISABLE_SHARING": "1",
            "NO_COLOR": "1",
        }

    def version(self) -> str:
        try:
            done = subprocess.run(
                [self.executable, "--version"],
                env=self.env,
                cwd=self.root,
                capture_output=True,
                text=True,
                timeout=120,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"unknown ({exc})"
        lines = done.stdout.strip().splitlines()
        return lines[-1] if lines else "unknown"

    def project(self, name: str, url: str, keys: int) -> Path:
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "promptfooconfig.yaml").write_text(CONFIG.format(url=url), encoding="utf-8")
        rows = "".join(f"Country{i:06d}\n" for i in range(keys))  # as bench_core.write_project
        (folder / "tests.csv").write_text("country\n" + rows, encoding="utf-8")
        return folder

    def argv(self, concurrency: int) -> list[str]:
        return [
            self.executable,
            "eval",
            "-c",
            "promptfooconfig.yaml",
            "--no-cache",
            "-j",
            str(concurrency),
            "-o",
            "out.json",
            "--no-progress-bar",
            "--no-table",
            "--no-share",
        ]

    @staticmethod
    def check(folder: Path, keys: int) -> tuple[dict[str, Any], list[str]]:
        """(the eval's stats, problems): N results, N passed, no error."""
        out = folder / "out.json"
        try:
            results = json.loads(out.read_text(encoding="utf-8"))["results"]
            stats, rows = results["stats"], results["results"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return {}, [f"no usable out.json ({exc})"]
        summary = {
            "results": len(rows),
            "successes": stats.get("successes"),
            "failures": stats.get("failures"),
            "errors": stats.get("errors"),
        }
        problems = []
        if (summary["results"], summary["successes"]) != (keys, keys):
            got = f"{summary['results']}/{summary['successes']}"
            problems.append(f"results/successes = {got}, expected {keys}")
        return summary, problems

    @staticmethod
    def reset(folder: Path) -> None:
        (folder / "out.json").unlink(missing_ok=True)

"""Print prompttest's folder-level imports; exit 1 if one runs back up the stages or a cycle exists.

    python scripts/import_graph.py

`docs/architecture.md` draws the same table. Every import counts, lazy ones included: a
function-level import is still a dependency, only a later one.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "prompttest"

# Lowest first. A stage may import only stages of a lower rank (never one of its own rank
# but another name): the order data flows in, read from the bottom up.
RANKS: dict[str, int] = {
    "model": 0,
    "errors": 0,
    "stopping": 0,
    "config": 1,
    "io": 1,
    "calls": 2,
    "checks": 2,
    "publish": 2,
    "suites": 3,
    "verdicts": 3,
    "records": 4,
    "report": 5,
    "session": 5,
    "api": 6,
    "pytest_plugin": 6,
    "__init__": 7,
    "cli": 8,
    "__main__": 9,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> Iterator[str]:
    """Dotted names of the prompttest modules (or packages) that `path` imports."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("prompttest"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("prompttest"):
                target = node.module
            else:
                continue
            # `from .. import x` imports the submodule x when there is one, else the package.
            submodules = [f"{target}.{alias.name}" for alias in node.names]
            yield from (name for name in submodules if name in modules)
            if not all(name in modules for name in submodules):
                yield target


def stage_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    names = set(modules)
    return {
        name: {target for target in imported_modules(path, names) if target in names and target != name}
        for name, path in modules.items()
    }


def stage_arrows(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    arrows: dict[str, set[str]] = {}
    for source, targets in graph.items():
        for target in targets:
            if stage_of(source) != stage_of(target):
                arrows.setdefault(stage_of(source), set()).add(stage_of(target))
    return arrows


def back_arrows(arrows: dict[str, set[str]]) -> list[str]:
    return [
        f"{source} -> {target}"
        for source, targets in sorted(arrows.items())
        for target in sorted(targets)
        if RANKS.get(target, 99) >= RANKS.get(source, -1)
    ]


def module_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle among modules at import time, or None. A package counts as importing its
    `__init__`'s imports, so `a -> a.b` is not a cycle by itself."""
    state: dict[str, int] = {}
    trail: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        trail.append(name)
        for target in sorted(graph[name]):
            if target.startswith(name + "."):
                continue  # a package reaching into its own submodule
            if state.get(target) == 1 and not name.startswith(target + "."):
                return trail[trail.index(target) :] + [target]
            if target not in state and (found := visit(target)):
                return found
        trail.pop()
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state and (found := visit(name)):
            return found
    return None


def main() -> int:
    graph = module_graph()
    arrows = stage_arrows(graph)
    for source in sorted(arrows, key=lambda s: -RANKS.get(s, 99)):
        print(f"{source:>14} -> {' '.join(sorted(arrows[source], key=lambda t: -RANKS.get(t, 99)))}")
    problems = [f"runs back up the stages: {arrow}" for arrow in back_arrows(arrows)]
    unranked = sorted({stage_of(name) for name in graph} - RANKS.keys())
    problems += [f"not given a rank in scripts/import_graph.py: {stage}" for stage in unranked]
    if cycle := module_cycle(graph):
        problems.append("import cycle: " + " -> ".join(cycle))
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

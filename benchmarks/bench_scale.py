"""Scale benchmark: wall time and peak memory of the CLI as the number of keys grows.

For each size (default 2,500, 5,000 and 10,000 keys), in a throwaway project against the
local fake server (`bench_server.py`, as in bench_core.py):

1. a cold `prompttest run --json FILE` (empty cache, no snapshots: N calls, snapshots written);
2. the fully cached rerun (0 calls), with its --json report too;
3. `prompttest diff RUN_A RUN_B` of those two run records (text to stdout), and the same
   with `--format json -o FILE` (every key rendered).

Every step is its own process; peak memory is its max RSS (`os.wait4`: the largest process,
when it started others). For the cold run, whose calls go through worker processes, a
second row gives the peak PSS of all its processes together (proctree.py samples them).
The table ends with the growth of each step's peak memory per 1,000 keys between the
smallest and largest size, and its fixed part (interpreter and imports, extrapolated to
0 keys).

    python benchmarks/bench_scale.py                      # 2,500 / 5,000 / 10,000 keys
    python benchmarks/bench_scale.py --sizes 2500 5000    # quicker
    python benchmarks/bench_scale.py --json-out FILE      # also write every measure

`--variant NAME=FILE` runs every step once more with FILE executed in the CLI process first
(see bench_core.py): a candidate change measured against the unchanged code.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_core import PRELOAD_ENV, PROBE, Measure, Server, child_env, measure, write_project  # noqa: E402

STEPS = ("cold run", "cached rerun", "diff A B (text)", "diff A B --format json")


@dataclass
class Row:
    variant: str
    keys: int
    step: str
    wall_s: float
    maxrss_mb: float
    code: int
    problem: str = ""
    tree_pss_mb: float | None = None  # peak PSS of the process and its descendants together


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", PROBE, *args]


def run_size(keys: int, variant: str, env: dict[str, str], args: argparse.Namespace, work: Path) -> list[Row]:
    """The four steps at one size, in a fresh project."""
    project = work / f"project-{keys}-{variant}"
    shutil.rmtree(project, ignore_errors=True)
    write_project(project, args.url, keys)
    runs = project / ".prompttest" / "runs"
    rows = []

    def step(name: str, argv: list[str]) -> Measure:
        m = measure(argv, cwd=project, env=env, timeout_s=args.timeout, sample=name == "cold run")
        problem = "" if m.code == 0 else (m.stderr or m.stdout).strip().splitlines()[-1:][0:1]
        pss = m.tree.pss_sum_peak_mb if m.tree is not None and m.tree.ticks else None
        rows.append(Row(variant, keys, name, m.wall_s, m.maxrss_mb, m.code, " ".join(problem), pss))
        if not args.quiet:
            tree = f", all processes {pss:.0f} MB PSS" if pss is not None else ""
            said = f"  {keys:>6} keys {name:<24} {m.wall_s:6.2f} s {m.maxrss_mb:6.0f} MB{tree}"
            print(said, file=sys.stderr)
        return m

    report = str(work / "report.json")  # CI runs write reports: their cost is part of a run's
    step("cold run", cli("run", "-j", str(args.concurrency), "--json", report))
    step("cached rerun", cli("run", "-j", str(args.concurrency), "--json", report))
    ids = sorted(p.stem for p in runs.glob("*.json"))
    if len(ids) != 2:
        rows[-1].problem = f"expected 2 run records, found {len(ids)}"
        return rows
    step("diff A B (text)", cli("diff", ids[0], ids[1]))
    step(
        "diff A B --format json", cli("diff", ids[0], ids[1], "--format", "json", "-o", str(work / "d.json"))
    )
    if not args.keep:
        shutil.rmtree(project, ignore_errors=True)
    return rows


def table(rows: list[Row]) -> str:
    sizes = sorted({r.keys for r in rows})
    variants = list(dict.fromkeys(r.variant for r in rows))
    head = ["step", *(f"{n:,} keys: s / MB" for n in sizes), "MB per 1k keys", "fixed MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for variant in variants:
        for name in STEPS:
            got = {r.keys: r for r in rows if r.variant == variant and r.step == name}
            if not got:
                continue
            label = name if variant == "baseline" else f"{name} [{variant}]"
            lines.append(line(label, sizes, {n: (r.wall_s, r.maxrss_mb) for n, r in got.items()}))
            pss = {n: (r.wall_s, r.tree_pss_mb) for n, r in got.items() if r.tree_pss_mb is not None}
            if pss:
                label = "cold run, all processes (PSS)" + ("" if variant == "baseline" else f" [{variant}]")
                lines.append(line(label, sizes, pss))
    problems = [f"- {r.variant} {r.keys} {r.step}: exit {r.code} {r.problem}" for r in rows if r.code]
    return "\n".join(lines + (["", "Problems:", *problems] if problems else []))


def line(label: str, sizes: list[int], got: dict[int, tuple[float, float]]) -> str:
    """One row: "s / MB" per size, MB per 1,000 keys (smallest to largest size), fixed MB."""
    cells = [f"{got[n][0]:.2f} / {got[n][1]:.0f}" if n in got else "–" for n in sizes]
    slope, fixed = "–", "–"
    if len(got) >= 2:
        lo, hi = min(got), max(got)
        per_key = (got[hi][1] - got[lo][1]) / (hi - lo)
        slope, fixed = f"{per_key * 1000:.1f}", f"{got[lo][1] - per_key * lo:.0f}"
    return "| " + " | ".join([label, *cells, slope, fixed]) + " |"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2500, 5000, 10_000], help="keys per project")
    parser.add_argument("-j", "--concurrency", type=int, default=64, help="requests in flight (default 64)")
    parser.add_argument(
        "--latency", type=float, default=0.01, help="server seconds per answer (default 0.01)"
    )
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=FILE")
    parser.add_argument("--no-baseline", action="store_true", help="only the --variant runs")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before one step is killed")
    parser.add_argument("--json-out", metavar="PATH", help="also write every measure here")
    parser.add_argument("--keep", action="store_true", help="keep the generated projects")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    variants = [] if args.no_baseline else [("baseline", "")]
    for spec in args.variant:
        name, sep, path = spec.partition("=")
        if not sep or not Path(path).is_file():
            parser.error(f"--variant wants NAME=FILE with an existing file: {spec!r}")
        variants.append((name, str(Path(path).resolve())))
    args.variant = variants
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="prompttest-scale-"))
    base_env = child_env(work / "pycache")
    server = Server(args.latency)
    args.url = server.url
    started = time.perf_counter()
    rows: list[Row] = []
    try:
        warm = work / "warm-up"  # compile every module once, as a pip install would
        write_project(warm, server.url, 20)
        for argv in (cli("run"), cli("run"), cli("diff")):
            measure(argv, cwd=warm, env=base_env, timeout_s=args.timeout)
        for name, preload in args.variant:
            env = {**base_env, PRELOAD_ENV: preload} if preload else base_env
            for keys in args.sizes:
                rows += run_size(keys, name, env, args, work)
    finally:
        server.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(
        f"prompttest scale benchmark: sizes {', '.join(f'{n:,}' for n in args.sizes)} keys, "
        f"-j {args.concurrency}, server latency {args.latency * 1000:g} ms, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPU(s), {time.perf_counter() - started:.0f} s in all\n"
    )
    print(table(rows))
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps([asdict(r) for r in rows], indent=1) + "\n", encoding="utf-8"
        )
    return 1 if any(r.code for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

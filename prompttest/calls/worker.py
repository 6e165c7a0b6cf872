"""Call workers: `python -m prompttest.calls.worker FDS`, started by `pool.WorkerPool`.

The process imports litellm once, forks one worker per further pipe pair in FDS, and
serves the first pair itself. A worker answers the requests framed on its pipe, many at a
time, until the pipe ends. It never retries, caches or writes anything: the run does that.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from typing import Any

from ..model import Call
from .faults import ProviderError, RetryPolicy
from .litellm_door import load_litellm, prepare_requests_inline
from .pool import encode, read_frame
from .providers import attempt_here, check_model, close_clients, has_price


async def _check(model: str, api_base: str | None) -> None:
    check_model(model, api_base)


async def _price(call: Any) -> bool:
    return has_price(call)


HANDLERS = {"attempt": attempt_here, "check": _check, "price": _price}


async def serve(frames_in: int, frames_out: int) -> None:
    loop = asyncio.get_running_loop()
    prepare_requests_inline(loop)
    reader = asyncio.StreamReader(limit=2**26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(frames_in, "rb"))
    out = os.fdopen(frames_out, "wb")
    tasks: dict[int, asyncio.Task[None]] = {}
    out.write(encode((0, True, os.getpid())))
    out.flush()

    def reply(request_id: int, ok: bool, value: Any) -> None:
        try:
            frame = encode((request_id, ok, value))
        except Exception as exc:  # an exception that does not pickle: say what it was
            frame = encode((request_id, False, ProviderError(f"{type(value).__name__}: {exc}")))
        out.write(frame)
        out.flush()

    async def handle(kind: str, request_id: int, args: tuple[Any, ...]) -> None:
        try:
            reply(request_id, True, await HANDLERS[kind](*args))
        except asyncio.CancelledError:
            pass  # the run no longer waits for it
        except Exception as exc:
            reply(request_id, False, exc)
        finally:
            tasks.pop(request_id, None)

    while True:
        try:
            kind, request_id, *args = await read_frame(reader)
        except (asyncio.IncompleteReadError, EOFError):
            break
        if kind == "cancel":
            task = tasks.get(request_id)
            if task is not None:
                task.cancel()
        else:
            tasks[request_id] = asyncio.ensure_future(handle(kind, request_id, tuple(args)))
    for task in list(tasks.values()):
        task.cancel()
    await asyncio.gather(*tasks.values(), return_exceptions=True)
    await close_clients()


def main(fds: str) -> None:
    """Serve the first pipe pair of `fds` ("r0,w0,r1,w1,..."), and fork a worker for each other."""
    # The run stops its workers by closing their pipes; a stop signal is the run's to handle.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Whatever a library prints goes to stderr: stdout is the run's.
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    numbers = [int(fd) for fd in fds.split(",")]
    pairs = list(zip(numbers[::2], numbers[1::2], strict=True))
    load_litellm()  # once, before forking: the others share it
    if len(pairs) > 1:
        asyncio.run(_warm_up())
    for pair in pairs[1:]:
        if os.fork() == 0:
            _serve_alone(pair, pairs)
    for pair in pairs[1:]:
        _close(pair)
    asyncio.run(serve(*pairs[0]))
    for _ in pairs[1:]:  # the forked workers end when the run closes their pipes
        try:
            os.wait()
        except ChildProcessError:
            break
    sys.stderr.flush()
    os._exit(0)  # nothing left to tear down that the run would wait for (litellm's modules)


async def _warm_up() -> None:
    """One request to a throwaway loopback server, before forking. At its first call litellm
    imports some 460 more modules (0.2 s of CPU): once here, not again in each worker, whose
    first calls would otherwise start that much later than the others'."""
    server = await asyncio.start_server(_answer_warm_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    call = Call(
        model="openai/prompttest-warm-up",
        messages=({"role": "user", "content": "warm-up"},),
        params={},
        api_base=f"http://127.0.0.1:{port}/v1",
    )
    try:
        await attempt_here(call, RetryPolicy(timeout_s=10, max_attempts=1))
    except Exception:  # noqa: BLE001  (a failed warm-up costs its time, nothing else)
        pass
    finally:
        server.close()
        await server.wait_closed()
        await close_clients()
    # Clients are cached by the id of their event loop: none may outlive this one.
    load_litellm().in_memory_llm_clients_cache.flush_cache()


async def _answer_warm_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    await reader.readexactly(length)
    body = json.dumps(
        {
            "id": "warm-up",
            "object": "chat.completion",
            "created": 0,
            "model": "prompttest-warm-up",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    ).encode()
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    writer.close()


def _serve_alone(mine: tuple[int, int], pairs: list[tuple[int, int]]) -> None:
    """In a forked worker: serve `mine`, holding no other worker's pipe, then exit."""
    code = 0
    try:
        for pair in pairs:
            if pair != mine:
                _close(pair)
        asyncio.run(serve(*mine))
    except BaseException:
        code = 1
        raise
    finally:
        os._exit(code)  # never back into the forking code


def _close(pair: tuple[int, int]) -> None:
    for fd in pair:
        try:
            os.close(fd)
        except OSError:
            pass


if __name__ == "__main__":
    main(sys.argv[1])

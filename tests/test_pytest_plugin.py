"""`pytest --prompttest`: one test item per result key, one prompttest run per session."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import GEO_SUITE, replies
from fake_server import FakeServer

pytest_plugins = ["pytester"]

ANSWERS = {"France": "Paris.", "Japan": "Tokyo.", "Peru": "Lima."}
# Other plugins of this environment cost about a second per inner session.
QUIET = ("-p", "no:hypothesispytest", "-p", "no:anyio")
KEYS = ["geo/france@fake", "geo/japan@fake", "geo/peru@fake"]


@pytest.fixture(scope="module", autouse=True)
def _modules_of_a_run(_fake_server_process: FakeServer, tmp_path_factory: pytest.TempPathFactory) -> None:
    """One run in this process before pytester takes its snapshots of sys.modules.

    pytester drops the modules an inner session imported when it ends; C extensions (yaml's
    loader, pydantic's core) cannot be imported afresh, so the next session would break.
    Imported here, they are kept.
    """
    import prompttest.pytest_plugin  # noqa: F401
    import prompttest.report.textdiff  # noqa: F401
    from prompttest.api import run

    root = tmp_path_factory.mktemp("warm")
    (root / "pyproject.toml").write_text("[tool.prompttest]\n")
    (root / "suites").mkdir()
    write_suite(root, GEO_SUITE, _fake_server_process)
    run(project_dir=root, ci=True)


@pytest.fixture
def suites(pytester: pytest.Pytester, fake_server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A prompttest project in pytester's folder: the geo suite against the fake server."""
    monkeypatch.delenv("CI", raising=False)
    for name in [n for n in os.environ if n.startswith("PROMPTTEST_")]:
        monkeypatch.delenv(name)
    fake_server.reply = replies(ANSWERS)
    root = pytester.path
    (root / "pyproject.toml").write_text("[tool.prompttest]\n")
    (root / "suites").mkdir()
    write_suite(root, GEO_SUITE, fake_server)
    (root / "ci.yaml").write_text("not: a suite\n")  # yaml outside suites/ is left alone
    return root


def write_suite(root: Path, text: str, server: FakeServer) -> None:
    (root / "suites" / "geo.yaml").write_text(textwrap.dedent(text).replace("{api_base}", server.url))


def pytest_in(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """An inner pytest session, without the plugins that only slow it down."""
    return pytester.runpytest(*QUIET, *args)


def forget_answers(root: Path) -> None:
    """Drop the response cache, so the next session asks the server again."""
    shutil.rmtree(root / ".prompttest" / "cache")


def records(root: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((root / ".prompttest" / "runs").glob("*.json"))]


def test_collects_one_item_per_key_from_the_projects_suites(
    pytester: pytest.Pytester, suites: Path, fake_server: FakeServer
) -> None:
    done = pytest_in(pytester, "--prompttest", "--collect-only", "-q")
    ids = [line for line in done.outlines if "::" in line]
    assert ids == [f"suites/geo.yaml::{key}" for key in KEYS]
    assert fake_server.count == 0  # collecting calls nothing


def test_items_run_once_and_pass_or_fail_by_verdict(
    pytester: pytest.Pytester, suites: Path, fake_server: FakeServer
) -> None:
    first = pytest_in(pytester, "--prompttest")
    first.assert_outcomes(passed=3)  # new keys pass locally and are written
    assert fake_server.count == 3 and len(records(suites)) == 1  # one run for the session
    assert "geo@fake" not in (suites / "snapshots" / "geo.yaml").read_text()
    assert "france@fake" in (suites / "snapshots" / "geo.yaml").read_text()

    fake_server.reply = replies({**ANSWERS, "France": "Lyon."})
    forget_answers(suites)
    second = pytest_in(pytester, "--prompttest")
    second.assert_outcomes(passed=2, failed=1)
    out = second.stdout.str()
    assert "regressed: contains: Paris: expected 'Paris' in output" in out  # the report's first line
    second.stdout.fnmatch_lines(["FAILED suites/geo.yaml::geo/france@fake - regressed: contains: Paris*"])
    assert "-Paris." in out and "+Lyon." in out  # the output diff
    assert "1 regressed, 2 unchanged" in out  # the run's summary line
    assert len(records(suites)) == 2


def test_k_selects_keys_and_only_those_are_run(
    pytester: pytest.Pytester, suites: Path, fake_server: FakeServer
) -> None:
    done = pytest_in(pytester, "--prompttest", "-k", "japan")
    done.assert_outcomes(passed=1, deselected=2)
    assert fake_server.count == 1
    (record,) = records(suites)
    assert [r["key"] for r in record["results"]] == ["geo/japan@fake"]


def test_ci_mode_fails_keys_without_a_snapshot_and_writes_nothing(
    pytester: pytest.Pytester, suites: Path
) -> None:
    done = pytest_in(pytester, "--prompttest", "--prompttest-ci", "suites")
    done.assert_outcomes(failed=3)
    assert "new: no snapshot yet: in CI mode it must be committed" in done.stdout.str()
    assert not (suites / "snapshots").exists()


def test_update_accepts_changes_and_strict_fails_them(
    pytester: pytest.Pytester, suites: Path, fake_server: FakeServer
) -> None:
    pytest_in(pytester, "--prompttest").assert_outcomes(passed=3)
    fake_server.reply = replies({**ANSWERS, "Peru": "Lima, Peru."})
    forget_answers(suites)
    pytest_in(pytester, "--prompttest", "--prompttest-strict").assert_outcomes(passed=2, failed=1)
    pytest_in(pytester, "--prompttest", "--prompttest-update").assert_outcomes(passed=3)
    assert "Lima, Peru." in (suites / "snapshots" / "geo.yaml").read_text()
    pytest_in(pytester, "--prompttest", "--prompttest-strict").assert_outcomes(passed=3)


def test_obsolete_entries_are_a_warning(
    pytester: pytest.Pytester, suites: Path, fake_server: FakeServer
) -> None:
    pytest_in(pytester, "--prompttest").assert_outcomes(passed=3)
    write_suite(
        suites, GEO_SUITE.replace("      - id: peru\n        vars: {country: Peru}\n", ""), fake_server
    )
    done = pytest_in(pytester, "--prompttest")
    done.assert_outcomes(passed=2)
    done.stdout.fnmatch_lines(
        ["warning: 1 obsolete snapshot entry (no longer in the suites): geo/peru@fake*"]
    )


def test_a_broken_suite_is_a_collection_error_without_traceback(
    pytester: pytest.Pytester, suites: Path
) -> None:
    (suites / "suites" / "bad.yaml").write_text("prompt: hi\n")
    done = pytest_in(pytester, "--prompttest")
    assert done.ret == pytest.ExitCode.INTERRUPTED  # collection errors stop the session
    out = done.stdout.str()
    assert "error: suites/bad.yaml" in out and "Traceback" not in out


def test_without_the_flag_the_plugin_does_nothing(pytester: pytest.Pytester, suites: Path) -> None:
    pytester.makepyfile(
        test_plain="""
        import sys

        def test_plain():
            assert "prompttest.pytest_plugin" in sys.modules  # loaded through its entry point
            assert "litellm" not in sys.modules and "prompttest.session" not in sys.modules
        """
    )
    done = pytester.runpytest_subprocess()
    done.assert_outcomes(passed=1)  # and no item for suites/geo.yaml
    assert not (suites / ".prompttest").exists()


def test_a_fresh_interpreter_runs_and_updates_the_suites(
    pytester: pytest.Pytester, suites: Path, fake_server: FakeServer
) -> None:
    done = pytester.runpytest_subprocess(*QUIET, "--prompttest", "--prompttest-update", "suites")
    done.assert_outcomes(passed=3)
    assert fake_server.count == 3  # the subprocess called the server, once per key
    assert "Lima." in (suites / "snapshots" / "geo.yaml").read_text()


def test_a_suite_that_regressed_as_a_whole_fails_its_pass_rate_item(
    pytester: pytest.Pytester, suites: Path, fake_server: FakeServer
) -> None:
    from test_suite_verdicts import KEYS as NOISY_KEYS
    from test_suite_verdicts import Noise

    cases = "".join(f"  - id: k{i}\n    vars: {{key: {i}}}\n" for i in range(NOISY_KEYS))
    (suites / "suites" / "noisy.yaml").write_text(
        f'target: {{id: fake, model: openai/fake, api_base: "{fake_server.url}"}}\n'
        'prompt: "Answer {{ key }}"\nrepeat: 20\npass: {at_least: 1}\nexpect: [{contains: PASS}]\n'
        f"cases:\n{cases}"
    )
    (suites / "suites" / "geo.yaml").unlink()
    fake_server.reply = Noise(0.8, "before")
    first = pytest_in(pytester, "--prompttest", "--collect-only", "-q")
    assert "suites/noisy.yaml::noisy pass rate@fake" in first.stdout.str()
    pytest_in(pytester, "--prompttest").assert_outcomes(passed=NOISY_KEYS + 1)
    fake_server.reply = Noise(0.65, "after")
    forget_answers(suites)
    done = pytest_in(pytester, "--prompttest", "--prompttest-ci")
    done.stdout.fnmatch_lines(["*noisy pass rate@fake*suite regressed: pass rate*"])
    assert done.ret == 1

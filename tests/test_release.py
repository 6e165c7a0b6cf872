"""The release (issue 19, item 1): `python -m build` makes an sdist, then a wheel from that
sdist, and the wheel installs into a fresh virtual environment and works there, schemas and all.

The build starts from a copy of the files git tracks or would track, so nothing it ignores
(build/, dist/, *.egg-info, caches) can reach the release. The fresh environment gets the wheel alone, with
`--no-index --no-deps`; prompttest's dependencies come from this test's own environment
through a .pth file, so nothing is downloaded. Every command runs the installed console script
from an empty folder, without PYTHONPATH, so the checkout cannot stand in for the package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import replies, require_installed
from fake_server import FakeServer

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
VERSION = PYPROJECT["version"]
ANSWERS = {"France": "Paris is the capital of France.", "Germany": "Berlin is the capital of Germany."}


@dataclass(frozen=True)
class Release:
    tracked: list[str]  # what git tracks (or would: not ignored) below prompttest/
    sdist: Path
    wheel: Path
    venv: Path
    site_packages: Path

    @property
    def prompttest(self) -> Path:
        return self.venv / "bin" / "prompttest"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


def _environment(**extra: str) -> dict[str, str]:
    """This process's environment without what could point Python or pip elsewhere."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "CI")
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in dropped
        and not name.startswith(("PIP_", "PROMPTTEST_"))
        and not name.endswith("_API_KEY")
    }
    env.update(PYTHONNOUSERSITE="1", PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.update(extra)
    return env


def _run(command: list[str | Path], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=_environment(**env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _ok(command: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = _run(command, cwd)
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def _tracked_files() -> list[str]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("the release is built from the files git tracks: needs git and a checkout")
    # Tracked, or new and not ignored: a file about to be committed is checked before it is.
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    return sorted({name for name in listed if name and (REPO / name).is_file()})  # not a deleted one


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    require_installed(
        ("build",),
        "build (PyPA's build frontend)",
        "pip install --require-hashes --no-deps -r requirements-dev.lock",
    )
    root = tmp_path_factory.mktemp("release")
    source, dist, venv = root / "source", root / "dist", root / "venv"
    tracked = _tracked_files()
    for name in tracked:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name, follow_symlinks=False)
    # The sdist, then the wheel built from the unpacked sdist: what a release ships.
    # --no-isolation: the build uses this environment's setuptools, from the hash-locked lock.
    _ok([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, source], root)
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")

    _ok([sys.executable, "-m", "venv", venv], root)
    python = venv / "bin" / "python"
    purelib = _ok([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root)
    site_packages = Path(purelib.stdout.strip())
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    # Appended to sys.path after the fresh environment's own site-packages: the wheel comes first.
    (site_packages / "zz_dependencies.pth").write_text("".join(f"{path}\n" for path in ours))
    _ok([python, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", wheel], root)
    return Release(
        [name for name in tracked if name.startswith("prompttest/")], sdist, wheel, venv, site_packages
    )


def test_the_build_makes_an_sdist_and_a_pure_wheel_named_for_the_version(release: Release) -> None:
    assert release.sdist.name == f"prompttest-{VERSION}.tar.gz"
    assert release.wheel.name == f"prompttest-{VERSION}-py3-none-any.whl"


def test_the_wheel_ships_every_tracked_package_file_the_schemas_and_the_command(release: Release) -> None:
    with zipfile.ZipFile(release.wheel) as wheel:
        names = wheel.namelist()
        info = f"prompttest-{VERSION}.dist-info"
        metadata = wheel.read(f"{info}/METADATA").decode()
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    shipped = {name for name in names if name.startswith("prompttest/")}
    # Every module and every data file, schemas included, and nothing else.
    assert shipped == set(release.tracked)
    assert {"prompttest/schemas/suite.schema.json", "prompttest/schemas/report.schema.json"} <= shipped
    assert all(name.startswith(("prompttest/", f"{info}/")) for name in names), names
    assert f"\nVersion: {VERSION}\n" in metadata
    for requirement in PYPROJECT["dependencies"]:
        assert f"Requires-Dist: {requirement}" in metadata, requirement
    assert "prompttest = prompttest.cli:main" in entry_points


def test_the_sdist_holds_the_sources_the_data_and_the_lock(release: Release) -> None:
    top = f"prompttest-{VERSION}/"
    with tarfile.open(release.sdist) as sdist:
        names = {member.name.removeprefix(top) for member in sdist.getmembers() if member.isfile()}
    assert set(release.tracked) <= names
    assert {"README.md", "pyproject.toml", "PKG-INFO", "requirements.in", "requirements.lock"} <= names
    assert not [name for name in names if name.startswith("tests/") or "__pycache__" in name]


def test_the_installed_package_is_the_wheel_and_reports_the_pyproject_version(
    release: Release, tmp_path: Path
) -> None:
    version = _ok([release.prompttest, "--version"], tmp_path)
    assert version.stdout.strip() == f"prompttest, version {VERSION}"
    code = (
        "import json, prompttest\n"
        "from prompttest.report.jsonreport import report_schema\n"
        "from prompttest.suites.schema import suite_schema\n"
        "print(json.dumps([prompttest.__file__, prompttest.__version__,"
        " report_schema()['title'], suite_schema()['title']]))\n"
    )
    where, installed, *titles = json.loads(_ok([release.python, "-c", code], tmp_path).stdout)
    assert Path(where).is_relative_to(release.site_packages), where
    assert installed == VERSION
    assert all(titles)


def test_init_validate_and_run_against_a_server_in_a_fresh_project(
    release: Release, tmp_path: Path, fake_server: FakeServer
) -> None:
    team = tmp_path / "team"
    team.mkdir()
    init = _ok([release.prompttest, "init"], team)
    assert "created suites/example.yaml" in init.stdout
    assert (team / "pyproject.toml").is_file() and (team / "snapshots").is_dir()
    _ok([release.prompttest, "validate"], team)

    # The example suite, against an OpenAI-compatible server, with a dummy key.
    target = ["-m", "openai/fake", "--api-base", fake_server.url]
    fake_server.reply = replies(ANSWERS)
    first = _run([release.prompttest, "run", *target], team, OPENAI_API_KEY="sk-dummy")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "2 new" in first.stdout
    assert fake_server.count == 2
    assert fake_server.requests[0].headers["authorization"] == "Bearer sk-dummy"
    assert "Paris" in (team / "snapshots" / "example.yaml").read_text()

    gate = [release.prompttest, "run", "--ci", "--no-cache", "--json", "report.json", *target]
    unchanged = _run(gate, team, OPENAI_API_KEY="sk-dummy")
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    assert "2 unchanged" in unchanged.stdout
    check_report = (
        "import json, jsonschema\n"
        "from prompttest.report.jsonreport import report_schema\n"
        "jsonschema.validate(json.load(open('report.json')), report_schema())\n"
    )
    _ok([release.python, "-c", check_report], team)

    fake_server.reply = replies({"France": "Lyon.", "Germany": ANSWERS["Germany"]})
    regressed = _run(gate, team, OPENAI_API_KEY="sk-dummy")
    assert regressed.returncode == 1, regressed.stdout + regressed.stderr
    assert "1 regressed" in regressed.stdout

"""What gets installed is what was vetted: one litellm version everywhere, every locked
package pinned with its hashes, installs from a lock that enforce them, and no lock that
points pip at another index."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LOCKS = sorted(REPO.glob("requirements*.lock"))
SCRIPTS = sorted(REPO.glob("scripts/*.sh")) + sorted(REPO.glob(".ci/*"))
# Files that tell people how to install from a lock; a copied command should be a safe one.
DOCS = (
    [REPO / "README.md", REPO / "action.yml"]
    + sorted(REPO.glob("docs/**/*.md"))
    + sorted(REPO.glob("docs/**/*.yml"))
    + sorted(REPO.glob("benchmarks/*.md"))
    + sorted(REPO.glob("requirements*.in"))
)
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(?P<version>[^\s;\\]+)")
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}\b")
INDEX_OPTIONS = ("-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--trusted-host")


def _entries(lock: Path) -> list[tuple[int, str]]:
    """Each requirement of a lock with its continuation lines joined, and its first line."""
    entries: list[tuple[int, str]] = []
    for number, line in enumerate(lock.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and entries:
            entries[-1] = (entries[-1][0], entries[-1][1] + " " + line.strip())
        else:
            entries.append((number, line.strip()))
    return entries


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for _, entry in _entries(path):
        match = PIN.match(entry)
        if match:
            pins[match["name"].lower().replace("_", "-")] = match["version"]
    return pins


def _commands(path: Path) -> list[str]:
    """Shell commands in a file, continuation lines (`\\`) joined."""
    text = path.read_text(encoding="utf-8")
    return [" ".join(command.split()) for command in re.sub(r"\\\n", " ", text).splitlines()]


def test_the_repository_has_the_locks_and_scripts_this_file_checks() -> None:
    names = {lock.name for lock in LOCKS}
    assert {"requirements.lock", "requirements-dev.lock", "requirements-local.lock"} <= names
    assert any(path.name == "install.sh" for path in SCRIPTS)


def test_the_installed_litellm_is_the_one_pinned_everywhere() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    declared = [d for d in pyproject["project"]["dependencies"] if re.match(r"litellm\b", d)]
    assert len(declared) == 1
    pinned = declared[0].partition("==")[2]
    assert re.fullmatch(r"\d+(\.\d+)+", pinned), f"pyproject.toml must pin litellm exactly: {declared[0]}"
    assert _pins(REPO / "requirements.in")["litellm"] == pinned
    for lock in ("requirements.lock", "requirements-dev.lock"):
        assert _pins(REPO / lock)["litellm"] == pinned, lock
    assert metadata.version("litellm") == pinned


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.name)
def test_every_locked_package_is_pinned_with_its_hashes(lock: Path) -> None:
    entries = _entries(lock)
    assert entries, f"{lock.name} locks nothing"
    for number, entry in entries:
        if entry.startswith("-"):
            continue  # options: checked below
        assert PIN.match(entry), f"{lock.name}:{number}: not pinned with ==: {entry[:80]}"
        assert HASH.search(entry), f"{lock.name}:{number}: no --hash=sha256: for {entry.split()[0]}"
        assert not re.search(r"--hash=(?!sha256:)", entry), f"{lock.name}:{number}: a hash other than sha256"


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.name)
def test_no_lock_names_an_index_or_a_host(lock: Path) -> None:
    for number, entry in _entries(lock):
        option = entry.split()[0].split("=")[0]
        assert option not in INDEX_OPTIONS, f"{lock.name}:{number}: {entry}"
        assert not option.startswith("-e") and option != "--editable", f"{lock.name}:{number}: {entry}"
    for number, line in enumerate(lock.read_text(encoding="utf-8").splitlines(), start=1):
        assert "://" not in line and " @ " not in line, f"{lock.name}:{number}: {line.strip()}"


@pytest.mark.parametrize("path", SCRIPTS + DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_install_from_a_lock_requires_hashes(path: Path) -> None:
    for command in _commands(path):
        if re.search(r"\bpip3?\b.*\binstall\b.*\s(-r\s*|--requirement[ =])\S*\.lock\b", command):
            assert "--require-hashes" in command, f"{path.relative_to(REPO)}: {command}"


def test_the_install_script_installs_every_lock_but_the_base_one_it_includes() -> None:
    # requirements-dev.lock holds everything requirements.lock does, and more.
    commands = " ".join(_commands(REPO / "scripts" / "install.sh"))
    installed = set(re.findall(r"-r\s+(requirements[\w-]*\.lock)", commands))
    assert installed == {lock.name for lock in LOCKS} - {"requirements.lock"}
    assert set(_pins(REPO / "requirements.lock").items()) <= set(
        _pins(REPO / "requirements-dev.lock").items()
    )

"""review, accept and reject: decisions on the last run's pending changes."""

from __future__ import annotations

import pytest
from conftest import GEO_SUITE, Project, replies
from terminal import drive_review

FIRST = {"France": "Paris.", "Japan": "Tokyo.", "Peru": "Lima."}
SECOND = {"France": "Lyon.", "Japan": "Tokyo!", "Peru": "Lima, Peru."}


@pytest.fixture
def pending(project: Project, capsys: pytest.CaptureFixture[str]) -> Project:
    """A project whose last run has three pending changes: one regressed, two changed."""
    project.suite("geo", GEO_SUITE)
    project.server.reply = replies(FIRST)
    assert project.run("run", capsys=capsys).code == 0
    project.server.reply = replies(SECOND)
    result = project.run("run", "--no-cache", capsys=capsys)
    assert "1 regressed" in result.out and "2 changed" in result.out
    assert "prompttest review" in result.out
    return project


def test_accept_writes_every_pending_change(pending: Project, capsys: pytest.CaptureFixture[str]) -> None:
    result = pending.run("accept", capsys=capsys)
    assert result.code == 0
    assert "3 change(s) accepted; wrote snapshots/geo.yaml" in result.out
    snapshot = pending.snapshot("geo")
    assert "Lyon." in snapshot and "Tokyo!" in snapshot and "Lima, Peru." in snapshot
    assert "'contains: Paris': fail" in snapshot
    again = pending.run("accept", capsys=capsys)
    assert "0 change(s) accepted" in again.out  # nothing is pending once accepted


def test_accept_with_a_filter_takes_only_matching_keys(
    pending: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    before = pending.snapshot("geo")
    result = pending.run("accept", "-k", "*peru*", capsys=capsys)
    assert "1 change(s) accepted" in result.out
    after = pending.snapshot("geo")
    assert "Lima, Peru." in after and "Paris." in after and "Lyon." not in after
    assert after != before


def test_reject_keeps_the_snapshot_and_the_change_stops_being_pending(
    pending: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    before = pending.tree()
    result = pending.run("reject", "-k", "*france*", capsys=capsys)
    assert "1 change(s) rejected" in result.out
    assert pending.tree() == before
    accepted = pending.run("accept", capsys=capsys)
    assert "2 change(s) accepted" in accepted.out
    assert "Paris." in pending.snapshot("geo")


def test_accept_without_any_run_is_a_clear_error(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    result = project.run("accept", capsys=capsys)
    assert result.code == 2
    assert "no run to review yet" in result.err


def test_review_without_a_terminal_exits_2_naming_the_other_commands(
    pending: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    result = pending.run("review", capsys=capsys)
    assert result.code == 2
    assert "prompttest accept" in result.err and "prompttest reject" in result.err


def test_review_in_a_real_terminal_applies_decisions_once_at_the_end(pending: Project) -> None:
    code, screen = drive_review(str(pending.root), ["a", "r", "s"])
    assert code == 0, screen
    assert "[1/3] REGRESSED  geo/france@fake" in screen  # regressions first
    assert "✗ contains: Paris: expected 'Paris' in output (was pass)" in screen
    assert "-Paris." in screen and "+Lyon." in screen
    assert "\x1b[" in screen  # coloured
    assert "1 accepted, 1 rejected, 1 left pending" in screen
    snapshot = pending.snapshot("geo")
    assert "Lyon." in snapshot  # accepted
    assert screen.index("[1/3] REGRESSED") < screen.index("[2/3] CHANGED") < screen.index("[3/3] CHANGED")


def test_review_capital_letters_decide_for_all_that_remain(pending: Project) -> None:
    code, screen = drive_review(str(pending.root), ["s", "A"])
    assert code == 0, screen
    assert "2 accepted, 0 rejected, 1 left pending" in screen
    code, screen = drive_review(str(pending.root), ["q"])
    assert "[1/1]" in screen and "0 accepted, 0 rejected, 1 left pending" in screen


@pytest.mark.parametrize("command", ["accept", "reject"])
def test_a_filter_matching_no_key_of_the_run_is_an_error_with_a_suggestion(
    pending: Project, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    before = pending.tree(include_state=True)
    result = pending.run(command, "-k", "geo/franse@fake", capsys=capsys)
    assert result.code == 2, result
    assert "'geo/franse@fake' matches no key of run" in result.err
    assert "hint: did you mean 'geo/france@fake'?" in result.err
    assert pending.tree(include_state=True) == before  # nothing decided, nothing written


def test_a_filter_matching_keys_with_nothing_pending_is_no_error(
    pending: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    assert pending.run("accept", "-k", "*peru*", capsys=capsys).code == 0
    again = pending.run("accept", "-k", "*peru*", capsys=capsys)
    assert again.code == 0 and "0 change(s) accepted" in again.out


def test_review_names_an_unknown_key_and_asks_again(pending: Project) -> None:
    code, screen = drive_review(str(pending.root), ["x", "a", "q"])
    assert code == 0, screen
    assert "unknown key 'x'" in screen
    assert "1 accepted, 0 rejected, 2 left pending" in screen
    assert "Lyon." in pending.snapshot("geo")

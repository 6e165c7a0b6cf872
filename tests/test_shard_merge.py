"""`--shard I/N` on run, list and --dry-run, and `prompttest merge` of the shards' runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Project

from prompttest.records.runs import RunRecord, read_run
from prompttest.session.merge import MergeError, merge_records
from prompttest.suites.shards import Shard, parse_shard, shard_of

# Eight cases; with N=3 the hash puts c1 in shard 1, c2 c5 c6 in shard 2, c0 c3 c4 c7 in shard 3.
CASES = "".join(f"  - {{id: c{i}, vars: {{word: w{i}}}, expect: [{{contains: w{i}}}]}}\n" for i in range(8))
SUITE = (
    'target: {id: fake, model: openai/fake, api_base: "{api_base}"}\nprompt: "Say {{ word }}"\ncases:\n'
    + CASES
)
ALL_KEYS = {f"cap/c{i}@fake" for i in range(8)}


def runs_dir(project: Project) -> Path:
    return project.root / ".prompttest" / "runs"


def last_record(project: Project) -> Path:
    return sorted(runs_dir(project).glob("*.json"))[-1]


def run_shards(project: Project, capsys: pytest.CaptureFixture[str], n: int, *extra: str) -> list[Path]:
    """`run --ci --shard i/n` for every i; the record path of each."""
    paths = []
    for i in range(1, n + 1):
        project.run("run", "--ci", "--shard", f"{i}/{n}", *extra, capsys=capsys)
        paths.append(last_record(project))
    return paths


def keys_of(path: Path) -> set[str]:
    return {r.key for r in read_run(path).results}


# --------------------------------------------------------------------------- shards


def test_a_keys_shard_is_a_hash_of_the_key_not_its_position() -> None:
    keys = [f"s/case{i}@m" for i in range(400)]
    before = {key: shard_of(key, 4) for key in keys}
    grown = ["s/new@m", *keys[:100], "s/other@m", *keys[100:]]  # cases added, order changed
    assert all(shard_of(key, 4) == before[key] for key in grown if key in before)
    sizes = [list(before.values()).count(i) for i in range(1, 5)]
    assert min(sizes) > 60  # about 100 each
    assert shard_of("cap/c1@fake", 3) == 1 and shard_of("cap/c0@fake", 3) == 3  # fixed by sha256


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "x", "1", "1/2/3", "-1/2", ""])
def test_bad_shards_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_shard(text)


def test_parse_shard() -> None:
    assert parse_shard(" 2/4 ") == Shard(2, 4) and str(Shard(2, 4)) == "2/4"


def test_a_bad_shard_is_a_usage_error(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.suite("cap", SUITE)
    done = project.run("run", "--shard", "4/3", capsys=capsys)
    assert done.code == 2 and "1 <= I <= N" in done.err
    assert project.server.count == 0 and not runs_dir(project).exists()


def test_list_and_dry_run_show_one_slice_and_the_slices_cover_every_key(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite("cap", SUITE)
    slices = []
    for i in (1, 2, 3):
        out = project.run("list", "--shard", f"{i}/3", capsys=capsys).out
        slices.append({line.split("\t")[0] for line in out.splitlines()})
    assert [len(s) for s in slices] == [1, 3, 4]
    assert set.union(*slices) == ALL_KEYS
    dry = project.run("run", "--dry-run", "--shard", "2/3", capsys=capsys)
    assert dry.code == 0 and "3 call(s) to make" in dry.out


def test_a_shard_runs_its_keys_records_its_shard_and_calls_no_other_key_obsolete(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite("cap", SUITE)
    assert project.run("run", capsys=capsys).code == 0  # every key has a snapshot now
    project.server.reset()
    done = project.run("run", "--ci", "--shard", "2/3", capsys=capsys)
    assert done.code == 0 and project.server.count == 0  # cached
    record = read_run(last_record(project))
    assert {r.key for r in record.results} == {"cap/c2@fake", "cap/c5@fake", "cap/c6@fake"}
    assert all(r.verdict.value == "unchanged" for r in record.results)  # no obsolete
    assert record.options["shard"] == [2, 3]


def test_a_shard_writes_only_its_own_new_keys_locally_and_nothing_in_ci(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite("cap", SUITE)
    project.run("run", "--ci", "--shard", "1/3", capsys=capsys)
    assert not (project.root / "snapshots").exists()
    assert project.run("run", "--shard", "1/3", capsys=capsys).code == 0
    assert "c1@fake" in project.snapshot("cap") and "c0@fake" not in project.snapshot("cap")
    project.run("run", "--shard", "2/3", capsys=capsys)  # the second shard keeps the first's keys
    text = project.snapshot("cap")
    assert all(f"c{i}@fake" in text for i in (1, 2, 5, 6)) and "c0@fake" not in text


# --------------------------------------------------------------------------- merge


def test_merging_every_shard_is_the_full_run_with_obsolete_entries(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite("cap", SUITE + "  - {id: gone, vars: {word: gone}}\n")
    project.run("run", capsys=capsys)  # snapshots, with `gone`
    project.suite("cap", SUITE)  # `gone` removed from the suite
    shards = run_shards(project, capsys, 3)
    assert set.union(*(keys_of(p) for p in shards)) == ALL_KEYS
    done = project.run(
        "merge", *map(str, shards), "--json", "merged.json", "--junit", "junit.xml", capsys=capsys
    )
    assert done.code == 0, done.err
    assert "1 obsolete" in done.out and "8 unchanged" in done.out
    report = json.loads((project.root / "merged.json").read_text())
    assert report["summary"]["keys"] == 9 and report["summary"]["verdicts"]["obsolete"] == 1
    assert (project.root / "junit.xml").is_file()
    merged = read_run(last_record(project))  # the merged run is the last run now
    assert merged.id.endswith("-merge") and merged.options["shard"] is None
    assert merged.options["merged_from"] == [p.stem for p in shards]
    assert [r.key for r in merged.results][:2] == ["cap/c0@fake", "cap/c1@fake"]  # suite order
    accepted = project.run("accept", capsys=capsys)  # works from the merged run
    assert "obsolete   cap/gone@fake" in accepted.out
    assert "gone@fake" not in project.snapshot("cap")


def test_merge_exits_as_the_full_run_would(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.suite("cap", SUITE)
    project.run("run", capsys=capsys)
    project.server.reply = lambda request: "nothing"  # every check fails now
    shards = run_shards(project, capsys, 3, "--no-cache")
    done = project.run("merge", *map(str, shards), "--markdown", "summary.md", capsys=capsys)
    assert done.code == 1 and "8 regressed" in done.out
    assert "regressed" in (project.root / "summary.md").read_text()


def test_new_keys_fail_the_merged_ci_run(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.suite("cap", SUITE)
    shards = run_shards(project, capsys, 2)
    done = project.run("merge", *(p.stem for p in shards), capsys=capsys)  # run ids work too
    assert done.code == 1 and "8 new" in done.out


def test_overlapping_runs_are_refused_by_name(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.suite("cap", SUITE)
    shards = run_shards(project, capsys, 3)
    project.run("run", "--ci", "--shard", "2/3", capsys=capsys)
    again = last_record(project)
    done = project.run("merge", *map(str, shards), str(again), capsys=capsys)
    assert done.code == 2
    assert f"runs {shards[1].stem} and {again.stem} are both shard 2/3" in done.err
    same = project.run("merge", *map(str, shards), str(shards[0]), capsys=capsys)
    assert same.code == 2 and f"run {shards[0].stem} is given twice" in same.err
    assert sorted(runs_dir(project).glob("*.json"))[-1] == again  # nothing was written


def test_runs_of_another_split_or_with_other_options_are_refused(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite("cap", SUITE)
    halves = run_shards(project, capsys, 2)
    thirds = run_shards(project, capsys, 3)
    done = project.run("merge", str(halves[0]), *map(str, thirds[1:]), capsys=capsys)
    assert done.code == 2 and "split the keys in different ways" in done.err
    assert f"run {halves[0].stem} is shard 1/2" in done.err
    project.run("run", "--ci", "--shard", "2/2", "--repeat", "2", capsys=capsys)
    done = project.run("merge", str(halves[0]), str(last_record(project)), capsys=capsys)
    assert done.code == 2 and "different options (repeat: None vs 2)" in done.err
    assert halves[0].stem in done.err


def test_missing_shards_are_an_error_unless_allowed(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite("cap", SUITE + "  - {id: gone, vars: {word: gone}}\n")
    project.run("run", capsys=capsys)
    project.suite("cap", SUITE)
    first, _, third = run_shards(project, capsys, 3)
    done = project.run("merge", str(first), str(third), capsys=capsys)
    assert done.code == 2 and "shard(s) 2 of 3 missing" in done.err and "--allow-partial" in done.err
    done = project.run("merge", "--allow-partial", str(first), str(third), capsys=capsys)
    assert done.code == 0 and "warning: partial merge: shard(s) 2 of 3 missing" in done.err
    merged = read_run(last_record(project))
    assert len(merged.results) == 5 and all(r.verdict.value == "unchanged" for r in merged.results)


def test_a_run_without_a_shard_cannot_be_merged(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.suite("cap", SUITE)
    project.run("run", "--ci", capsys=capsys)
    done = project.run("merge", "last", capsys=capsys)
    assert done.code == 2 and "is not a shard run" in done.err


def test_merge_does_not_look_for_obsolete_entries_when_the_suites_moved_on(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.suite("cap", SUITE)
    project.run("run", capsys=capsys)
    records = [read_run(p) for p in run_shards(project, capsys, 3)]
    project.suite("cap", SUITE + "  - {id: added, vars: {word: added}}\n")
    from prompttest.config import load_project

    merged = merge_records(records, project=load_project(project.root))
    assert not merged.obsolete_checked and "1 key(s) no shard ran" in merged.warnings[0]
    assert len(merged.record.results) == 8


def test_merge_records_needs_records() -> None:
    with pytest.raises(MergeError, match="nothing to merge"):
        merge_records([])
    for broken in ([3, 2], "1/2", [1]):
        with pytest.raises(MergeError, match="run x: "):
            merge_records([RunRecord(id="x", started_at="", wall_s=0, results=(), options={"shard": broken})])

"""The history store: every run appended to `.prompttest/history.sqlite`, for trends over time.

One SQLite file (stdlib sqlite3) in WAL mode with a busy timeout, so runs that finish at
once both land. Its `application_id` marks it as prompttest's: a file that is not a SQLite
database, or is another application's, is refused with a clear error and never written.
The schema carries its version in `meta`; an older one is migrated, a newer one refused.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ..errors import HistoryError
from ..model import Result, Verdict
from .runs import RunRecord

APP_ID = 0x50525448  # "PRTH": what marks a SQLite file as prompttest's history
SCHEMA_VERSION = 3
BUSY_MS = 30_000  # how long a writer waits for another run's transaction
OUTPUT_CHARS = 200  # of each key's output kept for `history --key`
_MAGIC = b"SQLite format 3\x00"
_HINT = "history.sqlite is prompttest's own file; move this one away and the next run starts a new one"

# Every column the trends read (history_series), so they are summed from this index alone,
# never from the wide rows (outputs, checks): 100 runs × 10,000 keys in 0.4 s instead of 3 s.
_TREND_COLUMNS = (
    "run_id, suite, target, verdict, passed, cached, latency_ms, prompt_tokens, completion_tokens, "
    "cost_usd, output_hash"
)
_SCHEMA = f"""
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    id TEXT PRIMARY KEY, started_at TEXT NOT NULL, wall_s REAL, ci INTEGER, "update" INTEGER,
    interrupted INTEGER, options TEXT, git_commit TEXT, git_branch TEXT, calls INTEGER,
    cache_hits INTEGER, keys INTEGER, passed INTEGER, cost_usd REAL
);
CREATE INDEX runs_started ON runs (started_at);
CREATE TABLE keys (
    run_id TEXT NOT NULL, key TEXT NOT NULL, suite TEXT, target TEXT, "case" TEXT, model TEXT,
    verdict TEXT, passed INTEGER, checks_passed INTEGER, checks_total INTEGER, checks TEXT,
    latency_ms REAL, prompt_tokens INTEGER, completion_tokens INTEGER, cost_usd REAL,
    cached INTEGER, error TEXT, output_hash TEXT, output TEXT, request TEXT,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX keys_suite_target ON keys (suite, target, run_id);
CREATE INDEX keys_key ON keys (key, run_id);
CREATE INDEX keys_trend ON keys ({_TREND_COLUMNS});
"""
# Steps from version N to N + 1, applied in order to an older file when it is opened.
_MIGRATIONS: dict[int, str] = {
    1: f"CREATE INDEX keys_trend ON keys ({_TREND_COLUMNS})",
    # The hash of a key's rendered prompt and params: `history --check` tells a model swapped
    # behind its name (same request, another answer) from a prompt edit. Older rows keep NULL.
    2: "ALTER TABLE keys ADD COLUMN request TEXT",
}


@dataclass(frozen=True)
class GitInfo:
    commit: str | None = None
    branch: str | None = None


def history_path(state_dir: Path) -> Path:
    return state_dir / "history.sqlite"


def open_history(path: Path, *, create: bool = True) -> sqlite3.Connection | None:
    """A connection to the history, made ready (created or migrated) when `create`;
    None when there is no history file and `create` is false."""
    if not _usable(path, create=create):
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, timeout=BUSY_MS / 1000, isolation_level=None)
    except sqlite3.Error as exc:
        raise HistoryError(f"cannot open the history database: {exc}", file=str(path), hint=_HINT) from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
        _ready(conn, path)
        conn.execute("PRAGMA journal_mode = WAL")
    except sqlite3.Error as exc:
        conn.close()
        raise _broken(path, exc) from None
    except BaseException:
        conn.close()
        raise
    return conn


def _usable(path: Path, *, create: bool) -> bool:
    """Does `path` hold (or may it get) a SQLite database? Looked at before SQLite touches it."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_MAGIC))
    except FileNotFoundError:
        return create
    except OSError as exc:
        raise HistoryError(
            f"cannot read the history database: {exc.strerror or exc}", file=str(path)
        ) from None
    if head and head != _MAGIC:
        raise HistoryError(
            "not a SQLite database (corrupt, or another kind of file)", file=str(path), hint=_HINT
        )
    return True  # an empty file is one being created by another run


def _ready(conn: sqlite3.Connection, path: Path) -> None:
    """Check the file is ours and its schema current; create it in an empty file."""
    if _app_id(conn) == APP_ID and _version(conn) == SCHEMA_VERSION:
        return  # the common case: nothing to write
    conn.execute("BEGIN IMMEDIATE")  # one run creates or migrates, the others wait and see it done
    try:
        app = _app_id(conn)
        if app == 0 and not conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            _script(conn, _SCHEMA)
            conn.execute(f"PRAGMA application_id = {APP_ID}")
            conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif app != APP_ID:
            raise HistoryError(
                "another application's SQLite database, not prompttest's history", file=str(path), hint=_HINT
            )
        else:
            _migrate(conn, path)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = _version(conn)
    if version > SCHEMA_VERSION:
        raise HistoryError(
            f"the history database has schema version {version}; this prompttest reads up to "
            f"{SCHEMA_VERSION}",
            file=str(path),
            hint="upgrade prompttest",
        )
    for step in range(version, SCHEMA_VERSION):
        _script(conn, _MIGRATIONS[step])
    conn.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(SCHEMA_VERSION),))


def _script(conn: sqlite3.Connection, script: str) -> None:
    """Statements one at a time: `executescript` would commit the transaction they are part of."""
    for statement in filter(str.strip, script.split(";")):
        conn.execute(statement)


def _app_id(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA application_id").fetchone()[0])


def _version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def _broken(path: Path, exc: sqlite3.Error) -> HistoryError:
    return HistoryError(f"cannot use the history database: {exc}", file=str(path), hint=_HINT)


def append_run(
    conn: sqlite3.Connection,
    record: RunRecord,
    *,
    git: GitInfo = GitInfo(),
    keep_days: int = 0,
    now: datetime | None = None,
    path: Path | None = None,
) -> str:
    """Add a run in one transaction: "added", "present" (its id is there: skipped) or
    "expired" (older than `keep_days`, so not kept). Runs past `keep_days` are deleted."""
    cutoff = _cutoff(keep_days, now)
    if cutoff and record.started_at < cutoff:
        return "expired"
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            status = _insert(conn, record, git)
            if cutoff:
                old = "SELECT id FROM runs WHERE started_at < ?"
                conn.execute(f"DELETE FROM keys WHERE run_id IN ({old})", (cutoff,))
                conn.execute("DELETE FROM runs WHERE started_at < ?", (cutoff,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise _broken(path or Path("history.sqlite"), exc) from None
    return status


def _insert(conn: sqlite3.Connection, record: RunRecord, git: GitInfo) -> str:
    if conn.execute("SELECT 1 FROM runs WHERE id = ?", (record.id,)).fetchone():
        return "present"
    summary = record.summary()
    conn.execute(
        "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.id,
            record.started_at,
            round(record.wall_s, 3),
            record.ci,
            record.update,
            record.interrupted,
            json.dumps(record.options, sort_keys=True),
            git.commit,
            git.branch,
            record.calls,
            record.cache_hits,
            summary["keys"],
            summary["passed"],
            summary["cost_usd"],
        ),
    )
    conn.executemany(
        "INSERT OR REPLACE INTO keys VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        _key_rows(record),
    )
    return "added"


def _key_rows(record: RunRecord) -> Iterator[tuple[object, ...]]:
    for result in record.results:
        if result.verdict is Verdict.OBSOLETE:
            continue  # a snapshot entry no key produced: nothing ran
        text = _answer(result)
        checks = [
            {"label": c.label, "passed": c.passed, "passed_count": c.passed_count, "samples": c.samples}
            for c in result.checks
        ]
        yield (
            record.id,
            result.key,
            result.suite,
            result.target,
            result.case,
            result.model,
            result.verdict.value,
            result.passed,
            sum(c.passed for c in result.checks),
            len(result.checks),
            json.dumps(checks),
            result.latency_ms,
            result.prompt_tokens,
            result.completion_tokens,
            result.cost_usd,
            result.cached,
            (result.error or "")[:OUTPUT_CHARS] or None,
            None if text is None else hashlib.sha256(text.encode()).hexdigest()[:16],
            None if text is None else text[:OUTPUT_CHARS],
            result.request or None,  # a hash of prompt and params, never their text
        )


def _answer(result: Result) -> str | None:
    """What the key answered, every sample of a repeated key: its hash tells a change."""
    if len(result.outputs) > 1:
        return "\n\x1e".join(result.outputs)
    return result.answer


def _cutoff(keep_days: int, now: datetime | None) -> str | None:
    """The oldest start kept, as the ISO text runs are stamped with; None keeps every run."""
    if keep_days <= 0:
        return None
    moment = (now or datetime.now(UTC)) - timedelta(days=keep_days)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def git_info(root: Path) -> GitInfo:
    """The commit and branch checked out at `root`, if git answers quickly; None each if not."""
    return GitInfo(_git(root, "rev-parse", "HEAD"), _git(root, "rev-parse", "--abbrev-ref", "HEAD"))


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=2, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = done.stdout.strip()
    return value if done.returncode == 0 and value and value != "HEAD" else None


def record_run(state_dir: Path, record: RunRecord, *, root: Path, keep_days: int) -> str | None:
    """Append a finished run to the project's history; a warning instead of an error, as a
    history that cannot be written must never fail the run."""
    path = history_path(state_dir)
    try:
        conn = open_history(path)
        assert conn is not None  # created when missing
        try:
            append_run(conn, record, git=git_info(root), keep_days=keep_days, path=path)
        finally:
            conn.close()
    except HistoryError as error:
        return f"history not written: {path.name}: {error.message}"
    except OSError as exc:
        return f"history not written: {path.name}: {exc.strerror or exc}"
    return None

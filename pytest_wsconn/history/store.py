"""The run history on disk: SQLite from the standard library, schema versioned by migrations.

Safe under xdist: every worker appends its own tests to the run they share (one ``run_uid``)
in one ``BEGIN IMMEDIATE`` transaction, and SQLite's busy timeout makes the others wait their
turn instead of failing. The schema's version is SQLite's ``user_version``; ``MIGRATIONS[n]``
takes a history from version n to n+1, so a history written by an older release is upgraded
in place and one written by a newer release is refused, not damaged.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from pytest_wsconn.exceptions import HistoryError
from pytest_wsconn.history.records import LoadRecord, LoadStep, RunRecord, TestRecord
from pytest_wsconn.timing import scaled

BUSY_TIMEOUT = 30.0  # seconds a writer waits for another (xdist workers finish together)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            run_uid TEXT NOT NULL UNIQUE,
            started REAL NOT NULL,
            host TEXT NOT NULL,
            stack TEXT NOT NULL,
            target TEXT,
            git_commit TEXT,
            branch TEXT,
            chaos_seed INTEGER,
            kind TEXT NOT NULL DEFAULT 'pytest'
        )""",
        """CREATE TABLE tests (
            run_id INTEGER NOT NULL REFERENCES runs(id),
            test_id TEXT NOT NULL,
            worker TEXT,
            outcome TEXT NOT NULL,
            duration REAL NOT NULL,
            attempts INTEGER NOT NULL,
            categories TEXT NOT NULL,
            handshakes_ms TEXT NOT NULL,
            handshake_p50 REAL,
            handshake_p95 REAL,
            fault_kind TEXT,
            fault TEXT,
            close_codes TEXT NOT NULL
        )""",
        "CREATE INDEX tests_by_run ON tests(run_id)",
    ),
    (  # 2: load runs (``wsconn load --history``): the summary and its steps
        """CREATE TABLE loads (
            run_id INTEGER PRIMARY KEY REFERENCES runs(id),
            scenario TEXT NOT NULL,
            users INTEGER NOT NULL,
            duration_s REAL NOT NULL,
            passed INTEGER NOT NULL,
            problems TEXT NOT NULL
        )""",
        """CREATE TABLE load_steps (
            run_id INTEGER NOT NULL REFERENCES runs(id),
            step TEXT NOT NULL,
            requests INTEGER NOT NULL,
            failures INTEGER NOT NULL,
            rate REAL NOT NULL,
            p50_ms REAL,
            p95_ms REAL,
            p99_ms REAL,
            max_ms REAL
        )""",
    ),
    (  # 3: a failing test's connection timeline, for the dashboard's last-run failures
        "ALTER TABLE tests ADD COLUMN timeline TEXT",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken at once (``IMMEDIATE``), committed or rolled back."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _migrate(connection: sqlite3.Connection, path: Path) -> None:
    with _transaction(connection):
        version = int(connection.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"the history {path} has schema {version}; this pytest-wsconn reads up to "
                f"{SCHEMA_VERSION}",
                hint="upgrade pytest-wsconn, or point --wsconn-history at another file",
            )
        for number, statements in enumerate(MIGRATIONS[version:], version + 1):
            for statement in statements:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {number}")


@contextlib.contextmanager
def open_history(path: Path, *, create: bool = True) -> Iterator[sqlite3.Connection]:
    """The history at ``path``, migrated to this release's schema; closed on exit."""
    if not create and not path.is_file():
        raise HistoryError(
            f"no history at {path}",
            hint="a run with --wsconn-history PATH (or --wsconn-chaos) writes one",
        )
    try:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=scaled(BUSY_TIMEOUT), isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise HistoryError(f"cannot open the history {path}: {exc}") from None
    try:
        _migrate(connection, path)
        yield connection
    except sqlite3.DatabaseError as exc:
        raise HistoryError(f"the history {path} cannot be used: {exc}") from None
    finally:
        connection.close()


def append(path: Path, run: RunRecord) -> None:
    """Add ``run``'s tests to the history, creating the run on first write (xdist: per worker)."""
    with open_history(path) as connection, _transaction(connection):
        connection.execute(
            "INSERT OR IGNORE INTO runs (run_uid, started, host, stack, target, git_commit, "
            "branch, chaos_seed, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run.run_uid,
                run.started,
                run.host,
                run.stack,
                run.target,
                run.commit,
                run.branch,
                run.chaos_seed,
                run.kind,
            ),
        )
        connection.execute(  # the earliest worker's start is the run's
            "UPDATE runs SET started = min(started, ?) WHERE run_uid = ?",
            (run.started, run.run_uid),
        )
        (run_id,) = connection.execute(
            "SELECT id FROM runs WHERE run_uid = ?", (run.run_uid,)
        ).fetchone()
        connection.executemany(
            "INSERT INTO tests (run_id, test_id, worker, outcome, duration, attempts, "
            "categories, handshakes_ms, handshake_p50, handshake_p95, fault_kind, fault, "
            "close_codes, timeline) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run_id,
                    test.test_id,
                    test.worker,
                    test.outcome,
                    test.duration,
                    test.attempts,
                    json.dumps(test.categories),
                    json.dumps(test.handshakes_ms),
                    test.handshake_p50,
                    test.handshake_p95,
                    test.fault_kind,
                    test.fault,
                    json.dumps(test.close_codes),
                    test.timeline,
                )
                for test in run.tests
            ],
        )
        if run.load is not None:
            _append_load(connection, run_id, run.load)


def _append_load(connection: sqlite3.Connection, run_id: int, load: LoadRecord) -> None:
    connection.execute(
        "INSERT INTO loads (run_id, scenario, users, duration_s, passed, problems) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            run_id,
            load.scenario,
            load.users,
            load.duration_s,
            load.passed,
            json.dumps(load.problems),
        ),
    )
    connection.executemany(
        "INSERT INTO load_steps (run_id, step, requests, failures, rate, p50_ms, p95_ms, "
        "p99_ms, max_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (run_id, s.name, s.requests, s.failures, s.rate, s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms)
            for s in load.steps
        ],
    )


def _read_loads(connection: sqlite3.Connection) -> dict[int, LoadRecord]:
    steps: dict[int, list[LoadStep]] = {}
    for row in connection.execute(
        "SELECT run_id, step, requests, failures, rate, p50_ms, p95_ms, p99_ms, max_ms "
        "FROM load_steps ORDER BY rowid"
    ):
        steps.setdefault(row[0], []).append(LoadStep(*row[1:]))
    return {
        row[0]: LoadRecord(
            row[1],
            row[2],
            row[3],
            bool(row[4]),
            tuple(json.loads(row[5])),
            tuple(steps.get(row[0], ())),
        )
        for row in connection.execute(
            "SELECT run_id, scenario, users, duration_s, passed, problems FROM loads"
        )
    }


def read(path: Path) -> list[RunRecord]:
    """Every run in the history with its tests, oldest first."""
    with open_history(path, create=False) as connection:
        tests: dict[int, list[TestRecord]] = {}
        for row in connection.execute(
            "SELECT run_id, test_id, outcome, duration, attempts, categories, handshakes_ms, "
            "fault_kind, fault, close_codes, worker, timeline FROM tests ORDER BY rowid"
        ):
            tests.setdefault(row[0], []).append(
                TestRecord(
                    row[1],
                    row[2],
                    row[3],
                    row[4],
                    tuple(json.loads(row[5])),
                    tuple(json.loads(row[6])),
                    row[7],
                    row[8],
                    tuple(json.loads(row[9])),
                    row[10],
                    row[11],
                )
            )
        loads = _read_loads(connection)
        return [
            RunRecord(
                run_uid=row[1],
                started=row[2],
                host=row[3],
                stack=row[4],
                target=row[5],
                commit=row[6],
                branch=row[7],
                chaos_seed=row[8],
                kind=row[9],
                tests=tuple(tests.get(row[0], ())),
                id=row[0],
                load=loads.get(row[0]),
            )
            for row in connection.execute(
                "SELECT id, run_uid, started, host, stack, target, git_commit, branch, "
                "chaos_seed, kind FROM runs ORDER BY id"
            )
        ]

"""A brand-new store opened by several processes at once: each waits for the others' switch
to WAL as for any write, and a store that stays locked is said to after the busy timeout."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import StoreError
from preform_pipeline.store import SqliteJobStore
from preform_pipeline.store import sqlite as sqlite_store
from tests.conftest import REPO_ROOT

#: How long the other process holds the new file's write lock in the in-process tests: far
#: longer than opening takes to reach its switch to WAL, far shorter than the busy timeout.
HELD_S = 0.3
#: Generous bounds: worker processes start in about a second and open a store in milliseconds.
WORKER_TIMEOUT_S = 60.0
#: Processes opening each new store together: one creates it, the others open it as soon as
#: the file is there. Rounds of them: the old switch failed about once in 40 pairs. 16 rounds
#: caught it in 4 of 12 runs, as 24 did (rv42-race), for two thirds of the time.
OPENERS = 3
ROUNDS = 16


@pytest.fixture
def new_store(tmp_path: Path) -> Path:
    """Where a store is about to be made: nothing is there yet."""
    return tmp_path / "jobs.sqlite3"


class _ErrorsWithoutCodes(sqlite3.Connection):
    """A connection whose errors carry no ``sqlite_errorcode`` or ``sqlite_errorname``, as
    on Python 3.10 (which ``requires-python`` still takes): only SQLite's text."""

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        try:
            return super().execute(sql, *args)
        except sqlite3.OperationalError as exc:
            exc.__dict__.pop("sqlite_errorcode", None)
            exc.__dict__.pop("sqlite_errorname", None)
            raise


@pytest.fixture(params=["3.11", "3.10"])
def python_errors(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The sqlite3 errors of Python 3.11 and later, or of 3.10 (no error codes)."""
    if request.param == "3.10":
        def connect(store: SqliteJobStore, database: str, *,
                    uri: bool = False) -> sqlite3.Connection:
            return sqlite3.connect(database, timeout=store.busy_timeout_s, isolation_level=None,
                                   check_same_thread=False, uri=uri,
                                   factory=_ErrorsWithoutCodes)

        monkeypatch.setattr(SqliteJobStore, "_connect", connect)
    return str(request.param)


@contextmanager
def _write_lock_held(path: Path) -> Iterator[sqlite3.Connection]:
    """Another process's write lock on the file (SQLite's RESERVED lock, which a process
    switching a new store to WAL holds while it writes the file's header)."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield other
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()


def _switches_seen(monkeypatch: pytest.MonkeyPatch, released: threading.Event) -> list[bool]:
    """Whether the lock was already let go at each switch to WAL the opener runs."""
    seen: list[bool] = []
    connect = SqliteJobStore._connect

    def traced(store: SqliteJobStore, database: str, *, uri: bool = False) -> sqlite3.Connection:
        conn = connect(store, database, uri=uri)
        conn.set_trace_callback(
            lambda sql: seen.append(released.is_set()) if sql == sqlite_store._TO_WAL else None)
        return conn

    monkeypatch.setattr(SqliteJobStore, "_connect", traced)
    return seen


class TestSwitchToWalWaits:
    """Switching to WAL while another process holds the write lock waits for it."""

    def test_a_new_store_whose_write_lock_is_held_opens_once_it_is_let_go(
        self, new_store: Path, monkeypatch: pytest.MonkeyPatch, python_errors: str
    ) -> None:
        released = threading.Event()
        switches = _switches_seen(monkeypatch, released)
        with _write_lock_held(new_store) as other:

            def let_go() -> None:
                other.execute("ROLLBACK")
                released.set()

            timer = threading.Timer(HELD_S, let_go)
            timer.start()
            try:
                with SqliteJobStore(new_store, create=False) as opened:
                    assert list(opened.list_builds()) == []
            finally:
                timer.cancel()
                timer.join()
        assert switches[0] is False  # the first switch met the held lock
        with sqlite3.connect(new_store) as check:
            assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert check.execute("PRAGMA user_version").fetchone()[0] == (
                sqlite_store.SCHEMA_VERSION)
        check.close()

    def test_a_write_lock_never_let_go_is_reported_after_the_busy_timeout(
        self, new_store: Path
    ) -> None:
        busy_timeout_s = 0.2
        with _write_lock_held(new_store):
            started = time.monotonic()
            with pytest.raises(StoreError, match=r"stayed locked for more than 0[.]2 s while "
                                                 "opening"):
                SqliteJobStore(new_store, busy_timeout_s=busy_timeout_s)
            waited = time.monotonic() - started
        assert waited >= busy_timeout_s  # the message says so: it is true
        assert new_store.stat().st_size == 0  # nothing written to the other's file

    @pytest.mark.parametrize("clock", [None, ManualClock()], ids=["system", "manual"])
    def test_a_read_lock_never_let_go_is_waited_for_once_not_at_every_try(
        self, new_store: Path, clock: ManualClock | None
    ) -> None:
        busy_timeout_s = 0.5
        reader = sqlite3.connect(new_store, isolation_level=None)
        try:
            # A read of the file while it is not WAL yet: the switch gets the write lock and
            # then waits, in SQLite, for this read to end, and is refused after the timeout.
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM sqlite_master").fetchone()
            started = time.monotonic()
            with pytest.raises(StoreError, match=r"stayed locked for more than 0[.]5 s while "
                                                 "opening"):
                SqliteJobStore(new_store, clock=clock, busy_timeout_s=busy_timeout_s)
            waited = time.monotonic() - started
        finally:
            reader.close()
        # Each try would wait the whole timeout again: WAL_SWITCH_TRIES of them, 2.5 s. SQLite
        # waits real time: a manual clock, which never moves by itself, must not count it.
        assert busy_timeout_s <= waited < 3 * busy_timeout_s

    def test_writes_in_a_row_that_refuse_every_switch_are_said_as_they_were(
        self, new_store: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Another process takes the write lock just as each switch starts and lets it go as
        # the opener waits for it: every switch is refused, each wait is short.
        other = sqlite3.connect(new_store, isolation_level=None, check_same_thread=False)
        switches: list[str] = []
        connect = SqliteJobStore._connect

        def writer_in_the_way(sql: str) -> None:
            if sql == sqlite_store._TO_WAL:
                switches.append(sql)
                other.execute("BEGIN IMMEDIATE")
            elif sql == "BEGIN IMMEDIATE" and other.in_transaction:
                other.execute("ROLLBACK")

        def traced(store: SqliteJobStore, database: str, *,
                   uri: bool = False) -> sqlite3.Connection:
            conn = connect(store, database, uri=uri)
            conn.set_trace_callback(writer_in_the_way)
            return conn

        monkeypatch.setattr(SqliteJobStore, "_connect", traced)
        try:
            started = time.monotonic()
            with pytest.raises(StoreError) as refused:
                SqliteJobStore(new_store)
            waited = time.monotonic() - started
        finally:
            other.close()
        tries = sqlite_store.WAL_SWITCH_TRIES
        assert len(switches) == tries  # bounded: no endless retry
        assert waited < sqlite_store.DEFAULT_BUSY_TIMEOUT_S
        assert re.fullmatch(
            rf"{re.escape(str(new_store))}: other processes kept the job store locked while "
            rf"opening \({tries} writes in a row refused its switch to WAL in \d+[.]\d s\)",
            refused.value.message)


def _opening_workers(python_exe: str, folder: Path) -> list[subprocess.Popen[str]]:
    roles = ["creator"] + ["opener"] * OPENERS
    return [
        subprocess.Popen(
            [python_exe, "-m", "tests.unit.store.store_workers", "open", str(folder), role],
            cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        for role in roles
    ]


class TestFirstOpeningsAtOnce:
    """Processes that start together on a store not made yet (a daemon creating it while
    ``jobs`` or the dashboard polls for it, two daemons of one lab from systemd) all open it."""

    def test_every_process_opens_each_new_store(self, tmp_path: Path, python_exe: str) -> None:
        workers = _opening_workers(python_exe, tmp_path)
        answers: list[str] = []
        try:
            for worker in workers:
                assert worker.stdout is not None
                assert worker.stdout.readline() == "ready\n"
            for round_ in range(ROUNDS):
                for worker in reversed(workers):  # the openers wait for the file first
                    assert worker.stdin is not None
                    worker.stdin.write(f"jobs-{round_}.sqlite3\n")
                    worker.stdin.flush()
                for worker in workers:
                    assert worker.stdout is not None
                    answers.append(worker.stdout.readline().strip())
        finally:
            for worker in workers:
                assert worker.stdin is not None
                worker.stdin.close()
            deadline = time.monotonic() + WORKER_TIMEOUT_S
            for worker in workers:  # none outlives the test, not even a hung one
                try:
                    worker.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
        assert [a for a in answers if a != "opened"] == []
        assert len(answers) == ROUNDS * len(workers)

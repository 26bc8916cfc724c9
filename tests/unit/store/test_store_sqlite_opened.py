"""Opening a SQLite store: a migration another process makes in the instant before this one's
is not made twice, and a store says whether it is open."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.store import SqliteJobStore
from preform_pipeline.store import sqlite as sqlite_store


def _user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    conn.close()
    return version


class TestMigratedMeanwhile:
    """A schema step another process commits between this opener's two version reads is
    taken as done; the steps after it are made once, by this opener."""

    def test_the_first_step_made_by_another_process_is_left_and_the_rest_made(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = tmp_path / "jobs.sqlite3"
        # The empty WAL file a starting daemon leaves in the instant before it migrates.
        with sqlite3.connect(path) as empty:
            empty.execute("PRAGMA journal_mode = WAL")
        empty.close()
        read_version = SqliteJobStore._user_version
        reads: list[int] = []

        def then_another_process_makes_step_one(conn: sqlite3.Connection) -> int:
            version = read_version(conn)
            reads.append(version)
            # The second read is the migration's first look at step 1, before its write lock:
            # another process (a preform-pipeline that knows only step 1) makes step 1 there.
            if len(reads) == 2:
                other = sqlite3.connect(path, isolation_level=None)
                other.execute("BEGIN IMMEDIATE")
                sqlite_store.MIGRATIONS[0].apply(other)
                other.execute("PRAGMA user_version = 1")
                other.execute("COMMIT")
                other.close()
            return version

        monkeypatch.setattr(SqliteJobStore, "_user_version",
                            staticmethod(then_another_process_makes_step_one))
        with capture_logs() as logs, SqliteJobStore(path) as opened:
            assert list(opened.list_builds()) == []
        assert reads[:3] == [0, 0, 1]
        assert [e["version"] for e in logs if e["event"] == "store_migrated"] == [
            m.version for m in sqlite_store.MIGRATIONS[1:]]
        assert _user_version(path) == sqlite_store.SCHEMA_VERSION


class TestHowAStoreShowsItself:
    """A store's repr names its file and whether it is open."""

    def test_open_then_closed(self, tmp_path: Path) -> None:
        path = tmp_path / "jobs.sqlite3"
        store = SqliteJobStore(path)
        assert repr(store) == f"SqliteJobStore({str(path)!r}, open)"
        store.close()
        assert repr(store) == f"SqliteJobStore({str(path)!r}, closed)"

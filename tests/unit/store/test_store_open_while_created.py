"""Opening a store file that another process is creating at that very moment."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from preform_pipeline.store import JobStore, SqliteJobStore


class TestOpenedWhileCreated:
    """A store created between the opener's first two reads is opened, not called foreign."""

    def test_tables_committed_after_the_version_read_are_not_foreign(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = tmp_path / "jobs.sqlite3"
        # The empty WAL file a daemon leaves in the instant before it migrates.
        with sqlite3.connect(path) as empty:
            empty.execute("PRAGMA journal_mode = WAL")
        empty.close()
        read_version = SqliteJobStore._user_version
        others: list[JobStore] = []
        migrating: list[bool] = []

        def version_then_the_other_process_migrates(conn: sqlite3.Connection) -> int:
            version = read_version(conn)
            if not migrating:  # the daemon commits its tables and version right after this read
                migrating.append(True)
                others.append(SqliteJobStore(path))
            return version

        monkeypatch.setattr(SqliteJobStore, "_user_version",
                            staticmethod(version_then_the_other_process_migrates))
        try:
            with SqliteJobStore(path, create=False) as opened:
                assert list(opened.list_builds()) == []
        finally:
            for other in others:
                other.close()
        assert len(others) == 1

"""Opening a SQLite store: a migration another process makes in the instant before this one's
is not made twice, and a store says whether it is open."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.errors import StoreError
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


class TestWhatIsNoStore:
    """A folder, a device or a pipe named as the store is refused as no store, and why,
    whether the store may be created or not; nothing is made there."""

    WHERE = "(--store, store.path or PREFORM_PIPELINE_STORE_PATH)"

    @pytest.mark.parametrize("create", [True, False])
    def test_a_folder_names_the_file_it_would_hold(self, tmp_path: Path, create: bool) -> None:
        folder = tmp_path / "stores"
        folder.mkdir()
        with pytest.raises(StoreError) as caught:
            SqliteJobStore(folder, create=create)
        assert caught.value.message == f"{folder}: is a folder, not a job store"
        assert caught.value.hint == (f"name the store's file itself {self.WHERE}, e.g. "
                                     f"{folder / 'jobs.sqlite3'}")
        assert list(folder.iterdir()) == []

    @pytest.mark.parametrize("create", [True, False])
    def test_a_device_and_a_pipe_are_not_regular_files(
        self, tmp_path: Path, create: bool
    ) -> None:
        # POSIX-specific: a named pipe and /dev/null.
        pipe = tmp_path / "pipe"
        os.mkfifo(pipe)
        for path in (Path(os.devnull), pipe):
            with pytest.raises(StoreError) as caught:
                SqliteJobStore(path, create=create)
            assert caught.value.message == (
                f"{path}: is not a job store: not a regular file (a device, pipe or socket)")
            assert caught.value.hint == f"name the job store's file {self.WHERE}"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]

    def test_a_link_to_a_store_file_is_a_store(self, tmp_path: Path) -> None:
        real = tmp_path / "jobs.sqlite3"
        SqliteJobStore(real).close()
        link = tmp_path / "link.sqlite3"
        link.symlink_to(real)
        store = SqliteJobStore(link, create=False)
        store.close()

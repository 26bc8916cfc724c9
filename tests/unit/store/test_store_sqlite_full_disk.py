"""The SQLite store on a real disk that fills (a small tmpfs): a write its WAL cannot take,
and a store opened on a full disk, are said as a full disk, and nothing recorded is lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from preform_pipeline.errors import StoreError
from preform_pipeline.store import SqliteJobStore
from tests.small_disk import SmallDisk

_FULL_HINT = (
    "free some space on that disk (SQLite needs room beside the file for its journal), then "
    "try again; the store keeps what it had"
)


class TestAFullDisk:
    """SQLite's "database or disk is full" and its "disk I/O error" of a shared-memory file
    that cannot grow both say the disk is full, and what helps."""

    def test_a_write_the_wal_cannot_take_says_the_disk_is_full_and_keeps_every_job(
        self, small_disk: SmallDisk
    ) -> None:
        path = small_disk.root / "jobs.sqlite3"
        with SqliteJobStore(path) as store:
            kept = [store.create_job(recipe="r", source_path=f"/in/{n}.stl").id
                    for n in range(3)]
            small_disk.fill()
            with pytest.raises(StoreError) as caught:
                for n in range(1000):  # the WAL's pages written so far are reused first
                    kept.append(store.create_job(recipe="r", source_path=f"/in/x{n}.stl",
                                                 fields={"pad": "p" * 2000}).id)

            assert caught.value.message == (
                f"{path}: the disk holding the job store is full (SQLite said 'database or "
                "disk is full' while creating a job)"
            )
            assert caught.value.hint == _FULL_HINT
            small_disk.free()
            after = store.create_job(recipe="r", source_path="/in/after.stl")
            assert [j.id for j in store.list_jobs()] == sorted([*kept, after.id])

    def test_a_store_opened_on_a_full_disk_says_so(self, small_disk: SmallDisk) -> None:
        path = small_disk.root / "jobs.sqlite3"
        with SqliteJobStore(path) as store:
            job = store.create_job(recipe="r", source_path="/in/a.stl")
        small_disk.fill()

        with pytest.raises(StoreError) as caught:
            SqliteJobStore(path)

        # Its shared-memory file cannot grow: SQLite says only "disk I/O error".
        assert caught.value.message == (
            f"{path}: the disk holding the job store is full (SQLite said 'disk I/O error' "
            "while opening)"
        )
        small_disk.free()
        with SqliteJobStore(path) as store:
            assert [j.id for j in store.list_jobs()] == [job.id]

    def test_a_store_at_its_page_limit_on_a_disk_with_room_is_not_called_full(
        self, tmp_path: Path
    ) -> None:
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            # SQLite says SQLITE_FULL for a store at its page limit too: the disk is not full.
            store._connection().execute("PRAGMA max_page_count = 40")
            with pytest.raises(StoreError) as caught:
                for n in range(1000):
                    store.create_job(recipe="r", source_path=f"/in/{n}.stl",
                                     fields={"pad": "p" * 2000})

        assert "disk holding the job store is full" not in caught.value.message
        assert caught.value.message.endswith("failed while creating a job: database or disk "
                                             "is full")

"""``get_jobs``: many jobs by id in one read, on SQLite and PostgreSQL (a node's maintenance
pass read the jobs it leaves for another node one by one, on every pass while they waited)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from preform_pipeline.store import JobState, JobStore, SqliteJobStore, sqlcore
from tests.unit.store.conftest import read_without


def _jobs(store: JobStore, count: int = 3) -> list[int]:
    return [store.create_job(recipe="grey", source_path=f"/models/{n}.stl",
                             content_hash=f"sha256:{n}", state=JobState.PROCESSING).id
            for n in range(count)]


class TestGetJobs:
    """The jobs asked, as ``get_job`` reads each, in id order; no job for an unknown id."""

    def test_the_jobs_asked_once_each_in_id_order(self, store: JobStore) -> None:
        a, _, c = _jobs(store)
        store.transition(c, JobState.FAILED, "its run died")
        assert store.get_jobs([c, a, a]) == (store.get_job(a), store.get_job(c))

    def test_an_id_of_no_job_is_left_out(self, store: JobStore) -> None:
        (a,) = _jobs(store, 1)
        assert [j.id for j in store.get_jobs([a + 1, -1, 2**70, a])] == [a]
        assert store.get_jobs(()) == ()

    def test_many_are_read_in_parts_and_come_back_in_id_order(
        self, store: JobStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(sqlcore, "HISTORIES_PER_STATEMENT", 2)
        made = _jobs(store, 5)
        assert [j.id for j in store.get_jobs(reversed(made))] == made


class TestARead:
    """A read: it does not wait for another process's write, and a refused one says which."""

    def test_they_come_while_another_process_writes(self, store_path: Path) -> None:
        with SqliteJobStore(store_path, busy_timeout_s=0.2) as store:
            made = _jobs(store, 2)
            writer = sqlite3.connect(store_path, isolation_level=None)
            try:
                writer.execute("BEGIN IMMEDIATE")
                writer.execute("UPDATE jobs SET reason = 'moving'")
                got = store.get_jobs(made)
            finally:
                writer.execute("ROLLBACK")
                writer.close()
        assert [(j.id, j.reason) for j in got] == [(i, "created") for i in made]

    def test_a_failed_read_says_what_was_being_done(self, store_path: Path) -> None:
        assert read_without(store_path, "jobs", lambda s: s.get_jobs([1])).startswith(
            f"{store_path}: the job store failed while reading jobs: no such table: jobs")

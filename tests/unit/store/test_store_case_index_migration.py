"""Jobs are indexed by their case (SQLite schema version 11, PostgreSQL 13): a store of the
version before is migrated, its jobs found by case as before, and the superseded-case rule's
lookup (``find_by_cases``) reads the index rather than the whole table.

Session 48: ``find_by_cases`` read every job for each page of failed jobs (no index on
``case_id``; bench/bench_case_lookup.py measures it)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from preform_pipeline.store import SCHEMA_VERSION, JobState, SqliteJobStore
from preform_pipeline.store.postgres import PG_MIGRATIONS, PG_SCHEMA_VERSION, PostgresJobStore
from preform_pipeline.store.superseded import SUPERSEDING_STATES
from tests.pg_cluster import PG_PASSWORD
from tests.unit.store.conftest import admin_connection
from tests.unit.store.old_schemas import SQLITE_V10_SCHEMA

#: Two jobs of case C-7 and one of another, as a version-10 store holds them.
_JOBS = (
    "INSERT INTO jobs (job_key, recipe, source_path, original_name, case_id, state, "
    "created_at, updated_at) VALUES "
    "('k1', 'dental', '/in/a.stl', 'a.stl', 'C-7', 'failed', '{at}', '{at}'), "
    "('k2', 'dental', '/in/b.stl', 'b.stl', 'C-7', 'done', '{at}', '{at}'), "
    "('k3', 'dental', '/in/c.stl', 'c.stl', 'C-8', 'done', '{at}', '{at}')"
)


def _v10_store(path: Path) -> Path:
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executescript(SQLITE_V10_SCHEMA
                           + _JOBS.format(at="2026-12-07T10:00:00+00:00") + ";"
                           + "PRAGMA user_version = 10;")
    return path


class TestASqliteStoreOfVersion10:
    def test_it_is_migrated_and_its_jobs_are_found_by_case(self, tmp_path: Path) -> None:
        path = _v10_store(tmp_path / "jobs.sqlite3")
        with SqliteJobStore(path) as store:
            found = store.find_by_cases(["C-7"], state=frozenset({JobState.DONE}))
        assert [job.job_key for job in found] == ["k2"]
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 11
            assert ("jobs_case_id", "jobs") in conn.execute(
                "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'").fetchall()

    def test_a_lookup_by_case_searches_the_index(self, tmp_path: Path) -> None:
        path = _v10_store(tmp_path / "jobs.sqlite3")
        sent: list[str] = []
        with SqliteJobStore(path, on_statement=sent.append) as store:
            store.find_by_cases(["C-7", "C-8"], state=SUPERSEDING_STATES)
        (lookup,) = [statement for statement in sent if "case_id IN" in statement]
        with closing(sqlite3.connect(path)) as conn:
            # The statement as the store sent it (its values written in), planned by SQLite.
            plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {lookup}")]
        assert plan == ["SEARCH jobs USING INDEX jobs_case_id (case_id=? AND state=?)"]


class TestAPostgresStoreOfVersion12:
    def test_it_is_migrated_and_its_jobs_are_found_by_case(self, fresh_url: str) -> None:
        with admin_connection(fresh_url) as conn:
            for migration in PG_MIGRATIONS[:12]:
                conn.execute(migration.sql)
            conn.execute("CREATE TABLE preform_schema (version INTEGER NOT NULL)")
            conn.execute("INSERT INTO preform_schema (version) VALUES (12)")
            conn.execute(_JOBS.format(at="2026-12-07 10:00:00+00"))
        with PostgresJobStore(fresh_url, password=PG_PASSWORD) as store:
            found = store.find_by_cases(["C-7"], state=frozenset({JobState.DONE}))
        assert [job.job_key for job in found] == ["k2"]
        with admin_connection(fresh_url) as conn:
            assert conn.execute("SELECT version FROM preform_schema").fetchall() == [
                (PG_SCHEMA_VERSION,)]
            (definition,) = conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'jobs_case_id'").fetchone()
        assert PG_SCHEMA_VERSION == 13
        assert definition.endswith("ON public.jobs USING btree (case_id, state)")

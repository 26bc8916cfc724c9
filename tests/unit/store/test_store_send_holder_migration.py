"""A store of the version before send holders named their instance (SQLite 8, PostgreSQL 7),
with a send interrupted under it, is migrated: the holder stays readable as it was written,
is never proven gone (its pid may be another container's of the same host name), and new
holders keep their instance in the store (real SQLite file, real PostgreSQL).

The old stores are made here by that version's own SQL, not by the store code.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from contextlib import closing
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.liveness import ProcessIdentity, sees_every_process, this_host, this_instance
from preform_pipeline.printing import (
    Evidence,
    FleetFolderLocator,
    PrintOwner,
    Resolution,
    SendHolder,
    SendRecord,
)
from preform_pipeline.printing.testing import reaped_holder
from preform_pipeline.store import SCHEMA_VERSION, JobState, JobStore, SqliteJobStore
from preform_pipeline.store.postgres import PG_MIGRATIONS, PG_SCHEMA_VERSION, PostgresJobStore
from tests.instances import other_instance, ours_running, quiet_moment
from tests.pg_cluster import PG_PASSWORD
from tests.unit.store.conftest import admin_connection
from tests.unit.store.old_schemas import SQLITE_V8_SCHEMA

#: A SQLite store of version 8, as that version wrote it (old_schemas.py).
V8_DDL: Final = SQLITE_V8_SCHEMA + "PRAGMA user_version = 8;\n"

#: The interrupted send: a build and its job (each the first, id 1) in PRINT_SENDING since
#: ``SENT_AT``.
SENT_AT: Final = "2024-05-01T08:04:00.000000+00:00"
_ROWS: Final = (
    "INSERT INTO builds (job_key, recipe, state, server, form_path, printer, job_name, "
    "reason, created_at, updated_at, print_sent_at, send_holder) VALUES ('PP-0000000001', "
    "'dental', 'print_sending', 'server-1', '/out/b1.form', 'Form4-A', "
    "'dental-PP-0000000001', 'sending the print to Form4-A', '2024-05-01T08:00:00+00:00', "
    f"'{SENT_AT}', '{SENT_AT}', ?)",
    "INSERT INTO jobs (job_key, recipe, source_path, original_name, state, build_id, "
    "reason, created_at, updated_at, printer) VALUES ('PP-00000000AA', 'dental', "
    "'/hot/processing/arch.stl', 'arch.stl', 'print_sending', 1, 'sending the print', "
    f"'2024-05-01T07:59:00+00:00', '{SENT_AT}', 'Form4-A')",
    "INSERT INTO build_jobs (build_id, job_id, position) VALUES (1, 1, 0)",
    "INSERT INTO transitions (job_id, build_id, from_state, to_state, at, reason) VALUES "
    f"(1, 1, 'prepared', 'print_sending', '{SENT_AT}', 'sending the print to Form4-A')",
)
#: The stores' clock: new sends begin half an hour after the old one.
NOW: Final = datetime(2024, 5, 1, 8, 34, tzinfo=timezone.utc)
#: An hour after the old send: every grace period is long over.
LATER: Final = datetime(2024, 5, 1, 9, 4, tzinfo=timezone.utc)


def _old_holder(create_time: float | None = None) -> dict[str, Any]:
    """A holder as the version before wrote it (no instance): its server really ran on this
    host and ended, so judged by host name and pid it would be "gone". ``create_time``: its
    start as recorded (a quiet moment, or a live look-alike's: liveness.look_alikes), else the
    reaped server's own."""
    dead = reaped_holder(request_timeout_s=30.0)
    started = dead.create_time if create_time is None else create_time
    return {"server": dead.server, "request_timeout_s": 30.0, "pid": dead.pid,
            "create_time": started, "host": this_host(), "remote": False}


def _resolve_later(store: JobStore, tmp_path: Path, build_id: int = 1) -> Resolution:
    """The print owner's answer an hour after the send, the fleet folder showing nothing."""
    owner = PrintOwner(store, [FleetFolderLocator(tmp_path / "fleet", report_delay_s=1.0)],
                       clock=ManualClock(wall=LATER))
    return owner.resolve(store.get_build(build_id))


def _assert_left_to_a_person(answer: Resolution, old: dict[str, Any]) -> None:
    assert answer.evidence is Evidence.UNKNOWN
    assert answer.build is not None and answer.build.state is JobState.UNVERIFIED
    assert answer.reason == (
        f"server {old['server']} (pid {old['pid']}, recorded by an earlier version that did "
        "not name its container) may still be sending it")


def _begin_new_send(store: JobStore) -> tuple[int, SendHolder]:
    """A send begun after the migration, by a server of this instance."""
    job = store.create_job(recipe="dental", source_path="/hot/processing/crown.stl",
                           state=JobState.PROCESSING)
    build = store.create_build(recipe="dental", job_ids=[job.id])
    for state in (JobState.PREPARING, JobState.PREPARED):
        store.transition_build(build.id, state, "test")
    holder = reaped_holder(request_timeout_s=30.0)
    PrintOwner(store).begin(build.id, f"dental-{build.job_key}", "Form4-A", holder)
    return build.id, holder


def _v8_store(tmp_path: Path, old: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """A SQLite store of schema version 8 with an interrupted send of ``old``."""
    path = tmp_path / "jobs.sqlite3"
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(V8_DDL)
        conn.execute(_ROWS[0], (json.dumps(old),))
        for statement in _ROWS[1:]:
            conn.execute(statement)
        conn.commit()
    return path, old


@pytest.fixture
def v8_store(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A SQLite store of schema version 8 with an interrupted send, and its holder's JSON."""
    return _v8_store(tmp_path, _old_holder())


class TestASqliteStoreOfVersion8:
    """Migrated to 9 (and on, to the newest); its interrupted send is left to a person unless
    its server is proven gone: no process that may be ours started at its moment (session
    34), the store being on this machine's disk."""

    @pytest.mark.skipif(not sys.platform.startswith("linux"),
                        reason="instances are named on Linux only: elsewhere the host tells")
    @pytest.mark.timeout(60)
    def test_it_is_migrated_and_its_holder_read_as_written(self, tmp_path: Path) -> None:
        # A server of ours started at the holder's moment runs: perhaps that server, in
        # another container.
        with ours_running() as server:
            alike = ProcessIdentity.of_running(server.pid)
            assert alike is not None
            path, old = _v8_store(tmp_path, _old_holder(alike.create_time))
            with SqliteJobStore(path, clock=ManualClock(wall=NOW)) as store:
                build = store.get_build(1)
                assert (build.state, build.send_holder) == (JobState.PRINT_SENDING, old)
                holder = SendRecord.of(build).holder
                assert holder is not None and holder.instance is None
                _assert_left_to_a_person(_resolve_later(store, tmp_path), old)
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 11

    @pytest.mark.skipif(not sees_every_process(), reason="needs the machine's own pid namespace")
    def test_a_holder_proven_gone_is_settled_not_printed(self, tmp_path: Path) -> None:
        path, _ = _v8_store(tmp_path, _old_holder(quiet_moment()))
        with SqliteJobStore(path, clock=ManualClock(wall=NOW)) as store:
            answer = _resolve_later(store, tmp_path)
        assert answer.build is not None
        assert (answer.evidence, answer.build.state) == (Evidence.ABSENT, JobState.PREPARED)

    def test_a_send_begun_after_it_keeps_its_instance(
        self, v8_store: tuple[Path, dict[str, Any]], tmp_path: Path
    ) -> None:
        path, _ = v8_store
        with SqliteJobStore(path, clock=ManualClock(wall=NOW)) as store:
            build_id, holder = _begin_new_send(store)
            answer = _resolve_later(store, tmp_path, build_id)
            assert answer.build is not None
            assert (answer.evidence, answer.build.state) == (Evidence.ABSENT, JobState.PREPARED)
        with closing(sqlite3.connect(path)) as conn:
            (text,) = conn.execute("SELECT send_holder FROM builds WHERE id = ?",
                                   (build_id,)).fetchone()
        assert json.loads(text)["instance"] == holder.instance == this_instance()


@pytest.fixture
def v7_url(fresh_url: str) -> tuple[str, dict[str, Any]]:
    """A PostgreSQL store of schema version 7 with an interrupted send, and its holder's JSON:
    made by the released SQL files 1 to 7 (never edited once released) run directly, and the
    rows inserted here."""
    old = _old_holder()
    with admin_connection(fresh_url) as conn:
        for migration in PG_MIGRATIONS[:7]:
            conn.execute(migration.sql)
        conn.execute("CREATE TABLE preform_schema (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO preform_schema (version) VALUES (7)")
        conn.execute(_ROWS[0].replace("?", "%s"), (json.dumps(old),))
        for statement in _ROWS[1:]:
            conn.execute(statement)
    return fresh_url, old


def _open(url: str) -> PostgresJobStore:
    return PostgresJobStore(url, password=PG_PASSWORD, clock=ManualClock(wall=NOW))


class TestAPostgresStoreOfVersion7:
    """Migrated to 8; its interrupted send is left to a person; a shared store never takes
    another boot of this host name for this machine before a restart."""

    def test_it_is_migrated_and_its_holder_read_as_written(
        self, v7_url: tuple[str, dict[str, Any]], tmp_path: Path
    ) -> None:
        url, old = v7_url
        with _open(url) as store:
            build = store.get_build(1)
            assert (build.state, build.send_holder) == (JobState.PRINT_SENDING, old)
            _assert_left_to_a_person(_resolve_later(store, tmp_path), old)
        with admin_connection(url) as conn:
            assert conn.execute("SELECT version FROM preform_schema").fetchall() == [
                (PG_SCHEMA_VERSION,)]
            (comment,) = conn.execute(
                "SELECT col_description('builds'::regclass, attnum) FROM pg_attribute "
                "WHERE attrelid = 'builds'::regclass AND attname = 'send_holder'").fetchone()
        assert PG_SCHEMA_VERSION >= 8
        assert "instance" in comment

    def test_a_send_begun_after_it_keeps_its_instance(
        self, v7_url: tuple[str, dict[str, Any]], tmp_path: Path
    ) -> None:
        url, _ = v7_url
        with _open(url) as store:
            build_id, holder = _begin_new_send(store)
            answer = _resolve_later(store, tmp_path, build_id)
            assert answer.build is not None
            assert (answer.evidence, answer.build.state) == (Evidence.ABSENT, JobState.PREPARED)
        with admin_connection(url) as conn:
            (data,) = conn.execute("SELECT send_holder FROM builds WHERE id = %s",
                                   (build_id,)).fetchone()
        assert data["instance"] == holder.instance == this_instance()

    def test_a_holder_of_an_earlier_boot_of_this_host_name_is_not_gone(
        self, v7_url: tuple[str, dict[str, Any]], tmp_path: Path
    ) -> None:
        # Shared by machines: another boot of this host name may be another machine, running.
        url, _ = v7_url
        with _open(url) as store:
            assert store.kept_on_this_machine is False
            build_id, holder = _begin_new_send(store)
            store.update_build(build_id, send_holder=replace(
                holder, instance=other_instance(boot=True)).to_json())
            answer = _resolve_later(store, tmp_path, build_id)
            assert answer.build is not None
            assert (answer.evidence, answer.build.state) == (
                Evidence.UNKNOWN, JobState.UNVERIFIED)
            assert "in another container or boot of this host name" in answer.reason


"""``preform-pipeline store migrate --to URL``: a SQLite store moves to PostgreSQL whole."""

from __future__ import annotations

import io
import itertools
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.cli import run
from preform_pipeline.clock import ManualClock
from preform_pipeline.store import JobState, SqliteJobStore
from preform_pipeline.store.pgurl import PASSWORD_ENV
from preform_pipeline.store.postgres import PostgresJobStore
from tests.pg_cluster import PG_PASSWORD, PG_USER, PgCluster
from tests.small_disk import SmallDisk
from tests.unit.store.conftest import CLOCK_START, build_in_state, job_in_state

S = JobState
_names = itertools.count()


def invoke(*argv: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run(["store", *argv], stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture
def target(pg_cluster: PgCluster, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new empty database; its password only in the environment."""
    monkeypatch.setenv(PASSWORD_ENV, PG_PASSWORD)
    return pg_cluster.create_database(f"migrate_{next(_names)}")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A SQLite store with history: a printed build, a failed job, a retried one, a build
    waiting for a printer (target, priority, late notice)."""
    path = tmp_path / "jobs.sqlite3"
    with SqliteJobStore(path, clock=ManualClock(wall=CLOCK_START)) as store:
        build_in_state(store, S.FINISHED, jobs=2)
        build_in_state(store, S.PRINT_SENT, jobs=1)
        waiting = build_in_state(store, S.PREPARED, jobs=1)
        store.transition_build(waiting.id, S.WAITING_FOR_PRINTER, "no printer free",
                               print_target={"printers": ["Form4-A"]}, priority=2)
        store.update_build(waiting.id, wait_notified_at=CLOCK_START.isoformat())
        job = job_in_state(store, S.FAILED)
        store.transition(job.id, S.QUEUED, "retried by user")
    return path


class TestMigrate:
    """Every job, build, key and audit row arrives with its id; the target must be empty."""

    def test_the_copy_holds_the_same_jobs_builds_and_histories(
        self, source: Path, target: str
    ) -> None:
        code, out, err = invoke("migrate", "--to", target, "--store", str(source))
        assert (code, err) == (0, "")
        assert "copied 5 jobs, 3 builds" in out
        with SqliteJobStore(source) as old, PostgresJobStore(target) as new:
            assert new.list_jobs() == old.list_jobs()
            assert new.list_builds() == old.list_builds()
            for job in old.list_jobs():
                assert new.history(job.id) == old.history(job.id)
            for build in old.list_builds():
                assert new.build_history(build.id) == old.build_history(build.id)
                assert new.find_build_by_key(build.job_key) == build
            assert new.pending_prints() == old.pending_prints()
            later = new.create_job(recipe="dental", source_path="/hot/inbox/new.stl")
            assert later.id == max(j.id for j in old.list_jobs()) + 1

    def test_a_store_written_from_the_home_folder_is_found(
        self, source: Path, target: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # `--store=~/jobs.db` reaches us unexpanded (no shell expands ~ after `=`), as in
        # run, jobs and verify.
        monkeypatch.setenv("HOME", str(source.parent))
        code, out, err = invoke("migrate", "--to", target, f"--store=~/{source.name}")
        assert (code, err) == (0, "")
        assert "copied 5 jobs, 3 builds" in out

    def test_the_web_api_budget_still_live_is_kept_and_said(
        self, source: Path, target: str
    ) -> None:
        now = datetime.now(timezone.utc)
        with SqliteJobStore(source) as store:
            for minutes in (10, 20):
                store.spend_web_request("web-api:lab", limit=1500, window_s=3600.0,
                                        now=now - timedelta(minutes=minutes))
            store.hold_web_requests("web-api:lab", now + timedelta(minutes=30))
        code, out, err = invoke("migrate", "--to", target, "--store", str(source))
        assert (code, err) == (0, "")
        assert ("kept the Web API budget still live: 2 requests of the last hour, "
                "1 Retry-After hold not ended\n") in out
        with PostgresJobStore(target) as new:
            assert new.web_requests_spent("web-api:lab", now=now, window_s=3600.0) == 2
            wait, why, _spent = new.spend_web_request("web-api:lab", limit=1500, now=now,
                                              window_s=3600.0)
        assert why == "retry_after" and 1790 < wait <= 1800

    def test_jobs_reads_the_migrated_store_by_its_url(self, source: Path, target: str) -> None:
        assert invoke("migrate", "--to", target, "--store", str(source))[0] == 0
        stdout, stderr = io.StringIO(), io.StringIO()
        code = run(["jobs", "--store", target, "--format", "json"], stdout, stderr)
        assert (code, stderr.getvalue()) == (0, "")
        listed = json.loads(stdout.getvalue())
        with SqliteJobStore(source) as old:
            assert [j["id"] for j in listed["jobs"]] == [j.id for j in old.list_jobs()]
        assert listed["store"] == target

    def test_a_target_with_jobs_is_refused_and_left_as_it_was(
        self, source: Path, target: str
    ) -> None:
        with PostgresJobStore(target) as new:
            new.create_job(recipe="dental", source_path="/hot/inbox/there.stl")
        code, out, err = invoke("migrate", "--to", target, "--store", str(source))
        assert code == 1 and out == ""
        assert "not empty" in err
        with PostgresJobStore(target) as new:
            assert len(new.list_jobs()) == 1

    def test_a_password_in_the_url_never_reaches_the_output_or_logs(
        self, source: Path, target: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv(PASSWORD_ENV)
        url = target.replace(f"{PG_USER}@", f"{PG_USER}:{PG_PASSWORD}@")
        with capture_logs() as logs:
            code, out, err = invoke("migrate", "--to", url, "--store", str(source))
        assert code == 0, err
        assert PG_PASSWORD not in out + err + repr(logs)
        assert f"{PG_USER}:***@" in out

    def test_a_missing_source_is_an_error_that_names_it(
        self, tmp_path: Path, target: str
    ) -> None:
        code, _, err = invoke("migrate", "--to", target, "--store", str(tmp_path / "no.db"))
        assert code == 1
        assert "no job store here" in err

    def test_a_target_that_is_not_postgresql_is_refused(self, source: Path) -> None:
        code, _, err = invoke("migrate", "--to", "sqlite:///x.db", "--store", str(source))
        assert code == 1
        assert "postgresql://" in err



class TestASourceOnAFullDisk:
    """The SQLite store to copy on a full disk: it is only read, so it is copied whole and
    left as it was (no journal left beside it)."""

    def test_copied_and_the_source_left_as_it_was(
        self, small_disk: SmallDisk, target: str
    ) -> None:
        path = small_disk.root / "jobs.sqlite3"
        with SqliteJobStore(path) as store:
            build_in_state(store, S.FINISHED, jobs=2)
        before = _written(path)
        small_disk.fill()

        code, out, err = invoke("migrate", "--to", target, "--store", str(path))

        assert (code, err) == (0, ""), err
        assert "copied 2 jobs, 1 build" in out
        small_disk.free()
        assert _written(path) == before


def _written(path: Path) -> dict[str, bytes]:
    """The store's files as written (its ``-shm`` is a shared index every reader updates)."""
    return {p.name: p.read_bytes() for p in path.parent.iterdir()
            if p.name.startswith(path.name) and not p.name.endswith("-shm")}

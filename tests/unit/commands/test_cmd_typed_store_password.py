"""A store URL typed on the command line with its password (session 42's farm trial): the
command works, and says that every user of the PC reads the password in the process list,
and where it belongs; a URL without one says nothing (real PostgreSQL)."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import pytest

from preform_pipeline.cli import run
from preform_pipeline.store import SqliteJobStore
from preform_pipeline.store.pgurl import PASSWORD_ENV
from tests.pg_cluster import PG_PASSWORD, PG_USER, PgCluster

_names = itertools.count()


def _warning(option: str) -> str:
    return (f"warning: the {option} URL holds a password, which every user of this PC can read "
            "in the process list while this command runs; leave it out of the URL and set "
            "PREFORM_PIPELINE_STORE_PASSWORD (or PREFORM_PIPELINE_STORE_PASSWORD_FILE)\n")


def invoke(*argv: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run(list(argv), stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture
def database(pg_cluster: PgCluster, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new empty database's URL (no password in it, none in the environment)."""
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    return pg_cluster.create_database(f"typed_{next(_names)}")


def _typed(url: str) -> str:
    return url.replace(f"://{PG_USER}@", f"://{PG_USER}:{PG_PASSWORD}@")


class TestAPasswordTypedIntoTheCommandLine:
    def test_jobs_works_and_says_who_can_read_it(self, database: str) -> None:
        assert invoke("jobs", "--store", _typed(database)) == (
            0, "no jobs\n", _warning("--store"))

    def test_store_migrate_works_and_says_so_for_its_target(
        self, database: str, tmp_path: Path
    ) -> None:
        SqliteJobStore(tmp_path / "jobs.sqlite3").close()
        code, out, err = invoke("store", "migrate", "--to", _typed(database),
                                "--store", str(tmp_path / "jobs.sqlite3"))
        assert (code, err) == (0, _warning("--to"))
        assert "copied 0 jobs" in out


class TestAUrlWithoutAPassword:
    def test_says_nothing_more(self, database: str, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(PASSWORD_ENV, PG_PASSWORD)
        assert invoke("jobs", "--store", database) == (0, "no jobs\n", "")

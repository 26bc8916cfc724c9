"""``run --dry-run`` and a job store this account may not reach or read, met by a real process
of another, unprivileged user (the suite runs as root, whom no permission stops).

A dry run records nothing, so it opens no store; but the store its real run would open is
refused before a server starts. Session 46: the dry run started its servers and a build and
never said the store.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from preform_pipeline.errors import StoreError
from preform_pipeline.store import SqliteJobStore
from preform_pipeline.store.opening import check_store, open_store
from preform_pipeline.store.pgerrors import RUNNING_KEEPS_TRYING
from preform_pipeline.store.pgurl import PASSWORD_ENV
from preform_pipeline.store.postgres import PostgresJobStore
from tests.another_user import OTHER_PYTHON, another_users_home, as_another_user
from tests.command_line import InProcess
from tests.pg_cluster import PgCluster
from tests.unit.store.conftest import new_database
from tests.unit.store.old_schemas import SQLITE_V1_SCHEMA

needs_another_user = pytest.mark.skipif(OTHER_PYTHON is None,
                                        reason="needs root and a Python any user may run")

REPO_ROOT = Path(__file__).resolve().parents[3]
HELP = "or run this as the user the hot folder runs as"


@pytest.fixture
def home() -> Iterator[Path]:
    """The other user's home, with a recipe and a folder of one model it may read."""
    with another_users_home() as home:
        shutil.copyfile(REPO_ROOT / "recipes" / "engineering-grey-form4.yaml",
                        home / "grey.yaml")
        (home / "models").mkdir(mode=0o755)
        shutil.copyfile(REPO_ROOT / "sample_models" / "parts" / "cube_with_hole.stl",
                        home / "models" / "cube.stl")
        yield home


def _a_store(path: Path, script: str = "CREATE TABLE kept (x);") -> Path:
    """A SQLite file (by default someone else's: a table, no schema version)."""
    with sqlite3.connect(path) as conn:
        conn.executescript(script)
    conn.close()
    return path


def _dry_run(home: Path, store: Path) -> tuple[int, str, str]:
    done = as_another_user(home, "run", str(home / "grey.yaml"), str(home / "models"),
                           "--dry-run", "--store", str(store), "--output", str(home / "out"))
    return done.returncode, done.stdout, done.stderr


@needs_another_user
class TestADryRunsStoreItMayNotReach:
    """Refused as the real run is, on stderr, before anything starts; nothing is left."""

    def test_a_store_file_it_may_not_read_is_said_before_any_server_starts(
        self, home: Path
    ) -> None:
        store = _a_store(home / "jobs.sqlite3")
        store.chmod(0)

        code, out, err = _dry_run(home, store)

        assert (code, out) == (1, ""), err  # no SIMULATED line, no server, no build
        assert err == (
            f"error: {store}: cannot read the job store file (Permission denied) (give this "
            "account permission to read the file (and to write it and its folder, to change "
            f"jobs), {HELP})\n"
            f"{home / 'grey.yaml'}: nothing was run\n")
        assert not (home / "out").exists()  # the refused run's output folder taken back
        assert os.stat(store).st_mode & 0o777 == 0

    def test_a_store_behind_a_folder_it_may_not_open_is_said_as_that_folder(
        self, home: Path
    ) -> None:
        closed = home / "closed"
        closed.mkdir()
        store = _a_store(closed / "jobs.sqlite3")
        closed.chmod(0)

        code, out, err = _dry_run(home, store)

        assert (code, out) == (1, ""), err
        assert err.startswith(f"error: {store}: cannot reach the job store: this account may "
                              "not open its folder (Permission denied)"), err
        assert err.endswith(f"{home / 'grey.yaml'}: nothing was run\n")


    @pytest.mark.parametrize("closed", ["file", "folder"])
    def test_a_store_it_may_only_read_is_said_as_the_real_run_says_it(
        self, home: Path, closed: str
    ) -> None:
        # Review rv47-loose: the dry run passed both (read through a connection that never
        # writes); the real run refuses the folder at its open, the file at its first claim.
        folder = home / "kept"
        folder.mkdir()
        with SqliteJobStore(folder / "jobs.sqlite3") as opened:
            store = opened.path
        store.chmod(0o644 if closed == "file" else 0o666)
        folder.chmod(0o777 if closed == "file" else 0o755)

        code, out, err = _dry_run(home, store)

        assert (code, out) == (1, ""), err
        assert err == (
            f"error: {store}: this account cannot write to the job store (while opening) (give "
            "it permission to write the file and its folder (SQLite writes a journal beside the "
            f"file), {HELP})\n{home / 'grey.yaml'}: nothing was run\n")

# --- Review rv47-loose: the dry run's check is the open's own rule -----------------------------
# The first check was a second rule (reach and read the file): a dry run passed, started its
# servers and said "1 of 1 build succeeded" of a store the real run refuses at once.


def _someones_file(path: Path) -> Path:
    path.write_text("name,part\n" + "olivia,cube\n" * 20, encoding="utf-8")
    return path


def _a_folder(path: Path) -> Path:
    path.mkdir()
    return path


def _a_newer_store(path: Path) -> Path:
    return _a_store(path, "PRAGMA user_version = 9999;")


def _a_file_where_its_folder_goes(path: Path) -> Path:
    path.write_text("", encoding="utf-8")
    return path / "jobs.sqlite3"


def _a_file_above_its_folder(path: Path) -> Path:
    path.parent.parent.write_text("", encoding="utf-8")
    return path


class TestADryRunRefusesWhatTheRealRunsOpenRefuses:
    """By the open's own refusals, in its words, before any server starts; nothing changed."""

    @pytest.mark.parametrize("make", [
        _someones_file, _a_folder, _a_newer_store, _a_store, _a_file_where_its_folder_goes,
    ], ids=["someones-file", "a-folder", "a-newer-store", "a-foreign-database",
            "a-file-where-its-folder-goes"])
    def test_it_is_refused_as_the_open_refuses_it(
        self, tmp_path: Path, in_process: InProcess, make: Callable[[Path], Path]
    ) -> None:
        store = make(tmp_path / "jobs.sqlite3")
        before = _contents(store)
        recipe = REPO_ROOT / "recipes" / "engineering-grey-form4.yaml"

        done = in_process(tmp_path, "run", str(recipe), str(REPO_ROOT / "sample_models" / "parts"
                                                          / "cube_with_hole.stl"),
                          "--dry-run", "--store", str(store), "--output", str(tmp_path / "out"))

        with pytest.raises(StoreError) as opened:
            open_store(store).close()
        assert (done.returncode, done.stdout) == (1, ""), done.stderr
        assert done.stderr == f"error: {opened.value}\n{recipe}: nothing was run\n"
        assert _contents(store) == before

    def test_a_file_above_its_folder_is_said_as_the_open_says_it(self, tmp_path: Path) -> None:
        store = _a_file_above_its_folder(tmp_path / "a" / "b" / "jobs.sqlite3")
        with pytest.raises(StoreError) as checked:
            check_store(store)
        with pytest.raises(StoreError) as opened:
            open_store(store).close()
        assert str(checked.value) == str(opened.value)
        assert "Not a directory" in str(checked.value)

    def test_an_older_store_passes_and_is_not_migrated(self, tmp_path: Path) -> None:
        store = _a_store(tmp_path / "jobs.sqlite3", SQLITE_V1_SCHEMA + "PRAGMA user_version = 1;")
        before = _contents(store)

        check_store(store)

        assert _contents(store) == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["jobs.sqlite3"]

    def test_a_store_not_there_yet_passes_and_is_not_created(self, tmp_path: Path) -> None:
        check_store(tmp_path / "new" / "jobs.sqlite3")
        assert list(tmp_path.iterdir()) == []


class TestADryRunReachesAPostgresStore:
    """Session 48: a dry run against a PostgreSQL URL reached no server, so a store its real
    run could not open passed; now it is refused by the open's rules (real PostgreSQL)."""

    def test_a_refused_login_is_said_before_anything_runs(
        self, tmp_path: Path, in_process: InProcess, pg_cluster: PgCluster
    ) -> None:
        recipe = REPO_ROOT / "recipes" / "engineering-grey-form4.yaml"
        with new_database(pg_cluster.url(), "dryrun") as url:
            done = in_process(tmp_path, "run", str(recipe), str(REPO_ROOT / "sample_models"
                                                                / "parts" / "cube_with_hole.stl"),
                              "--dry-run", "--store", url, "--output", str(tmp_path / "out"),
                              env_extra={PASSWORD_ENV: "not-the-password"})
            with pytest.raises(StoreError) as opened:
                PostgresJobStore(url, password="not-the-password").close()
        assert (done.returncode, done.stdout) == (1, ""), done.stderr
        assert done.stderr == f"error: {opened.value}\n{recipe}: nothing was run\n"
        assert "refused the job store's login" in done.stderr
        # A dry run is a command that exits: its hint does not speak of a service's retries.
        assert RUNNING_KEEPS_TRYING not in done.stderr


def _contents(path: Path) -> bytes | None:
    """What is at ``path`` (None: a folder, or nothing)."""
    return path.read_bytes() if path.is_file() else None

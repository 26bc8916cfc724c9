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
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.another_user import OTHER_PYTHON, another_users_home, as_another_user

pytestmark = pytest.mark.skipif(OTHER_PYTHON is None,
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


def _a_store(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE kept (x)")
    conn.close()
    return path


def _dry_run(home: Path, store: Path) -> tuple[int, str, str]:
    done = as_another_user(home, "run", str(home / "grey.yaml"), str(home / "models"),
                           "--dry-run", "--store", str(store), "--output", str(home / "out"))
    return done.returncode, done.stdout, done.stderr


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

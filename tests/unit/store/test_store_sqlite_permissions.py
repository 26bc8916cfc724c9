"""A store file this account may not reach or read, met by a real process of another,
unprivileged user (the suite runs as root, whom no permission stops): said as what failed,
where, and what helps, never "no job store yet" or a traceback.

Session 46: behind a folder the account may not open, the file was "not there" to
``os.path.exists``: ``jobs list`` and ``verify`` said there was no job store yet (exit 0),
and ``jobs show`` crashed on SQLite's open (exit 70, PermissionError).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.another_user import OTHER_PYTHON, another_users_home, as_another_user

pytestmark = pytest.mark.skipif(OTHER_PYTHON is None,
                                reason="needs root and a Python any user may run")

HELP = "or run this as the user the hot folder runs as"


def _a_store(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE kept (x)")
    conn.close()
    return path


@pytest.fixture
def home() -> Iterator[Path]:
    with another_users_home() as home:
        yield home


@pytest.fixture
def behind_a_closed_folder(home: Path) -> Iterator[Path]:
    """A store in a folder the other user may not open."""
    closed = home / "closed"
    closed.mkdir()
    store = _a_store(closed / "jobs.sqlite3")
    closed.chmod(0)
    yield store
    closed.chmod(0o755)  # pytest's own clean-up reads it


class TestAStoreBehindAFolderItMayNotOpen:
    """The folder is named as what stops it; the store is left as it was."""

    @pytest.mark.parametrize("argv", [("jobs", "--store", "{}", "list"),
                                      ("jobs", "--store", "{}", "show", "1"),
                                      ("verify", "--store", "{}")],
                             ids=["jobs-list", "jobs-show", "verify"])
    def test_it_is_said_as_a_folder_it_may_not_open(
        self, home: Path, behind_a_closed_folder: Path, argv: tuple[str, ...]
    ) -> None:
        store = behind_a_closed_folder
        done = as_another_user(home, *(a.format(store) for a in argv))

        said = done.stdout + done.stderr
        assert done.returncode == 1, said
        assert said == (f"error: {store}: cannot reach the job store: this account may not "
                        "open its folder (Permission denied) (give it permission to open the "
                        f"folders on the path, {HELP})\n")

    def test_a_folder_further_up_is_named_itself(self, home: Path) -> None:
        closed = home / "closed"
        (closed / "lab").mkdir(parents=True)
        store = _a_store(closed / "lab" / "jobs.sqlite3")
        closed.chmod(0)
        try:
            done = as_another_user(home, "jobs", "--store", str(store), "list")
        finally:
            closed.chmod(0o755)
        assert done.returncode == 1
        assert (f"may not open the folder {closed} (Permission denied)") in done.stderr


class TestAStoreFileItMayNotRead:
    """``chmod 000 jobs.db``: SQLite's open refused, said with the file's own reason."""

    def test_jobs_list_says_it_cannot_read_the_file(self, home: Path) -> None:
        store = _a_store(home / "jobs.sqlite3")
        store.chmod(0)
        done = as_another_user(home, "jobs", "--store", str(store), "list")
        assert (done.returncode, done.stdout) == (1, "")
        assert done.stderr == (
            f"error: {store}: cannot read the job store file (Permission denied) (give this "
            "account permission to read the file (and to write it and its folder, to change "
            f"jobs), {HELP})\n")
        assert sorted(p.name for p in home.iterdir() if p.name.startswith("jobs")) == [
            "jobs.sqlite3"]
        assert os.stat(store).st_mode & 0o777 == 0

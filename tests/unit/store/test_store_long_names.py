"""A store whose file name is near the file system's 255 bytes: it opens, its daemon lock
works and is found by every daemon, and a name SQLite cannot use is refused in words."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.errors import StoreError, StoreLockedError
from preform_pipeline.liveness import this_host
from preform_pipeline.store import SqliteJobStore
from preform_pipeline.store.daemon_lock import DaemonLock, lock_path_of
from preform_pipeline.store.sqlite import MAX_STORE_NAME_BYTES

REPO_ROOT = Path(__file__).resolve().parents[3]
WAIT_S = 30.0
HOLDER = (
    "import sys; from pathlib import Path; "
    "from preform_pipeline.store.daemon_lock import DaemonLock; "
    "DaemonLock(Path(sys.argv[1])).acquire(); print('held', flush=True); sys.stdin.read()"
)
CUT_AT_LINK = (
    "import os, signal, sys; from pathlib import Path; "
    "from preform_pipeline.store.daemon_lock import DaemonLock; "
    "os.link = lambda *a: os.kill(os.getpid(), signal.SIGKILL); "
    "DaemonLock(Path(sys.argv[1])).acquire()"
)


def named(folder: Path, size: int, letter: str = "s") -> Path:
    """A store path in ``folder`` whose name is ``size`` bytes (``letter`` may be two bytes
    long in UTF-8; the name then ends in ASCII to make up the size)."""
    suffix = ".sqlite3"
    room = size - len(suffix)
    stem = letter * (room // len(letter.encode("utf-8")))
    stem += "x" * (room - len(stem.encode("utf-8")))
    path = folder / (stem + suffix)
    assert len(os.fsencode(path.name)) == size
    return path


@pytest.fixture
def child_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO_ROOT))


@pytest.fixture
def held(tmp_path: Path, child_env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """Another process on this host holding the lock of the longest store SQLite takes."""
    store = named(tmp_path, MAX_STORE_NAME_BYTES)
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(store)], env=child_env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdin is not None
    assert process.stdout.readline().strip() == "held"
    yield process
    process.stdin.close()
    process.wait(WAIT_S)


class TestTheLongestStoreName:
    """A store named with as many bytes as SQLite allows opens and takes its daemon lock."""

    @pytest.mark.parametrize("letter", ["s", "é", "字"])
    def test_it_opens_and_its_lock_is_taken_and_given_back(
        self, tmp_path: Path, letter: str
    ) -> None:
        store = named(tmp_path, MAX_STORE_NAME_BYTES, letter)
        with SqliteJobStore(store) as jobs, DaemonLock(store) as lock:
            assert list(jobs.list_jobs()) == []
            assert lock.path.exists()
            kept, _, end = lock.path.name.partition("~")
            assert store.name.startswith(kept) and len(kept) > 60  # whole letters kept
            assert end.endswith(".daemon.lock")
            # Room left for the lock's temporary, <lock>.<pid>.tmp, with any 32-bit PID.
            assert len(os.fsencode(lock.path.name)) <= 255 - len(".4294967295.tmp")
        assert not lock_path_of(store).exists()
        assert all(p.name.startswith(store.name) for p in tmp_path.iterdir())

    def test_a_short_name_keeps_its_lock_name(self, tmp_path: Path) -> None:
        store = named(tmp_path, 200)
        assert lock_path_of(store) == tmp_path / f"{store.name}.daemon.lock"

    def test_another_process_finds_the_lock_and_is_refused(
        self, tmp_path: Path, held: subprocess.Popen[str]
    ) -> None:
        with pytest.raises(StoreLockedError) as caught:
            DaemonLock(named(tmp_path, MAX_STORE_NAME_BYTES)).acquire()
        assert (caught.value.host, caught.value.pid) == (this_host(), held.pid)

    def test_two_long_names_alike_but_for_their_end_have_two_locks(
        self, tmp_path: Path, held: subprocess.Popen[str]
    ) -> None:
        other = named(tmp_path, MAX_STORE_NAME_BYTES, "s")
        other = other.with_name(other.name.replace("s.sqlite3", "t.sqlite3"))
        assert lock_path_of(other) != lock_path_of(named(tmp_path, MAX_STORE_NAME_BYTES))
        with DaemonLock(other) as lock:  # not refused: another store
            assert lock.path.exists()

    @pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
    def test_a_temporary_a_killed_start_left_is_removed_by_the_next(
        self, tmp_path: Path, child_env: dict[str, str]
    ) -> None:
        store = named(tmp_path, MAX_STORE_NAME_BYTES)
        cut = subprocess.Popen([sys.executable, "-c", CUT_AT_LINK, str(store)], env=child_env)
        assert cut.wait(WAIT_S) == -signal.SIGKILL
        left = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        assert left == [f"{lock_path_of(store).name}.{cut.pid}.tmp"]
        with capture_logs() as logs, DaemonLock(store):
            pass
        assert [e["pid"] for e in logs if e["event"] == "store_lock_temporary_removed"] == [
            cut.pid]
        assert [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


class TestANameSqliteCannotUse:
    """A store name with no room for SQLite's ``-journal`` is refused, saying why, and no file
    is made."""

    @pytest.mark.parametrize("size", [MAX_STORE_NAME_BYTES + 1, 255, 300])
    def test_it_is_refused_with_the_longest_allowed(self, tmp_path: Path, size: int) -> None:
        store = named(tmp_path, size)
        with pytest.raises(StoreError) as caught:
            SqliteJobStore(store)
        said = str(caught.value)
        assert f"the store's file name is {size} bytes long" in said
        assert "at most 247 bytes" in said
        assert caught.value.hint == (
            "choose a shorter file name (--store, store.path or PREFORM_PIPELINE_STORE_PATH)")
        assert list(tmp_path.iterdir()) == []

"""One daemon per store: the lock file beside the store, held by real processes."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.cli import run
from preform_pipeline.clock import DEFAULT_MANUAL_START, ManualClock
from preform_pipeline.errors import StoreLockedError
from preform_pipeline.hotfolder.testing import write_hotfolder_settings, write_recipe
from preform_pipeline.liveness import ProcessIdentity, this_host
from preform_pipeline.store.daemon_lock import DaemonLock, lock_path_of

REPO_ROOT = Path(__file__).resolve().parents[3]
WAIT_S = 30.0
HOLDER = (
    "import sys; from pathlib import Path; "
    "from preform_pipeline.store.daemon_lock import DaemonLock; "
    "DaemonLock(Path(sys.argv[1])).acquire(); print('held', flush=True); sys.stdin.read()"
)


class Holder:
    """Another process on this host that holds the lock of ``store``."""

    def __init__(self, store: Path) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(store)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, env=env,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "held"
        self.pid = self.process.pid

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(WAIT_S)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "jobs.sqlite3"


@pytest.fixture
def holder(store: Path) -> Iterator[Holder]:
    held = Holder(store)
    yield held
    if held.process.poll() is None:
        assert held.process.stdin is not None
        held.process.stdin.close()
        held.process.wait(WAIT_S)


class TestSecondDaemon:
    """A second daemon on a store is refused with the holder's host and PID."""

    def test_a_live_holder_is_named(self, store: Path, holder: Holder) -> None:
        with pytest.raises(StoreLockedError) as caught:
            DaemonLock(store).acquire()
        assert (caught.value.host, caught.value.pid) == (this_host(), holder.pid)
        assert f"pid {holder.pid} on host {this_host()}" in str(caught.value)

    def test_watch_refuses_to_start_and_says_who_holds_the_store(
        self, tmp_path: Path, store: Path, holder: Holder
    ) -> None:
        settings = write_hotfolder_settings(tmp_path, write_recipe(tmp_path))
        out, err = io.StringIO(), io.StringIO()
        assert run(["watch", str(settings), "--once"], out, err) == 1
        assert f"pid {holder.pid} on host {this_host()}" in err.getvalue()
        assert "Traceback" not in err.getvalue() + out.getvalue()
        assert not store.exists()  # refused before the store was even opened

    def test_a_holder_on_another_host_is_refused_with_the_way_out(self, store: Path) -> None:
        lock = lock_path_of(store)
        lock.write_text(json.dumps({"pid": 4242, "create_time": 1.0, "host": "elsewhere",
                                    "acquired_at": "2024-05-01T12:00:00+00:00"}))
        with pytest.raises(StoreLockedError, match="pid 4242 on host elsewhere") as caught:
            DaemonLock(store).acquire()
        assert str(lock) in caught.value.hint
        assert lock.exists()


class TestDeadHolder:
    """The lock of a daemon that died is taken over, and the takeover is logged."""

    @pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
    def test_a_killed_holder_is_taken_over(self, store: Path, holder: Holder) -> None:
        holder.kill()
        with capture_logs() as logs:
            previous = DaemonLock(store).acquire()
        assert previous is not None
        assert previous.process.pid == holder.pid
        events = [e for e in logs if e["event"] == "store_lock_taken_over"]
        assert [(e["previous_pid"], e["previous_host"]) for e in events] == [
            (holder.pid, this_host())
        ]
        assert json.loads(lock_path_of(store).read_text())["pid"] == os.getpid()

    def test_an_unreadable_lock_is_taken_over(self, store: Path) -> None:
        lock_path_of(store).write_text("")
        with capture_logs() as logs:
            assert DaemonLock(store).acquire() is None
        assert "store_lock_taken_over" in [e["event"] for e in logs]


class TestRelease:
    """Releasing removes only a lock that is still ours."""

    def test_release_removes_our_lock_and_a_new_daemon_takes_it(self, store: Path) -> None:
        with DaemonLock(store):
            assert lock_path_of(store).exists()
        assert not lock_path_of(store).exists()
        with capture_logs() as logs, DaemonLock(store):
            pass
        assert logs == []

    def test_the_lock_says_since_when_by_the_daemon_clock(self, store: Path) -> None:
        clock = ManualClock()
        with DaemonLock(store, clock=clock):
            held = json.loads(lock_path_of(store).read_text())
        assert held["acquired_at"] == DEFAULT_MANUAL_START.isoformat()

    def test_release_keeps_a_lock_someone_else_took(self, store: Path) -> None:
        lock = DaemonLock(store)
        lock.acquire()
        taken = {"pid": 4242, "create_time": 1.0, "host": "elsewhere", "acquired_at": ""}
        lock_path_of(store).write_text(json.dumps(taken))
        lock.release()
        assert json.loads(lock_path_of(store).read_text())["pid"] == 4242



#: A daemon's start cut by kill -9 after it wrote its lock record to the temporary and before
#: it linked it into place: the real ``DaemonLock``, killed at its ``os.link``.
CUT_AT_LINK = (
    "import os, signal, sys; from pathlib import Path; "
    "from preform_pipeline.store.daemon_lock import DaemonLock; "
    "os.link = lambda *a: os.kill(os.getpid(), signal.SIGKILL); "
    "DaemonLock(Path(sys.argv[1])).acquire()"
)


def _temporaries(store: Path) -> list[str]:
    return sorted(p.name for p in store.parent.iterdir() if p.name.endswith(".tmp"))


def _killed_taking_the_lock(store: Path) -> Path:
    """The temporary a start killed at its lock's link left beside ``store``."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    cut = subprocess.Popen([sys.executable, "-c", CUT_AT_LINK, str(store)], env=env)
    assert cut.wait(WAIT_S) == -signal.SIGKILL
    left = store.parent / f"{lock_path_of(store).name}.{cut.pid}.tmp"
    assert _temporaries(store) == [left.name]
    return left


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
class TestKilledWhileTakingTheLock:
    """A daemon killed -9 while it took the lock leaves no temporary beside the store once the
    next daemon starts; a temporary whose writer may still need it stays."""

    def test_the_next_daemon_removes_the_killed_ones_temporary(self, store: Path) -> None:
        left = _killed_taking_the_lock(store)
        with capture_logs() as logs, DaemonLock(store):
            pass
        assert _temporaries(store) == []
        assert not lock_path_of(store).exists()
        assert [(e["path"], e["pid"]) for e in logs
                if e["event"] == "store_lock_temporary_removed"] == [
            (str(left), int(left.name.split(".")[-2]))]

    def test_a_running_writers_temporary_stays(self, store: Path) -> None:
        # A daemon starting this very moment: its record is in its temporary, not linked yet.
        writer = ProcessIdentity.of_running(os.getppid())
        assert writer is not None
        starting = store.parent / f"{lock_path_of(store).name}.{writer.pid}.tmp"
        starting.write_text(json.dumps({**writer.to_json(), "acquired_at": ""}))
        with DaemonLock(store):
            pass
        assert _temporaries(store) == [starting.name]

    def test_what_it_cannot_tell_dead_stays_and_the_dead_one_still_goes(
        self, store: Path
    ) -> None:
        left = _killed_taking_the_lock(store)
        name = lock_path_of(store).name
        dead = {"pid": 4242, "create_time": 1.0, "host": this_host(), "acquired_at": ""}
        # Named to come first (the folder is read in name order): another host's record, a
        # half-written one, and a file not named by a pid at all (a dead record inside).
        stay = {f"{name}.00.tmp": json.dumps({**dead, "host": "nas-2"}),
                f"{name}.000.tmp": '{"pid": 42', f"{name}.0a.tmp": json.dumps(dead)}
        for file, text in stay.items():
            (store.parent / file).write_text(text)
        with DaemonLock(store):
            pass
        assert not left.exists()
        assert _temporaries(store) == sorted(stay)

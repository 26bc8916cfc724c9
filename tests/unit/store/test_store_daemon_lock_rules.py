"""The daemon lock's rules (store/daemon_lock.py) with the holders written into the lock file:
what a refusal says, what a takeover logs, the files left behind, releasing."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from structlog.testing import capture_logs

from preform_pipeline.cli import run
from preform_pipeline.errors import StoreError, StoreLockedError
from preform_pipeline.hotfolder.testing import write_hotfolder_settings, write_recipe
from preform_pipeline.liveness import (
    ProcessIdentity,
    sees_every_process,
    this_host,
    this_instance,
)
from preform_pipeline.store.daemon_lock import (
    DaemonLock,
    LockHolder,
    lock_path_of,
)
from tests.instances import (
    child_environment,
    earlier_in_this_boot,
    in_new_pid_namespace,
    other_instance,
    ours_running,
    quiet_moment,
)
from tests.small_disk import SmallDisk

SINCE = "2024-05-01T12:00:00+00:00"
LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"),
                           reason="instances are named on Linux only")
MACHINE = pytest.mark.skipif(not sees_every_process(),
                             reason="needs the machine's own pid namespace")


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store" / "jobs.sqlite3"


def _write_lock(store: Path, record: object) -> Path:
    lock = lock_path_of(store)
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(json.dumps(record), encoding="utf-8")
    return lock


def _ps_start(moment: float) -> str:
    """A start as ``TZ=UTC ps -o lstart`` shows it, with UTC after it."""
    return time.strftime("%a %b %e %H:%M:%S %Y UTC", time.gmtime(moment))


def _parent() -> ProcessIdentity:
    """A process that runs on this host and is not this one: the test's parent."""
    parent = ProcessIdentity.of_running(os.getppid())
    assert parent is not None
    return parent


class TestRefusals:
    """A live holder, or one on another host, is refused with who, since when, and what to do."""

    def test_a_live_holder_on_this_host_is_refused_with_its_pid_and_time(
        self, store: Path
    ) -> None:
        parent = _parent()
        lock = _write_lock(store, {**parent.to_json(), "acquired_at": SINCE})
        before = lock.read_text(encoding="utf-8")
        with pytest.raises(StoreLockedError) as caught:
            DaemonLock(store).acquire()
        assert caught.value.message == (
            f"{store}: another daemon holds this store: pid {parent.pid} on host "
            f"{this_host()} (since {SINCE}), still running")
        assert caught.value.hint == "stop that daemon first, or use another store"
        assert (caught.value.lock_path, caught.value.host, caught.value.pid) == (
            lock, this_host(), parent.pid)
        assert lock.read_text(encoding="utf-8") == before
        assert sorted(p.name for p in lock.parent.iterdir()) == [lock.name]

    def test_a_holder_without_a_time_is_shown_without_one(self, store: Path) -> None:
        _write_lock(store, _parent().to_json())
        with pytest.raises(StoreLockedError, match=r"\(since \), still running \("):
            DaemonLock(store).acquire()

    def test_a_holder_on_another_host_is_refused_with_the_file_to_delete(
        self, store: Path
    ) -> None:
        lock = _write_lock(store, {"pid": 4242, "create_time": 1.0, "host": "elsewhere",
                                   "acquired_at": SINCE})
        with pytest.raises(StoreLockedError) as caught:
            DaemonLock(store).acquire()
        assert str(caught.value) == (
            f"{store}: another daemon holds this store: pid 4242 on host elsewhere "
            f"(since {SINCE}), on another host; it cannot be checked from here "
            "(on host elsewhere, check whether pid 4242, started Thu Jan  1 00:00:01 1970 "
            "UTC, still runs (`TZ=UTC ps -o pid,lstart,args -p 4242`); if it does not, "
            f"delete {lock})")
        assert lock.exists()


class TestTakeover:
    """A holder that no longer runs, or a file that is not a lock, is replaced and logged."""

    def test_a_recycled_pid_is_a_dead_holder_and_is_taken_over(self, store: Path) -> None:
        me = ProcessIdentity.current()
        dead = ProcessIdentity(pid=me.pid, create_time=earlier_in_this_boot(me.create_time),
                               host=me.host, instance=me.instance)
        lock = _write_lock(store, {**dead.to_json(), "acquired_at": SINCE})
        with capture_logs() as logs:
            previous = DaemonLock(store).acquire()
        assert previous == LockHolder(dead, SINCE)
        assert logs == [{"event": "store_lock_taken_over", "log_level": "warning",
                         "path": str(lock), "previous_pid": me.pid, "previous_host": me.host,
                         "reason": "holder not running"}]
        assert LockHolder.from_text(lock.read_text(encoding="utf-8")).process == me

    @pytest.mark.parametrize(("content", "error"), [
        ("[4242]", "not a lock record"),
        ('{"pid": 0, "create_time": 1.0, "host": "x"}', "not a process id: 0"),
    ])
    def test_a_file_that_is_not_a_lock_is_taken_over(
        self, store: Path, content: str, error: str
    ) -> None:
        lock = lock_path_of(store)
        lock.parent.mkdir(parents=True)
        lock.write_text(content, encoding="utf-8")
        with capture_logs() as logs:
            assert DaemonLock(store).acquire() is None
        unreadable = {"event": "store_lock_unreadable", "log_level": "warning",
                      "path": str(lock), "error": error}
        assert logs[0] == unreadable
        assert logs[-1] == {"event": "store_lock_taken_over", "log_level": "warning",
                            "path": str(lock), "previous_pid": None, "previous_host": None,
                            "reason": "lock file unreadable"}
        assert LockHolder.from_text(lock.read_text(encoding="utf-8")).process == (
            ProcessIdentity.current())

    def test_a_lock_that_is_a_folder_is_a_clear_error_and_watch_says_so(
        self, tmp_path: Path
    ) -> None:
        settings = write_hotfolder_settings(tmp_path, write_recipe(tmp_path))
        lock = lock_path_of(tmp_path / "jobs.sqlite3")
        lock.mkdir()
        with pytest.raises(StoreError) as caught:
            DaemonLock(tmp_path / "jobs.sqlite3").acquire()
        assert caught.value.message.startswith(f"{lock}: cannot remove the stale daemon lock: ")
        assert caught.value.hint == "remove it by hand once no daemon runs on this store"
        out, err = io.StringIO(), io.StringIO()
        assert run(["watch", str(settings), "--once"], out, err) == 1
        assert f"error: {lock}: cannot remove the stale daemon lock" in err.getvalue()
        assert "unexpected failure" not in err.getvalue()
        assert lock.is_dir()


class TestALinkToNothing:
    """A symbolic link to nothing where the lock should be is no lock: it is taken over as an
    unreadable lock, not mistaken for daemons racing to start."""

    def test_a_lock_linked_to_nothing_is_replaced_by_this_daemons_lock(self, store: Path) -> None:
        lock = lock_path_of(store)
        lock.parent.mkdir(parents=True)
        lock.symlink_to(lock.parent / "gone")
        with capture_logs() as logs:
            taken_over = DaemonLock(store).acquire()
        assert taken_over is None
        assert not lock.is_symlink()
        assert LockHolder.from_text(lock.read_text(encoding="utf-8")).process.pid == os.getpid()
        assert not (lock.parent / "gone").exists()
        [event] = [e for e in logs if e["event"] == "store_lock_taken_over"]
        assert event["reason"] == "lock file unreadable"


class TestTheFiles:
    """The lock is written whole beside the store, in a folder made for it, and nothing else."""

    def test_the_lock_names_this_process_and_no_temporary_file_is_left(
        self, store: Path
    ) -> None:
        with capture_logs() as logs:
            assert DaemonLock(store).acquire() is None
        assert logs == []
        lock = lock_path_of(store)
        assert sorted(p.name for p in store.parent.iterdir()) == ["jobs.sqlite3.daemon.lock"]
        assert LockHolder.from_text(lock.read_text(encoding="utf-8")).process == (
            ProcessIdentity.current())

    def test_the_store_s_folders_are_made_for_the_lock(self, tmp_path: Path) -> None:
        store = tmp_path / "a" / "b" / "jobs.sqlite3"
        with DaemonLock(store):
            assert lock_path_of(store).is_file()

    def test_a_folder_that_cannot_be_made_is_a_store_error(self, tmp_path: Path) -> None:
        (tmp_path / "store").write_text("a file where the folder should be")
        store = tmp_path / "store" / "jobs.sqlite3"
        with pytest.raises(StoreError) as caught:
            DaemonLock(store).acquire()
        assert caught.value.message.startswith(
            f"{lock_path_of(store)}: cannot write the daemon lock: ")
        assert caught.value.hint == (
            "a file stands where a folder of the path should be: move it away")

    def test_a_full_disk_is_said_and_leaves_no_temporary(self, small_disk: SmallDisk) -> None:
        store = small_disk.root / "jobs.sqlite3"
        small_disk.fill()
        with pytest.raises(StoreError) as caught:
            DaemonLock(store).acquire()
        assert caught.value.message.startswith(
            f"{lock_path_of(store)}: cannot write the daemon lock: [Errno 28] No space left "
            f"on device: '{lock_path_of(store)}.")
        assert caught.value.hint == "the disk is full: free some space on it, then try again"
        assert sorted(p.name for p in small_disk.root.iterdir()) == ["filler"]


class TestReleasing:
    """A lock is released by the process that took it, also after a failure inside it."""

    def test_a_second_lock_of_the_same_process_shares_the_lock(self, store: Path) -> None:
        first = DaemonLock(store)
        first.acquire()
        second = DaemonLock(store)
        assert second.acquire() is None
        second.release()
        assert not lock_path_of(store).exists()

    def test_a_lock_never_taken_releases_nothing(self, store: Path) -> None:
        lock = _write_lock(store, {**ProcessIdentity.current().to_json(), "acquired_at": ""})
        DaemonLock(store).release()
        assert lock.exists()

    def test_a_lock_file_deleted_meanwhile_is_no_error(self, store: Path) -> None:
        held = DaemonLock(store)
        held.acquire()
        lock_path_of(store).unlink()
        held.release()
        assert not lock_path_of(store).exists()

    def test_the_context_releases_when_the_body_fails(self, store: Path) -> None:
        with pytest.raises(RuntimeError), DaemonLock(store) as held:
            assert held.path == lock_path_of(store)
            assert lock_path_of(store).exists()
            raise RuntimeError("the daemon failed")
        assert not lock_path_of(store).exists()


def _holder_in(instance: str) -> ProcessIdentity:
    """The test's parent as a process of ``instance``: a pid that here is a live process."""
    parent = _parent()
    return ProcessIdentity(parent.pid, parent.create_time, parent.host, instance)


class TestAHolderOfAnotherInstance:
    """The lock is beside a store on this machine's disk: a holder of this host name in another
    pid namespace of this boot (another container) cannot be judged here; one of another boot
    is this machine before it restarted, and has ended."""

    def test_another_container_s_holder_is_refused_as_one_that_cannot_be_checked(
        self, store: Path
    ) -> None:
        holder = _holder_in(other_instance())
        lock = _write_lock(store, {**holder.to_json(), "acquired_at": SINCE})
        with capture_logs() as logs, pytest.raises(StoreLockedError) as caught:
            DaemonLock(store).acquire()
        assert caught.value.message == (
            f"{store}: another daemon holds this store: pid {holder.pid} on host "
            f"{this_host()} (since {SINCE}), in another container (pid namespace) of this "
            "host name; it cannot be checked from here")
        assert caught.value.hint == (
            f"in the container of host name {this_host()} that holds it, check whether pid "
            f"{holder.pid}, started {_ps_start(holder.create_time)}, still runs (`TZ=UTC ps -o "
            f"pid,lstart,args -p {holder.pid}`); if it does not, delete {lock}")
        assert LockHolder.from_text(lock.read_text(encoding="utf-8")).process.instance == (
            holder.instance)
        assert logs == []

    def test_an_earlier_boot_s_holder_is_taken_over_and_said(self, store: Path) -> None:
        holder = _holder_in(other_instance(boot=True))
        lock = _write_lock(store, {**holder.to_json(), "acquired_at": SINCE})
        with capture_logs() as logs:
            assert DaemonLock(store).acquire() == LockHolder(holder, SINCE)
        assert logs == [{"event": "store_lock_taken_over", "log_level": "warning",
                         "path": str(lock), "previous_pid": holder.pid,
                         "previous_host": holder.host,
                         "reason": "holder ran before this machine restarted"}]
        taken = LockHolder.from_text(lock.read_text(encoding="utf-8")).process
        assert (taken, taken.instance) == (ProcessIdentity.current(), this_instance())

    def test_a_lock_that_names_no_instance_is_judged_by_its_host_as_before(
        self, store: Path
    ) -> None:
        before = {k: v for k, v in _parent().to_json().items() if k != "instance"}
        _write_lock(store, {**before, "acquired_at": SINCE})
        with pytest.raises(StoreLockedError, match=r"still running"):
            DaemonLock(store).acquire()

    def test_a_holder_that_names_no_instance_and_ran_before_this_boot_is_taken_over(
        self, store: Path
    ) -> None:
        me = ProcessIdentity.current()
        before_boot = ProcessIdentity(me.pid, psutil.boot_time() - 3600.0, me.host)
        lock = _write_lock(store, {**before_boot.to_json(), "acquired_at": SINCE})
        with capture_logs() as logs:
            assert DaemonLock(store).acquire() == LockHolder(before_boot, SINCE)
        assert logs == [{"event": "store_lock_taken_over", "log_level": "warning",
                         "path": str(lock), "previous_pid": me.pid, "previous_host": me.host,
                         "reason": "holder ran before this machine restarted"}]

    @pytest.mark.parametrize(("boot", "kept"), [(False, True), (True, False)])
    def test_a_lock_temporary_is_removed_only_when_its_writer_has_ended(
        self, store: Path, boot: bool, kept: bool
    ) -> None:
        writer = _holder_in(other_instance(boot=boot))
        temporary = _write_lock(store, {}).with_name(
            f"{lock_path_of(store).name}.{writer.pid}.tmp")
        temporary.write_text(LockHolder(writer, SINCE).to_text(), encoding="utf-8")
        lock_path_of(store).unlink()
        with capture_logs() as logs:
            DaemonLock(store).acquire()
        assert temporary.exists() is kept
        assert [e["event"] for e in logs] == ([] if kept else ["store_lock_temporary_removed"])


def _earlier_lock(store: Path, pid: int, create_time: float) -> Path:
    """A lock as an earlier version wrote it: host, pid and start time, no instance."""
    return _write_lock(store, {"pid": pid, "create_time": create_time, "host": this_host(),
                               "acquired_at": SINCE})


class TestALockOfAnEarlierVersion:
    """A lock written before locks named their container (session 34): this machine's own pid
    namespace sees every process of the machine, so when none that may be ours started at the
    holder's moment the holder has ended (killed: kill -9, the OOM killer) and the lock is
    taken over and said; while one runs, perhaps that daemon in another container, it is
    refused with the file named."""

    @MACHINE
    @pytest.mark.timeout(60)
    def test_a_killed_holder_is_taken_over_and_said(self, store: Path) -> None:
        with ours_running() as daemon:
            held = ProcessIdentity.of_running(daemon.pid)
            assert held is not None
            lock = _earlier_lock(store, held.pid, held.create_time)
            with pytest.raises(StoreLockedError, match="still running"):
                DaemonLock(store).acquire()
            daemon.kill()
        with capture_logs() as logs:
            taken = DaemonLock(store).acquire()
        assert taken == LockHolder(ProcessIdentity(held.pid, held.create_time, held.host),
                                   SINCE)
        assert logs == [{"event": "store_lock_taken_over", "log_level": "warning",
                         "path": str(lock), "previous_pid": held.pid,
                         "previous_host": held.host,
                         "reason": "holder of an earlier version not running: no process of "
                                   "ours that started at its moment runs on this machine"}]
        assert LockHolder.from_text(lock.read_text(encoding="utf-8")).process.instance == (
            this_instance())

    @MACHINE
    def test_a_holder_whose_moment_no_process_started_at_is_taken_over(
        self, store: Path
    ) -> None:
        lock = _earlier_lock(store, os.getpid(), quiet_moment())
        with capture_logs() as logs:
            assert DaemonLock(store).acquire() is not None
        assert [e["event"] for e in logs] == ["store_lock_taken_over"]
        assert ProcessIdentity.current() == LockHolder.from_text(
            lock.read_text(encoding="utf-8")).process

    @MACHINE
    @pytest.mark.timeout(60)
    def test_a_process_of_ours_started_at_its_moment_keeps_it_refused(
        self, store: Path
    ) -> None:
        # Another container's daemon: there pid 1; here another pid, started at that moment.
        with ours_running() as daemon:
            alike = ProcessIdentity.of_running(daemon.pid)
            assert alike is not None
            lock = _earlier_lock(store, 1, alike.create_time)
            before = lock.read_text(encoding="utf-8")
            with capture_logs() as logs, pytest.raises(StoreLockedError) as caught:
                DaemonLock(store).acquire()
        assert caught.value.message == (
            f"{store}: another daemon holds this store: pid 1 on host {this_host()} (since "
            f"{SINCE}), named by an earlier version, without its container (pid namespace): "
            f"a process of ours that started at that moment still runs here (pid "
            f"{daemon.pid}), perhaps that daemon in another container; it cannot be checked "
            "from here")
        assert caught.value.hint == (
            f"check whether pid {daemon.pid} here, started {_ps_start(alike.create_time)}, is "
            f"that daemon (`TZ=UTC ps -o pid,lstart,args -p {daemon.pid}`): stop it if it is; "
            f"if it is not a daemon on this store, delete {lock}")
        assert (lock.read_text(encoding="utf-8"), logs) == (before, [])

    @MACHINE
    @pytest.mark.timeout(60)
    def test_a_process_of_another_program_started_at_its_moment_does_not(
        self, store: Path
    ) -> None:
        with ours_running(ours=False) as other:
            alike = ProcessIdentity.of_running(other.pid)
            assert alike is not None
            _earlier_lock(store, 1, alike.create_time)
            with capture_logs() as logs:
                assert DaemonLock(store).acquire() is not None
        assert [e["event"] for e in logs] == ["store_lock_taken_over"]

    @LINUX
    @pytest.mark.timeout(60)
    def test_inside_a_container_the_hint_says_what_to_check_and_run(
        self, store: Path
    ) -> None:
        # Inside a pid namespace of its own a daemon cannot see the other containers: the
        # earlier version's holder cannot be ruled out, and the person is told where to look,
        # for what start, with which command, and what to delete.
        prefix = in_new_pid_namespace()
        if prefix is None:
            pytest.skip("this system does not let a test make a pid namespace (unshare)")
        moment = quiet_moment()
        lock = _earlier_lock(store, 4242, moment)
        judged = subprocess.run([*prefix, sys.executable, "-c", TRY_THE_LOCK, str(store)],
                                capture_output=True, text=True, timeout=60,
                                env=child_environment(), check=False)
        assert judged.returncode == 0, judged.stderr
        message, hint = json.loads(judged.stdout)
        assert message.endswith("another container of this host name may hold that pid; it "
                                "cannot be checked from here")
        assert hint == (
            "on this machine outside any container (where that daemon's pid differs from "
            f"4242), look for a preform-pipeline process started {_ps_start(moment)} "
            f"(`TZ=UTC ps -eo pid,lstart,args | grep -i preform`); if none runs, delete {lock}")
        assert LockHolder.from_text(lock.read_text(encoding="utf-8")).process.pid == 4242


#: In a child: try the lock of the store named, and say the refusal (message and hint).
TRY_THE_LOCK = """
import json, sys
from pathlib import Path
from preform_pipeline.errors import StoreLockedError
from preform_pipeline.store.daemon_lock import DaemonLock
try:
    DaemonLock(Path(sys.argv[1])).acquire()
except StoreLockedError as refused:
    print(json.dumps([refused.message, refused.hint]))
else:
    print(json.dumps(["taken", None]))
"""

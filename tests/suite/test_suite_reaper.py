"""A test session killed outright leaves nothing running; one that ends normally is left be.

Each case starts a real ``python -m pytest`` with this suite's conftest as a plugin, over a
one-test folder written into tmp_path. The tiny test takes the real ``pg_cluster`` fixture,
starts a child process of its own (a stand-in for a daemon a test started), writes down the
cluster's folder and the child's PID, and then either blocks (to be killed) or returns.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests import reaper
from tests.multinode_farm import wait_until
from tests.nested_pytest import nested_pytest
from tests.pg_cluster import require_postgres

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 120.0

#: A child that starts a grandchild, says its PID, and ends when its stdin closes (and the
#: grandchild with it, whose stdin is the child's pipe).
PARENT_OF_ONE = (
    "import subprocess, sys\n"
    "c = subprocess.Popen([sys.executable, '-c', 'import sys; sys.stdin.read()'],"
    " stdin=subprocess.PIPE)\n"
    "print(c.pid, flush=True)\n"
    "sys.stdin.read()\n"
)

TINY_TEST = '''
import json, subprocess, sys, threading
from pathlib import Path


def test_holds_a_cluster_and_a_child(pg_cluster):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    held = {{"cluster": str(pg_cluster.root), "child": child.pid}}
    Path("held.tmp").write_text(json.dumps(held))
    Path("held.tmp").replace("held.json")
    if {block}:
        threading.Event().wait()
'''

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


def start_session(
    folder: Path, *, block: bool
) -> tuple[subprocess.Popen[bytes], dict[str, object]]:
    require_postgres()
    (folder / "test_tiny.py").write_text(TINY_TEST.format(block=block), encoding="utf-8")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
    environment["PYTHONPATH"] = str(REPO_ROOT)
    session = subprocess.Popen(
        nested_pytest("test_tiny.py"),
        cwd=folder, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    held_file = folder / "held.json"
    wait_until("the tiny test to hold its cluster and child", held_file.exists, TIMEOUT_S)
    return session, json.loads(held_file.read_text())


def gone(pid: object) -> bool:
    try:
        return psutil.Process(int(str(pid))).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def watchers_of(pid: int) -> list[psutil.Process]:
    """The running watchers of the process ``pid`` (tests/reaper.py names it in its argv)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        argv = process.info["cmdline"] or []
        if len(argv) > 2 and argv[1].endswith("reaper.py") and argv[2] == str(pid):
            found.append(process)
    return found


class TestAKilledSession:
    """Its cluster is stopped and removed and the processes its tests started are ended."""

    @pytest.mark.parametrize("signal_number", [signal.SIGKILL, signal.SIGTERM])
    def test_nothing_it_started_runs_on(self, tmp_path: Path, signal_number: int) -> None:
        session, held = start_session(tmp_path, block=True)
        cluster = Path(str(held["cluster"]))
        postmaster = int((cluster / "data" / "postmaster.pid").read_text().split()[0])
        session.send_signal(signal_number)
        session.wait(timeout=TIMEOUT_S)
        wait_until("the test's child to end", lambda: gone(held["child"]), TIMEOUT_S)
        wait_until("the cluster's server to stop", lambda: gone(postmaster), TIMEOUT_S)
        wait_until("the cluster's folder to go", lambda: not cluster.exists(), TIMEOUT_S)


class TestASessionThatEndsNormally:
    """Its fixtures clean up; whatever a test left running is not hidden by the watcher."""

    def test_its_cluster_goes_and_a_left_child_is_left_alone(self, tmp_path: Path) -> None:
        session, held = start_session(tmp_path, block=False)
        assert session.wait(timeout=TIMEOUT_S) == pytest.ExitCode.OK
        assert not Path(str(held["cluster"])).exists()
        child = psutil.Process(int(str(held["child"])))
        try:
            wait_until("the session's watcher to end", lambda: not watchers_of(session.pid),
                       TIMEOUT_S)
            assert child.is_running() and child.status() != psutil.STATUS_ZOMBIE
        finally:
            child.kill()


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="start ticks are read from /proc on Linux")
class TestAProcessAsTheWatcherNamesIt:
    """By its pid and start in ticks: a clock stepped across a second leaves its owner alive."""

    def test_a_live_owner_stays_itself_when_the_boot_time_reads_a_second_later(
            self, monkeypatch: pytest.MonkeyPatch) -> None:
        me = os.getpid()
        started = reaper._start_of(me)
        assert started is not None
        before = psutil.Process(me).create_time()
        # The clock seam: psutil reads the boot's time from the wall clock, in whole seconds.
        boot = psutil.boot_time()
        monkeypatch.setattr("psutil._pslinux.boot_time", lambda: boot + 1.0)
        assert psutil.Process(me).create_time() == pytest.approx(before + 1.0)
        assert reaper._start_of(me) == started
        assert reaper._same(me, started) is not None

    def test_another_start_under_its_pid_is_another_process(self) -> None:
        me = os.getpid()
        started = reaper._start_of(me)
        assert started is not None
        assert reaper._same(me, started + 1) is None

    def test_an_ended_process_has_no_start(self) -> None:
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        child.wait(30)
        assert reaper._start_of(child.pid) is None
        assert reaper._same(child.pid, 0) is None


class TestALook:
    """The watcher's look finds every descendant, also one started with an environment of its
    own (no token to find it by), and reads no start it already knows."""

    def test_children_and_grandchildren_with_their_start_times(self) -> None:
        child = subprocess.Popen([sys.executable, "-c", PARENT_OF_ONE], env={},
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert child.stdin is not None and child.stdout is not None
        try:
            grandchild = int(child.stdout.readline())
            started = {pid: reaper._start_of(pid) for pid in (child.pid, grandchild)}
            seen = reaper._descendants(os.getpid(), -1, {})
            assert started.items() <= seen.items()
            # The last look's starts are kept for the PIDs still there; a PID gone since
            # is dropped (so its number, given out again later, is asked about afresh).
            again = reaper._descendants(os.getpid(), -1, {child.pid: 1, 4_000_000_000: 2})
            assert again[child.pid] == 1 and again[grandchild] == started[grandchild]
            assert 4_000_000_000 not in again
        finally:
            child.stdin.close()
            child.wait(30)

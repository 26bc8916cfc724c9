"""A test session killed outright leaves nothing running; one that ends normally is left be.

Each case starts a real ``python -m pytest`` with this suite's conftest as a plugin, over a
one-test folder written into tmp_path. The tiny test takes the real ``pg_cluster`` fixture,
starts a child process of its own (a stand-in for a daemon a test started), writes down the
cluster's folder and the child's PID, and then either blocks (to be killed) or returns.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
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
    folder: Path, *, block: bool, workers: int = 0, temp: Path | None = None
) -> tuple[subprocess.Popen[bytes], dict[str, object]]:
    """A nested session over the tiny test, and what it holds; with ``workers``, as many
    copies of the test in files of their own on as many xdist workers (one cluster each), in
    a process group of its own (to be killed whole), and what the first holds; with ``temp``,
    its temporary folder (its registries and clusters)."""
    require_postgres()
    names = [f"test_tiny{n}.py" for n in range(max(workers, 1))]
    for name in names:
        text = TINY_TEST.format(block=block).replace("held.", f"held-{name}.")
        (folder / name).write_text(text, encoding="utf-8")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
    environment["PYTHONPATH"] = str(REPO_ROOT)
    if temp is not None:
        environment["TMPDIR"] = str(temp)
    options = ["-n", str(workers), "--dist", "loadfile"] if workers else []
    session = subprocess.Popen(
        nested_pytest(*options, *names),
        cwd=folder, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=workers > 0,
    )
    held_files = [folder / f"held-{name}.json" for name in names]
    wait_until("the tiny tests to hold their clusters and children",
               lambda: all(held.exists() for held in held_files), TIMEOUT_S)
    return session, json.loads(held_files[0].read_text())


def held_by(folder: Path) -> list[dict[str, object]]:
    """What each tiny test of a session in ``folder`` holds."""
    return [json.loads(held.read_text()) for held in sorted(folder.glob("held-*.json"))]


def postmaster_of(cluster: Path) -> int:
    return int((cluster / "data" / "postmaster.pid").read_text().split()[0])


def gone(pid: object) -> bool:
    try:
        return psutil.Process(int(str(pid))).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def missing(path: Path) -> bool:
    return not path.exists()


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
        postmaster = postmaster_of(cluster)
        session.send_signal(signal_number)
        session.wait(timeout=TIMEOUT_S)
        wait_until("the test's child to end", lambda: gone(held["child"]), TIMEOUT_S)
        wait_until("the cluster's server to stop", lambda: gone(postmaster), TIMEOUT_S)
        wait_until("the cluster's folder to go", lambda: not cluster.exists(), TIMEOUT_S)


class TestAKilledParallelSession:
    """Killed with its whole process group (controller and workers at once, as a tool stops a
    job), each worker's cluster and child go too.

    The workers' watchers are below the controller: its watcher, at the controller's death,
    used to kill them with the workers before they had stopped their clusters (session 38).
    """

    def test_nothing_any_worker_started_runs_on(self, tmp_path: Path) -> None:
        # A temporary folder of its own: no other run's watcher reaps its registries
        # (reap_stale) should its own watchers fail. Not under tmp_path, which the server's
        # user may not enter (pg_cluster.py); short, for the server's socket path.
        temp = Path(tempfile.mkdtemp(prefix="pp-t-"))
        temp.chmod(0o755)
        try:
            session, _ = start_session(tmp_path, block=True, workers=2, temp=temp)
            held = held_by(tmp_path)
            clusters = [Path(str(h["cluster"])) for h in held]
            assert all(cluster.parent == temp for cluster in clusters)
            postmasters = [postmaster_of(cluster) for cluster in clusters]
            os.killpg(session.pid, signal.SIGKILL)
            session.wait(timeout=TIMEOUT_S)
            for pid in [*postmasters, *(h["child"] for h in held)]:
                wait_until(f"process {pid} to end", functools.partial(gone, pid), TIMEOUT_S)
            for cluster in clusters:
                wait_until(f"{cluster} to go", functools.partial(missing, cluster), TIMEOUT_S)
            wait_until("every registry to go", lambda: not list(temp.glob("pp-reaper-*")),
                       TIMEOUT_S)
        finally:
            shutil.rmtree(temp, ignore_errors=True)


class TestTheMutationRunsCluster:
    """The store's mutation runs share one cluster that outlives their sessions
    (tests/unit/store/mutation_cluster.py): its owner hung up with its shell, or killed
    outright, leaves no cluster running (one ran on for an hour in session 41)."""

    @pytest.mark.parametrize("signal_number", [signal.SIGHUP, signal.SIGKILL])
    def test_its_cluster_goes_with_its_owner(self, signal_number: int) -> None:
        require_postgres()
        # Its own temporary folder (as above): the cluster is made there, findable, and no
        # other run's watcher reaps its registry.
        temp = Path(tempfile.mkdtemp(prefix="pp-t-"))
        temp.chmod(0o755)
        environment = {k: v for k, v in os.environ.items()
                       if not k.startswith("PREFORM_PIPELINE_") and k != reaper.TOKEN_ENV}
        environment.update(PYTHONPATH=str(REPO_ROOT), TMPDIR=str(temp))
        owner = subprocess.Popen([sys.executable, "-m", "tests.unit.store.mutation_cluster"],
                                 cwd=REPO_ROOT, env=environment, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
        postmaster = None
        try:
            assert owner.stdout is not None
            assert owner.stdout.readline().startswith("PREFORM_PIPELINE_MUTATION_PG_PORT=")
            (cluster,) = temp.glob("pp-pg-*")
            postmaster = postmaster_of(cluster)
            owner.send_signal(signal_number)
            owner.wait(timeout=TIMEOUT_S)
            wait_until("the cluster's server to stop", lambda: gone(postmaster), TIMEOUT_S)
            wait_until("the cluster's folder to go", lambda: not cluster.exists(), TIMEOUT_S)
        finally:
            owner.kill()
            owner.wait(timeout=TIMEOUT_S)
            if postmaster is not None and not gone(postmaster):  # failed: not left running
                os.kill(postmaster, signal.SIGINT)
            shutil.rmtree(temp, ignore_errors=True)


class TestAStaleRegistry:
    """A registry whose owner ended and whose watcher is gone without reaping it is reaped by
    the next watcher's :func:`~tests.reaper.reap_stale`; any other is left alone."""

    @staticmethod
    def ended_token() -> str:
        ended = subprocess.Popen([sys.executable, "-c", "pass"])
        started = reaper._start_of(ended.pid)
        ended.wait(30)
        return f"{ended.pid}-{started}-{reaper._pid_namespace()}"

    @staticmethod
    def carrying(token: str) -> subprocess.Popen[bytes]:
        """A real process a test of that session started (its token in its environment)."""
        return subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                                stdin=subprocess.PIPE, env={reaper.TOKEN_ENV: token})

    @staticmethod
    def registry(folder: Path, token: str, cluster: Path) -> Path:
        cluster.mkdir()
        path = folder / f"pp-reaper-{token}.jsonl"
        # No server binaries: the stop fails as for a server already down; the folder goes.
        entry = {"cluster": str(cluster), "bin_dir": str(folder / "no-bin"), "user": None}
        path.write_text(json.dumps(entry) + "\n", encoding="utf-8")
        return path

    def test_an_ended_owners_is_reaped(self, tmp_path: Path) -> None:
        token = self.ended_token()
        registry = self.registry(tmp_path, token, tmp_path / "cluster")
        left = self.carrying(token)
        try:
            reaper.reap_stale(tmp_path, os.getpid())
            assert left.wait(TIMEOUT_S) == -signal.SIGKILL
            assert not registry.exists() and not (tmp_path / "cluster").exists()
        finally:
            left.kill()
            left.wait(TIMEOUT_S)

    def test_a_dead_servers_pid_now_anothers_is_not_signalled(self, tmp_path: Path) -> None:
        """Its server died with its watcher: ``postmaster.pid`` names a PID another process
        (of the server's user) has now, which ``pg_ctl stop`` would SIGQUIT unchecked."""
        require_postgres()
        from tests.pg_cluster import _server_user, find_pg_bin

        user = _server_user()
        cluster = Path(tempfile.mkdtemp(prefix="pp-pg-"))  # where the server's user can read
        data = cluster / "data"
        data.mkdir()
        (data / "PG_VERSION").write_text("15\n", encoding="ascii")
        other = subprocess.Popen(["sleep", "600"], user=user)  # a program its user may run
        try:
            (data / "postmaster.pid").write_text(
                f"{other.pid}\n{data}\n0\n5432\n{cluster}\n127.0.0.1\n  0  0\nready   \n",
                encoding="ascii")
            if user is not None:
                for path in (cluster, data, *data.iterdir()):
                    shutil.chown(path, user)
            token = self.ended_token()
            registry = tmp_path / f"pp-reaper-{token}.jsonl"
            entry = {"cluster": str(cluster), "bin_dir": str(find_pg_bin()), "user": user}
            registry.write_text(json.dumps(entry) + "\n", encoding="utf-8")
            reaper.reap_stale(tmp_path, os.getpid())
            assert not registry.exists() and not cluster.exists()
            assert other.poll() is None
        finally:
            other.kill()
            other.wait(TIMEOUT_S)
            shutil.rmtree(cluster, ignore_errors=True)

    @pytest.mark.parametrize("case", ["owner runs", "watcher holds it", "other namespace"])
    def test_any_other_is_left_alone(self, tmp_path: Path, case: str) -> None:
        token = self.ended_token()
        if case == "owner runs":
            me = os.getpid()
            token = f"{me}-{reaper._start_of(me)}-{reaper._pid_namespace()}"
        elif case == "other namespace":
            token = token.rpartition("-")[0] + "-1"
        registry = self.registry(tmp_path, token, tmp_path / "cluster")
        left = self.carrying(token)
        try:
            with registry.open("rb") as held:
                if case == "watcher holds it":
                    fcntl.flock(held, fcntl.LOCK_EX)
                reaper.reap_stale(tmp_path, os.getpid())
            assert left.poll() is None
            assert registry.exists() and (tmp_path / "cluster").exists()
        finally:
            left.kill()
            left.wait(TIMEOUT_S)


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


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="the watcher is started on Linux only")
class TestStartingAWatcher:
    """Session 48's review: every pytest process printed ``ResourceWarning: subprocess N is
    still running`` under ``-W default``, its watcher's Popen collected while the watcher ran
    on, as it is meant to."""

    def test_warns_of_no_subprocess_left_running(self, tmp_path: Path) -> None:
        environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TMPDIR": str(tmp_path)}
        environment.pop(reaper.TOKEN_ENV, None)
        owner = subprocess.run(
            [sys.executable, "-W", "always::ResourceWarning", "-c",
             "import gc; from tests.reaper import watch_this_process; watch_this_process(); "
             "import os; gc.collect(); print(os.getpid(), flush=True)"],
            env=environment, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        try:
            assert (owner.returncode, owner.stderr) == (0, "")
        finally:
            # Its owner has ended: the watcher reaps its registry and ends.
            pid = int(owner.stdout)
            wait_until("the owner's watcher to end", lambda: not watchers_of(pid)
                       and not list(tmp_path.glob("pp-reaper-*")), TIMEOUT_S)

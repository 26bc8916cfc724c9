"""Kill a real parallel test session every way CI or a person can, and say what outlived it.

Run by hand (``python -m tests.faults.kill_a_test_session [WAY ...]`` from the checkout, as
root like CI, or as a user); recorded in docs/testing.md. Each way starts a real
``python -m pytest -n 2`` (this suite's conftest as a plugin) over two tiny test files in a
fresh folder; each file's test takes the real ``pg_cluster`` fixture (one cluster per
worker), starts a child of its own (a stand-in for a daemon or simulator a test starts),
writes both down and blocks. Then the session is killed:

- ``sigint``: SIGINT to its process group (a terminal's Ctrl-C);
- ``sigterm``: SIGTERM to the controller (``kill``, a CI timeout);
- ``sigkill``: SIGKILL to the controller (``kill -9``, the OOM killer);
- ``sigkill-group``: SIGKILL to its whole process group (a tool that stops a job);
- ``sigkill-workers``: SIGKILL to both xdist workers (xdist starts others in their place,
  which run the tests again; once the killed workers' clusters and children are gone, the
  whole group is killed as above, and the new workers' must go too).

and within :data:`WAIT_S` every cluster's server, its folder, every child, every watcher
and every watcher's registry must be gone. The quick, always-run form of the worst case is
``tests/suite/test_suite_reaper.py::TestAKilledParallelSession``; this script is the whole
matrix, too slow for the suite (about 10 s a way on two cores).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from tests.nested_pytest import nested_pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 60.0

TINY_TEST = '''
import json, os, subprocess, sys, threading
from pathlib import Path


def test_holds_a_cluster_and_a_child(pg_cluster):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    held = {{"cluster": str(pg_cluster.root), "child": child.pid, "worker": os.getpid()}}
    Path("held-{name}.tmp").write_text(json.dumps(held))
    Path("held-{name}.tmp").replace("held-{name}.json")
    threading.Event().wait()
'''

NAMES = ("a", "b")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _missing(path: Path) -> bool:
    return not path.exists()


def _working_in(folder: Path) -> list[int]:
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if Path(process.cwd()).is_relative_to(folder):
                found.append(process.pid)
    return found


def _none_working_in(folder: Path) -> bool:
    left = _working_in(folder)
    if left:
        _left_in[folder] = left
    return not left


_left_in: dict[Path, list[int]] = {}


def _watchers_of(pids: set[int]) -> list[int]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        argv = process.info["cmdline"] or []
        if len(argv) > 2 and argv[1].endswith("reaper.py") and argv[2] in {str(p) for p in pids}:
            found.append(process.pid)
    return found


def _wait(what: str, done: Callable[[], bool], deadline: float) -> bool:
    while True:  # looked at once at least, however late
        if done():
            return True
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)  # a script run by hand, polling real processes; not a test
    print(f"    NOT GONE: {what}", flush=True)
    return False


def one_way(way: str) -> bool:
    folder = Path(tempfile.mkdtemp(prefix="pp-kill-"))
    for name in NAMES:
        (folder / f"test_{name}.py").write_text(TINY_TEST.format(name=name), encoding="utf-8")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
    environment["PYTHONPATH"] = str(REPO_ROOT)
    session = subprocess.Popen(
        nested_pytest("-n", "2", "--dist", "loadfile"),
        cwd=folder, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    started = time.monotonic()
    held_files = [folder / f"held-{name}.json" for name in NAMES]
    if not _wait("both tests holding", lambda: all(f.exists() for f in held_files),
                 started + WAIT_S):
        session.kill()
        return False
    held = [json.loads(f.read_text()) for f in held_files]
    clusters = [Path(h["cluster"]) for h in held]
    postmasters = [int((c / "data" / "postmaster.pid").read_text().split()[0])
                   for c in clusters]
    children = [int(h["child"]) for h in held]
    workers = [int(h["worker"]) for h in held]
    owners = {session.pid, *workers}
    watchers = _watchers_of(owners)
    registries = [p for p in Path(tempfile.gettempdir()).glob("pp-reaper-*.jsonl")
                  if p.name.split("-")[2] in {str(o) for o in owners}]
    print(f"  {way}: controller {session.pid}, workers {workers}, postmasters {postmasters}, "
          f"children {children}, watchers {watchers}, {len(registries)} registries "
          f"(held after {time.monotonic() - started:.1f} s)", flush=True)
    killed_at = time.monotonic()
    if way == "sigint":
        os.killpg(session.pid, signal.SIGINT)
    elif way == "sigterm":
        session.send_signal(signal.SIGTERM)
    elif way == "sigkill":
        session.kill()
    elif way == "sigkill-group":
        os.killpg(session.pid, signal.SIGKILL)
    elif way == "sigkill-workers":
        for worker in workers:
            os.kill(worker, signal.SIGKILL)
    else:
        raise SystemExit(f"no such way: {way}")
    deadline = killed_at + WAIT_S
    ok = True
    if way == "sigkill-workers":
        # The session lives on: xdist starts workers in the killed ones' place, which run
        # their tests again (and block). What the killed workers held must go meanwhile;
        # then the whole group is killed, and what the new workers hold must go too.
        for pid in [*postmasters, *children]:
            ok &= _wait(f"process {pid}", functools.partial(_gone, pid), deadline)
        print(f"    the killed workers' clusters and children gone "
              f"{time.monotonic() - killed_at:.1f} s after the kill", flush=True)
        os.killpg(session.pid, signal.SIGKILL)
    ok &= _wait("the session", lambda: session.poll() is not None, deadline)
    for pid in [*postmasters, *children, *watchers]:
        ok &= _wait(f"process {pid}", functools.partial(_gone, pid), deadline)
    for path in [*clusters, *registries]:
        ok &= _wait(f"{path}", functools.partial(_missing, path), deadline)
    # Whatever else the session started (an xdist worker started in a killed one's place
    # runs tests too) works in its folder, or is a server of a cluster of its.
    ok &= _wait("every process working in the session's folder",
                functools.partial(_none_working_in, folder), deadline)
    print(f"    {'all gone' if ok else 'LEFT BEHIND'} {time.monotonic() - killed_at:.1f} s "
          f"after the kill", flush=True)
    if not ok:  # clean up by hand what the suite's own watchers left, so the next way is fair
        print(f"    working in its folder: {_left_in.get(folder, [])}", flush=True)
        for pid in [*postmasters, *children, *watchers, *_working_in(folder)]:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)
        for cluster in clusters:
            shutil.rmtree(cluster, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)
    return ok


def main(ways: list[str]) -> int:
    ways = ways or ["sigint", "sigterm", "sigkill", "sigkill-group", "sigkill-workers"]
    failed = [way for way in ways if not one_way(way)]
    print(f"{len(ways) - len(failed)} of {len(ways)} ways left nothing running"
          + (f"; left behind by: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

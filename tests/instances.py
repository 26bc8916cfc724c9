"""Other instances of this host name for identity tests (liveness.py): instance strings that
name another pid namespace or another boot, the command prefix that runs a real program in a
new pid namespace (another container of the same host name), where the system allows it, and
the environment such a program of this checkout runs with; and, for the records of earlier
versions (no instance), moments at which no other process of this machine started, so that
"nothing of ours started then" is true whatever else runs beside the test.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psutil

from preform_pipeline.liveness import (
    CREATE_TIME_TOLERANCE_S,
    _may_be_ours,  # the one reading of "may be ours"
    this_instance,
)

__all__ = ["OURS", "OWN_PREFIX", "child_environment", "earlier_in_this_boot",
           "in_new_pid_namespace", "other_instance", "ours_running", "program_pid", "quiet_moment",
           "started_alone"]

#: A word that makes a test's child look like one of ours (liveness.py reads command lines
#: for "preform"), as an earlier version's ``preform-pipeline watch`` would.
OURS = "preform-pipeline-of-an-earlier-version"
#: How often :func:`started_alone` starts its child before it gives up.
_STARTS = 50
#: The tolerance and a clock tick or two: a moment this far from every running process's start
#: is no one's.
_APART_S = CREATE_TIME_TOLERANCE_S + 0.02

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The variables a user's shell would not have: the settings the tests' own runs may set.
OWN_PREFIX = "PREFORM_PIPELINE_"


def other_instance(boot: bool = False) -> str:
    """An instance other than ours: another pid namespace of this boot, or another boot."""
    ours_boot, _, namespace = this_instance().partition("/")
    if boot:
        return f"{'0' if ours_boot[:1] != '0' else '1'}{ours_boot[1:]}/{namespace}"
    return f"{ours_boot}/{int(namespace or 0) + 1}"


def in_new_pid_namespace() -> list[str] | None:
    """The command prefix that runs a program in a new pid namespace; None where not allowed."""
    unshare = shutil.which("unshare")
    if unshare is None or not sys.platform.startswith("linux"):
        return None
    for prefix in ([unshare, "--pid", "--fork", "--mount-proc"],
                   [unshare, "--user", "--map-root-user", "--pid", "--fork", "--mount-proc"]):
        probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=30, check=False)
        if probe.returncode == 0:
            return prefix
    return None


def child_environment() -> dict[str, str]:
    """Ours for a child of this checkout: its modules importable, none of our settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIX)}
    if env.get("MUTANT_UNDER_TEST") == "stats":
        # mutmut's mapping run: a child would record its calls through mutmut's settings,
        # which it cannot find from the test's folder, and fail (session 42: every command
        # line passes secretargs). Its calls are not mapped; a mutant's name still passes.
        del env["MUTANT_UNDER_TEST"]
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _started_near(moment: float, *, besides: frozenset[int] = frozenset(),
                  ours_only: bool = False) -> list[int]:
    """The running processes (``ours_only``: that may be ours, by liveness.py's own reading)
    that started within :data:`_APART_S` of ``moment``."""
    near = []
    for process in psutil.process_iter():
        try:
            if (process.pid not in besides and abs(process.create_time() - moment) <= _APART_S
                    and (not ours_only or _may_be_ours(process) or _may_become_ours(process))):
                near.append(process.pid)
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
    return near


def _may_become_ours(process: psutil.Process) -> bool:
    """Whether ``process`` is a Python between its fork and its exec: a test's worker starting
    one of our programs (the command line, a daemon, a simulator) is, for a moment, a copy of
    the worker, whose command line names no program of ours; once its exec runs, it is ours,
    with the start of its fork. Read as not ours then, it shared a child's moment unseen and the
    lock's refusal named both (session 45's CI run: ``pid 10051,10053``)."""
    return "python" in process.name().lower()


def _now_as_a_start() -> float:
    """Now, on the clock processes' start times are read on (psutil: the boot time plus the
    time since boot), which may be a second or more away from ``time.time()`` (measured on
    the test machine: 0.97 s behind)."""
    if hasattr(time, "CLOCK_BOOTTIME"):
        return psutil.boot_time() + time.clock_gettime(time.CLOCK_BOOTTIME)
    return time.time()


def earlier_in_this_boot(start: float) -> float:
    """A start earlier than ``start`` and still in this boot: halfway back to the boot. A
    fixed step back (an hour) lands before the boot on a machine up for less than that, and a
    process of an earlier boot is judged by another rule ("ran before this machine
    restarted")."""
    earlier = (psutil.boot_time() + start) / 2
    assert start - earlier > 1.0, "this process started too soon after the boot"
    return earlier


def quiet_moment() -> float:
    """A moment of this boot, a minute or so ago, at which no running process started: no
    process can start there any more, so it stays nobody's."""
    moment = _now_as_a_start() - 60.0
    while _started_near(moment):
        moment -= 0.37
    assert moment > psutil.boot_time() + 1.0, "no quiet moment since this machine booted"
    return moment


def started_alone(argv: Sequence[str], *, env: dict[str, str] | None = None,
                  ready: str | None = None,
                  reset: Callable[[], None] | None = None) -> subprocess.Popen[str]:
    """``argv`` started at a moment no other running process that may be ours started at
    (started again when one did: tests beside this one start processes all the time), so
    that once it is killed nothing of ours running started then. Its stdin and stdout are
    pipes; with ``ready``, its first line of output is read and must be that. Before a new
    start the last one's processes (every descendant: ``unshare`` does not pass a kill on)
    are killed and ``reset`` undoes what it left (a lock, records)."""
    near: list[int] = []
    for _ in range(_STARTS):
        child = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True, env=env)
        if ready is not None:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == ready
        chain = psutil.Process(child.pid)
        family = frozenset([child.pid, *(p.pid for p in chain.children(recursive=True))])
        started = psutil.Process(program_pid(child.pid)).create_time()
        # A wait for the clock itself, not for another process: anything that starts once it
        # is past the window starts too late to share the child's moment.
        if (remaining := started + _APART_S - _now_as_a_start()) > 0:
            time.sleep(remaining)
        # Only a process that may be ours can be taken for the child (liveness.look_alikes):
        # the others may share its moment (tests beside this one start them all the time).
        near = _started_near(started, besides=family, ours_only=True)
        if not near:
            return child
        for pid in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()
        child.wait(30)
        for stream in (child.stdin, child.stdout):  # a start given up: its pipes too
            if stream is not None:
                stream.close()
        if reset is not None:
            reset()
    raise AssertionError(f"no moment of its own for a test's child in {_STARTS} starts; "
                         f"the last shared with pids {near}")


def program_pid(pid: int) -> int:
    """The pid, here, of the program process ``pid`` runs: itself, or the program an
    ``unshare --fork`` forked."""
    process = psutil.Process(pid)
    while process.name() == "unshare":
        children = process.children()
        if not children:
            break
        process = children[0]
    return process.pid


@contextmanager
def ours_running(*, ours: bool = True) -> Iterator[subprocess.Popen[str]]:
    """A live process started at a moment of its own whose command line names our program
    (``ours``; else ``cat``, which is not ours): as this machine's own pid namespace sees an
    earlier version's daemon in another container. Ended when the block ends."""
    argv = ([sys.executable, "-c", "import sys; sys.stdin.read()", OURS] if ours
            else [shutil.which("cat") or "cat"])
    child = started_alone(argv)
    try:
        yield child
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(30)

"""Nothing a test session starts outlives it, even when the session itself is killed.

A pytest process stopped by SIGTERM or SIGKILL (a CI timeout, ``kill``, an IDE's stop
button, the OOM killer) runs no finalizer: the PostgreSQL cluster of ``pg_cluster`` (which
``pg_ctl`` detaches from us) and any daemon, simulator or server a test started would run
on, holding ports, memory and ``/tmp`` space, until someone finds them by hand.

Each pytest process (the controller and every xdist worker) therefore starts one watcher
(:func:`watch_this_process`): a small detached process, in a session of its own so that a
terminal's Ctrl-C to the group does not take it first. The owner marks itself with a token
in its environment (:data:`TOKEN_ENV`), which every process it starts inherits unless a
test hands it an environment of its own; the watcher also notes the owner's descendants
every half second, for those. When the owner ends, it looks at how:

- the owner said goodbye (:func:`say_goodbye`, from ``pytest_unconfigure``): the session
  ended normally and its fixtures ran, so the watcher does nothing. Whatever a finished
  session left running is for the tests to notice, not for the watcher to hide;
- otherwise the owner died: the watcher stops and removes every cluster registered with
  :func:`register_cluster` whose folder is still there, then SIGKILLs every process that
  carries the owner's token and every descendant it saw last (each still the same
  process: same PID and start).

Watchers are nested as pytest processes are: an xdist worker, and the watcher it starts,
are descendants of the controller, so the controller's watcher, looking at everything below
its owner, sees the workers' watchers too. It used to kill them with the rest when the
controller died (SIGKILL of the controller or of its whole process group), in the very
moment they were to stop their workers' clusters: each worker's cluster, and what its tests
started, ran on, and its registry stayed behind. A watcher is therefore marked
(:data:`_WATCHER_ENV` in its environment) and no watcher kills another: each is left to
look after its own owner.

Should a watcher die all the same (killed by hand, by the OOM killer, with the machine
overloaded), its registry stays behind, and the next watcher to start reaps it
(:func:`reap_stale`): a registry whose owner no longer runs and whose watcher does not hold
its lock (each watcher holds an exclusive ``flock`` on its registry while it lives) is
reaped as its watcher would have, then removed. The registry goes last, once its clusters are
stopped and its processes killed, so a reap that is itself cut short is done again.

A process is named by its PID and its start in clock ticks after boot (``/proc/PID/stat``),
never by psutil's start time: that is the boot's time plus those ticks, and the boot's time
is read from the wall clock in whole seconds, so when the clock is stepped or slewed across
a second every running process's start time reads one second off at once. A watcher that
compared start times took its live owner for dead then, and killed every worker of the run.

The registry is a small JSON-lines file in the system temp folder, removed by the watcher.
Only the standard library and psutil are used here: the watcher runs as a plain script.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Final

import psutil

__all__ = ["TOKEN_ENV", "reap_stale", "register_cluster", "say_goodbye", "watch_this_process"]

#: The environment variable that marks the processes a test session started.
TOKEN_ENV: Final = "PP_TEST_SESSION"
#: The environment variable that marks a watcher (its owner's token): never killed by another.
_WATCHER_ENV: Final = "PP_TEST_WATCHER"
_REGISTRY_PREFIX: Final = "pp-reaper-"
_REGISTRY_SUFFIX: Final = ".jsonl"

#: How often the watcher looks at the owner's descendants; a child started within this
#: long before the owner's death may be missed.
_LOOK_EVERY_S: Final = 0.5
_GOODBYE: Final = "goodbye"
#: This process's registry, with the PID it belongs to: a child forked from a process that
#: has a watcher (as mutmut forks one per mutant) needs a watcher of its own.
_registry: tuple[int, Path] | None = None


def watch_this_process() -> None:
    """Start this process's watcher (once); Linux only, like the ``/proc`` it reads."""
    global _registry
    me = os.getpid()
    if (not sys.platform.startswith("linux")
            or (_registry is not None and _registry[0] == me)):
        return
    started = _start_of(me)
    assert started is not None, "a running process has a start"
    token = f"{me}-{started}-{_pid_namespace()}"
    registry = Path(tempfile.gettempdir()) / f"{_REGISTRY_PREFIX}{token}{_REGISTRY_SUFFIX}"
    registry.touch()
    os.environ[TOKEN_ENV] = token
    watcher = subprocess.Popen(
        [sys.executable, __file__, str(me), str(started), str(registry), token],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True, env={**os.environ, _WATCHER_ENV: token},
    )
    _let_run(watcher)
    _registry = (me, registry)


def _let_run(watcher: subprocess.Popen[bytes]) -> None:
    """Let go of ``watcher``, which is to outlive this process, without the
    ``ResourceWarning: subprocess N is still running`` its Popen's collection says of a child
    never waited for (printed by every pytest process under ``-W default``, session 48's
    review). Its finalizer runs here, as its collection would run it, and keeps the child in
    subprocess's own list of running children, which reaps it at the next Popen should it end
    first."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        # Not a reference kept instead: that only delays the warning to the interpreter's
        # exit, when the watcher still runs.
        watcher.__del__()


def register_cluster(root: Path, bin_dir: Path, user: str | None) -> None:
    """Have the watcher stop and remove this cluster should this process die first."""
    _note({"cluster": str(root), "bin_dir": str(bin_dir), "user": user})


def say_goodbye() -> None:
    """This process ends normally: its fixtures have run, so its watcher leaves all be."""
    _note(_GOODBYE)


def _note(entry: object) -> None:
    if _registry is None or _registry[0] != os.getpid():
        return
    with _registry[1].open("a", encoding="utf-8") as file:
        file.write(json.dumps(entry) + "\n")


def _pid_namespace() -> int:
    """Which numbering of processes this process's PIDs are in (its pid namespace)."""
    return os.stat("/proc/self/ns/pid").st_ino


def _start_of(pid: int) -> int | None:
    """The start of ``pid`` in clock ticks after boot; None when no such process runs."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: the fields after its last
    # ')' start at field 3, so starttime (field 22) is the twentieth of them.
    fields = stat.rpartition(")")[2].split()
    return int(fields[19]) if len(fields) > 19 and fields[19].isdigit() else None


def _same(pid: int, started: int) -> psutil.Process | None:
    with contextlib.suppress(psutil.Error):
        process = psutil.Process(pid)
        if _start_of(pid) == started and process.status() != psutil.STATUS_ZOMBIE:
            return process
    return None


def _runs_its_server(data: Path) -> bool:
    """Whether the PID in ``data``'s ``postmaster.pid`` is still that cluster's server (its
    working folder is the data folder, as every server's is). ``pg_ctl stop`` signals that
    PID unchecked: once the server is dead (killed with its watcher, or before a restart),
    the number may be any other process's, another live cluster's server among them."""
    try:
        pid = int((data / "postmaster.pid").read_text("utf-8").split()[0])
        return os.path.samefile(psutil.Process(pid).cwd(), data)
    except (OSError, ValueError, IndexError, psutil.Error):
        return False


def _stop_cluster(entry: dict[str, str | None]) -> None:
    root = Path(str(entry["cluster"]))
    if not root.exists():  # destroyed by its fixture
        return
    if _runs_its_server(root / "data"):
        command = [str(Path(str(entry["bin_dir"])) / "pg_ctl"), "-D", str(root / "data"),
                   "-m", "immediate", "-w", "stop"]
        if entry["user"] is not None:
            command = ["runuser", "-u", str(entry["user"]), "--", *command]
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(command, capture_output=True, timeout=60, check=False)
    shutil.rmtree(root, ignore_errors=True)


def _descendants(pid: int, me: int, known: dict[int, int]) -> dict[int, int]:
    """The owner's descendants now (PID -> start ticks), but the watcher itself.

    ``known`` is the last look's answer: a PID still there keeps its start without reading
    it again. A PID can only be another process by now if its process ended and the kernel
    handed the number out again since the last look, half a second ago, which takes a whole
    round of ``pid_max`` processes; and a start is checked again before anything is killed.
    Reading each descendant's start was half of a look's CPU, twice a second in every pytest
    process, all through the run (the controller's watcher, which sees every worker's
    children, spent ~19 s of CPU in a whole run).
    """
    # The kernel's own lists of each thread's children: a look costs a few reads of the
    # descendants' files, where psutil's recursive walk reads every process's (about 10 ms
    # of CPU on a busy machine, twice a second, for each pytest process).
    found: dict[int, int] = {}
    parents = [pid]
    while parents:
        parent = parents.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:  # it ended meanwhile
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children", encoding="ascii") as file:
                    children = [int(child) for child in file.read().split()]
            except (OSError, ValueError):
                continue
            for child in children:
                parents.append(child)
                if child == me:
                    continue
                started = known.get(child)
                if started is None:
                    started = _start_of(child)
                if started is not None:
                    found[child] = started
    return found


def _is_watcher(process: psutil.Process) -> bool:
    """Whether ``process`` is a watcher (of any owner); one whose environment cannot be read
    is not known to be one (and, another user's, could not be killed anyway)."""
    with contextlib.suppress(psutil.Error):
        return _WATCHER_ENV in process.environ()
    return False


def _carrying(token: str, me: int) -> list[tuple[int, int]]:
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if (process.pid != me and process.environ().get(TOKEN_ENV) == token
                    and (started := _start_of(process.pid)) is not None):
                found.append((process.pid, started))
    return found


def _reap(registry: Path, token: str, me: int, last_seen: dict[int, int]) -> None:
    """Do what a dead owner left to its watcher (``registry``, ``token``, and the descendants
    ``last_seen``), then remove the registry; the caller holds the registry's lock."""
    try:
        entries = [json.loads(line) for line in registry.read_text("utf-8").splitlines()]
    except (OSError, ValueError):
        entries = []
    if _GOODBYE not in entries:
        # The clusters first: their servers carry the token too, and an immediate stop
        # leaves no shared memory behind, as a SIGKILL to the postmaster would.
        for entry in entries:
            if isinstance(entry, dict) and "cluster" in entry:
                _stop_cluster(entry)
        for pid, started in {*last_seen.items(), *_carrying(token, me)}:
            child = _same(pid, started)
            # Another watcher (a worker's, below the controller) is left to its own owner.
            if child is not None and not _is_watcher(child):
                with contextlib.suppress(psutil.Error):
                    child.kill()
    # Last: a reap cut short leaves the registry for the next watcher's reap_stale.
    with contextlib.suppress(OSError):
        registry.unlink()


def _locked(registry: Path) -> int | None:
    """A descriptor of ``registry`` holding its exclusive lock; None when another process
    holds it (its watcher, alive, or another reaper at work) or the file is gone."""
    try:
        descriptor = os.open(registry, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Removed (reaped) by another between our open and our lock: nothing left to do.
        if os.stat(registry).st_ino == os.fstat(descriptor).st_ino:
            return descriptor
    except OSError:
        pass
    os.close(descriptor)
    return None


def reap_stale(folder: Path, me: int) -> None:
    """Reap every registry in ``folder`` whose owner has ended and whose watcher is gone
    without reaping it (its lock free): see the module's docstring."""
    for registry in folder.glob(f"{_REGISTRY_PREFIX}*{_REGISTRY_SUFFIX}"):
        token = registry.name.removeprefix(_REGISTRY_PREFIX).removesuffix(_REGISTRY_SUFFIX)
        pid, started, namespace = [*token.split("-"), "", ""][:3]
        # Not one of ours; of another pid namespace (its pid names another process here); or
        # its owner runs: its watcher's to judge.
        if (not (pid.isdigit() and started.isdigit()) or namespace != str(_pid_namespace())
                or _same(int(pid), int(started)) is not None):
            continue
        descriptor = _locked(registry)
        if descriptor is not None:
            try:
                _reap(registry, token, me, {})
            finally:
                os.close(descriptor)


def _watch(owner_pid: int, owner_started: int, registry: Path, token: str) -> None:
    me = os.getpid()  # the owner's child too, and not to be killed before it is done
    descriptor = _locked(registry)
    if descriptor is None:  # its owner died at once, and another watcher's reap has it
        return
    reap_stale(registry.parent, me)
    last_seen: dict[int, int] = {}
    while _same(owner_pid, owner_started) is not None:
        last_seen = _descendants(owner_pid, me, last_seen)
        time.sleep(_LOOK_EVERY_S)
    _reap(registry, token, me, last_seen)
    os.close(descriptor)


if __name__ == "__main__":
    _watch(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])

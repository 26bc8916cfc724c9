"""Stop the servers a dead runner or daemon left running (its orphans).

Where the operating system cannot tie a server to its owner (macOS), or the tie was not set
(see lifetime.py), a runner killed without cleanup leaves its servers running. Every pool
records its servers (records.py); a runner or daemon that starts calls :func:`reap_orphans`,
which goes through those records:

- a record whose owner still runs (same PID *and* start time), or that this machine cannot
  judge (another host's, or another container's of this host name: its pids are not ours),
  is left alone: two runs may share the folder and run at once. The folder is this
  machine's, so an owner of this host name and an earlier boot has ended (the one rule:
  :meth:`~preform_pipeline.liveness.ProcessIdentity.judged_on_this_machine`); a record
  written before records named their instance is left alone too (its pid may be another
  container's) unless its owner started before this machine booted, or no process that may
  be ours started at the owner's moment (seen from the machine's own pid namespace:
  :meth:`~preform_pipeline.liveness.ProcessIdentity.look_alikes`);
- a record whose server is gone, or whose PID now belongs to another program (another start
  time, or a command line that is not a server's), is only removed: a recycled PID is never
  killed;
- otherwise the server's whole process tree is killed, the record removed, and the reap is
  logged (``server_reaped``) and returned, so the command can say it on the console.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import psutil

from preform_pipeline.liveness import Liveness, ProcessIdentity
from preform_pipeline.logging import get_logger
from preform_pipeline.servers.records import ServerRecord, ServerRecords

__all__ = ["DEFAULT_REAP_TIMEOUT_S", "ReapedServer", "describe_reaped", "reap_orphans"]

#: How long killed processes get to disappear before the reap is logged as incomplete.
DEFAULT_REAP_TIMEOUT_S: Final = 5.0

_log = get_logger(__name__)


@dataclass(frozen=True)
class ReapedServer:
    """A server whose owner had died, stopped by the reaper."""

    name: str
    pid: int
    port: int
    owner_pid: int
    #: Every process killed: the server and its descendants.
    killed: tuple[int, ...]


def _looks_like_ours(process: psutil.Process, record: ServerRecord) -> bool:
    """The command line still asks for the recorded port, as the pool started it, or shows no
    word at all.

    A process reads with no command line from the moment its exec lets go of the program
    that started it until the kernel has set up the new program's arguments: ``Popen``
    returns, and the pool records the server, inside that moment, which under load lasts
    tenths of a second (a reaper that read the server then took it for another program, and
    left it running unrecorded). A process that cleared its arguments reads the same. Its
    identity, checked before, then tells alone: a recycled PID has another start.
    """
    try:
        words = process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    if not any(words):
        return True
    port = str(record.port)
    if f"--port={port}" in words:
        return True
    return any(a == "--port" and b == port for a, b in itertools.pairwise(words))


def _kill_tree(process: psutil.Process, timeout_s: float) -> tuple[int, ...]:
    try:
        tree = [process, *process.children(recursive=True)]
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return ()
    for member in tree:
        try:
            member.kill()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        except psutil.AccessDenied:
            _log.warning("server_reap_denied", pid=member.pid)
    _, alive = psutil.wait_procs(tree, timeout=timeout_s)
    if alive:
        _log.warning("server_reap_incomplete", survivors=[p.pid for p in alive])
    return tuple(member.pid for member in tree)


def _reap_one(
    record: ServerRecord, timeout_s: float
) -> tuple[ReapedServer | None, str]:
    """Stop one orphan; returns what was reaped and why the record goes."""
    identity = ProcessIdentity.of_running(record.server.pid)
    if identity is None:
        return None, "server gone"
    if not record.server.matches(identity):
        return None, "PID reused by another process"
    try:
        process = psutil.Process(record.server.pid)
    except psutil.NoSuchProcess:
        return None, "server gone"
    if not _looks_like_ours(process, record):
        return None, "PID reused by another process"
    killed = _kill_tree(process, timeout_s)
    return ReapedServer(
        name=record.name, pid=record.server.pid, port=record.port,
        owner_pid=record.owner.pid, killed=killed,
    ), "owner dead"


def reap_orphans(
    records: ServerRecords, *, timeout_s: float = DEFAULT_REAP_TIMEOUT_S
) -> tuple[ReapedServer, ...]:
    """Kill the servers whose owner has died; remove records that name nothing to kill.

    Records of live owners (this process included) and of other hosts or containers are not
    touched.
    """
    reaped: list[ReapedServer] = []
    for path, record in records.read_all():
        if record is None:
            continue  # unreadable: not ours to judge, and logged by read_all
        if record.owner.judged_on_this_machine() is not Liveness.ENDED:
            continue
        done, why = _reap_one(record, timeout_s)
        if done is not None:
            reaped.append(done)
            # Info, not warning: the commands already say it on the console in a plain line.
            _log.info(
                "server_reaped", server=done.name, pid=done.pid, port=done.port,
                owner_pid=done.owner_pid, killed=list(done.killed),
            )
        else:
            _log.info(
                "server_record_stale", server=record.name, pid=record.server.pid,
                port=record.port, owner_pid=record.owner.pid, reason=why,
            )
        records.discard(path)
    return tuple(reaped)


def describe_reaped(reaped: Sequence[ReapedServer]) -> str:
    """One console line about what :func:`reap_orphans` stopped ("" when nothing)."""
    if not reaped:
        return ""
    servers = ", ".join(
        f"pid {r.pid} on port {r.port} (owner pid {r.owner_pid})" for r in reaped
    )
    noun = "server" if len(reaped) == 1 else "servers"
    return (
        f"stopped {len(reaped)} {noun} left running by a run or daemon that had died: {servers}"
    )

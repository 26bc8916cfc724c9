"""Which process is this, and is it still that process: a PID, its start time, its host.

A PID alone names a process only while it runs: once it exits, the operating system hands the
number to the next process. The start time (``psutil``'s ``create_time``) tells the two apart,
so a record that outlives its process (a server record, a daemon's lock) never makes us kill,
or wait for, an unrelated program that happens to have the same number. Liveness can only be
checked on the host the process ran on; elsewhere :meth:`ProcessIdentity.is_running` says
nothing and callers decide (see :meth:`ProcessIdentity.on_this_host`).

The host name alone does not say which pids a process sees: two containers may share one
host name and number their processes apart (separate pid namespaces), and a machine that
restarted numbers them again. So an identity also names its *instance*
(:func:`this_instance`: on Linux the boot and the pid namespace), and a process of another
instance is judged as a process of another host. A record kept on this machine's own disk
(the daemon's lock beside a local store, the server records in the user's data folder) is
judged by :meth:`ProcessIdentity.judged_on_this_machine`: there a process of this host name
and another boot can only be this machine before it restarted.

A start time in seconds since the epoch is the boot's time plus the clock ticks since boot at
which the process started, and the boot's time is read from the wall clock: when the clock is
set (NTP steps it, a person sets it), every process's start time reads differently, and a live
holder would no longer match its record. So an identity also keeps its *start ticks*
(:func:`start_ticks_of`, Linux: ``/proc/PID/stat``'s ``starttime``), which never move, and two
identities of one boot are compared by them when both have them
(:meth:`ProcessIdentity.matches`): a pid reused after a reboot (another boot) or by another
process (other ticks) is never taken for the holder, whatever the clock did. Records without
them (written before they were kept) are compared by start time, as before.

A record written before records named their instance (an earlier version's) is judged ended
only on proof (:meth:`ProcessIdentity.look_alikes`): it started before this machine booted,
or this process sees every process of the machine (it runs in the machine's own pid
namespace, which every container's processes are also in) and none of them that could be
ours started at the recorded moment or runs under the recorded pid. Inside a container
neither the pid nor the start time can rule out another container's process: such a record
stays unknown.
"""

from __future__ import annotations

import enum
import functools
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import psutil

__all__ = ["CREATE_TIME_TOLERANCE_S", "NO_INSTANCE", "Liveness", "ProcessIdentity",
           "read_instance", "read_start_ticks", "sees_every_process", "start_ticks_of",
           "this_host", "this_instance"]

#: Start times are read back from the operating system in its own resolution (Linux: clock
#: ticks after boot); two readings of one process differ by less than this.
CREATE_TIME_TOLERANCE_S: Final = 0.05

#: :func:`this_instance` where the system names neither its boot nor its pid namespace
#: (not Linux): there the host name alone tells.
NO_INSTANCE: Final = "-"

#: The inode of the machine's own pid namespace on Linux (the kernel's ``PROC_PID_INIT_INO``,
#: fixed since Linux 3.8): a process in it sees every process of the machine, those of every
#: container included, each under a pid of this namespace.
_MACHINE_PID_NAMESPACE: Final = 0xEFFFFFFC

#: A command line one of whose words names, in its last path component, a program containing
#: this (case aside) may be one of our processes: the ``preform-pipeline`` command,
#: ``python -m preform_pipeline...`` (daemon, run, simulator) and PreFormServer itself (its
#: ``.exe`` under wine too). Only the last component counts: a folder naming ``preform``
#: (a checkout or virtual environment called ``preform-pipeline``) makes none of the other
#: programs run from it ours; any other command line is not ours.
_OUR_PROGRAMS: Final = "preform"

#: ``/proc/PID/stat``'s flag of a kernel thread (``PF_KTHREAD``): it has no command line, and
#: is never ours.
_KERNEL_THREAD_FLAG: Final = 0x00200000
#: PF_EXITING in the same flags: the process is ending and runs no code of its own any more.
_EXITING_FLAG: Final = 0x00000004

#: The system's boot time is kept in whole seconds (Linux: ``btime``): a process started more
#: than this before it certainly ran in an earlier boot.
_BOOT_TIME_RESOLUTION_S: Final = 1.0


def this_host() -> str:
    """The name of this machine, as written into records and locks."""
    return socket.gethostname()


@functools.cache
def this_instance() -> str:
    """Which numbering of processes this process's pid belongs to, beyond the host name: on
    Linux ``<boot id>/<pid namespace inode>`` (``/proc/sys/kernel/random/boot_id``,
    ``/proc/self/ns/pid``), so containers that share a host name and a machine before and
    after a restart are told apart; :data:`NO_INSTANCE` elsewhere. Neither changes while a
    process runs (a new pid namespace is its children's, not its own)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except (OSError, UnicodeDecodeError):
        return NO_INSTANCE
    return f"{boot}/{namespace}"


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (which may hold spaces and
    parentheses, so the split starts after its last ``)``): the first is field 3, ``state``;
    None where there is no such file (not Linux, or the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def start_ticks_of(pid: int) -> int | None:
    """The clock ticks after this machine booted at which process ``pid`` started (field 22 of
    ``/proc/PID/stat``, ``starttime``): unlike a start time in seconds since the epoch, it does
    not move when the clock is set. None where the system does not say (not Linux) or the
    process is gone."""
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields is not None else None
    except (IndexError, ValueError):
        return None


def _has_flag(pid: int, flag: int) -> bool:
    """True when ``pid``'s kernel flags (field 9 of ``/proc/PID/stat``) hold ``flag``; False
    when they do not, or cannot be read."""
    fields = _stat_fields(pid)
    try:
        return fields is not None and bool(int(fields[6]) & flag)
    except (IndexError, ValueError):
        return False


def _is_kernel_thread(pid: int) -> bool:
    """True when ``pid`` is a kernel thread (no command line, never ours)."""
    return _has_flag(pid, _KERNEL_THREAD_FLAG)


def read_start_ticks(value: object) -> int | None:
    """Start ticks as a record keeps them (:meth:`ProcessIdentity.to_json`): None when the
    record has none (written before records kept them); raises ValueError for anything but a
    whole number of zero or more."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                              or value < 0):
        raise ValueError(f"not start ticks: {value!r}")
    return value


def read_instance(value: object) -> str | None:
    """An instance as a record keeps it (:meth:`ProcessIdentity.to_json`, a send's holder):
    None when the record names none (written before records named one); raises ValueError
    for anything but a non-empty string."""
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError(f"not an instance: {value!r}")
    return value


def _boot_of(instance: str | None) -> str | None:
    """The boot part of an instance; None when it is not known (no instance, not Linux)."""
    if instance is None or instance == NO_INSTANCE:
        return None
    return instance.partition("/")[0] or None


def sees_every_process() -> bool:
    """True when this process runs in the machine's own pid namespace (Linux), so every
    process of the machine, in any container, is visible to it under some pid, and /proc
    hides none of them (no ``hidepid``)."""
    if this_instance().partition("/")[2] != str(_MACHINE_PID_NAMESPACE):
        return False
    try:
        mounts = Path("/proc/self/mounts").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False  # how /proc is mounted is unknown: it may hide processes
    return not _hides_processes(mounts)


def _hides_processes(mounts: str) -> bool:
    """Whether ``/proc``, as ``mounts`` (the text of ``/proc/self/mounts``) lists it, hides
    other users' processes (``hidepid`` other than 0 or ``off``); True when it is not listed
    (then nothing is known of it). Every ``/proc`` line counts: one mounted over another
    (systemd's ``ProtectProc=`` does so) is listed after it and is the one that is read."""
    listed = False
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[1] == "/proc":
            listed = True
            if any(o.startswith("hidepid=") and o not in ("hidepid=0", "hidepid=off")
                   for o in fields[3].split(",")):
                return True
    return not listed


def _may_be_ours(process: psutil.Process) -> bool:
    """Whether a running process may be one of ours (:data:`_OUR_PROGRAMS`). One whose
    command line cannot be read (denied, or any other failure to read it) may be, and so may
    one whose command line is empty, unless it is a kernel thread: a process of ours shows an
    empty one once something cleared it, and nothing else tells it apart; one that is exiting
    is not (it runs nothing of its own any more)."""
    try:
        words = [word for word in process.cmdline() if word]
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except (psutil.Error, OSError):
        return True
    if words:
        return any(_names_our_program(word) for word in words)
    # An empty one: a kernel thread's (never ours), an exiting process's (it runs no code of
    # its own any more, so it acts on no record: every short-lived child of the machine shows
    # an empty command line for a moment as it ends), or one something cleared (may be ours).
    return not (_is_kernel_thread(process.pid) or _has_flag(process.pid, _EXITING_FLAG))


def _names_our_program(word: str) -> bool:
    """Whether one word of a command line names one of :data:`_OUR_PROGRAMS`: its last path
    component does (either separator: a Windows path under wine uses backslashes)."""
    return _OUR_PROGRAMS in word.replace("\\", "/").rpartition("/")[2].lower()


class Liveness(enum.Enum):
    """What this machine can tell of a process a record names."""

    RUNNING = "running"
    ENDED = "ended"
    #: Another host's, or another container's of this host name and boot: not ours to judge.
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ProcessIdentity:
    """One process: its PID and start time (seconds since the epoch) on ``host``, in its
    ``instance`` (:func:`this_instance`; None when its record does not say: a record written
    before records named it: judged by its host, and never taken for ended where its pid may be
    another container's, :meth:`judged_on_this_machine`). Two identities are equal
    when pid, start time and host are (a record read back from JSON is the process that wrote
    it): the instance decides only where the pid is judged (:attr:`on_this_host`)."""

    pid: int
    create_time: float
    host: str
    instance: str | None = field(default=None, compare=False)
    #: :func:`start_ticks_of` when it was recorded; None in a record written before records
    #: kept them, or where the system does not say.
    start_ticks: int | None = field(default=None, compare=False)

    @classmethod
    def current(cls) -> ProcessIdentity:
        """This process."""
        pid = os.getpid()
        return cls(pid=pid, create_time=psutil.Process().create_time(), host=this_host(),
                   instance=this_instance(), start_ticks=start_ticks_of(pid))

    @classmethod
    def of_running(cls, pid: int) -> ProcessIdentity | None:
        """The running process with ``pid`` on this host; None when there is none."""
        try:
            process = psutil.Process(pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
            return cls(pid=pid, create_time=process.create_time(), host=this_host(),
                       instance=this_instance(), start_ticks=start_ticks_of(pid))
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            # Denied: another user's process, so not one we started or could stop.
            return None

    @property
    def on_this_host(self) -> bool:
        """True when its pid is one of ours: the same host and, when known, the same instance
        (another container of the same host name, or this machine before a restart, is
        another host)."""
        return self.host == this_host() and self.instance in (None, this_instance())

    def is_running(self) -> bool:
        """True while this very process runs (a zombie has ended; a recycled PID is another
        process). Only meaningful on this host: a process of another host is never running
        here."""
        if not self.on_this_host:
            return False
        try:
            if psutil.Process(self.pid).status() == psutil.STATUS_ZOMBIE:
                return False
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return False
        except psutil.AccessDenied:
            return True  # cannot tell: assume it runs, so nothing of it is taken or killed
        return self.matches(ProcessIdentity.of_running(self.pid))

    def has_ended(self) -> bool:
        """True only when this process certainly ended: it ran on this host and that very
        process (PID and start time) runs no more. A process of another host is never known
        to have ended from here (its records end by their own leases, or never)."""
        return self.on_this_host and not self.is_running()

    def judged_on_this_machine(self) -> Liveness:
        """Whether it runs, for a record kept on this machine's own disk (the daemon's lock
        beside a local store, the server records): a process of this host name in another boot
        can only be this machine before it restarted (a power cut), so it has ENDED; one of
        this boot and another pid namespace (another container of the same host name) or of
        another host is UNKNOWN; ours is RUNNING while that very process runs. A record that
        names no instance (written before records named one) is RUNNING while a process of
        that pid and start time runs here, ENDED when it started before this machine booted
        or when :meth:`look_alikes` proves no process of it runs on this machine, and
        otherwise, where the system names instances, UNKNOWN: its pid may be another
        container's of this host name, and a live holder must never be concluded dead."""
        if self.on_this_host:
            if self.is_running():
                return Liveness.RUNNING
            if (self.instance is None and this_instance() != NO_INSTANCE
                    and not self.started_before_this_boot() and self.look_alikes() != ()):
                return Liveness.UNKNOWN
            return Liveness.ENDED
        theirs, ours = _boot_of(self.instance), _boot_of(this_instance())
        if self.host == this_host() and None not in (theirs, ours) and theirs != ours:
            return Liveness.ENDED
        return Liveness.UNKNOWN

    def look_alikes(self) -> tuple[int, ...] | None:
        """The pids, as this process sees them, of the running processes that may be this one
        in another pid namespace of this machine: started at its recorded moment and possibly
        ours (a command line naming ``preform``, or one that cannot be read), or possibly ours
        and running under its very pid here whatever its start: a start time is read as the
        boot's time plus ticks since boot, and the boot's time (whole seconds, from the wall
        clock) moves when the clock is set, so the very holder can read as started at another
        moment than it recorded. Empty: no such process runs here, so a record of this
        machine naming no instance has ended. None when this process cannot see every process
        of the machine (:func:`sees_every_process`: it runs in a container), so nothing can be
        ruled out."""
        if not sees_every_process():
            return None
        found: list[int] = []
        for process in psutil.process_iter():
            try:
                started = process.create_time()
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue  # gone meanwhile
            except psutil.AccessDenied:
                return None  # a start this process may not read: nothing can be ruled out
            if (process.pid == self.pid or abs(started - self.create_time)
                    <= CREATE_TIME_TOLERANCE_S) and _may_be_ours(process):
                found.append(process.pid)
        return tuple(found)

    def started_before_this_boot(self) -> bool:
        """True when it started before this machine last booted: no process of this machine,
        in any of its containers, can be that process now."""
        return self.create_time < psutil.boot_time() - _BOOT_TIME_RESOLUTION_S

    def matches(self, other: ProcessIdentity | None) -> bool:
        """True when ``other`` is this process (same host, PID and start, and instance when
        both name one: a process of another boot or container is never one here). The start
        is compared by start ticks when both name them and their instance (so their boot),
        whatever the clock did since; else by start time, within the tolerance."""
        if other is None or other.host != self.host or other.pid != self.pid:
            return False
        if self.instance is not None and other.instance is not None:
            if other.instance != self.instance:
                return False
            if self.start_ticks is not None and other.start_ticks is not None:
                return other.start_ticks == self.start_ticks
        return abs(other.create_time - self.create_time) <= CREATE_TIME_TOLERANCE_S

    def label(self) -> str:
        """``host:pid:start:instance:ticks`` (the start to the millisecond; the instance
        :data:`NO_INSTANCE` when not known; ``:ticks`` only when known): this process in one
        line of text, read back by :meth:`from_label`. An earlier version reading a label
        with ticks finds five parts, names no process, and leaves the label's claim to its
        lease (the safe side)."""
        label = f"{self.host}:{self.pid}:{self.create_time:.3f}:{self.instance or NO_INSTANCE}"
        return label if self.start_ticks is None else f"{label}:{self.start_ticks}"

    def tagged(self, tag: str) -> str:
        """This process's :meth:`label`, then ``:tag``: a claim's holder (a printer claim's,
        :class:`~preform_pipeline.verify.tracking.PrinterClaims`), one per claimer in the
        process, read back by :meth:`from_tagged`."""
        return f"{self.label()}:{tag}"

    @classmethod
    def from_tagged(cls, text: str) -> ProcessIdentity | None:
        """The process a :meth:`tagged` holder names; None for any other text (a holder of
        an earlier version, ``host:pid:start:tag``, included). The one reading of a holder:
        the farm tests once read it as ``host:pid:tag`` after the labels had grown, and
        never found a claimer."""
        return cls.from_label(text.rpartition(":")[0])

    @classmethod
    def from_label(cls, text: str) -> ProcessIdentity | None:
        """The process a :meth:`label` names, with or without its ticks; None for any other
        text, a label of an earlier version (``host:pid:start``, no instance) included: which
        pids it meant is unknown."""
        parts = text.split(":")
        if len(parts) not in (4, 5):
            return None
        host, pid, created, instance = parts[:4]
        try:
            return cls.from_json({"host": host, "pid": int(pid), "create_time": float(created),
                                  "instance": instance,
                                  "start_ticks": int(parts[4]) if len(parts) == 5 else None})
        except ValueError:
            return None

    def to_json(self) -> dict[str, Any]:
        """The identity as JSON; ``instance`` and ``start_ticks`` only when known (readers of
        records before them ignore them; a record without them is read as one that names no
        instance, or is compared by start time)."""
        data: dict[str, Any] = {"pid": self.pid, "create_time": self.create_time,
                                "host": self.host}
        if self.instance is not None:
            data["instance"] = self.instance
        if self.start_ticks is not None:
            data["start_ticks"] = self.start_ticks
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessIdentity:
        """Read what :meth:`to_json` wrote; raises ValueError when it does not fit."""
        pid, created, host = data.get("pid"), data.get("create_time"), data.get("host")
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            raise ValueError(f"not a process id: {pid!r}")
        if not isinstance(created, (int, float)) or isinstance(created, bool):
            raise ValueError(f"not a start time: {created!r}")
        if not isinstance(host, str) or not host:
            raise ValueError(f"not a host name: {host!r}")
        return cls(pid=pid, create_time=float(created), host=host,
                   instance=read_instance(data.get("instance")),
                   start_ticks=read_start_ticks(data.get("start_ticks")))

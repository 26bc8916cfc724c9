"""One daemon per store: a lock file beside the store names the daemon that holds it.

Two daemons on one store would both take the same files and both recover the same
interrupted prints. ``watch`` therefore takes ``<store file>.daemon.lock`` before it starts,
and keeps it until it stops (a store name too long for that gets a shorter lock name, the
same for every daemon: :func:`lock_path_of`). The file holds the holder's host, PID,
process start time and instance (boot and pid namespace, liveness.py); the store is on a local
disk (docs/jobs.md), so the lock is judged as a record of this machine
(:meth:`~preform_pipeline.liveness.ProcessIdentity.judged_on_this_machine`, the one rule).

- No lock file: the lock is created with its content in one step (a hard link on POSIX, a
  rename on Windows, both fail when the file exists), so no reader sees an empty lock.
- A holder of this host and instance that still runs (same PID *and* start time): refused
  with :class:`StoreLockedError` naming the host and PID.
- A holder of this host and instance that has died (kill -9), one of an earlier boot (a power
  cut), or a lock file that cannot be read: the lock is taken over and the takeover logged
  (``store_lock_taken_over``). A lock written before locks named their instance (an earlier
  version's, killed) is taken over when its holder started before this machine booted, or
  when this daemon sees every process of the machine and none that may be ours started at the
  holder's moment (:meth:`~preform_pipeline.liveness.ProcessIdentity.look_alikes`); otherwise
  (such a process runs, perhaps the holder in another container; or this daemon runs in a
  container and cannot see the others) it is refused as one that cannot be checked.
- The holder keeps the lock file locked by the operating system for its whole life
  (heldfile.py: ``flock``), and the file says so (``"held": "flock"``). Such a lock of this
  host name is judged by that lock first, from any container: while it is held, its daemon
  runs (refused, even where its pid cannot be seen); once it is not, its daemon has ended
  (kill -9 and a container going away drop it too), and the lock is taken over.
- A holder on another host, or in another container of this host name (its pids are not
  ours) whose file does not say it is held (written by an earlier version), cannot be checked
  from here: refused, and the hint says what to check, where, and which file to delete once
  that daemon is known to be gone.
- The lock is first written to ``<lock>.<pid>.tmp`` and linked into place; a daemon killed
  before it removed that temporary (kill -9 during its start) left it beside the store for
  good. ``acquire`` removes such temporaries when they name a process of this host that no
  longer runs (``store_lock_temporary_removed``); one naming a live process (a daemon starting
  this very moment), another host or container, or nothing readable is left alone.

Release removes the file only while it still names this process.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Final

from preform_pipeline.atomicfile import NAME_MAX_BYTES, fitted_name
from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.errors import StoreError, StoreLockedError, write_hint
from preform_pipeline.heldfile import judged, record_text, says_held, write_held
from preform_pipeline.liveness import Liveness, ProcessIdentity, this_host
from preform_pipeline.logging import get_logger

__all__ = ["LOCK_SUFFIX", "MAX_TAKEOVER_ATTEMPTS", "DaemonLock", "LockHolder", "lock_path_of"]

LOCK_SUFFIX: Final = ".daemon.lock"
#: Each attempt either takes the lock, meets a live holder, or removes one dead holder; more
#: than a few in a row means other daemons are racing for it.
MAX_TAKEOVER_ATTEMPTS: Final = 5

#: The longest lock name: room is left for its temporary's ``.<pid>.tmp`` (PIDs are 32-bit
#: numbers, at most 10 digits, on Linux, macOS and Windows) within the file systems' 255 bytes.
_LOCK_NAME_MAX: Final = NAME_MAX_BYTES - len(f".{'9' * 10}.tmp")

_log = get_logger(__name__)


def lock_path_of(store_path: Path) -> Path:
    """The lock file of the store at ``store_path``: ``<store file>.daemon.lock``.

    Every daemon must find the same lock from the same store path, and the file system takes
    names up to 255 bytes: a store name too long for the lock and its temporary
    (``<lock>.<pid>.tmp``) is cut, with a hash of the whole name for its end
    (:func:`~preform_pipeline.atomicfile.fitted_name`), so two long store names that start
    alike still have two locks.
    """
    return store_path.with_name(fitted_name(store_path.name, LOCK_SUFFIX, limit=_LOCK_NAME_MAX))


@dataclass(frozen=True)
class LockHolder:
    """Who holds a store's lock, and since when; ``held``: it keeps the file locked by the
    operating system for its life (heldfile.py; False in a lock of an earlier version, or
    where the system has no such lock)."""

    process: ProcessIdentity
    acquired_at: str
    held: bool = False

    def to_text(self) -> str:
        return record_text({**self.process.to_json(), "acquired_at": self.acquired_at},
                           is_held=self.held)

    @classmethod
    def from_text(cls, text: str) -> LockHolder:
        """Read a lock file's content; raises ValueError when it is not a lock."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a lock record")
        return cls(ProcessIdentity.from_json(data), str(data.get("acquired_at", "")),
                   held=says_held(data))


class DaemonLock:
    """The daemon lock of one store; use as a context manager around the daemon's life."""

    def __init__(self, store_path: Path, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.store_path = store_path
        self._clock = clock
        self.path = lock_path_of(store_path)
        self._mine: LockHolder | None = None
        #: The open lock file, locked for this daemon's life (heldfile.py); None when the
        #: system has no such lock, or this object holds no lock.
        self._held_fd: int | None = None

    def acquire(self) -> LockHolder | None:
        """Take the lock; returns the dead holder it took over from, if any.

        Raises StoreLockedError while another daemon holds it, StoreError when the lock file
        cannot be written.
        """
        me = LockHolder(ProcessIdentity.current(), self._clock.now().isoformat())
        self._remove_dead_temporaries()
        taken_over: LockHolder | None = None
        for _ in range(MAX_TAKEOVER_ATTEMPTS):
            if (created := self._create(me)) is not None:
                self._mine = created
                return taken_over
            holder = self._read()
            reason = "lock file unreadable"
            if holder is not None:
                if holder.process == me.process:
                    self._mine = holder  # this process took it already
                    return taken_over
                state, reason = self._judge(holder)
                if state is Liveness.UNKNOWN:
                    raise self._locked(holder, f"{_elsewhere(holder.process)}; it cannot be "
                                       "checked from here",
                                       hint=_how_to_check(holder, self.path))
                if state is Liveness.RUNNING:
                    raise self._locked(holder, reason,
                                       hint="stop that daemon first, or use another store")
            if self._remove_stale(holder, reason):
                taken_over = holder
        raise StoreError(
            f"{self.path}: could not take the daemon lock after {MAX_TAKEOVER_ATTEMPTS} "
            "attempts: other daemons are starting on this store at the same time",
            hint="start one daemon per store",
        )

    def release(self) -> None:
        """Give the lock up (only while the file still names this process)."""
        mine, self._mine = self._mine, None
        held_fd, self._held_fd = self._held_fd, None
        try:
            if mine is None:
                return
            holder = self._read()
            if holder is not None and holder.process == mine.process:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
        finally:
            if held_fd is not None:
                # Only once the file is gone: a reader never finds it in place and unheld.
                os.close(held_fd)

    def __enter__(self) -> DaemonLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    # --- internals -------------------------------------------------------------------------

    def _judge(self, holder: LockHolder) -> tuple[Liveness, str]:
        """Whether the holder runs, and why it is said to (the refusal's words, or the
        takeover's logged reason). A holder of this host name that says it holds its file
        is judged by that lock (module doc), from any container; any other by its pid
        (liveness.py, the one rule)."""
        process = holder.process
        state, by_lock = judged(process, self.path, says_held=holder.held)
        if by_lock and state is Liveness.RUNNING:
            where = "" if process.on_this_host else ", in another container of this host"
            return state, f"still running{where} (it holds the lock file open)"
        if by_lock:
            return state, "holder not running: no process holds its lock file open any more"
        return state, "still running" if state is Liveness.RUNNING else _why_stale(holder)

    def _locked(self, holder: LockHolder, state: str, *, hint: str) -> StoreLockedError:
        process = holder.process
        return StoreLockedError(
            f"{self.store_path}: another daemon holds this store: pid {process.pid} on host "
            f"{process.host} (since {holder.acquired_at}), {state}",
            lock_path=self.path, host=process.host, pid=process.pid, hint=hint,
        )

    def _temporary(self, pid: int) -> Path:
        """Where process ``pid`` writes the lock before linking it into place."""
        return self.path.with_name(f"{self.path.name}.{pid}.tmp")

    def _remove_dead_temporaries(self) -> None:
        """Remove the lock temporaries that dead processes of this host left (module doc)."""
        prefix = f"{self.path.name}."
        try:
            # Sorted: the folder's own order differs between file systems and runs.
            names = sorted(p.name for p in self.path.parent.iterdir()
                           if p.name.startswith(prefix) and p.name.endswith(".tmp"))
        except OSError:
            return  # no folder yet, or unreadable: _create says what is wrong
        for name in names:
            if not name[len(prefix):-len(".tmp")].isdigit():
                continue  # not a lock temporary (those are named by their writer's pid)
            path = self.path.with_name(name)
            try:
                writer = LockHolder.from_text(path.read_text(encoding="utf-8")).process
            except (OSError, ValueError):
                continue  # gone meanwhile, or half written: whose it is cannot be told
            if writer.judged_on_this_machine() is not Liveness.ENDED:
                continue
            try:
                path.unlink()
            except OSError:
                continue  # gone meanwhile, or the folder refuses: taking the lock says so
            _log.info("store_lock_temporary_removed", path=str(path), pid=writer.pid)

    def _create(self, me: LockHolder) -> LockHolder | None:
        """Create the lock file with ``me`` in it, atomically, held for this process's life
        where the system allows (heldfile.py); the holder written, or None when it exists."""
        temporary = self._temporary(me.process.pid)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Held before it is linked into place: no reader finds it unheld while we live.
            fd = write_held(temporary, lambda is_held: replace(me, held=is_held).to_text())
            written = replace(me, held=fd is not None)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot write the daemon lock: {exc}",
                             hint=write_hint(exc)) from exc
        try:
            if sys.platform == "win32":
                os.rename(temporary, self.path)  # refuses an existing target on Windows
            else:
                os.link(temporary, self.path)  # refuses an existing target
            self._held_fd, fd = fd, None
            return written
        except FileExistsError:
            return None
        finally:
            if fd is not None:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()

    def _read(self) -> LockHolder | None:
        """The holder in the lock file; None when it is gone or unreadable (not a lock)."""
        try:
            return LockHolder.from_text(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            _log.warning("store_lock_unreadable", path=str(self.path), error=str(exc))
            return None

    def _remove_stale(self, holder: LockHolder | None, reason: str) -> bool:
        """Remove a dead holder's lock; False when there was nothing (left) to remove."""
        # Read once more right before removing: a daemon that took the lock meanwhile keeps it.
        # lexists, not exists: a symbolic link to nothing in the lock's place is no lock (this
        # class makes hard links), and following it would call it gone and retry for ever.
        if not os.path.lexists(self.path) or self._read() != holder:
            return False
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:  # a folder in its place, a folder that cannot be written
            raise StoreError(f"{self.path}: cannot remove the stale daemon lock: {exc}",
                             hint="remove it by hand once no daemon runs on this store") from exc
        _log.warning(
            "store_lock_taken_over",
            path=str(self.path),
            previous_pid=holder.process.pid if holder else None,
            previous_host=holder.process.host if holder else None,
            reason=reason,
        )
        return True


def _elsewhere(process: ProcessIdentity) -> str:
    """Where a holder this machine cannot judge runs, in a user's words."""
    if process.host != this_host():
        return "on another host"
    if process.instance is None:
        alike = process.look_alikes()
        if alike:
            return ("named by an earlier version, without its container (pid namespace): a "
                    f"process of ours that started at that moment still runs here (pid "
                    f"{', '.join(map(str, alike))}), perhaps that daemon in another container")
        return ("named by an earlier version, without its container (pid namespace): another "
                "container of this host name may hold that pid")
    return "in another container (pid namespace) of this host name"


def _how_to_check(holder: LockHolder, path: Path) -> str:
    """What a person checks, where, and runs, for a holder this daemon cannot judge: whether
    that very process (its pid where it ran, and its start) still runs, and the file to delete
    once it does not. The start is said in UTC as ``ps``'s ``lstart`` shows it with ``TZ=UTC``
    (the recorded start may be a second or so off when the clock was set since)."""
    process = holder.process
    moment = datetime.fromtimestamp(process.create_time, timezone.utc)
    # ps's own layout ("Sun Dec  6 12:02:54 2026"); %e is not on every system's strftime.
    started = f"{moment:%a %b} {moment.day:>2} {moment:%H:%M:%S %Y} UTC"
    pid = process.pid
    if process.host != this_host():
        return (f"on host {process.host}, check whether pid {pid}, started {started}, still "
                f"runs (`TZ=UTC ps -o pid,lstart,args -p {pid}`); if it does not, delete "
                f"{path}")
    if process.instance is not None:
        return (f"in the container of host name {process.host} that holds it, check whether "
                f"pid {pid}, started {started}, still runs (`TZ=UTC ps -o pid,lstart,args -p "
                f"{pid}`); if it does not, delete {path}")
    if alike := process.look_alikes():
        pids = ",".join(map(str, alike))
        return (f"check whether pid {pids} here, started {started}, is that daemon (`TZ=UTC "
                f"ps -o pid,lstart,args -p {pids}`): stop it if it is; if it is not a daemon "
                f"on this store, delete {path}")
    return ("on this machine outside any container (where that daemon's pid differs from "
            f"{pid}), look for a preform-pipeline process started {started} (`TZ=UTC ps -eo "
            f"pid,lstart,args | grep -i preform`); if none runs, delete {path}")


def _why_stale(holder: LockHolder) -> str:
    """The takeover's reason, for its log event, of a holder judged by its pid."""
    process = holder.process
    if process.on_this_host and not process.started_before_this_boot():
        if process.instance is None:
            return ("holder of an earlier version not running: no process of ours that started "
                    "at its moment runs on this machine")
        return "holder not running"
    return "holder ran before this machine restarted"

"""A file its process holds locked for its whole life, so that its end can be proven.

A pid and a start time name a process only where its pids can be seen: from inside a
container, a process of another container of the same host name is invisible, and a record it
left (a daemon's lock, a simulator's mark on a fleet folder) could never be judged. The
operating system's own file lock (``flock`` on POSIX) can: the kernel drops it when the last
descriptor of the file closes, which a process's end does, kill -9 and a container going away
included, and every process of the machine that opens the same file sees it, in whatever pid
namespace it runs. So a record that says its writer holds it (:data:`HELD_MARK`) is proven
ended when its lock can be taken (:func:`held`), and proven running while it cannot.

The lock is taken on the file before it is put in its place (:func:`hold`), so no reader finds
the record unheld while its writer lives. A process that forks without exec shares the lock
with its child (the child may still act: safe); descriptors are not inherited across exec.
Where the system has no such lock (Windows), :func:`hold` takes none, and the record does not
say it is held: it is judged by its pid as before.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from preform_pipeline.liveness import Liveness, ProcessIdentity, this_host

try:
    import fcntl
except ImportError:  # Windows: no flock; records there do not claim one
    fcntl = None  # type: ignore[assignment]

__all__ = ["HELD_MARK", "held", "hold", "judged", "record_text", "says_held", "write_held"]

#: How a record says its writer holds it locked for its life (the value of its ``held`` key).
HELD_MARK: Final = "flock"


def hold(fd: int, *, wait: bool = False) -> bool:
    """Lock the open file ``fd`` for as long as it stays open (exclusively; ``wait``: until
    another holder lets go, else not at all); True when held, False where the system has no
    such lock or another process holds it."""
    if fcntl is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except OSError:
        return False
    return True


def judged(process: ProcessIdentity, path: Path, *, says_held: bool) -> tuple[Liveness, bool]:
    """Whether the writer of the record at ``path`` runs, and whether its lock decided it
    (the one rule for held records: the daemon lock, a fleet folder's members). A record of
    this host name that says it is held is judged by its lock while that can be told, from
    any container: held, RUNNING; free, ENDED. Any other (an earlier version's, another
    host's, a system without such locks) by its pid
    (:meth:`~preform_pipeline.liveness.ProcessIdentity.judged_on_this_machine`)."""
    if says_held and process.host == this_host():
        proof = held(path)
        if proof is not None:
            return (Liveness.RUNNING if proof else Liveness.ENDED), True
    return process.judged_on_this_machine(), False


def write_held(path: Path, text_of: Callable[[bool], str]) -> int | None:
    """Create (or empty) ``path``, hold it (:func:`hold`), then write ``text_of(held)`` into
    it: held first, so no reader finds the record unheld while its writer lives. Returns the
    open descriptor while it is held (keep it open for the process's life; closing it lets
    go), None where it could not be held (the file then closed). Raises OSError, naming
    ``path``; a record that could not be written whole (a full disk) is removed first, so no
    empty or cut record is left under its name."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        is_held = hold(fd)
        with os.fdopen(fd, "w", encoding="utf-8", closefd=False) as stream:
            stream.write(text_of(is_held))
    except BaseException as exc:
        os.close(fd)
        with contextlib.suppress(OSError):
            path.unlink()
        if isinstance(exc, OSError) and exc.filename is None:
            # A refused write names no file (its descriptor has none): the caller's message
            # must say which record could not be written.
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    if not is_held:
        os.close(fd)  # Windows renames no open file; nothing to hold open anyway
        return None
    return fd


def record_text(data: Mapping[str, Any], *, is_held: bool) -> str:
    """A record as one line of JSON, saying :data:`HELD_MARK` when its writer holds it."""
    return json.dumps({**data, "held": HELD_MARK} if is_held else dict(data)) + "\n"


def says_held(data: Mapping[str, Any]) -> bool:
    """Whether a record read back says its writer holds it (:func:`record_text`)."""
    return data.get("held") == HELD_MARK


def held(path: Path) -> bool | None:
    """Whether some process holds ``path`` locked (:func:`hold`): True while one does (that
    process runs); False when none does (whoever held it has ended); None when this cannot be
    told (no such lock on this system; the file is gone or cannot be opened). The probe takes a
    shared lock for a moment: two probes never see each other, a holder's exclusive lock
    refuses both."""
    if fcntl is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None  # a file system without flock: nothing is known
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)  # closing drops the probe's own lock
    return False

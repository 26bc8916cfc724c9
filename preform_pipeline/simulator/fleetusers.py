"""Which simulators use a fleet folder now, and with which fleet.

One fleet folder holds one fleet at a time (``printers.json``): a simulator started with a
declared fleet replaces its printers, one started without puts the default printers back
(fleet.py). Two such simulators at the same time on one folder (a rehearsal with a declared
fleet and a default run, both on the user's data folder) would each change the other's
printers under it, silently: the later start won. So each simulator on a fleet folder
*joins* it (:func:`join`) before it touches ``printers.json``: it writes a record of itself
into ``users/`` (its process, and its fleet: the declared printers, or the folder's own), held
for its life (heldfile.py), and a start whose fleet differs from a live member's is refused
(:class:`FleetInUseError`) with who uses the folder, with which fleet, and what helps. Members
with the same fleet (a pool's servers, a server the pool restarts) share the folder.

A member is judged by the one rule for held records (:func:`~preform_pipeline.heldfile.judged`):
its lock while it holds it, from any container; one that ended (kill -9 included) is removed
at the next start. Joins are one at a time (``users/.join.lock``), so two starts of different
fleets at the same moment cannot both pass. Where the system has no file locks (Windows),
members are judged by their pid (liveness.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from preform_pipeline.errors import PipelineError
from preform_pipeline.heldfile import held, hold, judged, record_text, says_held, write_held
from preform_pipeline.liveness import Liveness, ProcessIdentity
from preform_pipeline.logging import get_logger

from .fleet import SimPrinter

__all__ = ["FleetInUseError", "FleetMembership", "join"]

#: A fleet that no simulator declared: whatever the folder holds (the default printers, or a
#: printers.json of the user's own).
FOLDER_S_OWN: Final = "the folder's own printers"
_USERS: Final = "users"
_JOIN_LOCK: Final = ".join.lock"
#: How many printers of a declared fleet a refusal names (the pool shows 500 characters of a
#: server's last output: the whole refusal must fit).
_NAMED: Final = 3

_log = get_logger(__name__)


class FleetInUseError(PipelineError):
    """The fleet folder is in use by a live simulator with another fleet: this one must not
    start (it would change that simulator's printers)."""


@dataclass(frozen=True)
class _Member:
    """A member's record: its process, its fleet's key, and its printers in a user's words."""

    process: ProcessIdentity
    fleet: str
    printers: str
    held: bool

    def to_text(self) -> str:
        return record_text({**self.process.to_json(), "fleet": self.fleet,
                            "printers": self.printers}, is_held=self.held)

    @classmethod
    def from_text(cls, text: str) -> _Member:
        """Raises ValueError when the text is not a member's record."""
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("fleet"), str):
            raise ValueError("not a fleet member's record")
        return cls(ProcessIdentity.from_json(data), data["fleet"],
                   str(data.get("printers", "")), says_held(data))


def _fleet_of(declared: Sequence[SimPrinter] | None) -> tuple[str, str]:
    """(key, words) of a fleet: the declared printers by their whole content (the same
    declaration, in any order, is the same fleet), or the folder's own."""
    if declared is None:
        return FOLDER_S_OWN, FOLDER_S_OWN
    bodies = sorted(json.dumps(asdict(p), sort_keys=True) for p in declared)
    key = "declared:" + hashlib.sha256("\n".join(bodies).encode("utf-8")).hexdigest()[:16]
    serials = sorted(p.serial for p in declared)
    more = f" and {len(serials) - _NAMED} more" if len(serials) > _NAMED else ""
    return key, f"declared printers {', '.join(serials[:_NAMED])}{more}"


class FleetMembership:
    """This simulator's place among a fleet folder's users, until :meth:`leave`."""

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path = path
        self._fd = fd

    def leave(self) -> None:
        """Remove this member's record (then drop its lock: a reader never finds it unheld
        while it is in place)."""
        # Gone already, or the folder refuses: the record, unheld once closed, is removed by
        # the next join. Nothing raised here (this may run at interpreter exit).
        with contextlib.suppress(OSError):
            self.path.unlink()
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


@contextlib.contextmanager
def _one_join_at_a_time(users: Path) -> Iterator[None]:
    """Joins one at a time, across processes and containers (a blocking file lock, held for
    the few file operations of a join)."""
    fd = os.open(users / _JOIN_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        hold(fd, wait=True)
        yield
    finally:
        os.close(fd)


def join(root: Path, declared: Sequence[SimPrinter] | None) -> FleetMembership:
    """Join the fleet folder ``root`` with the ``declared`` printers (None: the folder's own
    fleet). Raises FleetInUseError while a live member serves another fleet; removes the
    records of members that ended; OSError when ``users/`` cannot be written."""
    users = root / _USERS
    users.mkdir(parents=True, exist_ok=True)
    fleet, printers = _fleet_of(declared)
    with _one_join_at_a_time(users):
        for member in _live_members(users):
            if member is not None and member.fleet != fleet:
                raise _in_use(root, member, printers)
        me = ProcessIdentity.current()
        # One record per join, even of one process (engines made one after another): a
        # name shared with another member would truncate its record and unlink it at leave.
        path = users / f"{me.host}-{me.pid}-{uuid.uuid4().hex[:12]}.json"
        fd = write_held(path, lambda is_held: _Member(me, fleet, printers, is_held).to_text())
        _log.info("fleet_joined", fleet_dir=str(root), fleet=printers)
        return FleetMembership(path, fd)


def _live_members(users: Path) -> Iterator[_Member | None]:
    """The members that may still run (None: a record that cannot be read, held by a live
    process); the records of those that ended are removed on the way."""
    for path in sorted(users.glob("*.json")):
        try:
            member: _Member | None = _Member.from_text(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            member = None
        if member is not None:
            alive = judged(member.process, path, says_held=member.held)[0] is not Liveness.ENDED
        else:  # whose fleet it is cannot be told; a start killed mid-write holds it no more
            alive = held(path) is not False
        if alive:
            yield member
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        _log.info("fleet_member_gone", path=str(path),
                  pid=member.process.pid if member is not None else None)


def _in_use(root: Path, member: _Member, mine: str) -> FleetInUseError:
    process = member.process
    return FleetInUseError(
        f"fleet folder {root} is in use by a simulator with another fleet (pid {process.pid} "
        f"on {process.host}: {member.printers}; this one: {mine}); one folder holds one fleet "
        "at a time",
        hint="let that one end first, or give this one a fleet folder of its own: --fleet-dir, "
             "or for a pool another XDG_DATA_HOME",
    )

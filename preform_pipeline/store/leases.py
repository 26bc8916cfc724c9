"""Nodes, build claims and fencing on the shared PostgreSQL store.

Several nodes (preparation PCs, each with its own PreFormServers) share one store. The rules,
after Kleppmann's fencing tokens ("How to do distributed locking", 2016):

- **A node registers** (id, host, version, the printers and machine types it can reach) and
  beats; the database's clock (``now()``) stamps every beat, so nodes' clocks never matter.
- **A build is claimed** with ``SELECT … FOR UPDATE SKIP LOCKED``: nodes never wait on each
  other's claims. A claim sets the owner, increments the build's **epoch** and sets a lease
  ending at ``now() + lease`` on the database's clock, which the node working the build
  renews (:meth:`LeasingStore.renew`) while it works.
- **Every later move is fenced**: the same transaction first runs an UPDATE whose WHERE
  clause requires this owner, this epoch and an unexpired lease; if it touches no row, the
  move is refused with :class:`~preform_pipeline.errors.LeaseLostError` and nothing changes.
  A node that paused (GC, SIGSTOP, a sleeping laptop) past its lease therefore writes nothing
  when it wakes: a newer epoch holds the build.
- **The move to sending a print** also requires the lease to last at least the print
  request's own deadline (``min_left_s``), so a send is never started on a lease that could
  run out while the request is in flight.
- **Recovery**: a build whose lease ran out is claimable again (at a new epoch); the claim
  says whose it was, and the claimant follows the print owner's rules (docs/printing.md)
  before any print step.
- **A shared inbox**: a file is taken by the node whose row in ``inbox_claims`` goes in first
  (the claim in the database comes before the move).
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from preform_pipeline.errors import LeaseLostError, NodeIdInUseError, StoreError
from preform_pipeline.liveness import ProcessIdentity
from preform_pipeline.logging import get_logger
from preform_pipeline.store.model import INTERRUPTED_STATES, Build, JobState
from preform_pipeline.store.protocol import StateFilter
from preform_pipeline.store.sqlcore import Connection, SqlStoreCore

__all__ = [
    "CLAIMABLE_STATES",
    "DEFAULT_LEASE_S",
    "Lease",
    "LeasingStore",
    "NodeInfo",
    "NodeStatus",
]

log = get_logger(__name__)

#: How long a claim lasts unless renewed. A node renews at a third of it; a node silent for
#: this long is taken as dead and its builds are reclaimed.
DEFAULT_LEASE_S: Final = 60.0
#: A node whose last beat is older than this many leases shows as "silent" in `nodes`.
_SILENT_AFTER_LEASES: Final = 1.0

#: "The node named by ``c.node`` is alive" (one ``?``: the lease in seconds): not stopped,
#: and beating within a lease.
_NODE_ALIVE: Final = (
    "EXISTS (SELECT 1 FROM nodes AS n WHERE n.id = c.node AND n.stopped_at IS NULL "
    "AND n.heartbeat_at > now() - make_interval(secs => ?))"
)

#: "Job ``j`` was taken from an inbox and not yet batched" (being taken, or waiting).
_UNBATCHED: Final = (
    "j.state IN ('processing', 'queued', 'discovered') AND j.build_id IS NULL"
)

#: The inbox claims a job ``j`` may have (``id``, ``content_hash``, ``path``, ``whole``,
#: ``claim``): the path its file was dropped at (``whole``), and each folder above it in the
#: inbox (a case folder is claimed as a whole, under ``claim``: the hash its drop was
#: claimed under, when recorded). They come from its hot-folder place (``_hotfolder``: the
#: inbox, and the path in it as dropped with ``/``, hotfolder/intake.py), each written both
#: ways a node writes a path (POSIX, or Windows with ``\``). A ``run``'s job has no place, so
#: no claim. Computed per job, for the jobs a WHERE clause appended names (few, not per claim:
#: one stays for every file ever taken), so claims are found by their key.
_JOB_PATHS: Final = (
    "SELECT j.id, j.content_hash, n = cardinality(d.parts) AS whole, p.path, "
    "j.fields #>> '{_hotfolder,claim}' AS claim FROM jobs AS j, "
    "LATERAL (SELECT rtrim(j.fields #>> '{_hotfolder,inbox}', '/\\') AS base, "
    "string_to_array(j.fields #>> '{_hotfolder,rel}', '/') AS parts) AS d, "
    "unnest(d.parts) WITH ORDINALITY AS u (part, n), "
    "LATERAL (VALUES (d.base || '/' || array_to_string(d.parts[1:n], '/')), "
    "(d.base || '\\' || array_to_string(d.parts[1:n], '\\'))) AS p (path)"
)
#: ``_JOB_PATHS`` of the jobs taken from an inbox and not yet batched.
_CLAIMABLE_PATHS: Final = f"{_JOB_PATHS} WHERE {_UNBATCHED}"
#: "Job ``j`` was dropped in the case folder of this inode" (``?``, as text: ``CaseFolder``
#: in hotfolder/intake.py; not its device number, each machine's own for its mount of a
#: shared inbox).
_CASE_FOLDER_IS: Final = "j.fields #>> '{_hotfolder,case,inode}' = ?"

#: "Inbox claim ``c`` is the own claim of the job of path ``o``" (``_JOB_PATHS``): the
#: claim of its file as dropped (path and content), or of the case folder it was dropped in
#: (claimed whole, under one hash over all its files: the one its take recorded, ``claim``).
#: Content alone is not enough: a live node's file of the same content (``duplicates:
#: print``) or a ``run``'s job share it. Path alone is not enough for a folder: claims are
#: never deleted, so a later case of the same name (or, in a store from before session 38,
#: another node's claim on the rest of this very case) is another node's, and counted as
#: this job's it kept the job's files from being settled while that node lived, and moved
#: that node's live claim with an adoption. A job that recorded no claim hash (taken before
#: it was recorded) keeps the path-only rule.
_OWN_CLAIM: Final = (
    "c.source_path = o.path AND (NOT o.whole OR c.content_hash = o.content_hash) "
    "AND (o.whole OR o.claim IS NULL OR c.content_hash = o.claim)"
)

#: "Inbox claim ``c`` may move to the adopting node now" (``?``: the node, whether its own
#: previous life's claims count, the node again, the lease in seconds): another node's claim
#: (or, with the second ``?``, its own), whose node is gone (stopped, or silent for a lease),
#: or nobody's (handed back, :meth:`LeasingStore.hand_back_jobs`: ``NULL`` is no live node).
_ADOPTABLE: Final = f"(c.node IS DISTINCT FROM ? OR ?) AND (c.node = ? OR NOT {_NODE_ALIVE})"


def _move_own_claims(
    conn: Connection, job_ids: Collection[int] | None, to: str | None, where: str,
    params: Sequence[Any],
) -> tuple[int, ...]:
    """Move to node ``to`` (None: nobody's) the own inbox claims (``_OWN_CLAIM``) of the
    unbatched jobs ``job_ids`` (None: all) that also match ``where`` (with ``params``);
    returns the jobs whose own claim moved."""
    only = "" if job_ids is None else " AND j.id = ANY(?)"
    # The claims move first, then every unbatched job they are the own claim of is returned:
    # an UPDATE ... FROM ... RETURNING gives one job per claim, and a case folder's claim is
    # several jobs' own.
    rows = conn.execute(
        f"WITH o AS ({_CLAIMABLE_PATHS}{only}), moved AS (UPDATE inbox_claims AS c "
        f"SET node = ? FROM o WHERE {_OWN_CLAIM} AND {where} RETURNING "
        f"c.source_path, c.content_hash) SELECT o.id FROM o JOIN moved AS c ON {_OWN_CLAIM}",
        (*(() if job_ids is None else (list(job_ids),)), to, *params),
    ).fetchall()
    return tuple(sorted({int(r["id"]) for r in rows}))


#: Builds a node takes up: to prepare, prepared and not sent (waiting for a printer too), or
#: cut off mid-step (only after their lease ran out: that is recovery). PRINT_SENT and
#: VERIFYING belong to the poller.
CLAIMABLE_STATES: Final = (
    frozenset({JobState.PROCESSING, JobState.PREPARED, JobState.WAITING_FOR_PRINTER})
    | INTERRUPTED_STATES
)


@dataclass(frozen=True)
class NodeInfo:
    """What a node says about itself when it registers."""

    id: str
    host: str
    version: str
    pid: int | None = None
    printers: tuple[str, ...] = ()
    machine_types: tuple[str, ...] = ()
    #: The inboxes its hot folder watches, as its settings name them (``JobPlace.inbox``).
    inboxes: tuple[str, ...] = ()
    #: Its daemon's process (:meth:`~preform_pipeline.liveness.ProcessIdentity.label`): tells
    #: a restart of this node after a kill from another daemon with its id. None: not known.
    process: str | None = None


@dataclass(frozen=True)
class NodeStatus:
    """A registered node as ``preform-pipeline nodes`` shows it (ages on the database clock)."""

    info: NodeInfo
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_age_s: float
    stopped: bool
    held_builds: tuple[int, ...]

    def health(self, lease_s: float = DEFAULT_LEASE_S) -> str:
        """``stopped``, ``silent`` (no beat for a lease: presumed dead) or ``alive``."""
        if self.stopped:
            return "stopped"
        return "silent" if self.heartbeat_age_s > lease_s * _SILENT_AFTER_LEASES else "alive"


@dataclass(frozen=True)
class Lease:
    """A node's claim on a build: valid while the owner and epoch match and it has not run out.

    ``previous_owner`` is set when the claim took the build over from another node (or from
    this node's earlier life): the claimant must reconcile before acting (docs/printing.md).
    """

    build_id: int
    owner: str
    epoch: int
    until: datetime
    state: JobState
    previous_owner: str | None = None

    @property
    def recovered(self) -> bool:
        return self.previous_owner is not None


def _lease_from(row: Any) -> Lease:
    return Lease(build_id=int(row["id"]), owner=row["owner"], epoch=int(row["epoch"]),
                 until=row["lease_until"], state=JobState(row["state"]),
                 previous_owner=row.get("previous_owner"))


def _previous_life(node: NodeInfo, held: Any) -> bool:
    """Whether a node row ``held`` (its host, pid and ``process`` label) is ``node``'s own
    previous life, so ``node`` may take the row at once: this very registration again, or a
    process of this host and instance that certainly ended (killed: one rule, liveness.py, as
    a printer claim's holder, sqlcore ``_holder_ended``). A holder of another host or instance
    (another PC, container, or boot), or a row naming no process (written before rows named
    one), is never proven gone: its beat decides."""
    process = held["process"]
    if (held["host"], held["pid"], process) == (node.host, node.pid, node.process):
        return True
    if process is None:
        return False
    holder = ProcessIdentity.from_label(process)
    return holder is not None and holder.has_ended()


def _proven_running(process: str | None) -> bool:
    """Whether a node row's holder certainly runs: a process of this host and instance."""
    holder = ProcessIdentity.from_label(process) if process is not None else None
    return holder is not None and holder.is_running()


class LeasingStore(SqlStoreCore):
    """The node, claim and fence operations; PostgreSQL only (``now()``, SKIP LOCKED)."""

    @abstractmethod
    def _claim_transaction(self, action: str) -> AbstractContextManager[Connection]:
        """A write transaction that does not queue behind the store's writers: claims and
        beats touch only their own rows, under row locks."""

    def _shared_now(self, conn: Connection) -> datetime:
        # The database's clock, as the build leases and beats go by: nodes' clocks differ.
        now: datetime = conn.execute("SELECT now() AS now").fetchone()["now"]
        return now

    # --- nodes -------------------------------------------------------------------------------

    def register_node(self, node: NodeInfo, *, lease_s: float = DEFAULT_LEASE_S) -> None:
        """Record (or re-record, after a restart) this node and its first beat.

        Refused (:class:`NodeIdInUseError`) while another daemon of this id may still run:
        not stopped, beating within ``lease_s``, and not proven ``node``'s own previous life
        (:func:`_previous_life`: a restart after a kill -9 on this PC registers at once, as
        after a clean stop or a beat a lease old).
        """
        with self._claim_transaction(f"registering node {node.id}") as conn:
            held = conn.execute(
                "SELECT host, pid, process, heartbeat_at, "
                "extract(epoch FROM now() - heartbeat_at) AS age_s "
                "FROM nodes WHERE id = ? AND stopped_at IS NULL FOR UPDATE", (node.id,),
            ).fetchone()
            if held is not None and float(held["age_s"]) < lease_s and not _previous_life(
                    node, held):
                age = float(held["age_s"])
                raise NodeIdInUseError(node.id, held["host"], held["pid"], age,
                                       free_in_s=lease_s - age,
                                       running=_proven_running(held["process"]),
                                       heartbeat_at=held["heartbeat_at"])
            conn.execute(
                "INSERT INTO nodes (id, host, version, pid, printers, machine_types, inboxes, "
                "process, started_at, heartbeat_at, stopped_at) VALUES (?, ?, ?, ?, ?, ?, ?, "
                "?, now(), now(), NULL) ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, "
                "version = EXCLUDED.version, pid = EXCLUDED.pid, printers = EXCLUDED.printers, "
                "machine_types = EXCLUDED.machine_types, inboxes = EXCLUDED.inboxes, "
                "process = EXCLUDED.process, "
                "started_at = now(), heartbeat_at = now(), stopped_at = NULL",
                (node.id, node.host, node.version, node.pid, json.dumps(list(node.printers)),
                 json.dumps(list(node.machine_types)), json.dumps(list(node.inboxes)),
                 node.process),
            )
            # A node starting afresh holds nothing: what its id still holds is its previous
            # life's (killed mid-build). Let it run out now so any node may recover it, rather
            # than this node's beats keeping alive claims nobody works on.
            conn.execute("UPDATE builds SET lease_until = now() WHERE owner = ? "
                         "AND lease_until > now()", (node.id,))
        log.info("node_registered", node=node.id, host=node.host, version=node.version)

    def heartbeat(self, node_id: str) -> None:
        """Record that the node is alive (``nodes`` shows the beat's age).

        A beat does not extend leases: the thread working a build renews that build's lease
        (:meth:`renew`), so a build a live node has dropped (after an error) runs out and is
        recovered, instead of being kept alive by beats while nobody works on it.
        """
        with self._claim_transaction(f"heartbeat of node {node_id}") as conn:
            self._known_node(conn, node_id)
            conn.execute("UPDATE nodes SET heartbeat_at = now() WHERE id = ?", (node_id,))

    def node_stopped(self, node_id: str) -> None:
        """A clean stop: mark the node and give its claims back at once (no lease to wait)."""
        with self._claim_transaction(f"stopping node {node_id}") as conn:
            conn.execute("UPDATE nodes SET stopped_at = now() WHERE id = ?", (node_id,))
            conn.execute("UPDATE builds SET lease_until = now() WHERE owner = ? "
                         "AND lease_until > now()", (node_id,))
        log.info("node_stopped", node=node_id)

    def list_nodes(self) -> tuple[NodeStatus, ...]:
        """Every registered node with its beat's age and the builds it holds under a lease."""
        with self._claim_transaction("listing nodes") as conn:
            rows = conn.execute(
                "SELECT n.*, extract(epoch FROM now() - n.heartbeat_at) AS age_s, "
                "COALESCE(array_agg(b.id ORDER BY b.id) FILTER (WHERE b.id IS NOT NULL), "
                "'{}') AS held FROM nodes n LEFT JOIN builds b ON b.owner = n.id "
                "AND b.lease_until > now() GROUP BY n.id ORDER BY n.id"
            ).fetchall()
        return tuple(
            NodeStatus(
                info=NodeInfo(id=r["id"], host=r["host"], version=r["version"], pid=r["pid"],
                              printers=tuple(r["printers"]),
                              machine_types=tuple(r["machine_types"]),
                              inboxes=tuple(r["inboxes"]), process=r["process"]),
                started_at=r["started_at"], heartbeat_at=r["heartbeat_at"],
                heartbeat_age_s=float(r["age_s"]), stopped=r["stopped_at"] is not None,
                held_builds=tuple(int(b) for b in r["held"]),
            )
            for r in rows
        )

    def _known_node(self, conn: Connection, node_id: str) -> None:
        if conn.execute("SELECT 1 FROM nodes WHERE id = ?", (node_id,)).fetchone() is None:
            raise StoreError(f"{self.location}: no node {node_id!r} is registered",
                             hint="a node registers when its daemon starts")

    # --- claims ------------------------------------------------------------------------------

    def claim_build(
        self,
        node_id: str,
        *,
        states: Collection[JobState] = CLAIMABLE_STATES,
        lease_s: float = DEFAULT_LEASE_S,
        recipes: Collection[str] | None = None,
        exclude: Collection[int] = (),
    ) -> Lease | None:
        """Claim the oldest build in ``states`` that nobody holds (or whose lease ran out).

        Returns None when there is none free. Builds another node is claiming at this very
        moment are skipped, not waited for; so are ``exclude`` (builds this node's own lost
        attempt still runs: it ends at its next write, then the build is claimable here too).
        """
        values: list[Any] = [s.value for s in states]
        where = f"state IN ({', '.join('?' for _ in values)})"
        if recipes is not None:
            where += f" AND recipe IN ({', '.join('?' for _ in recipes)})"
            values.extend(recipes)
        if exclude:
            where += " AND NOT (id = ANY(?))"
            values.append(list(exclude))
        with self._claim_transaction(f"claiming a build for node {node_id}") as conn:
            self._known_node(conn, node_id)
            row = conn.execute(
                "WITH pick AS (SELECT id, owner AS previous_owner FROM builds "
                f"WHERE {where} AND (owner IS NULL OR lease_until IS NULL "
                "OR lease_until <= now()) ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) "
                "UPDATE builds AS b SET owner = ?, epoch = b.epoch + 1, "
                "lease_until = now() + make_interval(secs => ?) FROM pick WHERE b.id = pick.id "
                "RETURNING b.id, b.owner, b.epoch, b.lease_until, b.state, pick.previous_owner",
                (*values, node_id, lease_s),
            ).fetchone()
        if row is None:
            return None
        lease = _lease_from(row)
        log.info("build_claimed", build_id=lease.build_id, node=node_id, epoch=lease.epoch,
                 state=lease.state.value, previous_owner=lease.previous_owner)
        return lease

    def renew(self, lease: Lease, *, lease_s: float = DEFAULT_LEASE_S) -> Lease:
        """Extend a lease that still holds; LeaseLostError (and the build must stop) if not."""
        with self._claim_transaction(f"renewing the lease on build {lease.build_id}") as conn:
            row = conn.execute(
                "UPDATE builds SET lease_until = now() + make_interval(secs => ?) "
                "WHERE id = ? AND owner = ? AND epoch = ? AND lease_until > now() "
                "RETURNING id, owner, epoch, lease_until, state",
                (lease_s, lease.build_id, lease.owner, lease.epoch),
            ).fetchone()
        if row is None:
            self._lost(lease, "its lease ran out or another node took it over")
        return _lease_from(row)

    def release(self, lease: Lease) -> bool:
        """Give the build back (the node is done with it, or gave up); False if it was lost."""
        with self._claim_transaction(f"releasing build {lease.build_id}") as conn:
            released = conn.execute(
                "UPDATE builds SET owner = NULL, lease_until = NULL "
                "WHERE id = ? AND owner = ? AND epoch = ?",
                (lease.build_id, lease.owner, lease.epoch),
            ).rowcount
        return released == 1

    def transition_build_fenced(
        self,
        lease: Lease,
        to_state: JobState,
        reason: str,
        *,
        expect: StateFilter | None = None,
        min_left_s: float = 0.0,
        **fields: Any,
    ) -> Build:
        """``transition_build``, refused (LeaseLostError, nothing written) unless ``lease``
        still holds with at least ``min_left_s`` to run on the database's clock."""

        return self._move_build(lease.build_id, to_state, reason, expect, fields,
                                guard=self._fence(lease, min_left_s))

    def update_build_fenced(self, lease: Lease, **fields: Any) -> Build:
        """``update_build``, refused (LeaseLostError, nothing written) unless ``lease`` holds."""
        return self._update_build(lease.build_id, fields, guard=self._fence(lease, 0.0))

    def create_claimed_build(
        self,
        node_id: str,
        *,
        recipe: str,
        job_ids: Collection[int] = (),
        lease_s: float = DEFAULT_LEASE_S,
        server: str | None = None,
        reason: str = "batched",
    ) -> tuple[Build, Lease]:
        """``create_build`` and its claim by ``node_id`` in one transaction: no other node
        can claim the new build between the two (there is no between)."""
        ids = list(job_ids)
        if len(set(ids)) != len(ids):
            raise StoreError(f"a build lists a job twice: {ids}")
        with self._transaction("creating a claimed build", write=True) as conn:
            self._known_node(conn, node_id)
            build = self._create_build_in(conn, recipe, ids, server, reason)
            row = conn.execute(
                "UPDATE builds SET owner = ?, epoch = epoch + 1, "
                "lease_until = now() + make_interval(secs => ?) WHERE id = ? "
                "RETURNING id, owner, epoch, lease_until, state",
                (node_id, lease_s, build.id),
            ).fetchone()
        lease = _lease_from(row)
        log.info("build_created", build_id=build.id, job_key=build.job_key, recipe=recipe,
                 jobs=ids, node=node_id, epoch=lease.epoch)
        return build, lease

    def _fence(self, lease: Lease, min_left_s: float) -> Callable[[Connection], None]:
        def fence(conn: Connection) -> None:
            # The fence is the WHERE clause of an UPDATE in the move's own transaction: it
            # locks the row, so the lease cannot be reclaimed between the check and the move.
            touched = conn.execute(
                "UPDATE builds SET lease_until = lease_until WHERE id = ? AND owner = ? "
                "AND epoch = ? AND lease_until > now() + make_interval(secs => ?)",
                (lease.build_id, lease.owner, lease.epoch, min_left_s),
            ).rowcount
            if touched != 1:
                why = ("its lease ran out or another node took it over" if min_left_s <= 0
                       else f"its lease has less than {min_left_s:g} s left, or is gone")
                self._lost(lease, why)

        return fence

    def orphan_jobs(
        self, node_id: str, *, lease_s: float = DEFAULT_LEASE_S, own: bool = False
    ) -> tuple[int, ...]:
        """The jobs :meth:`adopt_orphan_jobs` would adopt for ``node_id`` now, without
        adopting them (their claims stay): a node picks those it takes (the jobs of the
        inboxes it watches, ``hotfolder.intake.watcher_takes``) and adopts only them."""
        with self._claim_transaction(f"listing orphaned jobs for node {node_id}") as conn:
            rows = conn.execute(
                f"WITH o AS ({_CLAIMABLE_PATHS}) SELECT DISTINCT o.id FROM o "
                f"JOIN inbox_claims AS c ON {_OWN_CLAIM} WHERE {_ADOPTABLE} ORDER BY o.id",
                (node_id, own, node_id, lease_s),
            ).fetchall()
        return tuple(int(r["id"]) for r in rows)

    def adopt_orphan_jobs(
        self, node_id: str, *, lease_s: float = DEFAULT_LEASE_S, own: bool = False,
        job_ids: Collection[int] | None = None,
    ) -> tuple[int, ...]:
        """Jobs taken from a shared inbox by a node that is gone (stopped, or silent for a
        lease) before they joined a build (being taken, or waiting to be batched): their own
        inbox claims (``_OWN_CLAIM``) move to ``node_id``, and their ids are returned for it
        to take up.
        Row locks make the move exclusive: of two nodes
        adopting at once, one gets each job. ``own``: this node's previous life's jobs too
        (a node starting afresh holds none in memory). ``job_ids``: only these (the ones of
        :meth:`orphan_jobs` the node takes; whether each is still an orphan is decided here,
        in the move's own transaction); None: all."""
        with self._claim_transaction(f"adopting orphaned jobs for node {node_id}") as conn:
            self._known_node(conn, node_id)
            adopted = _move_own_claims(conn, job_ids, node_id, _ADOPTABLE,
                                       (node_id, own, node_id, lease_s))
        if adopted:
            log.info("orphan_jobs_adopted", node=node_id, jobs=list(adopted))
        return adopted

    def hand_back_jobs(self, node_id: str, job_ids: Collection[int]) -> tuple[int, ...]:
        """Give up ``node_id``'s own inbox claims (``_OWN_CLAIM``) of the unbatched jobs
        ``job_ids`` (those of an inbox it no longer watches): each claim becomes nobody's,
        so a node watching the job's inbox adopts the job as a gone node's
        (:meth:`adopt_orphan_jobs`). Returns the jobs whose claim went (a case folder's
        claim is several jobs' own).

        Only claims still ``node_id``'s, of jobs still unbatched, in one transaction: the
        UPDATE locks each claim row, so an adoption waits for it and then sees nobody's claim
        (or, when it came first, this node's live one: nothing to adopt). Nothing is handed
        back that is in a build."""
        with self._claim_transaction(f"handing back jobs of node {node_id}") as conn:
            handed = _move_own_claims(conn, job_ids, None, "c.node = ?", (node_id,))
        if handed:
            log.info("orphan_jobs_handed_back", node=node_id, jobs=list(handed),
                     why="not of an inbox it watches")
        return handed

    def build_busy(self, build_id: int, *, grace_s: float) -> bool:
        """True while some node holds the build under a lease, or moved it less than
        ``grace_s`` ago (its holder may be settling its files right now)."""
        with self._claim_transaction(f"reading the holder of build {build_id}") as conn:
            row = conn.execute(
                "SELECT (owner IS NOT NULL AND lease_until > now()) "
                "OR updated_at > now() - make_interval(secs => ?) AS busy "
                "FROM builds WHERE id = ?", (grace_s, build_id),
            ).fetchone()
        return row is not None and bool(row["busy"])

    def grace_left(self, build_id: int, *, grace_s: float) -> float | None:
        """Seconds (on the database's clock) until :meth:`build_busy` with this grace turns
        false by time alone: when no node holds the build under a live lease and it was
        moved less than ``grace_s`` ago. None otherwise (held, long settled, or no build)."""
        with self._claim_transaction(f"reading the last move of build {build_id}") as conn:
            row = conn.execute(
                "SELECT extract(epoch FROM updated_at + make_interval(secs => ?) - now()) "
                "AS left_s FROM builds WHERE id = ? "
                "AND NOT (owner IS NOT NULL AND lease_until > now()) "
                "AND updated_at > now() - make_interval(secs => ?)",
                (grace_s, build_id, grace_s),
            ).fetchone()
        return None if row is None else max(0.0, float(row["left_s"]))

    def may_settle(self, node_id: str, build_id: int, *, lease_s: float = DEFAULT_LEASE_S) -> bool:
        """Whether ``node_id`` may move the files of ``build_id``'s jobs out of processing/:
        it holds their own inbox claims (``_OWN_CLAIM``; their claimant's claims move to it
        first when that node is gone). Of several nodes sweeping processing/ at once, one
        settles each file."""
        # The jobs' own claims (``_OWN_CLAIM``): a case's is its folder's; another file of
        # the same content (``duplicates: print``) is another node's business.
        own = f"WITH o AS ({_JOB_PATHS} WHERE j.build_id = ?)"
        with self._claim_transaction(f"taking the files of build {build_id}") as conn:
            conn.execute(
                f"{own} UPDATE inbox_claims AS c SET node = ? FROM o WHERE {_OWN_CLAIM} "
                f"AND c.node IS DISTINCT FROM ? AND NOT {_NODE_ALIVE}",
                (build_id, node_id, node_id, lease_s),
            )
            row = conn.execute(
                f"{own} SELECT NOT EXISTS (SELECT 1 FROM o JOIN inbox_claims AS c "
                f"ON {_OWN_CLAIM} WHERE c.node IS DISTINCT FROM ?) AS mine", (build_id, node_id),
            ).fetchone()
        return bool(row["mine"])

    def _lost(self, lease: Lease, why: str) -> Any:
        log.warning("lease_lost", build_id=lease.build_id, node=lease.owner,
                    epoch=lease.epoch, why=why)
        raise LeaseLostError(lease.build_id, lease.owner, lease.epoch, why=why)

    # --- a shared inbox ----------------------------------------------------------------------

    def claim_inbox_file(
        self, node_id: str, source_path: Path | str, content_hash: str, *,
        lease_s: float = DEFAULT_LEASE_S, case_inode: int | None = None,
    ) -> bool:
        """True when this node takes the file: the first to claim this path with this
        content, or again the node that claimed it, or any node once the claimant is gone
        (stopped, or silent for ``lease_s``: it died between its claim and its move).

        ``case_inode``: the path is a case folder, this very one (its inode). Its
        claim covers the folder while files of it wait unbatched (a take cut short: a kill,
        a move that failed): the rest of it is new content, so a new claim, but it is the
        same case, and goes to the node holding those files' claims (:meth:`_case_takers`).
        """
        with self._claim_transaction("claiming an inbox file") as conn:
            # Claiming is a sign of life: a node that just woke from a stall (or got the
            # database back) claims before its heartbeat thread beats, and its stale beat
            # must not let another node take this very claim over at once (both would take
            # the file; one would skip it as a duplicate of the other's failed take).
            conn.execute("UPDATE nodes SET heartbeat_at = now() WHERE id = ? "
                         "AND stopped_at IS NULL", (node_id,))
            takers = {} if case_inode is None else self._case_takers(
                conn, source_path, case_inode, lease_s)
            if takers and node_id not in takers:
                # (In one transaction with the claim: a taker's job is written before its
                # file leaves the folder, so the rest seen here without it sees the job.)
                live = sorted(n for n, alive in takers.items() if alive and n is not None)
                log.info("inbox_file_claim", node=node_id, source_path=str(source_path),
                         taken=False, case_taken_by=live or sorted(map(str, takers)),
                         why="the rest of a case whose first files wait under "
                         + ("that node's claim" if live else "a gone node's claim, for the "
                            "node that adopts them"))
                return False
            row = conn.execute(
                "INSERT INTO inbox_claims AS c (source_path, content_hash, node, claimed_at) "
                "VALUES (?, ?, ?, now()) ON CONFLICT (source_path, content_hash) DO UPDATE "
                "SET node = EXCLUDED.node, claimed_at = now() "
                f"WHERE c.node = EXCLUDED.node OR NOT {_NODE_ALIVE} RETURNING node",
                (str(source_path), content_hash, node_id, lease_s),
            ).fetchone()
        taken = row is not None
        log.info("inbox_file_claim", node=node_id, source_path=str(source_path), taken=taken)
        return taken

    def _case_takers(
        self, conn: Connection, root: Path | str, inode: int, lease_s: float,
    ) -> dict[str | None, bool]:
        """The nodes (None: nobody's, handed back) holding the own claims on ``root`` of
        unbatched jobs taken from that very case folder (its ``inode``, as the jobs recorded
        it), each with whether it is alive. Empty: no take of it waits.

        Only unbatched jobs of that folder count: once a case's files are batched (or the
        folder is gone and one of the same name made since) its claims no longer cover the
        path, so a later case of that name is claimed as any drop is."""
        rows = conn.execute(
            f"WITH o AS ({_CLAIMABLE_PATHS} AND {_CASE_FOLDER_IS}) SELECT DISTINCT c.node, "
            f"(c.node IS NOT NULL AND {_NODE_ALIVE}) AS alive FROM o JOIN inbox_claims AS c "
            f"ON {_OWN_CLAIM} WHERE NOT o.whole AND o.path = ?",
            (str(inode), lease_s, str(root)),
        ).fetchall()
        return {r["node"]: bool(r["alive"]) for r in rows}

    def adopt_jobs(self, node_id: str, job_ids: Collection[int]) -> tuple[int, ...]:
        """Move the own inbox claims (``_OWN_CLAIM``) of ``job_ids`` to ``node_id`` (it
        recovered their build and batches them now: no other node may adopt them as orphans,
        and another file of their content stays its claimant's).

        Returns the other unbatched jobs whose own claim moved with them (a case's files left
        out of the build, e.g. a split's half not yet made): ``node_id`` takes them up too,
        as no other node adopts them now (``adopt_orphan_jobs``)."""
        with self._claim_transaction(f"adopting jobs for node {node_id}") as conn:
            rows = conn.execute(
                f"WITH b AS ({_JOB_PATHS} WHERE j.id = ANY(?)), moved AS ("
                f"UPDATE inbox_claims AS c SET node = ? FROM b AS o WHERE {_OWN_CLAIM} "
                "RETURNING c.source_path, c.content_hash) SELECT o.id FROM "
                f"({_CLAIMABLE_PATHS} AND NOT (j.id = ANY(?))) AS o JOIN moved AS c "
                f"ON {_OWN_CLAIM}",
                (list(job_ids), node_id, list(job_ids)),
            ).fetchall()
        return tuple(sorted({int(r["id"]) for r in rows}))

    def inbox_claims(self) -> Sequence[tuple[str, str, str | None]]:
        """(source path, content hash, node) of every claimed inbox file, oldest first (node
        None: handed back, :meth:`hand_back_jobs`)."""
        with self._claim_transaction("listing inbox claims") as conn:
            rows = conn.execute("SELECT source_path, content_hash, node FROM inbox_claims "
                                "ORDER BY claimed_at, source_path").fetchall()
        return tuple((r["source_path"], r["content_hash"], r["node"]) for r in rows)

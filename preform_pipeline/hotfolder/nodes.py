"""The hot-folder daemon as one node of several on a shared (PostgreSQL) store.

The daemon works the store through a :class:`~preform_pipeline.store.fenced.NodeJobStore`:
the builds it creates are claimed as they are created, every move is fenced by its lease,
leases are renewed while it works, and its dispatch loop sees only the builds it holds. This
module adds what the daemon does differently on a shared store:

- **A shared inbox** (:meth:`NodeRole.claim_drop`): a drop is taken by the node whose claim
  row (path plus content hash) goes into the database first; only then does that node move
  it out of the inbox. Other nodes leave it alone (a claimant that dies before its move is
  taken over once it is silent for a lease). The rest of a case folder whose take was cut
  short (its first files wait unbatched) is that case's: it goes to the node holding their
  claims (the taker, or the node that adopted them), never to another as a case of its own.
- **Recovery** (:class:`NodeRecovery`): on start and then periodically, the node claims builds
  whose lease ran out (their node died, stalled or lost the database) at a new epoch, and
  follows the print owner's rules before any print step: cut off before its print, a build is
  prepared again; cut off while sending, it is looked up (found: recorded; absent or unknown:
  UNVERIFIED after the grace period, never resent: from another PC the first sender cannot be
  proven gone); waiting for a printer, it waits on here. Jobs a gone node had taken but not
  yet batched are adopted (their inbox claims move here, one node each) and batched here,
  only those of the inboxes this node watches (``takes_back``): the others wait for a node
  watching theirs. Its own previous life's jobs of an inbox it no longer watches (its
  settings changed) are handed back at its start, so a node watching that inbox adopts them.
  Nothing of a live node is touched: the single-node recovery (which takes every interrupted
  build as its own) is not run.
- **A lost lease** (:meth:`NodeRole.lease_lost`): the build gets a stop signal
  (:class:`BuildStops`) that its batch's executor reads before each step, the print
  included: the build stops before its next server request and its server goes back to the
  pool. Nothing of it is written (the fence would refuse it anyway), sent or settled, and
  the node holding the build now carries on.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Final

from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.errors import LeaseLostError, PipelineError, StoreError
from preform_pipeline.geometry.bounded import oversize
from preform_pipeline.hotfolder.intake import CaseFolder, Drop, Intake, watcher_takes
from preform_pipeline.hotfolder.outcomes import ActiveBuilds, OutcomeFolders
from preform_pipeline.hotfolder.recovery import GiveBack, Recovery
from preform_pipeline.hotfolder.storewait import DEFAULT_START_WAIT_S, wait_for_store
from preform_pipeline.logging import get_logger
from preform_pipeline.printing import PrintOwner
from preform_pipeline.settings import Settings
from preform_pipeline.store import Build, Job, JobState
from preform_pipeline.store.content import content_hash
from preform_pipeline.store.fenced import NodeJobStore
from preform_pipeline.store.leases import CLAIMABLE_STATES, DEFAULT_LEASE_S
from preform_pipeline.store.opening import describe_store
from preform_pipeline.store.presence import NodePresence, default_node_id

__all__ = [
    "MAX_CLAIMS_PER_PASS",
    "BuildStops",
    "FarmMembership",
    "NodeRecovery",
    "NodeRole",
    "SharedActiveBuilds",
    "drop_hash",
    "join_farm",
]

log = get_logger(__name__)

#: Builds recovered in one pass at most: the rest wait for the next pass (or other nodes).
MAX_CLAIMS_PER_PASS: Final = 20
_PREPARE_AGAIN: Final = frozenset(
    {JobState.PROCESSING, JobState.PREPARING, JobState.PREPARED}
)


def drop_hash(drop: Drop) -> str:
    """The content identity a drop is claimed under: a file's own hash (the job's), or for a
    case folder one hash over its files' names and hashes."""
    files = sorted({*drop.models, *drop.others})
    if not drop.is_case and len(files) == 1 and files[0] == drop.root:
        return _identity(drop.root)
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(drop.root.parent).as_posix()}\0"
                      f"{_identity(path)}\0".encode())
    return "sha256:" + digest.hexdigest()


def _identity(path: Path) -> str:
    """The file's content hash; for a file the intake refuses unread for its size
    (:func:`~preform_pipeline.geometry.bounded.oversize` of its ``stat`` size), its size and
    modification time, so that claiming it does not read it whole first (the claim only
    needs one name for it that every node computes alike)."""
    info = path.stat()  # one look: gone meanwhile, it raises as hashing it would
    if oversize(info.st_size) is None:
        return content_hash(path)
    return f"unread:{info.st_size}:{info.st_mtime_ns}"


class BuildStops:
    """Builds this node must stop working on now (their lease is lost), with the reason;
    set by the lease-renewal thread (or a refused write), read by the batches' executors."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reasons: dict[int, str] = {}

    def stop(self, build_id: int, reason: str) -> None:
        with self._lock:
            self._reasons.setdefault(build_id, reason)

    def reason(self, build_id: int) -> str | None:
        """Why ``build_id`` must stop (None: it goes on)."""
        with self._lock:
            return self._reasons.get(build_id)

    def clear(self, build_id: int) -> None:
        """The build's batch is over: forget it."""
        with self._lock:
            self._reasons.pop(build_id, None)


class NodeRole:
    """This daemon's part in the farm: claiming drops and reacting to a lost lease."""

    def __init__(self, store: NodeJobStore) -> None:
        self.store = store
        #: The stop signals of builds whose lease this node lost.
        self.stops = BuildStops()
        self._active: SharedActiveBuilds | None = None
        self._recovery: NodeRecovery | None = None
        store.in_use = self.in_use

    def in_use(self, build_id: int, state: JobState) -> bool:
        """Whether this node still works on a build it holds: a batch runs it, it waits for
        a printer here (the dispatch loop's), or recovery is settling it. Anything else it
        holds was dropped by an error, and is let go so it is recovered."""
        if state is JobState.WAITING_FOR_PRINTER:
            return True
        if self._active is not None and self._active.running(build_id):
            return True
        return self._recovery is not None and self._recovery.working_on(build_id)

    def claim_drop(self, drop: Drop) -> str | None:
        """The content hash ``drop`` is claimed under when this node takes it (its claim
        came first, or its claimant is gone; the take records it, ``JobPlace.claim``), else
        None; raises StoreError (the drop is looked at again) when the database cannot say.

        A case folder whose first files wait unbatched (their take was cut short) goes to
        the node holding their claims, whatever is left in it: the taker, its next life, or
        the node that adopts them once it is gone. A case is never split between builds."""
        try:
            digest = drop_hash(drop)
        except FileNotFoundError:
            log.info("drop_left_to_other_node", root=str(drop.root), why="moved meanwhile")
            return None
        except OSError as exc:
            raise StoreError(f"{drop.root}: cannot read it to claim it: {exc}",
                             hint="it is looked at again") from exc
        case = CaseFolder.of(drop.root, drop.inbox.path) if drop.is_case else None
        taken = self.store.claim_inbox_file(
            self.store.node_id, drop.root, digest, lease_s=self.store.lease_s,
            case_inode=case.inode if case is not None else None)
        if not taken:
            log.info("drop_left_to_other_node", root=str(drop.root))
            return None
        return digest

    def recovery(
        self, intake: Intake, outcomes: OutcomeFolders, owner: PrintOwner, clock: Clock, *,
        give_back: GiveBack, wake: Callable[[], None],
    ) -> NodeRecovery:
        """The daemon's recovery on a shared store (:class:`NodeRecovery`)."""
        self._recovery = NodeRecovery(self.store, intake, outcomes, owner, clock,
                                      give_back=give_back, wake=wake)
        active = outcomes.active
        if isinstance(active, SharedActiveBuilds):
            self._recovery.running_builds = active.running_ids
        return self._recovery

    def active_builds(self) -> SharedActiveBuilds:
        """The daemon's set of builds its sweep of processing/ leaves alone."""
        self._active = SharedActiveBuilds(self.store)
        return self._active

    def finish_once(
        self, outcomes: OutcomeFolders, stop: threading.Event, notice: Callable[[str], None],
    ) -> None:
        """Before a ``--once`` run ends: its sweep of processing/ ran at its start, and left
        the files of builds moved less than a lease ago (their mover may have been settling
        them). Those this node may settle are waited for (up to the grace left, or until
        ``stop``) and settled; what still stays is said, so a cron run finishes what it can
        and says what it left (docs/hotfolder.md)."""
        try:
            left = outcomes.settle_processing_folders()
            waits = {b: s for b in sorted(left) if (s := outcomes.active.grace_left(b)) is not None}
            if waits:
                wait_s = min(max(waits.values()), self.store.lease_s)
                moved_s = self.store.lease_s - max(waits.values())
                log.info("hotfolder_waiting_for_moved_builds", build_ids=list(waits),
                         wait_s=round(wait_s, 1), node=self.store.node_id)
                what = (f"build {next(iter(waits))}'s files" if len(waits) == 1 else
                        f"the files of builds {', '.join(map(str, waits))}")
                notice(f"waiting up to {wait_s:.0f} s for {what} in processing/: moved "
                       f"{moved_s:.0f} s ago")
                if stop.wait(wait_s):
                    return  # asked to stop: the next run settles them
                left = outcomes.settle_processing_folders()
        except (StoreError, OSError) as exc:
            log.warning("maintenance_failed", error=str(exc))
            return
        if left:
            log.info("hotfolder_left_in_processing", build_ids=sorted(left),
                     node=self.store.node_id)
            what = (f"build {min(left)}'s files stay" if len(left) == 1 else
                    f"the files of builds {', '.join(map(str, sorted(left)))} stay")
            notice(f"{what} in processing/: another node (or run) holds or is settling "
                   "them (or the store could not say); the next run settles them")

    def lease_lost(self, build_id: int) -> None:
        """A build's lease is gone: the node holding it now carries on. This node's work on
        it stops before its next step (no request, no state, no send, no file moved), and
        its server goes back to the pool."""
        log.warning("node_lost_build", build_id=build_id, node=self.store.node_id)
        self.stops.stop(build_id, f"node {self.store.node_id} lost its lease on build "
                                  f"{build_id}: the node holding it now carries on")


class SharedActiveBuilds(ActiveBuilds):
    """The builds whose files are not for this node's sweep of processing/ to settle: its
    own running ones, any build a node holds or has just moved (that node settles its files
    itself), and builds whose jobs' inbox claims are another live node's (its sweep settles
    them). The sweep settles what this node took, and what a gone node left decided."""

    def __init__(self, store: NodeJobStore) -> None:
        super().__init__()
        self.store = store

    def running(self, build_id: int) -> bool:
        """True while one of this node's batches runs the build."""
        return super().__contains__(build_id)

    def running_ids(self) -> frozenset[int]:
        with self._lock:
            return frozenset(self._ids)

    def __contains__(self, build_id: object) -> bool:
        if super().__contains__(build_id):
            return True
        if not isinstance(build_id, int):
            return False
        store = self.store
        try:
            return store.build_busy(build_id, grace_s=store.lease_s) or not store.may_settle(
                store.node_id, build_id, lease_s=store.lease_s)
        except StoreError:
            return True  # cannot tell: leave the files where they are for now

    def grace_left(self, build_id: int) -> float | None:
        """Seconds until the sweep may settle the build's files, when it leaves them only
        because the build was moved less than a lease ago: no node holds it and the jobs'
        inbox claims are this node's (a live node's claims are that node's to settle)."""
        if self.running(build_id):
            return None
        store = self.store
        try:
            left = store.grace_left(build_id, grace_s=store.lease_s)
            if left is None or not store.may_settle(store.node_id, build_id,
                                                    lease_s=store.lease_s):
                return None
        except StoreError:
            return None  # cannot tell: say the files stay rather than wait on a guess
        return left


class NodeRecovery(Recovery):
    """:class:`Recovery` for one node of several (module docstring)."""

    def __init__(
        self, store: NodeJobStore, intake: Intake, outcomes: OutcomeFolders, owner: PrintOwner,
        clock: Clock, *, give_back: GiveBack, wake: Callable[[], None],
    ) -> None:
        super().__init__(store, intake, outcomes, owner, clock, give_back=give_back, wake=wake)
        self.node_store = store
        #: Builds claimed whose taking up failed part way (the database went away): it is
        #: tried again on the next pass, under the same claim.
        self._retry: set[int] = set()
        #: This node's previous life's unbatched jobs are still to be adopted.
        self._own_pending = True
        #: The builds this node's batches run now (never claimed again under their nose).
        self.running_builds: Callable[[], frozenset[int]] = frozenset
        #: The inboxes this node watches, as its settings name them (as it records them).
        self._watched = frozenset(str(inbox) for inbox in intake.inboxes)
        #: Gone nodes' unbatched jobs last left for a node watching their inbox.
        self._orphans_left: frozenset[int] = frozenset()

    def working_on(self, build_id: int) -> bool:
        """True while this node settles a recovered build (its print, or taking it apart),
        or a build one of its runs left unsettled (:meth:`Recovery.settle_left`)."""
        with self._unresolved_lock:
            if build_id in self._unresolved or build_id in self._left:
                return True
        return build_id in self._retry

    def recover(self) -> list[Job]:
        """On start: this node's previous life's unbatched jobs, then :meth:`adopt` (what
        the database does not answer now, the next maintenance pass does)."""
        resumed = self.adopt()
        try:
            self.outcomes.settle_processing_folders()
            # A file decided when it was taken (a skipped duplicate, a refused file) whose
            # move a crash cut short stays in the inbox otherwise, and the scan took it
            # again as a second job. A build's files are settled by its holder's rules.
            self.finish_settles(unbatched_only=True)
        except (StoreError, OSError) as exc:
            log.warning("maintenance_failed", error=str(exc))
        log.info("hotfolder_recovered", resumed_jobs=len(resumed), node=self.node_store.node_id)
        return resumed

    def adopt(self) -> list[Job]:
        """Claim builds whose lease ran out and take them up; adopt gone nodes' jobs."""
        resumed: list[Job] = []
        # Its previous life's jobs are adopted with the gone nodes' (``own`` takes both): the
        # pass after the builds' is then not needed on this call.
        gone_ones_adopted = False
        if self._own_pending:
            try:
                resumed += self._adopt_orphans(own=True)
                self._own_pending = False
                gone_ones_adopted = True
            except (StoreError, OSError) as exc:
                log.warning("orphan_adoption_failed", error=str(exc))
        for build_id in sorted(self._retry):
            resumed += self._take_up_once(build_id, None)
        for _ in range(MAX_CLAIMS_PER_PASS):
            try:
                node = self.node_store
                lease = node.claim_build(node.node_id, states=CLAIMABLE_STATES,
                                         lease_s=node.lease_s, exclude=self.running_builds())
            except StoreError as exc:
                log.warning("build_recovery_failed", error=str(exc))
                break
            if lease is None:
                break
            self.node_store.hold(lease)
            resumed += self._take_up_once(lease.build_id, lease.previous_owner)
        if not gone_ones_adopted:
            try:
                resumed += self._adopt_orphans(own=False)
            except (StoreError, OSError) as exc:
                log.warning("orphan_adoption_failed", error=str(exc))
        return resumed

    def _take_up_once(self, build_id: int, previous: str | None) -> list[Job]:
        self._retry.add(build_id)
        try:
            jobs = self._take_up(build_id, previous)
        except LeaseLostError:
            self._retry.discard(build_id)  # stalled meanwhile: its new holder goes on
            return []
        except StoreError as exc:
            log.warning("build_recovery_failed", build_id=build_id, error=str(exc))
            return []
        self._retry.discard(build_id)
        return jobs

    def _take_up(self, build_id: int, previous: str | None) -> list[Job]:
        build = self.store.get_build(build_id)
        log.info("build_recovered", build_id=build.id, job_key=build.job_key,
                 state=build.state.value, previous_owner=previous, node=self.node_store.node_id)
        if build.state is JobState.PRINT_SENDING:
            # The print owner's rules: found, absent or unknown; never resent blindly.
            self.resolve_print(build, after_restart=True)
            return []
        if build.state in CLAIMABLE_STATES and self.node_store.held(build_id) is None:
            raise LeaseLostError(build_id, self.node_store.node_id, 0,
                                 why="taken over while this node was taking it up")
        if build.state in _PREPARE_AGAIN or build.state is JobState.CANCELLED:
            # (Cancelled: a retry after the last step of an earlier take-apart.)
            return self.take_apart(build, f"recovered from node {previous or '?'} before its "
                                          "print: prepared again")
        # Waiting for a printer: it stays held here, and this node's dispatch loop sends it.
        self.wake()
        return []

    def take_apart(self, build: Build, reason: str) -> list[Job]:
        """Dissolve ``build`` (unless that is done already) to batch its jobs again here.

        Its jobs' inbox claims become this node's first. Left another node's, a live one's
        (it sent the build, died, and is back), no node would ever adopt them as orphans: if
        this node died before batching them again, they would wait in processing/ for good
        (the farm kill loop saw a case stay so). A case's claim is its folder's: files of the
        case left out of the build come with it, and are taken up here too. Again on a retry:
        the claims are already here."""
        node = self.node_store
        others = node.adopt_jobs(node.node_id, build.job_ids)
        self.dissolve(build, reason)
        apart = [j for j in self.store.get_jobs(build.job_ids)
                 if j.state is JobState.PROCESSING and j.build_id is None]
        return apart + self._take_up_orphans(others)

    def _adopt_orphans(self, *, own: bool) -> list[Job]:
        """Adopt and take up the unbatched jobs of gone nodes (``own``: of this node's
        previous life too) whose inbox this node watches (:meth:`takes_back`'s rule). The
        others stay with their claims for a node watching their inbox (``jobs`` says when
        none runs); those this node's previous life claimed are handed back, as this live
        node's claims no other node would ever adopt."""
        node = self.node_store
        orphans = node.orphan_jobs(node.node_id, lease_s=node.lease_s, own=own)
        # One read for all: those left stay listed on every pass while they wait.
        mine = [j.id for j in self.store.get_jobs(orphans) if self.takes_back(j)]
        left = frozenset(orphans) - frozenset(mine)
        if own and left:
            # Its settings dropped their inbox while it held them: this node never takes them
            # up, and while it lives their claims (its own) keep the node watching that inbox
            # from adopting them. Only its own claims go (a gone node's stay as they are).
            node.hand_back_jobs(node.node_id, sorted(left))
        if left - self._orphans_left:  # said once, not on every pass while they stay
            log.info("orphan_jobs_left", node=node.node_id, jobs=sorted(left),
                     why="not of an inbox it watches")
        self._orphans_left = left
        if not mine:
            return []
        return self._take_up_orphans(
            node.adopt_orphan_jobs(node.node_id, lease_s=node.lease_s, own=own, job_ids=mine))

    def _take_up_orphans(self, job_ids: Collection[int]) -> list[Job]:
        """Take up unbatched jobs whose own claims just moved to this node."""
        resumed: list[Job] = []
        # Only jobs whose own claim moved here (a `run`'s job has none: it is never one); read
        # at once, not one query each.
        for job in self.store.get_jobs(job_ids):
            if job.state is not JobState.PROCESSING:
                # Cut off while being taken: still in the inbox, the scan takes it again
                # (and reuses the job); else the move is finished here.
                if job.source_path.exists() and self.intake.in_drop_area(job.source_path):
                    continue
                with self.outcomes.lock:
                    job = self.intake.requeue(job)
            elif not self.intake.finish_move(job):
                self._fail_lost(job)
                continue
            if job.state is JobState.PROCESSING and job.build_id is None:
                resumed.append(job)
        return resumed

    def takes_back(self, job: Job) -> bool:
        """Only a job (retried, or a gone node's unbatched one) of an inbox this node
        watches (``watcher_takes``). The others are left for their node (``jobs`` says when
        no running node watches it)."""
        return watcher_takes(self._watched, job)

    def claim_free(self) -> list[Job]:
        try:
            return self.adopt()
        except (StoreError, OSError) as exc:  # the next maintenance pass tries again
            log.warning("maintenance_failed", error=str(exc))
            return []

    def maintenance(self) -> list[Job]:
        try:
            retried = super().maintenance()
        except (StoreError, OSError) as exc:  # the database or the share is away: the
            log.warning("maintenance_failed", error=str(exc))  # next pass tries again
            return []
        return retried + self.claim_free()

    def recheck_due(self) -> None:
        try:
            super().recheck_due()
        except StoreError as exc:
            log.warning("print_recheck_failed", error=str(exc))


class FarmMembership:
    """A daemon's membership of a farm: its fenced store, its role and its presence.

    :func:`join_farm` makes one; :meth:`close` leaves (a last look at the leases it holds,
    then the node is marked stopped and its claims go back at once), then closes the store.
    """

    def __init__(self, store: NodeJobStore, role: NodeRole, presence: NodePresence) -> None:
        self.store = store
        self.role = role
        self.presence = presence

    def close(self) -> None:
        try:
            try:
                self.store.leave()
            finally:
                self.presence.close()
        finally:
            self.store.close()


def join_farm(
    settings: Settings, *, clock: Clock = SYSTEM_CLOCK,
    on_wait: Callable[[StoreError, float], None] | None = None,
) -> FarmMembership:
    """Open the shared store named by ``settings`` as this node, register it and start its
    heartbeat and lease renewals (StoreError when the store cannot be reached). While the
    database does not accept connections yet, joining is tried again for up to
    ``store.start_wait_s`` (:mod:`~preform_pipeline.hotfolder.storewait`; ``on_wait`` is
    told when that wait begins)."""
    lease_s = settings.store.lease_s or DEFAULT_LEASE_S
    node_id = settings.store.node_id or default_node_id()
    wait_s = settings.store.start_wait_s
    membership = wait_for_store(
        functools.partial(_join_once, settings, node_id, lease_s),
        location=describe_store(settings.store.location),
        wait_s=DEFAULT_START_WAIT_S if wait_s is None else wait_s, clock=clock,
        on_wait=on_wait)
    membership.store.start_renewing()
    log.info("node_joined", node=node_id, lease_s=lease_s)
    return membership


def _join_once(settings: Settings, node_id: str, lease_s: float) -> FarmMembership:
    """One try at :func:`join_farm`: nothing is left open when it fails."""
    holder: list[NodeRole] = []
    store = NodeJobStore(
        str(settings.store.location), node_id=node_id, lease_s=lease_s,
        send_deadline_s=settings.servers.request_timeout_s,
        on_lost=lambda build_id: holder[0].lease_lost(build_id) if holder else None,
    )
    role = NodeRole(store)
    holder.append(role)
    presence = NodePresence.for_this_pc(
        store, node_id=node_id, lease_s=lease_s,
        inboxes=tuple(str(inbox.path) for inbox in settings.hotfolders.inboxes))
    try:
        presence.start()
    except PipelineError:
        store.close()
        raise
    return FarmMembership(store, role, presence)

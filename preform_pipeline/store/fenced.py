"""The shared store as one node sees it: every build move it makes is fenced by its lease.

A node's daemon works a PostgreSQL store through a :class:`NodeJobStore`. It is the same
:class:`~preform_pipeline.store.postgres.PostgresJobStore`, with the node's claims kept in a
lease book:

- **Builds it creates are claimed in the same transaction** (no other node can take a build
  between its creation and its claim).
- **Every move of a build in a claimable state** (to prepare, prepared, waiting for a printer,
  cut off mid-step) goes through the fence: this owner, this epoch, an unexpired lease, all in
  the move's own UPDATE. A build the node does not hold is refused with
  :class:`~preform_pipeline.errors.LeaseLostError` before anything is written. The move to
  ``print_sending`` also needs ``send_deadline_s`` of lease left: the node first extends
  the lease by that much (a send in flight is not recovered before its request could have
  landed), and keeps it that long while the build is being sent. Moves of builds past the
  claimable states (sent, verifying: the poller's) are plain.
- **A build that leaves the claimable states is released** (the lease is given back).
- **The leases are renewed** by a background thread every third of a lease, while the
  build is in use (``in_use``: a batch runs it, the dispatch loop waits with it, recovery
  works on it). A build the node dropped (an error cut its work short) is let go after a
  lease without use, so any node recovers it, this one included. A renewal (or that letting
  go) that finds the lease gone drops the build from the book and calls ``on_lost``.
- **Before costly work outside the store** (loading a build's .form to send it) the node
  confirms the lease on the database (:meth:`NodeJobStore.confirm_held`): its book may still
  list a build another node took over while this one stalled.
- **What the node may act on**: listings of builds in claimable states show only the builds
  this node holds (the dispatch loop sends only its own waiting builds; other nodes' builds
  are theirs until their leases run out and this node claims them).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import datetime
from typing import Any, Final, NoReturn

from preform_pipeline.errors import LeaseLostError, StoreError
from preform_pipeline.logging import get_logger
from preform_pipeline.store.leases import CLAIMABLE_STATES, DEFAULT_LEASE_S, Lease
from preform_pipeline.store.model import Build, JobState
from preform_pipeline.store.postgres import PostgresJobStore
from preform_pipeline.store.protocol import StateFilter

__all__ = ["RENEWALS_PER_LEASE", "NodeJobStore"]

log = get_logger(__name__)

#: Renewals per lease: two may fail (a slow database) before the lease runs out.
RENEWALS_PER_LEASE: Final = 3


class NodeJobStore(PostgresJobStore):
    """A PostgreSQL store worked by node ``node_id``: its build moves are fenced (module doc).

    ``send_deadline_s``: lease a send must have left (the print request's deadline);
    ``on_lost(build_id)``: called (from the renewal thread or the failing move) when a lease
    is found lost.
    """

    def __init__(
        self,
        url: str,
        *,
        node_id: str,
        lease_s: float = DEFAULT_LEASE_S,
        send_deadline_s: float = 0.0,
        on_lost: Callable[[int], None] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(url, running=True, **options)  # a watch's node: it keeps running
        self.node_id = node_id
        self.lease_s = lease_s
        self.send_deadline_s = send_deadline_s
        self.on_lost = on_lost
        self._book: dict[int, Lease] = {}
        #: Monotonic time of each held build's last claim or move.
        self._touched: dict[int, float] = {}
        #: ``in_use(build_id, state)``: whether the node still works on a held build.
        self.in_use: Callable[[int, JobState], bool] | None = None
        #: Builds being sent: their leases run for the send's deadline plus a lease.
        self._sending: set[int] = set()
        self._book_lock = threading.Lock()
        self._renewing = threading.Event()
        self._renewer: threading.Thread | None = None

    # --- the lease book ----------------------------------------------------------------------

    def hold(self, lease: Lease) -> None:
        """Keep ``lease`` (a claim this node made) renewed and use it to fence moves."""
        with self._book_lock:
            self._book[lease.build_id] = lease
            self._touched[lease.build_id] = self._clock.monotonic()

    def held(self, build_id: int) -> Lease | None:
        with self._book_lock:
            return self._book.get(build_id)

    def held_ids(self) -> frozenset[int]:
        with self._book_lock:
            return frozenset(self._book)

    def _forget(self, build_id: int, *, release: bool) -> None:
        with self._book_lock:
            lease = self._book.pop(build_id, None)
            self._touched.pop(build_id, None)
            self._sending.discard(build_id)
        if lease is not None and release:
            try:
                self.release(lease)
            except StoreError as exc:  # it runs out on its own
                log.warning("lease_release_failed", build_id=build_id, node=self.node_id,
                            error=str(exc))

    def _lost_now(self, build_id: int) -> None:
        self._forget(build_id, release=False)
        log.warning("build_lease_lost", build_id=build_id, node=self.node_id)
        if self.on_lost is not None:
            self.on_lost(build_id)

    def start_renewing(self) -> None:
        """Renew every held lease in the background until :meth:`close`."""
        if self._renewer is None:
            self._renewer = threading.Thread(target=self._renew_loop, name="lease-renewal",
                                             daemon=True)
            self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._renewing.wait(self.lease_s / RENEWALS_PER_LEASE):
            self.renew_all()

    def leave(self) -> None:
        """Stop renewing, after one last pass over the book (before the node's claims go back
        at its stop). A node that stalled past a lease may stop before its next renewal: the
        last pass is where it learns, and reports, that the build was taken over, instead of
        stopping with the build still in its book as if it were its own."""
        self._stop_renewer()
        self.renew_all()

    def _stop_renewer(self) -> None:
        self._renewing.set()
        if self._renewer is not None:
            self._renewer.join(timeout=10)
            self._renewer = None

    def renew_all(self) -> None:
        """One renewal pass over the book (lost leases are dropped and reported)."""
        with self._book_lock:
            # Idle for longer than its lease (a send: its deadline too) and not in use: let go.
            leases = [(lease, self._length(lease.build_id),
                       self._touched[lease.build_id] + self._length(lease.build_id))
                      for lease in self._book.values()]
        for lease, length, idle_until in leases:
            if (self.in_use is not None and self._clock.monotonic() > idle_until
                    and not self.in_use(lease.build_id, lease.state)):
                self._let_go(lease)
                continue
            try:
                self._renew_held(lease, length, touched=False)
            except LeaseLostError:
                continue
            except StoreError as exc:
                # The database is away (restarting?): try again next pass.
                log.warning("lease_renewal_failed", build_id=lease.build_id, node=self.node_id,
                            error=str(exc))
                continue

    def _renew_held(self, lease: Lease, length: float, *, touched: bool) -> Lease:
        """Renew one lease of the book for ``length`` seconds. The renewed lease keeps the
        book's state (the build may have moved on meanwhile), and ``touched`` marks it used
        now. LeaseLostError when it is gone: reported lost only while the book still holds
        that claim (one the build's own work gave back meanwhile, as it left the claimable
        states, is not lost, and a stop signal for it would leave its finished build
        unsettled)."""
        try:
            renewed = self.renew(lease, lease_s=length)
        except LeaseLostError:
            if self._same_claim(lease):
                self._lost_now(lease.build_id)
            raise
        with self._book_lock:
            current = self._book.get(lease.build_id)
            if current is not None and current.epoch == renewed.epoch:
                self._book[lease.build_id] = replace(renewed, state=current.state)
                if touched:
                    self._touched[lease.build_id] = self._clock.monotonic()
        return renewed

    def confirm_held(self, build_id: int) -> Lease:
        """Renew the lease on ``build_id`` now, on the database: the check before work that
        costs something outside the store (loading a build's .form onto a server to send it).

        The book alone cannot tell: a node that stalled past its lease still finds the build
        in its book. LeaseLostError (and ``on_lost``) when this node does not hold it now.
        """
        lease = self.held(build_id)
        if lease is None:
            self._not_held(build_id)
        with self._book_lock:
            length = self._length(build_id)
        return self._renew_held(lease, length, touched=True)

    def _not_held(self, build_id: int) -> NoReturn:
        """LeaseLostError for a build this node's book does not hold (logged as lost)."""
        why = "this node does not hold the build"
        log.warning("lease_lost", build_id=build_id, node=self.node_id, epoch=0, why=why)
        raise LeaseLostError(build_id, self.node_id, 0, why=why)

    def _same_claim(self, lease: Lease) -> bool:
        """Whether the book still holds ``lease``'s claim (same build, same epoch)."""
        current = self.held(lease.build_id)
        return current is not None and current.epoch == lease.epoch

    def _let_go(self, lease: Lease) -> None:
        """Give back an idle build's lease. The release is fenced like any move: if the lease
        was taken over meanwhile (this node stalled past it), the node learns it lost the
        build, as a renewal would have told it; if the database is away, the build stays in
        the book and the next pass tries again. A release that finds nothing to give back
        after the build's own work gave it back (it left the claimable states while the pass
        asked ``in_use``) is not a loss, as for a renewal (:meth:`_renew_held`)."""
        try:
            released = self.release(lease)
        except StoreError as exc:
            log.warning("lease_release_failed", build_id=lease.build_id, node=self.node_id,
                        error=str(exc))
            return
        if not released:
            if self._same_claim(lease):
                self._lost_now(lease.build_id)
            return
        log.warning("build_let_go", build_id=lease.build_id, node=self.node_id,
                    state=lease.state.value)
        self._forget(lease.build_id, release=False)

    def _length(self, build_id: int) -> float:
        """How long to renew a held build's lease for (book lock held)."""
        if build_id in self._sending:
            return self.send_deadline_s + self.lease_s
        return self.lease_s

    def close(self) -> None:
        self._stop_renewer()
        super().close()

    # --- fenced writes -----------------------------------------------------------------------

    def create_build(
        self,
        *,
        recipe: str,
        job_ids: Collection[int] = (),
        server: str | None = None,
        reason: str = "batched",
    ) -> Build:
        build, lease = self.create_claimed_build(self.node_id, recipe=recipe, job_ids=job_ids,
                                                 lease_s=self.lease_s, server=server,
                                                 reason=reason)
        self.hold(lease)
        return build

    def _lease_for(self, build_id: int) -> Lease | None:
        """The lease to fence a write with; None: the build is past the claimable states
        (a plain write); LeaseLostError: claimable but not this node's."""
        lease = self.held(build_id)
        if lease is not None:
            return lease
        current = self.get_build(build_id)
        if current.state in CLAIMABLE_STATES:
            self._not_held(build_id)
        return None

    def transition_build(
        self,
        build_id: int,
        to_state: JobState,
        reason: str,
        *,
        expect: StateFilter | None = None,
        **fields: Any,
    ) -> Build:
        lease = self._lease_for(build_id)
        if lease is None:
            return super().transition_build(build_id, to_state, reason, expect=expect,
                                            **fields)
        to_state = JobState(to_state)
        min_left = 0.0
        if to_state is JobState.PRINT_SENDING:
            min_left = self.send_deadline_s
            with self._book_lock:
                self._sending.add(build_id)
                length = self._length(build_id)
            try:
                lease = self.renew(lease, lease_s=length)
            except LeaseLostError:
                self._lost_now(build_id)
                raise
            self.hold(lease)
        try:
            build = self.transition_build_fenced(
                lease, to_state, f"{reason} [{self.node_id}, epoch {lease.epoch}]",
                expect=expect, min_left_s=min_left, **fields)
        except LeaseLostError:
            self._lost_now(build_id)
            raise
        if build.state not in CLAIMABLE_STATES:
            self._forget(build_id, release=True)
            return build
        with self._book_lock:
            if build.state is not JobState.PRINT_SENDING:
                self._sending.discard(build_id)
        self.hold(replace(lease, state=build.state))
        return build

    def update_build(self, build_id: int, **fields: Any) -> Build:
        lease = self._lease_for(build_id)
        if lease is None:
            return super().update_build(build_id, **fields)
        try:
            return self.update_build_fenced(lease, **fields)
        except LeaseLostError:
            self._lost_now(build_id)
            raise

    # --- what this node may act on -----------------------------------------------------------

    def _mine(self, builds: tuple[Build, ...]) -> tuple[Build, ...]:
        held = self.held_ids()
        return tuple(b for b in builds if b.state not in CLAIMABLE_STATES or b.id in held)

    def list_builds(
        self,
        *,
        state: StateFilter | None = None,
        recipe: str | None = None,
        since: datetime | None = None,
        text: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> tuple[Build, ...]:
        # The limit is applied after the filter: another node's builds must not hide ours.
        # (``interrupted_builds`` lists through here too.) So is a page's offset.
        found = self._mine(super().list_builds(state=state, recipe=recipe, since=since,
                                               text=text))
        self._check_limit(limit, offset)
        if limit is None:
            return found
        # The most recent N before the newest ``offset``, in creation order, as every store's.
        end = max(len(found) - offset, 0)
        return found[max(end - limit, 0):end]

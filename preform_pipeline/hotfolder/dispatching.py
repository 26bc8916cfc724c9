"""The hot folder's dispatch loop: waiting builds go out as matching printers free up.

Every print of the daemon waits in the store first (``waiting_for_printer``, after its .form is
saved); this loop, on its own thread, sends them through the print owner in priority order,
oldest first (:class:`~preform_pipeline.dispatch.waiting.Dispatcher`), choosing printers
under the claims the daemon's batches choose under (``claims``), so the two never choose
one printer for two builds. Because the waits are
in the store, a restarted daemon resumes them: each is loaded from its saved .form and sent
once, never prepared again. A sent build's files are settled (done/) at once; a build waiting
longer than ``dispatch.notify_after_s`` is told to ``on_late`` once (the daemon's follow-up,
which sends the one ``build_waiting`` notification) and keeps waiting. A build an operator
approved (held for approval first) is said on the daemon's console (``say``) when it is sent
or refused: the console had said it was held, and nothing after (``approval_line``). A build
rejected is learnt on the same pass (the one read of the waiting line), its files settled
into failed/ and its line said then; one approved that no lease of this node covers (on a
shared store, approved is nobody's) is told to ``on_approved``, the daemon's claim of it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from preform_pipeline.cloud import WEB_API_MAX_WAIT_S
from preform_pipeline.cloud.factory import (
    credentials_configured,
    load_cloud_credentials,
    make_web_client,
)
from preform_pipeline.dispatch.sender import FormSender, PoolDevices
from preform_pipeline.dispatch.waiting import Dispatcher
from preform_pipeline.errors import PipelineError
from preform_pipeline.hotfolder.decisions import approval_line
from preform_pipeline.hotfolder.outcomes import OutcomeFolders
from preform_pipeline.logging import get_logger
from preform_pipeline.printing import PrintOwner
from preform_pipeline.printing.target import PrintTarget
from preform_pipeline.settings import Settings
from preform_pipeline.store import Build, JobState, JobStore
from preform_pipeline.verify.targets import CombinedReadiness, PrinterSource, WebApiPrinters
from preform_pipeline.verify.tracking import PrinterClaims

if TYPE_CHECKING:
    from preform_pipeline.executor.runner import ServerSource


__all__ = ["WEB_READINESS_RESERVE", "DispatchLoop"]

log = get_logger(__name__)

#: Web API requests kept in reserve for verification: readiness uses the feed only above it.
WEB_READINESS_RESERVE = 100


class DispatchLoop:
    """Runs a :class:`Dispatcher` for the daemon (module docstring)."""

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        owner: PrintOwner,
        outcomes: OutcomeFolders,
        pool: Callable[[], AbstractContextManager[ServerSource | None]],
        stop: threading.Event,
        *,
        on_late: Callable[[Build, float, str], None] | None = None,
        claims: PrinterClaims | None = None,
        say: Callable[[str], None] = lambda line: None,
        on_approved: Callable[[], None] = lambda: None,
    ) -> None:
        self.say = say
        #: Told when a build held at the last pass was approved and no lease of this node's
        #: covers it: on a shared store an approved build is nobody's until a node claims
        #: it, and this node's reads do not show it until then (``NodeStore.list_builds``).
        self.on_approved = on_approved
        self.settings = settings
        #: The printers chosen and not yet sent to, shared with the daemon's batches.
        self.claims = claims if claims is not None else PrinterClaims(store)
        self.store = store
        self.owner = owner
        self.outcomes = outcomes
        self.pool = pool
        self.stop = stop
        self.wake = threading.Event()
        self._closing = threading.Event()  # the daemon's loop ended (``--once`` sets no stop)
        self._dispatcher: Dispatcher | None = None
        #: The pool ``_dispatcher`` sends through: a new one (a refused pool renewed) gets a
        #: new dispatcher, so prints left waiting go out through it.
        self._on: ServerSource | None = None
        #: The builds held for approval at the last pass (a decision takes them out).
        self._held: frozenset[int] = frozenset()
        self._on_late = on_late
        self._thread: threading.Thread | None = None

    def waiting(self) -> int:
        return len(self.store.list_builds(state=JobState.WAITING_FOR_PRINTER))

    def _read_waiting(self) -> int:
        """How many builds wait for a printer; in the same read, the builds held for
        approval, so a rejection is learnt as an approval is (on this pass, not at the next
        sweep of processing/, up to ``rescan_interval_s`` later): a build held at the last
        pass and no longer held was decided, and a rejected one's files are settled into
        failed/ now (:meth:`OutcomeFolders.settle_build`, which says its line)."""
        builds = self.store.list_builds(
            state=[JobState.WAITING_FOR_PRINTER, JobState.AWAITING_APPROVAL])
        held = frozenset(b.id for b in builds if b.state is JobState.AWAITING_APPROVAL)
        if held - self._held:
            # From here on, its approval is learnt on the pass after it (a test waits on it).
            log.info("approvals_awaited", builds=sorted(held - self._held))
        decided, self._held = self._held - held, held
        shown = frozenset(b.id for b in builds)
        now = [self.store.get_build(build_id) for build_id in sorted(decided)]
        if any(b.state is JobState.WAITING_FOR_PRINTER and b.id not in shown for b in now):
            # Claimed now, not at the next maintenance pass (up to rescan_interval_s later,
            # a minute by default, while the printers stood idle): the operator approved it
            # to print. Told before any rejection is settled: a rejected build's files that
            # cannot move (the share away) fail this pass, and this build is no longer held
            # at the next one to be learnt again.
            self.on_approved()
        for build in now:
            # (One another node holds or settles is not this node's: as for the sweep.)
            if build.state is JobState.FAILED and build.id not in self.outcomes.active:
                self.outcomes.settle_build(build, None)
        return len(builds) - len(held)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="hotfolder-dispatch",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join()

    def _main(self) -> None:
        interval = self.settings.dispatch.poll_interval_s
        while not (self.stop.is_set() or self._closing.is_set()):
            try:
                if self._read_waiting():
                    # Lent for the pass: a pool replaced meanwhile is closed once no pass
                    # nor batch uses it.
                    with self.pool() as pool:
                        dispatcher = self._ready(pool)
                        if dispatcher is not None:
                            dispatcher.dispatch_once()
            except (PipelineError, OSError) as exc:
                # A file that cannot be settled now (the share away: a rejected build's, or
                # a sent one's) is the sweep's later; the loop goes on sending.
                log.error("dispatch_pass_failed", error=str(exc))
            self.wake.wait(interval)
            self.wake.clear()

    def _ready(self, pool: ServerSource | None) -> Dispatcher | None:
        if pool is None:
            return None
        if self._dispatcher is None or self._on is not pool:
            self._on = pool
            timeout = self.settings.servers.request_timeout_s
            self._dispatcher = Dispatcher(
                self.store,
                self._readiness(pool, timeout),
                FormSender(pool, self.owner, request_timeout_s=timeout,
                           after_send=self._settle, claims=self.claims),
                notify_after_s=self.settings.dispatch.notify_after_s,
                on_late=self._late,
                claims=self.claims,
            )
        return self._dispatcher

    def _readiness(self, pool: ServerSource, timeout: float) -> PrinterSource:
        local = PoolDevices(pool, request_timeout_s=timeout)
        cloud = self.settings.cloud
        if not credentials_configured(cloud, os.environ):
            return local
        client = make_web_client(cloud, load_cloud_credentials(cloud, os.environ),
                                 ledger=self.store, max_wait_s=WEB_API_MAX_WAIT_S)
        return CombinedReadiness(
            local, WebApiPrinters(client),
            lambda: client.budget().remaining > WEB_READINESS_RESERVE,
        )

    def _settle(self, build: Build) -> None:
        self.outcomes.settle_build(build, None)
        line = approval_line(build)
        if line is not None:
            self.say(line)

    def _late(self, build: Build, waited_s: float) -> None:
        if self._on_late is not None:
            self._on_late(build, waited_s, PrintTarget.from_json(build.print_target).describe())

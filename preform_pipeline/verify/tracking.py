"""Printing and verifying a run's builds: the implementation of :mod:`.hooks`.

:class:`PrintTracking` is handed to the executor (``RunOptions(print_tracking=...)``). Per
build it

* gives the build a **job key** and embeds it in the print's job name (``embed_key``): the key
  of the build's job-store build when a store is in use, the build's name when that is a key
  (the hot folder names builds so), else a new one for this run;
* resolves ``printer: auto`` through :func:`~.targets.select_printer` (Web API printer status
  when a client is configured, else, or when the Web API cannot answer now, the build's
  PreFormServer's device list), never picking the same printer for two builds of one run;
* with a job store, hands every step of the send to the print owner
  (:class:`~preform_pipeline.printing.PrintOwner`): ``print_sending`` (with job name, printer and
  the server that holds the send) before the request, ``print_sent`` after the answer,
  ``failed`` on a refusal; a build already in ``print_sending`` (an earlier send interrupted by
  a crash) is resolved first and only resent when it is proven absent; a build already sent
  is never sent again.

After the run, :meth:`PrintTracking.after_run` verifies every print sent, with one shared
poller (:class:`~.poller.VerificationPoller`), until each ended or passed its deadline, and
fills each build's ``verify`` status and message in the run result (and the store). Builds
that failed are notified too.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from preform_pipeline.api import PreFormClient
from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.cloud import (
    WEB_API_MAX_WAIT_S,
    WebApiClient,
    check_credentials,
    credentials_configured,
    load_cloud_credentials,
    make_web_client,
)
from preform_pipeline.cloud.ratelimit import resume_time
from preform_pipeline.errors import (
    CloudAuthError,
    CloudError,
    CloudRateLimitError,
    PipelineError,
    PrinterSelectionError,
    PrintLookupError,
    StoreError,
)
from preform_pipeline.executor.hooks import PRINT_HELD, PRINT_WAITING, VERIFY_PENDING
from preform_pipeline.executor.state import BuildOutcome, RunResult
from preform_pipeline.liveness import ProcessIdentity
from preform_pipeline.logging import get_logger
from preform_pipeline.printing import Evidence, PrintLocator, PrintOwner, SendHolder
from preform_pipeline.printing.approval import hold_for_approval
from preform_pipeline.printing.target import PrintTarget
from preform_pipeline.printing.web import WebApiLocator
from preform_pipeline.recipes.model import PRINTER_LIST_SEPARATOR, Recipe, requires_approval
from preform_pipeline.settings import CloudSettings, VerifySettings
from preform_pipeline.settings.dispatch import DEFAULT_DISPATCH_POLL_INTERVAL_S, DispatchSettings
from preform_pipeline.settings.store import JOBS_COMMAND
from preform_pipeline.store import Build, JobState, JobStore, embed_key, is_key, new_key
from preform_pipeline.verify.notify import (
    Notification,
    Notifier,
    make_notifier,
    notification_for_status,
)
from preform_pipeline.verify.poller import (
    PendingPrint,
    PollOutcome,
    PrintProgress,
    VerificationPoller,
    VerificationResult,
    VerifiedStatus,
    describe_duration,
)
from preform_pipeline.verify.service import apply_result, first_to_announce, mark_in_progress
from preform_pipeline.verify.targets import (
    CombinedReadiness,
    LocalApiDevices,
    PrinterCandidate,
    PrinterSource,
    WebApiPrinters,
    is_auto_target,
)
from preform_pipeline.verify.targets import select_printer as _select

if TYPE_CHECKING:
    # For annotations only: the planner brings numpy (see ``executor.progress``).
    from preform_pipeline.plan.builds import BuildPlan

__all__ = [
    "PRINTER_CLAIM_LEASE_S",
    "PRINTER_CLAIM_PHASE_MARGIN_S",
    "BuildTracker",
    "PrintTracking",
    "PrinterChoice",
    "PrinterClaims",
    "SentPrint",
    "tracking_for_run",
    "verification_failed",
    "verification_lines",
    "web_locators",
]

log = get_logger(__name__)

UNVERIFIED = VerifiedStatus.UNVERIFIED

_ALREADY_SENT = frozenset({JobState.PRINT_SENT, JobState.VERIFYING}) | (
    frozenset({JobState.FINISHED, JobState.ABORTED, JobState.PRINT_ERROR, JobState.UNVERIFIED})
)
_NOT_PREPARED_YET = (JobState.PROCESSING, JobState.PREPARING)


@dataclass(frozen=True)
class SentPrint:
    """A print this run sent (or found already sent), as the poller will need it."""

    build: str
    key: str
    sent_at: datetime
    job_name: str
    printer: str
    job_id: str | None
    build_id: int | None = None



#: How long a printer claim in the job store lasts unless released or renewed first. A claim
#: is taken in the print step (or a dispatch pass), just before the send, renewed before each
#: phase of a waiting build's send (:meth:`PrinterClaims.renew`) and released when the send
#: ended: longer than one phase may take (610 s by default, ``servers.request_timeout_s``), so
#: no claim runs out while its print is on the way; short enough that a printer chosen by a
#: process of another host that then died (its claim never released) is free for everyone
#: within 15 minutes. A holder of this host that died is known at once (its process is gone).
PRINTER_CLAIM_LEASE_S = 900.0
#: A renewal for a phase longer than the lease lasts this much past the phase's own bound:
#: the phase's bookkeeping after its request (store writes, a scene deleted).
PRINTER_CLAIM_PHASE_MARGIN_S = 60.0


class PrinterClaims:
    """The printers chosen for builds whose print is not sent yet, kept for everything that
    chooses from the same printers at once: a run's own builds, and in the hot folder its
    batches (each a run of its own) and its dispatch loop, which sends the builds waiting in
    the store. Until a print is sent, its printer's own status still says it is free (two
    batches once sent both their prints to one printer while the other stood idle, and a
    batch and the dispatch loop did the same); once sent, the printer's status says the rest.

    With a job ``store`` the claims are also taken there (``claim_printer``, for
    :data:`PRINTER_CLAIM_LEASE_S` of the store's clock), so the other processes and farm
    nodes that use the store do not choose a printer chosen here, nor this one theirs. A
    claim another holder took between the reading and the claim makes the choice again
    without that printer. A store that cannot be read or written leaves this process its own
    claims (``printer_claims_unshared``); a claim it could not release ends with its lease.
    The holder names this process (``host:pid:start:instance:tag``, liveness.py): a claim of
    a process of this host and instance (boot and pid namespace) that died (killed between
    its claim and its send) is the store's to take over at once
    (``printer_claim_taken_over``); another host's (or instance's) runs out with its lease.
    A send in phases keeps its claim alive with :meth:`renew`; a run's build (:meth:`choose`)
    has its claim renewed every third of the lease until it is released, so a print request
    bounded by a step timeout longer than the lease (or a slow upload) keeps it too.

    A claim is logged (``printer_claimed``, by ``run`` or ``dispatch``) and ends when its
    build's print was sent or the build ended without it (``printer_released``); a printer
    found claimed in the store after it was chosen is logged as ``printer_claimed_elsewhere``.
    """

    def __init__(self, store: JobStore | None = None, *,
                 lease_s: float | None = None) -> None:
        self._lock = threading.Lock()
        self._chosen: dict[str, str] = {}  # printer -> the build that chose it
        #: printer -> who chose it (``run`` or ``dispatch``): a run's end releases only its
        #: own claims. A build held for approval, or left waiting, ends its run while the
        #: dispatch loop may already have chosen a printer for it under the same key.
        self._by: dict[str, str] = {}
        #: The run's builds whose claims a thread renews (:meth:`_keep`): set to stop it.
        self._kept: dict[str, threading.Event] = {}
        self.store = store
        # Read when made, not when defined: a test's child process shortens it (a seam).
        self.lease_s = PRINTER_CLAIM_LEASE_S if lease_s is None else lease_s
        #: This object's claims in the store: unique, saying whose they are to a reader, and
        #: naming this process, so that its death frees them on this host at once.
        self.holder = ProcessIdentity.current().tagged(uuid.uuid4().hex[:8])

    @contextmanager
    def choosing(self) -> Iterator[PrinterChoice]:
        """One choice at a time: read the printers' status and choose inside this block, so
        no other choice is made between the reading and the claim."""
        with self._lock:
            yield PrinterChoice(self)

    def choose(
        self, build: str, pick: Callable[[Collection[str]], PrinterCandidate]
    ) -> PrinterCandidate:
        """``pick(taken)``, ``taken`` being the printers other builds chose, and the printer
        it picks claimed for ``build``; one choice at a time."""
        with self.choosing() as choice:
            taken = choice.taken(build)
            while True:
                chosen = pick(taken)
                if choice.claim(build, chosen.name, by="run"):
                    self._keep(build)
                    return chosen
                taken.add(chosen.name)  # claimed elsewhere since the reading: choose again

    def release(self, builds: Collection[str], *, by: str | None = None) -> None:
        """``builds`` sent their prints, or ended without: their printers are theirs no more
        (``by``: only the claims that chooser made; None: whoever made them)."""
        with self._lock:
            released: list[str] = []
            for printer in [p for p, owner in self._chosen.items()
                            if owner in builds and by in (None, self._by.get(p))]:
                self._by.pop(printer, None)
                released.append(self._chosen.pop(printer))
                log.info("printer_released", printer=printer, build=released[-1])
            for build in released:
                if (renewing := self._kept.pop(build, None)) is not None:
                    renewing.set()
            # Only builds that claimed here have claims in the store: a run's end releases
            # every build it had, and a write for none would queue behind the store's writers.
            if self.store is not None and released:
                try:
                    self.store.release_printers(holder=self.holder, builds=released)
                except StoreError as exc:
                    log.warning("printer_claims_unshared", action="release", error=str(exc))

    def renew(self, build: str, *, phase_s: float) -> bool:
        """Before each phase of ``build``'s send (a wait for a server, loading its .form, the
        print request): each of its claims lasts the lease, or ``phase_s`` (the phase's bound)
        and a margin when longer, from now. False when a printer is no longer its own (another
        holder claimed it after the claim ran out): the send must not go on. True without a
        claim here (a queue), or when the store cannot be written (``printer_claims_unshared``)."""
        if self.store is None:
            return True
        with self._lock:
            return self._renew(build, max(self.lease_s, phase_s + PRINTER_CLAIM_PHASE_MARGIN_S))

    def _renew(self, build: str, lease_s: float) -> bool:
        """:meth:`renew` for ``lease_s``, under the lock; False when a claim was lost."""
        assert self.store is not None
        for printer in [p for p, owner in self._chosen.items() if owner == build]:
            try:
                held = self.store.claim_printer(printer, holder=self.holder, build=build,
                                                lease_s=lease_s)
            except StoreError as exc:
                log.warning("printer_claims_unshared", action="renew", error=str(exc))
                continue
            if not held:
                del self._chosen[printer]
                self._by.pop(printer, None)
                log.warning("printer_claim_lost", printer=printer, build=build)
                return False
        return True

    def _keep(self, build: str) -> None:
        """``build``'s claims are renewed for the lease every third of it, by a thread of
        their own, until the build is released (sent, refused, or ended without its print):
        its print request is bounded by the step timeout, which may be longer than the lease,
        and nothing in it can renew. A claim found taken ends the renewals (logged by
        :meth:`_renew`); the request already on its way goes on. Called under the lock."""
        if self.store is None or build in self._kept:
            return
        stop = self._kept[build] = threading.Event()
        # The thread holds these claims weakly: claims no one uses any more renew nothing.
        threading.Thread(target=_renew_until, args=(weakref.ref(self), build, stop),
                         name=f"printer-claim-{build}", daemon=True).start()

    def _renew_kept(self, build: str, stop: threading.Event) -> bool:
        """One renewal of a kept build's claims; False when the renewals end."""
        with self._lock:
            if stop.is_set():  # released while this waited for the lock
                return False
            if self._renew(build, self.lease_s):
                return True
            self._kept.pop(build, None)
            return False

    def _claimed_elsewhere(self) -> frozenset[str]:
        if self.store is None:
            return frozenset()
        try:
            return self.store.printers_claimed(other_than=self.holder)
        except StoreError as exc:
            log.warning("printer_claims_unshared", action="read", error=str(exc))
            return frozenset()

    def _claim_in_store(self, build: str, printer: str) -> bool:
        if self.store is None:
            return True
        try:
            return self.store.claim_printer(printer, holder=self.holder, build=build,
                                            lease_s=self.lease_s)
        except StoreError as exc:
            log.warning("printer_claims_unshared", action="claim", error=str(exc))
            return True


def _renew_until(claims: weakref.ref[PrinterClaims], build: str, stop: threading.Event) -> None:
    """:meth:`PrinterClaims._keep`'s thread: a renewal every third of the lease until the
    build is released, its claim lost, or its claims object gone."""
    while True:
        kept = claims()
        if kept is None:
            return
        interval_s = kept.lease_s / 3
        del kept  # not held while waiting
        if stop.wait(interval_s):
            return
        kept = claims()
        if kept is None or not kept._renew_kept(build, stop):
            return
        del kept


class PrinterChoice:
    """The claims while one choice is made (:meth:`PrinterClaims.choosing`)."""

    def __init__(self, claims: PrinterClaims) -> None:
        self._chosen = claims._chosen
        self._claims = claims

    def taken(self, build: str | None = None) -> set[str]:
        """The printers claimed by builds other than ``build``, here or in the store."""
        return ({p for p, owner in self._chosen.items() if owner != build}
                | self._claims._claimed_elsewhere())

    def claim(self, build: str, printer: str, *, by: str) -> bool:
        """``printer`` is ``build``'s until its print is sent (``by``: who chose); False when
        another holder claimed it in the store since the reading (nothing claimed here)."""
        if not self._claims._claim_in_store(build, printer):
            log.info("printer_claimed_elsewhere", printer=printer, build=build, by=by)
            return False
        self._chosen[printer] = build
        self._claims._by[printer] = by
        log.info("printer_claimed", printer=printer, build=build, by=by)
        return True


class PrintTracking:
    """Job keys, printer policy, durable sends and verification for one run (module docstring).

    ``client``: the Web API (None: no verification, ``auto`` reads the Local API, an
    interrupted send cannot be looked up). ``store`` and ``build_ids`` (executor build name →
    store build id): the job store to write sends into. ``poller`` verifies after the run
    (None: prints are not verified); ``locators`` find interrupted sends; ``notifier`` reports
    ends and failures. ``recipe`` and ``run_id`` go into notifications. ``jobs``: the ``jobs``
    command that reaches ``store``, for the hints people act on. ``claims``: the printers
    chosen and not yet sent to, shared with the runs that choose at the same time (the hot
    folder's batches); a run's own when None.
    """

    def __init__(
        self,
        *,
        client: WebApiClient | None = None,
        store: JobStore | None = None,
        build_ids: Mapping[str, int] | None = None,
        poller: VerificationPoller | None = None,
        locators: Sequence[PrintLocator] = (),
        notifier: Notifier | None = None,
        clock: Clock = SYSTEM_CLOCK,
        recipe: str | None = None,
        run_id: str | None = None,
        dispatch: bool = False,
        on_wait: Callable[[], None] | None = None,
        wait_s: float = 0.0,
        wait_interval_s: float = DEFAULT_DISPATCH_POLL_INTERVAL_S,
        on_waiting: Callable[[str], None] | None = None,
        jobs: str = JOBS_COMMAND,
        claims: PrinterClaims | None = None,
    ) -> None:
        self.client = client
        #: ``run``: how long a build waits for a free printer of its list or ``auto`` before
        #: it is left waiting in the store (0: it fails at once, as without a store); how
        #: often readiness is read meanwhile; ``on_waiting`` tells the console.
        self.wait_s = wait_s
        self.wait_interval_s = wait_interval_s
        self.on_waiting = on_waiting
        #: Every print waits in the store for dispatch (the hot folder daemon) instead of
        #: being sent by the build; ``on_wait`` is told each time one begins waiting (for a
        #: printer, or held for an approval).
        self.dispatch = dispatch
        self.on_wait = on_wait
        self.store = store
        self.build_ids = dict(build_ids or {})
        self.poller = poller
        self.locators = tuple(locators)
        #: The one owner of the sends (None without a store: nothing to record).
        self.owner = (PrintOwner(store, self.locators, clock=clock, jobs=jobs)
                      if store is not None else None)
        self.notifier = notifier
        self.clock = clock
        self.recipe = recipe
        self.run_id = run_id
        self._lock = threading.Lock()
        #: Printers chosen and not yet sent to: this run's own unless shared (``claims``).
        self.claims = claims if claims is not None else PrinterClaims(store)
        self._sent: dict[str, SentPrint] = {}
        #: Told after every poll while the run waits for its prints (a live status line).
        self.on_poll: Callable[[PollOutcome, int], None] | None = None

    @property
    def verifies(self) -> bool:
        return self.poller is not None

    def close(self) -> None:
        """Deliver queued notifications (briefly) and close the Web API client."""
        if self.notifier is not None:
            self.notifier.close()
        if self.client is not None:
            self.client.close()

    @property
    def sent(self) -> tuple[SentPrint, ...]:
        with self._lock:
            return tuple(self._sent.values())

    def for_build(self, build: BuildPlan) -> BuildTracker:
        build_id = self.build_ids.get(build.name)
        key: str | None = None
        if build_id is not None and self.store is not None:
            key = self.store.get_build(build_id).job_key
        elif is_key(build.name):
            key = build.name  # the hot folder names its builds by their store key
        return BuildTracker(self, build.name, key or new_key(), build_id)

    # -- used by the build trackers (their threads) ------------------------------------------

    def choose_printer(
        self, build: str, recipe: Recipe, client: PreFormClient, among: Sequence[str] = ()
    ) -> str:
        """The first free printer that fits (of ``among`` when given: a list of printers)."""
        machine_type = recipe.scene.machine_type
        material = recipe.scene.material_code
        if not machine_type or not material:
            raise PipelineError(
                "printer: auto needs the scene's machine_type and material_code",
                hint="name both in the recipe's scene, or name a printer",
            )
        source = self.readiness(client, among)
        # A printer another build chose is not free for this one until that build's print
        # was sent: then the printer's own status says when it is free.
        chosen = self.claims.choose(
            build, lambda taken: _select(source, machine_type, material, exclude=taken)
        )
        return chosen.name

    def readiness(self, client: PreFormClient, among: Sequence[str] = ()) -> PrinterSource:
        """Where printer status comes from: the Web API with a client, else (or when it cannot
        answer now: a long Retry-After, a spent budget, an outage) the server's devices; only
        the printers ``among`` when given."""
        local = LocalApiDevices(client)
        source: PrinterSource = local if self.client is None else CombinedReadiness(
            local, WebApiPrinters(self.client), lambda: True
        )
        return _Among(source, among) if among else source

    def could_print(self, recipe: Recipe, client: PreFormClient,
                    among: Sequence[str] = ()) -> bool:
        """True when some printer (of ``among``) prints the scene's machine type with its
        material loaded, free or not: waiting for it can end."""
        fits = PrintTarget((), True, recipe.scene.machine_type, recipe.scene.material_code)
        return any(fits.matches(c) for c in self.readiness(client, among).printer_candidates())

    def others_waiting(self) -> bool:
        """True when builds wait for a printer already (a new one queues behind them)."""
        if self.store is None:
            return False
        return bool(self.store.list_builds(state=JobState.WAITING_FOR_PRINTER, limit=1))

    def record(self, sent: SentPrint) -> None:
        with self._lock:
            self._sent[sent.build] = sent
        self.claims.release([sent.build])

    def notify(self, event: str, **fields: Any) -> None:
        if self.notifier is not None:
            self.notifier.notify(
                Notification(event=event, recipe=self.recipe, run_id=self.run_id, **fields)
            )

    # -- after the run ------------------------------------------------------------------------

    def after_run(self, result: RunResult, stop: threading.Event) -> RunResult:
        """Verify what the run printed; see :meth:`~.hooks.PrintHooks.after_run`."""
        # Its builds have ended: a printer one chose and never sent to is free for others.
        self.claims.release([o.name for o in result.outcomes], by="run")
        for outcome in result.outcomes:
            self._notify_failure(outcome)
        sent = {s.build: s for s in self.sent}
        pending = [
            PendingPrint(
                key=s.key,
                sent_at=s.sent_at,
                name=s.build,
                build_id=s.build_id,
                job_name=s.job_name,
                print_job_id=s.job_id,
                printer=s.printer,
            )
            for o in result.outcomes
            if o.verify == VERIFY_PENDING and (s := sent.get(o.name)) is not None
        ]
        if self.poller is None or not pending:
            return result
        results: dict[str, VerificationResult] = {}
        interrupted = False
        error: str | None = None
        polls, requests = self.poller.polls, self.poller.requests
        try:
            for found in self.poller.run_until(
                pending,
                stop,
                on_result=self._on_result,
                on_progress=self._on_progress,
                on_poll=self.on_poll,
            ):
                results[found.pending.name or found.key] = found
        except KeyboardInterrupt:
            stop.set()
        except CloudError as exc:
            error = str(exc)
            log.error("verification_failed", error=error)
            self.notify("verification_failed", message=error)
        interrupted = stop.is_set() and len(results) < len(pending)
        outcomes = [self._outcome(o, results.get(o.name), error) for o in result.outcomes]
        summary: dict[str, Any] = {
            "prints": len(pending),
            "verified": sum(1 for r in results.values() if r.status is not UNVERIFIED),
            "unverified": sum(1 for r in results.values() if r.status is UNVERIFIED),
            "pending": len(pending) - len(results),
            "polls": self.poller.polls - polls,
            "requests": self.poller.requests - requests,
            "error": error,
        }
        if self.client is not None:
            summary["budget"] = self.client.budget().as_dict()
        log.info("run_verified", **{k: v for k, v in summary.items() if k != "budget"})
        return replace(
            result,
            outcomes=tuple(outcomes),
            verification=summary,
            cancelled=result.cancelled or interrupted,
        )

    def _outcome(
        self, outcome: BuildOutcome, found: VerificationResult | None, error: str | None
    ) -> BuildOutcome:
        if outcome.verify != VERIFY_PENDING or outcome.name not in {s.build for s in self.sent}:
            return outcome
        if found is not None:
            return replace(
                outcome, verify=found.status.job_state.value, verify_message=found.message
            )
        why = f"verification stopped ({error})" if error else "verification was interrupted"
        if self.store is not None:
            why += "; `preform-pipeline verify` checks it later"
        return replace(outcome, verify_message=why)

    def _on_result(self, result: VerificationResult) -> None:
        if self.store is not None and result.pending.build_id is not None:
            try:
                apply_result(self.store, result)
            except StoreError as exc:
                log.error("verify_result_unrecorded", job_key=result.key, error=str(exc))
        self._notify(result)

    def _on_progress(self, progress: PrintProgress) -> None:
        if self.store is not None and progress.pending.build_id is not None:
            try:
                mark_in_progress(self.store, progress)
            except StoreError as exc:
                log.warning("verify_progress_unrecorded", job_key=progress.pending.key,
                            error=str(exc))

    def _notify(self, result: VerificationResult) -> None:
        if self.notifier is None or not first_to_announce(self.store, result):
            return
        self.notifier.notify(
            notification_for_status(
                result.status.value,
                job_key=result.key,
                name=result.pending.name,
                message=result.message,
                printer=result.printer,
                print_job_id=result.pending.print_job_id or result.print_guid,
                recipe=self.recipe,
                run_id=self.run_id,
            )
        )

    def _notify_failure(self, outcome: BuildOutcome) -> None:
        status = outcome.status.value
        if status not in ("failed", "print_unconfirmed"):
            return
        sent = {s.build: s for s in self.sent}.get(outcome.name)
        self.notify(
            "build_failed" if status == "failed" else "print_unconfirmed",
            job_key=sent.key if sent is not None else None,
            name=outcome.name,
            status=status,
            message=outcome.reason,
        )


class _Among:
    """Only the named printers of another source (a ``printer`` list: any of these)."""

    def __init__(self, source: PrinterSource, names: Sequence[str]) -> None:
        self.source = source
        self.names = frozenset(names)
        self.description = source.description

    def printer_candidates(self) -> Sequence[PrinterCandidate]:
        return [c for c in self.source.printer_candidates() if c.name in self.names]


class BuildTracker:
    """One build's hooks (:class:`~.hooks.BuildPrintHooks`); used from the build's thread."""

    def __init__(
        self, tracking: PrintTracking, build: str, key: str, build_id: int | None
    ) -> None:
        self.tracking = tracking
        self.build = build
        self._key = key
        self.build_id = build_id
        self._pending_send: tuple[str, str, datetime] | None = None
        self._scene: tuple[str | None, str | None] = (None, None)
        #: ``run`` waited its bound for a free printer: the build waits in the store instead.
        self._left_waiting = False
        #: The recipe wants an operator's approval: held (docs/web.md), then dispatched.
        self._approval = False

    def __repr__(self) -> str:
        return f"BuildTracker({self.build!r}, key={self._key!r}, build_id={self.build_id})"

    @property
    def job_key(self) -> str:
        return self._key

    @property
    def verifies(self) -> bool:
        return self.tracking.verifies

    def resolve_printer(self, printer: str, recipe: Recipe, client: PreFormClient) -> str:
        self._scene = (recipe.scene.machine_type, recipe.scene.material_code)
        # Only the hot folder holds builds: `run` is a person's own command, it prints.
        self._approval = self.tracking.dispatch and requires_approval(recipe)
        among = [p.strip() for p in printer.split(PRINTER_LIST_SEPARATOR) if p.strip()]
        if len(among) <= 1 and not is_auto_target(printer):
            # One named printer (or queue): its own queue orders the jobs. A stray separator
            # or blank ('Form4-Lab,') is not part of its name, as the hot folder reads it.
            return among[0] if among else printer
        if self._approval:
            return printer  # held for approval first: dispatch chooses once it is approved
        if self.tracking.dispatch and self.tracking.others_waiting():
            return printer  # builds wait already: this one queues behind them
        choice = among if len(among) > 1 else ()
        try:
            return self.tracking.choose_printer(self.build, recipe, client, choice)
        except PrinterSelectionError as exc:
            if self.tracking.dispatch:
                return printer  # none free now: the build waits (before_send)
            found = self._wait_for_printer(printer, recipe, client, choice, exc)
            if found is not None:
                return found
            self._left_waiting = True  # the bound passed: it waits in the store
            return printer

    def _wait_for_printer(
        self, printer: str, recipe: Recipe, client: PreFormClient, among: Sequence[str],
        refusal: PrinterSelectionError,
    ) -> str | None:
        """``run``: read readiness every ``wait_interval_s`` until a matching printer is
        free (its name) or ``wait_s`` passed (None). Without a bound or a store to wait in,
        or when no printer could ever take the print, the refusal stands."""
        tracking = self.tracking
        if tracking.wait_s <= 0 or tracking.store is None or self.build_id is None:
            raise refusal
        if not tracking.could_print(recipe, client, among):
            raise refusal  # no printer of that kind at all: waiting would never end
        target = PrintTarget.parse(printer, machine_type=recipe.scene.machine_type,
                                   material=recipe.scene.material_code)
        clock = tracking.clock
        deadline = clock.monotonic() + tracking.wait_s
        log.info("printer_wait_started", job_key=self._key, target=target.describe(),
                 wait_s=tracking.wait_s)
        if tracking.on_waiting is not None:
            tracking.on_waiting(
                f"{self.build}: no free printer; waiting up to {describe_duration(tracking.wait_s)}"
                f" for {target.describe()}")
        while clock.monotonic() < deadline:
            clock.sleep(min(tracking.wait_interval_s, max(0.0, deadline - clock.monotonic())))
            try:
                chosen = tracking.choose_printer(self.build, recipe, client, among)
            except PrinterSelectionError:
                continue
            log.info("printer_wait_ended", job_key=self._key, printer=chosen)
            return chosen
        log.warning("printer_wait_bound_passed", job_key=self._key, target=target.describe(),
                    wait_s=tracking.wait_s)
        if tracking.on_waiting is not None:
            tracking.on_waiting(
                f"{self.build}: still no free printer after {describe_duration(tracking.wait_s)}"
                f"; its saved .form waits in the job store ({self._key}) and the next run or "
                "watch sends it")
        return None

    def job_name(self, name: str) -> str:
        return embed_key(name, self._key)

    # -- the send -----------------------------------------------------------------------------

    def before_send(
        self,
        job_name: str,
        printer: str,
        *,
        holder: SendHolder | None = None,
        form_path: Path | None = None,
    ) -> str | None:
        try:
            return self._before_send(job_name, printer, holder=holder, form_path=form_path)
        except BaseException:
            # The build ends here without its print: the printer it chose is free again.
            self.tracking.claims.release([self.build])
            raise

    def _before_send(
        self,
        job_name: str,
        printer: str,
        *,
        holder: SendHolder | None,
        form_path: Path | None,
    ) -> str | None:
        now = self.tracking.clock.now()
        self._pending_send = (job_name, printer, now)
        store = self.tracking.store
        owner = self.tracking.owner
        if store is None or owner is None or self.build_id is None:
            return None
        build = store.get_build(self.build_id)
        if build.state in _NOT_PREPARED_YET:
            # The caller did not record the preparation; the print step proves it happened.
            if build.state is JobState.PROCESSING:
                build = store.transition_build(
                    build.id, JobState.PREPARING, "being prepared", expect=JobState.PROCESSING
                )
            build = store.transition_build(
                build.id, JobState.PREPARED, "prepared", expect=JobState.PREPARING
            )
        if build.state is JobState.PRINT_SENDING:
            # An earlier send was interrupted: the owner settles it before anything is sent.
            answer = owner.resolve_waiting(build)
            build = answer.build or store.get_build(self.build_id)
            if answer.evidence is Evidence.UNKNOWN:
                raise PrintLookupError(self._key, f"an earlier send was interrupted and cannot "
                                       f"be settled: {answer.reason}; it is not sent again")
            if answer.evidence is Evidence.FOUND:
                log.warning("print_found_not_resent", job_key=self._key, reason=answer.reason)
        if build.state in _ALREADY_SENT:
            log.warning("print_already_sent", job_key=self._key, state=build.state.value,
                        job_id=build.print_job_id)
            self._record(build.print_job_id, build.printer or printer,
                         build.print_sent_at or now, build.job_name or job_name)
            return build.print_job_id or self._key
        if build.state is not JobState.PREPARED:
            raise PipelineError(
                f"build {self._key} is {build.state.value} in the job store; it is not printed",
                hint=f"a user or another process changed it; see `{owner.jobs} show "
                f"{self._key}`",
            )
        if form_path is not None and build.form_path != form_path:
            # The saved .form, recorded for everything that reads the build later: the
            # dashboard finds its screenshot and report beside it, `jobs show` names it,
            # and dispatch sends it when the build waits.
            build = store.update_build(build.id, form_path=form_path)
        if (self.tracking.dispatch and self._approval) or (
            (self.tracking.dispatch or self._left_waiting) and self._undecided(printer)
        ):
            return self._wait(build, job_name, printer, form_path)
        owner.begin(build.id, job_name, printer, holder)
        return None

    @staticmethod
    def _undecided(printer: str) -> bool:
        """``auto`` or a list: :meth:`resolve_printer` left the choice to dispatch."""
        return is_auto_target(printer) or PRINTER_LIST_SEPARATOR in printer

    def _wait(self, build: Build, job_name: str, printer: str, form_path: Path | None) -> str:
        """Hand a PREPARED build to dispatch: it waits in the store for a free printer."""
        store, owner = self.tracking.store, self.tracking.owner
        assert store is not None and owner is not None
        if form_path is None:
            raise PipelineError(
                f"build {self._key} cannot wait for a printer: no .form was saved before the "
                "print step",
                hint="add a save_form step before print (the saved .form is what is sent)",
            )
        machine_type, material = self._scene
        target = PrintTarget.parse(printer, machine_type=machine_type, material=material)
        priority = max((j.priority for j in store.build_members(build.id)), default=0)
        if self._approval:
            hold_for_approval(store, build.id, target.to_json(), job_name=job_name,
                              priority=priority, describe=target.describe())
        else:
            owner.wait_for_printer(build.id, target.to_json(), job_name=job_name,
                                   priority=priority, describe=target.describe())
        if self.tracking.on_wait is not None:
            # A held build too: the dispatch loop learns a rejection by seeing the build held
            # at one pass and not at the next. Unwoken, a build rejected before the loop's
            # next read was settled only by the sweep of processing/, up to a minute later.
            self.tracking.on_wait()
        return PRINT_HELD if self._approval else PRINT_WAITING

    def sent(self, job_id: str | None, printer: str) -> None:
        job_name, _, sent_at = self._pending_send or (
            self._key, printer, self.tracking.clock.now()
        )
        self._record(job_id, printer, sent_at, job_name)
        owner = self.tracking.owner
        if owner is None or self.build_id is None:
            return
        try:
            owner.sent(self.build_id, job_id, printer)
        except StoreError as exc:
            # The print exists; failing the build now would only hide it. The store still says
            # print_sending, so the next start looks the key up instead of resending.
            log.error("print_sent_unrecorded", job_key=self._key, job_id=job_id, error=str(exc))

    def refused(self, reason: str) -> None:
        # Nothing was queued: the printer it chose is free for other builds at once.
        self.tracking.claims.release([self.build])
        owner = self.tracking.owner
        if owner is None or self.build_id is None:
            return
        try:
            owner.refused(self.build_id, reason)
        except StoreError as exc:
            log.warning("print_state_unrecorded", job_key=self._key, error=str(exc))

    def unconfirmed(self, reason: str) -> None:
        # The print may be on the printer: from now on its own status says so, or not.
        self.tracking.claims.release([self.build])
        if self.tracking.owner is not None and self.build_id is not None:
            self.tracking.owner.unconfirmed(self.build_id, reason)

    def _record(
        self, job_id: str | None, printer: str, sent_at: datetime, job_name: str
    ) -> None:
        self.tracking.record(
            SentPrint(self.build, self._key, sent_at, job_name, printer, job_id, self.build_id)
        )


def tracking_for_run(
    recipe: Recipe,
    cloud: CloudSettings,
    verify: VerifySettings,
    *,
    run_id: str | None = None,
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
    clock: Clock = SYSTEM_CLOCK,
    store: JobStore | None = None,
    locators: Sequence[PrintLocator] = (),
    dispatch: DispatchSettings | None = None,
    on_waiting: Callable[[str], None] | None = None,
    jobs: str = JOBS_COMMAND,
    on_warning: Callable[[str], None] | None = None,
) -> PrintTracking | None:
    """The :class:`PrintTracking` a ``run`` of ``recipe`` needs, or None when it needs none.

    Every run that prints gets one, so every print's job name carries its build's job key
    (the Dashboard feed maps it back later, also for runs that do not verify). With Web API
    credentials configured and a ``verify`` step or ``printer: auto``, they are checked *now*,
    so refused ones fail the run before anything is printed
    (:class:`~preform_pipeline.errors.CloudAuthError`); a Web API that cannot be reached now
    is only logged (the poller retries). Without credentials, ``verify`` is skipped and
    ``auto`` reads the PreFormServer's device list. ``store``: the job store every send is
    written to (through the print owner); ``locators``: where interrupted sends are found,
    besides the Web API. ``dispatch``: how long a build of a printer list or ``auto`` waits for
    a free printer (``run_wait_s``, readiness read every ``poll_interval_s``; with a store,
    after that it waits there for the next run or watch), ``on_waiting`` telling the console.
    ``jobs``: the ``jobs`` command that reaches ``store`` (``hotfolder.files.jobs_command``).
    ``on_warning``: tells the console what the run goes on without (a Web API rate limit met
    at the start: until when, and what helps).
    """
    prints = [s for s in recipe.steps if s.kind == "print"]
    if not prints or dry_run:
        return None
    waiting: dict[str, Any] = {"on_waiting": on_waiting, "jobs": jobs}
    if dispatch is not None:
        waiting |= {"wait_s": dispatch.run_wait_s, "wait_interval_s": dispatch.poll_interval_s}
    verify_step = next((s for s in recipe.steps if s.kind == "verify"), None)
    auto = any(is_auto_target(str(s.options.get("printer", ""))) for s in prints)
    if verify_step is None and not auto:
        # Keys only: no Web API work is needed for this run.
        return PrintTracking(
            client=None,
            store=store,
            locators=locators,
            poller=None,
            notifier=make_notifier(verify.notifications),
            clock=clock,
            recipe=recipe.name,
            run_id=run_id,
            **waiting,
        )
    environment = os.environ if env is None else env
    client: WebApiClient | None = None
    if credentials_configured(cloud, environment):
        # The store, when the run has one, keeps the hourly budget with every other process.
        # A run has printers to choose and sends to look up while it waits: a wait for the
        # rate limits longer than WEB_API_MAX_WAIT_S fails at once (printer status then comes
        # from the server's devices, a lookup says "cannot tell", a poll backs off) instead of
        # holding the run for up to an hour's Retry-After.
        client = make_web_client(cloud, load_cloud_credentials(cloud, environment), clock=clock,
                                 ledger=store, max_wait_s=WEB_API_MAX_WAIT_S)
        try:
            check_credentials(client)
        except CloudAuthError:
            client.close()
            raise
        except CloudRateLimitError as exc:
            # Reachable, but held back (this store's hourly budget spent, or a Retry-After
            # met by another process): not "unreachable", and it ends at a known time.
            line = _rate_limited_line(exc, clock, auto=auto, verifies=verify_step is not None)
            log.warning("web_api_rate_limited_at_start", error=exc.message,
                        retry_after_s=exc.retry_after_s, until=_until(exc, clock))
            if on_warning is not None:
                on_warning(line)
        except CloudError as exc:
            # Prints go out all the same (an outage must not stop a lab), so the console says
            # so at once: the event alone left a newcomer who had not started the Dashboard
            # simulator watching a run that printed and then polled, backing off, for hours.
            log.warning("web_api_unreachable_at_start", error=str(exc))
            if on_warning is not None:
                on_warning(_unreachable_line(exc, auto=auto, verifies=verify_step is not None))
    poller: VerificationPoller | None = None
    if client is not None and verify_step is not None:
        options = verify_step.options
        poller = VerificationPoller(
            client,
            clock=clock,
            interval_s=float(options.get("poll_interval_s", verify.interval_s)),
            deadline_s=float(options.get("timeout_s", verify.deadline_s)),
            requests_per_hour=verify.requests_per_hour,
        )
    return PrintTracking(
        client=client,
        poller=poller,
        store=store,
        locators=(*locators, *web_locators(client, verify)),
        notifier=make_notifier(verify.notifications),
        clock=clock,
        recipe=recipe.name,
        run_id=run_id,
        **waiting,
    )


def _until(exc: CloudRateLimitError, clock: Clock) -> str | None:
    return None if exc.retry_after_s is None else resume_time(clock.now(), exc.retry_after_s)


def _rate_limited_line(exc: CloudRateLimitError, clock: Clock, *, auto: bool,
                       verifies: bool) -> str:
    """The console's line for a run that starts while the Web API's rate limit holds: until
    when, why, what the run does meanwhile, and what helps (the error's hint, without its
    "try again after", which a run that goes on has no use for)."""
    until = _until(exc, clock)
    why = exc.message.removeprefix(f"{exc.request}: ") if exc.request else exc.message
    meanwhile = _meanwhile(
        auto=auto, polls=f"verification polls again after {'that time' if until else 'a while'}"
        if verifies else None)
    text = f"the Web API is rate-limited{f' until {until}' if until else ''} ({why})"
    text += ": this run goes on without it"
    if meanwhile:
        text += f" ({'; '.join(meanwhile)})"
    helps = re.sub(r"^try again after [^;,]*[;,]\s*(or\s+)?", "", exc.hint or "")
    return f"{text}; {helps}" if helps else text


def _unreachable_line(exc: CloudError, *, auto: bool, verifies: bool) -> str:
    """The console's line for a run that starts while the Web API cannot be reached (or
    fails): the request and what happened, that the run prints without it and what it does
    meanwhile, and what helps (the error's hint)."""
    meanwhile = _meanwhile(
        auto=auto, polls="the prints are sent, and verification polls again, less often each "
        "time, until the verify step's timeout_s" if verifies else None)
    text = f"{exc.message}: this run goes on without it"
    if meanwhile:
        text += f" ({'; '.join(meanwhile)})"
    return f"{text}; {exc.hint}" if exc.hint else text


def _meanwhile(*, auto: bool, polls: str | None) -> list[str]:
    """What a run started without the Web API does instead, for its console line."""
    return [
        *(["`printer: auto` chooses from the PreFormServer's device list"] if auto else []),
        *([polls] if polls else []),
    ]


def web_locators(client: WebApiClient | None, verify: VerifySettings) -> tuple[PrintLocator, ...]:
    """The Web API as a place to find interrupted sends (none without a client)."""
    if client is None:
        return ()
    return (WebApiLocator(client, report_delay_s=verify.lookup_grace_s),)


def verification_lines(result: RunResult) -> list[str]:
    """One line per verified build for the run's summary: status, message, printer."""
    lines: list[str] = []
    for outcome in result.outcomes:
        if outcome.verify is None:
            continue
        text = f"verify {outcome.name}: {outcome.verify}"
        if outcome.verify_message:
            text += f": {outcome.verify_message}"
        lines.append(text)
    return lines


def verification_failed(result: RunResult) -> bool:
    """True when a print the run verified was aborted, failed or never confirmed."""
    return any(o.print_failed for o in result.outcomes)

"""Builds waiting for a free printer: sent in priority order, oldest first.

A prepared build whose printer is not free waits in the store (``waiting_for_printer``, with its
target, priority and the moment it began waiting). :meth:`Dispatcher.dispatch_once` reads
printer readiness once, walks the waiting builds from the highest priority down (oldest first
within a priority), and gives each build the first free printer its target allows that no
earlier build of the pass took and no one else chose and has not sent to yet (the
:class:`~preform_pipeline.verify.tracking.PrinterClaims` shared with the hot folder's batches:
readiness is read and the choices are claimed under them, and each claim ends once its send
did, sent or not). A target that names no printer the readiness source knows (a
Fleet Control queue) is sent at once: the queue orders its jobs itself.

Waiting never fails a build. A wait longer than ``notify_after_s`` notifies once per wait.
Sending is the caller's (:class:`Send`): it goes through the print owner
(:mod:`preform_pipeline.printing`), which writes every step before it happens.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.errors import PipelineError
from preform_pipeline.logging import get_logger
from preform_pipeline.printing.target import PrintTarget
from preform_pipeline.store import Build, JobState, JobStore

if TYPE_CHECKING:
    from preform_pipeline.verify.targets import PrinterCandidate, PrinterSource
    from preform_pipeline.verify.tracking import PrinterClaims

__all__ = ["DEFAULT_POLL_INTERVAL_S", "Dispatched", "Dispatcher", "Send", "waiting_order"]

log = get_logger(__name__)

#: How often readiness is read while builds wait (settings: ``dispatch.poll_interval_s``).
DEFAULT_POLL_INTERVAL_S: Final = 5.0


class Send(Protocol):
    """Sends one waiting build to ``printer`` through the print owner."""

    def __call__(self, build: Build, printer: str) -> None: ...


@dataclass(frozen=True)
class Dispatched:
    """One build a pass handed to a printer (``error``: the send failed, see its state)."""

    build_id: int
    job_key: str
    printer: str
    error: str | None = None


def waiting_order(builds: Sequence[Build]) -> list[Build]:
    """Highest priority first, then the longest waiting, then the oldest build."""
    return sorted(
        builds,
        key=lambda b: (-b.priority, b.waiting_since or b.updated_at, b.id),
    )


def _free(printer: PrinterCandidate) -> bool:
    return printer.online and printer.busy is None and printer.ready is not False


class Dispatcher:
    """Sends waiting builds as printers free up (module docstring).

    ``readiness`` lists printers with their status; ``send`` sends one build; ``on_late`` is
    told once per wait about a build waiting longer than ``notify_after_s``; ``only`` narrows
    the builds it sends (a ``run`` sends the builds of runs); ``claims``: the printers others
    chose and have not sent to yet (module docstring).
    """

    def __init__(
        self,
        store: JobStore,
        readiness: PrinterSource,
        send: Send,
        *,
        clock: Clock = SYSTEM_CLOCK,
        notify_after_s: float | None = None,
        on_late: Callable[[Build, float], None] | None = None,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        only: Callable[[Build], bool] | None = None,
        claims: PrinterClaims | None = None,
    ) -> None:
        self.store = store
        #: The printers chosen and not yet sent to, shared with the batches that choose
        #: while this sends (the hot folder's); this dispatcher's own when None.
        if claims is None:
            # Here, not at the top: ``jobs waiting`` reads waiting_order, not the executor's
            # claims, and verify.tracking brings in the executor and numpy.
            from preform_pipeline.verify.tracking import PrinterClaims

            claims = PrinterClaims(store)
        self.claims = claims
        #: Which waiting builds this dispatcher sends (None: all of them).
        self.only = only
        self.readiness = readiness
        self.send = send
        self.clock = clock
        self.notify_after_s = notify_after_s
        self.on_late = on_late
        self.poll_interval_s = poll_interval_s
        #: Wakes the loop early (a build began waiting, a print was sent).
        self.wake = threading.Event()

    def waiting(self) -> list[Build]:
        builds = self.store.list_builds(state=JobState.WAITING_FOR_PRINTER)
        return waiting_order([b for b in builds if self.only is None or self.only(b)])

    def dispatch_once(self) -> tuple[Dispatched, ...]:
        """One pass: notify late waits, read readiness once, send what can go now."""
        builds = self.waiting()
        if not builds:
            return ()
        self._notify_late(builds)
        chosen: list[tuple[Build, str]] = []
        # Readiness is read and the printers chosen under the claims that batches choose
        # under too: a printer a batch chose (its print not sent, so the printer still says
        # it is free) is not chosen here, and one chosen here is not chosen by a batch.
        with self.claims.choosing() as choice:
            try:
                printers = tuple(self.readiness.printer_candidates())
            except PipelineError as exc:
                log.warning("printer_readiness_unavailable", source=self.readiness.description,
                            error=str(exc))
                return ()
            known = {p.name for p in printers}
            free = [p for p in printers if _free(p)]
            taken = choice.taken()
            for build in builds:
                target = PrintTarget.from_json(build.print_target)
                while (printer := self._choose(target, free, known, taken)) is not None:
                    taken.add(printer)
                    # A Fleet Control queue takes any number of jobs. A printer claimed in
                    # the store since the reading (by another node, a run) is not this
                    # build's: it chooses again without it.
                    if printer not in known or choice.claim(build.job_key, printer,
                                                            by="dispatch"):
                        chosen.append((build, printer))
                        break
        try:
            return tuple(self._send(build, printer) for build, printer in chosen)
        finally:
            # A send that raised past its own handling leaves none of the pass's claims.
            self.claims.release([build.job_key for build, _ in chosen])

    def _choose(
        self, target: PrintTarget, free: Sequence[PrinterCandidate], known: set[str],
        taken: set[str],
    ) -> str | None:
        if target.names and not any(n in known for n in target.names):
            # No printer by that name: a Fleet Control queue, which orders its jobs itself.
            return target.names[0]
        return next((p.name for p in free if p.name not in taken and target.matches(p)), None)

    def _send(self, build: Build, printer: str) -> Dispatched:
        log.info("dispatching", build_id=build.id, job_key=build.job_key, printer=printer,
                 priority=build.priority)
        try:
            self.send(build, printer)
        except PipelineError as exc:
            log.warning("dispatch_send_failed", build_id=build.id, job_key=build.job_key,
                        printer=printer, error=str(exc))
            return Dispatched(build.id, build.job_key, printer, str(exc))
        finally:
            # Sent (its printer's status says busy now), or not sent: the claim ends.
            self.claims.release([build.job_key])
        return Dispatched(build.id, build.job_key, printer)

    def _notify_late(self, builds: Sequence[Build]) -> None:
        if self.notify_after_s is None or self.on_late is None:
            return
        now = self.clock.now()
        for build in builds:
            if build.waiting_since is None or build.wait_notified_at is not None:
                continue
            waited = (now - build.waiting_since).total_seconds()
            if waited < self.notify_after_s:
                continue
            try:
                self.store.update_build(build.id, wait_notified_at=now.isoformat())
            except PipelineError as exc:
                log.warning("wait_notification_unrecorded", build_id=build.id, error=str(exc))
                continue
            log.warning("build_waiting_long", build_id=build.id, job_key=build.job_key,
                        waited_s=round(waited, 1))
            self.on_late(build, waited)

    def run(self, stop: threading.Event) -> None:
        """Dispatch until ``stop`` is set: a pass, then a wait of ``poll_interval_s`` (or less,
        when :attr:`wake` is set)."""
        while not stop.is_set():
            try:
                self.dispatch_once()
            except PipelineError as exc:
                log.error("dispatch_pass_failed", error=str(exc))
            self.wake.wait(self.poll_interval_s)
            self.wake.clear()

"""The one owner of a print's life: begin, sent, refused, unconfirmed, and resolve.

::

    PREPARED ─wait_for_printer─► WAITING_FOR_PRINTER (dispatch sends it when a printer is free)
        │                               │
    PREPARED ─begin─► PRINT_SENDING ─sent──────► PRINT_SENT
    (store written     (with the server that     refused ───► FAILED
     before the         held the send)           unconfirmed: stays PRINT_SENDING, resolved
     request)                                    resolve ──► found: PRINT_SENT (never resent)
                                                          ├► absent: PREPARED (may be sent again)
                                                          └► unknown: wait, then UNVERIFIED

**Found** when any :class:`~.locators.PrintLocator` shows the send's key. **Absent** is a proof,
never a timeout; both must hold:

* nothing can still send it: the server that held the send is certainly over (its pid with its
  start time no longer runs in its instance, :func:`~.holder.holder_gone`). A remote server,
  another container's, or a send whose holder was not recorded (or was recorded without its
  instance, by an earlier version) can never be proven over from here;
* the grace period has passed since the send started (on the :class:`Clock`):
  the server's request timeout plus the slowest locator's report delay, and then every locator
  answered and none showed the print.

**Unknown** is everything else, and has one rule: while the grace period runs the answer may
still change, so the send stays PRINT_SENDING and is looked at again (``Resolution.recheck_in_s``);
after it, the build becomes UNVERIFIED. An UNVERIFIED build is never sent again automatically:
a person settles it with ``preform-pipeline jobs resolve KEY --printed | --not-printed``
(:meth:`PrintOwner.settle_by_person`).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.errors import PipelineError, PrintLookupError, StoreConflictError
from preform_pipeline.logging import get_logger
from preform_pipeline.printing.holder import HolderProbe, SendHolder, holder_gone
from preform_pipeline.printing.locators import PrintLocator, SendRecord, Sighting
from preform_pipeline.settings.store import JOBS_COMMAND
from preform_pipeline.store import Build, JobState, JobStore

__all__ = [
    "DEFAULT_REQUEST_GRACE_S",
    "Evidence",
    "PrintOwner",
    "Resolution",
]

log = get_logger(__name__)

#: The request timeout assumed for a send whose holder was not recorded.
DEFAULT_REQUEST_GRACE_S: Final = 60.0
#: How often to look again when no locator says (none configured).
_DEFAULT_RECHECK_S: Final = 1.0


class Evidence(str, Enum):
    """What the printer side says about one send."""

    FOUND = "found"
    ABSENT = "absent"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Resolution:
    """The answer about one interrupted send, and the build after the one rule was applied.

    ``recheck_in_s`` is set for an unknown answer that may still change (look again then); an
    unknown answer without it is final (the build is UNVERIFIED).
    """

    evidence: Evidence
    reason: str
    build: Build | None = None
    sighting: Sighting | None = None
    recheck_in_s: float | None = None

    @property
    def pending(self) -> bool:
        return self.evidence is Evidence.UNKNOWN and self.recheck_in_s is not None


class PrintOwner:
    """Writes every step of a print's life to the store and resolves interrupted sends.

    ``locators``: every place that can show an accepted print (none: nothing can be proven
    absent). ``probe`` tells whether a send's holder is over (default: :func:`holder_gone`
    with psutil, as ``store`` is kept: on this machine's disk or shared). ``jobs`` is
    the ``jobs`` command that reaches ``store``, for the reasons and hints a person acts on
    (``hotfolder.files.jobs_command``).
    """

    def __init__(
        self,
        store: JobStore,
        locators: Sequence[PrintLocator] = (),
        *,
        clock: Clock = SYSTEM_CLOCK,
        probe: HolderProbe | None = None,
        jobs: str = JOBS_COMMAND,
    ) -> None:
        self.store = store
        self.locators = tuple(locators)
        self.clock = clock
        self.probe: HolderProbe = probe if probe is not None else functools.partial(
            holder_gone, store_on_this_machine=store.kept_on_this_machine)
        self.jobs = jobs

    # -- the send -------------------------------------------------------------------------------

    def wait_for_printer(
        self,
        build_id: int,
        target: Mapping[str, Any],
        *,
        job_name: str,
        priority: int,
        describe: str,
    ) -> Build:
        """PREPARED → WAITING_FOR_PRINTER: prepared, sent later by dispatch when one of
        ``target``'s printers is free (``describe`` says which, for people)."""
        return self.store.transition_build(
            build_id,
            JobState.WAITING_FOR_PRINTER,
            f"waiting for a free printer: {describe}",
            expect=JobState.PREPARED,
            print_target=target,
            job_name=job_name,
            priority=priority,
        )

    def begin(
        self, build_id: int, job_name: str, printer: str, holder: SendHolder | None
    ) -> Build:
        """PREPARED (or WAITING_FOR_PRINTER) → PRINT_SENDING, with who holds the send: durable
        before the request."""
        return self.store.transition_build(
            build_id,
            JobState.PRINT_SENDING,
            f"sending the print to {printer}",
            expect=(JobState.PREPARED, JobState.WAITING_FOR_PRINTER),
            job_name=job_name,
            printer=printer,
            send_holder=holder.to_json() if holder is not None else None,
        )

    def sent(self, build_id: int, job_id: str | None, printer: str) -> Build:
        """The server accepted the print."""
        return self.store.transition_build(
            build_id,
            JobState.PRINT_SENT,
            f"accepted by {printer}" + (f" as job {job_id}" if job_id else ""),
            expect=JobState.PRINT_SENDING,
            print_job_id=job_id,
            printer=printer,
        )

    def refused(self, build_id: int, reason: str) -> Build:
        """The server refused the print: nothing was queued."""
        return self.store.transition_build(
            build_id, JobState.FAILED, f"the server refused the print: {reason}",
            expect=JobState.PRINT_SENDING,
        )

    def unconfirmed(self, build_id: int, reason: str) -> None:
        """No answer: the build stays PRINT_SENDING on purpose and is resolved, never resent."""
        log.warning("print_left_sending", build_id=build_id, reason=reason)

    # -- resolving ------------------------------------------------------------------------------

    def grace_s(self, holder: SendHolder | None) -> float:
        """How long after a send started "not seen anywhere" may be trusted."""
        timeout = holder.request_timeout_s if holder is not None else DEFAULT_REQUEST_GRACE_S
        delay = max((loc.report_delay_s for loc in self.locators), default=0.0)
        return timeout + delay

    def _recheck_s(self) -> float:
        return min((loc.recheck_s for loc in self.locators), default=_DEFAULT_RECHECK_S)

    def examine(self, send: SendRecord) -> Resolution:
        """What the printer side says about ``send`` now; changes nothing."""
        blind: list[str] = []
        for locator in self.locators:
            try:
                sighting = locator.locate(send)
            except PrintLookupError as exc:
                blind.append(f"{locator.name}: {exc}")
                continue
            if sighting is not None:
                return Resolution(Evidence.FOUND, f"found in {sighting.where}",
                                  sighting=sighting)
        waited = (self.clock.now() - send.started_at).total_seconds()
        grace = self.grace_s(send.holder)
        if self.locators and waited < grace:
            left = grace - waited
            return Resolution(
                Evidence.UNKNOWN,
                f"not seen yet; {left:.1f} s of the {grace:.0f} s grace period left",
                recheck_in_s=min(left, self._recheck_s()),
            )
        if not self.locators:
            # Nothing could ever show it: waiting would change nothing.
            why = "there is no way to list the printer's jobs (no fleet folder, no Web API)"
        elif send.holder is None:
            why = "the server that held the send was not recorded"
        elif not self.probe(send.holder):
            why = f"{send.holder.describe()} may still be sending it"
        elif blind:
            why = "not every place could be asked: " + "; ".join(blind)
        else:
            places = ", ".join(loc.name for loc in self.locators)
            return Resolution(
                Evidence.ABSENT,
                f"{send.holder.describe()} is gone and nothing in {places} shows the print "
                f"{grace:.0f} s after the send",
            )
        return Resolution(Evidence.UNKNOWN, why)

    def resolve(self, build: Build) -> Resolution:
        """Examine a PRINT_SENDING build and apply the one rule (module docstring)."""
        if build.state is not JobState.PRINT_SENDING:
            return Resolution(Evidence.UNKNOWN, f"build is {build.state.value}", build=build)
        send = SendRecord.of(build)
        answer = self.examine(send)
        try:
            moved = self._apply(build, send, answer)
        except StoreConflictError as exc:
            # Someone else settled it meanwhile: their answer stands.
            log.info("interrupted_send_moved", build_id=build.id, error=str(exc))
            moved = self.store.get_build(build.id)
        return Resolution(answer.evidence, answer.reason, moved, answer.sighting,
                          answer.recheck_in_s)

    def _apply(self, build: Build, send: SendRecord, answer: Resolution) -> Build:
        log.info("print_resolved", build_id=build.id, job_key=build.job_key,
                 evidence=answer.evidence.value, reason=answer.reason,
                 pending=answer.pending)
        if answer.evidence is Evidence.FOUND:
            assert answer.sighting is not None
            return self.store.transition_build(
                build.id, JobState.PRINT_SENT,
                f"{answer.reason} after an interrupted send; not sent again",
                expect=JobState.PRINT_SENDING,
                print_job_id=answer.sighting.job_id,
                printer=answer.sighting.printer or build.printer,
            )
        if answer.evidence is Evidence.ABSENT:
            return self.store.transition_build(
                build.id, JobState.PREPARED,
                f"proven not printed: {answer.reason}; may be sent again",
                expect=JobState.PRINT_SENDING,
            )
        if answer.pending:
            return build
        return self.store.transition_build(
            build.id, JobState.UNVERIFIED,
            f"an interrupted send cannot be settled ({answer.reason}); it is not sent again: "
            f"check {send.printer or 'the printer'} for a job named "
            f"{send.job_name or send.job_key!r}, then `{self.jobs} resolve "
            f"{send.job_key} --printed` or `--not-printed`",
            expect=JobState.PRINT_SENDING,
        )

    def resolve_waiting(self, build: Build, *, stop: threading.Event | None = None) -> Resolution:
        """:meth:`resolve`, looking again until the answer is final (found, absent, UNVERIFIED).

        ``stop`` ends the wait early with the pending answer.
        """
        while True:
            answer = self.resolve(build)
            if not answer.pending or (stop is not None and stop.is_set()):
                return answer
            assert answer.recheck_in_s is not None and answer.build is not None
            self.clock.sleep(max(answer.recheck_in_s, 0.01))
            build = self.store.get_build(build.id)

    # -- a person settles it --------------------------------------------------------------------

    def settle_by_person(self, build: Build, *, printed: bool, note: str = "") -> Build:
        """``jobs resolve``: an UNVERIFIED (or stuck PRINT_SENDING) build, settled by a person.

        Printed → PRINT_SENT (``verify`` follows it up when it can); not printed → FAILED
        (``jobs retry`` prints it again). The audit row says a person decided.
        """
        if build.state not in (JobState.UNVERIFIED, JobState.PRINT_SENDING):
            raise PipelineError(
                f"the build with job key {build.job_key} is {build.state.value}: only an "
                "unverified (or interrupted) print can be settled by hand",
                hint=f"see `{self.jobs} show {build.job_key}`",
            )
        extra = f" ({note})" if note else ""
        if printed:
            return self.store.transition_build(
                build.id, JobState.PRINT_SENT,
                f"a person confirmed the print exists{extra}", expect=build.state,
            )
        return self.store.transition_build(
            build.id, JobState.FAILED,
            f"a person confirmed it was not printed{extra}; `jobs retry` prints it again",
            expect=build.state,
        )

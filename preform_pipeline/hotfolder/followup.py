"""What the hot-folder service does after a case leaves its hands: verify and tell.

The daemon follows its own prints (no ``preform-pipeline verify`` beside it): given a prints
feed (the Web API client, or in a rehearsal the simulated fleet folder's
:class:`~preform_pipeline.printing.FleetFolderFeed`), a thread polls it through the shared
poller (:func:`preform_pipeline.verify.service.verify_pending`, one poll each ``interval_s``
within the request budget), writes finished, error or aborted onto each build and its cases
in the store, and adds the outcome to each case's report in ``done/``. Without one the builds
stay PRINT_SENT and the reports say the print was sent, not how it ended. The store is written
first: a report a crash left behind its build's end is brought up to date when the daemon
starts again (the first thing its verification thread does).

A poll that meets the Web API's rate limit (a 429 whose ``Retry-After`` can be most of an
hour, or the hourly budget the job store keeps for every process) does not hold the thread,
or anything else, until then: the daemon's Web API clients wait at most
``cloud.WEB_API_MAX_WAIT_S`` (:func:`~preform_pipeline.cloud.make_web_client`'s
``max_wait_s``), so printer readiness falls back to the Local API and a print lookup is
repeated later, and verification is deferred until the retry time (``deferred_until``, a
``hotfolder_verify_deferred`` warning), when it resumes. The retry time is in the job store
(the ledger's hold), so a restarted daemon sends nothing before it either; the pending builds
keep their states.

Notifications (:class:`~preform_pipeline.verify.notify.Notifier`) go out from here only, for
what the daemon sees itself, credentials or not: a case that lands in ``failed/``
(``case_failed``, once per case and reason), a build waiting too long for a printer
(``build_waiting``, once per wait: the dispatch loop calls :meth:`FollowUp.build_waiting`);
and, from the poller, prints that finished or failed.

``case_failed`` is owed through the store. The store write that names a job's place in
failed/ also records the notice it owes (:meth:`FollowUp.owed_fields`, the job's
``_case_failed`` field: its reason, ``owed``, and this host); once the notifier delivered
it, the field says ``told`` (for every job of that case and reason). A daemon killed (or
stopped, or cut off from its webhook) before the notice went out sends it on its next start
(:meth:`FollowUp.resend_owed`), once per case and reason; one whose case was already told
is only marked. What is not promised: a daemon killed after the webhook took the notice but
before ``told`` was written sends it again on its next start (a receiver can tell the two
apart by ``event``, ``case_id`` and ``message``). Each host sends its own owed notices: on a
shared store, a node that never comes back leaves its notices unsent.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.cloud.ratelimit import resume_time
from preform_pipeline.errors import CloudAuthError, PipelineError, StoreConflictError
from preform_pipeline.hotfolder.files import REPORT_SUFFIX, write_text_atomic
from preform_pipeline.liveness import this_host
from preform_pipeline.logging import get_logger
from preform_pipeline.settings import VerifySettings
from preform_pipeline.store import Build, Job, JobState, JobStore
from preform_pipeline.store.fields import CASE_FAILED_FIELD
from preform_pipeline.verify.notify import Notification, Notifier
from preform_pipeline.verify.poller import PrintsFeed, VerificationPoller, describe_duration
from preform_pipeline.verify.service import BuildVerification, verify_pending

__all__ = [
    "CASE_FAILED_FIELD",
    "DEFAULT_NOTIFIED_MEMORY",
    "DEFAULT_RECENT_ENDED",
    "FINAL_PRINT_STATES",
    "FollowUp",
]

log = get_logger(__name__)

#: How many (case, reason) pairs are remembered so a case's files notify once, not per file.
DEFAULT_NOTIFIED_MEMORY: Final = 1000
#: On start, the reports of this many of the newest ended builds are checked: a crash can only
#: have cut short the rewrite of the last few.
DEFAULT_RECENT_ENDED: Final = 200
_OWED: Final = "owed"
_TOLD: Final = "told"
#: Build states in which a print's end is known.
FINAL_PRINT_STATES: Final = frozenset(
    {JobState.FINISHED, JobState.PRINT_ERROR, JobState.ABORTED}
)


class FollowUp:
    """Verification and notifications of one daemon (module docstring).

    ``client`` None: no verification thread. ``notifier`` None: nothing is sent.
    """

    def __init__(
        self,
        store: JobStore,
        *,
        client: PrintsFeed | None = None,
        notifier: Notifier | None = None,
        verify: VerifySettings | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.store = store
        self.client = client
        self.notifier = notifier
        self.verify = verify if verify is not None else VerifySettings()
        self.clock = clock
        #: Held while a report is rewritten: the lock under which files are settled (the
        #: daemon passes its outcome folders' own), so a report written from a state read
        #: before verification is always rewritten after it.
        self.settle_lock: threading.RLock = threading.RLock()
        self._notified: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Until when verification waits for the Web API's rate limit (None: it does not).
        self.deferred_until: datetime | None = None
        #: Where a line for the user goes (the daemon's console, ``watch`` prints it).
        self.say: Callable[[str], None] = lambda line: None
        # Refused credentials were notified (until a poll succeeds again): once, not per poll.
        self._refusal_told = False
        self._poller = (
            VerificationPoller(client, clock=clock, interval_s=self.verify.interval_s,
                               deadline_s=self.verify.deadline_s,
                               requests_per_hour=self.verify.requests_per_hour,
                               defers_rate_limits=True)
            if client is not None else None
        )

    # -- notifications ----------------------------------------------------------------------

    @property
    def _notifies(self) -> bool:
        return self.notifier is not None and self.notifier.enabled

    def owed_fields(self, job: Job) -> dict[str, Any]:
        """The fields the move of ``job``'s file to failed/ writes with it: the notice it
        owes (none when nothing is sent)."""
        if not self._notifies:
            return {}
        return {CASE_FAILED_FIELD: {"reason": _reason(job), "state": _OWED,
                                    "host": this_host()}}

    def case_failed(self, job: Job) -> None:
        """A job's file went to failed/: tell once per case (and reason)."""
        if not self._notifies:
            return
        reason = _reason(job)
        key = _key(job, reason)
        first = self._first(key)
        if self._told_before(key):
            self._mark_told((job,), reason)  # its case's notice is out already
        elif first:
            self._send(job, reason, (job,))
        # Else its case's notice is on its way, and its delivery marks this job too (until
        # then the job owes it: a crash before the delivery loses nothing).

    def resend_owed(self) -> int:
        """Send the notices a previous life of this daemon (this host) owed and never saw
        delivered, once per case and reason; how many were sent again."""
        if not self._notifies:
            return 0
        owed: dict[tuple[str, str], list[Job]] = {}
        told: set[tuple[str, str]] = set()
        host = this_host()
        for job in self.store.list_jobs(state=JobState.FAILED):
            marker = _marker(job)
            if marker is None:
                continue
            key = _key(job, marker["reason"])
            if marker["state"] == _TOLD:
                told.add(key)
            elif marker.get("host") == host:
                owed.setdefault(key, []).append(job)
        sent = 0
        for key, jobs in owed.items():
            if not self._first(key):
                continue  # sent in this life already (a settle during recovery)
            if key in told:
                self._mark_told(jobs, key[1])
                continue
            log.info("case_failed_resent", case_id=jobs[0].case_id, job_key=jobs[0].job_key,
                     reason=key[1])
            self._send(jobs[0], key[1], jobs)
            sent += 1
        return sent

    def _first(self, key: tuple[str, str]) -> bool:
        """Whether ``key`` is told for the first time in this life (and remember it)."""
        with self._lock:
            if key in self._notified:
                return False
            self._notified[key] = None
            while len(self._notified) > DEFAULT_NOTIFIED_MEMORY:
                self._notified.popitem(last=False)
        return True

    def _told_before(self, key: tuple[str, str]) -> bool:
        """Whether another job of the case was told with this reason (in an earlier life)."""
        return any(
            (marker := _marker(other)) is not None and marker["state"] == _TOLD
            and _key(other, marker["reason"]) == key
            for other in self.store.list_jobs(state=JobState.FAILED)
        )

    def _send(self, job: Job, reason: str, jobs: Sequence[Job]) -> None:
        assert self.notifier is not None
        self.notifier.notify(Notification(
            event="case_failed", job_key=job.job_key, name=job.original_name,
            status=job.state.value, message=reason, recipe=job.recipe, case_id=job.case_id,
        ), on_delivered=lambda: self._delivered(jobs, reason))

    def _delivered(self, jobs: Sequence[Job], reason: str) -> None:
        """The notice is out: it was owed by ``jobs`` and by every other job of the case
        still owing it (one whose settle a crash cut short, finished since)."""
        key = _key(jobs[0], reason)
        ids = {job.id for job in jobs}
        try:
            others = [j for j in self.store.list_jobs(state=JobState.FAILED)
                      if j.id not in ids and (marker := _marker(j)) is not None
                      and marker["state"] == _OWED and _key(j, marker["reason"]) == key]
        except PipelineError as exc:  # the store is away: the next start marks them
            log.warning("case_failed_unrecorded", job_key=jobs[0].job_key, error=exc.message)
            others = []
        self._mark_told([*jobs, *others], reason)

    def _mark_told(self, jobs: Sequence[Job], reason: str) -> None:
        """Record that the notice of ``jobs`` (one case and reason) is out."""
        for job in jobs:
            try:
                current = self.store.get_job(job.id)
                # Only while its file is where it was: a retry that took it on writes its own.
                self.store.update_job(job.id, expect_source=current.source_path, fields={
                    **current.fields,
                    CASE_FAILED_FIELD: {**(_marker(current) or {"reason": reason}),
                                        "state": _TOLD},
                })
            except StoreConflictError:
                continue
            except PipelineError as exc:  # the store is away: sent again on the next start
                log.warning("case_failed_unrecorded", job_key=job.job_key, error=exc.message)

    def build_waiting(self, build: Build, waited_s: float, printers: str = "") -> None:
        """A prepared build has waited ``waited_s`` for a free printer: the one place that
        sends ``build_waiting`` (the dispatch loop calls it once per wait)."""
        if self.notifier is None:
            return
        target = f" for {printers}" if printers else " for a free printer"
        cases = sorted({j.case_id for j in self.store.build_members(build.id) if j.case_id})
        self.notifier.notify(Notification(
            event="build_waiting", job_key=build.job_key, name=build.job_name,
            status=JobState.WAITING_FOR_PRINTER.value, recipe=build.recipe,
            message=f"waiting {describe_duration(round(waited_s))}{target}",
            case_id=", ".join(cases) or None,
        ))

    # -- verification -----------------------------------------------------------------------

    @property
    def verifies(self) -> bool:
        return self._poller is not None

    def start(self) -> None:
        """Send the notices a previous life owed; follow the prints (first bringing reports
        a crash left behind up to date)."""
        try:
            self.resend_owed()
        except PipelineError as exc:  # the store is away: the next start looks again
            log.error("case_failed_resend_failed", error=exc.message)
        if self._poller is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="hotfolder-verify",
                                        daemon=True)
        self._thread.start()
        log.info("hotfolder_verify_started", interval_s=self.verify.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.verify.interval_s + 30)
            self._thread = None
        if self.notifier is not None:
            self.notifier.flush(timeout=5.0)

    def _loop(self) -> None:
        try:
            self.refresh_stale_reports()
        except PipelineError as exc:  # the store is away: the next start looks again
            log.error("hotfolder_verify_failed", error=exc.message)
        except OSError as exc:  # a report that cannot be written now: the same
            log.error("hotfolder_verify_failed", error=str(exc))
        while not self._stop.is_set():
            self.poll_and_tell()
            self._stop.wait(self.next_wait_s())

    def poll_and_tell(self) -> None:
        """One poll of the loop; a failure is logged, never raised.

        Refused credentials (a secret regenerated on the Dashboard while the service runs)
        fail every poll until someone corrects them: the log says what to check (the
        settings they came from), and one ``verification_failed`` notification tells the
        lab that print ends go unconfirmed meanwhile, not one per poll.
        """
        try:
            self.poll_once()
        except CloudAuthError as exc:
            log.error("hotfolder_verify_failed", error=exc.message, hint=exc.hint)
            if not self._refusal_told and self.notifier is not None:
                self.notifier.notify(Notification(
                    event="verification_failed",
                    message=f"{exc}; print ends are not confirmed until this is corrected"))
            self._refusal_told = True
        except PipelineError as exc:
            log.error("hotfolder_verify_failed", error=exc.message)
        except Exception:  # the loop must outlive any one poll
            log.exception("hotfolder_verify_crashed")
        else:
            self._refusal_told = False

    def next_wait_s(self) -> float:
        """Seconds until the next poll: the interval, or longer while verification is
        deferred for the Web API's rate limit."""
        if self.deferred_until is None:
            return self.verify.interval_s
        left = (self.deferred_until - self.clock.now()).total_seconds()
        return max(self.verify.interval_s, left)

    def poll_once(self) -> int:
        """One poll of the prints feed; how many builds reached a final state."""
        assert self.client is not None and self._poller is not None
        report = verify_pending(
            self.store, self.client, clock=self.clock, notifier=self.notifier,
            poller=self._poller, unverified_lookback_s=0,
        )
        self._defer(report.retry_after_s, len(report.builds))
        ended = 0
        for row in report.builds:
            if row.changed and row.state in FINAL_PRINT_STATES:
                ended += 1
                self.refresh_reports(self.store.get_build(row.build_id))
                self.say(_print_end_line(row))
        return ended

    def _defer(self, retry_after_s: float | None, pending: int) -> None:
        """Defer verification until the Web API lets a request leave again, or resume it."""
        if retry_after_s is None:
            if self.deferred_until is not None:
                log.info("hotfolder_verify_resumed", pending=pending)
                self.deferred_until = None
            return
        now = self.clock.now()
        if self.deferred_until is None:
            log.warning("hotfolder_verify_deferred", pending=pending,
                        wait_s=round(retry_after_s, 3), until=resume_time(now, retry_after_s))
        self.deferred_until = now + timedelta(seconds=retry_after_s)

    def refresh_stale_reports(self) -> int:
        """Rewrite the reports that do not show their build's end yet (the store was
        written, then the daemon died before the report was); how many builds had one."""
        stale = 0
        for build in self.store.list_builds(state=FINAL_PRINT_STATES,
                                            limit=DEFAULT_RECENT_ENDED):
            if any(_report_behind(job) for job in self.store.list_jobs(build_id=build.id)):
                stale += 1
                self.refresh_reports(build)
        return stale

    def refresh_reports(self, build: Build) -> None:
        """Add the print's outcome to the report beside each of the build's files in done/."""
        with self.settle_lock:
            self._refresh_reports(build)

    def _refresh_reports(self, build: Build) -> None:
        for job in self.store.list_jobs(build_id=build.id):
            path = _report_path(job)
            try:
                data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # not settled yet: settling writes the state it finds
            data["state"] = job.state.value
            data.setdefault("build", {})
            if isinstance(data["build"], dict):
                data["build"].update({"state": build.state.value, "printer": build.printer})
            data["verification"] = {
                "status": build.verified_status,
                "message": build.verified_message,
                "printer": build.printer,
                "at": self.clock.now().isoformat(),
            }
            write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")
            log.info("case_report_updated", job_key=job.job_key, case_id=job.case_id,
                     state=job.state.value, path=str(Path(path)))


def _print_end_line(row: BuildVerification) -> str:
    """The console's line for a print that ended, in ``run``'s words (``verify NAME:
    print_error: MESSAGE``): the console said the build was sent, and then nothing, of a print
    that failed for low resin (session 43), and a service's journal is its console."""
    on = f" on {row.printer}" if row.printer else ""
    said = f": {row.message}" if row.message else ""
    return f"[{row.job_key}] verify: {row.state.value}{on}{said}"


def _reason(job: Job) -> str:
    return job.reason or "failed"


def _key(job: Job, reason: str) -> tuple[str, str]:
    """What a ``case_failed`` notice is sent once for: the case (or the lone job), the reason."""
    return (job.case_id or job.job_key, reason)


def _marker(job: Job) -> dict[str, Any] | None:
    """The job's ``case_failed`` record, when it has a well-formed one."""
    marker = job.fields.get(CASE_FAILED_FIELD)
    if (isinstance(marker, Mapping) and isinstance(marker.get("reason"), str)
            and marker.get("state") in (_OWED, _TOLD)):
        return dict(marker)
    return None


def _report_path(job: Job) -> Path:
    return job.source_path.with_name(job.source_path.name + REPORT_SUFFIX)


def _report_behind(job: Job) -> bool:
    """True when the report beside the job's file in done/ has another state than the job."""
    try:
        data = json.loads(_report_path(job).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # not settled yet (settling writes the state it finds), or not ours
    return isinstance(data, dict) and data.get("state") != job.state.value

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

Notifications (:class:`~preform_pipeline.verify.notify.Notifier`) go out from here only, for
what the daemon sees itself, credentials or not: a case that lands in ``failed/``
(``case_failed``, once per case and reason), a build waiting too long for a printer
(``build_waiting``, once per wait: the dispatch loop calls :meth:`FollowUp.build_waiting`);
and, from the poller, prints that finished or failed.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Final

from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.errors import PipelineError
from preform_pipeline.hotfolder.files import REPORT_SUFFIX, write_text_atomic
from preform_pipeline.logging import get_logger
from preform_pipeline.settings import VerifySettings
from preform_pipeline.store import Build, Job, JobState, JobStore
from preform_pipeline.verify.notify import Notification, Notifier
from preform_pipeline.verify.poller import PrintsFeed, VerificationPoller, describe_duration
from preform_pipeline.verify.service import verify_pending

__all__ = [
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
        self._poller = (
            VerificationPoller(client, clock=clock, interval_s=self.verify.interval_s,
                               deadline_s=self.verify.deadline_s,
                               requests_per_hour=self.verify.requests_per_hour)
            if client is not None else None
        )

    # -- notifications ----------------------------------------------------------------------

    def case_failed(self, job: Job) -> None:
        """A job's file went to failed/: tell once per case (and reason)."""
        if self.notifier is None:
            return
        reason = job.reason or "failed"
        key = (job.case_id or job.job_key, reason)
        with self._lock:
            if key in self._notified:
                return
            self._notified[key] = None
            while len(self._notified) > DEFAULT_NOTIFIED_MEMORY:
                self._notified.popitem(last=False)
        self.notifier.notify(Notification(
            event="case_failed", job_key=job.job_key, name=job.original_name,
            status=job.state.value, message=reason, recipe=job.recipe, case_id=job.case_id,
        ))

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
        """Follow the prints (first bringing reports a crash left behind up to date)."""
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
            try:
                self.poll_once()
            except PipelineError as exc:
                log.error("hotfolder_verify_failed", error=exc.message)
            except Exception:  # the loop must outlive any one poll
                log.exception("hotfolder_verify_crashed")
            self._stop.wait(self.verify.interval_s)

    def poll_once(self) -> int:
        """One poll of the prints feed; how many builds reached a final state."""
        assert self.client is not None and self._poller is not None
        report = verify_pending(
            self.store, self.client, clock=self.clock, notifier=self.notifier,
            poller=self._poller, unverified_lookback_s=0,
        )
        ended = 0
        for row in report.builds:
            if row.changed and row.state in FINAL_PRINT_STATES:
                ended += 1
                self.refresh_reports(self.store.get_build(row.build_id))
        return ended

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


def _report_path(job: Job) -> Path:
    return job.source_path.with_name(job.source_path.name + REPORT_SUFFIX)


def _report_behind(job: Job) -> bool:
    """True when the report beside the job's file in done/ has another state than the job."""
    try:
        data = json.loads(_report_path(job).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # not settled yet (settling writes the state it finds), or not ours
    return isinstance(data, dict) and data.get("state") != job.state.value

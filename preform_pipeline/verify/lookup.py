"""Finding out whether an interrupted send printed, before anything is sent again.

The job store is written before every print request (``print_sending``) and after its answer
(``print_sent``). A build found in ``print_sending`` after a restart had a request under way
whose outcome is unknown: the request may never have left, may have been refused, or may have
queued a job a moment before the process died. Sending it again blindly could print it twice;
never sending it could lose it. So its **job key** is looked up first.

Why the key settles it: the key is random, unique to this build, and only ever appears in the
name this build's print was sent with (``embed_key``). Wherever a job that was accepted can
surface, the key is searched:

1. the **prints feed** (``GET /prints/?name=<key>``, from just before the send): every print a
   cloud-connected printer started or queued;
2. the **Fleet Control queues** of the account's groups (``GET /groups/{id}/queue/``): jobs
   sent to a group that wait for a free printer and are not prints yet;
3. the **target printer's status** (``GET /printers/{serial}/``): its current print, which a
   printer reports before the feed lists it.

Found anywhere: the print exists; the build is marked ``print_sent`` with the job id found,
and it is verified like any other. Not found: the answer is trusted only once a **grace
period** (:data:`DEFAULT_LOOKUP_GRACE_S`) has passed since the send started, long enough for a
printer to report a job it accepted to the Dashboard. A complete lookup after that which finds
nothing means the job was never accepted: it is safe to send again, and the build goes back to
``prepared``. A lookup that fails (the Web API is unreachable) decides nothing: the build stays
in ``print_sending`` and is looked up again later. Without Web API credentials nothing can be
looked up, and the build is never resent automatically
(:class:`~preform_pipeline.errors.PrintLookupError`).

What this cannot see: a printer that is not connected to the Dashboard (LAN-only) and kept the
job in its own local queue. If your printers may be offline from the Dashboard for long, raise
the grace period (``verify.lookup_grace_s``) or check them before retrying.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from preform_pipeline.clock import SYSTEM_CLOCK, Clock, Sleep
from preform_pipeline.cloud import WebApiClient
from preform_pipeline.errors import CloudAuthError, CloudError, StoreConflictError
from preform_pipeline.hotfolder.lookup import LookupResult, LookupStatus
from preform_pipeline.logging import get_logger
from preform_pipeline.store import Build, JobState, JobStore, extract_key
from preform_pipeline.verify.poller import DEFAULT_FEED_OVERLAP_S, describe_duration

__all__ = [
    "DEFAULT_LOOKUP_GRACE_S",
    "DEFAULT_LOOKUP_RETRY_S",
    "FoundPrint",
    "PrintLookup",
    "SettledSend",
    "WebApiBuildLookup",
    "settle_interrupted_sends",
]

log = get_logger(__name__)

#: How long after a send started a lookup that finds nothing is trusted. A printer connected
#: to the Dashboard reports a job it accepted within seconds; a minute of a slow link or a
#: busy Dashboard is covered several times over.
DEFAULT_LOOKUP_GRACE_S: Final = 300.0
#: Within the grace period, the key is looked up again this often.
DEFAULT_LOOKUP_RETRY_S: Final = 15.0

Decision = Literal["found", "not_sent", "undecided"]


@dataclass(frozen=True)
class FoundPrint:
    """Where a job key turned up: a print run, a queued job, or a printer's current print."""

    key: str
    where: str
    job_id: str | None
    printer: str | None
    status: str | None
    name: str


class PrintLookup:
    """Looks a job key up in the prints feed, the Fleet Control queues and a printer's status.

    ``find`` does one lookup (a few requests); ``wait_for`` repeats it until it finds the key
    or the grace period after the send has passed.
    """

    def __init__(
        self,
        client: WebApiClient,
        *,
        clock: Clock = SYSTEM_CLOCK,
        sleep: Sleep = time.sleep,
        grace_s: float = DEFAULT_LOOKUP_GRACE_S,
        retry_s: float = DEFAULT_LOOKUP_RETRY_S,
        overlap_s: float = DEFAULT_FEED_OVERLAP_S,
    ) -> None:
        if grace_s < 0 or retry_s <= 0 or overlap_s < 0:
            raise ValueError("grace_s and overlap_s must not be negative, retry_s must be > 0")
        self.client = client
        self.clock = clock
        self.grace_s = float(grace_s)
        self.retry_s = float(retry_s)
        self.overlap_s = float(overlap_s)
        self._sleep = sleep

    def grace_left(self, sent_at: datetime) -> float:
        """Seconds until a lookup finding nothing counts (<= 0: it counts now)."""
        return (sent_at + timedelta(seconds=self.grace_s) - self.clock.now()).total_seconds()

    def find(
        self, key: str, *, printer: str | None = None, sent_at: datetime | None = None
    ) -> FoundPrint | None:
        """One lookup of ``key`` everywhere an accepted job can surface; None if nowhere.

        Raises :class:`~preform_pipeline.errors.CloudError` when the Web API cannot be asked:
        a failed lookup must never read as "not found".
        """
        since = None if sent_at is None else sent_at - timedelta(seconds=self.overlap_s)
        for run in self.client.iter_prints(name=key, date__gt=since):
            if extract_key(run.name) == key:
                return self._found(
                    FoundPrint(key, "prints feed", run.print_job or run.guid or None,
                               run.printer or None, run.status or None, run.name)
                )
        for group in self.client.list_groups():
            if group.has_fleet_control is False:
                continue
            try:
                queue = self.client.list_group_queue(group.id)
            except CloudError as exc:
                if exc.status_code == 404:
                    continue  # the group went away (or has no queue) since it was listed
                raise
            for item in queue:
                if extract_key(item.name) == key:
                    return self._found(
                        FoundPrint(key, f"the Fleet Control queue of {group.name or group.id}",
                                   item.id or None, None, "QUEUED", item.name)
                    )
        if printer:
            try:
                status = self.client.get_printer(printer)
            except CloudError as exc:
                if exc.status_code != 404:
                    raise
                status = None  # an IP address or a group id is not a printer serial
            current = status.current_print if status is not None else None
            if current is not None and extract_key(current.name) == key:
                return self._found(
                    FoundPrint(key, f"the status of printer {printer}",
                               current.print_job or current.guid or None, printer,
                               current.status or None, current.name)
                )
        log.info("print_lookup_not_found", job_key=key, printer=printer)
        return None

    def wait_for(
        self,
        key: str,
        *,
        sent_at: datetime,
        printer: str | None = None,
        stop: threading.Event | None = None,
    ) -> FoundPrint | None:
        """Look ``key`` up until found, or until a lookup after the grace period finds nothing.

        None means: not sent, safe to send again. A lookup that fails is retried within the
        grace period; one that fails after it raises (nothing was decided). ``stop`` ends the
        wait early with :class:`InterruptedError`.
        """
        while True:
            # Only a lookup that *started* after the grace period may conclude "not sent".
            conclusive = self.grace_left(sent_at) <= 0
            try:
                found = self.find(key, printer=printer, sent_at=sent_at)
            except CloudAuthError:
                raise
            except CloudError as exc:
                if conclusive:
                    raise
                log.warning("print_lookup_failed", job_key=key, error=str(exc))
                found = None
            else:
                if found is not None or conclusive:
                    return found
            if stop is not None and stop.is_set():
                raise InterruptedError(f"lookup of {key} stopped")
            wait = min(self.retry_s, max(self.grace_left(sent_at), 0.0)) or self.retry_s
            log.info("print_lookup_waiting", job_key=key, grace_left_s=round(wait, 1))
            self._sleep(wait)

    @staticmethod
    def _found(found: FoundPrint) -> FoundPrint:
        log.info(
            "print_lookup_found",
            job_key=found.key,
            where=found.where,
            job_id=found.job_id,
            printer=found.printer,
            status=found.status,
        )
        return found


@dataclass(frozen=True)
class SettledSend:
    """What became of one build found in ``print_sending`` after a restart."""

    build: Build
    decision: Decision
    reason: str
    found: FoundPrint | None = None


def settle_interrupted_sends(
    store: JobStore,
    lookup: PrintLookup | None,
    *,
    wait: bool = False,
    stop: threading.Event | None = None,
) -> list[SettledSend]:
    """Decide every build left in ``print_sending``: found → ``print_sent``; not found after
    the grace period → ``prepared`` (safe to send again); otherwise left as it is.

    Run this first on start, before anything is sent. ``wait`` blocks (up to the grace period)
    for builds whose send is too recent to decide. Without a ``lookup`` (no Web API
    credentials) nothing is decided. Lookup failures are logged and leave the build as it is.
    """
    settled: list[SettledSend] = []
    for build in _sending(store.interrupted_builds()):
        if lookup is None:
            settled.append(SettledSend(build, "undecided", "no Web API credentials to look it up"))
            continue
        sent_at = build.print_sent_at or build.updated_at
        conclusive = lookup.grace_left(sent_at) <= 0
        try:
            if wait:
                conclusive = True  # wait_for returns None only after a conclusive lookup
                found = lookup.wait_for(build.job_key, sent_at=sent_at, printer=build.printer,
                                        stop=stop)
            else:
                found = lookup.find(build.job_key, printer=build.printer, sent_at=sent_at)
        except CloudAuthError:
            raise
        except (CloudError, InterruptedError) as exc:
            log.warning("interrupted_send_undecided", build=build.id, job_key=build.job_key,
                        error=str(exc))
            settled.append(SettledSend(build, "undecided", f"lookup failed: {exc}"))
            continue
        try:
            settled.append(_decide(store, lookup, build, found, conclusive=conclusive))
        except StoreConflictError as exc:
            log.info("interrupted_send_moved", build=build.id, error=str(exc))
    return settled


def _decide(
    store: JobStore,
    lookup: PrintLookup,
    build: Build,
    found: FoundPrint | None,
    *,
    conclusive: bool,
) -> SettledSend:
    if found is not None:
        reason = f"found in {found.where} after an interrupted send; not sent again"
        moved = store.transition_build(
            build.id,
            JobState.PRINT_SENT,
            reason,
            expect=JobState.PRINT_SENDING,
            print_job_id=found.job_id,
            printer=found.printer or build.printer,
        )
        log.info("interrupted_send_found", build=build.id, job_key=build.job_key,
                 where=found.where, job_id=found.job_id)
        return SettledSend(moved, "found", reason, found)
    if not conclusive:
        reason = (
            f"not found yet; decided {describe_duration(lookup.grace_s)} after the send "
            f"at the earliest"
        )
        return SettledSend(build, "undecided", reason)
    reason = (
        f"not in the prints feed, a Fleet Control queue or the printer's status "
        f"{describe_duration(lookup.grace_s)} after the interrupted send: safe to send again"
    )
    moved = store.transition_build(
        build.id, JobState.PREPARED, reason, expect=JobState.PRINT_SENDING
    )
    log.info("interrupted_send_not_sent", build=build.id, job_key=build.job_key)
    return SettledSend(moved, "not_sent", reason)


def _sending(builds: Sequence[Build]) -> list[Build]:
    return [b for b in builds if b.state is JobState.PRINT_SENDING]


class WebApiBuildLookup:
    """:class:`PrintLookup` in the shape the hot-folder daemon plugs in
    (``HotFolderDaemon(print_lookup=...)``, protocol ``hotfolder.lookup.PrintLookup``).

    ``found`` / ``not_found`` as :meth:`PrintLookup.find` says; a Web API that cannot be asked
    is ``unknown`` (nothing decided). ``settle_s`` is the lookup's grace period.
    """

    def __init__(self, lookup: PrintLookup) -> None:
        self.lookup = lookup
        self.settle_s = lookup.grace_s

    def find(self, build: Build) -> LookupResult:
        try:
            found = self.lookup.find(
                build.job_key, printer=build.printer, sent_at=build.print_sent_at
            )
        except CloudError as exc:
            return LookupResult(LookupStatus.UNKNOWN, f"the Web API could not be asked: {exc}")
        if found is None:
            return LookupResult(
                LookupStatus.NOT_FOUND,
                f"{build.job_key} is not in the prints feed, a Fleet Control queue or the "
                "printer's status",
            )
        return LookupResult(
            LookupStatus.FOUND,
            f"{build.job_key} found in {found.where} ({found.status or 'status unknown'})",
            job_id=found.job_id,
            printer=found.printer,
        )

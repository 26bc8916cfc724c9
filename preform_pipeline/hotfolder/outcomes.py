"""Settling outcome folders: a job's file goes to done/ or failed/ as its state says.

A finished job's file moves to ``done/`` beside a JSON report, a failed (or cancelled, skipped,
unverified) one to ``failed/`` beside a ``.error.txt`` note saying what happened, where, and
what to do. Settling is idempotent and serialised by :attr:`OutcomeFolders.lock`: the worker
settles the builds it ran, the loop sweeps ``processing/`` for jobs whose outcome was decided
elsewhere (``jobs cancel``, a restart), and the two must not race for one file.

A build whose files a full disk kept in processing/ (its report or note refused for want of
room) is settled again with its run's outcome at the loop's first look that finds room on
that disk (:meth:`OutcomeFolders.settle_where_room`), not at the periodic sweep: a person
who frees space sees the files move within about a second, and the note still knows what
the run knew. The disk is looked at (no write tried) at most once a second while it stays
full; a try refused again for want of room (a used-up quota, or a write larger than the
room left, which the look cannot see) is followed by a longer wait before the next: 2 s
doubling to a minute. Both are :mod:`~preform_pipeline.diskspace`'s rule, the JSON log's
too; the loop sleeps no longer than until the next look or try is due
(:meth:`OutcomeFolders.room_due_in`).
"""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.diskspace import ROOM_LOOK_EVERY_S, disk_is_full, room_retry_in
from preform_pipeline.errors import (
    FileWriteError,
    StoreConflictError,
    StoreError,
    full_disk_advice,
    refused_by_a_full_disk,
)
from preform_pipeline.executor import BuildOutcome
from preform_pipeline.hotfolder.decisions import approval_line
from preform_pipeline.hotfolder.files import (
    JOB_REPORT_FORMAT,
    MAX_NAME_BYTES,
    error_note,
    fitting_rel,
)
from preform_pipeline.hotfolder.intake import (
    OUTCOME_DONE_STATES,
    OUTCOME_FAILED_STATES,
    Intake,
    JobPlace,
    place_of,
    template_fields,
)
from preform_pipeline.hotfolder.stability import is_ignored_name
from preform_pipeline.logging import get_logger
from preform_pipeline.printing.approval import REJECTED
from preform_pipeline.report import build_to_dict
from preform_pipeline.settings import HotFolderSettings
from preform_pipeline.settings.hotfolder import InboxSettings
from preform_pipeline.store import Build, Job, JobState, JobStore
from preform_pipeline.store.fields import HOTFOLDER_FIELD

__all__ = ["ActiveBuilds", "OutcomeFolders"]

log = get_logger(__name__)

_REPORT_FORMAT: Final = JOB_REPORT_FORMAT

#: Holds a build's outcome's place while one of its jobs' reports is encoded. Every report of a
#: build quotes the whole outcome (each of its n models, several times), and the indented
#: encoder is pure Python: encoded per report, a build of n files cost n x n (250 files: a
#: quarter of a second of CPU). Encoded once per build and put in this place instead. No name,
#: field or path a user gives can hold it: random per process, with NULs (as ``\u0000``).
_OUTCOME_SLOT: Final = f"\x00outcome {uuid.uuid4().hex}\x00"
_OUTCOME_SLOT_JSON: Final = json.dumps(_OUTCOME_SLOT)


class ActiveBuilds:
    """Store builds of the batches being run: their worker settles their files itself."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: set[int] = set()

    def __contains__(self, build_id: object) -> bool:
        with self._lock:
            return build_id in self._ids

    def add(self, build_id: int) -> None:
        with self._lock:
            self._ids.add(build_id)

    def discard(self, build_ids: Iterable[int]) -> None:
        with self._lock:
            self._ids.difference_update(build_ids)

    def grace_left(self, build_id: int) -> float | None:
        """Seconds until the sweep may settle ``build_id``'s files, when it leaves them only
        because they were moved moments ago; None: not so (an only daemon never does)."""
        return None


def _as_dropped(reason: str, working: Path) -> str:
    """``reason`` with each file in a job's folder under processing/ named by its name there:
    ``…/processing/PP-…/upper.stl`` → ``upper.stl``. A reader's reason names the working path,
    which the file leaves for failed/ at once (and a case's other files' reasons quote it):
    the job's reason and note named a folder gone. Where it is now is the job's record."""
    sep = re.escape(os.sep)
    return re.sub(re.escape(str(working)) + sep + f"[^{sep}]+" + sep, "", reason)


@dataclass(frozen=True)
class _WaitingForRoom:
    """A build whose files a full disk kept in processing/: what settling it again needs."""

    build_id: int
    #: The folder whose disk refused the write: looked at before each try.
    folder: Path
    outcome: BuildOutcome | None
    report_path: Path | None
    #: Tries refused for want of room since it began to wait (each doubles the wait before
    #: the next try; a look that finds the disk full does not).
    refused: int = 0
    #: The monotonic time before which it is neither looked at nor tried again.
    not_before: float = 0.0


def _refused_in(error: OSError) -> Path | None:
    """The folder a write was refused in for want of room; None: refused otherwise, or
    the error does not say where (the periodic sweep settles those files)."""
    if not refused_by_a_full_disk(error):
        return None
    if isinstance(error, FileWriteError):
        return error.path.parent
    return Path(error.filename).parent if isinstance(error.filename, str) else None


class OutcomeFolders:
    """Moves jobs' files into the outcome folders, with reports and notes (module docstring)."""

    def __init__(
        self,
        store: JobStore,
        intake: Intake,
        hot: HotFolderSettings,
        *,
        dry_run: bool = False,
        active: ActiveBuilds | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.store = store
        self.clock = clock
        self.intake = intake
        self.hot = hot
        self.dry_run = dry_run
        self.active = active if active is not None else ActiveBuilds()
        #: Held while a job's outcome is decided and its file moved.
        self.lock = threading.RLock()
        #: The last outcome a report quoted, and its text (:meth:`_outcome_json`). Under lock.
        self._quoted: tuple[BuildOutcome, str] | None = None
        #: The daemon's console: a rejected build is said once, when its files are settled.
        self.say: Callable[[str], None] = lambda line: None
        self._rejected_said: set[int] = set()
        #: Builds whose files wait for room on a full disk, by id; under their own lock,
        #: not :attr:`lock`: the loop asks on every pass, and must not wait behind a
        #: worker's settle for it.
        self._waiting_lock = threading.Lock()
        self._waiting: dict[int, _WaitingForRoom] = {}

    def settle_processing_folders(self) -> set[int]:
        """Files in processing/ whose jobs are over go to done/ or failed/; strays too.
        Returns the builds whose over jobs' files it left there (:attr:`active`). The files
        of a build waiting for room are left to :meth:`settle_where_room`: it holds the
        run's outcome, which a report written here would lack."""
        left: set[int] = set()
        for inbox in self.hot.inboxes:
            folder = inbox.folder("processing")
            if not folder.is_dir():
                continue
            for entry in sorted(folder.iterdir()):
                if not entry.is_dir() or is_ignored_name(entry.name):
                    continue
                job = self.store.find_by_key(entry.name)
                if job is None:
                    self._stray(inbox, entry)
                    continue
                over = job.state in OUTCOME_DONE_STATES or job.state in OUTCOME_FAILED_STATES
                if job.build_id is not None and job.build_id in self.active:
                    if over:
                        left.add(job.build_id)
                elif over and not self._waits_for_room(job.build_id):
                    self.settle_job(job.id)
        return left

    def _waits_for_room(self, build_id: int | None) -> bool:
        with self._waiting_lock:
            return build_id in self._waiting

    def _stray(self, inbox: InboxSettings, folder: Path) -> None:
        """Files in processing/ that no job claims (a store replaced or reset): failed/."""
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            rel = path.relative_to(folder).as_posix()
            job = self.store.create_job(
                recipe="(unknown)", source_path=path,
                fields={HOTFOLDER_FIELD: JobPlace(inbox.path, rel).to_json()},
                state=JobState.QUEUED, reason="found in processing/ without a job",
            )
            job = self.store.transition(job.id, JobState.FAILED,
                                        "found in processing/ without a job record")
            note = error_note(
                what="this file was in processing/ but the job store has no job for it "
                f"(folder {folder.name}); it may or may not have been printed",
                where="starting the hot folder", file=str(path), job=job,
                todo="check whether it printed (Dashboard, printer history); if not, drop it "
                "into the inbox again",
                jobs=self.intake.jobs,
            )
            with self.lock:
                self.intake.settle(job, ok=False, note=note)

    def settle_build(
        self, build: Build, outcome: BuildOutcome | None, report_path: Path | None = None
    ) -> None:
        """Settle every job of ``build``. A write refused for want of room (OSError, raised
        on) leaves the build waiting for room (:meth:`settle_where_room`)."""
        try:
            for job in self.store.list_jobs(build_id=build.id):
                self.settle_job(job.id, build=build, outcome=outcome, report_path=report_path)
        except OSError as exc:
            folder = _refused_in(exc)
            if folder is not None:
                with self._waiting_lock:
                    self._waiting[build.id] = _WaitingForRoom(build.id, folder, outcome,
                                                              report_path)
            raise

    def room_due_in(self) -> float | None:
        """Seconds until the first build whose files wait for room is due to be looked at
        again (0: now); None: none waits. The loop sleeps no longer than this."""
        with self._waiting_lock:
            due = min((w.not_before for w in self._waiting.values()), default=None)
        return None if due is None else max(0.0, due - self.clock.monotonic())

    def settle_where_room(self) -> None:
        """Settle the builds whose files wait for room, each once its wait is over and its
        disk has room again (:func:`~preform_pipeline.diskspace.disk_is_full`: one look at
        the free space and files, no write tried on a disk still full; module docstring).
        The loop's, on every pass: a build not yet due costs nothing."""
        with self._waiting_lock:
            todo = list(self._waiting.values())
        now = self.clock.monotonic()
        for waiting in todo:
            if now < waiting.not_before:
                continue
            if disk_is_full(waiting.folder):
                log.debug("build_files_wait_for_room", build_id=waiting.build_id,
                          folder=str(waiting.folder), retry_in_s=self._look_later(waiting, now))
                continue
            with self._waiting_lock:
                self._waiting.pop(waiting.build_id, None)
            try:
                build = self.store.get_build(waiting.build_id)
                # Refused again for want of room (freed, then filled at once; or room the
                # look cannot see, a quota): waiting again, and longer.
                self.settle_build(build, waiting.outcome, waiting.report_path)
            except (StoreError, OSError) as exc:
                log.debug("build_files_still_unsettled", build_id=waiting.build_id,
                          error=str(exc), retry_in_s=self._wait_again(waiting, exc, now))
                continue
            log.info("build_files_settled", build_id=waiting.build_id, build=build.job_key,
                     folder=str(waiting.folder))

    def _wait_again(self, waiting: _WaitingForRoom, exc: Exception, now: float) -> float | None:
        """After a try to settle ``waiting`` failed with ``exc``: the seconds until its next
        try. The store away: the next look's wait, not counted as a refusal (the disk did
        not refuse; a wait of none would have the loop spin while the store is away).
        Refused for want of room again (:meth:`settle_build` made it wait anew): a wait
        doubled at each refusal. None: it waits no more (refused otherwise: the periodic
        sweep settles its files)."""
        if isinstance(exc, StoreError) and exc.outage:
            with self._waiting_lock:
                self._waiting.setdefault(waiting.build_id, waiting)
            return self._look_later(waiting, now)
        return self._wait(waiting, now, room_retry_in(waiting.refused), waiting.refused + 1)

    def _look_later(self, waiting: _WaitingForRoom, now: float) -> float | None:
        """``waiting``'s disk is still full, or the store away: looked at again a second on,
        its count of refusals kept (module docstring)."""
        return self._wait(waiting, now, ROOM_LOOK_EVERY_S, waiting.refused)

    def _wait(self, waiting: _WaitingForRoom, now: float, wait_s: float,
              refused: int) -> float | None:
        """``waiting`` next looked at ``wait_s`` from ``now``, with ``refused`` refusals;
        ``wait_s``. None: it no longer waits for room."""
        with self._waiting_lock:
            again = self._waiting.get(waiting.build_id)
            if again is None:
                return None
            self._waiting[waiting.build_id] = replace(again, refused=refused,
                                                      not_before=now + wait_s)
            return wait_s

    def as_dropped(self, reason: str, jobs: Iterable[Job]) -> str:
        """``reason`` naming no working path: each of ``jobs``' files as it was dropped
        (``C-500/cut.stl``), any other file in a job's folder under an inbox's processing/ by
        its name (:func:`_as_dropped`). Every failure reason that can quote a file goes through
        here before it is recorded: a reader's, a build's from the server, a model's dropped
        by the runner, a crashed batch's. The file leaves processing/ when it is settled, and
        the reason, its note and the dashboard named a folder gone."""
        folders = {inbox.folder("processing") for inbox in self.intake.inboxes.values()}
        for job in jobs:
            place = place_of(job)
            if place is not None:
                reason = reason.replace(str(job.source_path), place.rel)
                folders.add(self.intake.inbox_of(place).folder("processing"))
        for folder in sorted(folders):
            reason = _as_dropped(reason, folder)
        return reason

    def fail_job(self, job: Job, reason: str, todo: str, *,
                  where: str = "preparing the batch") -> None:
        reason = self.as_dropped(reason, [job])
        try:
            job = self.store.transition(job.id, JobState.FAILED, reason,
                                        expect=JobState.PROCESSING)
        except StoreConflictError:
            job = self.store.get_job(job.id)
        self.settle_job(job.id, reason=reason, todo=todo, where=where)

    def settle_job(
        self,
        job_id: int,
        *,
        build: Build | None = None,
        outcome: BuildOutcome | None = None,
        report_path: Path | None = None,
        reason: str | None = None,
        todo: str | None = None,
        where: str | None = None,
    ) -> None:
        """Move one job's file to done/ or failed/ as its state says (idempotent)."""
        with self.lock:
            job = self.store.get_job(job_id)
            if job.state in OUTCOME_DONE_STATES:
                ok = True
            elif job.state in OUTCOME_FAILED_STATES:
                ok = False
            else:
                return
            if job.build_id is not None:
                # Read again: verification may have moved the build on since the caller's read.
                build = self.store.get_build(job.build_id)
            if ok:
                text = self._report_text(job, build, outcome, report_path)
                self.intake.settle(job, ok=True, report=text)
            else:
                note = self._error_text(job, build, outcome, reason, todo, where)
                self.intake.settle(job, ok=False, note=note)
                self._say_rejected(build)

    def _say_rejected(self, build: Build | None) -> None:
        """One console line for a build an operator rejected, at its first job settled (the
        sweep settles its jobs one by one). Under :attr:`lock`."""
        if build is None or build.id in self._rejected_said:
            return
        if (build.approval or {}).get("decision") != REJECTED:
            return
        line = approval_line(build)
        if line is not None:
            self._rejected_said.add(build.id)
            self.say(line)

    def _report_text(
        self,
        job: Job,
        build: Build | None,
        outcome: BuildOutcome | None,
        report_path: Path | None,
    ) -> str:
        place = place_of(job)
        data: dict[str, Any] = {
            "format": _REPORT_FORMAT,
            "job_key": job.job_key,
            "recipe": job.recipe,
            "state": job.state.value,
            "file": job.original_name,
            "dropped_as": place.rel if place else None,
            "case_id": job.case_id,
            "priority": job.priority,
            "fields": template_fields(job),
            "content_hash": job.content_hash,
            "duplicate_of": place.duplicate_of if place else None,
            "dry_run": self.dry_run,
        }
        if build is not None:
            data["build"] = {
                "job_key": build.job_key,
                "state": build.state.value,
                "print_job_id": build.print_job_id,
                "printer": build.printer,
                "job_name": build.job_name,
                "print_sent_at": build.print_sent_at.isoformat() if build.print_sent_at
                else None,
            }
            if build.verified_status is not None:
                # Verified before its files were settled (a print that ended at once).
                data["verification"] = {"status": build.verified_status,
                                        "message": build.verified_message,
                                        "printer": build.printer}
        if outcome is not None:
            data["outcome"] = _OUTCOME_SLOT
            # The files as written (a taken name got a -2 suffix): never the template's guess.
            data["files_written"] = [str(p) for p in outcome.outputs]
        elif build is not None and build.form_path is not None:
            data["files_written"] = [str(build.form_path)]
        if report_path is not None:
            data["run_report"] = str(report_path)
        cut = _name_cut(job)
        if cut is not None:
            data["name_cut"] = cut
        text = json.dumps(data, indent=2, default=str)
        if outcome is not None:
            text = text.replace(_OUTCOME_SLOT_JSON, self._outcome_json(outcome), 1)
        return text + "\n"

    def _outcome_json(self, outcome: BuildOutcome) -> str:
        """``outcome`` as a report quotes it, one level in: the text :func:`json.dumps` gives
        it nested in a report, encoded once for all the reports of its build (``_OUTCOME_SLOT``).
        Under :attr:`lock`, which :meth:`settle_job` holds."""
        if self._quoted is None or self._quoted[0] is not outcome:
            text = json.dumps(build_to_dict(outcome), indent=2, default=str)
            # JSON holds no raw line break inside a string: each one starts a line to indent.
            self._quoted = (outcome, text.replace("\n", "\n  "))
        return self._quoted[1]

    def _error_text(
        self,
        job: Job,
        build: Build | None,
        outcome: BuildOutcome | None,
        reason: str | None,
        todo: str | None,
        where: str | None,
    ) -> str:
        what = reason or (outcome.reason if outcome and outcome.reason else job.reason)
        details: list[str] = []
        if job.state is JobState.UNVERIFIED and build is not None:
            target = build.printer or "the printer"
            where = where or f"sending the print with job key {build.job_key} to {target}"
            todo = todo or (
                f"check {target} (its queue, or Formlabs Dashboard) for a job named "
                f"{build.job_name or build.job_key!r}. If it is there, nothing to do. If it "
                f"is not, print it again: {self.intake.jobs} retry {job.job_key}"
            )
        elif job.state is JobState.CANCELLED:
            where = where or f"cancelled by a user ({self.intake.jobs} cancel)"
            todo = todo or f"nothing; to prepare it after all: {self.intake.jobs} retry " \
                           f"{job.job_key}"
        elif build is not None and (build.approval or {}).get("decision") == "rejected":
            # An operator looked at the build's screenshot and said no (docs/web.md).
            where = where or f"approval of build {build.job_key} (its screenshot was rejected)"
            todo = todo or ("fix what the reason names, then drop the file again or run: "
                            f"{self.intake.jobs} retry {job.job_key}")
        elif build is not None:
            server = f" on {outcome.server}" if outcome and outcome.server else ""
            where = where or f"preparing build {build.job_key}{server}"
            # A write a full disk refused (the runner tells it by kind: executor/runner.py)
            # is no fault of the model, the recipe or the settings: the space is what a
            # person fixes. Never told by the reason's words: a translation, or a path
            # holding "No space", would mislead it. Read from the store, where the worker
            # recorded it with the failure: after a restart the run's outcome is gone.
            full = build.full_disk
            fix = (full_disk_advice(full) if full is not None else
                   "read the reason above: fix what it names (the model, the recipe or the "
                   "settings)")
            todo = todo or (
                f"{fix}, then drop the file again or run: {self.intake.jobs} retry "
                f"{job.job_key}"
            )
            if outcome is not None and outcome.steps_done:
                details.append(f"Steps done: {', '.join(outcome.steps_done)}")
        cut = _name_cut(job)
        if cut is not None:
            details.append(f"Name: {cut}")
        return error_note(
            what=what,
            where=where or "the hot folder",
            todo=todo or f"fix the cause, then: {self.intake.jobs} retry {job.job_key}",
            file=job.original_name,
            job=job,
            details=details,
            jobs=self.intake.jobs,
        )


def _name_cut(job: Job) -> str | None:
    """Why the file beside this report or note has a shorter name than the one it was dropped
    with, which the report's ``file`` and the note's ``File:`` still give
    (:func:`~.files.fitting_rel`); None when it has its own."""
    place = place_of(job)
    if place is None or fitting_rel(place.rel) == place.rel:
        return None
    return (f"a name in its path is over the {MAX_NAME_BYTES} bytes a name may have (it "
            "was taken before such names were left in the inbox), so the file is kept here "
            "under a shorter name ending in '~'")

"""Taking files: store first, then move; and every later move of a job's file.

Taking one complete model file (:meth:`Intake.take`)::

    hash it ─► create the job (QUEUED) ─► duplicate? ─► transition QUEUED → PROCESSING with
               (or find the one a crash      │ skip       source_path = processing/<key>/<name>
                left behind: same path)      ▼            (durable) ─► os.replace into it
                                     DUPLICATE_SKIPPED, to failed/

Every move of a job's file follows one rule: **the store says where the file is going before
it goes**. The job's ``source_path`` is set to the destination and its previous place is kept
in the job's ``_hotfolder`` field in the same write; then the file moves. After a crash a job
whose ``source_path`` does not exist yet has its file at the recorded previous place, and
:meth:`Intake.finish_move` completes the move. A move into done/ or failed/ is recorded as
made once the file is there (``JobPlace.moved``): a file at its previous place in the inbox
is then one a user put back to drop it again (a new drop), not a move to finish; one whose
move was never recorded as made is moved on when it is taken again (a farm node that died
between the two writes, or a move that failed), instead of becoming a second job; and so is
one whose job was decided before its move began (:meth:`Intake._finish_decided`: one rule
for every decided file met in the inbox). A move to another disk cut between its rename and
the source's removal leaves the file in both places (a model, a sidecar, a link): the source
goes once the copy is found whole (same size and content hash; a link's same target). Two
that differ are both kept, the newer set aside under a free name (:meth:`Intake._finish_both`);
one in the inbox is then a new drop. So is a take's into a processing/ on another disk: the
copy in processing/ goes on, and the inbox file goes when it is the same file and was not put
there since (:meth:`Intake._finish_taken`), never becoming a false duplicate. Files in
``processing/`` sit in a folder named by the job key, so each one maps to its job even if the
store write that named its next place never happened.

A dropped folder is one case: its model files are taken together (one batch item, so one
build when they fit), with the folder name as case id unless a sidecar gives one. A sidecar
that cannot be used rejects the whole case to ``failed/`` with the reason; so do files that
are not models. Sidecars travel with their model (``attachments``). Notes of ours that a case
moved back from failed/ or done/ brings along are removed, not taken
(:meth:`Intake._without_own_notes`).

Once a case's files are all taken, its emptied folder is removed. Each job of a case records
which folder it came from (:class:`CaseFolder`: its place, device and inode), so a folder a
crash left empty between the last move and the removal is recognised after a restart
(:meth:`Intake.emptied_case`), while a folder of the same name the user made since is not. So
is a folder every part of which was set aside (:mod:`.caseholds`): its case is in failed/.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from preform_pipeline.errors import SidecarError, StoreConflictError, StoreError
from preform_pipeline.geometry.bounded import TOO_LARGE_HINT, permission_refusal, stat_oversize
from preform_pipeline.hotfolder.caseholds import forget_holds, held_parts
from preform_pipeline.hotfolder.files import (
    ERROR_SUFFIX,
    HELD_TODO,
    JOBS_COMMAND,
    MAX_NAME_BYTES,
    REPORT_SUFFIX,
    error_note,
    fitting_rel,
    free_path,
    is_own_note,
    move_file,
    prune_empty_tree,
    remove_empty_dirs,
    taken_names,
    withdraw_note,
    write_note,
)
from preform_pipeline.hotfolder.mounts import on_two_mounts
from preform_pipeline.hotfolder.sidecar import (
    SIDECAR_SUFFIX_ORDER,
    SidecarValues,
    folder_values,
    model_values,
)
from preform_pipeline.hotfolder.stability import FileKind, is_ignored_name, kind_of
from preform_pipeline.logging import get_logger
from preform_pipeline.plan.advice import IMPORTED, by_name
from preform_pipeline.plan.held import CaseOf, held_with_cases
from preform_pipeline.plan.parts import is_part
from preform_pipeline.plan.rejection import Rejection, advised
from preform_pipeline.settings.hotfolder import DuplicatePolicy, InboxSettings
from preform_pipeline.store import DUPLICATE_STATES, Job, JobState, JobStore
from preform_pipeline.store.content import content_hash
from preform_pipeline.store.fields import HOTFOLDER_FIELD
from preform_pipeline.wording import name_text

__all__ = [
    "DEFAULT_RECENT_TAKES",
    "DUPLICATE_STATES",
    "HELD_EMPTIED",
    "HOTFOLDER_FIELD",
    "OUTCOME_DONE_STATES",
    "OUTCOME_FAILED_STATES",
    "CaseFolder",
    "Drop",
    "Intake",
    "JobPlace",
    "TakeResult",
    "content_hash",
    "place_of",
    "watcher_takes",
    "template_fields",
]

log = get_logger(__name__)


#: How many of the newest jobs are looked through for the case folder an empty folder was:
#: a crash can only have cut short the removal after the last few takes.
DEFAULT_RECENT_TAKES: Final = 500

#: Why a case folder emptied by setting its parts aside is removed, and its holds forgotten.
HELD_EMPTIED: Final = ("every part of it was set aside to failed/, where its case is held "
                       "whole: files put in its folder later are a new case")

#: Where a job's file ends, by state: done/ ...
OUTCOME_DONE_STATES: Final = frozenset(
    {
        JobState.DONE,
        JobState.PRINT_SENT,
        JobState.VERIFYING,
        JobState.FINISHED,
        JobState.ABORTED,
        JobState.PRINT_ERROR,
    }
)
#: ... or failed/.
OUTCOME_FAILED_STATES: Final = frozenset(
    {
        JobState.FAILED,
        JobState.UNVERIFIED,
        JobState.CANCELLED,
        JobState.DUPLICATE_SKIPPED,
    }
)


@dataclass(frozen=True)
class Attachment:
    """A file that travels with a job's model file (its sidecar)."""

    rel: str
    at: str
    previous: str | None = None


@dataclass(frozen=True)
class CaseFolder:
    """The dropped case folder a job's file was taken from: ``rel`` to the inbox, and which
    folder it was (a folder made later under the same name has another inode)."""

    rel: str
    device: int
    inode: int

    @classmethod
    def of(cls, root: Path, inbox: Path, *, strict: bool = False) -> CaseFolder | None:
        """``root`` as it is now; None when it cannot be told apart from a later folder of
        the same name (gone, or a file system without inode numbers). ``strict``: another
        error looking at it raises :class:`OSError` (it is not known gone)."""
        identity = _folder_identity(root, strict=strict)
        if identity is None:
            return None
        return cls(root.relative_to(inbox).as_posix(), *identity)

    def is_folder(self, identity: tuple[int, int] | None) -> bool:
        """Whether a folder at its path, of ``identity`` (``_folder_identity`` now), is this
        very one: by its inode. Its device number is the machine's own for its mount: a
        shared inbox (NFS, SMB) has another on each farm node, so it is not compared."""
        return identity is not None and identity[1] == self.inode


def _folder_identity(folder: Path, *, strict: bool = False) -> tuple[int, int] | None:
    """``(device, inode)`` of a folder; None when gone, not a folder, or without an inode.
    ``strict``: an error other than its absence (a share away for a moment, a permission)
    raises :class:`OSError` instead, as it does not show the folder gone."""
    try:
        info = os.lstat(folder)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        if strict:
            raise
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_ino == 0:
        return None
    return info.st_dev, info.st_ino


@dataclass(frozen=True)
class JobPlace:
    """The hot folder's bookkeeping of one job (stored in its ``_hotfolder`` field).

    ``rel`` is the file's path relative to the inbox as dropped (``C-1042/upper.stl``); the
    outcome folders mirror it. ``previous`` is where the file was before its last (possibly
    unfinished) move. ``inbox`` and ``rel`` are read in SQL too: a farm node finds a job's
    inbox claims from them (``_JOB_PATHS`` in store/leases.py), so their form is shared.
    """

    inbox: Path
    rel: str
    previous: Path | None = None
    attachments: tuple[Attachment, ...] = ()
    duplicate_of: str | None = None
    #: The case folder the file was dropped in (None: dropped alone, or taken before the
    #: folder was recorded).
    case: CaseFolder | None = None
    #: For a move into done/ or failed/: False from the write that names the place there
    #: until the file is there, then True. None: not recorded (a move into processing/, or
    #: a record older than the flag).
    moved: bool | None = None
    #: The content hash the drop's inbox claim was made under (a farm node's: ``drop_hash``
    #: in hotfolder/nodes.py; for a case, one hash over its files then), so the job's own
    #: claim on its case folder is that one, not any claim on the same path: a later case of
    #: the same name, or another node's claim on the rest of this one, is another's (read in
    #: SQL, ``_OWN_CLAIM`` in store/leases.py). None: a single daemon's, or taken before it
    #: was recorded.
    claim: str | None = None

    def to_json(self) -> dict[str, Any]:
        case = self.case
        return {
            "inbox": str(self.inbox),
            "rel": self.rel,
            "previous": str(self.previous) if self.previous is not None else None,
            "attachments": [
                {"rel": a.rel, "at": a.at, "previous": a.previous} for a in self.attachments
            ],
            "duplicate_of": self.duplicate_of,
            "case": {"rel": case.rel, "device": case.device, "inode": case.inode}
            if case is not None else None,
            "moved": self.moved,
            "claim": self.claim,
        }

    @property
    def dropped_at(self) -> Path:
        """Where the file was dropped: its inbox and its path in it, as its user knows it."""
        return self.inbox / self.rel


def place_of(job: Job) -> JobPlace | None:
    raw = job.fields.get(HOTFOLDER_FIELD)
    if not isinstance(raw, Mapping) or "inbox" not in raw or "rel" not in raw:
        return None
    previous = raw.get("previous")
    moved = raw.get("moved")
    claim = raw.get("claim")
    return JobPlace(
        inbox=Path(str(raw["inbox"])),
        rel=str(raw["rel"]),
        previous=Path(str(previous)) if previous else None,
        attachments=tuple(
            Attachment(str(a["rel"]), str(a["at"]), a.get("previous"))
            for a in raw.get("attachments") or ()
            if isinstance(a, Mapping)
        ),
        duplicate_of=raw.get("duplicate_of"),
        case=_case_folder(raw.get("case")),
        moved=moved if isinstance(moved, bool) else None,
        claim=claim if isinstance(claim, str) else None,
    )


def watcher_takes(inboxes: Collection[str], job: Job) -> bool:
    """Whether a farm node watching ``inboxes`` (each as its settings name it, the form a
    job's place records: ``str(JobPlace.inbox)``) takes ``job`` up when nobody works on it: a
    retried job, or one a gone node took and left unbatched. Only a job of one of its inboxes:
    a node that does not mount the inbox fails it "its file is gone" (or moves its claim to
    itself and leaves it) although the node watching it could run it. A job of no recorded
    place (a ``run``'s) is not the hot folder's to judge. A node that records no inboxes (one
    that registered before PostgreSQL schema version 9 and still runs beside the migrated
    store) takes any job: its code has no such rule."""
    place = place_of(job)
    return not inboxes or place is None or str(place.inbox) in inboxes


def _case_folder(raw: object) -> CaseFolder | None:
    if not isinstance(raw, Mapping):
        return None
    try:
        return CaseFolder(str(raw["rel"]), int(raw["device"]), int(raw["inode"]))
    except (KeyError, TypeError, ValueError):
        return None


def template_fields(job: Job) -> dict[str, str]:
    """The job's sidecar values for templates (the bookkeeping field left out)."""
    return {
        k: str(v) for k, v in job.fields.items() if k != HOTFOLDER_FIELD and v is not None
    }


def _with_place(job: Job, place: JobPlace) -> dict[str, Any]:
    values: dict[str, Any] = {
        k: v for k, v in job.fields.items() if k != HOTFOLDER_FIELD
    }
    values[HOTFOLDER_FIELD] = place.to_json()
    return values


@dataclass(frozen=True)
class Drop:
    """One dropped file or case folder, complete, ready to take.

    ``models`` are its model files (one for a file drop); ``others`` its files that cannot be
    prepared (unsupported types, sidecars without a model), which go to failed/.
    ``reasons`` says why each model counted as complete (for the job's audit trail).
    """

    inbox: InboxSettings
    root: Path
    recipe: str | None
    is_case: bool
    models: tuple[Path, ...] = ()
    others: tuple[Path, ...] = ()
    reasons: Mapping[Path, str] = field(default_factory=lambda: MappingProxyType({}))
    #: Why the whole drop cannot be taken (no recipe for this place), or None.
    rejection: str | None = None
    rejection_hint: str = ""
    #: The content hash a farm node claimed the drop under (:attr:`JobPlace.claim`).
    claim: str | None = None


@dataclass(frozen=True)
class TakeResult:
    """Jobs taken into processing/ (PROCESSING, in drop order), and jobs sent to failed/.

    ``cut_short``: the job whose file could not be moved into processing/ (the move raised
    ``OSError``, said in ``error``): the take stopped there, the job PROCESSING and its file
    still in the inbox; the drop's later files were not looked at. Taken again, the move is
    tried again (:meth:`Intake._finish_taken`); or the drop goes to failed/
    (:meth:`Intake.give_up_take`).

    ``held``: the case was held (plan/held.py), nothing of it goes on, the jobs an earlier
    take left in processing/ failed with it; but ``printing``, those of them a build had
    already (not held: that build goes on unless someone stops it). ``bad``: the names of
    the files that held it, as they are said. ``said``: the console's line for each file
    of ``rejected`` no other line names (a file that is no model, a duplicate skipped, a
    drop refused whole, a loose file that cannot be prepared): where it is now, what
    failed; what helps."""

    taken: tuple[Job, ...] = ()
    rejected: tuple[Job, ...] = ()
    case_id: str | None = None
    priority: int = 0
    cut_short: Job | None = None
    error: str | None = None
    held: bool = False
    printing: tuple[Job, ...] = ()
    bad: tuple[str, ...] = ()
    said: tuple[Rejection, ...] = ()


class Intake:
    """Moves job files in and out of ``processing/`` under the store-first rule.

    ``inboxes`` maps inbox folders to their settings (a job's inbox that is no longer
    configured keeps the default outcome folder names); ``extra_fields`` gives a recipe's own
    sidecar field names. ``failed_fields(job)``: fields written in the same store write that
    names a job's place in failed/ (the notice it owes, so a crash before ``on_failed`` ran
    loses nothing). ``move(source, target)`` moves one file (:func:`~.files.move_file`); it is
    the seam where a test makes the file system refuse a move, which real files cannot do to
    a process running as root. ``remove(path)`` removes the source of a move a crash cut
    short once its copy is found whole (:meth:`_remove_moved_source`), and an old note
    dropped back (:meth:`_without_own_notes`): the same kind of seam.
    """

    def __init__(
        self,
        store: JobStore,
        inboxes: Sequence[InboxSettings],
        *,
        duplicates: DuplicatePolicy = "skip",
        extra_fields: Callable[[str], Collection[str]] = lambda _recipe: (),
        on_failed: Callable[[Job], None] | None = None,
        failed_fields: Callable[[Job], Mapping[str, Any]] | None = None,
        move: Callable[[Path, Path], None] = move_file,
        remove: Callable[[Path], None] = Path.unlink,
        jobs: str = JOBS_COMMAND,
    ) -> None:
        self.store = store
        #: The ``jobs`` command the notes name, reaching this store (``files.jobs_command``).
        self.jobs = jobs
        self._move_file = move
        self._remove_file = remove
        #: Told of every job whose file goes to failed/ (the daemon's notifications).
        self.on_failed = on_failed
        self.failed_fields = failed_fields
        self.inboxes = {i.path: i for i in inboxes}
        self.duplicates = duplicates
        self.extra_fields = extra_fields

    # -- places ---------------------------------------------------------------------------------

    def inbox_of(self, place: JobPlace) -> InboxSettings:
        return self.inboxes.get(place.inbox) or InboxSettings(path=place.inbox)

    def processing_path(self, job: Job, place: JobPlace | None = None) -> Path:
        place = place or place_of(job)
        inbox = self.inbox_of(place) if place else None
        folder = inbox.folder("processing") if inbox else job.source_path.parent
        return folder / job.job_key / job.original_name

    # -- taking ---------------------------------------------------------------------------------

    def _sidecar_values(
        self, drop: Drop, recipe: str
    ) -> tuple[dict[Path, SidecarValues], dict[Path, list[Path]]]:
        """Values per model and the sidecar files attached to each (SidecarError if bad)."""
        extra = self.extra_fields(recipe)
        base = folder_values(drop.root, extra_fields=extra) if drop.is_case else SidecarValues()
        attached: dict[Path, list[Path]] = {m: [] for m in drop.models}
        if drop.models:  # the case folder's sidecar goes with its first file
            attached[drop.models[0]].extend(base.sources)
        values: dict[Path, SidecarValues] = {}
        for model in drop.models:
            values[model] = model_values(model, base, extra_fields=extra)
            attached[model].extend(values[model].sources[len(base.sources):])
        return values, attached

    def _rel(self, drop: Drop, path: Path) -> str:
        return path.relative_to(drop.inbox.path).as_posix()

    def _existing(self, path: Path) -> Job | None:
        """The job a crash left behind for this inbox file, if any."""
        job = self.store.find_by_path(path)
        if job is None or job.state not in (JobState.DISCOVERED, JobState.QUEUED):
            return None
        return job

    def _new_job(
        self,
        drop: Drop,
        recipe: str,
        model: Path,
        *,
        digest: str | None,
        case_id: str | None,
        priority: int,
        fields: Mapping[str, str],
        attachments: Sequence[Path],
        reason: str,
        case: CaseFolder | None,
    ) -> Job:
        existing = self._existing(model)
        if existing is not None:
            if existing.state is JobState.DISCOVERED:
                existing = self.store.transition(
                    existing.id, JobState.QUEUED, reason, expect=JobState.DISCOVERED
                )
            return existing
        place = JobPlace(
            inbox=drop.inbox.path,
            rel=self._rel(drop, model),
            attachments=tuple(
                Attachment(self._rel(drop, a), str(a)) for a in attachments
            ),
            case=case,
            claim=drop.claim,
        )
        return self.store.create_job(
            recipe=recipe,
            source_path=model,
            content_hash=digest,
            case_id=case_id,
            priority=priority,
            fields={**fields, HOTFOLDER_FIELD: place.to_json()},
            state=JobState.QUEUED,
            reason=reason,
        )

    def take(self, drop: Drop, *, earlier: Sequence[Job] = ()) -> TakeResult:
        """Take a complete drop: jobs into the store, files into processing/ (see above).
        ``earlier``: the jobs of its case an earlier take left in processing/ (cut short),
        held with the case if it is held."""
        drop = self._without_own_notes(drop)
        recipe = drop.recipe
        if recipe is None or drop.rejection is not None:
            return self._reject_all(
                drop, recipe or "(none)", drop.rejection or "no recipe for this folder",
                drop.rejection_hint or "drop the file into a folder that has a recipe",
            )
        try:
            values, attached = self._sidecar_values(drop, recipe)
        except SidecarError as found:
            exc = self._in_failed(drop, found)
            return self._reject_all(
                drop, recipe, f"bad sidecar: {exc.message}",
                f"fix the sidecar ({exc.hint}), then drop the "
                + ("whole case folder" if drop.is_case else "file and its sidecar")
                + " into the inbox again",
                sidecars=True,
            )
        bad = _bad_files(drop)
        case = self._case_folder(drop)
        # Its parts set aside before it was taken, by whichever daemon met them
        # (:mod:`.caseholds`: kept in the job store).
        set_aside = (held_parts(self.store, drop.root, case.inode, inbox=drop.inbox.path)
                     if case is not None else ())
        if bad or set_aside:
            # A case is taken whole or not at all (plan/held.py): each bad file goes to
            # failed/ with its own reason, the rest of its case held with it, nothing taken.
            return self._hold_case(drop, recipe, case, bad, values, set_aside, earlier)
        taken: list[Job] = []
        rejected: list[Job] = []
        said: list[Rejection] = []
        case_id: str | None = None
        priority = 0
        for model in drop.models:
            value = values[model]
            job_case = value.case_id
            case_id = case_id or job_case
            priority = max(priority, value.priority or 0)
            try:
                digest = content_hash(model)
            except OSError as exc:
                log.warning("file_unreadable", path=str(model), error=str(exc))
                continue  # gone or locked: the next look decides again
            same = self.store.find_by_hash(digest)
            if self._finish_decided(model, same) is not None:
                continue  # an outcome decided already: its move is done now, no new job
            try:
                if self._finish_taken(model, same) is not None:
                    continue  # taken already, its move cut short: the copy there goes on
            except OSError as exc:  # that move failed again
                return self._cut_short(model, digest, exc, taken, rejected, said, case_id,
                                       priority)
            job = self._new_job(
                drop, recipe, model,
                digest=digest, case_id=job_case, priority=value.priority or 0,
                fields=value.fields, attachments=attached.get(model, ()),
                reason=f"complete ({drop.reasons.get(model, 'taken')})", case=case,
            )
            duplicate = self._duplicate_of(job)
            if duplicate is not None and self.duplicates == "skip":
                # The original's state then, said as then: the reason is read for as long
                # as the copy is kept (Failed cases), long after the original moved on.
                job = self.store.transition(
                    job.id, JobState.DUPLICATE_SKIPPED,
                    f"same content as job {duplicate.job_key} ({duplicate.state.value} when "
                    "this copy was skipped)",
                    expect=JobState.QUEUED,
                )
                skipped, line = self._duplicate_note(job, duplicate)
                rejected.append(skipped)
                said.append(line)
                continue
            if duplicate is not None:
                log.warning("duplicate_printed_again", job_key=job.job_key,
                            duplicate_of=duplicate.job_key, path=str(model))
            try:
                taken.append(self._into_processing(job, duplicate_of=duplicate))
            except OSError as exc:
                return self._cut_short(model, digest, exc, taken, rejected, said, case_id,
                                       priority)
        for other in drop.others:
            why, todo = _other_reason(other)
            rejected.append(self._reject_file(drop, recipe, other, why, todo, case=case))
            said.append(_said(rejected[-1], why, todo))
        if drop.is_case:
            self.remove_case_folder(drop.root)
        return TakeResult(tuple(taken), tuple(rejected), case_id, priority, said=tuple(said))

    def _cut_short(
        self, model: Path, digest: str, exc: OSError, taken: Sequence[Job],
        rejected: Sequence[Job], said: Sequence[Rejection], case_id: str | None,
        priority: int,
    ) -> TakeResult:
        """The take of ``model`` stopped by its move into processing/ failing (``exc``: the
        disk full, a folder turned read-only, a share that refuses): the result names its
        job, PROCESSING with its file still in the inbox, for the caller to try again on a
        later look or give the drop up. Nothing is lost: the store named the move before it
        began, and a later take finishes it (:meth:`_finish_taken`) rather than making a
        second job. ``exc`` goes on when no job's take of ``model`` was cut (not a failed
        move of this take). ``said``: the lines of the files this take sent to failed/ before
        the cut (a copy skipped), said now: the later take meets them in failed/, not again."""
        cut = next((job for job in self.store.find_by_hash(digest)
                    if self._take_cut_short(job, model)), None)
        if cut is None:
            raise exc
        log.warning("take_move_failed", job_key=cut.job_key, path=str(model),
                    target=str(cut.source_path), error=str(exc))
        return TakeResult(tuple(taken), tuple(rejected), case_id, priority,
                          cut_short=cut, error=str(exc), said=tuple(said))

    def give_up_take(self, drop: Drop, waiting: Sequence[Job], reason: str,
                     todo: str) -> TakeResult:
        """``drop`` to failed/ whole, with a note (``reason``, ``todo``) beside each file: its
        jobs ``waiting`` (taken into processing/, or PROCESSING with their move never made,
        the file still in the inbox) and the files of it not taken yet. For a take whose
        move into processing/ kept failing: a case is never left half taken, nor split.

        Store first as ever: a job whose file never left the inbox is named there first, so
        its move to failed/, like any settle, is finished later if this one fails too: by a
        give-up done again (a job FAILED here already has its settle finished)."""
        recipe = drop.recipe
        assert recipe is not None  # (a drop without one is refused whole, never cut short)
        given, _ = self._fail_taken(self.store.get_jobs([j.id for j in waiting]),
                                    lambda _job: reason, todo)
        left = frozenset(place.previous for job in waiting
                         if (place := place_of(job)) is not None and place.previous)
        rest = replace(drop, models=tuple(m for m in drop.models if m not in left))
        if not (rest.models or rest.others or rest.is_case):
            return TakeResult((), tuple(given))
        return TakeResult((), (*given, *self._reject_all(rest, recipe, reason, todo).rejected))

    def _fail_taken(
        self, jobs: Iterable[Job], reason_of: Callable[[Job], str], todo: str
    ) -> tuple[list[Job], list[Job]]:
        """``jobs`` (as the store has them now) of a take that does not go on, to failed/
        each with a note (``reason_of`` it, ``todo``): taken into processing/, or PROCESSING
        with their move never made (the file still in the inbox), or FAILED already (a
        failing cut short: its settle finished now). Returns those failed, and those a build
        had already, left to it (not this take's to undo)."""
        given: list[Job] = []
        in_builds: list[Job] = []
        for job in jobs:
            place = place_of(job)
            if place is not None and job.build_id is not None:
                in_builds.append(job)
                continue
            if place is None or job.state not in (JobState.PROCESSING, JobState.FAILED):
                continue
            reason = reason_of(job)
            if job.state is JobState.PROCESSING:
                named = job.source_path
                cut = self._take_cut_short(job, place.previous)
                if cut and os.path.lexists(named):
                    # Cut on another disk after its rename: the file is in both places. Its
                    # inbox copy goes first (when it is the same file, not put there since),
                    # as the take's own finish would: left in the case folder, it was taken
                    # again later and printed without its case.
                    self.finish_move(job)
                # Its file never left the inbox: the store names it there again (the settle
                # below names its place in failed/ and this one as its previous).
                back = ({"source_path": str(place.previous)}
                        if cut and not os.path.lexists(named) else {})
                job = self.store.transition(job.id, JobState.FAILED, reason,
                                            expect=JobState.PROCESSING, **back)
                self._leave_processing(place, named)  # the folder the failed move made there
            note = error_note(what=reason, where="taking the file from the inbox", todo=todo,
                              file=str(job.source_path), job=job, jobs=self.jobs)
            given.append(self.settle(job, ok=False, note=note))
        return given, in_builds

    def _without_own_notes(self, drop: Drop) -> Drop:
        """``drop`` without the notes this hot folder wrote (:func:`~.files.is_own_note`),
        which are removed first: a case moved back from failed/ (or done/) after a fix brings
        its old ``.error.txt`` or ``.report.json`` along. Such a note is not a drop (taken,
        it failed as "not a model file"); left in the inbox it would keep the case folder
        there; carried along it would sit as a stale note beside a file that now succeeded.
        What it said is in the job store (``jobs show``). Removed before any model is
        taken, so a take a crash cuts short leaves no note behind to meet again."""
        kept: list[Path] = []
        for path in drop.others:
            if not is_own_note(path):
                kept.append(path)
                continue
            try:
                self._remove_file(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("old_note_not_removed", path=str(path), error=str(exc),
                            hint="remove it by hand: it is an old note, not a drop")
                continue
            log.info("old_note_removed", path=str(path),
                     reason="a note of an earlier outcome, dropped back with its file",
                     hint=f"what it said is kept in the job store: {self.jobs} show "
                     "<job key or case id>")
        return replace(drop, others=tuple(kept))

    def _case_folder(self, drop: Drop) -> CaseFolder | None:
        return CaseFolder.of(drop.root, drop.inbox.path) if drop.is_case else None

    def _finish_decided(self, path: Path, candidates: Iterable[Job | None]) -> Job | None:
        """The job that decided already where ``path``, a file in the inbox, goes (done/ or
        failed/), its move done now instead of the file being taken again as a second job;
        None when there is none, or the file is a new drop.

        One rule for every way a decision can be cut short before its file left the inbox
        (a crash, a farm node that died, a move that failed): the job still naming ``path``
        as its place (decided, its move never begun: settled now); or one of ``candidates``
        (the jobs of the file's content, or of its places in failed/) whose move of ``path``
        was named in the store and never recorded as made (finished now, :meth:`finish_move`;
        a copy a cut left in both places goes from the inbox when the two are the same file,
        and one that differs is a new drop). A file whose move was recorded as made and that
        is in the inbox again was put back by a user: a new drop too.

        No settle lock: the job is decided and its file is in the inbox, where only the
        holder of the file's claim (this taker) touches it."""
        decided = OUTCOME_DONE_STATES | OUTCOME_FAILED_STATES
        for job in (self.store.find_by_path(path), *candidates):
            place = place_of(job) if job is not None else None
            if job is None or place is None or job.state not in decided:
                continue
            if job.source_path == path:
                settled = self.settle(job, ok=job.state in OUTCOME_DONE_STATES,
                                      note=_decided_note(job, self.jobs))
                log.info("decided_file_settled", job_key=job.job_key, path=str(path),
                         target=str(settled.source_path), state=job.state.value)
                return settled
            if place.moved is not False or place.previous != path:
                continue
            if not self.finish_move(job):
                continue
            if not os.path.lexists(path):
                log.info("cut_short_move_finished", job_key=job.job_key, path=str(path),
                         target=str(job.source_path), state=job.state.value)
            elif not _kept_by_the_disk(path, job.source_path):
                return None  # changed since the cut: a new drop (finish_move said so)
            return job
        return None

    def _finish_taken(self, path: Path, candidates: Iterable[Job]) -> Job | None:
        """The job of ``candidates`` (the jobs of the file's content) that took ``path``, a
        file in the inbox, into processing/ in a move a crash cut short: before its rename
        (:meth:`_cut_before_rename`), or into a processing/ on another disk after its rename
        (:meth:`_cut_into_processing`). The move is finished now (:meth:`finish_move`: the
        inbox copy goes when it is the same file, not put there since), and the file in
        processing/ goes on as the job's; None when there is none, or ``path`` is a new drop
        (it differs, or came later). The job itself is not taken again: its daemon's start
        (or the farm node that adopts it) batches it.

        A farm node meets such a file before the job's new holder starts on it (a case
        folder's rest is a new drop to claim: its content changed as its files were taken);
        a single daemon's start finishes it first, and meets one here only when its removal
        failed."""
        for job in candidates:
            if not self._take_cut_short(job, path):
                continue
            self.finish_move(job)
            target = job.source_path
            if not os.path.lexists(path):
                log.info("cut_short_move_finished", job_key=job.job_key, path=str(path),
                         target=str(target), state=job.state.value)
            elif not _kept_by_the_disk(path, target):
                return None  # a new drop (finish_move said why)
            return job
        return None

    def remove_case_folder(self, root: Path) -> tuple[Path, ...]:
        """A case whose files were all taken leaves no folder behind (empty ones only).

        A named step: a crash right before it is what :meth:`emptied_case` recognises. The
        folder's holds (:mod:`.caseholds`) go with it: a case folder made again under its
        name is another case (a hold left by a store away now is the old folder's inode's
        only, until the daemon's next scan finds the folder gone). Returns the parts whose
        holds were forgotten.

        The folder goes first, its holds only once it is gone: a file that came between the
        look and the removal keeps the folder (``case_folder_kept``), and is the rest of a
        case being copied in, held with it. Forgotten first, that rest was taken as a case
        of its own and printed without the part set aside.
        """
        before = _folder_identity(root)
        prune_empty_tree(root)
        try:
            there = _folder_identity(root, strict=True) is not None
        except OSError as exc:  # not known gone: the holds stay
            log.warning("case_holds_kept", root=str(root), error=str(exc),
                        reason="its folder could not be looked at: not gone")
            return ()
        if there:
            log.info("case_folder_kept", root=str(root),
                     reason="it could not be removed (a file came into it, or the share "
                     "refused): its holds stay, and what came is held with its case")
            return ()
        try:
            return forget_holds(self.store, root, inbox=self._inbox_path(root),
                                inode=before[1] if before is not None else None)
        except StoreError as exc:
            log.warning("case_holds_not_forgotten", root=str(root), error=exc.message)
            return ()

    def case_left_in_inbox(self, job: Job) -> Path | None:
        """The case folder ``job``'s file was taken from, when it is still that very folder in
        the inbox with files in it: the case's take was cut short between two of its files
        (a crash), and the rest waits there to be taken. None otherwise (a lone file, the
        folder gone or emptied, or one of the same name made since)."""
        place = place_of(job)
        case = place.case if place is not None else None
        if place is None or case is None:
            return None
        root = place.inbox / case.rel
        if not case.is_folder(_folder_identity(root)):
            return None
        for path in root.rglob("*"):
            if path.is_file() and not any(
                    is_ignored_name(part) for part in path.relative_to(root).parts):
                return root
        return None

    def emptied_case(self, root: Path) -> str | None:
        """Why ``root``, a folder with nothing but folders in it, is a case folder this hot
        folder emptied, to be removed: its parts were all set aside (its holds name this very
        folder: the case is in failed/ whole), or one of the newest jobs was taken from it
        and it is still that very folder (its inode), not one of the same name made since.
        None when it is neither."""
        identity = _folder_identity(root)
        if identity is None:
            return None
        if held_parts(self.store, root, identity[1], inbox=self._inbox_path(root)):
            return HELD_EMPTIED
        for job in reversed(self.store.list_jobs(limit=DEFAULT_RECENT_TAKES)):
            place = place_of(job)
            case = place.case if place is not None else None
            if (place is not None and case is not None and place.inbox / case.rel == root
                    and case.is_folder(identity)):
                return "its files were all taken before a restart"
        return None

    def _duplicate_of(self, job: Job) -> Job | None:
        if job.content_hash is None:
            return None
        for other in self.store.find_by_hash(job.content_hash, recipe=job.recipe):
            if other.id == job.id or other.state not in DUPLICATE_STATES:
                continue
            if (other.state is JobState.QUEUED and other.id > job.id
                    and self.in_drop_area(other.source_path)):
                # A twin another node is taking at this very moment, not decided yet: it
                # defers to this earlier job (jobs are numbered in the order the store's
                # serialised writes made them). Counting it here as well skipped both twins,
                # and the content never printed. A retried job waits with its file in done/
                # or failed/: a user's decision to print it, so it counts.
                continue
            return other
        return None

    def _duplicate_note(self, job: Job, duplicate: Job) -> tuple[Job, Rejection]:
        """Settle ``job``, a copy skipped as ``duplicate``'s content, with its note: the job
        settled and the console's line for it."""
        what = (f"the same content was already taken as job {duplicate.job_key} "
                f"({duplicate.original_name}, {duplicate.state.value} at that moment); this "
                "copy was skipped (settings: hotfolders.duplicates: skip)")
        todo = (f"nothing, if it was dropped twice by mistake. To print it again: "
                f"{self.jobs} retry {job.job_key}, or set hotfolders.duplicates: print")
        note = error_note(what=what, where="taking the file from the inbox", todo=todo,
                          file=job.original_name, job=job, jobs=self.jobs)
        settled = self.settle(job, ok=False, note=note)
        return settled, _said(settled, what, todo)

    def _into_processing(self, job: Job, *, duplicate_of: Job | None = None) -> Job:
        """QUEUED → PROCESSING: the store names processing/<key>/<name>, then the file moves."""
        place = place_of(job)
        assert place is not None
        source = job.source_path
        target = self.processing_path(job, place)
        attachments = tuple(
            Attachment(a.rel, str(target.parent / Path(a.at).name), a.at)
            for a in place.attachments
        )
        new_place = replace(
            place, previous=source, attachments=attachments,
            duplicate_of=duplicate_of.job_key if duplicate_of is not None
            else place.duplicate_of, moved=None,
        )
        job = self.store.transition(
            job.id, JobState.PROCESSING, "taken into processing/", expect=JobState.QUEUED,
            source_path=str(target), fields=_with_place(job, new_place),
        )
        self._move(job, source, target, attachments)
        return job

    def _move(
        self, job: Job, source: Path, target: Path, attachments: Sequence[Attachment]
    ) -> None:
        if self._still_to_move(job, source, target):
            self._move_file(source, target)
            log.debug("file_moved", job_key=job.job_key, source=str(source),
                      target=str(target))
        # Also when the model went before a crash: its sidecars must not stay behind.
        self._move_attachments(job, attachments)

    def _move_attachments(self, job: Job, attachments: Sequence[Attachment]) -> None:
        """Each sidecar to where the store says it goes, unless it is there already (also
        when a cut left it in both places: :meth:`_finish_both`)."""
        for attachment in attachments:
            src = Path(attachment.previous) if attachment.previous else None
            dst = Path(attachment.at)
            if src is None or not os.path.lexists(src):
                continue
            try:
                if self._still_to_move(job, src, dst):
                    self._move_file(src, dst)
            except OSError as exc:
                log.warning("attachment_not_moved", job_key=job.job_key, path=str(src),
                            error=str(exc))

    def _still_to_move(self, job: Job, source: Path, target: Path) -> bool:
        """Whether ``source`` must still move to ``target`` (a move of ``job``'s file or of
        a sidecar): not when it went before a crash, nor when a cut left it in both places
        and :meth:`_finish_both` finished that."""
        if not os.path.lexists(target):
            return True
        if not os.path.lexists(source):
            return False  # moved before a crash
        # Moved to another disk before a crash, all but the source's removal.
        return self._finish_both(job, source, target)

    def _finish_both(self, job: Job, source: Path, target: Path) -> bool:
        """A move to another disk cut between its rename and the source's removal (or
        something that looks like it) left a file at ``source`` and one at ``target``; True
        when ``source`` is still to move there (the file at ``target`` was set aside).

        The same file (:func:`_same_content`): the source goes, the file is there once. A
        source in the inbox that differs, or that was put there after the copy was made (a
        user's copy of the file in failed/ while the store could not record the move as
        made), is a new drop, left to be taken. Otherwise both are kept: the newer one is
        set aside (:meth:`_set_aside_newer`), so a user's file never stops a start or a
        retry."""
        dropped = self.in_drop_area(source)
        if dropped and _changed_after(source, target):
            log.info("cut_short_source_changed", job_key=job.job_key, path=str(source),
                     target=str(target), reason="put into the inbox after the copy was "
                     "made, so it is taken as a new drop")
            return False
        if _same_content(source, target):
            self._remove_moved_source(job, source, target)
            return False
        if dropped:
            log.info("cut_short_source_changed", job_key=job.job_key, path=str(source),
                     target=str(target), reason="it differs from the whole copy already "
                     "moved, so it is taken as a new drop")
            return False
        return self._set_aside_newer(job, source, target)

    def _set_aside_newer(self, job: Job, source: Path, target: Path) -> bool:
        """Of two different files at a move's ``source`` and ``target``, the newer (changed
        since the cut: a cut leaves two copies with one modification time) goes to a free
        name beside whichever of the two is not in processing/, where a user looks; the
        older stays the job's file, at ``target``. True when that was the source (the
        target's place is free for it now)."""
        try:
            source_newer = os.lstat(source).st_mtime_ns > os.lstat(target).st_mtime_ns
        except OSError as exc:
            log.warning("cut_short_copy_not_set_aside", job_key=job.job_key,
                        path=str(source), target=str(target), error=str(exc))
            return False  # gone meanwhile: nothing to set aside
        newer = source if source_newer else target
        processing = self.processing_path(job).parent.parent
        aside = free_path(target if _inside(source, processing) else source)
        try:
            self._move_file(newer, aside)
        except OSError as exc:
            # (A full disk, a folder turned read-only.) Both stay where they are, and the
            # job goes on with the file at ``target``: a person compares the two.
            log.warning("cut_short_copy_not_set_aside", job_key=job.job_key,
                        path=str(newer), target=str(aside), error=str(exc),
                        hint=f"the job goes on with {target}; compare it with {source} and "
                        "remove the one that is not wanted")
            return False
        log.warning("cut_short_copy_set_aside", job_key=job.job_key, path=str(newer),
                    set_aside=str(aside), kept=str(target),
                    hint=f"the job's file is {target}; {aside} is the copy that differed "
                    "from it (the newer one): keep the one that is wanted")
        return not source_newer

    # -- rejecting at intake --------------------------------------------------------------------

    def _in_failed(self, drop: Drop, exc: SidecarError) -> SidecarError:
        """``exc`` naming the sidecar where the person reading the note finds it: in failed/,
        where the refused drop goes with it (:meth:`settle` moves it as the first file's
        attachment); its place in the inbox is empty by then. A case folder with two
        sidecars is named as the folder in failed/."""
        try:
            rel = self._rel(drop, exc.path)
        except ValueError:  # not from this drop: said as it is
            return exc
        failed = drop.inbox.folder("failed")
        moved = failed / rel if exc.path.is_dir() else _attachment_target(failed, rel)
        return SidecarError(moved, exc.reason, hint=exc.hint, line=exc.line, column=exc.column)

    def _hold_case(
        self, drop: Drop, recipe: str, case: CaseFolder | None,
        bad: Sequence[tuple[Path, str, str]], values: Mapping[Path, SidecarValues],
        set_aside: Sequence[Path], earlier: Sequence[Job],
    ) -> TakeResult:
        """``drop`` to failed/ whole, nothing of it taken: each of its ``bad`` files (each
        with why and what helps) for its own reason, every other file held with its case
        (:func:`~preform_pipeline.plan.held.held_with_cases`, the rule ``run`` and the
        worker hold a case by), its sidecars beside the first; ``earlier`` (its files an
        earlier take left in processing/) too. ``values``: the sidecar values of its models
        (the case's name, when a sidecar gives one); ``set_aside``: its parts set aside
        before (each with its note already); ``case``: the folder it is (its jobs' record).
        """
        name = next((v.case_id for v in values.values() if v.case_id), None)
        of = CaseOf(drop.root, name or drop.root.name) if drop.is_case else None
        named = [path for path, _, _ in bad]
        gone = [*named, *set_aside]
        # Each earlier job by the place it was taken from: its path in the case folder.
        before = {Path(place.previous): job
                  for job in self.store.get_jobs([j.id for j in earlier])
                  if (place := place_of(job)) is not None and place.previous}
        held = held_with_cases({p: of for p in (*before, *drop.models, *gone)}, gone)
        reasons = {before[one.path].id: one.reason for one in held if one.path in before}
        failed, printing = self._fail_taken(
            [job for job in before.values() if job.id in reasons],
            lambda job: reasons[job.id], HELD_TODO)
        held = tuple(one for one in held if one.path not in before)
        failing = [*bad, *((one.path, one.reason, HELD_TODO) for one in held),
                   # Its files that are no part, each for its own reason (as when the case
                   # goes on).
                   *((other, *_other_reason(other)) for other in drop.others
                     if other not in named)]
        # The sidecars go beside the first file (a bad one; held by a part set aside at an
        # earlier look, a held one), so the case folder leaves the inbox whole.
        extra = self._drop_sidecars(drop)
        rejected = [self._reject_file(drop, recipe, path, why, todo,
                                      attachments=extra if index == 0 else (), case=case)
                    for index, (path, why, todo) in enumerate(failing)]
        if drop.is_case:
            self.remove_case_folder(drop.root)
        # (Not those a build has, nor one a user cancelled meanwhile: they are not held.)
        failed_ids = {job.id for job in failed}
        said = tuple(name_text(path.name) for path in gone)
        log.warning("case_held", root=str(drop.root), case_id=of.name if of else None,
                    bad=list(said),
                    held=[*(path.name for path, job in before.items() if job.id in failed_ids),
                          *(one.path.name for one in held)])
        if printing:
            log.warning("case_held_after_build", root=str(drop.root),
                        jobs=[job.job_key for job in printing],
                        builds=sorted({job.build_id for job in printing if job.build_id}),
                        hint="that build goes on: cancel its jobs before the print is sent "
                        "(jobs cancel), or stop the print at the printer")
        # A loose file is a case of its own: said with the other files refused at the take
        # (a case held whole has its own line, the daemon's).
        lines = () if drop.is_case else tuple(
            _said(job, why, todo) for job, (_, why, todo) in zip(rejected, failing, strict=True))
        return TakeResult((), (*failed, *rejected), held=True, printing=tuple(printing),
                          bad=said, said=lines)

    def _drop_sidecars(self, drop: Drop) -> list[Path]:
        """The sidecars of ``drop`` (its case folder's, then each model's), once each."""
        found = _sidecars_of(drop.root.parent, drop.root.name) if drop.is_case else []
        if drop.is_case:
            found += _sidecars_of(drop.root, drop.root.name)
        for model in drop.models:
            found += _sidecars_of(model.parent, model.stem)
        return list(dict.fromkeys(found))

    def _reject_all(
        self, drop: Drop, recipe: str, reason: str, todo: str, *, sidecars: bool = False
    ) -> TakeResult:
        rejected: list[Job] = []
        extra = self._drop_sidecars(drop) if sidecars else []
        case = self._case_folder(drop)
        for index, model in enumerate(drop.models):
            rejected.append(
                self._reject_file(
                    drop, recipe, model, reason, todo,
                    attachments=extra if index == 0 else (), case=case,
                )
            )
        for other in drop.others:
            rejected.append(self._reject_file(drop, recipe, other, reason, todo, case=case))
        if drop.is_case:
            self.remove_case_folder(drop.root)
        log.warning("drop_rejected", root=str(drop.root), reason=reason, files=len(rejected))
        return TakeResult((), tuple(rejected),
                          said=tuple(_said(job, reason, todo) for job in rejected))

    def _reject_file(
        self,
        drop: Drop,
        recipe: str,
        path: Path,
        reason: str,
        todo: str,
        *,
        attachments: Sequence[Path] = (),
        case: CaseFolder | None = None,
    ) -> Job:
        job = self._existing(path)
        if job is None:
            # Refused before, its move to failed/ cut short: finished now (found by where
            # that move was going, a "(2)" name too: a refused file's content is not
            # recorded).
            finished = self._finish_decided(path, (
                self.store.find_by_path(name)
                for name in taken_names(drop.inbox.folder("failed") / self._rel(drop, path))))
            if finished is not None:
                return finished
            place = JobPlace(
                drop.inbox.path, self._rel(drop, path),
                attachments=tuple(Attachment(self._rel(drop, a), str(a)) for a in attachments),
                case=case, claim=drop.claim,
            )
            job = self.store.create_job(
                recipe=recipe, source_path=path,
                fields={HOTFOLDER_FIELD: place.to_json()},
                case_id=drop.root.name if drop.is_case else None,
                state=JobState.QUEUED, reason="found in the inbox",
            )
        job = self.store.transition(job.id, JobState.FAILED, reason,
                                    expect=(JobState.QUEUED, JobState.DISCOVERED))
        note = error_note(
            what=reason, where="taking the file from the inbox", todo=todo,
            file=str(path), job=job, jobs=self.jobs,
        )
        return self.settle(job, ok=False, note=note)

    # -- outcomes ---------------------------------------------------------------------------------

    def settle(
        self, job: Job, *, ok: bool, note: str | None = None, report: str | None = None
    ) -> Job:
        """Move a job's file to done/ (``ok``) or failed/, beside its report or error note.

        The note is written first, then the store names the destination, then the file moves;
        a crash anywhere leaves a state :meth:`finish_move` completes. A job already in an
        outcome folder stays where it is.
        """
        place = place_of(job)
        if place is None:
            log.warning("job_without_place", job_key=job.job_key, path=str(job.source_path))
            return job
        inbox = self.inbox_of(place)
        current = job.source_path
        done, failed = inbox.folder("done"), inbox.folder("failed")
        if _inside(current, done) or _inside(current, failed):
            self.finish_move(job)  # whatever a crash left of its move
            return job
        folder = done if ok else failed
        if not current.exists():
            if place.previous is not None and os.path.lexists(place.previous):
                # A take cut short: the file is still where it was dropped, and the start's
                # recovery finishes the move (finish_move) before it is settled.
                log.error("file_missing", job_key=job.job_key, path=str(current))
                return job
            return self._settle_removed(job, place, current, folder)
        # A name over MAX_NAME_BYTES (a job taken before such drops were left in the inbox)
        # settles under a shorter one: its notes would be over what file systems allow.
        rel = fitting_rel(place.rel)
        target = free_path(folder / rel, ours=lambda name: _notes_name(name, job))
        attachments = _attachments_into(folder, place)
        text = report if ok else note
        written = target.with_name(target.name + (REPORT_SUFFIX if ok else ERROR_SUFFIX))
        made = write_note(written, text, within=folder) if text is not None else ()
        new_place = replace(place, previous=current, attachments=attachments, moved=False)
        fields = _with_place(job, new_place)
        if not ok and self.failed_fields is not None:
            fields.update(self.failed_fields(job))
        try:
            # Only if its file is still where this settle found it: of two settling the
            # same job at once (another node's sweep, a stalled node resuming), one moves it.
            job = self.store.update_job(job.id, expect_source=current,
                                        source_path=str(target), fields=fields)
        except StoreConflictError:
            if text is not None and self.store.get_job(job.id).source_path != target:
                withdraw_note(written, made)
            log.info("file_settled_elsewhere", job_key=job.job_key, path=str(current))
            return self.store.get_job(job.id)
        self._move(job, current, target, attachments)
        job = self._record_moved(job, new_place)
        self._leave_processing(place, current)
        log.info("file_settled", job_key=job.job_key, state=job.state.value,
                 outcome="done" if ok else "failed", path=str(target))
        if rel != place.rel:
            log.warning("file_settled_under_shorter_name", job_key=job.job_key,
                        name=place.rel, path=str(target), limit=MAX_NAME_BYTES,
                        hint="its report or note gives the name it had")
        if not ok and self.on_failed is not None:
            self.on_failed(job)
        return job

    def _settle_removed(self, job: Job, place: JobPlace, current: Path, folder: Path) -> Job:
        """Settle a job whose file a person removed from processing/ (before its plan, or
        between the plan and the import: the build printed without it, ``model_gone``):
        its sidecars go to ``folder`` as they would with the file, and its processing/
        folder goes. Left there, the empty folder was settled again at every pass of the
        loop, each saying ``file_missing`` at error level, and the inbox never became quiet
        (session 48's soak with ``--gone``). The store keeps naming the file's last place:
        ``jobs show`` says it is gone.

        The settling is a claim in the store: the write records it as made (``moved``: there
        is nothing left to move) only if the job's fields are still those this node read, so
        of two nodes settling it at once (each finding the file gone), one moves the sidecars
        and says ``file_removed``; ``expect_source`` alone let both win, the file's place
        being the same before and after."""
        if place.moved is True:
            # Settled already (by this node, or another before it read): the claim is
            # recorded before the sidecars move, so a kill between the two left them in
            # processing/ with the store naming them in the outcome folder; this finishes
            # that (nothing to do, and nothing said, when they went).
            self._move_attachments(job, place.attachments)
            self._leave_processing(place, current)
            return job
        attachments = _attachments_into(folder, place)
        try:
            job = self.store.update_job(
                job.id, expect_source=current, expect_fields=job.fields,
                fields=_with_place(job, replace(place, attachments=attachments, moved=True)))
        except StoreConflictError:
            log.info("file_settled_elsewhere", job_key=job.job_key, path=str(current))
            return self.store.get_job(job.id)
        self._move_attachments(job, attachments)
        self._leave_processing(place, current)
        log.warning("file_removed", job_key=job.job_key, path=str(current),
                    state=job.state.value, sidecars=len(attachments))
        return job

    def finish_move(self, job: Job) -> bool:
        """Complete a move a crash interrupted: the file, then its sidecars and the
        processing/ folder it left (a crash may come between any two); False when the file
        is nowhere to be found. Nothing to do for a move that was whole."""
        target = job.source_path
        place = place_of(job)
        if place is None:
            if target.exists():
                return True
            log.error("file_lost", job_key=job.job_key, path=str(target), previous=None)
            return False
        if not os.path.lexists(target):
            if place.previous is None or not os.path.lexists(place.previous):
                log.error("file_lost", job_key=job.job_key, path=str(target),
                          previous=str(place.previous) if place.previous else None)
                return False
            self._move(job, place.previous, target, place.attachments)
            log.info("move_completed", job_key=job.job_key, source=str(place.previous),
                     target=str(target))
        elif (place.previous is not None and os.path.lexists(place.previous)
              and (place.moved is False
                   or (place.moved is None and not self.in_drop_area(place.previous))
                   or self._cut_into_processing(job, place))):
            # A move cut after its rename: a settle's never recorded as made, a retry's
            # back into processing/ (its previous place in done/ or failed/), or a take's
            # into a processing/ on another disk (:meth:`_finish_both` removes the inbox
            # copy only when it is the same file, not put there since). (Recorded as made, a
            # file at its previous place is a user's put-back; and one in the inbox beside a
            # job in processing/ on the same disk is the user's second drop: a rename leaves
            # nothing behind. Neither is touched.)
            self._move(job, place.previous, target, place.attachments)
        else:
            self._move_attachments(job, place.attachments)
        if place.moved is False and not (
                place.previous is not None and self.in_drop_area(place.previous)
                and os.path.lexists(place.previous)
                and _kept_by_the_disk(place.previous, target)):
            # (Not while the disk keeps the inbox copy: recorded as made, the copy would be
            # a user's put-back, taken again at every look as a new job, each a duplicate.)
            self._record_moved(job, place)
        if place.previous is not None:
            self._leave_processing(place, place.previous)
        return True

    def _take_cut_short(self, job: Job, path: Path | None) -> bool:
        """Whether ``job`` took ``path``, a file in the inbox, in a move into processing/
        that was cut short: before its rename (:meth:`_cut_before_rename`: a kill, or a
        move that failed), or on another disk after it (:meth:`_cut_into_processing`)."""
        place = place_of(job)
        return (place is not None and path is not None and place.previous == path
                and (self._cut_before_rename(job, place)
                     or self._cut_into_processing(job, place)))

    def _cut_before_rename(self, job: Job, place: JobPlace) -> bool:
        """Whether ``job``'s take was cut between the store naming its file in processing/
        and the move: the job waits there to be batched, its file is not there, and its
        previous place is in the inbox (where the file still is). Taken again as a new drop,
        the file was a "duplicate" of its own job and went to failed/, and the job failed
        "its file is gone": a case's file never printed (the farm kill loop saw it)."""
        return (job.state is JobState.PROCESSING and self._taken_from(job, place) is not None
                and not os.path.lexists(job.source_path))

    def _cut_into_processing(self, job: Job, place: JobPlace) -> bool:
        """Whether ``job``'s file may be in both places because its take, a move from the
        inbox into a processing/ on another disk, was cut after the copy's rename: the store
        names the file in processing/ and its previous place in the inbox, and the two are on
        two file systems, or two mounts of one (a bind mount: only a move between two copies
        the file; on one, a rename moves it whole, so a file in the inbox then is a new
        drop). Until session 43's review two mounts of one disk, one device number, were
        one: the failed removal of such a copy raised out of the take (``take_failed``) and
        its job waited in processing/ unbatched until a restart."""
        source = self._taken_from(job, place)
        return source is not None and on_two_mounts(source, job.source_path)

    def _taken_from(self, job: Job, place: JobPlace) -> Path | None:
        """The inbox file ``job``'s take moved, when the store names the job's file in its
        inbox's processing/ and its previous place in the inbox, the move not recorded as
        whole (the rule both cut takes share); else None."""
        source = place.previous
        if (place.moved is None and source is not None and self.in_drop_area(source)
                and _inside(job.source_path, self.inbox_of(place).folder("processing"))):
            return source
        return None

    def _remove_moved_source(self, job: Job, source: Path, target: Path) -> None:
        """Finish a move to another disk that a crash cut after its rename and before the
        source's removal (:func:`move_file`): ``target`` is a whole copy of ``source``
        (:func:`_same_content`, checked by the caller), so the source goes, and the file is
        there once. Nothing that is not also at ``target`` is ever removed."""
        try:
            self._remove_file(source)
        except FileNotFoundError:
            pass  # gone meanwhile: the file is at ``target`` once all the same
        except OSError as exc:
            # (A folder turned read-only.) Both stay: the same file twice, nothing lost; the
            # warning names them.
            log.warning("cut_short_source_not_removed", job_key=job.job_key,
                        path=str(source), target=str(target), error=str(exc))
            return
        log.info("cut_short_source_removed", job_key=job.job_key, path=str(source),
                 target=str(target))

    def _record_moved(self, job: Job, place: JobPlace) -> Job:
        """The store records that the file is in its outcome folder now (``moved``): from
        then on a file at its previous place is a user's put-back, a new drop. When the store
        cannot say it now, the move still counts as cut short (finished again if the file
        comes back), as before the flag."""
        try:
            return self.store.update_job(job.id, expect_source=job.source_path,
                                         fields=_with_place(job, replace(place, moved=True)))
        except StoreError as exc:
            log.warning("move_not_recorded", job_key=job.job_key, path=str(job.source_path),
                        error=str(exc))
            return job

    def _leave_processing(self, place: JobPlace, previous: Path) -> None:
        """A file that left ``processing/<key>/`` leaves no empty folder there."""
        processing = self.inbox_of(place).folder("processing")
        if _inside(previous, processing):
            remove_empty_dirs(previous.parent, processing)

    def requeue(self, job: Job) -> Job:
        """A retried job (QUEUED, file in done/ or failed/) back into processing/; the
        ``.error.txt`` that failed/ kept beside it goes (:meth:`_drop_old_note`)."""
        if not job.source_path.exists() and not self.finish_move(job):
            return self.store.transition(
                job.id, JobState.FAILED, "its file is gone; cannot retry",
                expect=JobState.QUEUED,
            )
        left = job.source_path
        job = self._into_processing(job)
        self._drop_old_note(job, left)
        return job

    def _drop_old_note(self, job: Job, left: Path) -> None:
        """Remove the job's own ``.error.txt`` beside the place its file just left: the
        retry made it stale, and one left in failed/ with no file beside it read as a
        failure still to deal with (session 32). The store keeps the reason (``jobs show``
        history). A note of another job, or not ours, is left alone."""
        note = left.with_name(left.name + ERROR_SUFFIX)
        if not (is_own_note(note) and _notes_name(left, job, suffixes=(ERROR_SUFFIX,))):
            return
        try:
            note.unlink()
        except OSError as exc:  # the retry goes on; the stale note is only a stale note
            log.warning("old_note_not_removed", job_key=job.job_key, path=str(note),
                        error=str(exc))
            return
        log.info("old_note_removed", job_key=job.job_key, path=str(note))
        place = place_of(job)
        if place is not None:  # a case's folder in failed/, now empty, goes with its notes
            remove_empty_dirs(note.parent, self.inbox_of(place).folder("failed"))

    def _inbox_path(self, path: Path) -> Path:
        """The inbox ``path`` is in (the innermost, when one inbox is inside another), or its
        folder when it is in none."""
        inside = [inbox for inbox in self.inboxes if _inside(path, inbox)]
        return max(inside, key=lambda inbox: len(inbox.parts)) if inside else path.parent

    def in_drop_area(self, path: Path) -> bool:
        """True when ``path`` is in an inbox and not in one of its outcome folders."""
        for inbox in self.inboxes.values():
            if _inside(path, inbox.path):
                rel = path.relative_to(inbox.path)
                return bool(rel.parts) and rel.parts[0] not in inbox.reserved_names
        return False


def _notes_name(name: Path, job: Job, *,
                suffixes: Collection[str] = (REPORT_SUFFIX, ERROR_SUFFIX)) -> bool:
    """Whether the notes beside ``name`` (of ``suffixes``) are ``job``'s own: a settle of it
    was cut short (a crash, or another node's settle that lost the race) after the note, or
    a retry took it back from beside them."""
    key = job.job_key
    for suffix, mark in ((REPORT_SUFFIX, f'"job_key": "{key}"'), (ERROR_SUFFIX, f"Job: {key} ")):
        if suffix not in suffixes:
            continue
        try:
            if mark in name.with_name(name.name + suffix).read_text(encoding="utf-8"):
                return True
        except (OSError, UnicodeDecodeError):
            continue
    return False


def _decided_note(job: Job, jobs: str) -> str | None:
    """The note of a file decided at intake whose move never began (its first note was
    never written); None for a job decided done (it has a report, not a note)."""
    if job.state in OUTCOME_DONE_STATES:
        return None
    return error_note(
        what=job.reason, where="taking the file from the inbox", file=str(job.source_path),
        todo="nothing, if it was dropped twice by mistake; to print it: "
        f"{jobs} retry {job.job_key}" if job.state is JobState.DUPLICATE_SKIPPED
        else "fix the cause, then drop it into the inbox again",
        job=job, jobs=jobs,
    )


def _attachments_into(folder: Path, place: JobPlace) -> tuple[Attachment, ...]:
    """``place``'s sidecars as they go into the outcome ``folder``, each from where it is."""
    return tuple(Attachment(a.rel, str(_attachment_target(folder, a.rel)), a.at)
                 for a in place.attachments)


def _attachment_target(folder: Path, rel: str) -> Path:
    """Where a sidecar dropped at ``rel`` goes in the outcome ``folder``: its place there, or
    a free name beside it (an earlier drop's file of that name is kept)."""
    return free_path(folder / fitting_rel(rel))


def _changed_after(source: Path, target: Path) -> bool:
    """Whether ``source`` (its inode: made, written, renamed) changed after ``target`` was
    made. A move's copy is made after its source was last written, so a source changed
    later is not the one the move copied. (On Windows ``st_ctime`` is the creation time:
    the same answer for a copy made later.) Unreadable: True, so nothing is removed."""
    try:
        return os.lstat(source).st_ctime_ns > os.lstat(target).st_ctime_ns
    except OSError:
        return True


def _same_content(source: Path, target: Path) -> bool:
    """Whether ``target`` is a whole copy of ``source``: two regular files (not one file
    under two names) of the same size and content hash, or two symbolic links with the same
    target (a link crosses disks as a link, its target never read)."""
    try:
        a, b = os.lstat(source), os.lstat(target)
        if stat.S_ISLNK(a.st_mode) and stat.S_ISLNK(b.st_mode):
            return os.readlink(source) == os.readlink(target)
        if not (stat.S_ISREG(a.st_mode) and stat.S_ISREG(b.st_mode)):
            return False
        if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino) or a.st_size != b.st_size:
            return False
        return content_hash(source) == content_hash(target)
    except OSError:
        return False  # gone or unreadable meanwhile: nothing is removed on a guess


def _kept_by_the_disk(path: Path, target: Path) -> bool:
    """Whether ``path``, a file still in the inbox after the move of a job's file to
    ``target`` was finished, is the same file, which the disk would not let go (the warning
    said so; the next look tries again): not a second job, however many looks meet it. One
    that differs, or was put there after the copy was made, is a new drop."""
    return not _changed_after(path, target) and _same_content(path, target)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def _said(job: Job, reason: str, todo: str) -> Rejection:
    """The console's line for ``job``, settled in failed/ at its take: where its file is
    now, what failed; what helps (the words of its note)."""
    return Rejection(job.source_path, advised(reason, todo))


def _other_reason(path: Path) -> tuple[str, str]:
    if path.name.endswith(REPORT_SUFFIX):  # not ours: is_own_note took ours out
        return (
            f"{path.name} is not a job report of this hot folder, nor a model file "
            f"({IMPORTED})",
            "keep your own files out of the inbox; drop model files (and their sidecars)",
        )
    if kind_of(path) is FileKind.SIDECAR:
        return (
            f"sidecar {path.name} has no model file or case folder of the same name",
            "drop the sidecar together with its model (write the sidecar first, or drop "
            "both in a case folder)",
        )
    advice = by_name(path)  # in `run`'s words
    return advice.why, advice.todo


def _bad_files(drop: Drop) -> list[tuple[Path, str, str]]:
    """The files of ``drop`` that cannot be prepared, each with why and what helps, judged
    before any is taken (hashed, read whole): a model the account may not read (its mode or
    owner: no later look changes it), one over the readers' size limit (by ``stat``: `run`'s
    reader refuses it by the same rule and in the same words), and, in a case folder, each
    file that is not a model (a loose one is its own drop, refused alone)."""
    bad: list[tuple[Path, str, str]] = []
    for model in drop.models:
        if (locked := permission_refusal(model)) is not None:
            bad.append((model, f"{model.name} cannot be read ({locked})",
                        "give the account the hot folder runs as permission to read it (or "
                        "copy it in as that account), then drop it again"))
        elif (too_large := stat_oversize(model)) is not None:
            bad.append((model, f"{model.name}: {too_large}",
                        f"{TOO_LARGE_HINT}, then drop it again"))
    if drop.is_case:  # (a file that is no part goes to failed/ alone: the case goes on)
        bad.extend((other, *_other_reason(other)) for other in drop.others if is_part(other))
    return bad


def _sidecars_of(folder: Path, stem: str) -> list[Path]:
    return [p for p in (folder / f"{stem}{s}" for s in SIDECAR_SUFFIX_ORDER) if p.is_file()]

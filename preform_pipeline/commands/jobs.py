"""``preform-pipeline jobs``: list the job store's jobs, show one's history, retry or cancel.

::

    preform-pipeline jobs [--state S[,S...]] [--recipe R] [--since WHEN] [--limit N]
    preform-pipeline jobs show JOB|CASE
    preform-pipeline jobs retry JOB|CASE
    preform-pipeline jobs cancel JOB|CASE
    preform-pipeline jobs resolve JOB --printed | --not-printed
    preform-pipeline jobs waiting

JOB is a job id (``12``) or job key (``PP-4K7QX0M2ZD``, any case); ``show``, ``retry`` and
``cancel`` also take a case id (``C-1042``, or ``case:1042`` for one that looks like a job id)
and act on every job of the case. The list shows each job's case and printer. ``resolve``
also takes the
job key of a build. ``resolve`` is how a person settles an unverified print (an interrupted
send nobody could prove printed or not, docs/printing.md): ``--printed`` records the print as
sent, ``--not-printed`` as failed (``jobs retry`` then prints it again); either writes an
audit row. ``waiting`` lists the builds waiting for a free printer (docs/dispatch.md): for
which printers, since when, in the order they go out. ``--state`` takes states
(``failed``, ``print-sent``) and groups (``active``, ``terminal``, ``interrupted``, ``pending``,
``retryable``). ``--since`` takes a date or time (``2024-05-01``, ``2024-05-01T08:00``, local
time unless it names a zone) or an age (``30m``, ``12h``, ``1d``, ``2w``) and keeps jobs that
changed since then. The list without ``--state`` counts, in one line, the failed jobs a later
job of the same recipe and file printed instead of listing them (store/superseded.py; a
killed ``run``'s jobs, printed by the next run); with ``--state`` they are listed, marked.
Every action takes ``--store PATH|URL`` (default: the settings'
``store.url`` or ``store.path``) and ``--format text|json``; its hints name the ``jobs``
command that reaches the store it used (``hotfolder.files.jobs_command``).

The command is safe while the hot-folder daemon runs: the store is read and written in short
transactions, and retry and cancel are compare-and-set changes that fail cleanly, changing
nothing, if the daemon moved the job first.

Exit status: 0 done; 1 no such job, a change the job's state does not allow, or a store that
cannot be read; 2 usage errors.
"""

from __future__ import annotations

import argparse
import getpass
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final, TextIO

from preform_pipeline.commands._common import (
    EXIT_FAILURE,
    EXIT_OK,
    rehearsal_aside,
    store_location,
)
from preform_pipeline.commands._waiting import write_waiting
from preform_pipeline.commands.arguments.jobs import (
    DEFAULT_LIMIT,
    FORMATS,
    HELP,
    NAME,
    STATE_GROUPS,
    add_arguments,
    parse_since,
    parse_state_filter,
)
from preform_pipeline.errors import (
    PipelineError,
    StoreError,
    StoreNotFoundError,
    full_disk_advice,
)
from preform_pipeline.hotfolder.files import jobs_command
from preform_pipeline.hotfolder.intake import place_of
from preform_pipeline.hotfolder.whereabouts import (
    dropped_after,
    file_now,
    retry_check,
    sidecar_now,
    state_meaning,
    superseded_hint,
    taken_again,
    unwatched,
    who_takes,
)
from preform_pipeline.printing import PrintOwner
from preform_pipeline.printing.approval import approve, reject
from preform_pipeline.settings import Settings, load_settings
from preform_pipeline.store import (
    CANCELLABLE_STATES,
    FINAL_STATES,
    PRINT_PENDING_STATES,
    PRINT_SENT_STATES,
    RETRYABLE_STATES,
    VERIFIED_STATES,
    Build,
    Job,
    JobState,
    JobStore,
    Transition,
    normalize_key,
)
from preform_pipeline.store.fields import BOOKKEEPING_FIELDS
from preform_pipeline.store.opening import describe_store, open_store, store_exists
from preform_pipeline.store.superseded import (
    PUT_RIGHT_STATES,
    WHY_SUPERSEDED,
    superseded,
    superseded_note,
)
from preform_pipeline.wording import counted, visible

__all__ = [
    "DEFAULT_LIMIT",
    "EXIT_FAILURE",
    "EXIT_OK",
    "FORMATS",
    "HELP",
    "NAME",
    "RETRY_REASON",
    "CANCEL_REASON",
    "CASE_PREFIX",
    "STATE_GROUPS",
    "add_arguments",
    "job_to_dict",
    "parse_since",
    "parse_state_filter",
    "run",
]


RETRY_REASON: Final = "retried by user"
CANCEL_REASON: Final = "cancelled by user"
#: Names a case explicitly where its id could be read as a job id (``case:1042``).
CASE_PREFIX: Final = "case:"


# --- argument parsing ------------------------------------------------------------------------


# --- rendering -------------------------------------------------------------------------------


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).isoformat()


def job_to_dict(
    job: Job, superseded_by: Job | None = None, waits: str | None = None
) -> dict[str, Any]:
    """A job as JSON-compatible data (what ``--format json`` prints); ``superseded_by``: the
    later job that printed a failed job's file (store/superseded.py), or None; ``waits``: what
    a retried job no running node takes back waits for (``whereabouts.unwatched``), or None,
    the words the text form says before its reason."""
    return {
        "id": job.id,
        "job_key": job.job_key,
        "state": job.state.value,
        "recipe": job.recipe,
        "source_path": str(job.source_path),
        "original_name": job.original_name,
        "content_hash": job.content_hash,
        "case_id": job.case_id,
        "priority": job.priority,
        "fields": dict(job.fields),
        "build_id": job.build_id,
        "reason": job.reason,
        "attempts": job.attempts,
        "created_at": _iso(job.created_at),
        "updated_at": _iso(job.updated_at),
        "print_job_id": job.print_job_id,
        "printer": job.printer,
        "verified_status": job.verified_status,
        "verified_message": job.verified_message,
        "verified_at": _iso(job.verified_at),
        "superseded_by": None if superseded_by is None else {
            "id": superseded_by.id, "job_key": superseded_by.job_key,
            "state": superseded_by.state.value},
        "waits": waits,
    }


def _build_to_dict(build: Build) -> dict[str, Any]:
    return {
        "id": build.id,
        "job_key": build.job_key,
        "state": build.state.value,
        "recipe": build.recipe,
        "job_ids": list(build.job_ids),
        "server": build.server,
        "form_path": str(build.form_path) if build.form_path else None,
        "print_job_id": build.print_job_id,
        "printer": build.printer,
        "job_name": build.job_name,
        "verified_status": build.verified_status,
        "verified_message": build.verified_message,
        "reason": build.reason,
        "created_at": _iso(build.created_at),
        "updated_at": _iso(build.updated_at),
        "print_sent_at": _iso(build.print_sent_at),
        "verified_at": _iso(build.verified_at),
        "print_target": dict(build.print_target) if build.print_target else None,
        "waiting_since": _iso(build.waiting_since),
        "priority": build.priority,
        # The folder whose disk refused a write for want of room, when that stopped the
        # build (docs/jobs.md); the words form says what helps.
        "full_disk": str(build.full_disk) if build.full_disk is not None else None,
    }


def _transition_to_dict(t: Transition) -> dict[str, Any]:
    return {
        "at": _iso(t.at),
        "from_state": t.from_state.value if t.from_state else None,
        "to_state": t.to_state.value,
        "reason": t.reason,
        "build_id": t.build_id,
    }


def _show_to_dict(
    job: Job, build: Build | None, history: Sequence[Transition], again: Job | None,
    superseded_by: Job | None, waits: str | None,
) -> dict[str, Any]:
    """``jobs show --format json`` of one job: its stored fields as they are, its build and
    history, and where its file and sidecars are now (what the words form says, as data)."""
    place = place_of(job)
    return {
        "job": job_to_dict(job, superseded_by, waits),
        "file_now": file_now(job, place, again).to_dict(),
        "sidecars_now": [sidecar_now(a.at, again).to_dict()
                         for a in (place.attachments if place is not None else ())],
        "build": _build_to_dict(build) if build else None,
        "history": [_transition_to_dict(t) for t in history],
    }


def _dump(data: Any, out: TextIO) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False), file=out)


def _table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    # A dropped file's name, and a reason quoting it, may hold a terminal's escape sequence.
    rows = [[visible(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.rjust(w) if i == 0 else cell.ljust(w) for i, (cell, w) in
                 enumerate(zip(row, widths, strict=True))]
        print("  ".join(cells).rstrip(), file=out)


def _write_list(
    jobs: Sequence[Job], limit: int | None, out: TextIO, *,
    superseded_by: Mapping[int, Job], hide_superseded: bool,
    waits: Mapping[int, str] | None = None,
) -> None:
    """The jobs as a table. Failed jobs a later job put right are marked, or, when
    ``hide_superseded`` (the list without ``--state``), counted in one line instead: a killed
    run's failures that the next run printed are history, not something to act on. A
    retried job no running node takes back says what it waits for (``waits``, by job id)."""
    waits = waits or {}
    hidden = [j for j in jobs if j.id in superseded_by] if hide_superseded else []
    shown = [j for j in jobs if not hidden or j.id not in superseded_by]
    if shown:
        rows = [("ID", "STATE", "CASE", "PRINTER", "RECIPE", "FILE", "UPDATED (UTC)", "KEY",
                 "REASON")]
        rows += [
            (str(j.id), j.state.value, j.case_id or "-", j.printer or "-", j.recipe,
             j.original_name, _when(j.updated_at), j.job_key,
             f"{superseded_note(superseded_by[j.id])}: {j.reason}"
             if j.id in superseded_by else
             f"{waits[j.id]}: {j.reason}" if j.id in waits else j.reason)
            for j in shown
        ]
        _table(rows, out)
    count = len(jobs)
    note = counted(len(shown), "job") if shown else "no jobs"
    if limit is not None and count == limit:
        note += f" (the {limit} most recent; --limit 0 shows all)"
    print(note, file=out)
    if hidden:
        # Their states, in the rule's order: a print that failed is put right too, and
        # `--state failed` alone would not list it.
        states = ",".join(s.value for s in PUT_RIGHT_STATES if any(j.state is s for j in hidden))
        print(f"{counted(len(hidden), 'failed job')} not listed: {WHY_SUPERSEDED} "
              f"(--state {states} lists them)", file=out)


#: States in which the printer took the print (whether or not it gave a job id).
_TAKEN_STATES: Final = PRINT_PENDING_STATES | VERIFIED_STATES | {JobState.DONE}


def _print_text(job: Job, build: Build | None) -> str:
    """What is known of a job's print, and nothing more: a refused print has no job id
    (it was shown as ``job ? on ...``, as if one existed and was lost)."""
    printer = job.printer or (build.printer if build is not None else None)
    to = f" {printer}" if printer else " the printer"
    state = build.state if build is not None else job.state
    tried = "sent"
    if job.print_job_id:
        text = f"job {job.print_job_id} on{to}"
    elif state is JobState.PRINT_SENDING:
        text, tried = f"being sent to{to}, no answer yet", "since"
    elif state in (JobState.FAILED, JobState.CANCELLED) and build is not None \
            and build.print_sent_at is not None:
        text, tried = f"not sent:{to} did not take it (the reason says why)", "tried"
    elif state in (JobState.FAILED, JobState.CANCELLED):
        # Never tried (rejected by an operator, cancelled while held, failed before its
        # send): the printer refused nothing.
        text = f"not sent to{to} (the reason says why)"
    elif state is JobState.UNVERIFIED:
        text = f"not known whether{to} took it (the reason says how to settle it)"
    elif state in _TAKEN_STATES:
        text = f"taken by{to}, which gave no job id"
    else:
        text, tried = f"none yet, for{to}", ""
    if build is not None and build.job_name:
        text += f", named {build.job_name!r}"
    if build is not None and build.print_sent_at and tried:
        text += f", {tried} {_when(build.print_sent_at)}"
    return text


def _write_show(
    job: Job, build: Build | None, history: Sequence[Transition], again: Job | None,
    superseded_by: Job | None, out: TextIO, *, jobs: str, waits: str | None = None,
) -> None:
    """One job in words; ``jobs``: the command reaching its store, for the hints."""
    print(f"job {job.id}  {job.job_key}  {job.state.value}", file=out)
    print(f"  {state_meaning(job)}", file=out)
    if waits is not None:
        print(f"  {visible(waits)}", file=out)
    if superseded_by is not None:
        print(f"  {superseded_note(superseded_by)}: {WHY_SUPERSEDED}; nothing to do",
              file=out)
    # The hot folder's own record (``_hotfolder``) is bookkeeping: shown as what it tells a
    # person (where the file was dropped, its sidecars, the job it duplicates), not as data.
    place = place_of(job)
    lines: list[tuple[str, str]] = [
        ("recipe", job.recipe),
        ("file", file_now(job, place, again).text()),
        ("dropped as", job.original_name if place is None
         else f"{place.rel} in {place.inbox}"),
    ]
    if place is not None:
        lines += [("sidecar", sidecar_now(a.at, again).text()) for a in place.attachments]
        if place.duplicate_of:
            lines.append(("duplicate of", place.duplicate_of))
    if job.content_hash:
        lines.append(("content", job.content_hash))
    if job.case_id:
        lines.append(("case", job.case_id))
    lines += [("priority", str(job.priority)), ("attempts", str(job.attempts))]
    values = {k: v for k, v in job.fields.items() if k not in BOOKKEEPING_FIELDS}
    if values:
        lines.append(("fields", ", ".join(f"{k}={v}" for k, v in values.items())))
    if build is not None:
        where = f" on {build.server}" if build.server else ""
        lines.append(("build", f"{build.id}  {build.job_key}  {build.state.value}{where}"))
        if build.form_path:
            lines.append(("form", str(build.form_path)))
        if build.full_disk is not None:
            # The reason says what the write hit; this says what a person frees, from the
            # store's field (the reason's words are no rule: errors.refused_by_a_full_disk).
            # Its job is failed (a retried job no longer names the build), but one a later job
            # put right is not retried (`jobs retry` refuses it: "nothing to do" above).
            then = "" if superseded_by is not None else f", then: {jobs} retry {job.job_key}"
            lines.append(("disk full", full_disk_advice(build.full_disk) + then))
    if job.print_job_id or job.printer or (build is not None and build.job_name):
        lines.append(("print", _print_text(job, build)))
    if job.verified_status or job.verified_at:
        verified = job.verified_status or "-"
        if job.verified_at:
            verified += f" at {_when(job.verified_at)}"
        if job.verified_message:
            verified += f": {job.verified_message}"
        lines.append(("verified", verified))
    lines += [
        ("reason", job.reason or "-"),
        ("created", _when(job.created_at)),
        ("updated", _when(job.updated_at)),
    ]
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        print(f"{label.ljust(width)}  {visible(value)}", file=out)
    print(file=out)
    print("history", file=out)
    rows = [
        (
            _when(t.at),
            f"{t.from_state.value if t.from_state else '(new)'} -> {t.to_state.value}",
            visible(t.reason),
        )
        for t in history
    ]
    width_at = max(len(r[0]) for r in rows)
    width_move = max(len(r[1]) for r in rows)
    for at, move, reason in rows:
        print(f"  {at.ljust(width_at)}  {move.ljust(width_move)}  {reason}".rstrip(), file=out)


# --- actions ---------------------------------------------------------------------------------


def _store_path(args: argparse.Namespace, stderr: TextIO) -> tuple[Path | str, str]:
    """The store to open, and the ``jobs`` command that reaches it, for this one's hints."""
    if args.store is not None:
        location = store_location(args.store, stderr)
        return location, jobs_command(Settings(), location)
    settings = load_settings(args.settings)
    return settings.store.location, jobs_command(settings)


_MAX_JOB_ID = 2**63 - 1


def _find(store: JobStore, text: str, jobs: str) -> Job:
    """The job ``text`` names; ``jobs``: the command reaching ``store``, for the hints."""
    cleaned = text.strip()
    if cleaned.isdigit():
        if int(cleaned) > _MAX_JOB_ID:  # SQLite ids are 64-bit: such a job cannot exist
            raise StoreError(
                f"no job with id {cleaned[:30]}",
                hint=f"`{jobs}` lists the jobs",
            )
        try:
            return store.get_job(int(cleaned))
        except StoreNotFoundError as exc:
            # The store's own hint names no store; this one names the store just read.
            raise StoreNotFoundError(exc.what, location=exc.location,
                                     hint=f"`{jobs}` lists the jobs") from None
    if normalize_key(cleaned) is None:
        raise StoreError(
            f"{text!r} is neither a job id nor a job key",
            hint=f"give the number or the PP-... key that `{jobs}` lists",
        )
    job = store.find_by_key(cleaned)
    if job is None:
        raise StoreError(
            f"no job with key {normalize_key(cleaned)}",
            hint=f"`{jobs}` lists the jobs",
        )
    return job


def _case_jobs(store: JobStore, case_id: str) -> list[Job]:
    return [j for j in store.list_jobs() if j.case_id == case_id]


def _key_jobs(store: JobStore, key: str, jobs: str) -> list[Job]:
    """The job ``key`` names, else every job of the build it names.

    The daemon's console, the dashboard, ``verify`` and ``jobs approve`` name a build by its
    own key, which no job has: ``jobs show`` of that key answered "no job with key".
    """
    job = store.find_by_key(key)
    if job is not None:
        return [job]
    build = store.find_build_by_key(key)
    found = [] if build is None else list(store.list_jobs(build_id=build.id, limit=None))
    return found or [_find(store, key, jobs)]


def _find_all(store: JobStore, text: str, jobs: str) -> list[Job]:
    """The jobs ``text`` names: one (an id or a key), every job of a build (its key), or
    every job of a case.

    ``case:C-1042`` is always a case; a number is a job id when such a job exists, else a
    case id; a key is a job's key, else a build's; anything else is a case id.
    """
    cleaned = text.strip()
    if cleaned.lower().startswith(CASE_PREFIX):
        case_id = cleaned[len(CASE_PREFIX):].strip()
    else:
        if normalize_key(cleaned) is not None:
            return _key_jobs(store, cleaned, jobs)
        if cleaned.isdigit():
            try:
                return _key_jobs(store, cleaned, jobs)
            except StoreError as exc:
                # Not a job id: maybe a case named by a number.
                return _case_jobs(store, cleaned) or _raise(exc)
        case_id = cleaned
    found = _case_jobs(store, case_id)
    if not found:
        raise StoreError(
            f"{text.strip()!r} is neither a job id nor a job key, and no job "
            f"has case id {case_id!r}",
            hint=f"`{jobs}` lists the jobs with their keys and case ids",
        )
    return found


def _raise(exc: StoreError) -> list[Job]:
    raise exc


def _list(args: argparse.Namespace, path: Path | str, out: TextIO) -> int:
    limit = args.limit or None
    states: frozenset[JobState] | None = None
    if args.state:
        states = frozenset().union(*args.state)
    if not store_exists(path):
        # Nothing has run yet: an empty answer, not an error, so scripts can poll.
        if args.format == "json":
            _dump({"store": describe_store(path), "jobs": []}, out)
        else:
            # The path as typed (--store) may hold a terminal's escape sequences.
            print(visible(f"no jobs (no job store at {path} yet"
                          f"{rehearsal_aside(path)})"), file=out)
        return EXIT_OK
    with open_store(path, create=False, read_only=True) as store:
        jobs = store.list_jobs(state=states, recipe=args.recipe, since=args.since, limit=limit)
        later = superseded(store, jobs)
        waits = unwatched(store, jobs)
    if args.format == "json":
        # Data: every job, each failed one that was put right saying by which.
        _dump({"store": describe_store(path),
               "jobs": [job_to_dict(j, later.get(j.id), waits.get(j.id)) for j in jobs]}, out)
    else:
        _write_list(jobs, limit, out, superseded_by=later, hide_superseded=states is None,
                    waits=waits)
    return EXIT_OK


def _show(args: argparse.Namespace, path: Path | str, out: TextIO) -> int:
    shown: list[tuple[Job, Build | None, tuple[Transition, ...]]] = []
    with open_store(path, create=False, read_only=True) as store:
        for job in _find_all(store, args.job, args.jobs_command):
            build = store.get_build(job.build_id) if job.build_id is not None else None
            shown.append((job, build, tuple(store.history(job.id))))
        later = {job.id: dropped_after(store, job) for job, _, _ in shown}
        fixed = superseded(store, [job for job, _, _ in shown])
        waits = unwatched(store, [job for job, _, _ in shown])
    if args.format == "json":
        views = [
            _show_to_dict(job, build, history, taken_again(job, later[job.id]),
                          fixed.get(job.id), waits.get(job.id))
            for job, build, history in shown
        ]
        _dump(views[0] if len(views) == 1 else {"jobs": views}, out)
    else:
        for index, (job, build, history) in enumerate(shown):
            if index:
                print(file=out)
            _write_show(job, build, history, taken_again(job, later[job.id]),
                        fixed.get(job.id), out, jobs=args.jobs_command,
                        waits=waits.get(job.id))
    return EXIT_OK


def _each(
    args: argparse.Namespace, path: Path | str, out: TextIO, err: TextIO,
    one: Callable[[JobStore, Job, TextIO], tuple[Job, JobState, str] | None],
) -> int:
    """``one`` for every job ``args.job`` names (a case: all its jobs); 1 if any failed."""
    done: list[tuple[Job, JobState, str]] = []
    failed = 0
    with open_store(path, create=False) as store:
        for job in _find_all(store, args.job, args.jobs_command):
            changed = one(store, job, err)
            if changed is None:
                failed += 1
            else:
                done.append(changed)
    if args.format == "json":
        rows = [{"job": job_to_dict(j), "previous_state": b.value} for j, b, _ in done]
        if len(rows) == 1 and not failed:
            _dump(rows[0], out)
        elif rows or failed:
            _dump({"jobs": rows, "refused": failed}, out)
    else:
        for _, _, text in done:
            print(text, file=out)
    return EXIT_FAILURE if failed else EXIT_OK


def _retry(args: argparse.Namespace, path: Path | str, out: TextIO, err: TextIO) -> int:
    return _each(args, path, out, err,
                 lambda store, job, err: _retry_one(store, job, err, args.jobs_command,
                                                    force=args.force))


def _retry_one(
    store: JobStore, job: Job, err: TextIO, jobs: str, *, force: bool = False
) -> tuple[Job, JobState, str] | None:
    before = job.state
    name = f"job {job.id} ({job.job_key})"
    if before not in RETRYABLE_STATES:
        retryable = ", ".join(sorted(s.value for s in RETRYABLE_STATES))
        if before in FINAL_STATES:
            why = "it completed; drop the file into the hot folder again for a new job"
        else:
            why = "it is still being worked on"
        print(f"error: {name} is {before.value}: {why}. Only {retryable} jobs can be "
              "retried.", file=err)
        return None
    check = retry_check(store, job, force=force)
    if check.refusal is not None:
        hint = ("" if check.superseded_by is None
                else f"; {superseded_hint(jobs, [job.job_key])}")
        print(f"error: {name} was not queued again: {check.refusal}{hint}", file=err)
        return None
    if check.note is not None:
        print(f"note: {name}: {check.note}", file=err)
    if before is JobState.UNVERIFIED:
        printer = f" on {job.printer}" if job.printer else ""
        print(
            f"note: the earlier print of {name}{printer} was never verified; if it did "
            f"print, cancel this retry: {jobs} cancel {job.id}",
            file=err,
        )
    job = store.transition(job.id, JobState.QUEUED, RETRY_REASON, expect=before)
    return job, before, f"{name} queued again (was {before.value}); {who_takes(job)}"


def _cancel(args: argparse.Namespace, path: Path | str, out: TextIO, err: TextIO) -> int:
    return _each(args, path, out, err, _cancel_one)


def _cancel_one(
    store: JobStore, job: Job, err: TextIO
) -> tuple[Job, JobState, str] | None:
    before = job.state
    name = f"job {job.id} ({job.job_key})"
    if before is JobState.CANCELLED:
        return job, before, f"{name} is already cancelled"
    if before in PRINT_SENT_STATES:
        build = store.get_build(job.build_id) if job.build_id is not None else None
        key = build.job_key if build else job.job_key
        printer = job.printer or (build.printer if build else None) or "its printer"
        when = "is being sent" if before is JobState.PRINT_SENDING else "was sent"
        print(
            f"error: {name} cannot be cancelled here: its print {when} to {printer} "
            f"(job key {key}). Cancel the print on the printer or in Formlabs Dashboard; "
            "verification then records the job as aborted.",
            file=err,
        )
        return None
    if before not in CANCELLABLE_STATES:
        print(f"error: {name} is {before.value}: it is over, there is nothing to cancel",
              file=err)
        return None
    build_note = ""
    if job.build_id is not None:
        build = store.get_build(job.build_id)
        if build.state in (JobState.PREPARING, JobState.PREPARED,
                           JobState.WAITING_FOR_PRINTER):
            build_note = f"; build {build.id} will be prepared again without it"
    job = store.transition(job.id, JobState.CANCELLED, CANCEL_REASON, expect=before)
    return job, before, f"{name} cancelled (was {before.value}){build_note}"


def _resolve(args: argparse.Namespace, path: Path | str, out: TextIO, err: TextIO) -> int:
    with open_store(path, create=False) as store:
        build = store.find_build_by_key(args.job.strip()) if normalize_key(args.job) else None
        if build is None:
            job = _find(store, args.job, args.jobs_command)
            if job.build_id is None:
                print(f"error: job {job.id} ({job.job_key}) has no print to settle", file=err)
                return EXIT_FAILURE
            build = store.get_build(job.build_id)
        before = build.state
        try:
            build = PrintOwner(store, jobs=args.jobs_command).settle_by_person(
                build, printed=bool(args.printed))
        except PipelineError as exc:
            print(f"error: {exc}", file=err)
            return EXIT_FAILURE
    verdict = "printed" if args.printed else "not printed"
    if args.format == "json":
        _dump({"build": _build_to_dict(build), "previous_state": before.value}, out)
    else:
        print(f"print {build.job_key} settled as {verdict}: {build.state.value} "
              f"(was {before.value})", file=out)
    return EXIT_OK


def _decide(args: argparse.Namespace, path: Path | str, out: TextIO, err: TextIO) -> int:
    """``jobs approve|reject``: the held build of a key, job or case, decided by this user."""
    user = f"{getpass.getuser()} (cli)"
    with open_store(path, create=False) as store:
        build = store.find_build_by_key(args.job.strip()) if normalize_key(args.job) else None
        builds = [build] if build is not None else [
            store.get_build(i) for i in dict.fromkeys(
                j.build_id for j in _find_all(store, args.job, args.jobs_command)
                if j.build_id is not None)]
        held = [b for b in builds if b.state is JobState.AWAITING_APPROVAL]
        if not held:
            print(f"error: {args.job!r} has no build awaiting approval", file=err)
            return EXIT_FAILURE
        for b in held:
            try:
                done = (approve(store, b.id, user, jobs=args.jobs_command)
                        if args.action == "approve"
                        else reject(store, b.id, user, args.reason, jobs=args.jobs_command))
            except PipelineError as exc:
                print(f"error: {exc}", file=err)
                return EXIT_FAILURE
            verb = "approved" if args.action == "approve" else "rejected"
            print(f"build {done.job_key} {verb}: {done.state.value}", file=out)
    return EXIT_OK


_ACTIONS: Final[Mapping[str, Callable[[argparse.Namespace, Path | str, TextIO, TextIO], int]]] = {
    "list": lambda a, p, o, e: _list(a, p, o),
    "show": lambda a, p, o, e: _show(a, p, o),
    "retry": _retry,
    "cancel": _cancel,
    "resolve": _resolve,
    "waiting": lambda a, p, o, e: write_waiting(p, a.format, o),
    "approve": _decide,
    "reject": _decide,
}


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    path, args.jobs_command = _store_path(args, stderr)
    return _ACTIONS[args.action or "list"](args, path, stdout, stderr)

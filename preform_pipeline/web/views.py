"""What each page shows, read from the job store (and the live sources): plain values.

The templates only lay these out; every rule about what a state means or why something waits
comes from :mod:`preform_pipeline.store.model` and the rows' own reasons.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import urlencode

from preform_pipeline.cloud.models import Printer
from preform_pipeline.dispatch.waiting import waiting_order
from preform_pipeline.errors import PipelineError, full_disk_advice
from preform_pipeline.executor.report_beside import report_beside
from preform_pipeline.hotfolder.whereabouts import retry_check, state_meaning, unwatched
from preform_pipeline.printing.target import PrintTarget
from preform_pipeline.store import Build, CaseKey, Job, JobState, JobStore, Transition
from preform_pipeline.store.model import (
    ACTIVE_STATES,
    CANCELLABLE_STATES,
    PRINT_SENT_STATES,
    RETRYABLE_STATES,
    STATE_DESCRIPTIONS,
    VERIFIED_STATES,
)
from preform_pipeline.store.sqlcore import iso_utc
from preform_pipeline.store.superseded import superseded
from preform_pipeline.web.sources import LiveSources

__all__ = [
    "AFTER",
    "BEFORE",
    "FAILED_STATES",
    "FILTERS",
    "HISTORY_PAGE_CASES",
    "LEAD_ORDER",
    "MAX_SEARCH_CHARS",
    "LISTED",
    "PAGE_ROWS",
    "QUEUE_PAGE_ROWS",
    "SUPERSEDED_PARAM",
    "BuildPage",
    "CasePage",
    "CaseReason",
    "CaseRow",
    "FailedCases",
    "HistoryPage",
    "PrinterRow",
    "QueueFilter",
    "QueuePage",
    "build_page",
    "case_rows",
    "failed_cases",
    "history_rows",
    "printer_rows",
    "queue_builds",
    "queue_page",
    "screenshot_of",
]

#: How many of the builds waiting for a printer its card names (the rest are counted).
NEXT_SHOWN: Final = 3
#: How many jobs the Failed cases page reads at most (the newest).
PAGE_ROWS: Final = 300
#: How many cases one page of History shows.
HISTORY_PAGE_CASES: Final = 60
#: How many jobs, and how many builds, one page of the queue shows: the live refresh fetches
#: the shown page again every few seconds, so a long queue is not fetched whole each time.
QUEUE_PAGE_ROWS: Final = 50
#: The longest page number read from a query (a million pages of 50 is past any lab's store).
_PAGE_DIGITS: Final = 6
_R = TypeVar("_R")
#: Screenshot formats the server writes (a fly-around is .webp).
_IMAGE_SUFFIXES: Final = (".png", ".webp", ".jpg")
#: Cases on the "Failed cases" page: the pipeline stopped, a person decides. A skipped
#: duplicate is one: its file is in failed/ beside a note, as the others' are.
FAILED_STATES: Final = frozenset({JobState.FAILED, JobState.CANCELLED, JobState.ABORTED,
                                  JobState.PRINT_ERROR, JobState.UNVERIFIED,
                                  JobState.DUPLICATE_SKIPPED})
_PRINT_STATES: Final = PRINT_SENT_STATES | VERIFIED_STATES | {JobState.UNVERIFIED}
#: A build whose screenshot step has not run yet (the picture is taken as it is prepared).
_NOT_YET_SAVED: Final = frozenset({JobState.PROCESSING, JobState.PREPARING})
#: The print step's kind, named in "Steps done" once dispatch has sent a build that waited.
_PRINT_STEP: Final = "print"

#: The longest search the queue and History take: far longer than any case id, file name or
#: key, and far inside SQLite's longest LIKE pattern (50,000 bytes), past which a search was a
#: server failure.
MAX_SEARCH_CHARS: Final = 1000

#: The query parameter (and its value) with which Failed cases, the queue and History list the
#: failed jobs a later job put right too.
SUPERSEDED_PARAM: Final = "superseded"
LISTED: Final = "listed"

#: The queue's state filter: name → (label, states).
FILTERS: Final[dict[str, tuple[str, frozenset[JobState]]]] = {
    "active": ("In progress", frozenset(ACTIVE_STATES)),
    "approval": ("Awaiting approval", frozenset({JobState.AWAITING_APPROVAL})),
    "waiting": ("Waiting for a printer", frozenset({JobState.WAITING_FOR_PRINTER})),
    "printing": ("Printing", frozenset(_PRINT_STATES)),
    "failed": ("Failed", FAILED_STATES),
    "all": ("All", frozenset(JobState)),
}


@dataclass(frozen=True)
class QueueFilter:
    """The queue's filters, from the query string."""

    state: str = "active"
    recipe: str = ""
    text: str = ""
    #: The queue's page, 1 the newest.
    page: int = 1
    #: The failed jobs a later job put right are listed too (:func:`_shown`).
    listed: bool = False
    #: History's page starts after this case (its Older link), or ends before it (its Newer
    #: link): ``page`` then only numbers it (:func:`history_rows`).
    before: CaseKey | None = None
    after: CaseKey | None = None
    #: The position parameter (``before`` or ``after``) whose value could not be read.
    unreadable: str = ""

    @classmethod
    def parse(cls, query: Mapping[str, str], default: str = "active") -> QueueFilter:
        state = query.get("state", default)
        page = query.get("page", "1").strip()
        keys = {name: _case_key(query[name]) for name in _POSITIONS if name in query}
        return cls(state if state in FILTERS else default, query.get("recipe", "").strip(),
                   query.get("q", "").strip(),
                   _page_number(page), query.get(SUPERSEDED_PARAM) == LISTED,
                   keys.get(BEFORE), keys.get(AFTER),
                   next((name for name, key in keys.items() if key is None), ""))

    @property
    def offset(self) -> int:
        """How many of the newest rows the pages before this one show."""
        return (self.page - 1) * QUEUE_PAGE_ROWS

    def link(self, page: int) -> str:
        """The query string of another page with the same filters (listing what a later job
        put right too: the next page of a listed view left them out again)."""
        params = {"state": self.state, "recipe": self.recipe, "q": self.text,
                  SUPERSEDED_PARAM: LISTED if self.listed else "",
                  "page": str(page) if page > 1 else ""}
        return urlencode({k: v for k, v in params.items() if v})

    @property
    def states(self) -> frozenset[JobState]:
        return FILTERS[self.state][1]

    @property
    def filtered(self) -> frozenset[JobState] | None:
        """The states the page keeps, None for every one ("All")."""
        return None if self.state == "all" else self.states

    def query(self) -> dict[str, Any]:
        """The store query of the filter's page. The state, recipe and text are asked of the
        store, so the page's limit and offset apply to what they keep: reading the newest rows
        and then filtering hid a build held since before them, from its state filter and from
        the search alike. One row beyond the page says whether an older page exists."""
        return {"state": self.filtered,
                "recipe": self.recipe or None, "text": self.text or None,
                "limit": QUEUE_PAGE_ROWS + 1, "offset": self.offset}


#: History's position parameters: the page starts after the case named (Older), or ends
#: before it (Newer).
BEFORE: Final = "before"
AFTER: Final = "after"
_POSITIONS: Final = (BEFORE, AFTER)
#: Between a position's time and its job id (unreserved in a URL, never in an ISO time).
_KEY_SEP: Final = "~"
#: The longest job id read from a position (a 64-bit id has 19 digits).
_ID_DIGITS: Final = 19


def _key_text(key: CaseKey) -> str:
    """A case's key as its History links carry it: its last change (the store's own fixed
    text of a time) and its newest job's id."""
    return f"{iso_utc(key.changed)}{_KEY_SEP}{key.newest_id}"


def _case_key(text: str) -> CaseKey | None:
    """The key a History link carries, or None when it is not one (:func:`_key_text`)."""
    changed, sep, job = text.strip().rpartition(_KEY_SEP)
    if not sep or not (job.isascii() and job.isdigit() and len(job) <= _ID_DIGITS):
        return None
    try:
        moment = datetime.fromisoformat(changed)
        # In UTC, as the store compares it: a time whose UTC falls outside a datetime's
        # years (9999-12-31T23:00-14:00) is no position either.
        utc = moment.astimezone(timezone.utc) if moment.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None
    return CaseKey(utc, int(job)) if utc is not None else None


def _page_number(text: str) -> int:
    """A page number from the query; anything else is page 1. ``isdigit`` alone lets in
    "²" and digit strings too long for ``int``, which raised (a 500) instead."""
    if text.isascii() and text.isdigit() and len(text) <= _PAGE_DIGITS and int(text) > 0:
        return int(text)
    return 1


def why(state: JobState, reason: str, *, meaning: str | None = None) -> str:
    """What the state means (``meaning`` when the row's job says it in its own terms), then
    the row's own reason (why it is there)."""
    meaning = meaning or STATE_DESCRIPTIONS[state]
    return f"{meaning} — {reason}" if reason and reason not in meaning else meaning


@dataclass(frozen=True)
class CaseReason:
    """One reason of a case and the files (as the Failed page shows them) it was given for."""

    text: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class CaseRow:
    """One case (the jobs with one case id; a job without one is a case of its own)."""

    case: str
    recipe: str
    jobs: tuple[Job, ...]
    state: JobState
    why: str
    #: Each job's file where it is now, or its name when that path is gone (Failed cases).
    located: tuple[str, ...] = ()
    #: A skipped duplicate: a row of its own beside its case's, acted on by its job key.
    copy: bool = False
    #: The later job that printed each of its failed jobs a later job put right
    #: (store/superseded.py), by the failed job's id.
    superseded_by: Mapping[int, Job] = field(default_factory=dict)
    #: Why a retry cannot queue each of its jobs whose file is gone (what is gone, where it
    #: was looked for, what helps: ``retry_check``'s words), by job id (Failed cases).
    missing: Mapping[int, str] = field(default_factory=dict)

    @property
    def superseded(self) -> bool:
        """Every job of the case is a failure a later job put right: nothing to act on."""
        return all(j.id in self.superseded_by for j in self.jobs)

    @property
    def files(self) -> str:
        return ", ".join(j.original_name for j in self.jobs)

    @property
    def reasons(self) -> tuple[CaseReason, ...]:
        """Each distinct reason once, in the order its first job came, with the files it is
        the reason for: a five-file case refused for its sidecar said the same sentence five
        times, run together (session 32)."""
        located = self.located or tuple(j.original_name for j in self.jobs)
        files: dict[str, list[str]] = {}
        for job, where in zip(self.jobs, located, strict=True):
            files.setdefault(job.reason, []).append(where)
        return tuple(CaseReason(text, tuple(names)) for text, names in files.items())

    @property
    def target(self) -> str:
        """What the case actions are sent (a case id, or the one job's key)."""
        if self.jobs[0].case_id and not self.copy:
            return f"case:{self.case}"
        return self.jobs[0].job_key

    @property
    def handle(self) -> str:
        """What its buttons are named by: the case, or a skipped copy's own job key."""
        return self.jobs[0].job_key if self.copy else self.case

    @property
    def retryable(self) -> tuple[Job, ...]:
        """The jobs a retry queues: a superseded failure is not one (its retry printed the
        file a second time), nor a job whose file is gone (``missing``); the dashboard's
        Retry leaves them as they are (web/actions.py)."""
        return tuple(j for j in self.jobs if j.state in RETRYABLE_STATES
                     and j.id not in self.superseded_by and j.id not in self.missing)

    @property
    def can_retry(self) -> bool:
        return bool(self.retryable)

    @property
    def retries_others(self) -> bool:
        """Its Retry queues the case's other files, leaving those missing (a Retry of the
        whole case is refused while a file is gone)."""
        return bool(self.missing) and self.can_retry

    @property
    def can_cancel(self) -> bool:
        return any(j.state in CANCELLABLE_STATES for j in self.jobs)

    @property
    def build_ids(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(j.build_id for j in self.jobs if j.build_id is not None))

    @property
    def to_approve(self) -> tuple[int, ...]:
        """Its builds that wait for an operator's approval: the queue offers each as a button
        (session 45's tablet trial: only a small "build N" link at the end of the Why text
        led there, beside a big Cancel)."""
        return tuple(dict.fromkeys(j.build_id for j in self.jobs if j.build_id is not None
                                   and j.state is JobState.AWAITING_APPROVAL))


#: Which of a case's states speaks for it: the one furthest from done.
_STATE_ORDER: Final = {s: n for n, s in enumerate(JobState)}
#: Every state in the order it speaks for its case (a stopped job's first), as ``_row``
#: names a case's state.
LEAD_ORDER: Final = tuple(sorted(JobState, key=lambda s: (s not in FAILED_STATES,
                                                           _STATE_ORDER[s])))


def _case_of(job: Job) -> str:
    """The case a job is shown under: its case id, or its own key when it has none."""
    return job.case_id or job.job_key


def _row_key(job: Job) -> tuple[str, str]:
    """The row a job is shown in: its case, and a skipped duplicate's own key (a row of its
    own beside its case's)."""
    return _case_of(job), job.job_key if job.state is JobState.DUPLICATE_SKIPPED else ""


def _cases(jobs: Iterable[Job]) -> dict[tuple[str, str], list[Job]]:
    """The jobs of each row, in the order of the rows' first jobs."""
    cases: dict[tuple[str, str], list[Job]] = {}
    for job in jobs:
        # A skipped duplicate is no part of its case's work: in the case's row it made the
        # case's state and offered the case's Retry beside a build held for approval (a retry
        # that prepares the same model again), and it was left off Failed cases.
        cases.setdefault(_row_key(job), []).append(job)
    return cases


def _row(members: Sequence[Job], later: Mapping[int, Job], waits: Mapping[int, str]
         ) -> CaseRow:
    """One case's row. A failed job a later job put right does not speak for its case while
    another job can: the queue showed a case "failed" whose file the next run had printed."""
    case, copy = _row_key(members[0])
    lead = min(members, key=lambda j: (j.id in later, LEAD_ORDER.index(j.state)))
    # A queued job is queued for whoever takes it: a run's is no hot folder's.
    return CaseRow(case, lead.recipe, tuple(members), lead.state,
                   why(lead.state, f"{waits[lead.id]}: {lead.reason}"
                       if lead.id in waits else lead.reason, meaning=state_meaning(lead)),
                   copy=bool(copy),
                   superseded_by={j.id: later[j.id] for j in members if j.id in later})


def _recency(jobs: Sequence[Job]) -> CaseKey:
    """How recently a case changed, to put the most recent first: its jobs' last change, then
    its last made job among equals (the order of the store's ``list_history_cases``)."""
    return CaseKey(max(j.updated_at for j in jobs), max(j.id for j in jobs))


def _newest_first(rows: Iterable[CaseRow]) -> list[CaseRow]:
    return sorted(rows, key=lambda r: _recency(r.jobs), reverse=True)


def _paged(kept: Sequence[_R]) -> tuple[list[_R], bool]:
    """The rows of the filter's page in creation order, and whether an older page exists:
    the store paged already, with one row beyond the page."""
    return list(kept[-QUEUE_PAGE_ROWS:]), len(kept) > QUEUE_PAGE_ROWS


@dataclass(frozen=True)
class CasePage:
    """The cases of a page of the queue or History, and what it leaves out."""

    rows: tuple[CaseRow, ...]
    #: How many failed jobs a later job put right the page's filter does not list.
    hidden: int = 0


def _placed(store: JobStore, jobs: Sequence[Job], states: frozenset[JobState] | None,
            listed: bool) -> list[tuple[CaseRow | None, int]]:
    """Each case of ``jobs``, the most recently changed first, as a page filtered by
    ``states`` (None: every state) places it: its row (None: not on this page), and how
    many of its failed jobs a later job of their recipe and content printed
    (:func:`superseded`) the page leaves out. The rule of Failed cases, the queue, History
    and ``/metrics`` alike: such a failure is no failure to act on. Under a state filter it
    is left out, unless ``listed``, and its case is placed by the state its other jobs give
    it (a case of it alone goes with it); listed, it stays in its case, and places that case
    under its own state as well. Shown, it says which job put it right. Each check asks the
    store once for every case, not once a case."""
    later, waits = superseded(store, jobs), unwatched(store, jobs)
    placed: list[tuple[CaseRow | None, int]] = []
    for members in sorted(_cases(jobs).values(), key=_recency, reverse=True):
        put_right = [j for j in members if j.id in later]
        left_out = set() if states is None or listed else {j.id for j in put_right}
        rest = [j for j in members if j.id not in left_out]
        row = _row(rest, later, waits) if rest else None
        named = {row.state, *(j.state for j in put_right if listed)} if row else set()
        placed.append((row if row and (states is None or named & states) else None,
                       len(left_out)))
    return placed


def _shown(store: JobStore, jobs: Sequence[Job], states: frozenset[JobState] | None,
           listed: bool) -> CasePage:
    """The cases of ``jobs`` as a page filtered by ``states`` shows them (:func:`_placed`),
    the most recently changed first, and how many failed jobs put right it leaves out."""
    placed = _placed(store, jobs, states, listed)
    return CasePage(tuple(_newest_first(r for r, _ in placed if r is not None)),
                    sum(n for _, n in placed))


def case_rows(store: JobStore, flt: QueueFilter) -> tuple[CasePage, bool]:
    """The cases on the filter's page, each whole (a case is one unit of the page: its files
    taken far apart showed it on two pages), and whether older cases are on another."""
    jobs = store.list_case_jobs(**flt.query())
    newest: dict[str, int] = {}
    for job in jobs:
        newest[_case_of(job)] = job.id
    cases = sorted(newest, key=newest.__getitem__, reverse=True)
    shown = set(cases[:QUEUE_PAGE_ROWS])
    return (_shown(store, [j for j in jobs if _case_of(j) in shown], flt.filtered,
                   flt.listed),
            len(cases) > QUEUE_PAGE_ROWS)


@dataclass(frozen=True)
class FailedCases:
    """The Failed cases page: the cases, and what it leaves out."""

    rows: tuple[CaseRow, ...]
    #: How many failed jobs a later job put right (store/superseded.py) are not listed.
    hidden: int
    #: The page read as many jobs as it reads: older ones may exist (on History).
    cut: bool


def failed_cases(store: JobStore, *, with_superseded: bool = False) -> FailedCases:
    """The cases that stopped, each with where its files are now (failed/, as a rule). A
    failed job a later job of the same recipe and content printed (``superseded``, the rule
    ``jobs`` follows) is no case to act on: left out and counted, unless ``with_superseded``,
    which lists it with the job that put it right (:func:`_shown`). A killed run's failures
    stayed on this page after the next run printed every one of them.

    The page's reads (its failed jobs, the later jobs that put them right, where a retry
    would find their files) see one state of the store (``snapshot``), as History's do: a
    print committed between two of them left a failure out as put right by a job the list
    of failures had not seen, beside a case failed meanwhile that it did not show."""
    with store.snapshot():
        jobs = store.list_jobs(state=FAILED_STATES, limit=PAGE_ROWS)
        page = _shown(store, jobs, FAILED_STATES, with_superseded)
        rows = tuple(_located(store, row) for row in page.rows)
    return FailedCases(rows, page.hidden, len(jobs) >= PAGE_ROWS)


def _located(store: JobStore, row: CaseRow) -> CaseRow:
    """The row with each job's file where it is now, and the files a retry would not find
    marked missing, each with ``retry_check``'s words (the rule of the Retry button and of
    ``jobs retry``): the case is shown whole, and its Retry queues the others. A file still
    there is not looked for further (most are: the check reads the store)."""
    here = [_there(j) for j in row.jobs]
    missing = {}
    for job, there in zip(row.jobs, here, strict=True):
        if there or job.state not in RETRYABLE_STATES or job.id in row.superseded_by:
            continue
        # Superseded failures are row.superseded_by already: only the file is judged here.
        refusal = retry_check(store, job, force=True).refusal
        if refusal is not None:
            missing[job.id] = refusal
    return replace(row, missing=missing,
                   located=tuple(str(j.source_path) if there else j.original_name
                                 for j, there in zip(row.jobs, here, strict=True)))


def _there(job: Job) -> bool:
    try:
        return job.source_path.exists()
    except OSError:
        return False


@dataclass(frozen=True)
class BuildRow:
    build: Build
    cases: tuple[str, ...]
    why: str
    target: str


def _target_text(build: Build) -> str:
    if build.printer:
        return build.printer
    if build.print_target:
        return PrintTarget.from_json(build.print_target).describe()
    return ""


def _build_row(store: JobStore, build: Build) -> BuildRow:
    members = store.list_jobs(build_id=build.id)
    cases = tuple(dict.fromkeys(j.case_id or j.original_name for j in members))
    return BuildRow(build, cases, why(build.state, build.reason), _target_text(build))


def queue_builds(store: JobStore, flt: QueueFilter
                 ) -> tuple[list[BuildRow], list[BuildRow], bool]:
    """(builds, prints, more): the builds on the filter's page (newest first), those of them
    that have a print, and whether older builds are on another page."""
    kept, more = _paged(store.list_builds(**flt.query()))
    rows = [_build_row(store, b) for b in reversed(kept)]
    prints = [r for r in rows if r.build.state in _PRINT_STATES]
    return rows, prints, more


@dataclass(frozen=True)
class QueuePage:
    """The queue's page: its cases and its builds, read from one state of the store."""

    cases: CasePage
    #: Older cases are on another page.
    older_cases: bool
    builds: tuple[BuildRow, ...]
    #: Those of ``builds`` that have a print.
    prints: tuple[BuildRow, ...]
    #: Older builds are on another page.
    older_builds: bool


def queue_page(store: JobStore, flt: QueueFilter) -> QueuePage:
    """The filter's page of the queue (:func:`case_rows`, :func:`queue_builds`) in one
    snapshot of the store: read apart, a case batched between the two reads was shown
    waiting in the cases and in a build below them, two states of it on one page."""
    with store.snapshot():
        cases, older_cases = case_rows(store, flt)
        # A file gone marked as Failed cases marks it, by the same rule (its Retry then
        # queues the others; the whole case's was refused, the row showing nothing amiss).
        cases = replace(cases, rows=tuple(_located(store, row) for row in cases.rows))
        builds, prints, older_builds = queue_builds(store, flt)
    return QueuePage(cases, older_cases, tuple(builds), tuple(prints), older_builds)


@dataclass(frozen=True)
class BuildPage:
    """Everything the build page shows."""

    build: Build
    members: tuple[Job, ...]
    history: tuple[Transition, ...]
    screenshot: Path | None
    report: dict[str, Any] = field(default_factory=dict)
    target: str = ""
    material: str | None = None
    machine_type: str | None = None
    #: The later job that put right each failed member (store/superseded.py), by its id:
    #: Failed cases offers no Retry for it, nor does ``jobs retry``.
    superseded_by: Mapping[int, Job] = field(default_factory=dict)

    @property
    def awaiting(self) -> bool:
        return self.build.state is JobState.AWAITING_APPROVAL

    @property
    def unverified(self) -> bool:
        return self.build.state is JobState.UNVERIFIED

    @property
    def no_screenshot(self) -> str:
        """Why the page has no picture: it said "add a screenshot step to the recipe" for a
        build still being prepared and for a held one (whose recipe has the step: approval
        requires it) whose picture was moved or deleted, and then offered "Approve" as if
        nothing were amiss."""
        build = self.build
        if build.state in _NOT_YET_SAVED:
            return "No screenshot yet: it is taken when the build has been prepared."
        if build.form_path is None:
            return "No screenshot was saved for this build (add a screenshot step to the recipe)."
        said = (f"No screenshot was saved beside its .form in {build.form_path.parent}: the "
                "recipe has no screenshot step, or the picture was moved or deleted.")
        if self.awaiting:
            said += " Open the .form in PreForm and check it before approving."
        return said

    @property
    def full_disk(self) -> str | None:
        """What helps when a full disk stopped the build, from the store's ``full_disk`` (as
        ``jobs show`` and the hot folder's note say it); None when none did. The reason above
        it quotes the refused write, which names a file, not what to free."""
        folder = self.build.full_disk
        return full_disk_advice(folder) if folder is not None else None

    @property
    def retryable(self) -> bool:
        """A case of it can be retried (from Failed cases) once the cause is fixed: a
        member in a retryable state that no later job put right (Failed cases leaves such a
        failure out, and its Retry would not queue it: ``CaseRow.retryable``)."""
        return any(j.state in RETRYABLE_STATES and j.id not in self.superseded_by
                   for j in self.members)

    @property
    def steps_done(self) -> tuple[str, ...]:
        """The steps its run did (its report), and the print once it was sent: a build held
        for approval or waiting for a printer is sent later, by dispatch, after the report."""
        steps = self.report.get("steps_done")
        done = tuple(str(s) for s in steps) if isinstance(steps, list) else ()
        if self.build.print_sent_at is not None and _PRINT_STEP not in done:
            done += (_PRINT_STEP,)
        return done


def _siblings(build: Build) -> list[Path]:
    """Files the recipe wrote beside the build's .form (the default outputs are siblings)."""
    form = build.form_path
    if form is None or not form.parent.is_dir():
        return []
    return sorted(p for p in form.parent.iterdir() if p.stem == form.stem and p != form)


def screenshot_of(build: Build) -> Path | None:
    return next((p for p in _siblings(build) if p.suffix.lower() in _IMAGE_SUFFIXES), None)


def _report_of(build: Build) -> dict[str, Any]:
    found = None if build.form_path is None else report_beside(build.form_path, build.job_key)
    return {} if found is None else found[1]


def build_page(store: JobStore, build_id: int) -> BuildPage:
    build = store.get_build(build_id)
    target = PrintTarget.from_json(build.print_target) if build.print_target else None
    report = _report_of(build)
    members = store.list_jobs(build_id=build.id)
    return BuildPage(
        build=build,
        members=members,
        history=store.build_history(build.id),
        screenshot=screenshot_of(build),
        report=report,
        target=_target_text(build),
        # A build that waited for a printer has its target; any other, its report's scene.
        material=(target.material if target else None) or _text(report.get("material")),
        machine_type=(target.machine_type if target else None)
        or _text(report.get("machine_type")),
        superseded_by=superseded(store, members),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class PrinterRow:
    """One printer: live status when a source says, and what the store holds for it."""

    name: str
    status: str
    machine_types: str = ""
    materials: str = ""
    tank: str = ""
    current: tuple[Build, ...] = ()
    #: The builds it takes next, in the dispatcher's order (at most NEXT_SHOWN).
    next_up: tuple[Build, ...] = ()
    #: Builds waiting for it beyond those, and builds held for approval that would go to it.
    more_waiting: int = 0
    awaiting: int = 0
    #: How its last print ended when it failed (:func:`_last_print_failed`), else "".
    last_print_failed: str = ""


def _tank(raw: Any) -> str:
    """The tank the printer reports (the Local API's device keeps its JSON in ``raw``; the Web
    API's printer status nests it), or "" when its status does not say."""
    data = getattr(raw, "raw", raw)
    if not isinstance(data, Mapping):
        return ""
    named = [str(data[k]) for k in ("tank_id", "tank_material_code") if data.get(k)]
    if named:
        return " · ".join(named)
    status = data.get("printer_status")
    return _tank(status) if isinstance(status, Mapping) else str(data.get("tank") or "")


#: The ends of a print a person at the printer must see to: the printer says IDLE and ready
#: again once a print errs or is aborted, and its card said "ready" and nothing else (session
#: 43: a print that failed for low resin, the printer shown as ready for the next).
_FAILED_ENDS: Final = {"ERROR": "error", "ABORTED": "aborted"}


def _last_print_failed(raw: Any) -> str:
    """How the printer's latest print ended when it failed, with the printer's message and
    the print's name (the Web API's ``current_print_run``), else "" (or when its status does
    not say: the Local API's devices)."""
    run = raw.current_print if isinstance(raw, Printer) else None
    if run is None or run.status not in _FAILED_ENDS:
        return ""
    said = f"{_FAILED_ENDS[run.status]}: {run.message}" if run.message else _FAILED_ENDS[
        run.status]
    return f"{run.name} ({said})" if run.name else said


def printer_rows(store: JobStore, sources: LiveSources) -> tuple[list[PrinterRow], str]:
    """Every printer a source or the store knows, and a note about the live source."""
    printing = [b for b in store.list_builds(state=(JobState.PRINT_SENT, JobState.VERIFYING,
                                                    JobState.PRINT_SENDING))]
    waiting = [b for b in store.list_builds(state=(JobState.WAITING_FOR_PRINTER,
                                                   JobState.AWAITING_APPROVAL))]
    note = ""
    candidates: Sequence[Any] = ()
    source = sources.printers()
    if source is None:
        # Also what `watch --serve` says until its pool starts (with a batch or a print):
        # telling it to run `watch --serve` sent the lab looking for a setting it had.
        note = ("no live printer status here yet: `watch --serve` reads it from its "
                "PreFormServers once they have started (with the first batch or print); "
                "`serve` alone needs Web API credentials (cloud:)")
    else:
        try:
            candidates = source.printer_candidates()
            note = f"live status from {source.description}"
        except PipelineError as exc:
            note = f"printer status could not be read: {exc}"
    rows: dict[str, PrinterRow] = {}
    for c in candidates:
        status = "offline" if not c.online else (c.busy or (
            "ready" if c.ready else f"not ready{f' ({c.ready_detail})' if c.ready_detail else ''}"
            if c.ready is False else "online"))
        rows[c.name] = PrinterRow(c.name, status, ", ".join(c.machine_types),
                                  ", ".join(c.materials), _tank(c.raw),
                                  last_print_failed=_last_print_failed(c.raw))
    for b in printing:
        if b.printer and b.printer not in rows:
            rows[b.printer] = PrinterRow(b.printer, "not known here")
    result: list[PrinterRow] = []
    for name, row in sorted(rows.items()):
        current = tuple(b for b in printing if b.printer == name)
        waits = [b for b in waiting if _may_take(b, name, row)]
        # What a person beside the printer needs: what it takes next and how many more; a
        # list of every held build (313 links on one card) told them neither.
        ready = waiting_order([b for b in waits if b.state is JobState.WAITING_FOR_PRINTER])
        result.append(PrinterRow(row.name, row.status, row.machine_types, row.materials,
                                 row.tank, current, tuple(ready[:NEXT_SHOWN]),
                                 max(len(ready) - NEXT_SHOWN, 0), len(waits) - len(ready),
                                 row.last_print_failed))
    return result, note


def _may_take(build: Build, name: str, row: PrinterRow) -> bool:
    target = PrintTarget.from_json(build.print_target)
    if target.names:
        return name in target.names
    if not target.auto:
        return False
    return (not target.machine_type or target.machine_type in row.machine_types) and (
        not target.material or target.material in row.materials)


@dataclass(frozen=True)
class HistoryRow:
    case: CaseRow
    trail: tuple[Transition, ...]


@dataclass(frozen=True)
class HistoryPage:
    """A page of History: its cases, its number, the failed jobs put right it leaves out
    (:func:`_placed`), and the query strings of the pages beside it ("" for none)."""

    rows: tuple[HistoryRow, ...]
    number: int
    hidden: int
    older: str = ""
    newer: str = ""


def _history_link(flt: QueueFilter, page: int, position: str = "",
                  key: CaseKey | None = None) -> str:
    """The query of another page of History with the same filters, from ``position``
    (:data:`BEFORE` or :data:`AFTER`) ``key``: page 1 is the newest cases, with no key."""
    link = flt.link(page)
    if page > 1 and key is not None:
        link += ("&" if link else "") + urlencode({position: _key_text(key)})
    return link


def _candidates(store: JobStore, flt: QueueFilter, want: int, limit: int, *,
                offset: int = 0, older_than: CaseKey | None = None,
                newer_than: CaseKey | None = None
                ) -> tuple[list[tuple[CaseRow | None, int]], bool]:
    """The cases the filter reads from ``older_than`` back (``newer_than``: forward, the
    nearest first; neither: from the newest, ``offset`` skipped), each placed by
    :func:`_placed`, in the order read, until ``want`` are shown; and whether every one
    was read. The store keeps the candidates (a case any one of whose jobs is in one of the
    states), ``_placed`` decides: one rule, not a second in SQL. Each read starts after the
    last case read before (its key: the store reads only the cases asked for, however deep
    the page). The first read holds ``want`` cases; each next twice the cases still wanted
    (at least a page), doubled again at each further read (a store whose candidates are
    mostly left out is not read a page at a time)."""
    batch, reads, shown = want, 0, 0
    placed: list[tuple[CaseRow | None, int]] = []
    while True:
        jobs = store.list_history_cases(
            state=flt.filtered, recipe=flt.recipe or None, text=flt.text or None,
            limit=batch, offset=offset, older_than=older_than, newer_than=newer_than)
        read = _placed(store, jobs, flt.filtered, flt.listed)
        if newer_than is not None:
            read.reverse()
        placed += read
        shown += sum(1 for row, _ in read if row is not None)
        if len(read) < batch:
            return placed, True
        if shown >= want:
            return placed, False
        keys = [_recency(members) for members in _cases(jobs).values()]
        if newer_than is not None:
            newer_than = max(keys)
        else:
            older_than, offset = min(keys), 0
        reads += 1
        batch = max(2 * (want - shown), limit + 1) * 2 ** (reads - 1)


def history_rows(store: JobStore, flt: QueueFilter, limit: int = HISTORY_PAGE_CASES
                 ) -> HistoryPage:
    """The most recently changed cases of the filter's page, each whole with its jobs' audit
    trail (oldest first), and the links to the pages beside it; its ``hidden`` counts the
    failed jobs a later job put right that the page leaves out (:func:`_placed`, unless the
    filter lists them), each once: on the page of the next older case shown (those older
    than the last case: on the last page, not on one beyond it that no link leads to).

    A page is as full as the cases allow, so no case is on two pages or on none. Its links
    carry the key of the case they follow (``before``) or precede (``after``), so a page
    reads its own cases and the few beyond it, however deep: an old link by page number
    alone still opens that page, reading the cases before it.

    The page's reads (its cases, their superseded checks, their trails) see one state of
    the store (``snapshot``): read each in its own transaction, a case another process
    changed between two of them was missed (moved above the reads still to come) or shown
    with a trail of a state it was not shown in."""
    with store.snapshot():
        if flt.after is not None:
            page = _newer_page(store, flt, limit)
            if page is not None:
                return page
            flt = replace(flt, page=1, after=None)  # the newest cases: the first page
        return _older_page(store, flt, limit)


def _older_page(store: JobStore, flt: QueueFilter, limit: int) -> HistoryPage:
    """The page from the filter's ``before`` key back, or its ``page``-th from the newest."""
    skip = (flt.page - 1) * limit if flt.before is None else 0
    # "All" shows every case the store reads: the store skips the pages before alone.
    every = flt.filtered is None
    placed, read_all = _candidates(store, flt, (0 if every else skip) + limit + 1, limit,
                                   offset=skip if every else 0, older_than=flt.before)
    first = 0 if every else skip  # the shown cases read before the page's first
    shown = [row for row, _ in placed if row is not None]
    hidden = seen = 0
    for row, left_out in placed:
        # Counted on the page of the next case shown; after the last, on the last page.
        at = seen if seen < len(shown) else max(len(shown) - 1, 0) if read_all else -1
        hidden += left_out if first <= at < first + limit else 0
        seen += row is not None
    rows = shown[first:first + limit]
    number = flt.page if flt.before is None else max(flt.page, 2)
    older = (_history_link(flt, number + 1, BEFORE, _recency(rows[-1].jobs))
             if len(shown) > first + limit else "")
    newer = (_history_link(flt, number - 1, AFTER, _recency(rows[0].jobs) if rows else None)
             if number > 1 else "")
    return HistoryPage(_with_trails(store, rows), number, hidden, older, newer)


def _newer_page(store: JobStore, flt: QueueFilter, limit: int) -> HistoryPage | None:
    """The page of the cases just newer than the filter's ``after`` key, or None when they
    are the newest (the first page then, read from the newest)."""
    placed, read_all = _candidates(store, flt, limit + 1, limit, newer_than=flt.after)
    shown = [row for row, _ in placed if row is not None]
    if read_all and len(shown) <= limit:
        return None
    hidden = seen = 0
    for row, left_out in placed:
        # Read oldest first: the next older case shown is this one, or the one read before.
        at = seen if row is not None else seen - 1
        hidden += left_out if 0 <= at < limit else 0
        seen += row is not None
    rows = shown[limit - 1::-1]  # the page's cases, the newest first
    number = max(flt.page, 2)
    return HistoryPage(_with_trails(store, rows), number, hidden,
                       _history_link(flt, number + 1, BEFORE, _recency(rows[-1].jobs)),
                       _history_link(flt, number - 1, AFTER, _recency(rows[0].jobs)))


def _with_trails(store: JobStore, rows: Sequence[CaseRow]) -> tuple[HistoryRow, ...]:
    """The page's cases, each with its jobs' audit trail, oldest first. Every trail of the
    page in one read: one per job made a page of 60 cases hundreds of round trips to a
    farm's database."""
    trails = store.histories([j.id for row in rows for j in row.jobs])
    return tuple(HistoryRow(row, tuple(sorted((t for j in row.jobs for t in trails[j.id]),
                                              key=lambda t: t.id)))
                 for row in rows)

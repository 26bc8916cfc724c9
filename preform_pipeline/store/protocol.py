"""The :class:`JobStore` protocol: what the hot folder, the verifier and ``jobs`` rely on.

Rules every implementation keeps (the SQLite one in :mod:`preform_pipeline.store.sqlite`):

- **Durable on return.** When a method that writes returns, the change survives a crash of
  the process (and, for SQLite with ``synchronous=FULL``, a power cut). Callers write the
  state first, then act: ``transition_build(b, PRINT_SENDING, ...)`` returns, *then* the print
  request goes out.
- **Atomic.** A transition updates the row(s) and appends the audit rows in one transaction;
  ``transition_build`` moves the build and its jobs together.
- **Compare-and-set.** ``expect=`` names the state(s) the caller believes the job is in; if it
  is in another one, nothing changes and :class:`~preform_pipeline.errors.StoreConflictError`
  is raised. Of two processes racing the same transition, exactly one wins.
- **The table holds.** A change the state table does not allow raises
  :class:`~preform_pipeline.errors.InvalidTransitionError` naming both states.
- **Readers never block the writer** and never see half a transition.

Field updates (``**fields``) accept only the names listed in :data:`JOB_FIELDS` and
:data:`BUILD_FIELDS`; ``None`` clears a field.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Protocol, runtime_checkable

from preform_pipeline.store.model import Build, CaseKey, Job, JobState, Transition

__all__ = [
    "BUILD_FIELDS",
    "BUILD_MIRRORED_FIELDS",
    "JOB_FIELDS",
    "JobStore",
    "StateFilter",
]

#: One state or several (``list_jobs(state=...)``, ``expect=``).
StateFilter = JobState | Collection[JobState]

#: Job fields a transition or ``update_job`` may set, and the types they take. ``build_id``
#: may only be cleared (``None``): jobs join builds through ``create_build``.
JOB_FIELDS: Final[Mapping[str, tuple[type, ...]]] = {
    "source_path": (str, Path),
    "content_hash": (str, type(None)),
    "case_id": (str, type(None)),
    "priority": (int,),
    "fields": (Mapping,),
    "build_id": (type(None),),
    "print_job_id": (str, type(None)),
    "printer": (str, type(None)),
    "verified_status": (str, type(None)),
    "verified_message": (str, type(None)),
}

#: Build fields ``transition_build`` or ``update_build`` may set.
BUILD_FIELDS: Final[Mapping[str, tuple[type, ...]]] = {
    "server": (str, type(None)),
    "form_path": (str, Path, type(None)),
    "print_job_id": (str, type(None)),
    "printer": (str, type(None)),
    "job_name": (str, type(None)),
    "verified_status": (str, type(None)),
    "verified_message": (str, type(None)),
    #: Who held the send (``printing.SendHolder.to_json``): lets recovery prove it is over.
    "send_holder": (Mapping, type(None)),
    #: Dispatch: where a waiting build may print, its priority, the one late notification.
    "print_target": (Mapping, type(None)),
    "priority": (int,),
    "wait_notified_at": (str, type(None)),
    #: Approval: who approved or rejected a held build, when, and why.
    "approval": (Mapping, type(None)),
    #: A failure for want of room: the folder whose disk refused the write.
    "full_disk": (str, Path, type(None)),
}

#: Build fields ``transition_build`` also writes onto the build's jobs.
BUILD_MIRRORED_FIELDS: Final = frozenset(
    {"print_job_id", "printer", "verified_status", "verified_message"}
)


@runtime_checkable
class JobStore(Protocol):
    """Durable jobs, builds and their audit trail. See the module docstring for the rules."""

    @property
    def kept_on_this_machine(self) -> bool:
        """True when the store is on this machine's own disk and only its processes write it
        (SQLite), so a process of this host name and another boot it names is this machine's
        before a restart; False for a store shared by machines (PostgreSQL)."""
        ...

    # --- jobs --------------------------------------------------------------------------------

    def create_job(
        self,
        *,
        recipe: str,
        source_path: Path | str,
        original_name: str | None = None,
        content_hash: str | None = None,
        case_id: str | None = None,
        priority: int = 0,
        fields: Mapping[str, Any] | None = None,
        state: JobState = JobState.DISCOVERED,
        reason: str = "created",
    ) -> Job:
        """Record a new job (with a new job key) in one of the INITIAL_STATES.

        ``original_name`` defaults to the file name of ``source_path``; ``fields`` must be
        JSON-serialisable. The audit trail gets a first row (from None).
        """
        ...

    def claim_job(
        self,
        *,
        recipe: str,
        source_path: Path | str,
        content_hash: str,
        taken: Collection[JobState],
        reason: str = "claimed",
        fields: Mapping[str, Any] | None = None,
    ) -> tuple[Job | None, Job | None]:
        """Atomically: a new PROCESSING job for this content, unless a job of ``recipe`` with
        the same content is in a ``taken`` state (then ``(None, that job)``)."""
        ...

    def get_job(self, job_id: int) -> Job:
        """The job; StoreError when there is none with that id."""
        ...

    def get_jobs(self, job_ids: Collection[int]) -> tuple[Job, ...]:
        """The jobs of ``job_ids`` in one read, in id order; an id of no job is left out
        (a node's maintenance pass judging the jobs it leaves for another node read them one
        by one, on every pass while they waited)."""
        ...

    def find_by_key(self, job_key: str) -> Job | None:
        """The job with this key (any case; ``O``/``I``/``L`` read as digits), or None."""
        ...

    def find_by_hash(self, content_hash: str, *, recipe: str | None = None) -> tuple[Job, ...]:
        """Every job with this content hash (optionally for one recipe), newest first."""
        ...

    def find_by_hashes(
        self, content_hashes: Collection[str], *, state: StateFilter | None = None
    ) -> tuple[Job, ...]:
        """Every job (optionally in ``state``) with any of these content hashes, in creation
        order, in one read: the superseded check of a page of failed jobs, which asked
        ``find_by_hash`` once per file (store/superseded.py)."""
        ...

    def find_by_cases(
        self, case_ids: Collection[str], *, state: StateFilter | None = None
    ) -> tuple[Job, ...]:
        """Every job (optionally in ``state``) of any of these case ids, in creation order,
        in one read: the superseded check of a page of failed case members (a case
        re-exported with new content is put right by its later print)."""
        ...

    def find_by_path(self, source_path: Path | str) -> Job | None:
        """The newest job whose ``source_path`` is this path, or None."""
        ...

    def list_jobs(
        self,
        *,
        state: StateFilter | None = None,
        recipe: str | None = None,
        since: datetime | None = None,
        build_id: int | None = None,
        text: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> tuple[Job, ...]:
        """Jobs in creation order, filtered; ``since``: changed at or after that time;
        ``text``: its case id, file name or key holds that text, in any case;
        ``limit``: only the most recent N (still in creation order); ``offset`` (with a
        limit): skip the most recent ``offset`` first, a page further back."""
        ...

    def list_case_jobs(
        self,
        *,
        state: StateFilter | None = None,
        recipe: str | None = None,
        text: str | None = None,
        limit: int,
        offset: int = 0,
    ) -> tuple[Job, ...]:
        """The jobs ``list_jobs`` keeps with these filters, paged by case (a case id, or a
        job's own key without one): every kept job of the ``limit`` cases whose newest kept
        job is newest, after skipping the ``offset`` newest cases; in creation order."""
        ...

    def snapshot(self) -> AbstractContextManager[None]:
        """A block whose store reads (in this thread) all see one state of the store: a page
        read in several statements does not show a case twice, or miss one, because another
        process committed a change between two of them. Only reads: a write inside raises
        StoreError. This thread's other calls on the store wait for it (it holds the store's
        connection), other processes' do not."""
        ...

    def list_history_cases(
        self,
        *,
        state: StateFilter | None = None,
        recipe: str | None = None,
        text: str | None = None,
        limit: int,
        offset: int = 0,
        older_than: CaseKey | None = None,
        newer_than: CaseKey | None = None,
    ) -> tuple[Job, ...]:
        """Every job (of ``recipe``) of the ``limit`` cases changed most recently, after
        skipping the ``offset`` most recent; in creation order. ``older_than``: only the
        cases after that key in this order (:class:`CaseKey`: a page that follows another
        reads only its own cases); ``newer_than``: the ``limit`` cases nearest before that
        key (the page before), at most one of the two. A case is a case id, or a
        job's own key without one; a skipped duplicate is a case of its own (its key).
        ``state`` keeps the cases any one of whose jobs is in one of those states (the
        candidates: which state a case is in is the History page's rule, web/views.py),
        ``text`` those whose name or any one of whose files holds it (in any case). Whole
        cases: a page of history."""
        ...

    def transition(
        self,
        job_id: int,
        to_state: JobState,
        reason: str,
        *,
        expect: StateFilter | None = None,
        **fields: Any,
    ) -> Job:
        """Move one job to ``to_state``, set ``fields``, append the audit row; returns the job.

        A job that belongs to a build reaches BUILD_DRIVEN_STATES only via ``transition_build``.
        Moving to QUEUED (a retry) clears its build and print fields. Cancelling a job whose
        build is PREPARING or PREPARED sends that build (and its other jobs) back to
        PROCESSING, so the cancelled model is never printed: prepare the build again.
        """
        ...

    def update_job(
        self, job_id: int, *, expect_source: Path | str | None = None,
        expect_fields: Mapping[str, Any] | None = None, **fields: Any
    ) -> Job:
        """Set fields without changing the state (no audit row): e.g. the new ``source_path``
        after moving a finished job's file to done/. ``expect_source``: only if the job's
        ``source_path`` is still that (StoreConflictError if not: another process moved
        its file first). ``expect_fields``: only if the job's ``fields`` are still these
        (StoreConflictError if not: another process changed them first), for a change that
        leaves ``source_path`` as it is."""
        ...

    def history(self, job_id: int) -> tuple[Transition, ...]:
        """The job's audit trail, oldest first; StoreError when there is no such job."""
        ...

    def histories(self, job_ids: Collection[int]) -> dict[int, tuple[Transition, ...]]:
        """The audit trails of ``job_ids`` in one read (a page of History): each job's,
        oldest first, by job id; a job with no rows (or no such job) has an empty trail."""
        ...

    def interrupted_jobs(self) -> tuple[Job, ...]:
        """Jobs in INTERRUPTED_STATES (PREPARING, PRINT_SENDING), oldest first."""
        ...

    # --- builds ------------------------------------------------------------------------------

    def create_build(
        self,
        *,
        recipe: str,
        job_ids: Collection[int] = (),
        server: str | None = None,
        reason: str = "batched",
    ) -> Build:
        """Batch PROCESSING jobs that have no build into a new PROCESSING build (new key).

        Each job gets ``build_id`` and an audit row saying so; a job in another state or
        already batched raises StoreError and nothing is written.
        """
        ...

    def get_build(self, build_id: int) -> Build:
        """The build; StoreError when there is none with that id."""
        ...

    def find_build_by_key(self, job_key: str) -> Build | None:
        """The build whose print carries this key (from ``extract_key(print name)``), or None."""
        ...

    def list_builds(
        self,
        *,
        state: StateFilter | None = None,
        recipe: str | None = None,
        since: datetime | None = None,
        text: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> tuple[Build, ...]:
        """Builds in creation order, filtered and paged like ``list_jobs``; ``text``: its key,
        print name or printer holds that text, in any case."""
        ...

    def transition_build(
        self,
        build_id: int,
        to_state: JobState,
        reason: str,
        *,
        expect: StateFilter | None = None,
        **fields: Any,
    ) -> Build:
        """Move a build, and each of its jobs that is in the build's current state, together.

        Fields in BUILD_MIRRORED_FIELDS are written onto those jobs too. Entering
        PRINT_SENDING sets ``print_sent_at``; entering a VERIFIED_STATE sets ``verified_at``;
        jobs entering PREPARING count an attempt.
        """
        ...

    def build_members(self, build_id: int) -> tuple[Job, ...]:
        """The jobs that travel with the build now: its jobs in the build's own state.

        Prepare and print exactly these, read *after* the transition that starts the work
        (a job cancelled or failed on its own has left; a job of an older build is not here).
        """
        ...

    def update_build(self, build_id: int, **fields: Any) -> Build:
        """Set build fields without changing the state (no audit row)."""
        ...

    def build_history(self, build_id: int) -> tuple[Transition, ...]:
        """The build's own audit trail (rows with ``job_id`` None), oldest first."""
        ...

    def pending_prints(self) -> tuple[Build, ...]:
        """Builds whose print the poller watches (PRINT_SENT, VERIFYING), oldest send first."""
        ...

    def interrupted_builds(self) -> tuple[Build, ...]:
        """Builds in INTERRUPTED_STATES (PREPARING, PRINT_SENDING), oldest first."""
        ...

    # --- notices -----------------------------------------------------------------------------

    def note_notice(self, key: str, about: str) -> bool:
        """Record that the notice ``key`` was said about ``about`` (what it was about, e.g. a
        file's size and time); True when it was not said about that yet: say it now.

        For what is said about things the store holds no job for (a name too long to take),
        so that a run from cron does not say again what an earlier one said.
        """
        ...

    def notice_about(self, key: str) -> str | None:
        """What the notice ``key`` was last said about, or None when it was never said (or
        forgotten). Only reads: to know before doing something whether it was said."""
        ...

    def notice_keys(self, prefix: str) -> tuple[str, ...]:
        """The keys of the recorded notices that begin with ``prefix``, sorted."""
        ...

    def forget_notices(self, keys: Collection[str]) -> int:
        """Remove the notices ``keys`` (what they were about is gone: said again if it comes
        back); how many there were."""
        ...

    def keep_notices(self, keys: Collection[str]) -> int:
        """The notices ``keys`` are about something still there: their time becomes now, so
        :meth:`forget_old_notices` does not take them; how many there were."""
        ...

    def forget_old_notices(self, prefix: str, *, older_than_s: float) -> tuple[str, ...]:
        """Remove the notices whose key begins with ``prefix`` that were neither said nor kept
        (:meth:`keep_notices`) in the last ``older_than_s`` seconds of the store's clock:
        nobody looks at what they were about any more (an inbox removed from the settings, a
        node gone). Their keys, sorted."""
        ...

    # --- the Web API budget ------------------------------------------------------------------

    def spend_web_request(
        self, account: str, *, limit: int, now: datetime, window_s: float
    ) -> tuple[float, str, int]:
        """Record one Web API request of ``account`` sent at ``now`` if its budget allows:
        ``(0.0, "", spent)``. Otherwise record nothing and answer the seconds to wait and why,
        and ``spent``: ``"retry_after"`` (the server's last Retry-After has not passed) or
        ``"hourly_budget"`` (``limit`` requests in the ``window_s`` seconds before ``now``).
        ``spent`` is ``account``'s requests in the window (this one included when it was
        recorded), counted in the same transaction: what :meth:`web_requests_spent` would
        answer right after, without a second round trip.

        Every process that opens this store (and, on PostgreSQL, every node) counts in the
        same record, so they keep one hourly budget between them
        (:class:`~preform_pipeline.cloud.ratelimit.RateLimiter`).
        """
        ...

    def hold_web_requests(self, account: str, until: datetime) -> None:
        """Hold ``account``'s requests back until ``until`` (the server answered 429 with
        Retry-After); a later hold already recorded is kept."""
        ...

    def web_requests_spent(self, account: str, *, now: datetime, window_s: float) -> int:
        """``account``'s requests recorded in the ``window_s`` seconds before ``now``."""
        ...

    # --- printers chosen and not yet sent to ------------------------------------------------

    def claim_printer(self, printer: str, *, holder: str, build: str, lease_s: float) -> bool:
        """Claim ``printer`` for ``build`` of ``holder`` (one process's claims) for ``lease_s``
        seconds of the store's clock, in one write transaction: True when nobody else holds a
        live claim on it (a claim of ``holder``'s own is taken over), else False and nothing
        written. Every process that opens this store (and, on PostgreSQL, every node) claims in
        the same table (:class:`~preform_pipeline.verify.tracking.PrinterClaims`)."""
        ...

    def printers_claimed(self, *, other_than: str) -> frozenset[str]:
        """The printers with a live claim of a holder other than ``other_than``."""
        ...

    def release_printers(self, *, holder: str, builds: Collection[str]) -> int:
        """End ``holder``'s claims for ``builds`` (their prints were sent, or they ended
        without); how many there were."""
        ...

    # --- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Release the store; further calls raise StoreError. Closing twice is fine."""
        ...

    def __enter__(self) -> JobStore: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

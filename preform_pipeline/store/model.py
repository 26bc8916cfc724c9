"""Values of the job store: jobs, builds, the audit trail, and the job state machine.

A **job** is one model file (dropped into a hot folder, or named on a command line). A
**build** is one platform: the jobs prepared together in one scene and, when the recipe prints,
sent as one print. The print is the build's: its job key (``PP-…``, see
:mod:`preform_pipeline.store.keys`) goes into the print's job name, and its print job id, printer
and verified outcome are copied onto every job of the build.

States (:class:`JobState`), in the order a job normally passes them::

    DISCOVERED ─► QUEUED ─► PROCESSING ─► PREPARING ─► PREPARED ─► PRINT_SENDING ─► PRINT_SENT
        (inbox)   (to take)  (in processing/,  (on a      (.form     (written BEFORE      │
                              batched into     server)    saved)     the print request)   ▼
                              a build)                       │             ▲         VERIFYING
                                                             ▼             │
                                                      WAITING_FOR_PRINTER ─┘
                                                      (no matching printer free yet)
                                                             ▲
                                                      AWAITING_APPROVAL (the recipe wants a
                                                      person to approve it first; rejected:
                                                      FAILED)
                                                   │           │                          │
                                                   └─► DONE ◄──┘   FINISHED | ABORTED | PRINT_ERROR
                                                   (no print wanted)          | UNVERIFIED

    side exits: FAILED, CANCELLED (by the user), DUPLICATE_SKIPPED (same content seen before)

:data:`ALLOWED_TRANSITIONS` is the whole table; anything else raises
:class:`~preform_pipeline.errors.InvalidTransitionError`. The sets below name the groups the
hot folder, the verifier and the ``jobs`` command act on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

__all__ = [
    "ACTIVE_STATES",
    "ALLOWED_TRANSITIONS",
    "BUILD_ALLOWED_TRANSITIONS",
    "BUILD_DRIVEN_STATES",
    "BUILD_STATES",
    "CANCELLABLE_STATES",
    "DUPLICATE_STATES",
    "FINAL_STATES",
    "INITIAL_STATES",
    "INTERRUPTED_STATES",
    "PRINT_PENDING_STATES",
    "PRINT_SENT_STATES",
    "RETRYABLE_STATES",
    "STATE_DESCRIPTIONS",
    "TERMINAL_STATES",
    "VERIFIED_STATES",
    "Build",
    "CaseKey",
    "Job",
    "JobState",
    "Transition",
    "parse_state",
]


class JobState(str, Enum):
    """Where a job (or a build) is; the value is what the store and ``--state`` use."""

    DISCOVERED = "discovered"
    QUEUED = "queued"
    PROCESSING = "processing"
    PREPARING = "preparing"
    PREPARED = "prepared"
    WAITING_FOR_PRINTER = "waiting_for_printer"
    AWAITING_APPROVAL = "awaiting_approval"
    PRINT_SENDING = "print_sending"
    PRINT_SENT = "print_sent"
    VERIFYING = "verifying"
    FINISHED = "finished"
    ABORTED = "aborted"
    PRINT_ERROR = "print_error"
    UNVERIFIED = "unverified"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DUPLICATE_SKIPPED = "duplicate_skipped"

    def __str__(self) -> str:
        return self.value

    @property
    def terminal(self) -> bool:
        """The pipeline does nothing more on its own (a user may still retry)."""
        return self in TERMINAL_STATES

    @property
    def interrupted(self) -> bool:
        """Found in this state after a restart, an action's outcome is unknown: reconcile first."""
        return self in INTERRUPTED_STATES

    @property
    def retryable(self) -> bool:
        return self in RETRYABLE_STATES

    def can_become(self, other: JobState) -> bool:
        """True when the job table allows ``self → other``."""
        return other in ALLOWED_TRANSITIONS[self]


S = JobState

#: What each state means, for ``jobs`` output and documentation.
STATE_DESCRIPTIONS: Final[Mapping[JobState, str]] = MappingProxyType(
    {
        S.DISCOVERED: "seen in the inbox; waiting until the file is complete",
        S.QUEUED: "complete; to be taken into processing/ (also where a retried job restarts)",
        S.PROCESSING: "in processing/; waiting for a build, or batched into one not yet started",
        S.PREPARING: "its build is being prepared on a PreFormServer",
        S.PREPARED: "its build is prepared (.form saved); the print is not sent yet",
        S.WAITING_FOR_PRINTER: "prepared (.form saved); waits for a matching printer to be "
        "free, then is sent (priority, then oldest first)",
        S.AWAITING_APPROVAL: "prepared (.form saved); the recipe requires approval: waits "
        "until an operator approves it (then dispatched) or rejects it (failed)",
        S.PRINT_SENDING: "the print request is being sent; a crash here is looked up, never resent",
        S.PRINT_SENT: "the printer (or queue) accepted the print; not yet seen in the prints feed",
        S.VERIFYING: "the print is in the prints feed and not finished yet",
        S.FINISHED: "the print finished",
        S.ABORTED: "the print was aborted on the printer",
        S.PRINT_ERROR: "the printer reported an error",
        S.UNVERIFIED: "no final print status before the verification deadline, or an "
        "interrupted send that could not be settled: a person checks (`jobs resolve`)",
        S.DONE: "prepared; the recipe does not print",
        S.FAILED: "preparation failed, an operator rejected its build, the print was refused, "
        "or the file could not be used",
        S.CANCELLED: "cancelled by the user before its print was sent",
        S.DUPLICATE_SKIPPED: "same content as an earlier job; skipped",
    }
)

#: States a job may be created in: the hot folder starts at DISCOVERED; a command that has the
#: files already in place (``run``) starts at PROCESSING.
INITIAL_STATES: Final = frozenset({S.DISCOVERED, S.QUEUED, S.PROCESSING})

#: The prints feed reported a final status.
VERIFIED_STATES: Final = frozenset({S.FINISHED, S.ABORTED, S.PRINT_ERROR})

#: The pipeline still works on these by itself.
ACTIVE_STATES: Final = frozenset(
    {
        S.DISCOVERED,
        S.QUEUED,
        S.PROCESSING,
        S.PREPARING,
        S.PREPARED,
        S.WAITING_FOR_PRINTER,
        S.AWAITING_APPROVAL,
        S.PRINT_SENDING,
        S.PRINT_SENT,
        S.VERIFYING,
    }
)
#: Nothing more happens without a user (retry) or a later ``verify`` (UNVERIFIED).
TERMINAL_STATES: Final = frozenset(JobState) - ACTIVE_STATES
#: Not even a retry leaves these.
FINAL_STATES: Final = frozenset({S.FINISHED, S.DONE})

#: A crash in these leaves the outcome of an action unknown. PREPARING: the scene died with the
#: server, prepare again. PRINT_SENDING: the print may or may not exist; look its job key up in
#: the prints feed before anything else, and never resend blindly.
INTERRUPTED_STATES: Final = frozenset({S.PREPARING, S.PRINT_SENDING})

#: Prints the shared poller watches.
PRINT_PENDING_STATES: Final = frozenset({S.PRINT_SENT, S.VERIFYING})

#: A print may exist on a printer: the pipeline cannot take it back.
PRINT_SENT_STATES: Final = frozenset({S.PRINT_SENDING, S.PRINT_SENT, S.VERIFYING})

#: The duplicates rule of the hot folder and of ``run``: content that matches a job in one of
#: these states was (or is being) prepared or printed. Failed, cancelled, aborted and errored
#: jobs do not count: the user may well want those again.
DUPLICATE_STATES: Final = (ACTIVE_STATES - {S.DISCOVERED}) | {S.FINISHED, S.DONE, S.UNVERIFIED}

#: ``jobs retry`` moves these back to QUEUED.
RETRYABLE_STATES: Final = frozenset(
    {S.FAILED, S.ABORTED, S.PRINT_ERROR, S.UNVERIFIED, S.CANCELLED, S.DUPLICATE_SKIPPED}
)

#: ``jobs cancel`` moves these to CANCELLED: active, and no print sent.
CANCELLABLE_STATES: Final = ACTIVE_STATES - PRINT_SENT_STATES

_PRINT_OUTCOMES: Final = frozenset({S.FINISHED, S.ABORTED, S.PRINT_ERROR, S.UNVERIFIED})

#: The job table. Every edge not listed raises InvalidTransitionError.
ALLOWED_TRANSITIONS: Final[Mapping[JobState, frozenset[JobState]]] = MappingProxyType(
    {
        S.DISCOVERED: frozenset({S.QUEUED, S.DUPLICATE_SKIPPED, S.FAILED, S.CANCELLED}),
        S.QUEUED: frozenset({S.PROCESSING, S.DUPLICATE_SKIPPED, S.FAILED, S.CANCELLED}),
        S.PROCESSING: frozenset({S.PREPARING, S.DUPLICATE_SKIPPED, S.FAILED, S.CANCELLED}),
        # Back to PROCESSING: the server died or was lost, prepare again (on another server).
        S.PREPARING: frozenset({S.PREPARED, S.DONE, S.PROCESSING, S.FAILED, S.CANCELLED}),
        S.PREPARED: frozenset({S.PRINT_SENDING, S.WAITING_FOR_PRINTER, S.AWAITING_APPROVAL,
                               S.DONE, S.PROCESSING, S.FAILED, S.CANCELLED}),
        # Approved: waits for its printer like any other print (dispatch sends it); rejected:
        # FAILED with the operator's reason; its .form lost: prepared again.
        S.AWAITING_APPROVAL: frozenset({S.WAITING_FOR_PRINTER, S.PROCESSING, S.FAILED,
                                        S.CANCELLED}),
        # Dispatch sends it (through the print owner) when a matching printer is free; its
        # .form lost: prepared again.
        S.WAITING_FOR_PRINTER: frozenset({S.PRINT_SENDING, S.PROCESSING, S.FAILED,
                                          S.CANCELLED}),
        # After a crash the prints feed decides: found (sent / verifying / already over), proven
        # not sent (back to PREPARED, may be sent again), refused for good (FAILED), or
        # undecidable (UNVERIFIED: a person looks). Never CANCELLED: the print may exist.
        S.PRINT_SENDING: _PRINT_OUTCOMES
        | frozenset({S.PRINT_SENT, S.VERIFYING, S.PREPARED, S.FAILED}),
        S.PRINT_SENT: _PRINT_OUTCOMES | frozenset({S.VERIFYING}),
        S.VERIFYING: _PRINT_OUTCOMES,
        # A later `verify` may still find the print; a user may retry, or settle it
        # (`jobs resolve`: printed → PRINT_SENT, not printed → FAILED).
        S.UNVERIFIED: VERIFIED_STATES | frozenset({S.VERIFYING, S.QUEUED, S.PRINT_SENT,
                                                   S.FAILED}),
        S.ABORTED: frozenset({S.QUEUED}),
        S.PRINT_ERROR: frozenset({S.QUEUED}),
        S.FAILED: frozenset({S.QUEUED}),
        S.CANCELLED: frozenset({S.QUEUED}),
        S.DUPLICATE_SKIPPED: frozenset({S.QUEUED}),
        S.FINISHED: frozenset(),
        S.DONE: frozenset(),
    }
)

#: States a build passes; a build is created PROCESSING.
BUILD_STATES: Final = frozenset(JobState) - {S.DISCOVERED, S.QUEUED, S.DUPLICATE_SKIPPED}

#: The build table: the job table without the file-level states and retries (a retried job is
#: batched into a new build with a new job key).
BUILD_ALLOWED_TRANSITIONS: Final[Mapping[JobState, frozenset[JobState]]] = MappingProxyType(
    {state: ALLOWED_TRANSITIONS[state] & BUILD_STATES for state in BUILD_STATES}
)

#: A job that belongs to a build reaches these only through its build (``transition_build``),
#: so the jobs of one print never disagree about it.
BUILD_DRIVEN_STATES: Final = frozenset(
    {
        S.PROCESSING,
        S.PREPARING,
        S.PREPARED,
        S.WAITING_FOR_PRINTER,
        S.AWAITING_APPROVAL,
        S.PRINT_SENDING,
        S.PRINT_SENT,
        S.VERIFYING,
        S.FINISHED,
        S.ABORTED,
        S.PRINT_ERROR,
        S.UNVERIFIED,
        S.DONE,
    }
)

del S


def parse_state(text: str | JobState) -> JobState:
    """A state from its value or name, any case, ``-`` or ``_`` (``print-sent``, ``PRINT_SENT``).

    Raises ValueError listing the known states.
    """
    if isinstance(text, JobState):
        return text
    key = text.strip().lower().replace("-", "_")
    try:
        return JobState(key)
    except ValueError:
        known = ", ".join(s.value for s in JobState)
        raise ValueError(f"unknown state {text!r}; known states: {known}") from None


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True)
class Job:
    """One model file and where it is in the pipeline.

    ``source_path`` is where the file is now (or, right after a transition that moves it, where
    it is about to be: the store is written before the file is moved). ``original_name`` is the
    file name as it was dropped. ``fields`` holds the sidecar values (patient, due date, ...)
    for templates. ``reason`` is the reason of the last transition. ``attempts`` counts how
    often the job entered PREPARING. ``build_id`` is the build it is batched into (cleared by a
    retry). The ``print_*``/``printer``/``verified_*`` fields are copied from its build.
    """

    id: int
    job_key: str
    recipe: str
    source_path: Path
    original_name: str
    state: JobState
    created_at: datetime
    updated_at: datetime
    content_hash: str | None = None
    case_id: str | None = None
    priority: int = 0
    fields: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    build_id: int | None = None
    reason: str = ""
    attempts: int = 0
    print_job_id: str | None = None
    printer: str | None = None
    verified_status: str | None = None
    verified_message: str | None = None
    verified_at: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.fields, MappingProxyType):
            object.__setattr__(self, "fields", _frozen_mapping(self.fields))


@dataclass(frozen=True)
class Build:
    """One platform of jobs prepared together, and its print.

    ``job_key`` is the print's key (embedded in ``job_name``, the name the print was sent
    with). ``job_ids`` lists every job ever batched into the build, in batch order; the jobs it
    holds now are ``list_jobs(build_id=...)`` (a cancelled or retried job leaves). ``server``
    is the server that holds (held) its scene; ``form_path`` the saved .form.
    ``print_sent_at`` is when the build last entered PRINT_SENDING: the verification deadline
    counts from it.
    """

    id: int
    job_key: str
    recipe: str
    state: JobState
    created_at: datetime
    updated_at: datetime
    job_ids: tuple[int, ...] = ()
    server: str | None = None
    form_path: Path | None = None
    print_job_id: str | None = None
    printer: str | None = None
    job_name: str | None = None
    verified_status: str | None = None
    verified_message: str | None = None
    reason: str = ""
    print_sent_at: datetime | None = None
    verified_at: datetime | None = None
    #: Who held the last send (server pid and start time, host, remote?, request timeout), as
    #: written by :mod:`preform_pipeline.printing`; None when not recorded.
    send_holder: Mapping[str, Any] | None = None
    #: Where a waiting build may print (``dispatch.PrintTarget.to_json``); None: not waiting.
    print_target: Mapping[str, Any] | None = None
    #: When the build began WAITING_FOR_PRINTER (dispatch sends oldest first, by priority).
    waiting_since: datetime | None = None
    #: The highest priority of its jobs, when it began waiting.
    priority: int = 0
    #: When a "waiting too long" notification went out (at most one per wait).
    wait_notified_at: datetime | None = None
    #: A person's decision on a build held for approval: ``decision`` (approved / rejected),
    #: ``by`` (the user), ``at`` and ``reason``; None: none asked or taken yet.
    approval: Mapping[str, Any] | None = None
    #: A failed build's folder whose disk refused a write for want of room (the run's
    #: ``BuildOutcome.full_disk``); None: it did not fail so.
    full_disk: Path | None = None

    @property
    def handed_to_dispatch(self) -> bool:
        """Its run handed it to the dispatch loop (left waiting for a printer, or held for an
        approval): that loop sends it and records the send, never the run, which sent nothing.
        Its target stays recorded whatever state follows, so this holds in ``print_sending``
        too, and however the run ended (with no outcome of the build's own, say)."""
        return self.print_target is not None


@dataclass(frozen=True)
class Transition:
    """One row of the audit trail: ``from_state`` is None when the job or build was created.

    A job's own transitions have ``job_id`` set (and ``build_id`` when its build moved it); a
    build's transitions have ``job_id`` None.
    """

    id: int
    job_id: int | None
    build_id: int | None
    from_state: JobState | None
    to_state: JobState
    at: datetime
    reason: str


@dataclass(frozen=True, order=True)
class CaseKey:
    """Where a case stands in History's order (the most recently changed first): its jobs'
    last change, then its newest job's id. No two cases share a key (each job is in one
    case), so a page that starts after a key (``list_history_cases(older_than=...)``) never
    repeats or skips a case of the same second, as an offset into a changing list did."""

    changed: datetime
    newest_id: int

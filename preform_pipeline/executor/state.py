"""What a run produced: one frozen :class:`BuildOutcome` per build and the :class:`RunResult`.

Statuses of a build (:class:`BuildStatus`):

``succeeded``
    Every step ran (with ``--dry-run``: every step but ``print``, which is recorded as skipped).
``failed``
    A step failed for a reason retrying will not fix (the server refused this input, a
    validation finding the recipe lists, a layout that cannot fit), or the retries ran out.
    ``reason`` says which.
``print_unconfirmed``
    The print request was sent and no answer came back: the job may or may not be queued.
    It is never resent automatically (see docs/running.md); check the printer or its queue.
``split``
    The models did not fit one platform after the recipe's layout attempts; the build was
    halved into two new builds (``children``), which have outcomes of their own.
``cancelled``
    The run was interrupted (Ctrl-C) before the build finished.

Models the planner refused up front (too large for the machine, unreadable) are not builds;
the run result carries them as ``rejected``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from preform_pipeline.plan.rejection import Rejection
from preform_pipeline.store.model import JobState

__all__ = [
    "FAILED_PRINT_ENDS",
    "OK_STATUSES",
    "AttemptRecord",
    "BuildCounts",
    "BuildOutcome",
    "BuildReportWriter",
    "BuildStatus",
    "RunResult",
]


class BuildStatus(str, Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PRINT_UNCONFIRMED = "print_unconfirmed"
    SPLIT = "split"
    CANCELLED = "cancelled"


#: Statuses that do not make a run fail: a split build's models live on in its children.
OK_STATUSES: frozenset[BuildStatus] = frozenset({BuildStatus.SUCCEEDED, BuildStatus.SPLIT})

#: ``verify`` values of a build whose print did not finish (the printer reported an error or
#: an abort, or the end was never confirmed): its build succeeded, the run did not do its job.
FAILED_PRINT_ENDS: frozenset[str] = frozenset(
    {JobState.ABORTED.value, JobState.PRINT_ERROR.value, JobState.UNVERIFIED.value}
)


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt of a build on one server: how long the server was held, and how it ended.

    ``resumed_from`` names the checkpoint step the attempt started after (None: from scratch).
    ``busy_s`` is the time the server was leased to this build.
    """

    number: int
    server: str
    busy_s: float
    error: str | None = None
    error_type: str | None = None
    resumed_from: str | None = None
    #: The attempt ended on the job store being away (``StoreError.outage``), not on the
    #: models or a server: whoever keeps the jobs may prepare them again.
    store_outage: bool = False


@dataclass(frozen=True)
class BuildOutcome:
    """How one build ended, with the figures the run report lists."""

    name: str
    index: int
    status: BuildStatus
    models: tuple[str, ...]
    source_files: tuple[str, ...]
    reason: str | None = None
    material_ml: float | None = None
    print_time_s: float | None = None
    job_id: str | None = None
    server: str | None = None
    attempts: tuple[AttemptRecord, ...] = ()
    steps_done: tuple[str, ...] = ()
    outputs: tuple[Path, ...] = ()
    warnings: tuple[str, ...] = ()
    #: Build this one was split from, and the builds it was split into.
    parent: str | None = None
    children: tuple[str, ...] = ()
    #: Layout (or pack) calls made for this build, the failed ones included.
    layout_calls: int = 0
    estimated_volume_ml: float | None = None
    #: The recipe's ``verify`` step: ``pending`` while its print waits for the shared poller,
    #: then the job state it ended in (``finished``, ``print_error``, ``aborted``,
    #: ``unverified``), or ``skipped (...)`` with the reason.
    verify: str | None = None
    #: The printer's message for a print that ended (``Resin level too low``), or why
    #: verification stopped.
    verify_message: str | None = None
    #: Prepared and held for an operator's approval (``print: {approval: required}``):
    #: nothing was sent yet; the dashboard or ``jobs approve`` lets it go.
    held: bool = False
    #: Prepared and left waiting in the job store for a free printer (the hot folder's
    #: dispatch, or ``run``'s wait bound passed): nothing was sent; the dispatch loop sends it.
    waiting: bool = False
    dry_run: bool = False
    duration_s: float = 0.0
    #: What the print step sent or was to send: the printer (after ``auto`` was resolved),
    #: the job name (with its key) and the job key. A build handed to the dispatch loop
    #: (:attr:`held` or :attr:`waiting`) has them too, the target as it waits (``auto``
    #: unresolved), though nothing was sent; None when the step never came to a send (a
    #: dry run, an earlier failure).
    printer: str | None = None
    job_name: str | None = None
    job_key: str | None = None
    #: The case ids of the build's models (a case's files share a build), in model order.
    case_ids: tuple[str, ...] = ()
    #: Models taken out of the build with their case (``on_model_failure: drop_case``):
    #: (source file, reason naming the case, the model and the step).
    dropped: tuple[tuple[str, str], ...] = ()
    #: Each model's units and where they came from (``part.stl: INCHES (recipe)``).
    units: tuple[str, ...] = ()
    #: SLS builds: packing density, powder and cooling figures from the server's estimate.
    sls: Mapping[str, float] | None = None
    #: A failed build's write refused for want of room: the folder whose disk was full (or
    #: whose quota was used up). Told where the write failed, by the error's kind, so that
    #: whoever decides what a person does about the failure need not read its words.
    full_disk: Path | None = None

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES

    @property
    def print_failed(self) -> bool:
        """Its print was sent and did not finish (:data:`FAILED_PRINT_ENDS`)."""
        return self.verify in FAILED_PRINT_ENDS

    @property
    def busy_s(self) -> float:
        """Seconds servers were leased to this build, over every attempt."""
        return sum(a.busy_s for a in self.attempts)

    @property
    def saved_form(self) -> Path | None:
        """The build's saved .form (the last one written), or None when none was saved."""
        return next((p for p in reversed(self.outputs) if p.suffix.lower() == ".form"), None)


@dataclass(frozen=True)
class BuildCounts:
    """How a run's builds ended, counted as a person and a script read them: the run's
    closing line, its exit line and the JSON report's ``tally`` all say these numbers, so
    none can count a build another way. Splits are left out (their halves are counted); a
    build held for approval or left waiting for a free printer was prepared and not sent, so
    it is counted as such and not as succeeded, though its status is ``succeeded``; so is a
    build whose print did not finish (review of session 43: ``2 of 2 builds succeeded``
    above ``verify b-2: print_error: Resin level too low``)."""

    #: Every build that could succeed or fail (:attr:`RunResult.counted`).
    builds: int = 0
    #: Succeeded, and neither held nor waiting, nor a print that did not finish: printed,
    #: sent, or prepared with no print step.
    succeeded: int = 0
    held: int = 0
    waiting: int = 0
    failed: int = 0
    print_unconfirmed: int = 0
    cancelled: int = 0
    #: Builds halved into smaller ones (not in :attr:`builds`).
    split: int = 0
    #: Builds whose print was sent and did not finish (:data:`FAILED_PRINT_ENDS`): the printer
    #: reported an error or an abort, or the end was never confirmed (``unverified``).
    print_failed: int = 0

    @classmethod
    def of(cls, outcomes: tuple[BuildOutcome, ...]) -> BuildCounts:
        def count(status: BuildStatus) -> int:
            return sum(1 for o in outcomes if o.status is status)

        prepared = [o for o in outcomes if o.status is BuildStatus.SUCCEEDED]
        # Never both: the print step ends on whichever the store answered (executor/steps).
        held = sum(1 for o in prepared if o.held)
        waiting = sum(1 for o in prepared if o.waiting)
        sent_failed = sum(1 for o in prepared if o.print_failed and not (o.held or o.waiting))
        split = count(BuildStatus.SPLIT)
        return cls(builds=len(outcomes) - split,
                   succeeded=len(prepared) - held - waiting - sent_failed,
                   held=held, waiting=waiting, failed=count(BuildStatus.FAILED),
                   print_unconfirmed=count(BuildStatus.PRINT_UNCONFIRMED),
                   cancelled=count(BuildStatus.CANCELLED), split=split,
                   print_failed=sum(1 for o in outcomes if o.print_failed))

    def to_dict(self) -> dict[str, int]:
        """The JSON report's ``tally`` (docs/running.md): every field, by its name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class RunResult:
    """Everything one run did: its builds (splits included), and the models refused up front."""

    run_id: str
    recipe: str
    simulated: bool
    dry_run: bool
    outcomes: tuple[BuildOutcome, ...]
    rejected: tuple[Rejection, ...] = ()
    cancelled: bool = False
    wall_s: float = 0.0
    server_count: int = 0
    pool_mode: str = ""
    output_root: Path | None = None
    warnings: tuple[str, ...] = field(default=())
    #: What verifying the run's prints cost and found (prints, polls, requests, budget), when
    #: the recipe verifies; None otherwise.
    verification: Mapping[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """True only when every build succeeded (splits count through their children),
        nothing was rejected and the run was not interrupted."""
        return (
            not self.cancelled
            and not self.rejected
            and bool(self.outcomes)
            and all(o.ok for o in self.outcomes)
        )

    def outcome(self, name: str) -> BuildOutcome:
        for outcome in self.outcomes:
            if outcome.name == name:
                return outcome
        raise KeyError(name)

    @property
    def counted(self) -> tuple[BuildOutcome, ...]:
        """The builds that can succeed or fail: a split build is replaced by its halves, so
        every count a person reads (progress, summary, exit line) leaves it out."""
        return tuple(o for o in self.outcomes if o.status is not BuildStatus.SPLIT)

    @property
    def tally(self) -> BuildCounts:
        """How its builds ended, as every count a person or a script reads says it."""
        return BuildCounts.of(self.outcomes)

    def by_status(self, status: BuildStatus) -> tuple[BuildOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status is status)

    @property
    def layout_calls(self) -> int:
        return sum(o.layout_calls for o in self.outcomes)

    @property
    def busy_s(self) -> float:
        return sum(o.busy_s for o in self.outcomes)


class BuildReportWriter(Protocol):
    """Writes one finished build's own report (``report.write_build_report``).

    Handed to the executor through ``RunOptions.build_report``, so the executor, a lower
    layer than the reports, never imports them.
    """

    def __call__(
        self,
        outcome: BuildOutcome,
        template: str,
        values: Mapping[str, object],
        root: Path,
        *,
        run_id: str,
    ) -> object: ...

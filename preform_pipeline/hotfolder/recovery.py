"""Recovery: resuming from what the store says, and settling interrupted prints.

On start (:meth:`Recovery.recover`), interrupted work resumes: unfinished moves are
completed; builds that were being prepared are dissolved and their jobs batched again
(nothing was printed); builds caught in PRINT_SENDING go to the print owner
(:class:`~preform_pipeline.printing.PrintOwner`) and are never resent blindly: found →
PRINT_SENT; proven absent → batched again; unknown → looked at again while the grace period
runs (:meth:`Recovery.recheck_due`), then UNVERIFIED. Files whose outcome was decided are
settled. Periodically (:meth:`Recovery.maintenance`), jobs a user retried come back in.

While the daemon runs, builds a batch's run left unsettled because the store failed it
(:meth:`Recovery.settle_left`) are settled on the loop's next passes, by the same rules as on
start (or by writing the run's outcome, when the run has one), until the store answers.

Jobs to batch again are handed back: to the loop's batcher directly (the lists returned), or
from any thread through ``give_back`` (the loop takes them on its next pass).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from preform_pipeline.clock import Clock
from preform_pipeline.errors import StoreError
from preform_pipeline.hotfolder.batcher import BatchItem
from preform_pipeline.hotfolder.intake import Intake, place_of
from preform_pipeline.hotfolder.outcomes import OutcomeFolders
from preform_pipeline.logging import get_logger
from preform_pipeline.printing import Evidence, PrintOwner
from preform_pipeline.store import Build, Job, JobState, JobStore

__all__ = ["DEFAULT_RECENT_SETTLED", "GiveBack", "LeftBuild", "Recovery", "belongs_to_a_run"]

log = get_logger(__name__)

#: On start, the most recent failed and skipped jobs are checked for a move a crash cut short
#: (a crash can only interrupt the last few moves).
DEFAULT_RECENT_SETTLED: Final = 500

#: ``give_back(items, held)``: batch items for the loop (``held``: wait for min_fill).
GiveBack = Callable[[tuple[BatchItem, ...], bool], None]


@dataclass(frozen=True)
class LeftBuild:
    """A build a batch's run left unsettled (the store failed a write it needed).

    ``finish`` writes the run's own outcome for it (raising StoreError or OSError while the
    store or the folders are away); None: the run ended without one, and the build is
    settled as the start-up recovery settles it (prepared again, or its print looked up)."""

    build_id: int
    why: str
    finish: Callable[[], None] | None = None


def belongs_to_a_run(job: Job) -> bool:
    """Whether ``job`` is a ``run``'s: ``run`` and ``watch`` may share one store, and the hot
    folder places every job it takes. That run settles it, or the next run's recovery if it
    died (docs/printing.md); no daemon, nor farm node, takes it up."""
    return place_of(job) is None


class Recovery:
    """Resumes interrupted work and owns the interrupted prints still being looked at."""

    def __init__(
        self,
        store: JobStore,
        intake: Intake,
        outcomes: OutcomeFolders,
        owner: PrintOwner,
        clock: Clock,
        *,
        give_back: GiveBack,
        wake: Callable[[], None],
    ) -> None:
        self.store = store
        self.intake = intake
        self.outcomes = outcomes
        self.owner = owner
        self.clock = clock
        self.give_back = give_back
        self.wake = wake
        self._unresolved_lock = threading.Lock()
        #: Build id → monotonic time to look at its interrupted print again.
        self._unresolved: dict[int, float] = {}
        #: Builds a run left unsettled (:meth:`settle_left`), by id; under the same lock.
        self._left: dict[int, LeftBuild] = {}
        #: Those of :attr:`_left` whose failed retry was said (the loop's thread only).
        self._left_said: set[int] = set()

    def has_unresolved(self) -> bool:
        """True while an interrupted print waits to be looked at again, or a build a run
        left waits to be settled."""
        with self._unresolved_lock:
            return bool(self._unresolved) or bool(self._left)

    def settle_left(self, left: LeftBuild) -> None:
        """A build a run left unsettled (any thread): the loop settles it on its next pass
        (:meth:`recheck_due`), and again on later ones while the store fails it. Left as it
        was, the build would stay "preparing" until the next start's recovery."""
        with self._unresolved_lock:
            self._left[left.build_id] = left
        self.wake()

    def _settle_left_builds(self) -> None:
        with self._unresolved_lock:
            todo = list(self._left.values())
        for left in todo:
            try:
                action = self._settle_one_left(left)
            except (StoreError, OSError) as exc:
                # Tried again only while the store is away. Otherwise the store answered (a
                # conflict, a lease another node holds now: someone else moved the build on,
                # and its new holder or state settles it), or the store has the build's state
                # and its files wait in processing/ for the periodic sweep (tried again here,
                # a blocked folder would hold the loop's once-run open forever).
                retry = isinstance(exc, StoreError) and exc.outage
                error = exc.message if isinstance(exc, StoreError) else str(exc)
                if retry and left.build_id in self._left_said:
                    # Said when it first failed; tried again on every pass (a full disk may
                    # last hours): a warning a second would bury everything else.
                    log.debug("build_left_still_unsettled", build_id=left.build_id,
                              error=error)
                    continue
                log.warning("build_left_unsettled", build_id=left.build_id, why=left.why,
                            error=error, retry=retry)
                if retry:
                    self._left_said.add(left.build_id)
                    continue
            else:
                log.info("build_left_settled", build_id=left.build_id, why=left.why,
                         state=action[0], action=action[1])
            with self._unresolved_lock:
                self._left.pop(left.build_id, None)
            self._left_said.discard(left.build_id)

    def _settle_one_left(self, left: LeftBuild) -> tuple[str, str]:
        """Settle ``left``: (the state it was found in, what was done)."""
        build = self.store.get_build(left.build_id)
        state = build.state.value
        if left.finish is not None:
            left.finish()
            return state, "outcome written"
        if build.state in (JobState.PROCESSING, JobState.PREPARING, JobState.PREPARED):
            self.enqueue_later(self.take_apart(
                build, f"{left.why}; nothing was printed: its jobs are batched again"))
            return state, "prepared again"
        if build.state is JobState.PRINT_SENDING:
            self.resolve_print(build, after_restart=False)
            return state, "print looked up"
        # Decided (its files go with the sweep of processing/) or waiting for a printer
        # (the dispatch loop's): nothing is owed.
        return state, "left as it is"

    def recover(self) -> list[Job]:
        """Resume from the store after a crash or a stop (module docstring); the jobs that
        wait in processing/ to be batched again (the loop batches them)."""
        store = self.store
        resumed: list[Job] = []
        for build in store.list_builds(state=[JobState.PROCESSING, JobState.PREPARING,
                                              JobState.PREPARED]):
            members = store.build_members(build.id)
            if members and all(belongs_to_a_run(job) for job in members):
                continue  # a `run`'s (it shares the store): that run, or the next, settles it
            self.dissolve(build, "the daemon restarted before the build was printed; "
                                  "its jobs are batched again")
        for build in store.list_builds(state=JobState.PRINT_SENDING):
            self.resolve_print(build, after_restart=True)
        for job in store.list_jobs(state=[JobState.DISCOVERED, JobState.QUEUED]):
            if job.source_path.exists() and self.intake.in_drop_area(job.source_path):
                continue  # still in the inbox: the scan takes it (and reuses the job)
            with self.outcomes.lock:
                requeued = self.intake.requeue(job)
            if requeued.state is JobState.PROCESSING:
                resumed.append(requeued)
        for job in store.list_jobs(state=JobState.PROCESSING):
            if job.build_id is not None or belongs_to_a_run(job):
                continue  # a build's; or a `run` claimed it and is still planning, or died
            if not self.intake.finish_move(job):  # also its sidecars, if they stayed behind
                self._fail_lost(job)
                continue
            resumed.append(job)
        self.outcomes.settle_processing_folders()
        self.finish_settles()
        log.info("hotfolder_recovered", resumed_jobs=len(resumed))
        return resumed

    def finish_settles(self, *, unbatched_only: bool = False) -> None:
        """Finish the moves to done/ or failed/ a crash cut short, of the newest settled jobs
        (``unbatched_only``: of those decided before they joined a build)."""
        for job in self.store.list_jobs(
            state=[JobState.FAILED, JobState.DUPLICATE_SKIPPED, JobState.CANCELLED,
                   JobState.DONE, JobState.PRINT_SENT, JobState.UNVERIFIED],
            limit=DEFAULT_RECENT_SETTLED,
        ):
            place = place_of(job)
            if place is None or (unbatched_only and job.build_id is not None):
                continue
            if job.source_path.exists():
                if self.intake.in_drop_area(job.source_path):
                    self.outcomes.settle_job(job.id)  # decided, but the move never started
            elif (place.previous is not None and place.previous.exists()
                  and place.moved is not True):
                # (Recorded as made: the file there now was put back by a user, to drop it
                # again; the scan takes it as a new drop.)
                with self.outcomes.lock:
                    self.intake.finish_move(job)

    def _fail_lost(self, job: Job) -> None:
        try:
            self.store.transition(job.id, JobState.FAILED,
                                  f"its file is gone (last known at {job.source_path})")
        except StoreError as exc:
            log.error("job_fail_failed", job_key=job.job_key, error=str(exc))

    def items_for(self, jobs: Iterable[Job], *, rest_s: float = 0.0) -> list[BatchItem]:
        """Batch items for jobs that wait in processing/: a case's jobs as one item, batched
        no sooner than ``rest_s`` from now."""
        groups: dict[tuple[str, str], list[Job]] = {}
        for job in jobs:
            key = (job.recipe, f"case:{job.case_id}" if job.case_id else f"job:{job.id}")
            groups.setdefault(key, []).append(job)
        now = self.clock.monotonic()
        return [
            BatchItem(
                key=f"job:{members[0].id}",
                recipe=recipe,
                job_ids=tuple(j.id for j in members),
                arrived=now,
                priority=max(j.priority for j in members),
                case_id=members[0].case_id,
                not_before=now + rest_s if rest_s > 0 else 0.0,
            )
            for (recipe, _), members in groups.items()
        ]

    def takes_back(self, job: Job) -> bool:
        """Whether this daemon takes ``job``, retried, back in: a daemon alone on its store
        takes every one, also of an inbox no longer in its settings (its outcome folders keep
        their default names, ``Intake.inbox_of``); a farm node only its own inboxes'."""
        return True

    def claim_free(self) -> list[Job]:
        """Builds free for this daemon to claim, taken up now (an approved build among
        them); their jobs to batch again. A daemon alone on its store holds no leases: every
        build is its own already."""
        return []

    def maintenance(self) -> list[Job]:
        """Periodic: retried jobs (``jobs retry``) back in (returned, for the loop to batch),
        cancelled jobs' files out."""
        retried = [
            j for j in self.store.list_jobs(state=JobState.QUEUED)
            if not (j.source_path.exists() and self.intake.in_drop_area(j.source_path))
            and self.takes_back(j)
        ]
        resumed: list[Job] = []
        for job in retried:
            try:
                with self.outcomes.lock:
                    job = self.intake.requeue(job)
            except (StoreError, OSError) as exc:
                log.warning("requeue_failed", job_key=job.job_key, error=str(exc))
                continue
            if job.state is JobState.PROCESSING:
                log.info("job_requeued", job_key=job.job_key)
                resumed.append(job)
        for build in self.store.list_builds(state=JobState.PROCESSING):
            if build.print_target is not None and build.id not in self.outcomes.active:
                # A job of a waiting build was cancelled: the others get a new build.
                resumed.extend(self.take_apart(build, "a job was cancelled while the build "
                                               "waited for a printer; batched again without it"))
        self.outcomes.settle_processing_folders()
        return resumed

    def resolve_print(self, build: Build, *, after_restart: bool) -> None:
        """Decide a build found in PRINT_SENDING through the print owner (one rule)."""
        answer = self.owner.resolve(build)
        build = answer.build or self.store.get_build(build.id)
        if answer.pending:
            # The answer may still change (a surviving server may deliver it late): look again.
            assert answer.recheck_in_s is not None
            with self._unresolved_lock:
                self._unresolved[build.id] = self.clock.monotonic() + answer.recheck_in_s
            self.wake()
            return
        with self._unresolved_lock:
            self._unresolved.pop(build.id, None)
        if (answer.evidence is Evidence.ABSENT and build.state is JobState.PREPARED
                and build.print_target is not None and build.form_path is not None
                and build.form_path.is_file()):
            # A dispatched send proven absent: its saved .form waits again, not re-prepared.
            self.owner.wait_for_printer(
                build.id, build.print_target, job_name=build.job_name or build.job_key,
                priority=build.priority, describe="its send never went out",
            )
            self.wake()
            return
        if answer.evidence is Evidence.ABSENT and build.state is JobState.PREPARED:
            self.enqueue_later(self.take_apart(build, "its print never went out; batched again"))
            return
        log.info("interrupted_print_settled", build_id=build.id, job_key=build.job_key,
                 evidence=answer.evidence.value, state=build.state.value,
                 after_restart=after_restart)
        self.outcomes.settle_build(build, None)

    def recheck_due(self) -> None:
        """Look again at interrupted prints whose time has come; settle the builds runs
        left (:meth:`settle_left`). The loop's, on every pass."""
        self._settle_left_builds()
        now = self.clock.monotonic()
        with self._unresolved_lock:
            due = [b for b, when in self._unresolved.items() if when <= now]
        for build_id in due:
            build = self.store.get_build(build_id)
            if build.state is JobState.PRINT_SENDING:
                self.resolve_print(build, after_restart=True)
            else:
                with self._unresolved_lock:
                    self._unresolved.pop(build_id, None)

    def take_apart(self, build: Build, reason: str) -> list[Job]:
        """:meth:`dissolve` a build whose jobs this daemon batches again itself: the jobs to
        batch (a farm node first makes their inbox claims its own, ``NodeRecovery``)."""
        return self.dissolve(build, reason)

    def dissolve(self, build: Build, reason: str) -> list[Job]:
        """Take a build that printed nothing apart: its jobs wait for a new build."""
        store = self.store
        if build.state in (JobState.PREPARING, JobState.PREPARED):
            build = store.transition_build(build.id, JobState.PROCESSING, reason,
                                           expect=build.state)
        if build.state is not JobState.PROCESSING:
            return []
        jobs = []
        for job in store.list_jobs(build_id=build.id, state=JobState.PROCESSING):
            jobs.append(store.update_job(job.id, build_id=None))
        store.transition_build(build.id, JobState.CANCELLED, reason,
                               expect=JobState.PROCESSING)
        log.info("build_dissolved", build_id=build.id, job_key=build.job_key,
                 jobs=len(jobs), reason=reason)
        return jobs

    def enqueue_later(self, jobs: Sequence[Job], *, rest_s: float = 0.0) -> None:
        """Batch jobs again from any thread (the loop picks them up), after ``rest_s``."""
        if jobs:
            self.give_back(tuple(self.items_for(jobs, rest_s=rest_s)), False)

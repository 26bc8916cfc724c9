"""A ``run`` recorded in the job store: its jobs, builds and prints, safe to repeat from cron.

::

    start ──► settle what a dead earlier run left (its sends through the print owner; work it
              never sent is released) ──► claim each model by content (atomically) ──► plan
              the claimed ones ──► one store build per planned build (and per split half)
              ──► run (the print owner writes every send) ──► settle each build's outcome

Claims follow the one duplicates rule of the hot folder (:data:`~preform_pipeline.store.
DUPLICATE_STATES`): a model whose content was printed, or is being prepared or printed by
another run or the hot folder, is skipped and said so; ``reprint`` claims it anyway. A claim
looks and creates in one write transaction, so two overlapping runs never take the same model.

Each job remembers the run process that claimed it (pid and start time): a later run releases
the unsent work of a run that died, and resolves its interrupted sends through the print owner
(found, absent, or unknown → UNVERIFIED, never resent automatically).
"""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from preform_pipeline.errors import ModelFileError, StoreError
from preform_pipeline.executor.state import BuildOutcome, BuildStatus, RunResult
from preform_pipeline.geometry.bounded import checked_file_size
from preform_pipeline.logging import get_logger
from preform_pipeline.printing import Evidence, HolderProbe, PrintOwner, SendHolder
from preform_pipeline.store import (
    DUPLICATE_STATES,
    Build,
    Job,
    JobState,
    JobStore,
    content_hash,
)
from preform_pipeline.store.fields import RUN_FIELD
from preform_pipeline.wording import counted

if TYPE_CHECKING:
    from preform_pipeline.plan.builds import BuildPlan, ModelInfo, Plan


__all__ = ["RUN_FIELD", "RunLedger", "Skipped", "is_run_build", "summarize_skipped"]

log = get_logger(__name__)

_UNSENT: Final = (JobState.PROCESSING, JobState.PREPARING, JobState.PREPARED)


def is_run_build(store: JobStore, build: Build) -> bool:
    """True for a build of a ``run`` (its jobs carry the run that claimed them)."""
    return any(RUN_FIELD in j.fields for j in store.build_members(build.id))


@dataclass(frozen=True)
class Skipped:
    """A model a run did not take, and the job that already has its content."""

    path: Path
    other: Job

    @property
    def verb(self) -> str:
        """Why it was skipped, in a few words: ``already printed``, ``being prepared or
        printed``, ..."""
        return {
            JobState.PRINT_SENT: "already printed",
            JobState.VERIFYING: "already printed",
            JobState.FINISHED: "already printed",
            JobState.DONE: "already prepared",
            JobState.UNVERIFIED: "sent before, unverified (settle it: jobs resolve)",
        }.get(self.other.state, "being prepared or printed")

    def describe(self) -> str:
        return (f"skipped {self.path.name}: {self.verb} as job {self.other.job_key} "
                f"({self.other.state.value}); --reprint prints it again")


def summarize_skipped(skipped: Sequence[Skipped], of: int) -> str:
    """One line for the models a run skipped out of the ``of`` it found: a repeat of the same
    command skips every one, and thirty lines alike say less than one. A single one is
    described whole (:meth:`Skipped.describe`)."""
    if len(skipped) == 1:
        return skipped[0].describe()
    kinds = Counter(s.verb for s in skipped)
    why = ", ".join(f"{count} {verb}" for verb, count in kinds.items())
    return (f"skipped {len(skipped)} of {counted(of, 'model')} ({why}); --reprint prints "
            "them again, -v lists each")


_DIED_UNBUILT: Final = "its run died before building it"


def _claimed_by_dead_run(job: Job, gone: HolderProbe) -> bool:
    """Whether a `run` claimed ``job`` (the hot folder's jobs carry no run) and is ``gone``
    (the print owner's rule: a run is judged as a send's holder is)."""
    runner = SendHolder.from_json(job.fields.get(RUN_FIELD))
    return runner is not None and gone(runner)


def _digest(path: Path) -> str | None:
    """``path``'s content hash, or None for a path the readers refuse unread
    (:func:`~preform_pipeline.geometry.bounded.checked_file_size`: gone, a folder, a pipe or
    device, over their size limit) or that cannot be read now. Asked before any reading:
    hashing a named pipe blocked the run for ever, a file named but not there ended it in a
    crash report, and a 20 GB file was read whole, each to be refused by the reader after."""
    try:
        checked_file_size(path)
        return content_hash(path)
    except (ModelFileError, OSError):
        return None


def _queued_again(job: Job) -> bool:
    """Whether ``job`` is a run's job a person queued again (``jobs retry``): the next run
    over its file takes it (:meth:`RunLedger.claim`), so it makes no duplicate."""
    return job.state is JobState.QUEUED and RUN_FIELD in job.fields


class RunLedger:
    """Writes one run's jobs and builds; ``build_ids`` (build name → store id) is shared with
    the print hooks so every send of the run is written by the print owner."""

    def __init__(
        self,
        store: JobStore,
        owner: PrintOwner,
        recipe: str,
        run_id: str,
        me: SendHolder,
        *,
        reprint: bool = False,
        build_ids: MutableMapping[str, int] | None = None,
    ) -> None:
        self.store = store
        self.owner = owner
        self.recipe = recipe
        self.run_id = run_id
        self.me = me
        self.reprint = reprint
        self.build_ids: MutableMapping[str, int] = build_ids if build_ids is not None else {}
        self._jobs_of: dict[Path, Job] = {}
        self._lock = threading.Lock()
        #: Models the claims skipped, in order.
        self.skipped: list[Skipped] = []

    @property
    def claimed(self) -> int:
        """How many models this run took as jobs of its own (written into the store)."""
        return len(self._jobs_of)

    # -- before the run -------------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Settle what earlier runs that died left behind; one line per build settled."""
        lines: list[str] = []
        # One answer per run: its jobs all name it, and judging a run recorded without its
        # instance (an earlier version's) may scan every process of the machine
        # (ProcessIdentity.look_alikes).
        gone: HolderProbe = functools.cache(self.owner.probe)
        for build in self.store.list_builds(state=[*_UNSENT, JobState.PRINT_SENDING]):
            members = self.store.build_members(build.id)
            if not next((_claimed_by_dead_run(j, gone) for j in members
                         if RUN_FIELD in j.fields), False):
                continue  # the hot folder's, or a run that is still going
            if build.state is JobState.PRINT_SENDING:
                answer = self.owner.resolve(build)
                if answer.evidence is Evidence.ABSENT and answer.build is not None:
                    self._release(answer.build, "proven not printed after its run died")
                lines.append(f"interrupted send {build.job_key}: {answer.evidence.value} "
                             f"({answer.reason})")
            else:
                self._release(build, "its run died before printing it")
                lines.append(f"released {build.job_key}: its run died before printing it")
        # A run killed between its claims and its builds (while reading or planning) left
        # jobs with no build: unreleased, every later run would skip their models for ever.
        for job in self.store.list_jobs(state=JobState.PROCESSING):
            if job.build_id is None and _claimed_by_dead_run(job, gone) and self._fail_claim(
                    job, _DIED_UNBUILT):
                lines.append(f"released {Path(job.source_path).name}: {_DIED_UNBUILT}")
        return lines

    def refused(self, reason: str) -> None:
        """The planner refused this run after its claims (``batching.on_overflow: fail``):
        each job it claimed fails with ``reason``, its file free for the next run. Left in
        processing, every later run released them as a dead run's work ("its run died", which
        it had not), and kept a log for that, on every try from cron."""
        for job in self._jobs_of.values():
            self._fail_claim(job, reason)

    def _fail_claim(self, job: Job, reason: str) -> bool:
        """A claimed job that has no build fails with ``reason``; False when another
        writer moved it first (it is theirs now)."""
        try:
            self.store.transition(job.id, JobState.FAILED, reason, expect=JobState.PROCESSING)
        except StoreError as exc:
            log.warning("run_release_failed", job_id=job.id, error=str(exc))
            return False
        return True

    def _release(self, build: Build, reason: str) -> None:
        """Unsent work of a dead run: the build and its jobs fail, so the content is free."""
        try:
            self.store.transition_build(build.id, JobState.FAILED, reason, expect=build.state)
        except StoreError as exc:
            log.warning("run_release_failed", build_id=build.id, error=str(exc))

    def printed_before(self, paths: Sequence[Path]) -> dict[Path, Job]:
        """Of ``paths``, those :meth:`claim` would skip now, each with the job that holds its
        content (the newest of this recipe in a duplicate state, as the claim finds it);
        none with ``reprint``. Only reads the store, once: a run leaves these files unread,
        since measuring thirty printed models was most of a cron repeat's CPU. A path the
        readers refuse (gone, a folder, a pipe, unreadable, over their size limit:
        :func:`_digest`) is none of them: read, it is refused with its reason."""
        if self.reprint or not paths:
            return {}
        digests = {path: d for path in paths if (d := _digest(path)) is not None}
        holders: dict[str, Job] = {}
        # In creation order: the newest of each content is the one left (the claim's rule).
        for job in self.store.find_by_hashes(set(digests.values()), state=DUPLICATE_STATES):
            if job.recipe == self.recipe and job.content_hash is not None:
                holders[job.content_hash] = job
        return {path: holders[d] for path, d in digests.items()
                if d in holders and not _queued_again(holders[d])}

    def skip(self, found: Mapping[Path, Job]) -> list[Skipped]:
        """Skip each file of ``found`` (:meth:`printed_before`'s answer, perhaps a part of it)
        as :meth:`claim` skips a duplicate: said, logged, in :attr:`skipped`. Its holder
        may have failed since it was read: the file waits for the next run, never printed
        twice."""
        skipped = [Skipped(path, other) for path, other in found.items()]
        for one in skipped:
            log.info("model_skipped", path=str(one.path), job_key=one.other.job_key,
                     state=one.other.state.value, reason=one.verb)
        self.skipped.extend(skipped)
        return skipped

    def claim(self, models: Sequence[ModelInfo]) -> tuple[list[ModelInfo], list[Skipped]]:
        """Claim each model by content; the models this run may take, and those it skips.

        Only work of others (earlier runs, overlapping runs, the hot folder) makes a model a
        duplicate: identical files named in this run are all taken.
        """
        taken: list[ModelInfo] = []
        skipped: list[Skipped] = []
        mine: set[str] = set()
        reason = f"taken by run {self.run_id}"
        fields = {RUN_FIELD: self.me.to_json()}
        for model in models:
            digest = content_hash(model.path)
            # Stored absolute: `jobs show` and `jobs retry`, started in another folder than
            # the run (cron's), called a file given as `inbox/...` "not there now".
            source = model.path.absolute()
            other: Job | None = None
            if digest in mine:
                # Copies named in this very run are wanted, each of them.
                job: Job | None = self.store.create_job(
                    recipe=self.recipe, source_path=source, content_hash=digest,
                    fields=fields, state=JobState.PROCESSING, reason=reason,
                )
            else:
                job, other = self.store.claim_job(
                    recipe=self.recipe, source_path=source, content_hash=digest,
                    taken=() if self.reprint else DUPLICATE_STATES, reason=reason,
                    fields=fields,
                )
            if job is None and other is not None:
                job = self._take_retried(other, source, fields, reason)
            if job is not None and model.case_id is not None and job.case_id != model.case_id:
                # The case its folder (or sidecar) gives, as a hot folder's job has it: the
                # print is named by it, and `jobs show C-1042` finds it.
                job = self.store.update_job(job.id, case_id=model.case_id)
            if job is not None:
                mine.add(digest)
                self._jobs_of[model.path] = job
                taken.append(model)
            else:
                assert other is not None
                skipped.append(Skipped(model.path, other))
        return taken, self.skip({one.path: one.other for one in skipped})

    def _take_retried(self, job: Job, path: Path, fields: Mapping[str, object],
                      reason: str) -> Job | None:
        """A run's job a person queued again (``jobs retry``), taken by this run as it is
        (its key and history kept); None for any other job, or when another process took it
        first. A run's job has no hot folder place, so nothing but a run over its file
        prepares it: left queued, it would keep its file from every later run."""
        if not _queued_again(job):
            return None
        try:
            self.store.transition(job.id, JobState.PROCESSING, f"{reason} (queued again)",
                                  expect=JobState.QUEUED)
        except StoreError as exc:  # another run (or a hot folder) took it first
            log.info("retried_job_taken_elsewhere", job_id=job.id, error=str(exc))
            return None
        log.info("retried_job_taken", job_id=job.id, job_key=job.job_key, path=str(path))
        return self.store.update_job(job.id, source_path=path,
                                     fields={**job.fields, **fields})

    def record(self, plan: Plan) -> None:
        """A store build for every planned build; models the planner refused fail."""
        for build in plan.builds:
            self._add(build, f"planned by run {self.run_id}")
        for rejection in plan.rejected:
            job = self._jobs_of.get(rejection.path)
            if job is not None:
                self.store.transition(job.id, JobState.FAILED, rejection.reason)

    def _add(self, build: BuildPlan, reason: str) -> Build:
        ids = [self._jobs_of[m.path].id for m in build.models if m.path in self._jobs_of]
        stored = self.store.create_build(recipe=self.recipe, job_ids=ids, reason=reason)
        with self._lock:
            self.build_ids[build.name] = stored.id
        return stored

    def on_dropped(self, build: str, path: Path, reason: str) -> None:
        """The runner took ``path``'s model out of ``build`` (its case went, the build goes
        on): its job fails now, with the reason, so the build's send does not record it as
        printed, and `jobs` says why."""
        job = self._jobs_of.get(path)
        if job is None:
            return
        current = self.store.get_job(job.id)
        try:
            self.store.transition(job.id, JobState.FAILED, reason, expect=current.state)
        except StoreError as exc:
            log.error("dropped_job_not_failed", job_key=job.job_key, build=build,
                      error=str(exc))

    def on_split(self, build: BuildPlan, halves: tuple[BuildPlan, BuildPlan]) -> None:
        """The runner split ``build``: its jobs leave it, each half gets a store build."""
        build_id = self.build_ids.get(build.name)
        if build_id is None:
            return
        parent = self.store.get_build(build_id)
        if parent.state in (JobState.PREPARING, JobState.PREPARED):
            parent = self.store.transition_build(parent.id, JobState.PROCESSING,
                                                 "split: the models did not fit one platform",
                                                 expect=parent.state)
        if parent.state is JobState.PROCESSING:
            for job in self.store.list_jobs(build_id=parent.id, state=JobState.PROCESSING):
                self.store.update_job(job.id, build_id=None)
            self.store.transition_build(parent.id, JobState.CANCELLED,
                                        f"split into {halves[0].name} and {halves[1].name}",
                                        expect=JobState.PROCESSING)
        for half in halves:
            self._add(half, f"half of build {parent.job_key}")

    # -- after the run --------------------------------------------------------------------------

    def finish(self, result: RunResult) -> None:
        """Settle each build's store state from its outcome; builds that never ran are freed."""
        outcomes = {o.name: o for o in result.outcomes}
        for name, build_id in list(self.build_ids.items()):
            outcome = outcomes.get(name)
            try:
                self._finish(self.store.get_build(build_id), outcome)
            except StoreError as exc:
                log.error("run_build_unrecorded", build=name, error=str(exc))

    def _finish(self, build: Build, outcome: BuildOutcome | None) -> None:
        state = build.state
        if state is JobState.PRINT_SENDING:
            if build.handed_to_dispatch:
                # Left waiting, it sent nothing: the send is a watch's on this store (its
                # dispatch thread sends every waiting build), which records or settles it;
                # so too when the run was interrupted before the build's outcome was known.
                return
            # No answer, or stopped mid-send: the owner decides; never resent blindly.
            self.owner.resolve(build)
            return
        if state not in _UNSENT:
            return  # sent (the owner recorded it), or already settled
        status = outcome.status if outcome is not None else BuildStatus.CANCELLED
        if status is BuildStatus.SPLIT:
            return
        if status is BuildStatus.SUCCEEDED:
            if state is JobState.PROCESSING:
                build = self.store.transition_build(build.id, JobState.PREPARING, "prepared",
                                                    expect=state)
            # Its .form recorded: the dashboard shows the screenshot and report beside it.
            saved = outcome.saved_form if outcome is not None else None
            self.store.transition_build(build.id, JobState.DONE, "prepared (not printed)",
                                        expect=build.state,
                                        **({"form_path": saved} if saved else {}))
            return
        reason = (outcome.reason if outcome is not None else None) or status.value
        target = JobState.CANCELLED if status is BuildStatus.CANCELLED else JobState.FAILED
        # A failure for want of room keeps its folder, as the hot folder's worker keeps it
        # (docs/jobs.md): the store's record of the build says what a person fixes.
        self.store.transition_build(build.id, target, reason, expect=state,
                                    full_disk=outcome.full_disk if outcome else None)

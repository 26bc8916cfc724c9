"""The worker: one batch at a time, plan, then store builds, then run.

A worker thread takes a released batch, plans its models into builds (models the planner
refuses fail with a note), holds builds below the batching's ``min_fill`` back for the loop,
records one store build per planned build (PREPARING), and hands the plan to the executor with
the print hooks (every send is written by the print owner) and the split callback (the halves
of a build that did not fit get store builds of their own before they run). When the run
ends, each build's outcome decides its store state and its files are settled.

A case whose sidecar names a ``printer`` (a printer, a comma-separated list, ``auto``, or a
Fleet Control queue) prints there instead of where the recipe's ``print`` step says: the
batch's jobs are split by that target (a build goes to one target), each part runs with the
recipe's print step pointed at it, and a name the fleet does not know fails the case alone,
with the same "did you mean" as ``validate``.
"""

from __future__ import annotations

import functools
import importlib
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from preform_pipeline.clock import SYSTEM_CLOCK, Clock, local_time
from preform_pipeline.errors import (
    NotBatchableError,
    PipelineError,
    SourceCopyError,
    StoreError,
    refused_by_a_full_disk,
)
from preform_pipeline.executor import BuildOutcome, BuildStatus, Reporter, RunResult
from preform_pipeline.executor.hooks import BuildPrintHooks
from preform_pipeline.executor.runroot import output_root, run_values
from preform_pipeline.hotfolder.batcher import Batch, BatchItem
from preform_pipeline.hotfolder.batchrest import MAX_REST_S, BatchRest
from preform_pipeline.hotfolder.files import HELD_TODO
from preform_pipeline.hotfolder.intake import OUTCOME_FAILED_STATES, place_of, template_fields
from preform_pipeline.hotfolder.localcopy import LocalCopies
from preform_pipeline.hotfolder.nodes import BuildStops
from preform_pipeline.hotfolder.outcomes import OutcomeFolders
from preform_pipeline.hotfolder.recovery import GiveBack, LeftBuild, Recovery
from preform_pipeline.hotfolder.sharedpool import DEFAULT_START_RETRY_S, PoolFactory, SharedPool
from preform_pipeline.logging import get_logger
from preform_pipeline.outputfolders import REPORTS_FOLDER
from preform_pipeline.plan.held import CaseOf, hold_cases
from preform_pipeline.plan.rejection import Rejection, advised
from preform_pipeline.plan.warnings import plan_warnings
from preform_pipeline.printing import PrintOwner, SendHolder
from preform_pipeline.recipes.model import AUTO_PRINTER, PRINTER_LIST_SEPARATOR, Recipe, Step
from preform_pipeline.recipes.printers import (
    KnownPrinters,
    machine_type_mismatch,
    unknown_printer_message,
)
from preform_pipeline.report import write_build_report, write_run_report
from preform_pipeline.settings import HotFolderSettings
from preform_pipeline.store import Job, JobState, JobStore, extract_key
from preform_pipeline.verify.tracking import PrinterClaims, PrintTracking

if TYPE_CHECKING:
    from preform_pipeline.executor import RunOptions, ServerSource
    from preform_pipeline.plan.builds import BuildPlan, ModelInfo, Plan

# The planner (and with it numpy), the runner and the case checks are imported by the methods
# that run a batch, not here: the daemon makes its worker at its start, and a start that
# never gets a batch (``watch --once`` on an empty inbox, a daemon's quiet night) paid ~110
# modules and ~0.13 s of CPU for them (session 47). The first batch pays them instead, all
# at once and before it touches a job (:func:`import_batch_modules`).


__all__ = [
    "BATCH_MODULES",
    "DEFAULT_START_RETRY_S",
    "BatchModulesError",
    "BatchWorker",
    "ExecutorFactory",
    "FILL_TOLERANCE",
    "PoolFactory",
    "RunnerLike",
    "make_runner",
    "SIDECAR_PRINTER_FIELD",
    "import_batch_modules",
    "recipe_printing_to",
    "sidecar_target",
    "target_problem",
]

log = get_logger(__name__)

#: A build is held only when its fill is below min_fill by more than this. Fills come from
#: float32 model coordinates turned to their orientation, whose last digits depend on the
#: CPU's vector width (numpy's AVX-512 paths round otherwise): a build that fills exactly
#: min_fill came out 0.19999999582 for 0.2 on one machine and 0.2 on another. A part per
#: million is far above that noise and far below any fill a user would tell apart.
FILL_TOLERANCE: Final = 1e-6
#: The sidecar field that chooses a case's print target.
SIDECAR_PRINTER_FIELD: Final = "printer"
#: The print step's options that name its target (one of them, in a recipe).
_TARGET_OPTIONS: Final = ("printer", "printer_ip", "fleet_group")
#: What helps with a model its reader or the planner refused: a broken or oversized model.
_READ_TODO: Final = "check the file (open it in PreForm); fix or re-export it and drop it again"
#: What helps with a file whose content is no model (a PNG named .stl): nothing in it to open
#: in PreForm or to fix. Said instead of the reader's hint (``Rejection.why``), not after it.
_NOT_A_MODEL_TODO: Final = ("it holds no model to fix: drop the model's own file instead, and "
                            "keep this one out of the inbox")


def sidecar_target(job: Job) -> str | None:
    """The print target a job's sidecar chooses (None: the recipe's)."""
    value = job.fields.get(SIDECAR_PRINTER_FIELD)
    text = str(value).strip() if value is not None else ""
    return text or None


def recipe_printing_to(recipe: Recipe, target: str) -> Recipe:
    """``recipe`` with its print steps sent to ``target`` instead of their own target."""
    steps: list[Step] = []
    for step in recipe.steps:
        if step.kind == "print":
            options = {k: v for k, v in step.options.items() if k not in _TARGET_OPTIONS}
            step = replace(step, options={**options, "printer": target})
        steps.append(step)
    return replace(recipe, steps=tuple(steps))


def target_problem(target: str, known: KnownPrinters, machine_type: str | None) -> str | None:
    """Why a sidecar's print target cannot be used (None: it can): an unknown name, with
    "did you mean", or a printer of another machine type. ``auto`` always can."""
    for name in (n.strip() for n in target.split(PRINTER_LIST_SEPARATOR)):
        if not name or name.lower() == AUTO_PRINTER:
            continue
        found = known.find(name)
        if found is None:
            return unknown_printer_message(name, known)
        mismatch = machine_type_mismatch(found, machine_type, known)
        if mismatch is not None:
            return mismatch
    return None


class RunnerLike(Protocol):
    """What the daemon needs of a runner (:class:`preform_pipeline.executor.Runner`)."""

    def run(self) -> RunResult: ...

    def cancel(self) -> None: ...


class ExecutorFactory(Protocol):
    """Makes the runner of one batch; :class:`~preform_pipeline.executor.Runner` fits."""

    def __call__(
        self,
        plan: Plan,
        pool: ServerSource,
        *,
        options: RunOptions,
        reporter: Reporter | None = None,
    ) -> RunnerLike: ...


#: What the methods that run a batch import (the note at the imports says why not here).
BATCH_MODULES: Final = (
    "preform_pipeline.executor.steps",
    "preform_pipeline.plan.builds",
    "preform_pipeline.executor.feasibility",
    "preform_pipeline.executor.runner",
)


class BatchModulesError(PipelineError):
    """A module a batch needs cannot be imported: the installation, not the files, is at fault."""


def import_batch_modules() -> None:
    """Import :data:`BATCH_MODULES` (a later call finds them imported). The daemon calls it
    before a batch touches any of its jobs: a module that cannot be imported (numpy missing
    or broken, a file of the package lost) raises :class:`BatchModulesError` naming it, and
    the taken files wait in processing/, as they did when a start that imported these
    modules refused; none of them fails as a bug of its batch (review rv47-lazy)."""
    for name in BATCH_MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:  # whatever an import raises, it is none of the files' doing
            raise BatchModulesError(
                f"the hot folder cannot prepare batches: importing {name} failed "
                f"({type(exc).__name__}: {exc})",
                hint="the installation is incomplete or broken: reinstall preform-pipeline; "
                "the files taken wait in processing/ and are batched at the next start",
            ) from exc


def make_runner(
    plan: Plan,
    pool: ServerSource,
    *,
    options: RunOptions,
    reporter: Reporter | None = None,
) -> RunnerLike:
    """The default :class:`ExecutorFactory`: the executor's
    :class:`~preform_pipeline.executor.Runner`, imported when the first batch runs."""
    from preform_pipeline.executor.runner import Runner  # lazily: see the imports

    return Runner(plan, pool, options=options, reporter=reporter)


class _HotBuildHooks:
    """One build's print hooks: :class:`PrintTracking`'s, except that a job name that already
    carries the build's key (the hot folder names builds by key, so ``{recipe}-{build}``
    does) is sent as it is instead of getting the key twice."""

    def __init__(self, inner: BuildPrintHooks) -> None:
        self.inner = inner

    @property
    def job_key(self) -> str:
        return self.inner.job_key

    @property
    def verifies(self) -> bool:
        return self.inner.verifies

    def resolve_printer(self, printer: str, recipe: Recipe, client: Any) -> str:
        return self.inner.resolve_printer(printer, recipe, client)

    def job_name(self, name: str) -> str:
        if extract_key(name) == self.inner.job_key:
            return name
        return self.inner.job_name(name)

    def before_send(
        self,
        job_name: str,
        printer: str,
        *,
        holder: SendHolder | None = None,
        form_path: Path | None = None,
    ) -> str | None:
        return self.inner.before_send(job_name, printer, holder=holder, form_path=form_path)

    def sent(self, job_id: str | None, printer: str) -> None:
        self.inner.sent(job_id, printer)

    def refused(self, reason: str) -> None:
        self.inner.refused(reason)

    def unconfirmed(self, reason: str) -> None:
        self.inner.unconfirmed(reason)


class _HotPrintHooks:
    """The run's print hooks (``RunOptions.print_tracking``): job store writes around every
    send through :class:`PrintTracking`; no verification poll inside the batch (the daemon
    must not wait hours for prints to end: ``preform-pipeline verify`` follows them)."""

    def __init__(self, tracking: PrintTracking) -> None:
        self.tracking = tracking

    def for_build(self, build: BuildPlan) -> _HotBuildHooks:
        return _HotBuildHooks(self.tracking.for_build(build))

    def after_run(self, result: RunResult, stop: threading.Event) -> RunResult:
        return self.tracking.after_run(result, stop)


@dataclass
class _Tracked:
    """A build the runner is working on: its store id and its plan."""

    build_id: int
    plan: BuildPlan
    job_ids: tuple[int, ...]


@dataclass
class _BatchRun:
    """The state shared by the worker and the reporter hook during one batch."""

    tracking: PrintTracking | None = None
    tracked: dict[str, _Tracked] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _GivenBack:
    """The jobs one batch gave back to the loop while it ran (held for ``min_fill``), and
    whether it put jobs back to rest because the store was away (:mod:`.batchrest`)."""

    batch: Batch
    job_ids: set[int] = field(default_factory=set)
    rested: bool = False


class BatchWorker:
    """Runs batches (from any number of worker threads) on one shared server pool."""

    def __init__(
        self,
        store: JobStore,
        hot: HotFolderSettings,
        recipes: Mapping[str, Recipe],
        outcomes: OutcomeFolders,
        recovery: Recovery,
        owner: PrintOwner,
        pool_factory: PoolFactory,
        executor: ExecutorFactory,
        *,
        reporter: Reporter,
        run_options: Mapping[str, Any],
        dry_run: bool,
        stop: threading.Event,
        stop_now: threading.Event,
        give_back: GiveBack,
        output_root: Path | None = None,
        on_wait: Callable[[], None] | None = None,
        known_printers: KnownPrinters | None = None,
        local_copies: LocalCopies | None = None,
        stops: BuildStops | None = None,
        servers: int,
        clock: Clock = SYSTEM_CLOCK,
        printer_claims: PrinterClaims,
    ) -> None:
        self.store = store
        #: What a batch's run id and output folder are named by (the daemon's clock).
        self.clock = clock
        #: How many servers the pool holds: a batch's builds are planned for that many
        #: (balanced over them, as ``run`` plans for its pool: ``plan_builds(servers=)``).
        self.servers = servers
        #: Servers import local copies of the batch's files (None: the files themselves).
        self.local_copies = local_copies
        #: Builds to stop at once (their node lost their lease; None: the only node).
        self.stops = stops
        #: The printers a sidecar's ``printer`` may name (None: the server checks when sent).
        self.known_printers = known_printers
        #: With it, every print waits in the store for the daemon's dispatch loop, which is
        #: told through it (None: builds send their own prints).
        self.on_wait = on_wait
        self.hot = hot
        self.recipes = recipes
        self.outcomes = outcomes
        self.recovery = recovery
        self.owner = owner
        #: The one pool the batches and the dispatch loop share.
        self.pool = SharedPool(pool_factory, stop, clock)
        self.executor = executor
        self.reporter = reporter
        self.run_options = dict(run_options)
        self.dry_run = dry_run
        self.stop_event = stop
        self.stop_now = stop_now
        self.give_back = give_back
        #: The settings' ``output_root``; the hot folders' own comes first.
        self.output_root = output_root
        #: The printers chosen and not yet sent to, shared by the batches running side by side
        #: (each its own run) and the daemon's dispatch loop: no two of them may choose the
        #: printer that looks free for two builds.
        self.printer_claims = printer_claims
        self._runner_lock = threading.Lock()
        self._runners: set[RunnerLike] = set()
        # Per thread: each worker thread runs one batch at a time, and the daemon asks what
        # that batch still owns on the thread that ran it (several threads share this worker).
        self._given_back = threading.local()
        #: Batches abandoned while the store is away: how long each next try rests, whether
        #: the outage was said, and the models read for them.
        self.rest = BatchRest(hot.batching.window_s)

    def cancel_all(self) -> int:
        """Cancel every running batch's runner; how many there were."""
        with self._runner_lock:
            runners = list(self._runners)
        for runner in runners:
            runner.cancel()
        return len(runners)

    def close_pool(self) -> None:
        self.pool.close()

    def current_pool(self) -> ServerSource | None:
        """The shared pool if a batch (or dispatch) started it; never starts one."""
        return self.pool.current()

    def owned_items(self, batch: Batch) -> tuple[BatchItem, ...]:
        """The items of ``batch`` still its own: all but those its run gave back to the loop
        (held for ``min_fill``: the loop batches them again, maybe on another thread at once,
        so neither a crash nor an abandoned batch of this one may touch them). Asked on the
        thread that ran the batch."""
        gone = self._given_back_by(batch).job_ids
        return tuple(i for i in batch.items if not gone.intersection(i.job_ids))

    def rested(self, batch: Batch) -> bool:
        """Whether ``batch`` put jobs back to rest because the store was away: a try, not a
        batch (its next try is the batch ``watch`` counts). Asked on the thread that ran it."""
        return self._given_back_by(batch).rested

    def _given_back_by(self, batch: Batch) -> _GivenBack:
        """This thread's record of what ``batch`` gave back so far (empty for another)."""
        record: _GivenBack | None = getattr(self._given_back, "record", None)
        if record is None or record.batch is not batch:
            record = self._given_back.record = _GivenBack(batch)
        return record

    def run_batch(self, batch: Batch) -> None:
        store = self.store
        recipe = self.recipes.get(batch.recipe)
        jobs = [store.get_job(i) for i in batch.job_ids]
        live = [j for j in jobs if j.state is JobState.PROCESSING and j.build_id is None]
        for job in jobs:
            if job not in live and job.state in OUTCOME_FAILED_STATES:
                self.outcomes.settle_job(job.id)
        if not live:
            return
        if recipe is None:
            log.warning("batch_recipe_gone", recipe=batch.recipe, jobs=len(live))
            self.reporter.models_rejected([
                self._fail_said(job, f"recipe {batch.recipe!r} is no longer configured",
                                "add the recipe back to an inbox and retry the job")
                for job in live])
            return
        by_target: dict[str | None, list[Job]] = {}
        for job in live:
            target = sidecar_target(job) if recipe.has_step("print") else None
            by_target.setdefault(target, []).append(job)
        for target, jobs_of_target in by_target.items():
            if target is None:
                self._run_jobs(batch, recipe, jobs_of_target)
                continue
            usable = self._check_target(recipe, target, jobs_of_target)
            if usable:
                self._run_jobs(batch, recipe_printing_to(recipe, target), usable)

    def crashed(self, batch: Batch, exc: Exception) -> None:
        """A batch stopped by an error nobody foresaw (a bug): the jobs nothing was sent for
        fail with the error named and their files kept in failed/. Batched again, they
        would meet the same error at every rescan, and a once-run would never end. A build
        whose print went out or waits (prepared) is left to recovery, which looks it up.
        Jobs the batch gave back to the loop before it crashed are not its own any more
        (:meth:`owned_items`): they wait, or another batch prepares them."""
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        error = f"{type(exc).__name__}: {exc}"
        job_ids = [j for item in self.owned_items(batch) for j in item.job_ids]
        log.error("batch_crashed", recipe=batch.recipe, jobs=len(job_ids), error=error,
                  at=f"{Path(where.filename).name}:{where.lineno} in {where.name}"
                  if where else None)
        # An error may quote a file's working path (an OSError's, say): named by the file's
        # name, one reason for all its jobs, without reading them first (the store may be
        # away, and each job is read once below).
        reason = self.outcomes.as_dropped(f"an internal error stopped its batch ({error})", ())
        store = self.store
        for job_id in job_ids:
            try:
                job = store.get_job(job_id)
                todo = ("this is a bug in preform-pipeline: please report it with the daemon's "
                        f"log. The file is kept here; to try again: {self.outcomes.intake.jobs} "
                        f"retry {job.job_key}")
                if job.build_id is not None:
                    build = store.get_build(job.build_id)
                    if build.state is JobState.PROCESSING:
                        # Made but never sent to the pool: its jobs fail one by one below.
                        self.recovery.dissolve(build, reason)
                        job = store.get_job(job_id)
                    elif build.state is JobState.PREPARING:
                        # Its run is over (the crash ended it) and nothing was sent.
                        store.transition_build(build.id, JobState.FAILED, reason,
                                               expect=JobState.PREPARING)
                        job = store.get_job(job_id)
                if job.state is JobState.PROCESSING and job.build_id is None:
                    self.outcomes.fail_job(job, reason, todo, where="preparing the batch")
                elif job.state is JobState.FAILED and job.reason == reason:
                    self.outcomes.settle_job(job.id, reason=reason, todo=todo,
                                             where="preparing the batch")
                elif job.state in OUTCOME_FAILED_STATES:
                    # Failed before the crash (a case dropped from its build): its file
                    # waited for the build's end, and goes with its own reason.
                    self.outcomes.settle_job(job.id)
            except (StoreError, OSError) as again:
                log.error("batch_crash_not_settled", job_id=job_id, error=str(again))

    def _fail_said(self, job: Job, reason: str, todo: str, *,
                   where: str = "preparing the batch",
                   size_mm: tuple[float, float, float] | None = None,
                   not_a_model: bool = False) -> Rejection:
        """Fail ``job`` before it is batched (its file to failed/, the note beside it) and
        return the console's line for it: where the file is now, what failed, what helps.

        Every job that goes nowhere passes here, so each such case is said on the console
        (:meth:`Reporter.models_rejected`, with the rejected models) the same way: a batch
        that could not be planned, or a case refused at the copy, said nothing on stdout."""
        self.outcomes.fail_job(job, reason, todo, where=where)
        # The reason as recorded names no processing/ folder; the path is said once.
        shown = self.outcomes.as_dropped(reason.removeprefix(f"{job.source_path}: "), [job])
        return Rejection(self.store.get_job(job.id).source_path, advised(shown, todo),
                         size_mm=size_mm, not_a_model=not_a_model)

    def _check_target(self, recipe: Recipe, target: str, jobs: list[Job]) -> list[Job]:
        """The jobs whose sidecar target can be used; the others fail, each case alone."""
        from preform_pipeline.executor.steps import case_step_message  # lazily: see the imports

        known = self.known_printers
        problem = None if known is None else target_problem(
            target, known, recipe.scene.machine_type)
        if problem is None:
            return jobs
        said: list[Rejection] = []
        for job in jobs:
            log.warning("case_target_unknown", case_id=job.case_id, target=target,
                        reason=problem)
            said.append(self._fail_said(
                job, case_step_message(job.case_id, job.original_name, "print",
                                       f"sidecar printer: {problem}"),
                "correct the sidecar's `printer:` and drop the case again (its other cases "
                "were not affected)",
                where=f"checking case {job.case_id or job.original_name} before batching",
            ))
        self.reporter.models_rejected(said)
        return []

    def _run_jobs(self, batch: Batch, recipe: Recipe, live: list[Job]) -> None:
        """Plan ``live`` (jobs of one print target) into builds and run them (from local
        copies of their files, when the node makes them)."""
        from preform_pipeline.executor.steps import case_step_message  # lazily: see the imports

        copies = self.local_copies
        if copies is None:
            self._run_live(batch, recipe, live)
            return
        copied: list[Job] = []
        refused: dict[str, SourceCopyError] = {}  # by case: a case goes on whole or not
        said: list[Rejection] = []
        for job in live:
            try:
                copies.take(job)
            except SourceCopyError as exc:
                log.warning("local_copy_failed", job_key=job.job_key, reason=exc.message)
                said.append(self._fail_said(job, exc.message, exc.hint,
                                            where="copying the file to this node"))
                if job.case_id is not None:
                    refused.setdefault(job.case_id, exc)
                continue
            copied.append(job)
        for job in [j for j in copied if j.case_id in refused]:
            copied.remove(job)
            copies.release([job])
            first = refused[str(job.case_id)]
            said.append(self._fail_said(
                job, case_step_message(job.case_id, job.original_name, "copy",
                                       f"another file of the case: {first.message}"),
                first.hint, where="copying the case's files to this node"))
        self.reporter.models_rejected(said)
        try:
            if copied:
                self._run_live(batch, recipe, copied)
        finally:
            copies.release(copied)

    def _stop_reason(self, run: _BatchRun, name: str) -> str | None:
        """The runner's ``stop_reason``: why the build named ``name`` must stop now."""
        with run.lock:
            tracked = run.tracked.get(name)
        if tracked is None or self.stops is None:
            return None
        return self.stops.reason(tracked.build_id)

    def _run_live(self, batch: Batch, recipe: Recipe, live: list[Job]) -> None:
        from preform_pipeline.plan.builds import (  # lazily: see the imports
            plan_builds,
            recipe_machine,
        )
        from preform_pipeline.plan.builds import read_models as plan_read_models

        by_path = {job.source_path: job for job in live}
        rejected: list[Rejection] = []
        # A try after the store was away reads only what changed since the last one.
        kept = self.rest.take(recipe.name, live)
        read = plan_read_models(
            [path for path in by_path if path not in kept],
            import_spec=recipe.import_options,
            case_ids={job.source_path: job.case_id for job in live},
            fields={job.source_path: self._model_fields(job) for job in live},
            rejected=rejected,
            # Units are judged against the recipe's own machine, as `run` and `plan` do.
            machine=recipe_machine(recipe),
        )
        order = {path: n for n, path in enumerate(by_path)}
        models = sorted([*kept.values(), *read], key=lambda m: order.get(m.path, len(order)))
        models = self._hold_cases(recipe, models, live, rejected)
        models = self._drop_infeasible_cases(recipe, models, live)
        try:
            plan = plan_builds(recipe, models, rejected=rejected, servers=self.servers)
        except PipelineError as exc:
            log.warning("batch_unplannable", recipe=recipe.name, jobs=len(live),
                        error=str(exc))
            self.reporter.models_rejected([
                self._fail_said(job, f"planning failed: {exc}",
                                "fix the recipe or send fewer models at once, then retry")
                for job in live])
            return
        said = [
            # A file that is no model is told the hot folder's advice alone, not the
            # reader's bracketed hint before it as well: what helps is said once.
            self._fail_said(by_path[rejection.path],
                            rejection.why if rejection.not_a_model else rejection.reason,
                            _NOT_A_MODEL_TODO if rejection.not_a_model else _READ_TODO,
                            where="reading and planning the model",
                            size_mm=rejection.size_mm, not_a_model=rejection.not_a_model)
            for rejection in plan.rejected if rejection.path in by_path
        ]
        # The console's line for them: a batch whose every model was rejected said nothing
        # on stdout (its run line never comes), only a log warning on stderr and failed/.
        self.reporter.models_rejected(said)
        # Its warnings (units guessed) as `run` says them, each file named where it was
        # dropped: the reader's own event named its transient processing/ path.
        self.reporter.models_warned([
            self.outcomes.as_dropped(warning, live)
            for warning in plan_warnings(plan, named=_as_dropped_paths(live))])
        builds = list(plan.builds)
        min_fill = self.hot.batching.min_fill
        if min_fill > 0 and not batch.forced:
            builds = self._hold_underfilled(batch, builds, by_path, min_fill)
            # The held jobs are the loop's now: an abandoned batch gives back only its own.
            owned = {j for item in self.owned_items(batch) for j in item.job_ids}
            live = [job for job in live if job.id in owned]
        if not builds:
            return
        with self.pool.lent() as pool:
            if pool is not None:
                self._run_builds(batch, recipe, live, plan, builds, by_path, pool)

    def _run_builds(self, batch: Batch, recipe: Recipe, live: list[Job], plan: Plan,
                    builds: list[BuildPlan], by_path: dict[Path, Job],
                    pool: ServerSource) -> None:
        """Run a batch's planned builds on ``pool`` (lent to it while they run)."""
        from preform_pipeline.executor.runner import (  # lazily: see the imports
            RunOptions,
            new_run_id,
        )

        store = self.store
        started_at = local_time(self.clock)
        run_id = new_run_id(started_at)
        tracking: PrintTracking | None = None
        if recipe.has_step("print") and not self.dry_run:
            # Store writes around every send; build ids are filled in below (and for the
            # halves of split builds, by the reporter) before the runner asks for them.
            tracking = PrintTracking(store=store, locators=self.owner.locators,
                                     recipe=recipe.name, run_id=run_id, jobs=self.owner.jobs,
                                     dispatch=self.on_wait is not None, on_wait=self.on_wait,
                                     claims=self.printer_claims)
        run = _BatchRun(tracking)
        options = RunOptions(
            output_root=output_root(recipe, self.hot.output_root, started_at, self.output_root),
            run_id=run_id,
            dry_run=self.dry_run,
            started_at=started_at,
            print_tracking=_HotPrintHooks(tracking) if tracking is not None else None,
            # A split build's halves get store builds before they run.
            on_split=functools.partial(self._split, run),
            # A case dropped from its build (on_model_failure: drop_case) fails at once.
            on_model_dropped=functools.partial(self._dropped, run),
            build_report=write_build_report,
            import_from=self.local_copies.import_from if self.local_copies else None,
            stop_reason=functools.partial(self._stop_reason, run) if self.stops else None,
            **self.run_options,
        )
        named: list[BuildPlan] = []
        try:
            for build in builds:
                job_ids = tuple(by_path[m.path].id for m in build.models)
                stored = store.create_build(recipe=recipe.name, job_ids=job_ids,
                                            reason=f"batched ({batch.reason})")
                build = replace(build, name=stored.job_key)
                # Tracked from its creation: if the store fails at the next write, the
                # abandoned batch takes this build apart too (left whole, its jobs would
                # wait in processing/ on a build nobody runs while this node lives).
                run.tracked[build.name] = _Tracked(stored.id, build, job_ids)
                store.transition_build(stored.id, JobState.PREPARING,
                                       f"sent to the server pool (run {options.run_id})",
                                       expect=JobState.PROCESSING)
                if tracking is not None:
                    tracking.build_ids[build.name] = stored.id
                self.outcomes.active.add(stored.id)
                named.append(build)
        except StoreError as exc:
            if self._batch_taken_over(run, live, exc, recipe.name,
                                      [m for b in builds for m in b.models]):
                self._given_back_by(batch).rested = True
            return
        self.rest.recorded()
        plan = replace(plan, builds=tuple(named))
        runner = self.executor(plan, pool, options=options, reporter=self.reporter)
        with self._runner_lock:
            self._runners.add(runner)
        if self.stop_now.is_set():
            runner.cancel()
        try:
            result = runner.run()
        except StoreError as exc:
            runner.cancel()  # whatever of it still runs stops before its next step
            self._run_failed(run, exc)
            return
        finally:
            with self._runner_lock:
                self._runners.discard(runner)
            if tracking is not None:
                # A run that raised or was cancelled never reached ``after_run``: a printer
                # its builds chose and never sent to must not stay claimed for good.
                tracking.claims.release(list(tracking.build_ids), by="run")
        report_path: Path | None = None
        try:
            report_path, _ = write_run_report(result, options.output_root / REPORTS_FOLDER)
        except OSError as exc:
            log.warning("run_report_failed", error=str(exc))
        try:
            for outcome in result.outcomes:
                tracked = run.tracked.get(outcome.name)
                if tracked is not None:
                    finish = functools.partial(self._finish_build, tracked, outcome,
                                               report_path)
                    try:
                        finish()
                    except StoreError as exc:
                        log.error("build_finish_failed", build=outcome.name, error=str(exc))
                        # Written later, by the loop, once the store answers: left, the
                        # build would show "preparing" until the next start.
                        self.recovery.settle_left(LeftBuild(
                            tracked.build_id, "its outcome could not be written", finish))
                    except OSError as exc:
                        # The store has the outcome; the files that could not move wait in
                        # processing/: for room on a full disk (the loop settles them with
                        # this outcome at its first look that finds room: a look a second
                        # while the disk stays full), else for the
                        # loop's periodic sweep (or the next start). The
                        # console said the build succeeded or failed: where its files are
                        # (not done/ or failed/) is said there too, or a --once run under
                        # cron would end with them in processing/ and no line about it.
                        log.error("build_finish_failed", build=outcome.name, error=str(exc))
                        when = ("this daemon as soon as the disk has room"
                                if refused_by_a_full_disk(exc) else "this daemon's next sweep")
                        self.outcomes.say(
                            f"build {outcome.name}'s files stay in processing/: {exc}; they "
                            f"are settled once that is fixed (the next run, or {when})")
        finally:
            self.outcomes.active.discard(t.build_id for t in run.tracked.values())

    def _run_failed(self, run: _BatchRun, exc: StoreError) -> None:
        """The store failed the run after its builds were made (the error left the run): no
        outcome says what became of them, so the loop settles each one as the start-up
        recovery would (prepared, not printed: taken apart and batched again; caught
        sending: looked up, never resent blindly), retrying while the store is away."""
        ids = [t.build_id for t in run.tracked.values()]
        log.error("batch_run_failed", error=exc.message, builds=len(ids), build_ids=ids)
        for build_id in ids:
            self.recovery.settle_left(LeftBuild(build_id, f"its run stopped: {exc.message}"))
        # Not this batch's any more: the loop settles them (a farm node keeps their leases
        # while it does: ``NodeRecovery.working_on``).
        self.outcomes.active.discard(ids)

    def _batch_taken_over(self, run: _BatchRun, live: list[Job], exc: StoreError,
                          recipe: str, models: list[ModelInfo]) -> bool:
        """Some jobs of the batch were batched elsewhere meanwhile (another node of a shared
        store adopted them: docs/multi-node.md), or the store failed: the builds made so far
        are taken apart and every job still free is batched again; nothing was sent. After
        a store that failed, the next try rests first (:mod:`.batchrest`): whether jobs were
        put back to rest."""
        rest_s = 0.0
        if isinstance(exc, NotBatchableError) and exc.build_id is not None:
            # Another build has a job of this batch (on a farm, a node adopted it): not an
            # outage, and nothing to rest from. Counted as one, the next real outage was
            # said at debug level and rested longer; it is said as what it is instead.
            log.info("batch_taken_elsewhere", job_id=exc.job_id, build_id=exc.build_id,
                     builds=len(run.tracked))
        elif not exc.outage:
            log.warning("batch_abandoned", error=str(exc), builds=len(run.tracked))
        else:
            tried = self.rest.abandoned(recipe, live, models)
            rest_s = tried.rest_s
            # Said at the first: while the store stays away (a full disk may last hours)
            # the batch is tried again and again, and a warning each time buries the rest.
            say = log.warning if tried.first else log.debug
            say("batch_abandoned" if tried.first else "batch_abandoned_again",
                error=str(exc), builds=len(run.tracked), retry_in_s=round(rest_s, 3),
                longest_wait_s=MAX_REST_S)
        for tracked in run.tracked.values():
            try:
                self.recovery.dissolve(self.store.get_build(tracked.build_id),
                                       "its batch was abandoned before it ran")
            except StoreError as again:
                log.error("build_not_dissolved", build_id=tracked.build_id, error=str(again))
        self.outcomes.active.discard(t.build_id for t in run.tracked.values())
        try:
            free = [j for j in (self.store.get_job(job.id) for job in live)
                    if j.state is JobState.PROCESSING and j.build_id is None]
        except StoreError as again:
            # Which jobs are still free cannot be read now: all of them go back, since
            # batching looks each one up again and leaves those taken meanwhile. Kept here,
            # they would wait in processing/ while this node lives (nobody adopts them).
            log.warning("batch_given_back_unread", jobs=len(live), error=str(again))
            free = live
        self.recovery.enqueue_later(free, rest_s=rest_s)
        return bool(free) and rest_s > 0

    def _hold_cases(
        self, recipe: Recipe, models: list[ModelInfo], live: list[Job],
        rejected: list[Rejection],
    ) -> list[ModelInfo]:
        """``models`` but those of a case holding a model that cannot be prepared: one the
        readers refused (in ``rejected``), or one the planner refuses alone (too large for
        the platform: appended to ``rejected``, failed with the readers' below). Every other
        job of such a case fails now, held with it (:func:`~preform_pipeline.plan.held.
        held_with_cases`, the rule ``run`` holds a case by): nothing of the case prints, and
        the case goes to failed/ whole. A job without a case id is a case of its own."""
        cases = {job.source_path: CaseOf(job.case_id, job.case_id)
                 if job.case_id is not None else None for job in live}
        kept, held = hold_cases(recipe, models, cases, rejected)
        by_path = {job.source_path: job for job in live}
        self.reporter.models_rejected([
            self._fail_said(by_path[one.path], one.reason, HELD_TODO,
                            where=f"checking case {one.case} before batching")
            for one in held])
        return kept

    def _drop_infeasible_cases(
        self, recipe: Recipe, models: list[ModelInfo], live: list[Job]
    ) -> list[ModelInfo]:
        """Fail every case that cannot be done (:mod:`~preform_pipeline.executor.feasibility`),
        all of its jobs with its own reason; the other cases' models go on to planning."""
        from preform_pipeline.executor.feasibility import refused_cases  # lazily: see the imports

        by_path = {job.source_path: job for job in live}
        cases: dict[str, list[ModelInfo]] = {}
        for model in models:
            job = by_path.get(model.path)
            if job is None:
                continue
            cases.setdefault(job.case_id or f"job:{job.id}", []).append(model)
        run = run_values(recipe, local_time(self.clock))
        failed: set[Path] = set()
        said: list[Rejection] = []
        for case, first in refused_cases(recipe, cases, run).items():
            case_jobs = [j for j in live if (j.case_id or f"job:{j.id}") == case]
            log.warning("case_infeasible", case_id=first.case_id, model=first.model,
                        step=first.step, reason=first.reason, jobs=len(case_jobs))
            for job in case_jobs:
                failed.add(job.source_path)
                said.append(self._fail_said(
                    job, first.message,
                    (first.hint + "; then " if first.hint else "")
                    + "drop the case again (its other cases were not affected)",
                    where=f"checking case {first.case_id or job.original_name} before "
                    "batching",
                ))
        self.reporter.models_rejected(said)
        return [m for m in models if m.path not in failed]

    def _model_fields(self, job: Job) -> dict[str, str]:
        values = template_fields(job)
        # The file sits in processing/<key>/ under its dropped name, so stem and model
        # already read as dropped; the job key is there for templates too.
        values.setdefault("job_key", job.job_key)
        return values

    def _hold_underfilled(
        self,
        batch: Batch,
        builds: list[BuildPlan],
        by_path: Mapping[Path, Job],
        min_fill: float,
    ) -> list[BuildPlan]:
        under = [b for b in builds if b.fill_ratio < min_fill - FILL_TOLERANCE]
        if not under:
            return builds
        held_jobs = {by_path[m.path].id for b in under for m in b.models}
        held_items = tuple(i for i in batch.items if held_jobs & set(i.job_ids))
        held_all = {j for i in held_items for j in i.job_ids}
        keep = [b for b in builds if not ({by_path[m.path].id for m in b.models} & held_all)]
        log.info("builds_held_for_fill", recipe=batch.recipe, held_items=len(held_items),
                 fill=[round(b.fill_ratio, 3) for b in under], min_fill=min_fill)
        # Recorded before they go: from then on the loop may batch them on another thread.
        self._given_back_by(batch).job_ids.update(held_all)
        self.give_back(held_items, True)
        return keep

    def _dropped(self, run: _BatchRun, build: str, path: Path, reason: str) -> None:
        """The runner's drop callback: the model's job leaves its build as FAILED now (its
        file is settled with the build's other files when the run ends)."""
        with run.lock:
            tracked = run.tracked.get(build)
            job_ids = tracked.job_ids if tracked is not None else ()
        for job_id in job_ids:
            job = self.store.get_job(job_id)
            if job.source_path != path:
                continue
            try:
                self.store.transition(job.id, JobState.FAILED,
                                      self.outcomes.as_dropped(reason, [job]),
                                      expect=(JobState.PREPARING, JobState.PREPARED))
            except StoreError as exc:
                log.error("dropped_job_not_failed", job_key=job.job_key, error=str(exc))
            return

    def _split(self, run: _BatchRun, build: BuildPlan,
               halves: tuple[BuildPlan, BuildPlan]) -> None:
        """The runner's split callback: ``build``'s jobs leave it, each half gets a store
        build (called on the build's thread before the halves run)."""
        for half in halves:
            self._split_half(run, half, build.name)

    def _split_half(self, run: _BatchRun, child: BuildPlan, parent: str) -> None:
        """A build split in two: its jobs leave it and each half gets a store build."""
        with run.lock:
            owner = run.tracked.get(parent)
            if owner is None:
                return
            store = self.store
            parent_build = store.get_build(owner.build_id)
            if parent_build.state is not JobState.CANCELLED:
                self.recovery.dissolve(parent_build, f"split: the models did not fit one platform "
                                             f"({child.name} and its sibling)")
            job_of = {}
            for job_id in owner.job_ids:
                job = store.get_job(job_id)
                job_of[job.source_path] = job
            ids = tuple(job_of[m.path].id for m in child.models if m.path in job_of)
            stored = store.create_build(recipe=parent_build.recipe, job_ids=ids,
                                        reason=f"half of build {parent_build.job_key}")
            store.transition_build(stored.id, JobState.PREPARING, "split half sent to the pool",
                                   expect=JobState.PROCESSING)
            # The runner knows the half by its own name; the store by its new key.
            run.tracked[child.name] = _Tracked(stored.id, child, ids)
            self.outcomes.active.add(stored.id)
            if run.tracking is not None:
                run.tracking.build_ids[child.name] = stored.id

    def _finish_build(
        self, tracked: _Tracked, outcome: BuildOutcome, report_path: Path | None
    ) -> None:
        if self.stops is not None and self.stops.reason(tracked.build_id) is not None:
            # Its lease is lost: the node holding it now settles it; nothing is written here.
            self.stops.clear(tracked.build_id)
            log.info("build_left_to_new_holder", build=outcome.name,
                     build_id=tracked.build_id, status=outcome.status.value)
            return
        # Under the settle lock: the loop's periodic sweep of processing/ must not settle
        # these files first (with a report that lacks the build's outcome).
        with self.outcomes.lock:
            self._finish_build_locked(tracked, outcome, report_path)

    def _finish_build_locked(
        self, tracked: _Tracked, outcome: BuildOutcome, report_path: Path | None
    ) -> None:
        store = self.store
        build = store.get_build(tracked.build_id)
        status = outcome.status
        state = build.state
        # A send under way is its run's own only if the run did not hand the build to the
        # dispatch loop: held (and approved since) or left waiting, its print_sending is that
        # loop's, which records the send (or settles it) itself. Read as the run's, it was
        # marked sent though the run sent nothing, and the loop's own record then failed.
        # The store says so, not the outcome: an interrupted run's stand-in outcome for a
        # build it had already handed over knows nothing of the hand-over.
        sending = state is JobState.PRINT_SENDING and not build.handed_to_dispatch
        if sending and (outcome.job_id is not None or status is BuildStatus.SUCCEEDED):
            build = store.transition_build(
                build.id, JobState.PRINT_SENT,
                f"print accepted (job {outcome.job_id})" if outcome.job_id else "print sent",
                expect=JobState.PRINT_SENDING, print_job_id=outcome.job_id,
            )
        elif status is BuildStatus.SUCCEEDED and state in (JobState.PREPARING,
                                                           JobState.PREPARED):
            # Its .form recorded: the dashboard shows the screenshot and report beside it.
            saved = outcome.saved_form
            build = store.transition_build(
                build.id, JobState.DONE,
                "prepared (dry run: not printed)" if self.dry_run else "prepared",
                expect=state, **({"form_path": saved} if saved else {}),
            )
        elif sending and status in (BuildStatus.PRINT_UNCONFIRMED, BuildStatus.CANCELLED):
            # The request may or may not have reached the printer: look it up.
            self.recovery.resolve_print(build, after_restart=False)
            return
        elif status is BuildStatus.CANCELLED and state in (JobState.PREPARING,
                                                           JobState.PREPARED):
            self.recovery.dissolve(build, "stopped before it was printed; prepared again on the "
                                  "next start")
            return
        elif (status is BuildStatus.FAILED and state in (JobState.PREPARING, JobState.PREPARED)
              and _store_was_away(outcome)):
            # The job store could not be reached mid-run (a database restart): nothing is
            # wrong with the models and nothing was sent, so they are prepared again.
            self.recovery.enqueue_later(self.recovery.dissolve(
                build, "the job store was away while it was prepared; batched again"))
            return
        elif status is BuildStatus.FAILED and (
            sending or state in (JobState.PREPARING, JobState.PREPARED)
        ):
            # The server's reason may quote a model's working path: its files' notes too.
            reason = self.outcomes.as_dropped(outcome.reason or "failed",
                                              store.list_jobs(build_id=build.id))
            outcome = replace(outcome, reason=reason)
            # The kind goes with the failure: a note written after a restart has no outcome.
            build = store.transition_build(build.id, JobState.FAILED, reason, expect=state,
                                           full_disk=outcome.full_disk)
        elif status is BuildStatus.SPLIT:
            # Its jobs went on to its halves. Only a case dropped before the split stayed
            # with it, failed with its own reason: the split's reason (the overflow) is not
            # why that case failed, so the outcome is left out of its note.
            self.outcomes.settle_build(build, None, report_path)
            return
        elif state is JobState.PROCESSING:
            # Sent back by a cancelled job (``jobs cancel``): the others are batched again.
            self.recovery.enqueue_later(self.recovery.dissolve(
                build, "a job was cancelled; batched again without it"))
        self.outcomes.settle_build(build, outcome, report_path)


def _store_was_away(outcome: BuildOutcome) -> bool:
    """Whether the build's last attempt ended on the job store being unreachable (a conflict
    or a lost lease is the store's answer, not an outage: see ``StoreError.outage``)."""
    return bool(outcome.attempts) and outcome.attempts[-1].store_outage


def _as_dropped_paths(jobs: list[Job]) -> dict[Path, str]:
    """Each job's file (in processing/) by the path it was dropped at, as its user knows it."""
    return {job.source_path: str(place.dropped_at)
            for job in jobs if (place := place_of(job)) is not None}

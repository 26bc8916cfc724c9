"""The hot-folder daemon: inboxes in, prepared (and printed) builds out, for months.

::

    watcher ─► candidate paths ─► drops (a file, or a case folder) ─► complete? (stability)
                                                                        │ take (intake: store
                                                                        ▼ first, then move)
    done/ or failed/ ◄── settle ◄── executor (Runner) ◄── plan ◄── batcher (window, max,
    (beside report /          outcome per build          builds      cutoff, min fill,
     .error.txt)                                                     priority)

Threads: the **loop** (the caller's thread, :meth:`HotFolderDaemon.run`) drains watcher
events, judges drops, takes complete ones and releases batches; **workers** (one per server
of the pool, ``batch_workers``) each plan and run one batch at a time on the shared server
pool (started on the first batch and kept warm; every build leases a server of its own, so a
batch released while another runs starts at once and its builds take the next free
servers); watchdog's observer threads only queue paths. The store is shared (it locks itself); the
batcher and the stability trackers belong to the loop.

The store is written before every action that changes the world:

* a file is QUEUED, then PROCESSING with its processing/ path, then moved (:mod:`.intake`);
* a build is PREPARING before it is sent to a server; PREPARED and PRINT_SENDING (with the
  print's job name and printer) are written by the executor's print hooks
  (:class:`~preform_pipeline.verify.tracking.PrintTracking`, ``RunOptions.print_tracking``)
  right *before* the print request goes out, and PRINT_SENT after the answer;
* a file's destination in done/ or failed/ is recorded before it moves there.

On start (:meth:`HotFolderDaemon.recover`), interrupted work resumes from what the store
says: unfinished moves are completed; builds that were being prepared are dissolved and
their jobs batched again (nothing was printed); builds caught in PRINT_SENDING are looked up
(:mod:`.lookup`) and never resent blindly; files whose outcome was decided are settled;
then every inbox is listed, so files dropped while the daemon was down are taken.

:meth:`HotFolderDaemon.stop` (SIGTERM, Ctrl-C) stops taking files, gives the running batch
``stop_deadline_s`` to finish, then cancels it (unfinished builds go back to be prepared on
the next start), stops the servers and returns.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final, Protocol

from preform_pipeline.cloud.clock import SYSTEM_CLOCK
from preform_pipeline.config import Settings
from preform_pipeline.errors import PipelineError, StoreConflictError, StoreError
from preform_pipeline.executor import (
    BuildOutcome,
    BuildStatus,
    NullReporter,
    Reporter,
    Runner,
    RunOptions,
    RunResult,
    ServerSource,
    new_run_id,
)
from preform_pipeline.executor.runner import run_values
from preform_pipeline.hotfolder.batcher import Batch, Batcher, BatchItem, Clock
from preform_pipeline.hotfolder.files import set_aside_unstorable
from preform_pipeline.hotfolder.intake import (
    OUTCOME_DONE_STATES,
    OUTCOME_FAILED_STATES,
    Drop,
    Intake,
    JobPlace,
    error_note,
    place_of,
    template_fields,
)
from preform_pipeline.hotfolder.lookup import LookupStatus, NoLookup, PrintLookup
from preform_pipeline.hotfolder.settings import HotFolderSettings, InboxSettings
from preform_pipeline.hotfolder.sidecar import SIDECAR_SUFFIX_ORDER
from preform_pipeline.hotfolder.stability import (
    MODEL_SUFFIXES,
    Check,
    FileKind,
    StabilityTracker,
    Verdict,
    drop_refusal,
    is_ignored_name,
    kind_of,
)
from preform_pipeline.hotfolder.watcher import InboxWatcher, WatchRoot, scan
from preform_pipeline.logging import get_logger
from preform_pipeline.plan.builds import BuildPlan, Plan, Rejection, plan_builds
from preform_pipeline.plan.builds import read_models as plan_read_models
from preform_pipeline.preflight import FolderMonitor
from preform_pipeline.recipes import load_recipe, render_template
from preform_pipeline.recipes.model import Recipe
from preform_pipeline.report import build_to_dict, write_run_report
from preform_pipeline.store import Build, Job, JobState, JobStore, extract_key
from preform_pipeline.verify.hooks import BuildPrintHooks
from preform_pipeline.verify.tracking import PrintTracking

__all__ = [
    "DEFAULT_CHECK_INTERVAL_S",
    "DEFAULT_RECENT_SETTLED",
    "DEFAULT_START_RETRY_S",
    "ExecutorFactory",
    "HotFolderDaemon",
    "PoolFactory",
    "RunnerLike",
    "load_recipes",
]

log = get_logger(__name__)

#: How often drops that wait (a file being written, a quiet period running) are looked at
#: again on a local disk; polling inboxes use their poll interval instead.
DEFAULT_CHECK_INTERVAL_S: Final = 0.25
#: On start, the most recent failed and skipped jobs are checked for a move a crash cut short
#: (a crash can only interrupt the last few moves).
DEFAULT_RECENT_SETTLED: Final = 500
#: When the server pool cannot start, the batch waits this long before the next try.
DEFAULT_START_RETRY_S: Final = 10.0
#: The loop wakes at least this often (stop requests, clock changes).
_MAX_WAIT_S: Final = 1.0
#: During a long pass of taking files, due batches are released this often.
_RELEASE_CHECK_S: Final = 0.5
_REPORT_FORMAT: Final = "preform-pipeline-hotfolder-job"


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


#: Returns a *started* pool (servers up); called on the worker thread for the first batch.
PoolFactory = Callable[[], ServerSource]


def _pool_size(settings: Settings) -> int:
    """How many servers the pool will have (as ServerPool counts them)."""
    cfg = settings.servers
    local = cfg.count if (cfg.executable is not None or not settings.remotes) else 0
    return max(1, local + len(settings.remotes))


def load_recipes(hot: HotFolderSettings) -> dict[str, Recipe]:
    """Every recipe the inboxes name, by recipe name (RecipeError / PipelineError if bad)."""
    recipes: dict[str, Recipe] = {}
    sources: dict[str, Path] = {}
    for inbox in hot.inboxes:
        for path in ([inbox.recipe] if inbox.recipe else []) + list(inbox.routes):
            recipe = load_recipe(path)
            known = sources.get(recipe.name)
            if known is not None and known != recipe.source:
                raise PipelineError(
                    f"two recipes are named {recipe.name!r}: {known} and {recipe.source}",
                    hint="give each recipe a unique `name:`; jobs remember recipes by name",
                )
            recipes[recipe.name] = recipe
            sources[recipe.name] = recipe.source
    return recipes


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

    def before_send(self, job_name: str, printer: str) -> str | None:
        return self.inner.before_send(job_name, printer)

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
class _Unit:
    """A drop being watched until it is complete."""

    inbox: InboxSettings
    root: Path
    recipe: str | None
    first_seen: float
    next_check: float = 0.0
    signature: tuple[tuple[str, int, int], ...] | None = None
    signature_at: float = 0.0
    #: The last look said it waits only for time (a quiet period), not for missing content.
    settling: bool = True
    #: When the latest event about it came: for a file written in chunks, about when its
    #: last byte came. It counts as arrived then (the batching window starts there).
    last_seen: float = 0.0


@dataclass
class _Tracked:
    """A build the runner is working on: its store id and its plan."""

    build_id: int
    plan: BuildPlan
    job_ids: tuple[int, ...]


@dataclass
class _BatchRun:
    """The state shared by the worker and the reporter hook during one batch."""

    recipe: Recipe
    options: RunOptions
    tracking: PrintTracking | None = None
    tracked: dict[str, _Tracked] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _StoreReporter:
    """Passes the runner's events on; ``build_added`` (a build split because its models did
    not fit) moves the jobs into one new store build per half, before the half starts."""

    def __init__(self, daemon: HotFolderDaemon, run: _BatchRun, inner: Reporter) -> None:
        self.daemon = daemon
        self.run = run
        self.inner = inner

    def run_started(
        self, run_id: str, builds: Sequence[BuildPlan], *, servers: int, simulated: bool
    ) -> None:
        self.inner.run_started(run_id, builds, servers=servers, simulated=simulated)

    def build_added(self, build: BuildPlan, *, parent: str) -> None:
        self.daemon._split(self.run, build, parent)
        self.inner.build_added(build, parent=parent)

    def build_started(self, build: str, *, server: str, attempt: int, steps: int) -> None:
        self.inner.build_started(build, server=server, attempt=attempt, steps=steps)

    def step_started(self, build: str, step: str, *, index: int, total: int) -> None:
        self.inner.step_started(build, step, index=index, total=total)

    def step_progress(self, build: str, step: str, fraction: float) -> None:
        self.inner.step_progress(build, step, fraction)

    def build_retry(self, build: str, *, attempt: int, reason: str) -> None:
        self.inner.build_retry(build, attempt=attempt, reason=reason)

    def build_finished(self, outcome: BuildOutcome) -> None:
        self.inner.build_finished(outcome)

    def run_finished(self, result: RunResult) -> None:
        self.inner.run_finished(result)

    def close(self) -> None:
        self.inner.close()


class HotFolderDaemon:
    """Watches the settings' inboxes and turns complete drops into prepared builds.

    ``pool_factory`` returns a started server pool (called once, on the first batch);
    ``executor`` makes the runner of a batch (default :class:`Runner`); ``clock`` gives
    monotonic and wall time (tests pass a manual one); ``print_lookup`` finds interrupted
    prints (default: answers "unknown", so such builds become UNVERIFIED); ``reporter``
    receives the runner's progress. ``dry_run`` prepares without printing.
    ``batch_workers``: batches prepared at once (default: the pool's server count).
    """

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        pool_factory: PoolFactory,
        executor: ExecutorFactory = Runner,
        *,
        clock: Clock = SYSTEM_CLOCK,
        print_lookup: PrintLookup | None = None,
        reporter: Reporter | None = None,
        dry_run: bool = False,
        recipes: Mapping[str, Recipe] | None = None,
        run_options: Mapping[str, Any] | None = None,
        batch_workers: int | None = None,
    ) -> None:
        self.settings = settings
        self.hot = settings.hotfolders
        self._folder_monitor = FolderMonitor(i.path for i in self.hot.inboxes)
        if not self.hot.inboxes:
            raise PipelineError(
                "the settings name no hot folders",
                hint="add a `hotfolders:` section with at least one inbox (docs/hotfolder.md)",
            )
        self.store = store
        self.pool_factory = pool_factory
        self.executor = executor
        self.clock = clock
        self.print_lookup: PrintLookup = print_lookup if print_lookup is not None else NoLookup()
        self.reporter: Reporter = reporter if reporter is not None else NullReporter()
        self.dry_run = dry_run
        self.run_options = dict(run_options or {})
        self.recipes: dict[str, Recipe] = dict(
            recipes if recipes is not None else load_recipes(self.hot)
        )
        self._routes: dict[Path, dict[str, str]] = {}
        for inbox in self.hot.inboxes:
            names: dict[str, str] = {}
            for recipe in self.recipes.values():
                if recipe.source in inbox.routes:
                    names[recipe.name] = recipe.name
            self._routes[inbox.path] = names
        self._default: dict[Path, str | None] = {
            inbox.path: next(
                (r.name for r in self.recipes.values() if r.source == inbox.recipe), None
            )
            for inbox in self.hot.inboxes
        }
        self.intake = Intake(
            store,
            self.hot.inboxes,
            duplicates=self.hot.duplicates,
            extra_fields=lambda name: self.recipes[name].fields if name in self.recipes else (),
        )
        self.batcher = Batcher(self.hot.batching, clock)
        self._trackers = {
            inbox.path: StabilityTracker(
                clock,
                quiet_period_s=inbox.quiet_period_s,
                incomplete_timeout_s=inbox.incomplete_timeout_s,
                confirm_unchanged=inbox.mode == "polling",
            )
            for inbox in self.hot.inboxes
        }
        self._roots = [WatchRoot.for_inbox(inbox) for inbox in self.hot.inboxes]
        # (path, monotonic time of the event): a file arrives when it is first seen.
        self._events: queue.SimpleQueue[tuple[Path, float]] = queue.SimpleQueue()
        self.watcher = InboxWatcher(self._roots, self._on_path)
        self._units: dict[Path, _Unit] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._stop_now = threading.Event()
        self._work: queue.Queue[Batch | None] = queue.Queue()
        # Items the worker hands back to the loop: (items, held for min_fill?).
        self._returned: queue.SimpleQueue[tuple[tuple[BatchItem, ...], bool]] = (
            queue.SimpleQueue()
        )
        self._workers: list[threading.Thread] = []
        self.batch_workers = batch_workers if batch_workers is not None else _pool_size(settings)
        self._outstanding = 0
        self._outstanding_lock = threading.Lock()
        self._unresolved_lock = threading.Lock()
        self._runners: set[RunnerLike] = set()
        #: Store builds of the batches being run: the worker settles their files itself.
        self._active_builds: set[int] = set()
        self._runner_lock = threading.Lock()
        self._pool_lock = threading.Lock()
        self._settle_lock = threading.RLock()
        self._pool: ServerSource | None = None
        self._unresolved: dict[int, float] = {}
        self._quiet_waiting = 0
        self._once = False
        #: Since when the loop has had events waiting after a pass (inf: caught up).
        self._behind_since = float("inf")
        self.batches_run = 0

    # -- control ------------------------------------------------------------------------------

    def stop(self, *, now: bool = False) -> None:
        """Ask the daemon to stop (thread- and signal-safe). ``now``: do not wait for the
        running batch's deadline (a second Ctrl-C)."""
        self._stop.set()
        if now:
            self._stop_now.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _on_path(self, path: Path) -> None:
        self._events.put((path, self.clock.monotonic()))
        self._wake.set()

    # -- the loop ------------------------------------------------------------------------------

    def run(self, *, once: bool = False) -> int:
        """Run until :meth:`stop` (or, with ``once``, until what is there is done); 0."""
        log.info("hotfolder_starting", inboxes=[str(i.path) for i in self.hot.inboxes],
                 recipes=sorted(self.recipes), once=once, dry_run=self.dry_run)
        self._once = once
        self._prepare_folders()
        self._workers = [
            threading.Thread(target=self._worker_main, name=f"hotfolder-worker-{n + 1}",
                             daemon=True)
            for n in range(max(1, self.batch_workers))
        ]
        for worker in self._workers:
            worker.start()
        try:
            self.recover()
            if not once:
                self.watcher.start()
            self._rescan()
            next_rescan = self.clock.monotonic() + self.hot.rescan_interval_s
            log.info("hotfolder_started", pending=len(self._units))
            while not self._stop.is_set():
                self._drain_events()
                self._check_units()
                self._take_back_held()
                now = self.clock.monotonic()
                if now >= next_rescan:
                    self._maintenance()
                    self._rescan()
                    next_rescan = now + self.hot.rescan_interval_s
                self._recheck_unresolved()
                if once:
                    if self._quiet_waiting == 0:
                        for batch in self.batcher.flush():
                            self._submit(batch)
                        if self._idle():
                            break
                elif self._events.empty() or (
                    now - self._behind_since >= self.hot.batching.window_s
                ):
                    # Caught up with the events (or behind for a whole window): a burst of
                    # files is taken completely before its window batch goes.
                    self._release_due()
                    self._behind_since = float("inf")
                else:
                    self._behind_since = min(self._behind_since, now)
                    for batch in self.batcher.full():
                        self._submit(batch)
                    continue
                self._wait(next_rescan)
        finally:
            self._shutdown()
        log.info("hotfolder_stopped", batches=self.batches_run)
        return 0

    def _idle(self) -> bool:
        with self._outstanding_lock:
            outstanding = self._outstanding
        with self._unresolved_lock:
            unresolved = bool(self._unresolved)
        return (
            self.batcher.pending_items == 0
            and outstanding == 0
            and self._returned.empty()
            and not unresolved
        )

    def _wait(self, next_rescan: float) -> None:
        now = self.clock.monotonic()
        timeout = min(_MAX_WAIT_S, max(0.0, next_rescan - now))
        due = self.batcher.next_due_in()
        if due is not None:
            timeout = min(timeout, due)
        if self._units:
            soonest = min(u.next_check for u in self._units.values())
            timeout = min(timeout, max(0.0, soonest - now))
        with self._unresolved_lock:
            if self._unresolved:
                timeout = min(timeout, DEFAULT_CHECK_INTERVAL_S * 4)
        if timeout > 0:
            self._wake.wait(timeout)
        self._wake.clear()

    def _prepare_folders(self) -> None:
        for inbox in self.hot.inboxes:
            for folder in (
                inbox.path, inbox.folder("processing"), inbox.folder("done"),
                inbox.folder("failed"),
                *(inbox.path / name for name in self._routes[inbox.path]),
            ):
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    log.error("folder_unavailable", folder=str(folder), error=str(exc))

    # -- finding drops -------------------------------------------------------------------------

    def _rescan(self) -> None:
        self._folder_monitor.check()  # a vanished inbox is logged loudly, and retried here
        now = self.clock.monotonic()
        for root in self._roots:
            for path in scan(root):
                self._note(path, now)

    def _drain_events(self) -> None:
        while True:
            try:
                path, seen = self._events.get_nowait()
            except queue.Empty:
                return
            self._note(path, seen)

    def _inbox_of(self, path: Path) -> InboxSettings | None:
        best: InboxSettings | None = None
        for inbox in self.hot.inboxes:
            try:
                path.relative_to(inbox.path)
            except ValueError:
                continue
            if best is None or len(inbox.path.parts) > len(best.path.parts):
                best = inbox
        return best

    def _note(self, path: Path, seen: float) -> None:
        """Map a reported path to its drop (the top file or folder) and watch that;
        ``seen`` (monotonic) is when the path was reported."""
        inbox = self._inbox_of(path)
        if inbox is None:
            return
        rel = path.relative_to(inbox.path).parts
        if not rel or rel[0] in inbox.reserved_names:
            return
        if any(is_ignored_name(part) for part in rel):
            return
        base = inbox.path
        recipe = self._default[inbox.path]
        routes = self._routes[inbox.path]
        if rel[0] in routes:
            if len(rel) == 1:
                return  # the route folder itself
            base, recipe, rel = inbox.path / rel[0], routes[rel[0]], rel[1:]
        root = base / rel[0]
        if len(rel) == 1 and kind_of(root) is FileKind.SIDECAR:
            # A sidecar belongs to the model or case folder of the same name, if there is one.
            for sibling in (
                *(root.with_suffix(s) for s in MODEL_SUFFIXES),
                root.with_suffix(""),
            ):
                if sibling != root and (sibling.is_dir() or sibling.is_file()):
                    root = sibling
                    break
        unit = self._units.get(root)
        if unit is None:
            self._units[root] = _Unit(inbox, root, recipe, seen, last_seen=seen)
        else:
            unit.next_check = 0.0
            unit.last_seen = max(unit.last_seen, seen)

    def _check_units(self) -> None:
        now = self.clock.monotonic()
        release_at = now + _RELEASE_CHECK_S
        quiet_waiting = 0
        for root, unit in list(self._units.items()):
            if unit.next_check > now:
                quiet_waiting += unit.settling
                continue
            if self._stop.is_set():
                return
            interval = (
                unit.inbox.poll_interval_s if unit.inbox.mode == "polling"
                else DEFAULT_CHECK_INTERVAL_S
            )
            try:
                outcome = self._judge(unit)
            except OSError as exc:
                log.warning("drop_check_failed", root=str(root), error=str(exc))
                unit.next_check = now + interval
                continue
            if outcome is None:
                del self._units[root]
            elif isinstance(outcome, Drop):
                del self._units[root]
                self._take(outcome, unit.last_seen)
                if self.clock.monotonic() >= release_at:
                    # A long pass (thousands of files dropped at once) lets full batches go
                    # meanwhile; the rest of the burst waits for the pass to end, so files
                    # dropped together stay together.
                    if not self._once:
                        for batch in self.batcher.full():
                            self._submit(batch)
                    release_at = self.clock.monotonic() + _RELEASE_CHECK_S
            else:
                unit.next_check = now + interval
                unit.settling = outcome
                quiet_waiting += outcome
        self._quiet_waiting = quiet_waiting

    def _judge(self, unit: _Unit) -> Drop | bool | None:
        """A complete Drop; True/False: wait (True: it may complete soon); None: forget it."""
        tracker = self._trackers[unit.inbox.path]
        root = unit.root
        if set_aside_unstorable(root, unit.inbox.path, unit.inbox.folder("failed")):
            log.warning("drop_set_aside", root=str(root).encode("utf-8", "replace").decode(),
                        reason="name is not valid UTF-8")
            return None
        refusal = drop_refusal(root, unit.inbox.path, follow_symlinks=self.hot.follow_symlinks)
        if refusal is not None:  # never opened: a link out of the inbox, a pipe, a device
            return Drop(unit.inbox, root, unit.recipe, refusal.is_case, others=refusal.paths,
                        rejection=refusal.reason, rejection_hint=refusal.todo)
        if root.is_dir():
            return self._judge_folder(unit, tracker)
        check = tracker.check(root)
        if check.verdict in (Verdict.GONE, Verdict.IGNORE):
            return None
        kind = kind_of(root)
        if kind in (FileKind.STL, FileKind.THREEMF, FileKind.OBJ):
            sidecars = [root.with_suffix(s) for s in SIDECAR_SUFFIX_ORDER]
            side_checks = [tracker.check(s) for s in sidecars if s.is_file()]
            if check.takeable and all(c.verdict is Verdict.COMPLETE for c in side_checks):
                for path in [root, *sidecars]:
                    tracker.forget(path)
                return Drop(unit.inbox, root, unit.recipe, False, models=(root,),
                            reasons={root: check.reason})
            return check.settling or any(c.settling for c in side_checks)
        if kind is FileKind.SIDECAR:
            # A sidecar alone: its model may still come; after the incomplete timeout it goes
            # to failed/ so it does not sit in the inbox for ever.
            if tracker.quiet_for(root) >= unit.inbox.incomplete_timeout_s:
                tracker.forget(root)
                return Drop(unit.inbox, root, unit.recipe, False, others=(root,))
            return False
        if check.verdict is Verdict.COMPLETE:
            tracker.forget(root)
            return Drop(unit.inbox, root, unit.recipe, False, others=(root,))
        return True

    def _judge_folder(self, unit: _Unit, tracker: StabilityTracker) -> Drop | bool | None:
        root = unit.root
        files = sorted(
            p for p in root.rglob("*")
            if p.is_file() and not any(
                is_ignored_name(part) for part in p.relative_to(root).parts
            )
        )
        side_beside = [
            p for p in (root.parent / f"{root.name}{s}" for s in SIDECAR_SUFFIX_ORDER)
            if p.is_file()
        ]
        now = self.clock.monotonic()
        signature = tuple(
            (p.relative_to(root.parent).as_posix(), st.st_size, st.st_mtime_ns)
            for p in [*files, *side_beside]
            for st in [p.stat()]
        )
        if signature != unit.signature:
            unit.signature, unit.signature_at = signature, now
        checks: dict[Path, Check] = {p: tracker.check(p) for p in [*files, *side_beside]}
        models = [p for p in files if kind_of(p) in (FileKind.STL, FileKind.THREEMF,
                                                        FileKind.OBJ)]
        model_keys = {(p.parent, p.stem) for p in models}
        others = [
            p for p in files
            if p not in models
            and not (
                kind_of(p) is FileKind.SIDECAR
                and ((p.parent, p.stem) in model_keys or (p.parent == root and p.stem == root.name))
            )
        ]
        quiet = now - unit.signature_at
        if not files:
            return False
        ready = all(checks[m].takeable for m in models) and all(
            checks[p].verdict is Verdict.COMPLETE
            for p in [*files, *side_beside] if p not in models
        )
        if not models:
            if quiet >= unit.inbox.incomplete_timeout_s:
                ready = True
            else:
                return False
        if not ready or quiet < unit.inbox.quiet_period_s:
            return True
        for path in [*files, *side_beside]:
            tracker.forget(path)
        return Drop(
            unit.inbox, root, unit.recipe, True,
            models=tuple(models), others=tuple(others),
            reasons={m: checks[m].reason for m in models},
        )

    def _release_due(self) -> None:
        if not self._once:
            for batch in self.batcher.due():
                self._submit(batch)

    def _take(self, drop: Drop, arrived: float) -> None:
        if drop.recipe is None:
            drop = replace(
                drop,
                rejection="no recipe takes files dropped here",
                rejection_hint="drop it into one of the route folders: "
                + ", ".join(f"{drop.inbox.path / r}" for r in self._routes[drop.inbox.path])
                if self._routes[drop.inbox.path] else "set the inbox's recipe",
            )
        elif drop.recipe not in self.recipes:
            drop = replace(drop, rejection=f"recipe {drop.recipe!r} is not loaded")
        try:
            # No settle lock: taking only ever settles the jobs it creates itself.
            result = self.intake.take(drop)
        except (StoreError, OSError) as exc:
            log.error("take_failed", root=str(drop.root), error=str(exc))
            self._units.setdefault(
                drop.root,
                _Unit(drop.inbox, drop.root, drop.recipe, self.clock.monotonic(),
                      next_check=self.clock.monotonic() + DEFAULT_CHECK_INTERVAL_S * 4),
            )
            return
        if result.taken:
            first = result.taken[0]
            self.batcher.add(
                BatchItem(
                    key=f"job:{first.id}",
                    recipe=first.recipe,
                    job_ids=tuple(j.id for j in result.taken),
                    arrived=arrived,
                    priority=result.priority,
                    case_id=result.case_id,
                )
            )
            log.info("drop_taken", root=str(drop.root), jobs=len(result.taken),
                     rejected=len(result.rejected), recipe=first.recipe,
                     case_id=result.case_id, priority=result.priority)

    def _submit(self, batch: Batch) -> None:
        with self._outstanding_lock:
            self._outstanding += 1
        self._work.put(batch)

    def _take_back_held(self) -> None:
        while True:
            try:
                items, held = self._returned.get_nowait()
            except queue.Empty:
                return
            if held:
                self.batcher.hold(items)
            else:
                for item in items:
                    self.batcher.add(item)

    # -- recovery ------------------------------------------------------------------------------

    def recover(self) -> None:
        """Resume from the store after a crash or a stop (see the module docstring)."""
        store = self.store
        resumed: list[Job] = []
        for build in store.list_builds(state=[JobState.PROCESSING, JobState.PREPARING,
                                              JobState.PREPARED]):
            self._dissolve(build, "the daemon restarted before the build was printed; "
                                  "its jobs are batched again")
        for build in store.list_builds(state=JobState.PRINT_SENDING):
            self._resolve_print(build, after_restart=True)
        for job in store.list_jobs(state=[JobState.DISCOVERED, JobState.QUEUED]):
            if job.source_path.exists() and self.intake.in_drop_area(job.source_path):
                continue  # still in the inbox: the scan takes it (and reuses the job)
            with self._settle_lock:
                requeued = self.intake.requeue(job)
            if requeued.state is JobState.PROCESSING:
                resumed.append(requeued)
        for job in store.list_jobs(state=JobState.PROCESSING):
            if job.build_id is not None:
                continue
            if not job.source_path.exists() and not self.intake.finish_move(job):
                self._fail_lost(job)
                continue
            resumed.append(job)
        self._enqueue_jobs(resumed)
        self._settle_processing_folders()
        for job in store.list_jobs(
            state=[JobState.FAILED, JobState.DUPLICATE_SKIPPED, JobState.CANCELLED,
                   JobState.DONE, JobState.PRINT_SENT, JobState.UNVERIFIED],
            limit=DEFAULT_RECENT_SETTLED,
        ):
            place = place_of(job)
            if place is None:
                continue
            if job.source_path.exists():
                if self.intake.in_drop_area(job.source_path):
                    self._settle_job(job.id)  # decided, but the move never started
            elif place.previous is not None and place.previous.exists():
                with self._settle_lock:
                    self.intake.finish_move(job)
        self._take_back_held()
        log.info("hotfolder_recovered", resumed_jobs=len(resumed))

    def _fail_lost(self, job: Job) -> None:
        try:
            self.store.transition(job.id, JobState.FAILED,
                                  f"its file is gone (last known at {job.source_path})")
        except StoreError as exc:
            log.error("job_fail_failed", job_key=job.job_key, error=str(exc))

    def _items_for(self, jobs: Iterable[Job]) -> list[BatchItem]:
        """Batch items for jobs that wait in processing/: a case's jobs as one item."""
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
            )
            for (recipe, _), members in groups.items()
        ]

    def _enqueue_jobs(self, jobs: Iterable[Job]) -> None:
        """Batch jobs again (loop thread only)."""
        for item in self._items_for(jobs):
            self.batcher.add(item)

    def _settle_processing_folders(self) -> None:
        """Files in processing/ whose jobs are over go to done/ or failed/; strays too."""
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
                with self._runner_lock:
                    active = job.build_id in self._active_builds
                if not active and (
                    job.state in OUTCOME_DONE_STATES or job.state in OUTCOME_FAILED_STATES
                ):
                    self._settle_job(job.id)

    def _stray(self, inbox: InboxSettings, folder: Path) -> None:
        """Files in processing/ that no job claims (a store replaced or reset): failed/."""
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            rel = path.relative_to(folder).as_posix()
            job = self.store.create_job(
                recipe="(unknown)", source_path=path,
                fields={"_hotfolder": JobPlace(inbox.path, rel).to_json()},
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
            )
            with self._settle_lock:
                self.intake.settle(job, ok=False, note=note)

    def _maintenance(self) -> None:
        """Periodic: retried jobs (``jobs retry``) back in, cancelled jobs' files out."""
        retried = [
            j for j in self.store.list_jobs(state=JobState.QUEUED)
            if not (j.source_path.exists() and self.intake.in_drop_area(j.source_path))
        ]
        resumed: list[Job] = []
        for job in retried:
            try:
                with self._settle_lock:
                    job = self.intake.requeue(job)
            except (StoreError, OSError) as exc:
                log.warning("requeue_failed", job_key=job.job_key, error=str(exc))
                continue
            if job.state is JobState.PROCESSING:
                log.info("job_requeued", job_key=job.job_key)
                resumed.append(job)
        self._enqueue_jobs(resumed)
        self._settle_processing_folders()

    # -- interrupted prints -------------------------------------------------------------------

    def _resolve_print(self, build: Build, *, after_restart: bool) -> None:
        """Decide a build found in PRINT_SENDING by looking its print up."""
        result = self.print_lookup.find(build)
        if result.status is LookupStatus.FOUND:
            build = self.store.transition_build(
                build.id, JobState.PRINT_SENT, f"print found: {result.detail}",
                expect=JobState.PRINT_SENDING,
                print_job_id=result.job_id, printer=build.printer or result.printer,
            )
            with self._unresolved_lock:
                self._unresolved.pop(build.id, None)
            self._settle_build(build, None)
            return
        if result.status is LookupStatus.NOT_FOUND:
            sent_at = build.print_sent_at or build.updated_at
            age = (datetime.now(timezone.utc) - sent_at).total_seconds()
            if age < self.print_lookup.settle_s:
                # A request still on its way may land: look again once it cannot any more.
                with self._unresolved_lock:
                    self._unresolved[build.id] = self.clock.monotonic() + (
                        self.print_lookup.settle_s - age
                    )
                self._wake.set()
                return
            with self._unresolved_lock:
                self._unresolved.pop(build.id, None)
            build = self.store.transition_build(
                build.id, JobState.PREPARED,
                f"print not sent ({result.detail}); preparing it again",
                expect=JobState.PRINT_SENDING,
            )
            jobs = self._dissolve(build, "its print never went out; batched again")
            self._enqueue_later(jobs)
            return
        with self._unresolved_lock:
            self._unresolved.pop(build.id, None)
        reason = (
            "the print request was interrupted"
            + (" by a restart" if after_restart else "")
            + f" and cannot be confirmed: {result.detail}"
        )
        build = self.store.transition_build(
            build.id, JobState.UNVERIFIED, reason, expect=JobState.PRINT_SENDING
        )
        self._settle_build(build, None)

    def _recheck_unresolved(self) -> None:
        now = self.clock.monotonic()
        with self._unresolved_lock:
            due = [b for b, when in self._unresolved.items() if when <= now]
        for build_id in due:
            build = self.store.get_build(build_id)
            if build.state is JobState.PRINT_SENDING:
                self._resolve_print(build, after_restart=True)
            else:
                with self._unresolved_lock:
                    self._unresolved.pop(build_id, None)

    # -- builds in the store ------------------------------------------------------------------

    def _dissolve(self, build: Build, reason: str) -> list[Job]:
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

    # -- the worker ----------------------------------------------------------------------------

    def _worker_main(self) -> None:
        while True:
            batch = self._work.get()
            if batch is None:
                return
            try:
                if not self._stop.is_set():
                    # (Not started when stopping: its jobs wait in processing/ and are
                    # batched again on the next start.)
                    self._run_batch(batch)
                    self.batches_run += 1
            except Exception:
                log.exception("batch_failed", recipe=batch.recipe, jobs=len(batch.job_ids))
            finally:
                with self._outstanding_lock:
                    self._outstanding -= 1
                self._wake.set()

    def _ensure_pool(self) -> ServerSource | None:
        with self._pool_lock:
            while self._pool is None and not self._stop.is_set():
                try:
                    self._pool = self.pool_factory()
                except (PipelineError, OSError) as exc:
                    log.error("pool_start_failed", error=str(exc),
                              retry_in_s=DEFAULT_START_RETRY_S)
                    self._stop.wait(DEFAULT_START_RETRY_S)
            return self._pool

    def _output_root(self, recipe: Recipe, started_at: datetime) -> Path:
        if self.hot.output_root is not None:
            return self.hot.output_root
        rendered = Path(render_template(recipe.outputs.root, run_values(recipe, started_at)))
        return (rendered if rendered.is_absolute() else recipe.base_dir / rendered).resolve()

    def _run_batch(self, batch: Batch) -> None:
        store = self.store
        recipe = self.recipes.get(batch.recipe)
        jobs = [store.get_job(i) for i in batch.job_ids]
        live = [j for j in jobs if j.state is JobState.PROCESSING and j.build_id is None]
        for job in jobs:
            if job not in live and job.state in OUTCOME_FAILED_STATES:
                self._settle_job(job.id)
        if not live:
            return
        if recipe is None:
            for job in live:
                self._fail_job(job, f"recipe {batch.recipe!r} is no longer configured",
                               "add the recipe back to an inbox and retry the job")
            return
        by_path = {job.source_path: job for job in live}
        rejected: list[Rejection] = []
        models = plan_read_models(
            list(by_path),
            import_spec=recipe.import_options,
            case_ids={job.source_path: job.case_id for job in live},
            fields={job.source_path: self._model_fields(job) for job in live},
            rejected=rejected,
        )
        try:
            plan = plan_builds(recipe, models, rejected=rejected)
        except PipelineError as exc:
            for job in live:
                self._fail_job(job, f"planning failed: {exc}",
                               "fix the recipe or send fewer models at once, then retry")
            return
        for rejection in plan.rejected:
            rejected_job = by_path.get(rejection.path)
            if rejected_job is not None:
                self._fail_job(rejected_job, rejection.reason,
                               "check the file (open it in PreForm); fix or re-export it and "
                               "drop it again", where="reading and planning the model")
        builds = list(plan.builds)
        min_fill = self.hot.batching.min_fill
        if min_fill > 0 and not batch.forced:
            builds = self._hold_underfilled(batch, builds, by_path, min_fill)
        if not builds:
            return
        pool = self._ensure_pool()
        if pool is None:
            return
        started_at = datetime.now()
        run_id = new_run_id(started_at)
        tracking: PrintTracking | None = None
        if recipe.has_step("print") and not self.dry_run:
            # Store writes around every send; build ids are filled in below (and for the
            # halves of split builds, by the reporter) before the runner asks for them.
            tracking = PrintTracking(store=store, recipe=recipe.name, run_id=run_id)
        options = RunOptions(
            output_root=self._output_root(recipe, started_at),
            run_id=run_id,
            dry_run=self.dry_run,
            started_at=started_at,
            print_tracking=_HotPrintHooks(tracking) if tracking is not None else None,
            **self.run_options,
        )
        run = _BatchRun(recipe, options, tracking)
        named: list[BuildPlan] = []
        for build in builds:
            job_ids = tuple(by_path[m.path].id for m in build.models)
            stored = store.create_build(recipe=recipe.name, job_ids=job_ids,
                                        reason=f"batched ({batch.reason})")
            build = replace(build, name=stored.job_key)
            store.transition_build(stored.id, JobState.PREPARING,
                                   f"sent to the server pool (run {options.run_id})",
                                   expect=JobState.PROCESSING)
            run.tracked[build.name] = _Tracked(stored.id, build, job_ids)
            if tracking is not None:
                tracking.build_ids[build.name] = stored.id
            with self._runner_lock:
                self._active_builds.add(stored.id)
            named.append(build)
        plan = replace(plan, builds=tuple(named))
        reporter = _StoreReporter(self, run, self.reporter)
        runner = self.executor(plan, pool, options=options, reporter=reporter)
        with self._runner_lock:
            self._runners.add(runner)
        if self._stop_now.is_set():
            runner.cancel()
        try:
            result = runner.run()
        finally:
            with self._runner_lock:
                self._runners.discard(runner)
        report_path: Path | None = None
        try:
            report_path, _ = write_run_report(result, options.output_root / "reports")
        except OSError as exc:
            log.warning("run_report_failed", error=str(exc))
        try:
            for outcome in result.outcomes:
                tracked = run.tracked.get(outcome.name)
                if tracked is not None and outcome.status is not BuildStatus.SPLIT:
                    try:
                        self._finish_build(tracked, outcome, report_path)
                    except (StoreError, OSError) as exc:
                        log.error("build_finish_failed", build=outcome.name, error=str(exc))
        finally:
            with self._runner_lock:
                self._active_builds.difference_update(t.build_id for t in run.tracked.values())

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
        under = [b for b in builds if b.fill_ratio < min_fill]
        if not under:
            return builds
        held_jobs = {by_path[m.path].id for b in under for m in b.models}
        held_items = tuple(i for i in batch.items if held_jobs & set(i.job_ids))
        held_all = {j for i in held_items for j in i.job_ids}
        keep = [b for b in builds if not ({by_path[m.path].id for m in b.models} & held_all)]
        log.info("builds_held_for_fill", recipe=batch.recipe, held_items=len(held_items),
                 fill=[round(b.fill_ratio, 3) for b in under], min_fill=min_fill)
        self._returned.put((held_items, True))
        self._wake.set()
        return keep

    # -- the reporter hook (build threads) ----------------------------------------------------

    def _split(self, run: _BatchRun, child: BuildPlan, parent: str) -> None:
        """A build split in two: its jobs leave it and each half gets a store build."""
        with run.lock:
            owner = run.tracked.get(parent)
            if owner is None:
                return
            store = self.store
            parent_build = store.get_build(owner.build_id)
            if parent_build.state is not JobState.CANCELLED:
                self._dissolve(parent_build, f"split: the models did not fit one platform "
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
            with self._runner_lock:
                self._active_builds.add(stored.id)
            if run.tracking is not None:
                run.tracking.build_ids[child.name] = stored.id

    # -- outcomes -----------------------------------------------------------------------------

    def _finish_build(
        self, tracked: _Tracked, outcome: BuildOutcome, report_path: Path | None
    ) -> None:
        # Under the settle lock: the loop's periodic sweep of processing/ must not settle
        # these files first (with a report that lacks the build's outcome).
        with self._settle_lock:
            self._finish_build_locked(tracked, outcome, report_path)

    def _finish_build_locked(
        self, tracked: _Tracked, outcome: BuildOutcome, report_path: Path | None
    ) -> None:
        store = self.store
        build = store.get_build(tracked.build_id)
        status = outcome.status
        state = build.state
        if state is JobState.PRINT_SENDING and (
            outcome.job_id is not None or status is BuildStatus.SUCCEEDED
        ):
            build = store.transition_build(
                build.id, JobState.PRINT_SENT,
                f"print accepted (job {outcome.job_id})" if outcome.job_id else "print sent",
                expect=JobState.PRINT_SENDING, print_job_id=outcome.job_id,
            )
        elif status is BuildStatus.SUCCEEDED and state in (JobState.PREPARING,
                                                           JobState.PREPARED):
            build = store.transition_build(
                build.id, JobState.DONE,
                "prepared (dry run: not printed)" if self.dry_run else "prepared",
                expect=state,
            )
        elif state is JobState.PRINT_SENDING and status in (BuildStatus.PRINT_UNCONFIRMED,
                                                            BuildStatus.CANCELLED):
            # The request may or may not have reached the printer: look it up.
            self._resolve_print(build, after_restart=False)
            return
        elif status is BuildStatus.CANCELLED and state in (JobState.PREPARING,
                                                           JobState.PREPARED):
            self._dissolve(build, "stopped before it was printed; prepared again on the "
                                  "next start")
            return
        elif status is BuildStatus.FAILED and state in (JobState.PREPARING, JobState.PREPARED,
                                                        JobState.PRINT_SENDING):
            build = store.transition_build(build.id, JobState.FAILED,
                                           outcome.reason or "failed", expect=state)
        elif state is JobState.PROCESSING:
            # Sent back by a cancelled job (``jobs cancel``): the others are batched again.
            self._enqueue_later(self._dissolve(build, "a job was cancelled; batched again "
                                                      "without it"))
        self._settle_build(build, outcome, report_path)

    def _enqueue_later(self, jobs: Sequence[Job]) -> None:
        """Batch jobs again from any thread (the loop picks them up)."""
        if jobs:
            self._returned.put((tuple(self._items_for(jobs)), False))
            self._wake.set()

    def _settle_build(
        self, build: Build, outcome: BuildOutcome | None, report_path: Path | None = None
    ) -> None:
        for job in self.store.list_jobs(build_id=build.id):
            self._settle_job(job.id, build=build, outcome=outcome, report_path=report_path)

    def _fail_job(self, job: Job, reason: str, todo: str, *,
                  where: str = "preparing the batch") -> None:
        try:
            job = self.store.transition(job.id, JobState.FAILED, reason,
                                        expect=JobState.PROCESSING)
        except StoreConflictError:
            job = self.store.get_job(job.id)
        self._settle_job(job.id, reason=reason, todo=todo, where=where)

    def _settle_job(
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
        with self._settle_lock:
            job = self.store.get_job(job_id)
            if job.state in OUTCOME_DONE_STATES:
                ok = True
            elif job.state in OUTCOME_FAILED_STATES:
                ok = False
            else:
                return
            if build is None and job.build_id is not None:
                build = self.store.get_build(job.build_id)
            if ok:
                text = self._report_text(job, build, outcome, report_path)
                self.intake.settle(job, ok=True, report=text)
            else:
                note = self._error_text(job, build, outcome, reason, todo, where)
                self.intake.settle(job, ok=False, note=note)

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
        if outcome is not None:
            data["outcome"] = build_to_dict(outcome)
        if report_path is not None:
            data["run_report"] = str(report_path)
        return json.dumps(data, indent=2, default=str) + "\n"

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
            where = where or f"sending the print of build {build.job_key} to {target}"
            todo = todo or (
                f"check {target} (its queue, or Formlabs Dashboard) for a job named "
                f"{build.job_name or build.job_key!r}. If it is there, nothing to do. If it "
                f"is not, print it again: preform-pipeline jobs retry {job.job_key}"
            )
        elif job.state is JobState.CANCELLED:
            where = where or "cancelled by a user (preform-pipeline jobs cancel)"
            todo = todo or f"nothing; to prepare it after all: preform-pipeline jobs retry " \
                           f"{job.job_key}"
        elif build is not None:
            server = f" on {outcome.server}" if outcome and outcome.server else ""
            where = where or f"preparing build {build.job_key}{server}"
            todo = todo or (
                "read the reason above: fix the model or the recipe, then drop the file "
                f"again or run: preform-pipeline jobs retry {job.job_key}"
            )
            if outcome is not None and outcome.steps_done:
                details.append(f"Steps done: {', '.join(outcome.steps_done)}")
        return error_note(
            what=what,
            where=where or "the hot folder",
            todo=todo or f"fix the cause, then: preform-pipeline jobs retry {job.job_key}",
            file=job.original_name,
            job=job,
            details=details,
        )

    # -- stopping -----------------------------------------------------------------------------

    def _shutdown(self) -> None:
        self.watcher.stop()
        # Batches not started keep their jobs in processing/: the next start batches them.
        while True:
            try:
                dropped = self._work.get_nowait()
            except queue.Empty:
                break
            if dropped is not None:
                with self._outstanding_lock:
                    self._outstanding -= 1
        for _ in self._workers:
            self._work.put(None)
        deadline = self.clock.monotonic() + self.hot.stop_deadline_s
        while any(w.is_alive() for w in self._workers) and not self._stop_now.is_set() and (
            self.clock.monotonic() < deadline
        ):
            for worker in self._workers:
                worker.join(0.1)
        if any(w.is_alive() for w in self._workers):
            with self._runner_lock:
                runners = list(self._runners)
            if runners:
                log.warning("hotfolder_stop_deadline", deadline_s=self.hot.stop_deadline_s,
                            batches=len(runners))
            for runner in runners:
                runner.cancel()
            for worker in self._workers:
                worker.join()
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


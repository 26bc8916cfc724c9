"""The hot-folder daemon's watch loop: inboxes in, prepared (and printed) builds out, for months.

::

    watcher ─► candidate paths ─► drops (a file, or a case folder) ─► complete? (stability)
                                                                        │ take (intake: store
                                                                        ▼ first, then move)
    done/ or failed/ ◄── settle ◄── executor (Runner) ◄── plan ◄── batcher (window, max,
    (beside report /          outcome per build          builds      cutoff, min fill,
     .error.txt)                                                     priority)

The daemon is split along its concerns: this module is the watch loop; :mod:`.worker` runs a
batch (plan, then store builds, then the executor); :mod:`.recovery` resumes after a restart
and settles interrupted prints through the print owner; :mod:`.outcomes` settles files into
done/ or failed/.

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
  print's job name, printer and the server holding the send) are written by the print owner
  (:class:`~preform_pipeline.printing.PrintOwner`, through the executor's print hooks) right
  *before* the print request goes out, and PRINT_SENT after the answer;
* a file's destination in done/ or failed/ is recorded before it moves there.

On start, the hidden temporaries a killed process of this host left in processing/, done/
and failed/ (a move across disks or a note cut off mid-write) are removed
(:func:`~.files.sweep_temporaries`; never a running process's, never another host's), and so
are the staging folders a killed process's servers were saving into below the output folders
(:func:`~preform_pipeline.executor.staging.sweep_staging`, as every run's start does). Then
(:meth:`HotFolderDaemon.recover`) interrupted work resumes from what the store says:
unfinished moves are completed; builds that were being prepared are dissolved and their jobs
batched again (nothing was printed); builds caught in PRINT_SENDING are resolved by
the print owner and never resent blindly (docs/printing.md); files whose outcome was decided
are settled;
then every inbox is listed, so files dropped while the daemon was down are taken, and a case
folder a crash left empty after its files were taken is removed (only the very folder the
store says the case came from, once nothing has changed in it for the quiet period).

:meth:`HotFolderDaemon.stop` (SIGTERM, Ctrl-C) stops taking files, gives the running batch
``stop_deadline_s`` to finish, then cancels it (unfinished builds go back to be prepared on
the next start), stops the servers and returns.
"""

from __future__ import annotations

import functools
import os
import queue
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from preform_pipeline.clock import SYSTEM_CLOCK, Clock, local_time
from preform_pipeline.errors import PipelineError, StoreError
from preform_pipeline.executor import NullReporter, Reporter
from preform_pipeline.executor.runroot import output_root
from preform_pipeline.executor.staging import sweep_staging
from preform_pipeline.hotfolder.batcher import Batch, Batcher, BatchItem
from preform_pipeline.hotfolder.caseholds import forget_holds_of_gone, remember_hold
from preform_pipeline.hotfolder.dispatching import DispatchLoop
from preform_pipeline.hotfolder.files import (
    MAX_NAME_BYTES,
    REPORT_SUFFIX,
    SetAside,
    empty_tree_shape,
    jobs_command,
    move_file,
    overlong_name,
    set_aside_unstorable,
    sweep_temporaries,
)
from preform_pipeline.hotfolder.followup import FollowUp
from preform_pipeline.hotfolder.intake import (
    CaseFolder,
    Drop,
    Intake,
    TakeResult,
    place_of,
)
from preform_pipeline.hotfolder.localcopy import LOCAL_COPIES_DIR_NAME, LocalCopies
from preform_pipeline.hotfolder.nodes import NodeRole
from preform_pipeline.hotfolder.outcomes import OutcomeFolders
from preform_pipeline.hotfolder.presence import InboxPresence
from preform_pipeline.hotfolder.recovery import DEFAULT_RECENT_SETTLED, Recovery
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
from preform_pipeline.hotfolder.worker import (
    DEFAULT_START_RETRY_S,
    BatchModulesError,
    BatchWorker,
    ExecutorFactory,
    PoolFactory,
    RunnerLike,
    import_batch_modules,
    make_runner,
)
from preform_pipeline.logging import get_logger
from preform_pipeline.plan.held import HELD_HINT, why_held
from preform_pipeline.preflight import FolderMonitor
from preform_pipeline.printing import PrintLocator, PrintOwner
from preform_pipeline.recipes import load_recipe
from preform_pipeline.recipes.model import Recipe
from preform_pipeline.recipes.printers import KnownPrinters
from preform_pipeline.recipes.templates import sanitize_component
from preform_pipeline.retention import prune_outputs
from preform_pipeline.settings import HotFolderSettings, Settings
from preform_pipeline.settings.hotfolder import InboxSettings
from preform_pipeline.settings.store import default_store_path
from preform_pipeline.store import Job, JobState, JobStore
from preform_pipeline.verify.notify import Notifier
from preform_pipeline.verify.poller import PrintsFeed
from preform_pipeline.verify.tracking import PrinterClaims
from preform_pipeline.wording import name_text

if TYPE_CHECKING:
    from preform_pipeline.executor.runner import ServerSource


__all__ = [
    "DEFAULT_CHECK_INTERVAL_S",
    "DEFAULT_RECENT_SETTLED",
    "DEFAULT_START_RETRY_S",
    "DEFAULT_TAKE_MOVE_TRIES",
    "ExecutorFactory",
    "HotFolderDaemon",
    "NOTICE_RETENTION_S",
    "PoolFactory",
    "RunnerLike",
    "load_recipes",
]

log = get_logger(__name__)

#: How often drops that wait (a file being written, a quiet period running) are looked at
#: again on a local disk; polling inboxes use their poll interval instead.
DEFAULT_CHECK_INTERVAL_S: Final = 0.25
#: The loop wakes at least this often (stop requests, clock changes).
_MAX_WAIT_S: Final = 1.0
#: A drop whose take failed is looked at again after this long (then its quiet period).
_LOOK_AGAIN_S: Final = DEFAULT_CHECK_INTERVAL_S * 4
#: Looks at a drop whose move into processing/ fails (``OSError``: a full disk, a folder
#: turned read-only, a share that refuses) before it goes to failed/ whole with a note: with
#: the default quiet period, about a minute of trying, enough for a share's passing refusal.
DEFAULT_TAKE_MOVE_TRIES: Final = 10
#: During a long pass of taking files, due batches are released this often.
_RELEASE_CHECK_S: Final = 0.5
#: How often a running daemon prunes its output folders (``hotfolders.retention_days``).
_PRUNE_EVERY_S: Final = 86_400.0
#: Key of the store's notice about a name too long to take, before the path it names.
_TOO_LONG_NOTICE: Final = "drop_name_too_long"
#: A notice no daemon found its file for this long is forgotten (at the first scan and then
#: daily): its inbox was removed from the settings, or the node (or its mount of a shared
#: inbox) is gone. Each daemon keeps, at its first scan and then daily, the notices whose file
#: it finds in its inboxes, so another node's live notices are never taken; an inbox
#: unmounted for longer says its names once more when it is back.
NOTICE_RETENTION_S: Final = 30 * 86_400.0
#: Builds whose saved .form is still to be sent: retention keeps it whatever its age.
_FORM_NEEDED_STATES: Final = frozenset({JobState.PREPARED, JobState.AWAITING_APPROVAL,
                                        JobState.WAITING_FOR_PRINTER, JobState.PRINT_SENDING})
_TOO_LONG_HINT: Final = (f"rename it to at most {MAX_NAME_BYTES} bytes (an accented or "
                         "non-Latin letter takes 2 to 4); it stays in the inbox until then")



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
    #: For a folder without files: why the store shows it a case folder this hot folder
    #: emptied ("": not one; None: not asked since its shape last changed).
    emptied: str | None = None


class HotFolderDaemon:
    """Watches the settings' inboxes and turns complete drops into prepared builds.

    ``pool_factory`` returns a started server pool (called on the first batch, and again
    only when every server of its pool refused to start for good);
    ``executor`` makes the runner of a batch (default :func:`~.worker.make_runner`: the
    executor's ``Runner``, imported with the first batch); ``clock`` gives
    monotonic and wall time (tests pass a manual one); ``print_lookup``: the places that can
    show an interrupted print (:class:`~preform_pipeline.printing.PrintLocator`; none: such
    builds become UNVERIFIED), resolved by ``print_owner`` (default: one over the store and
    these locators, on the system clock); ``reporter``
    receives the runner's progress. ``dry_run`` prepares without printing.
    ``batch_workers``: batches prepared at once (default: the pool's server count).
    ``web_client``: the prints feed the daemon verifies its own prints by (the Web API client,
    or a simulated fleet folder's :class:`~preform_pipeline.printing.FleetFolderFeed`).
    ``known_printers``: the names a sidecar's ``printer:`` may use (None: not checked before
    the print is sent). ``move``: how a job's file moves (the intake's seam, where a test
    makes the file system refuse a move).
    """

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        pool_factory: PoolFactory,
        executor: ExecutorFactory = make_runner,
        *,
        clock: Clock = SYSTEM_CLOCK,
        print_lookup: PrintLocator | Sequence[PrintLocator] | None = None,
        print_owner: PrintOwner | None = None,
        reporter: Reporter | None = None,
        dry_run: bool = False,
        recipes: Mapping[str, Recipe] | None = None,
        run_options: Mapping[str, Any] | None = None,
        batch_workers: int | None = None,
        web_client: PrintsFeed | None = None,
        notifier: Notifier | None = None,
        known_printers: KnownPrinters | None = None,
        node: NodeRole | None = None,
        move: Callable[[Path, Path], None] = move_file,
    ) -> None:
        self.settings = settings
        #: One node of several on a shared store (:mod:`.nodes`); None: the only daemon.
        self.node = node
        self.hot = settings.hotfolders
        self._folder_monitor = FolderMonitor(i.path for i in self.hot.inboxes)
        #: Which inboxes are away (a share unmounted): their state is kept until they are back.
        self._presence = InboxPresence(self.hot.inboxes)
        if not self.hot.inboxes:
            raise PipelineError(
                "the settings name no hot folders",
                hint="add a `hotfolders:` section with at least one inbox (docs/hotfolder.md)",
            )
        self.store = store
        self.pool_factory = pool_factory
        self.executor = executor
        self.clock = clock
        if print_lookup is None:
            locators: tuple[PrintLocator, ...] = ()
        elif isinstance(print_lookup, Sequence):
            locators = tuple(print_lookup)
        else:
            locators = (print_lookup,)
        #: The one owner of every send's life; interrupted sends are resolved only through it.
        self.owner = (print_owner if print_owner is not None
                      else PrintOwner(store, locators, jobs=jobs_command(settings)))
        self.reporter: Reporter = reporter if reporter is not None else NullReporter()
        #: Where a line for the user goes (``watch`` prints it); a test may collect them.
        self.notice: Callable[[str], None] = lambda line: None
        self.dry_run = dry_run
        # The servers' request timeout also bounds the grace period of an interrupted print.
        self.run_options = {"request_timeout_s": settings.servers.request_timeout_s,
                            **dict(run_options or {})}
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
        #: Verification of its own prints (with ``web_client``) and notifications.
        self.followup = FollowUp(store, client=web_client, notifier=notifier,
                                 verify=settings.verify, clock=clock)
        self.followup.say = lambda line: self.notice(line)
        self.intake = Intake(
            store,
            self.hot.inboxes,
            duplicates=self.hot.duplicates,
            extra_fields=lambda name: self.recipes[name].fields if name in self.recipes else (),
            on_failed=self.followup.case_failed,
            failed_fields=self.followup.owed_fields,
            jobs=jobs_command(settings),
            move=move,
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
        #: Loose model files said to be waiting to be complete (:meth:`_say_incomplete`):
        #: each is said once while it waits, and forgotten once it is taken or gone.
        self._said_incomplete: set[Path] = set()
        self._roots = [WatchRoot.for_inbox(inbox) for inbox in self.hot.inboxes]
        # (path, monotonic time of the event): a file arrives when it is first seen.
        self._events: queue.SimpleQueue[tuple[Path, float]] = queue.SimpleQueue()
        self.watcher = InboxWatcher(self._roots, self._on_path)
        self._units: dict[Path, _Unit] = {}
        #: Jobs of cases whose take a crash cut short, by case folder (:meth:`recover`).
        self._cut_cases: dict[Path, list[Job]] = {}
        #: Looks whose move into processing/ failed, by drop, and how many a drop gets.
        self._move_failures: dict[Path, int] = {}
        #: Drops given up (:meth:`_give_up`) whose moves to failed/ failed too, by drop: its
        #: jobs, what failed and what helps; given up again on the next look, never taken.
        self._giving_up: dict[Path, tuple[list[Job], str, str]] = {}
        #: Drops whose take the store refused while away (a full disk, a database restart),
        #: said once each: every later look fails the same way until it is back.
        self._take_failed_said: set[Path] = set()
        self.take_move_tries = DEFAULT_TAKE_MOVE_TRIES
        self._next_prune = 0.0
        self._next_notice_expiry = 0.0
        #: By inbox: the case holds its last scan found gone (forgotten if the next does too).
        self._holds_gone_once: dict[Path, frozenset[str]] = {}
        self._wake = threading.Event()
        #: Set by the dispatch loop when an approved build waits for a node to claim it.
        self._approved = threading.Event()
        self._stop = threading.Event()
        self._stop_now = threading.Event()
        #: Why the daemon stopped itself: the modules a batch needs could not be imported.
        self._unusable: BatchModulesError | None = None
        self._work: queue.Queue[Batch | None] = queue.Queue()
        # Items the worker hands back to the loop: (items, held for min_fill?).
        self._returned: queue.SimpleQueue[tuple[tuple[BatchItem, ...], bool]] = (
            queue.SimpleQueue()
        )
        self._workers: list[threading.Thread] = []
        self.batch_workers = (
            batch_workers if batch_workers is not None else max(1, settings.pool.size)
        )
        self._outstanding = 0
        self._outstanding_lock = threading.Lock()
        self._quiet_waiting = 0
        self._once = False
        #: Since when the loop has had events waiting after a pass (inf: caught up).
        self._behind_since = float("inf")
        self.batches_run = 0
        # The concerns the loop drives: outcome folders, recovery, and the batch worker.
        self.outcomes = OutcomeFolders(
            store, self.intake, self.hot, dry_run=dry_run, clock=clock,
            active=node.active_builds() if node is not None else None)
        self.followup.settle_lock = self.outcomes.lock
        self.outcomes.say = lambda line: self.notice(line)  # (notice is set after start-up)
        self.recovery = (node.recovery if node is not None else functools.partial(
            Recovery, store))(self.intake, self.outcomes, self.owner, clock,
                              give_back=self._give_back, wake=self._wake.set)
        #: Prints wait in the store and go out as printers free up (none in a dry run).
        self.dispatch: DispatchLoop | None = None
        #: One place decides which printer a build goes to: the batches and the dispatch
        #: loop choose under the same claims (a printer chosen is not free until sent to).
        claims = PrinterClaims(store)
        if not dry_run:
            self.dispatch = DispatchLoop(settings, store, self.owner, self.outcomes,
                                         self._dispatch_pool, self._stop,
                                         on_late=self.followup.build_waiting, claims=claims,
                                         say=lambda line: self.notice(line),
                                         on_approved=self._claim_approved)
        self.worker = BatchWorker(
            store, self.hot, self.recipes, self.outcomes, self.recovery, self.owner,
            pool_factory, executor, reporter=self.reporter, run_options=self.run_options,
            dry_run=dry_run, stop=self._stop, stop_now=self._stop_now,
            give_back=self._give_back, output_root=settings.output_root,
            on_wait=self.dispatch.wake.set if self.dispatch is not None else None,
            known_printers=known_printers,
            local_copies=self._local_copies(node),
            stops=node.stops if node is not None else None,
            servers=max(1, settings.pool.size),
            clock=clock,
            printer_claims=claims,
        )

    def _local_copies(self, node: NodeRole | None) -> LocalCopies | None:
        """The node's cache of local copies, when it makes them: on a shared store unless
        ``hotfolders.local_copies`` says otherwise (docs/multi-node.md)."""
        wanted = self.hot.local_copies
        if not (node is not None if wanted is None else wanted):
            return None
        folder = self.hot.local_copy_dir
        if folder is None:
            name = node.store.node_id if node is not None else "local"
            folder = (default_store_path().parent / LOCAL_COPIES_DIR_NAME
                      / sanitize_component(name))
        return LocalCopies(folder)

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
        """Run until :meth:`stop` (or, with ``once``, until what is there is done); 0. Raises
        :class:`~.worker.BatchModulesError` after stopping when a batch could not import what
        batches need (its files wait in processing/)."""
        log.info("hotfolder_starting", inboxes=[str(i.path) for i in self.hot.inboxes],
                 recipes=sorted(self.recipes), once=once, dry_run=self.dry_run)
        self._once = once
        self._prepare_folders()
        sweep_temporaries(inbox.folder(kind) for inbox in self.hot.inboxes
                          for kind in ("processing", "done", "failed"))
        # Reports and journals a killed life of this host left half-written, and the staging
        # folders its servers were saving into (never a live process's, nor another host's or
        # container's on a shared output folder), before any batch of this life saves; then
        # old outputs.
        roots = self._output_roots()
        sweep_temporaries(roots)
        for root in roots:
            sweep_staging(root)
        self._prune_outputs()
        if self.worker.local_copies is not None:
            self.worker.local_copies.prune()  # a previous life's; no batch runs yet
        self._workers = [
            threading.Thread(target=self._worker_main, name=f"hotfolder-worker-{n + 1}",
                             daemon=True)
            for n in range(max(1, self.batch_workers))
        ]
        for worker in self._workers:
            worker.start()
        if self.dispatch is not None:
            self.dispatch.start()  # builds that waited before a restart go out first
        try:
            self.recover()
            self.followup.start()
            if not once:
                self.watcher.start()
            self._rescan()
            next_rescan = self.clock.monotonic() + self.hot.rescan_interval_s
            log.info("hotfolder_started", pending=len(self._units))
            while not self._stop.is_set():
                self._drain_events()
                self._check_units()
                if self._cut_cases:
                    self._release_cut_cases()
                self._take_back_held()
                if self._approved.is_set():
                    self._approved.clear()
                    self._enqueue_jobs(self._defer_cut_cases(self.recovery.claim_free()))
                now = self.clock.monotonic()
                if now >= next_rescan:
                    # (A gone node's case cut short, adopted here, waits for its rest too.)
                    self._enqueue_jobs(self._defer_cut_cases(self.recovery.maintenance()))
                    self._rescan()
                    next_rescan = now + self.hot.rescan_interval_s
                    pruning = now >= self._next_prune
                    if pruning:
                        self._prune_outputs()
                    # One event per periodic rescan, with the clock's time it ran at: what a
                    # test (or a reader of a debug log) waits on to know a rescan came.
                    log.debug("hotfolder_rescanned", monotonic=now, pruned=pruning)
                self.recovery.recheck_due()
                # Files a full disk kept in processing/: settled at the first look that
                # finds room, not at the next periodic sweep (up to a rescan interval later);
                # a build whose next look is not due costs nothing here.
                self.outcomes.settle_where_room()
                if once:
                    if self._quiet_waiting == 0:
                        for batch in self.batcher.flush():
                            self._submit(batch)
                        if self._idle():
                            if self.node is not None and not self.dry_run:
                                self.node.finish_once(self.outcomes, self._stop, self.notice)
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
        if self._unusable is not None:
            raise self._unusable
        return 0

    def output_folders(self) -> list[tuple[Path, Recipe]]:
        """The output folder of each recipe's batches, as it is named now (a root with a date
        in its template moves on each day), with the recipe."""
        started = local_time(self.clock)  # as the worker names a batch's root
        return [(output_root(recipe, self.hot.output_root, started, self.settings.output_root),
                 recipe) for recipe in self.recipes.values()]

    def _output_roots(self) -> list[Path]:
        """The output folders this daemon's batches write to (one per recipe at most) that
        are there now: a root with a date in its template is pruned on its own days."""
        return sorted({root for root, _ in self.output_folders() if root.is_dir()})

    def _prune_outputs(self) -> None:
        """``hotfolders.retention_days``: run's rule (:func:`prune_outputs`) over the output
        folders, keeping the .form of every build that still needs it (waiting for a printer
        or an approval, being sent)."""
        self._next_prune = self.clock.monotonic() + _PRUNE_EVERY_S
        days = self.hot.retention_days
        if days is None:
            return
        try:
            needed = self.store.list_builds(state=_FORM_NEEDED_STATES)
        except StoreError as exc:  # the database is away: the next day's pruning
            log.warning("retention_postponed", error=exc.message)
            return
        keep = [build.form_path for build in needed if build.form_path is not None]
        for root in self._output_roots():
            pruned = prune_outputs(root, days, now=self.clock.now().timestamp(), keep=keep)
            if pruned.files:
                self.notice(pruned.describe(root))

    def _idle(self) -> bool:
        with self._outstanding_lock:
            outstanding = self._outstanding
        unresolved = self.recovery.has_unresolved()
        return (
            self.batcher.pending_items == 0
            and outstanding == 0
            and self._returned.empty()
            and not unresolved
            and (self.dispatch is None or self.dispatch.waiting() == 0)
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
        if self.recovery.has_unresolved():
            timeout = min(timeout, DEFAULT_CHECK_INTERVAL_S * 4)
        room = self.outcomes.room_due_in()
        if room is not None:  # files waiting for room: their next look or try is due then
            timeout = min(timeout, room)
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
        # The inbox folders as the daemon starts: the ones it watches (:mod:`.presence`).
        self._presence.look()

    # -- finding drops -------------------------------------------------------------------------

    def _rescan(self) -> None:
        self._folder_monitor.check()  # a vanished inbox is logged loudly, and retried here
        away = self._inboxes_away()
        self.watcher.refresh()  # a folder whose event was lost is watched from now
        now = self.clock.monotonic()
        for root in self._roots:
            for path in scan(root):  # (an away inbox's units wait, not judged: _check_units)
                self._note(path, now)
        # Daily (and at the first scan), not at every rescan: keeping a notice is a store
        # write, and a name too long may stay in its inbox for weeks.
        daily = now >= self._next_notice_expiry
        self._forget_gone_notices(away, keep=daily)
        self._forget_gone_holds(away)
        if daily:
            self._next_notice_expiry = now + _PRUNE_EVERY_S
            self._forget_old_notices()

    def _inboxes_away(self) -> frozenset[Path]:
        """The inboxes away now (:mod:`.presence`: a share unmounted leaves an empty mount
        point, which is not an emptied inbox). One back is watched anew and listed at once:
        what came while it was away, or arrives now, is not left to the next rescan."""
        presence = self._presence.look()
        now = self.clock.monotonic()
        for root in self._roots:
            if root.path in presence.back:
                self.watcher.rewatch(root.path)
                for path in scan(root):
                    self._note(path, now)
        return presence.away

    def _forget_gone_notices(self, away: Collection[Path], *, keep: bool) -> None:
        """Remove the notices about names too long whose file is gone from its inbox (renamed,
        taken, deleted): the store keeps a row only while its file is there, and a new file
        under the old name is said again. With ``keep``, keep those whose file is there (their
        time moves on: :meth:`_forget_old_notices`). An inbox ``away`` (:mod:`.presence`: an
        unmounted share) keeps its notices for now: its files are away, not gone."""
        for inbox in self.hot.inboxes:
            if inbox.path in away:
                continue
            prefix = f"{_TOO_LONG_NOTICE} {inbox.path}{os.sep}"
            try:
                keys = self.store.notice_keys(prefix)
                gone = [key for key in keys
                        if not os.path.lexists(key[len(_TOO_LONG_NOTICE) + 1:])]
                if gone:
                    self.store.forget_notices(gone)
                if keep:
                    self.store.keep_notices(set(keys) - set(gone))
            except StoreError as exc:  # the next rescan tries again
                log.warning("notices_not_forgotten", inbox=str(inbox.path), error=exc.message)
                continue
            if gone:
                log.info("notices_forgotten", inbox=str(inbox.path),
                         paths=[key[len(_TOO_LONG_NOTICE) + 1:] for key in gone])

    def _forget_gone_holds(self, away: Collection[Path] = frozenset()) -> None:
        """Forget the case holds (:mod:`.caseholds`) of folders gone from their inbox: a
        folder deleted and made again under its name may get the old inode back, and would
        be held by them. An inbox away (:mod:`.presence`: an unmounted share's empty mount
        point) keeps them: its folders are away, not gone; so does a folder found gone by one
        scan only (a farm node that does not see yet a folder another node held:
        :func:`forget_holds_of_gone`)."""
        for inbox in self.hot.inboxes:
            once = self._holds_gone_once.pop(inbox.path, frozenset())
            if inbox.path in away:
                continue
            try:
                there = _case_folders(inbox, self._routes[inbox.path])
            except OSError as exc:  # a held folder renamed in it could not be found
                log.warning("case_holds_kept", root=str(inbox.path), error=str(exc),
                            reason="its case folders could not be listed: none is known gone")
                continue
            try:
                gone, self._holds_gone_once[inbox.path] = forget_holds_of_gone(
                    self.store, inbox.path, functools.partial(_inode_of, inbox=inbox.path),
                    once, there=there)
            except StoreError as exc:  # the next scan tries again
                log.warning("case_holds_not_forgotten", root=str(inbox.path),
                            error=exc.message)
                continue
            for root, parts in gone.items():
                log.info("case_holds_forgotten", root=str(root),
                         parts=[name_text(part.name) for part in parts],
                         reason="its folder is not in the inbox any more (removed, or "
                         "another folder made under its name): one made there is a new case")

    def _forget_old_notices(self) -> None:
        """Remove the notices about names too long that no daemon met for
        :data:`NOTICE_RETENTION_S`, whatever inbox they name (module constant's reasons)."""
        try:
            old = self.store.forget_old_notices(f"{_TOO_LONG_NOTICE} ",
                                                older_than_s=NOTICE_RETENTION_S)
        except StoreError as exc:  # tomorrow's pass tries again
            log.warning("notices_not_forgotten", inbox=None, error=exc.message)
            return
        if old:
            log.info("notices_expired", days=NOTICE_RETENTION_S / 86_400.0,
                     paths=[key[len(_TOO_LONG_NOTICE) + 1:] for key in old])

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
        away = self._inboxes_away()
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
            if unit.inbox.path in away:
                # Its files look gone, and are not: judged, it would be forgotten with what
                # was said of it and its tries (a drop being given up taken when back).
                unit.next_check = now + interval
                continue
            try:
                outcome = self._judge(unit)
            except OSError as exc:
                log.warning("drop_check_failed", root=str(root), error=str(exc))
                unit.next_check = now + interval
                continue
            if outcome is None:
                del self._units[root]
                # Gone (or left): a drop of that name later is a new one, with its own tries.
                self._move_failures.pop(root, None)
                self._giving_up.pop(root, None)
                self._take_failed_said.discard(root)
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
        unheld: list[Path] = []

        def hold(part: Path) -> bool:
            held = self._hold_case_by(unit, part)
            if not held:
                unheld.append(part)
            return held

        set_aside = set_aside_unstorable(root, unit.inbox.path, unit.inbox.folder("failed"),
                                         before=hold)
        if unheld:
            return True  # its hold not recorded: neither set aside nor taken yet
        if set_aside is SetAside.MOVED:
            log.warning("drop_set_aside", root=str(root).encode("utf-8", "replace").decode(),
                        reason="name is not valid UTF-8")
        if set_aside is not SetAside.KEPT:
            return None  # LEFT: files.py said why; the next rescan finds it again
        overlong = overlong_name(root)
        if overlong is not None:
            # Never taken: its notes could not be written. Left as it is, and said once per
            # file (a rescan finds it again every rescan_interval_s, cron's next run too), on
            # the console too; said again once the file changed.
            if self._first_time_too_long(overlong):
                size = len(os.fsencode(overlong.name))
                log.warning("drop_name_too_long", root=str(root), name=overlong.name,
                            bytes=size, limit=MAX_NAME_BYTES, hint=_TOO_LONG_HINT)
                self.notice(f"{overlong} stays in the inbox: its name is {size} bytes, over "
                            f"the {MAX_NAME_BYTES} a name may have; {_TOO_LONG_HINT}")
            return None
        refusal = drop_refusal(root, unit.inbox.path, follow_symlinks=self.hot.follow_symlinks)
        if refusal is not None:  # never opened: a link out of the inbox, a pipe, a device
            return Drop(unit.inbox, root, unit.recipe, refusal.is_case, others=refusal.paths,
                        rejection=refusal.reason, rejection_hint=refusal.todo)
        if root.is_dir():
            return self._judge_folder(unit, tracker)
        check = tracker.check(root)
        if check.verdict in (Verdict.GONE, Verdict.IGNORE):
            self._said_incomplete.discard(root)
            return None
        kind = kind_of(root)
        if kind in (FileKind.STL, FileKind.THREEMF, FileKind.OBJ):
            sidecars = [root.with_suffix(s) for s in SIDECAR_SUFFIX_ORDER]
            side_checks = [tracker.check(s) for s in sidecars if s.is_file()]
            if check.takeable and all(c.verdict is Verdict.COMPLETE for c in side_checks):
                for path in [root, *sidecars]:
                    tracker.forget(path)
                self._said_incomplete.discard(root)
                return Drop(unit.inbox, root, unit.recipe, False, models=(root,),
                            reasons={root: check.reason})
            if check.verdict is Verdict.WAIT and not check.settling:
                self._say_incomplete(unit, root, tracker.quiet_for(root), check.size)
            return check.settling or any(c.settling for c in side_checks)
        if kind is FileKind.SIDECAR and not root.name.endswith(REPORT_SUFFIX):
            # A sidecar alone: its model may still come; after the incomplete timeout it goes
            # to failed/ so it does not sit in the inbox for ever. A name of our job reports
            # is waited for by no model: a report of ours put back beside its file is taken,
            # and so removed, at once; anyone else's is taken once complete and refused.
            if tracker.quiet_for(root) >= unit.inbox.incomplete_timeout_s:
                tracker.forget(root)
                return Drop(unit.inbox, root, unit.recipe, False, others=(root,))
            return False
        if check.verdict is Verdict.COMPLETE:
            tracker.forget(root)
            return Drop(unit.inbox, root, unit.recipe, False, others=(root,))
        return True

    def _say_incomplete(self, unit: _Unit, root: Path, quiet_s: float, size: int) -> None:
        """Say once that the model file ``root`` waits to be complete, once it stopped
        changing for the inbox's quiet period (a copy going on is not worth a line).

        A file cut short (a copy that died) was said nowhere for ``incomplete_timeout_s``
        (600 s by default), then failed: a technician watching saw nothing for ten minutes
        (session 41). Info, not a warning: most such files are still arriving."""
        if quiet_s < unit.inbox.quiet_period_s or root in self._said_incomplete:
            return
        self._said_incomplete.add(root)
        timeout = unit.inbox.incomplete_timeout_s
        log.info("drop_waiting_incomplete", path=str(root), size=size, quiet_s=quiet_s,
                 taken_after_s=timeout)
        self.notice(f"{root} is not complete yet ({size} bytes, unchanged for "
                    f"{unit.inbox.quiet_period_s:g} s): waiting for the rest of it; if it "
                    f"stays so for {timeout:g} s, it is taken as it is and fails (copy it "
                    "again whole)")

    def _hold_case_by(self, unit: _Unit, part: Path) -> bool:
        """Record in the job store, before ``part`` (badly named) is set aside from case
        folder ``unit.root``, that it holds the case (:mod:`.caseholds`): whoever takes the
        case, this daemon after a restart or another node of a farm, holds it. False (the
        part stays for a later look) when the store is away, or the folder cannot be told
        apart from a later one of its name."""
        case = CaseFolder.of(unit.root, unit.inbox.path)
        if case is None:
            return False
        try:
            remember_hold(self.store, unit.root, case.inode, part)
        except StoreError as exc:
            log.warning("case_hold_not_recorded", root=str(unit.root), error=exc.message,
                        hint="the part is set aside once the job store answers again")
            return False
        return True

    def _first_time_too_long(self, overlong: Path) -> bool:
        """True when the too long name ``overlong`` was not said yet as it is now (the store
        remembers what was said, across starts: a ``watch --once`` from cron repeats nothing)."""
        st = overlong.lstat()
        try:
            return self.store.note_notice(f"{_TOO_LONG_NOTICE} {overlong}",
                                          f"{st.st_size} {st.st_mtime_ns}")
        except StoreError as exc:
            log.warning("notice_not_recorded", path=str(overlong), error=str(exc))
            return True  # said again rather than never

    def _judge_folder(self, unit: _Unit, tracker: StabilityTracker) -> Drop | bool | None:
        root = unit.root
        shape = empty_tree_shape(root)
        if shape is not None:
            return self._judge_empty(unit, shape)
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

    def _judge_empty(
        self, unit: _Unit, shape: tuple[tuple[str, int, int], ...]
    ) -> bool | None:
        """A folder with nothing but folders in it. One this hot folder emptied is removed
        once nothing has changed in it for the quiet period: a crash came between taking a
        case's last file and removing the folder, or every part of the case was set aside
        (its case is in failed/ whole: its holds end with it, and files put there later are
        a new case). Any other waits for files, as a folder the user just made does. The
        store is asked only after the quiet period: a folder being copied in has its next
        file by then (the rest of a case whose first part was set aside is held with it)."""
        root = unit.root
        now = self.clock.monotonic()
        if shape != unit.signature:
            unit.signature, unit.signature_at, unit.emptied = shape, now, None
        if now - unit.signature_at < unit.inbox.quiet_period_s:
            return True
        if unit.emptied is None:
            try:
                unit.emptied = self.intake.emptied_case(root) or ""
            except StoreError as exc:  # the database is away: ask again on the next look
                log.warning("drop_check_failed", root=str(root), error=exc.message)
                return True
        if not unit.emptied:
            return False
        forgotten = self.intake.remove_case_folder(root)
        if forgotten:
            log.info("case_holds_forgotten", root=str(root),
                     parts=[name_text(part.name) for part in forgotten], reason=unit.emptied)
        if root.exists():
            unit.emptied = ""  # something came (or it is not ours to remove): leave it
            return False
        log.info("case_folder_removed", root=str(root), reason=unit.emptied)
        return None

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
            if self.node is not None:
                claim = self.node.claim_drop(drop)
                if claim is None:
                    self._giving_up.pop(drop.root, None)  # that node's now, whatever is left
                    return  # another node's claim came first: that node takes it
                drop = replace(drop, claim=claim)
            pending = self._giving_up.get(drop.root)
            if pending is not None:
                self._give_up(drop, *pending)
                return
            # No settle lock: taking settles only the jobs it creates itself, and files in
            # the inbox (under the drop's claim) whose jobs a crash, or a gone farm node,
            # left decided (Intake._finish_decided).
            # The drop's files an earlier take left in processing/: a crash cut a case's
            # take short (:meth:`recover`), or a move failed (:meth:`_take_cut_short`).
            # They are the case's as much as its rest: held with it when it is held.
            cut = self._cut_cases.get(drop.root, [])
            result = self.intake.take(drop, earlier=cut)
            self._cut_cases.pop(drop.root, None)
            if result.held:
                cut = []  # failed with the case (or in a build already: said below)
                if drop.is_case:  # (a loose file is said with the files refused at the take)
                    self._say_held(drop, result.bad)
            if result.printing:
                self._say_printing(drop, result.printing)
            # A file sent to failed/ as it was taken (no model, a duplicate skipped) is
            # named on the console as the planner's rejections are: a person watching it
            # otherwise saw nothing happen to what they dropped.
            if result.said:
                self.reporter.models_rejected(result.said)
            if result.cut_short is not None:
                self._take_cut_short(drop, [*cut, *result.taken], result)
                return
        except (StoreError, OSError) as exc:
            outage = isinstance(exc, StoreError) and exc.outage
            if outage and drop.root in self._take_failed_said:
                # Looked at again every second while the store stays away (a full disk may
                # last hours): an error each time, for each drop, buries everything else.
                log.debug("take_failed_again", root=str(drop.root), error=str(exc))
            else:
                log.error("take_failed", root=str(drop.root), error=str(exc))
                if outage:
                    self._take_failed_said.add(drop.root)
            self._look_again(drop)
            return
        self._take_failed_said.discard(drop.root)
        self._move_failures.pop(drop.root, None)
        jobs = (*cut, *result.taken)
        if jobs:
            first = jobs[0]
            self.batcher.add(
                BatchItem(
                    key=f"job:{first.id}",
                    recipe=first.recipe,
                    job_ids=tuple(j.id for j in jobs),
                    arrived=arrived,
                    priority=max([result.priority, *(j.priority for j in cut)]),
                    case_id=result.case_id or first.case_id,
                )
            )
        if result.taken:
            log.info("drop_taken", root=str(drop.root), jobs=len(result.taken),
                     rejected=len(result.rejected), recipe=result.taken[0].recipe,
                     case_id=result.case_id, priority=result.priority, resumed=len(cut))

    def _say_held(self, drop: Drop, bad: Sequence[str]) -> None:
        """One line for a case held as it was taken: which, why, where its files are now and
        what helps (each file's note says the same of it)."""
        where = drop.inbox.folder("failed") / drop.root.relative_to(drop.inbox.path)
        self.notice(f"{drop.root} is held ({why_held(bad)}): its files are in {where}, each "
                    f"with a note saying why; {HELD_HINT}: move the case folder back into "
                    "the inbox")

    def _say_printing(self, drop: Drop, printing: tuple[Job, ...]) -> None:
        """Say plainly that files of a case held now went into a build before its rest was
        found bad (a race of two passes): that build is not stopped here."""
        keys = ", ".join(job.job_key for job in printing)
        self.notice(f"{drop.root} is held (a file of it cannot be prepared), but {keys} "
                    "went into a build before: that build goes on unless it is cancelled "
                    f"({self.intake.jobs} cancel <key>, before its print is sent; after, "
                    "stop the print at the printer)")

    def _look_again(self, drop: Drop) -> None:
        """``drop`` is looked at again a little later (its quiet period again too)."""
        self._units.setdefault(
            drop.root,
            _Unit(drop.inbox, drop.root, drop.recipe, self.clock.monotonic(),
                  next_check=self.clock.monotonic() + _LOOK_AGAIN_S),
        )

    def _take_cut_short(self, drop: Drop, taken: list[Job], result: TakeResult) -> None:
        """A take stopped by a file's move into processing/ failing (``result.cut_short``):
        the files ``taken`` before it wait in processing/ with its job, in no batch, and the
        move is tried again on a later look (the drop's rest is taken then, and all go on
        as one batch item: a case is never split). After :attr:`take_move_tries` looks the
        drop goes to failed/ whole, with a note saying what failed and what helps."""
        cut = result.cut_short
        assert cut is not None
        waiting = list({j.id: j for j in (*taken, cut)}.values())
        tries = self._move_failures.get(drop.root, 0) + 1
        path = place_of(cut)
        source = str(path.previous) if path is not None and path.previous else str(drop.root)
        if tries < self.take_move_tries:
            self._move_failures[drop.root] = tries
            self._cut_cases[drop.root] = waiting
            log.info("take_postponed", root=str(drop.root), path=source,
                        error=result.error, tries=tries, of=self.take_move_tries,
                        jobs=[j.job_key for j in waiting],
                        hint="looked at again shortly; its files wait in processing/ and "
                        "in the inbox until the move succeeds")
            self._look_again(drop)
            return
        self._move_failures.pop(drop.root, None)
        what = "case folder" if drop.is_case else "file"
        reason = (f"{Path(source).name} could not be moved into processing/ ({result.error}); "
                  f"tried on {tries} looks")
        todo = (f"let the account the hot folder runs as write to the inbox and its "
                f"processing/ folder, and free space on that disk if it is full; then move "
                f"the {what} from failed/ back into the inbox")
        log.error("take_given_up", root=str(drop.root), path=source, error=result.error,
                  tries=tries, jobs=[j.job_key for j in waiting], hint=todo)
        self.notice(f"{drop.root} goes to failed/: {reason}")
        self._give_up(drop, waiting, reason, todo)

    def _give_up(self, drop: Drop, waiting: list[Job], reason: str, todo: str) -> None:
        """``drop`` to failed/ whole (:meth:`Intake.give_up_take`). A give-up cut short (the
        folder that refused the move into processing/ mostly refuses the moves out to failed/
        too) is done again on the next look: taken instead, its rest would go on alone."""
        self._giving_up[drop.root] = (waiting, reason, todo)
        given = self.intake.give_up_take(drop, waiting, reason, todo)
        del self._giving_up[drop.root]
        log.info("drop_given_up", root=str(drop.root), rejected=len(given.rejected))

    def _submit(self, batch: Batch) -> None:
        with self._outstanding_lock:
            self._outstanding += 1
        self._work.put(batch)

    def _give_back(self, items: tuple[BatchItem, ...], held: bool) -> None:
        """Batch items for the loop, from any thread (``held``: wait for min_fill)."""
        self._returned.put((items, held))
        self._wake.set()

    def _claim_approved(self) -> None:
        # On the loop's thread, which claims builds at every maintenance pass too.
        self._approved.set()
        self._wake.set()

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
        """Resume from the store after a crash or a stop (:mod:`.recovery`)."""
        self._enqueue_jobs(self._defer_cut_cases(self.recovery.recover()))
        self._take_back_held()

    def _defer_cut_cases(self, jobs: Iterable[Job]) -> list[Job]:
        """``jobs`` but those of a case whose take a crash cut short: they wait in processing/
        until the rest of their case folder is taken, and go on with it as one batch item
        (:meth:`_take`), so the case is never split between batches. On a farm, also those a
        gone node cut short and this node adopted (maintenance): their claims are this node's
        now, so the rest of the folder is too (``NodeRole.claim_drop``)."""
        rest: list[Job] = []
        deferred: set[Path] = set()
        for job in jobs:
            root = self.intake.case_left_in_inbox(job)
            if root is None:
                rest.append(job)
            else:
                self._cut_cases.setdefault(root, []).append(job)
                deferred.add(root)
        for root in sorted(deferred):
            log.info("case_take_resumes", root=str(root),
                     jobs=[j.job_key for j in self._cut_cases[root]])
        return rest

    def _release_cut_cases(self) -> None:
        """A cut case's jobs go on alone when the rest of their folder will never be taken:
        the folder is no longer watched and holds no file (removed, or emptied by a user)."""
        away = self._inboxes_away()
        for root, waiting in list(self._cut_cases.items()):
            if root in self._units or self.intake.case_left_in_inbox(waiting[0]) is not None:
                continue
            inbox = self._inbox_of(root)
            if inbox is not None and inbox.path in away:
                continue  # its rest is away with its inbox, not gone: it waits for it
            del self._cut_cases[root]
            log.info("case_take_not_resumed", root=str(root),
                     jobs=[j.job_key for j in waiting])
            self._enqueue_jobs(waiting)

    def _enqueue_jobs(self, jobs: Iterable[Job]) -> None:
        """Batch jobs again (loop thread only)."""
        for item in self.recovery.items_for(jobs):
            self.batcher.add(item)

    # -- the worker ----------------------------------------------------------------------------

    def _worker_main(self) -> None:
        while True:
            batch = self._work.get()
            if batch is None:
                return
            try:
                if not self._stop.is_set():
                    # The first batch imports what batches need; a stop that came meanwhile
                    # leaves it unstarted as well.
                    import_batch_modules()
                if not self._stop.is_set():
                    # (Not started when stopping: its jobs wait in processing/ and are
                    # batched again on the next start.)
                    self.worker.run_batch(batch)
                    if not self.worker.rested(batch):
                        self.batches_run += 1
            except BatchModulesError as exc:
                # Raised before the batch touched a job: its files wait in processing/ for a
                # start that can import them. The daemon stops and says why (``run`` raises
                # it), as a start that imported them refused: failed as a batch's bug, every
                # file dropped until someone looked would have gone to failed/.
                log.error("batch_modules_unusable", recipe=batch.recipe, error=exc.message)
                self._unusable = exc
                self.stop()
            except StoreError as exc:
                # The store went away before the batch made its builds: its jobs wait in
                # processing/ and are batched again (not only after a restart). Items it
                # held for min_fill went back already: given twice, they could be batched
                # twice.
                log.warning("batch_postponed", recipe=batch.recipe, error=str(exc))
                self._give_back(self.worker.owned_items(batch), False)
            except Exception as exc:  # a bug: the batch's files fail, the daemon goes on
                try:
                    self.worker.crashed(batch, exc)
                except Exception as again:  # this thread must live on for the next batch
                    log.error("batch_crash_not_settled", recipe=batch.recipe,
                              error=f"{type(again).__name__}: {again}")
            finally:
                with self._outstanding_lock:
                    self._outstanding -= 1
                self._wake.set()

    # -- stopping -----------------------------------------------------------------------------

    def _dispatch_pool(self) -> AbstractContextManager[ServerSource | None]:
        # A pass renews a refused pool no more often than the daemon rescans its inboxes
        # (a batch renews at once): prints left waiting need no restart, and a long refusal
        # is not a loop of server starts (hotfolder/sharedpool.py).
        return self.worker.pool.lent(renew_after_s=self.hot.rescan_interval_s)

    def _shutdown(self) -> None:
        self.watcher.stop()
        if self.dispatch is not None:
            self.dispatch.close()  # a send under way finishes; waiting builds stay waiting
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
            cancelled = self.worker.cancel_all()
            if cancelled:
                log.warning("hotfolder_stop_deadline", deadline_s=self.hot.stop_deadline_s,
                            batches=cancelled)
            for worker in self._workers:
                worker.join()
        self.worker.close_pool()
        self.followup.stop()


def _case_folders(inbox: InboxSettings, routes: Collection[str]) -> dict[int, Path]:
    """The folders that may be cases in ``inbox`` now, by inode: at its top, and at the top
    of its route folders (``routes``); :class:`OSError` when one of those cannot be listed.
    (The route and outcome folders themselves are among them: no hold names them.)"""
    folders: dict[int, Path] = {}
    for base in [inbox.path, *(inbox.path / name for name in routes)]:
        try:
            entries = list(os.scandir(base))
        except FileNotFoundError:
            continue  # (a route folder removed: no case is there)
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                folders[entry.stat(follow_symlinks=False).st_ino] = Path(entry.path)
    return folders


def _inode_of(root: Path, *, inbox: Path) -> int | None:
    """The inode of folder ``root`` below ``inbox`` now (None: gone, or no folder), as a
    case folder is told apart from a later one of its name. Any other error (a share away
    for a moment, a permission) raises :class:`OSError`: the folder is not known gone."""
    case = CaseFolder.of(root, inbox, strict=True)
    return None if case is None else case.inode

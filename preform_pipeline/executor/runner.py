"""Running planned builds on the server pool: a thread per running build, retries by error class.

One build, one attempt::

    lease a server ──► create scene, import models    (or: load the last checkpoint .form)
                       │
                       ▼ for each step of the graph (TopologicalSorter get_ready / done):
                       run it ── after an expensive step (auto_support, hollow): save a
                       │         checkpoint .form and record it in the build's journal
                       ▼
                     release the server (healthy) ──► outcome

How an attempt can end, and what follows:

==============================================  ===============================================
what happened                                   what the runner does
==============================================  ===============================================
TransientApiError, ServerProcessError           report the failure to the pool (it checks and
(server died, connection reset, 5xx, timeout)   restarts the server), lease *another* server,
                                                resume from the last checkpoint or from
                                                scratch; at most ``max_build_attempts``
PermanentApiError, template / label problems,   the build fails with the reason; the others go
validation findings, estimate limits            on
layout "does not fit" after the recipe's        ``on_overflow: split``: take the overflow out of
layout attempts                                 the scene, go on with the rest, queue a build of
                                                the overflow only (executor/overflow.py);
                                                ``fail``, or a single model: the build fails
print request without an answer                 ``print_unconfirmed``: never resent (the job may
                                                exist); see docs/running.md
Ctrl-C (:meth:`Runner.cancel`)                  no new step starts; running steps get
                                                ``cancel_grace_s`` to end, then the pool closes
==============================================  ===============================================

Operations on one scene are never sent in parallel: a build's steps run one at a time in
its own thread, on the one server its lease holds. Builds run in parallel, as many as the pool
has servers, in an order that keeps them busy to the end: longest first, or a split of the
estimated work into one queue per server when that ends earlier; a roomy final build of the
last rounds takes carried models (:func:`run_order`).

Every log event of a build carries ``run_id``, ``build``, ``server`` and ``step``
(structlog contextvars).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Final, Protocol

from structlog.contextvars import bind_contextvars, bound_contextvars, reset_contextvars

from preform_pipeline.api import (
    DEFAULT_REQUEST_TIMEOUT_S,
    AutoOrientOptions,
    AutoSupportOptions,
    PollPolicy,
    PreFormClient,
    code_hint,
)
from preform_pipeline.api.operations import DEFAULT_POLL_POLICY
from preform_pipeline.api.paths import same_machine_path
from preform_pipeline.atomicfile import write_text_atomically
from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.diskspace import disk_is_full
from preform_pipeline.errors import (
    WRITE_HINTS,
    ConfigError,
    FileWriteError,
    LeaseTimeoutError,
    PermanentApiError,
    PipelineError,
    PoolExhaustedError,
    ServerProcessError,
    ServerTimeoutError,
    StoreError,
    TransientApiError,
    refused_by_a_full_disk,
)
from preform_pipeline.executor.attempt_reason import retryable_reason
from preform_pipeline.executor.defaults import DEFAULT_MAX_BUILD_ATTEMPTS, DEFAULT_STEP_TIMEOUT_S
from preform_pipeline.executor.hooks import PrintHooks
from preform_pipeline.executor.overflow import (
    FinalIntake,
    carry_build,
    carry_name,
    join_waiting,
    shed_overflow,
)
from preform_pipeline.executor.planned_layout import place_as_planned
from preform_pipeline.executor.progress import NullReporter, Reporter
from preform_pipeline.executor.runids import new_run_id
from preform_pipeline.executor.runroot import run_values
from preform_pipeline.executor.staging import remove_empty_staging, sweep_staging
from preform_pipeline.executor.state import (
    AttemptRecord,
    BuildOutcome,
    BuildReportWriter,
    BuildStatus,
    RunResult,
)
from preform_pipeline.executor.steps import (
    DEFAULT_MIN_LAYOUT_SPACING_MM,
    BuildFacts,
    StepContext,
    StepFailure,
    import_names,
    import_some,
    preflight,
    run_step,
    shared_values,
)
from preform_pipeline.logging import declare_context_keys, get_logger
from preform_pipeline.outputfolders import CHECKPOINT_FOLDER
from preform_pipeline.plan.balance import build_work  # the planner balances by it too
from preform_pipeline.plan.builds import (
    MM3_PER_ML,
    BuildPlan,
    ModelInfo,
    Plan,
    plain_pass_fits,
    units_label,
)
from preform_pipeline.plan.graph import StepGraph, compile_graph
from preform_pipeline.plan.schedule import (
    balanced_queues,
    dispatch_ends,
    dispatch_makespan,
    expected_makespan,
    start_sequence,
)
from preform_pipeline.printing.holder import SendHolder
from preform_pipeline.recipes.model import Recipe, Step
from preform_pipeline.recipes.templates import sanitize_component
from preform_pipeline.servers.pathmap import PathMapper
from preform_pipeline.servers.pool import PoolServer, ServerState, ServerStatus
from preform_pipeline.store.keys import DEFAULT_MAX_JOB_NAME_LENGTH, KEY_LENGTH, KEY_PREFIX
from preform_pipeline.wording import counted

__all__ = [
    "DEFAULT_CANCEL_GRACE_S",
    "DEFAULT_CHECKPOINT_KINDS",
    "DEFAULT_MAX_BUILD_ATTEMPTS",
    "DEFAULT_STEP_TIMEOUT_S",
    "BuildJournal",
    "SplitCallback",
    "LeaseLike",
    "RunOptions",
    "Runner",
    "ServerSource",
    "build_values",
    "build_work",
    "default_job_name",
    "new_run_id",
    "run_order",
    "run_plan",
    "split_build",
]

#: Steps whose result is worth a checkpoint .form: redoing them on another server costs more
#: than saving the scene.
DEFAULT_CHECKPOINT_KINDS: Final[frozenset[str]] = frozenset({"auto_support", "hollow"})
#: After Ctrl-C, how long running steps may take to finish before the servers are stopped.
DEFAULT_CANCEL_GRACE_S: Final = 10.0
#: The requests that make the server write a file into the output folder.
_SAVING_OPERATIONS: Final = frozenset({"saveFormFile", "saveScreenshot", "saveFpsFile"})
#: The server's codes for a path it was sent that it did not find or could not use.
_PATH_CODES: Final = frozenset({"FILE_NOT_FOUND", "INVALID_PATH"})
# After a cancel (and on Windows, while builds run) the main thread wakes this often, so a
# second Ctrl-C or the grace period's end is seen at once on every platform.
_WAIT_SLICE_S: Final = 0.2
# While builds run, the main thread wakes when one ends or the run is cancelled. A wait on
# POSIX is interrupted by Ctrl-C; on Windows it is not, so there it also wakes every slice.
_RUN_WAKE_S: Final = _WAIT_SLICE_S if os.name == "nt" else 5.0
# Scenes of finished builds are deleted to free the server's memory; that must not hold a
# build up when the server is slow.
_CLEANUP_TIMEOUT_S: Final = 10.0

log = get_logger(__name__)


#: ``on_split(build, (first_half, second_half))``.
SplitCallback = Callable[[BuildPlan, tuple[BuildPlan, BuildPlan]], None]


class LeaseLike(Protocol):
    """What the runner needs of a lease (:class:`preform_pipeline.servers.Lease`)."""

    server: PoolServer

    def release(self, healthy: bool = True, builds: int = 1) -> None: ...

    def report_failure(self, exc: BaseException | None = None) -> None: ...


#: The states of a server that came up (a pool's servers are STARTING until it is started).
_UP: Final = frozenset({ServerState.IDLE, ServerState.LEASED, ServerState.CHECKING,
                        ServerState.RECYCLING})


def _servers_up(status: tuple[ServerStatus, ...]) -> int:
    return sum(1 for server in status if server.state in _UP)


class ServerSource(Protocol):
    """What the runner needs of a pool (:class:`preform_pipeline.servers.ServerPool`)."""

    @property
    def simulated(self) -> bool: ...

    def lease(self, timeout: float | None = None) -> LeaseLike: ...

    def status(self) -> tuple[ServerStatus, ...]: ...

    def wait_for(
        self, predicate: Callable[[tuple[ServerStatus, ...]], bool], timeout: float
    ) -> tuple[ServerStatus, ...]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RunOptions:
    """How to run: where outputs go, retries, deadlines, checkpoints.

    ``output_root`` must exist or be creatable; outputs, checkpoints and build reports go
    below it. ``started_at`` fixes the run's ``date`` and ``time`` template fields.
    """

    output_root: Path
    run_id: str = field(default_factory=new_run_id)
    dry_run: bool = False
    max_build_attempts: int = DEFAULT_MAX_BUILD_ATTEMPTS
    step_timeout_s: float = DEFAULT_STEP_TIMEOUT_S
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    lease_timeout_s: float | None = None
    checkpoint_kinds: frozenset[str] = DEFAULT_CHECKPOINT_KINDS
    keep_checkpoints: bool = False
    cancel_grace_s: float = DEFAULT_CANCEL_GRACE_S
    min_layout_spacing_mm: float = DEFAULT_MIN_LAYOUT_SPACING_MM
    poll_policy: PollPolicy = DEFAULT_POLL_POLICY
    started_at: datetime = field(default_factory=datetime.now)
    #: Writes each build's own report as soon as it finishes (``report.write_build_report``,
    #: handed in by the commands); None: no build reports.
    build_report: BuildReportWriter | None = None
    #: Job keys in job names, ``printer: auto``, job-store writes around the send, and the
    #: shared verification poller after the run (``preform_pipeline.verify``); None: none.
    print_tracking: PrintHooks | None = None
    #: Called with a build and its two halves when it is split, before the halves run
    #: (a job store moves the build's jobs onto two new builds); None: nothing to tell.
    on_split: SplitCallback | None = None
    #: ``on_model_dropped(build, path, reason)``: a model left its build with its case
    #: (``on_model_failure: drop_case``), called on the build's thread as it happens.
    on_model_dropped: Callable[[str, Path, str], None] | None = None
    #: Where the server imports a model's file from (a node's local copy of a file on a
    #: shared drive: docs/multi-node.md); None: the model's own path.
    import_from: Callable[[Path], Path] | None = None
    #: ``stop_reason(build)``: why the build must stop now (its node lost the build's lease),
    #: asked before each of its steps; None: go on. The build then ends ``cancelled`` with
    #: that reason and its server goes back to the pool; no further request is sent for it.
    stop_reason: Callable[[str], str | None] | None = None

    def __post_init__(self) -> None:
        if self.max_build_attempts < 1:
            raise ValueError(f"max_build_attempts must be >= 1, got {self.max_build_attempts}")
        if self.step_timeout_s <= 0:
            raise ValueError(f"step_timeout_s must be > 0, got {self.step_timeout_s}")

    @property
    def checkpoint_root(self) -> Path:
        return self.output_root / CHECKPOINT_FOLDER / self.run_id


def build_values(run: Mapping[str, object], build: BuildPlan) -> dict[str, object]:
    return {**run, "build": build.name, "job": default_job_name(build)}


def _case_ids(build: BuildPlan) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m.case_id for m in build.models if m.case_id))


def default_job_name(build: BuildPlan) -> str:
    """The build's case ids (``case-7+case-9``), else its name: build names already start
    with the recipe's name (``{recipe}-002``), so the default never repeats it."""
    cases = _case_ids(build)
    return _fit_cases(cases, JOB_NAME_ROOM) if cases else build.name


#: Room for the name in front of the job key (``<name> PP-XXXXXXXXXX``) within the job-name
#: length the pipeline keeps to (the Local API's ``job_name`` has no documented maximum; the
#: printers and the Dashboard show names in narrow places).
JOB_NAME_ROOM: Final = DEFAULT_MAX_JOB_NAME_LENGTH - len(KEY_PREFIX) - KEY_LENGTH - 1


def _fit_cases(cases: Sequence[str], room: int) -> str:
    """``C-1+C-2+C-3``, or as many whole case ids as fit before ``+N more``: a name cut
    in the middle of a case id would name a case that does not exist."""
    joined = "+".join(cases)
    if len(joined) <= room:
        return joined
    kept: list[str] = []
    for index, case in enumerate(cases):
        tail = f"+{len(cases) - index - 1} more" if index < len(cases) - 1 else ""
        candidate = "+".join([*kept, case])
        if len(candidate) + len(tail) > room:
            break
        kept.append(case)
    if not kept:
        # One case id longer than the room: embed_key shortens it (never the key).
        kept.append(cases[0])
    rest = len(cases) - len(kept)
    return "+".join(kept) + (f"+{rest} more" if rest else "")


#: Encodes one string or None as ``json.dumps`` does (ASCII, in C).
_JSON_VALUE: Final = json.JSONEncoder()


def _indented_json(data: Mapping[str, Any]) -> str:
    """``json.dumps(data, indent=2, default=str)``, the same text, for a journal's flat
    object of texts, None and lists of texts, without the pure-Python encoder an indent
    takes (about 80 calls per journal); anything else goes to ``json.dumps``."""
    encode = _JSON_VALUE.encode
    members = []
    for key, value in data.items():
        if value is None or type(value) is str:
            text = encode(value)
        elif type(value) is list and all(type(item) is str for item in value):
            text = (
                "[\n" + ",\n".join("    " + encode(item) for item in value) + "\n  ]"
                if value else "[]"
            )
        else:
            return json.dumps(data, indent=2, default=str)
        members.append(f"  {encode(key)}: {text}")
    return "{\n" + ",\n".join(members) + "\n}" if members else "{}"


# The keys a build's threads bind for their events (the build's own thread, the servers'
# attempts, each step), created before any of those threads can race to create one.
declare_context_keys("run_id", "build", "server", "step")


class _Bound:
    """``bound_contextvars`` for a step's events, undone by the tokens the binding gave
    back: the same context inside and after, with a third of the calls (no generator, no
    copy of the whole context to save what was bound before; each step runs it)."""

    __slots__ = ("_tokens", "_values")

    def __init__(self, **values: Any) -> None:
        self._values = values
        self._tokens: Mapping[str, Any] = {}

    def __enter__(self) -> None:
        self._tokens = bind_contextvars(**self._values)

    def __exit__(self, *_exc: object) -> None:
        reset_contextvars(**self._tokens)


class BuildJournal:
    """A build's checkpoints: the last saved .form and the steps it holds.

    Written atomically (temp file, then rename). The print's state is not kept here: the job
    store owns it (:mod:`preform_pipeline.printing`), so there is one record of a send.
    """

    def __init__(self, folder: Path, build: str, run_id: str) -> None:
        self.folder = folder
        self.path = folder / "journal.json"
        self._lock = threading.Lock()
        #: The folder was made (by this journal): a build's checkpoints and journal make it
        #: once, not once per file.
        self._folder_made = False
        self._data: dict[str, Any] = {
            "build": build,
            "run_id": run_id,
            "checkpoint": None,
            "checkpoint_step": None,
            "completed": [],
            "model_names": [],
        }

    @property
    def checkpoint(self) -> Path | None:
        value = self._data["checkpoint"]
        return Path(value) if value else None

    @property
    def checkpoint_step(self) -> str | None:
        step: str | None = self._data["checkpoint_step"]
        return step

    @property
    def completed(self) -> frozenset[str]:
        return frozenset(self._data["completed"])

    def _make_folder(self) -> None:
        if not self._folder_made:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._folder_made = True

    def checkpoint_path(self, step: str) -> Path:
        """Where the checkpoint after ``step`` is saved, in the journal's folder (made now
        when missing). Absolute when the folder is: the runner gives each build a folder
        below the run's checkpoint folder, resolved once per run; the build's folder and
        its files are new and made by the run, so there is no link left to resolve."""
        self._make_folder()
        return self.folder / f"after-{sanitize_component(step)}.form"

    def _write(self) -> None:
        self._make_folder()
        # The folder was made above, once per journal: no mkdir per write.
        write_text_atomically(
            self.path, _indented_json(self._data), newline=None, make_folder=False
        )

    def checkpoint_saved(
        self, path: Path, step: str, completed: Iterable[str], names: Sequence[str]
    ) -> None:
        with self._lock:
            old = self.checkpoint
            self._data.update(
                checkpoint=str(path),
                checkpoint_step=step,
                completed=sorted(completed),
                model_names=list(names),
            )
            self._write()
        if old is not None and old != path:
            old.unlink(missing_ok=True)

    def discard_checkpoints(self) -> None:
        """Remove the build's checkpoint files (the journal itself stays)."""
        # Every *.form in the folder, as a glob would find them (a save that failed may have
        # left one the journal does not name), read in one scan of the folder.
        try:
            with os.scandir(self.folder) as entries:
                names = [e.name for e in entries if os.path.normcase(e.name).endswith(".form")]
        except FileNotFoundError:
            return
        for name in names:
            (self.folder / name).unlink(missing_ok=True)

    def discard(self) -> None:
        """Remove the build's checkpoint files, its journal and its folder: the build
        succeeded, and nothing reads a journal once its build's outcome is recorded (a later
        run or ``jobs retry`` starts from the models and the job store, not from here). A
        file of someone else's in the folder keeps it."""
        self.discard_checkpoints()
        self.path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.folder.rmdir()


def split_build(recipe: Recipe, build: BuildPlan, first_index: int) -> tuple[BuildPlan, BuildPlan]:
    """Halve a build that does not fit: two new builds (``NAME.1``, ``NAME.2``) from scratch.

    With ``keep_cases_together`` the cut goes at the case boundary nearest the middle, so a
    case stays in one build where it can; otherwise, or when the build is a single case, it
    goes in the middle.
    """
    models = build.models
    if len(models) < 2:
        raise ValueError("a build of one model cannot be split")
    middle = len(models) / 2
    cuts = [
        i for i in range(1, len(models))
        if models[i].case_id is None or models[i].case_id != models[i - 1].case_id
    ] if recipe.batching.keep_cases_together else []
    cut = min(cuts, key=lambda i: (abs(i - middle), i)) if cuts else len(models) // 2
    halves = (models[:cut], models[cut:])
    ratio = build.estimated_volume_ml / max(
        sum(m.volume_mm3 for m in models), 1e-9
    )
    children = []
    for number, part in enumerate(halves, start=1):
        children.append(
            BuildPlan(
                index=first_index + number - 1,
                name=f"{build.name}.{number}",
                models=part,
                placements=(),
                fill_ratio=0.0,
                estimated_volume_ml=sum(m.volume_mm3 for m in part) * ratio,
                graph=compile_graph(recipe, part),
            )
        )
    return children[0], children[1]


#: The final build waits at most this long for other builds to pass their layouts: a build
#: later than that (a hung operation, a much longer build) carries to a build of its own.
_INTAKE_WAIT_S: Final = 120.0
#: On several servers the final build is chosen among builds at most this much longer than
#: the average: a long build started late would hold the run up.
_FINAL_WORK_LIMIT: Final = 1.25


def run_order(builds: Sequence[BuildPlan], servers: int) -> tuple[list[BuildPlan], str | None]:
    """The order builds start in, and the final build (executor/overflow.py).

    Each build goes to whichever server frees first, in this order. Longest first (by
    :func:`build_work`) keeps the last round short when there are many rounds; with few builds
    per server it can leave one build running alone on top of a full round. So on several
    servers the estimated work is also split into one queue per server with the least
    largest total (plan/schedule.py), the queues woven into a start order by replaying
    the dispatch with the estimates, and that order is taken when its replay ends earlier
    than longest first's.

    The final build takes the models other builds carry on, so it is roomy and lays out
    after the others: on one server the roomiest build, moved to the end; on several, the
    roomiest of the builds that longest first starts after the first round (all of them
    when there is only one round), not much longer than average. After its layout it waits
    for the builds still before theirs, so it must start with the last round: started
    earlier, it would hold its server idle while whole rounds ran on the others (13 builds
    on 4 servers: a build of the second round waited for the third and fourth); started with
    the last round, it waits only for builds that started about when it did. In longest
    first it starts first of the last round. In a split into queues it runs last on the
    server that ends last, and the split is taken only if, by the estimates, it ends last
    of all: the builds it waits for are the others' last ones, and they lay out before it.
    """
    order = sorted(builds, key=lambda b: (-build_work(b), b.index))
    if len(order) < 2:
        return order, None

    if servers <= 1:
        final = _roomiest(order)
        order.remove(final)
        return [*order, final], final.name
    if len(order) <= servers:  # one round: every build starts at once
        return order, _roomiest(_not_long(order)).name
    final = _roomiest(_not_long(order[servers:], order))
    last_round = len(order) - ((len(order) - 1) % servers + 1)
    order.remove(final)
    order.insert(last_round, final)
    balanced, balanced_final = _balanced_order(order, servers, final)
    works = [build_work(b) for b in order]
    at = {id(b): i for i, b in enumerate(order)}
    sequences = ([at[id(b)] for b in balanced], list(range(len(order))))
    planned, longest = (dispatch_makespan([works[i] for i in s], servers) for s in sequences)
    if (
        planned < longest * (1 - _ORDER_GAIN)
        and _ends_last(balanced, balanced_final, servers)
        and expected_makespan(works, sequences[0], servers)
        < expected_makespan(works, sequences[1], servers)
    ):
        return balanced, balanced_final.name
    return order, final.name


def _roomiest(candidates: Sequence[BuildPlan]) -> BuildPlan:
    """The build with the most room for carried models (least filled; first on a tie)."""
    return min(candidates, key=lambda b: (b.fill_ratio, b.index))


def _ends_last(order: Sequence[BuildPlan], final: BuildPlan, servers: int) -> bool:
    """Whether, by the estimates, ``final`` ends last of all (so no build starts after it,
    and the others have passed their layouts when it reaches its own)."""
    runs = dispatch_ends([build_work(b) for b in order], servers)
    end = runs[order.index(final)][2]
    return all(other <= end * (1 + _ORDER_GAIN) for _, _, other in runs)


#: The split into queues replaces longest first only when its replay ends earlier by more
#: than this share (an equal estimate keeps the order whose last round is short), and ends
#: earlier on average when the builds take a little more or less than estimated.
_ORDER_GAIN: Final = 1e-6


def _balanced_order(
    builds: Sequence[BuildPlan], servers: int, final: BuildPlan
) -> tuple[list[BuildPlan], BuildPlan]:
    """A start order running a least-makespan split of the work, and its final build, which
    runs last of all.

    The final build goes to the end of the queue that ends last, so it lays out after the
    others (its wait for their layouts held its server, and the run, up to a build's layout
    and save otherwise). ``final`` (longest first's choice, the roomiest of the later rounds)
    keeps the role when it is in that queue, or when it can change places with a build of
    that queue at least as long as itself, so the queue grows no longer. Otherwise the
    roomiest build already in the longest queue takes the role, if it has at least the
    average build's room: a longer last queue would hold the whole run up for room that a
    run with nothing carried never uses (13 arches builds on 4 servers: one build's time in
    twenty). A fuller one could leave carried models a build of their own, a whole print
    more; then ``final`` changes places with the build that lengthens the queue least.
    """
    works = [build_work(b) for b in builds]
    queues = balanced_queues(works, servers)
    at = builds.index(final)
    home = next(q for q in queues if at in q)
    loads = [sum(works[i] for i in q) for q in queues]
    span = max(loads)
    here = sum(works[i] for i in home)
    if here < span * (1 - _ORDER_GAIN):
        longest = queues[loads.index(span)]
        others = max(
            (load for q, load in zip(queues, loads, strict=True)
             if q is not home and q is not longest),
            default=0.0,
        )
        swaps = [
            i for i in longest
            if span - works[i] + works[at] >= max(here - works[at] + works[i], others)
        ]
        other = min(swaps, key=lambda i: (works[at] - works[i], abs(works[i] - works[at]), i),
                    default=None)
        ending = [q for q, load in zip(queues, loads, strict=True)
                  if load >= span * (1 - _ORDER_GAIN)]
        there = _roomiest(_not_long([builds[i] for q in ending for i in q], builds))
        roomy = there.fill_ratio <= sum(b.fill_ratio for b in builds) / len(builds)
        if roomy and (other is None or works[other] < works[at] * (1 - _ORDER_GAIN)):
            final = there
            at = builds.index(final)
            home = next(q for q in ending if at in q)
        elif other is not None:
            home[home.index(at)] = other
            longest[longest.index(other)] = at
            home.sort(key=lambda i: (-works[i], i))
            home = longest
    home.remove(at)
    home.append(at)
    return [builds[i] for i in start_sequence(works, queues)], final


def _not_long(
    candidates: Sequence[BuildPlan], among: Sequence[BuildPlan] | None = None
) -> Sequence[BuildPlan]:
    """The candidates not much longer than the average build (all of them if none is)."""
    everyone = candidates if among is None else among
    limit = _FINAL_WORK_LIMIT * sum(build_work(b) for b in everyone) / len(everyone)
    return [b for b in candidates if build_work(b) <= limit] or candidates


class _ServerClients:
    """One pair of Local API clients per server, shared by the builds it runs in turn.

    A new pair per build attempt cost a transport (and its connection) and a ``GET /``
    version check every build; a server is leased to one build at a time, so its pair is
    used by one thread at a time. Keyed by the server's name, generation and URL: a
    restarted server gets new clients. ``drop`` forgets a server's pair after a failure.
    The server's send holder (its process and start time, read with psutil) is kept the same
    way: it is the same for every build the server process runs.
    """

    def __init__(self, options: RunOptions) -> None:
        self._options = options
        self._lock = threading.Lock()
        self._pairs: dict[tuple[str, int, str], tuple[PreFormClient, PreFormClient]] = {}
        self._holders: dict[tuple[str, int, str, int | None], SendHolder | None] = {}

    def get(self, server: PoolServer) -> tuple[PreFormClient, PreFormClient]:
        key = (server.name, server.generation, server.url)
        with self._lock:
            pair = self._pairs.get(key)
            if pair is None:
                pair = self._pairs[key] = self._make(server)
            return pair

    def holder(self, server: PoolServer) -> SendHolder | None:
        key = (server.name, server.generation, server.url, server.pid)
        with self._lock:
            if key not in self._holders:
                self._holders[key] = SendHolder.of_server(
                    server, self._options.request_timeout_s
                )
            return self._holders[key]

    def _make(self, server: PoolServer) -> tuple[PreFormClient, PreFormClient]:
        mapper = server.path_mapper
        common: dict[str, Any] = {
            # A server on this machine is sent each path as it is (made absolute): what the
            # identity map gives, without building and printing a Path per model and save.
            "path_mapper": same_machine_path if mapper.identity else mapper.to_server,
            "timeout": self._options.request_timeout_s,
            "operation_timeout": self._options.step_timeout_s,
            "verify_imports": False,
        }
        client = PreFormClient(server.url, poll_policy=self._options.poll_policy, **common)
        quick = PreFormClient(
            server.url,
            async_operations=False,
            # The first call of ``client`` (create_scene) checks the server's API version.
            check_version_on_first_use=False,
            **common,
        )
        return client, quick

    def drop(self, server: PoolServer) -> None:
        with self._lock:
            pair = self._pairs.pop((server.name, server.generation, server.url), None)
            self._holders.pop((server.name, server.generation, server.url, server.pid), None)
        for client in pair or ():
            client.close()

    def close(self) -> None:
        with self._lock:
            pairs, self._pairs = list(self._pairs.values()), {}
        for pair in pairs:
            for client in pair:
                client.close()


class _Cancelled(Exception):
    """The run was cancelled; the build stops where it is."""


class _Stopped(Exception):
    """This build (alone) must stop where it is: ``RunOptions.stop_reason`` said why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Attempt:
    number: int
    server: str
    started: float
    resumed_from: str | None = None


def _fits_with(
    fits: Callable[[Sequence[ModelInfo]], bool],
    held: Sequence[ModelInfo],
    more: Sequence[ModelInfo],
) -> bool:
    """``fits`` asked of a build's models ``held`` and the carried models ``more``."""
    return fits((*held, *more))


class _BuildWorker:
    """Runs one build to its outcome, across attempts; lives in one worker thread."""

    def __init__(self, runner: Runner, build: BuildPlan, parent: str | None) -> None:
        self.runner = runner
        self.build = build
        self.parent = parent
        self.options = runner.options
        self.recipe = runner.plan.recipe
        self.facts = BuildFacts()
        self.journal = BuildJournal(
            runner.resolved_checkpoint_root / sanitize_component(build.name),
            build.name,
            self.options.run_id,
        )
        tracking = self.options.print_tracking
        self.print_hooks = tracking.for_build(build) if tracking is not None else None
        self.attempts: list[AttemptRecord] = []
        self.steps_done: list[str] = []
        self.failed_servers: set[str] = set()
        self.values = shared_values(build, build_values(runner.values, build))
        self.steps_by_id: dict[str, Step] = {s.id: s for s in self.recipe.steps}
        self.started = self.runner.clock.monotonic()
        self.server: str | None = None
        self._current_step: str | None = None
        #: The build has passed its layout once (a retry does not hold the final build up).
        self.laid_out = False
        #: Where the models its layout carried on went: (build name, a new build?).
        self.carried_to: tuple[str, bool] | None = None

    # -- outcome --------------------------------------------------------------------------------

    def _outcome(
        self,
        status: BuildStatus,
        reason: str | None = None,
        *,
        children: Sequence[str] = (),
        full_disk: Path | None = None,
    ) -> BuildOutcome:
        facts = self.facts
        return BuildOutcome(
            name=self.build.name,
            index=self.build.index,
            status=status,
            models=tuple(m.path.name for m in self.build.models),
            source_files=tuple(str(m.path) for m in self.build.models),
            units=self.build.units,
            reason=reason,
            material_ml=facts.material_ml,
            print_time_s=facts.print_time_s,
            sls=dict(facts.sls) if facts.sls is not None else None,
            job_id=facts.job_id,
            server=self.server,
            attempts=tuple(self.attempts),
            steps_done=tuple(self.steps_done),
            outputs=tuple(facts.outputs),
            warnings=tuple(facts.warnings),
            parent=self.parent,
            children=tuple(children),
            layout_calls=facts.layout_calls,
            estimated_volume_ml=self.build.estimated_volume_ml,
            verify=facts.verify,
            held=facts.held,
            waiting=facts.waiting,
            dry_run=self.options.dry_run,
            duration_s=self.runner.clock.monotonic() - self.started,
            printer=facts.printer,
            job_name=facts.job_name,
            job_key=facts.job_key,
            case_ids=_case_ids(self.build),
            dropped=tuple(facts.dropped.items()),
            full_disk=full_disk,
        )

    # -- the attempt loop -----------------------------------------------------------------------

    def run(self) -> BuildOutcome:
        with bound_contextvars(run_id=self.options.run_id, build=self.build.name):
            log.info(
                "build_started",
                models=len(self.build.models),
                steps=len(self.build.graph),
                parent=self.parent,
            )
            outcome = self._run()
            log.info(
                "build_finished",
                status=outcome.status.value,
                reason=outcome.reason,
                attempts=len(outcome.attempts),
                server=outcome.server,
                job_id=outcome.job_id,
                duration_s=round(outcome.duration_s, 3),
            )
            return outcome

    def _run(self) -> BuildOutcome:
        try:
            preflight(self.recipe, self.build, self.values)
        except PipelineError as exc:
            log.warning("build_failed", reason=str(exc), error_type=type(exc).__name__)
            return self._outcome(BuildStatus.FAILED, str(exc))
        last_error = ""
        for number in range(1, self.options.max_build_attempts + 1):
            if self.runner.cancelled:
                return self._outcome(BuildStatus.CANCELLED, "the run was interrupted")
            try:
                lease = self.runner.lease_avoiding(self.failed_servers)
            except PoolExhaustedError as exc:
                return self._outcome(BuildStatus.FAILED, f"no server left: {exc.message}")
            except LeaseTimeoutError as exc:
                return self._outcome(BuildStatus.FAILED, str(exc))
            except (_Cancelled, PipelineError):
                # A closing pool refuses leases: only happens when the run is being stopped.
                return self._outcome(BuildStatus.CANCELLED, "the run was interrupted")
            result = self._attempt(lease, number)
            if isinstance(result, BuildOutcome):
                return result
            last_error = result
            if number < self.options.max_build_attempts and not self.runner.cancelled:
                where = self.runner.retry_destination(self.failed_servers)
                log.info("build_retrying", build=self.build.name, attempt=number + 1,
                         where=where, reason=last_error)
                self.runner.reporter.build_retry(
                    self.build.name, attempt=number + 1, reason=last_error, where=where
                )
        if self.runner.cancelled:
            return self._outcome(BuildStatus.CANCELLED, "the run was interrupted")
        return self._outcome(
            BuildStatus.FAILED,
            f"gave up after {counted(self.options.max_build_attempts, 'attempt')}; "
            f"last: {last_error}",
        )

    def _attempt(self, lease: LeaseLike, number: int) -> BuildOutcome | str:
        """One attempt on one server: an outcome, or the error text of a retryable failure."""
        server = lease.server
        self.server = server.name
        attempt = _Attempt(number, server.name, self.runner.clock.monotonic())
        client, quick = self.runner.clients.get(server)
        holder = self.runner.clients.holder(server)
        ctx = self._context(client, quick, holder)
        intake = self.runner.intake
        intake.holding(self.build.name, not self.laid_out)
        with bound_contextvars(server=server.name):
            try:
                self._steps(ctx, attempt)
                self._cleanup(ctx)
            except (TransientApiError, ServerProcessError) as exc:
                lease.report_failure(exc)
                self.runner.clients.drop(server)
                self.failed_servers.add(server.name)
                self._poll_after_timeout(exc)
                text = retryable_reason(exc, server.name)
                self._record(attempt, exc)
                if self.runner.cancelled:
                    return self._outcome(BuildStatus.CANCELLED, "the run was interrupted")
                log.warning(
                    "build_attempt_failed",
                    attempt=number,
                    error=str(exc),
                    error_type=type(exc).__name__,
                    checkpoint=self.journal.checkpoint_step,
                )
                return text
            except StepFailure as exc:
                if exc.kind != "print_unconfirmed":
                    self._cleanup(ctx)
                return self._step_failure(lease, attempt, exc)
            except _Cancelled:
                lease.release(healthy=True, builds=0)
                self._record(attempt, None)
                return self._outcome(BuildStatus.CANCELLED, "the run was interrupted")
            except _Stopped as stopped:
                # No request more for this build: its scene is left to the server's cache.
                lease.release(healthy=True, builds=0)
                self._record(attempt, None)
                log.warning("build_stopped", reason=stopped.reason, step=self._current_step)
                return self._outcome(BuildStatus.CANCELLED, stopped.reason)
            except (PermanentApiError, PipelineError, ValueError) as exc:
                # The input is wrong (4xx, FAILED operation, a template, a label that cannot
                # fit, an option the contract forbids): no server can do better.
                self._cleanup(ctx)
                lease.release(healthy=True)
                self._record(attempt, exc)
                full = self._full_disk(exc)
                reason = self._reason(exc, server.path_mapper)
                if full is not None and not isinstance(exc, FileWriteError):
                    # The server's own words (a bare errno, or nothing of the kind from
                    # PreFormServer) say nothing of what helps; an OSError's hint does.
                    reason = f"{reason} (the output folder {full}: {WRITE_HINTS[errno.ENOSPC]})"
                log.warning("build_failed", reason=reason, error_type=type(exc).__name__)
                return self._outcome(BuildStatus.FAILED, reason, full_disk=full)
            except Exception as exc:
                lease.release(healthy=True)
                self._record(attempt, exc)
                log.exception("build_internal_error")
                return self._outcome(
                    BuildStatus.FAILED, f"internal error: {type(exc).__name__}: {exc}"
                )
            finally:
                intake.holding(self.build.name, False)
            lease.release(healthy=True)
            self._record(attempt, None)
            self._discard_journal()
            return self._outcome(BuildStatus.SUCCEEDED)

    def _discard_journal(self) -> None:
        """The build's checkpoints and journal go unless kept: it succeeded, or it was split
        (its halves start from scratch, so nothing reads its checkpoint of all the models)."""
        if not self.options.keep_checkpoints:
            self.journal.discard()

    def _poll_after_timeout(self, exc: BaseException) -> None:
        """A step sent as one blocking request timed out: when its deadline is longer than
        the request limit (the server ends any request after 10 minutes), the limit may
        have ended it, not the deadline; the retry polls that step kind instead."""
        step = self._current_step
        if (
            isinstance(exc, ServerTimeoutError)
            and step is not None
            and self.options.step_timeout_s > self.options.request_timeout_s
        ):
            self.facts.polled.add(self.build.graph[step].kind)

    @staticmethod
    def _reason(exc: BaseException, mapper: PathMapper) -> str:
        if isinstance(exc, PermanentApiError):
            what = exc.request.named if exc.request and exc.request.named else "request"
            # Its own words, else ours without the request (``what`` names it).
            detail = exc.server_message or exc.said
            code = f"{exc.code}: " if exc.code else ""
            user_fix = code_hint(exc.code, "")
            mapped = mapper.check_hint(detail) if exc.code in _PATH_CODES else ""
            if mapped:
                # The server did not find, or could not use, a path this machine's file had
                # as the path map turned it (session 44: a remote's map to the wrong folder
                # said only "no file at 'Z:\\models\\...'", a file that is there).
                user_fix = mapped
            if user_fix:
                # The server's own words speak of its API ("POST /login/ first"); what a
                # user does (give the pool a login, which it sends after every start) is
                # said after them.
                detail += f" ({user_fix})"
            return f"{what} refused: {code}{detail}"
        if isinstance(exc, ConfigError):
            return f"path mapping: {exc}"
        return str(exc)

    def _full_disk(self, exc: BaseException) -> Path | None:
        """The folder whose disk was full when ``exc`` ended the build, or None. Ours: a
        write of this process refused with ENOSPC or EDQUOT (by the error's errno). The
        server's: a file it was to save into the output folder refused while that folder's
        disk is full (its answer carries no errno to tell by, and the failed job's note
        would send a person to fix the model or the recipe)."""
        if isinstance(exc, FileWriteError):
            return exc.path.parent if refused_by_a_full_disk(exc) else None
        request = exc.request if isinstance(exc, PermanentApiError) else None
        if request is None or request.named not in _SAVING_OPERATIONS:
            return None
        root = self.runner.options.output_root
        return root if disk_is_full(root) else None

    def _record(self, attempt: _Attempt, exc: BaseException | None) -> None:
        self.attempts.append(
            AttemptRecord(
                number=attempt.number,
                server=attempt.server,
                busy_s=self.runner.clock.monotonic() - attempt.started,
                error=str(exc) if exc is not None else None,
                error_type=type(exc).__name__ if exc is not None else None,
                resumed_from=attempt.resumed_from,
                store_outage=isinstance(exc, StoreError) and exc.outage,
            )
        )

    def _step_failure(self, lease: LeaseLike, attempt: _Attempt, exc: StepFailure) -> BuildOutcome:
        if exc.kind == "print_unconfirmed":
            # No answer to the print: the server may be dead; have the pool look at it.
            lease.report_failure(exc.cause)
            self._record(attempt, exc)
            log.error("print_unconfirmed", reason=exc.reason)
            return self._outcome(BuildStatus.PRINT_UNCONFIRMED, exc.reason)
        lease.release(healthy=True)
        self._record(attempt, exc)
        if exc.kind == "overflow":
            return self._overflow(exc)
        log.warning("build_failed", reason=exc.reason)
        return self._outcome(BuildStatus.FAILED, exc.reason)

    def _overflow(self, exc: StepFailure) -> BuildOutcome:
        kept = self._without_dropped()
        models = kept.models
        if len(models) == 1:
            reason = f"{models[0].path.name} does not fit an empty platform: {exc.reason}"
            log.warning("model_does_not_fit", reason=reason)
            return self._outcome(BuildStatus.FAILED, reason)
        if self.recipe.batching.on_overflow != "split":
            return self._outcome(
                BuildStatus.FAILED, f"{exc.reason} (the recipe says on_overflow: fail)"
            )
        if self.runner.cancelled:
            return self._outcome(BuildStatus.CANCELLED, "the run was interrupted")
        children = self.runner.split(kept)
        self._discard_journal()
        log.info(
            "build_split",
            reason=exc.reason,
            children=[c.name for c in children],
            models=[len(c.models) for c in children],
        )
        return self._outcome(
            BuildStatus.SPLIT, exc.reason, children=[c.name for c in children]
        )

    # -- inside one attempt ---------------------------------------------------------------------

    def _without_dropped(self) -> BuildPlan:
        """The build less the models dropped with their case: they left it for good (their
        files are failed), so a half made from it must not import them again."""
        dropped = self.facts.dropped
        build = self.build
        if not dropped:
            return build
        models = tuple(m for m in build.models if str(m.path) not in dropped)
        whole = sum(m.volume_mm3 for m in build.models)
        share = sum(m.volume_mm3 for m in models) / whole if whole > 0 else 1.0
        return replace(build, models=models, placements=(),
                       estimated_volume_ml=build.estimated_volume_ml * share,
                       graph=compile_graph(self.recipe, models))

    def _context(
        self, client: PreFormClient, quick: PreFormClient, holder: SendHolder | None
    ) -> StepContext:
        build = self.build

        def progress(fraction: float) -> None:
            step = self._current_step
            if step is not None:
                self.runner.reporter.step_progress(build.name, step, fraction)

        self._current_step = None
        return StepContext(
            client=client,
            recipe=self.recipe,
            build=build,
            values={**self.values, **self.facts.scene_fields},
            output_root=self.options.output_root,
            resolved_output_root=self.runner.resolved_output_root,
            staging_kept=True,
            facts=self.facts,
            dry_run=self.options.dry_run,
            step_timeout_s=self.options.step_timeout_s,
            min_layout_spacing_mm=self.options.min_layout_spacing_mm,
            progress=progress,
            quick_client=quick,
            print_hooks=self.print_hooks,
            send_holder=holder,
            shed=shed_overflow,
            place_planned=place_as_planned,
            on_drop=self._on_drop,
            import_from=self.options.import_from,
        )

    def _on_drop(self, model: ModelInfo, reason: str) -> None:
        if self.options.on_model_dropped is not None:
            self.options.on_model_dropped(self.build.name, model.path, reason)

    def _resume(self, ctx: StepContext, attempt: _Attempt) -> frozenset[str]:
        """Load the last checkpoint into a new scene; the steps it already holds."""
        checkpoint = self.journal.checkpoint
        if checkpoint is None or not checkpoint.is_file():
            return frozenset()
        try:
            scene = ctx.client.load_form(checkpoint, deadline=ctx.deadline())
        except PermanentApiError as exc:
            # This server cannot read the checkpoint (another machine's path, another
            # PreForm version): starting over is slower but still right.
            log.warning("checkpoint_unusable", checkpoint=str(checkpoint), error=str(exc))
            return frozenset()
        assert scene.id is not None
        ctx.scene_id = scene.id
        by_name = {m.name: m.id for m in scene.models if m.name}
        # Models dropped with their case are not in the checkpoint, and need not be.
        names_of = {
            i: n for i, n in enumerate(import_names(self.build))
            if str(self.build.models[i].path) not in self.facts.dropped
        }
        missing = [n for n in names_of.values() if n not in by_name]
        if missing:
            # A checkpoint that does not hold the build's models is useless: start over.
            log.warning("checkpoint_unusable", checkpoint=str(checkpoint), missing=missing[:5])
            return frozenset()
        ctx.model_ids.clear()
        ctx.model_ids.update({i: by_name[name] for i, name in names_of.items()})
        attempt.resumed_from = self.journal.checkpoint_step
        log.info(
            "build_resumed",
            checkpoint=str(checkpoint),
            after_step=self.journal.checkpoint_step,
            attempt=attempt.number,
        )
        return self.journal.completed

    def _steps(self, ctx: StepContext, attempt: _Attempt) -> None:
        graph = self.build.graph
        completed = self._resume(ctx, attempt) if attempt.number > 1 else frozenset()
        total = len(graph)
        self.runner.reporter.build_started(
            self.build.name, server=attempt.server, attempt=attempt.number, steps=total
        )
        done_here: list[str] = []
        sorter = graph.sorter()
        index = 0
        while sorter.is_active():
            # Ready steps run one after another: one operation at a time on a scene.
            for node_id in sorter.get_ready():
                index += 1
                node = graph[node_id]
                skip = node_id in completed or (
                    node.kind == "print" and self.facts.printed
                )
                if not skip:
                    if self.runner.cancelled:
                        raise _Cancelled()
                    self._check_stop(node_id)
                    final = node.kind == "auto_layout" and self._final_open()
                    early = node.kind == "auto_layout" and not final and not self.laid_out
                    intake = self.runner.intake
                    if final:
                        self._take_in(ctx, graph, intake.arrived())
                    elif early:
                        self._take_in(ctx, graph, intake.arrived_early(self.build.name,
                                                                       last=False))
                    self._run_node(ctx, node_id, index, total)
                    late = (self._await_carries() if final
                            else intake.arrived_early(self.build.name, last=True) if early
                            else ())
                    if self._take_in(ctx, graph, late):
                        # Something was carried in during that layout: lay out again with it.
                        self._run_node(ctx, node_id, index, total)
                    if node.kind == "auto_layout":
                        self._after_layout()
                    done_here.append(node_id)
                    # Print and verify are done only once the print was sent: a dry run
                    # skips them, and a build handed to dispatch (waiting for a printer or
                    # for an approval) has not printed yet, whatever its report says later.
                    skipped = node.kind in ("print", "verify") and not self.facts.printed
                    if node_id not in self.steps_done and not skipped:
                        self.steps_done.append(node_id)
                    if node.kind in self.options.checkpoint_kinds and index < total:
                        self._checkpoint(ctx, node_id, completed | set(done_here))
                sorter.done(node_id)

    def _check_stop(self, node_id: str) -> None:
        """Raise :class:`_Stopped` when the build must stop before ``node_id`` (the print
        step included: a build whose node lost it is never sent from here)."""
        ask = self.options.stop_reason
        reason = ask(self.build.name) if ask is not None else None
        if reason is not None:
            self._current_step = node_id
            raise _Stopped(reason)

    def _final_open(self) -> bool:
        """Whether this is the final build before its first layout (it takes carries)."""
        return self.build.name == self.runner.intake.final and not self.laid_out

    def _await_carries(self) -> list[ModelInfo]:
        """The final build, after its first layout: wait until no other build is before its
        layout, close the intake and return what was carried in meanwhile."""
        waiting_since = self.runner.clock.monotonic()
        late = self.runner.intake.take(min(self.options.step_timeout_s, _INTAKE_WAIT_S),
                                       lambda: self.runner.cancelled)
        # Its server is leased but idle meanwhile: benchmarks take this off the busy time.
        log.info("final_build_waited", waited_s=round(self.runner.clock.monotonic()
                                                      - waiting_since, 3), taken=len(late))
        return late

    def _take_in(self, ctx: StepContext, graph: StepGraph, late: Sequence[ModelInfo]) -> bool:
        """Before its layout (and the final build after its first one too): import, orient
        and support the models other builds carried into it (executor/overflow.py), in its
        own scene; whether any came."""
        if not late:
            return False
        start = len(self.build.models)
        models = (*self.build.models, *late)
        self.build = replace(
            self.build,
            models=models,
            estimated_volume_ml=self.build.estimated_volume_ml
            + sum(m.volume_mm3 for m in late) / MM3_PER_ML,
            graph=compile_graph(self.recipe, models),
        )
        ctx.build = self.build
        self.runner.update_build(self.build)
        log.info("overflow_taken_in", models=[m.path.name for m in late])
        indices = list(range(start, len(models)))
        import_some(ctx, graph["import_models"].options, indices)
        chosen = [ctx.model_ids[i] for i in indices if i in ctx.model_ids]
        for node in graph:
            if node.kind == "auto_layout":
                break
            step = self.steps_by_id.get(node.id)
            options = {**(step.api_options() if step else node.options), "models": chosen}
            if node.kind == "auto_orient":
                ctx.waiting(node.kind).auto_orient(ctx.scene, AutoOrientOptions(**options),
                                                   deadline=ctx.deadline())
            elif node.kind == "auto_support":
                ctx.waiting(node.kind).auto_support(ctx.scene, AutoSupportOptions(**options),
                                                    deadline=ctx.deadline())
        return True

    def _after_layout(self) -> None:
        """The layout is done: its carried models go on now (a waiting build, the final
        build, or a new one), and the final build need not wait for this one any more."""
        self.laid_out = True
        if self.facts.carried and self.carried_to is None:
            self.carried_to = self.runner.place_carry(self.build, self.facts.carried)
        self.runner.intake.holding(self.build.name, False)

    def _run_node(self, ctx: StepContext, node_id: str, index: int, total: int) -> None:
        node = self.build.graph[node_id]
        self._current_step = node_id
        self.runner.reporter.step_started(self.build.name, node_id, index=index, total=total)
        started = self.runner.clock.monotonic()
        with _Bound(step=node_id):
            log.info("step_started", kind=node.kind, index=index, of=total)
            try:
                run_step(ctx, node, self.steps_by_id.get(node_id))
            except BaseException as exc:
                log.info(
                    "step_failed",
                    kind=node.kind,
                    error=str(exc),
                    error_type=type(exc).__name__,
                    elapsed_s=round(self.runner.clock.monotonic() - started, 3),
                )
                raise
            elapsed_s = round(self.runner.clock.monotonic() - started, 3)
            log.info("step_finished", kind=node.kind, elapsed_s=elapsed_s)
        self._current_step = None

    def _checkpoint(
        self, ctx: StepContext, node_id: str, completed: set[str] | frozenset[str]
    ) -> None:
        path = self.journal.checkpoint_path(node_id)
        with _Bound(step=node_id):
            ctx.quick.save_form(ctx.scene, path, timeout=ctx.step_timeout_s,
                                deadline=ctx.deadline())
            self.journal.checkpoint_saved(path, node_id, completed, import_names(self.build))
            log.info("checkpoint_saved", checkpoint=str(path), after_step=node_id)

    def _cleanup(self, ctx: StepContext) -> None:
        """Delete the finished scene: a server keeps only so many in memory."""
        if ctx.scene_id is None:
            return
        try:
            ctx.client.delete_scene(ctx.scene_id, timeout=min(_CLEANUP_TIMEOUT_S,
                                                              self.options.step_timeout_s))
        except PipelineError as exc:
            log.debug("scene_cleanup_failed", scene_id=ctx.scene_id, error=str(exc))


class Runner:
    """Runs a plan's builds on a pool; see the module docstring.

    ``run()`` may be called once. ``cancel()`` (from a signal handler or another thread) stops
    it: no new build or step starts; running steps get ``options.cancel_grace_s`` to end; then
    the pool is closed so no server outlives the run, and ``run()`` returns a result whose
    unfinished builds are ``cancelled``.
    """

    def __init__(
        self,
        plan: Plan,
        pool: ServerSource,
        *,
        options: RunOptions,
        reporter: Reporter | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.plan = plan
        self.pool = pool
        self.options = options
        #: Every duration, lease and grace period of the run is read from this clock.
        self.clock = clock
        self.reporter: Reporter = reporter if reporter is not None else NullReporter()
        self.values = run_values(plan.recipe, options.started_at)
        #: The output root, resolved once: each output path resolves only its parts below it.
        self.resolved_output_root = options.output_root.resolve()
        #: The run's checkpoint folder, resolved once: each build's checkpoint path is
        #: joined below it instead of resolving every component again (runner CPU per build).
        self.resolved_checkpoint_root = options.checkpoint_root.resolve()
        self._cancel = threading.Event()
        #: Set when a build ends or the run is cancelled: the main thread's wake-up.
        self._changed = threading.Event()
        self._lock = threading.Lock()
        self._futures: set[Future[BuildOutcome]] = set()
        self._outcomes: dict[str, BuildOutcome] = {}
        self._builds: dict[str, tuple[BuildPlan, str | None]] = {}
        self._started: set[str] = set()
        self._next_index = max((b.index for b in plan.builds), default=0) + 1
        self._executor: ThreadPoolExecutor | None = None
        self._wound_down = False
        #: Set as the run's result is read: a build that ends after it (a step stuck on a
        #: server the pool could not stop, when a cancelled run returned) is not the run's.
        self._books_closed = False
        self.clients = _ServerClients(options)
        # A server retired as the pool started (refused: it answered as none we can use)
        # takes no build: counted, "1 build on 2 servers" said one more than there was.
        self._usable = sum(1 for s in pool.status() if s.state is not ServerState.RETIRED)
        self._server_count = max(1, self._usable)  # threads and order: one at least
        self._order, final = run_order(plan.builds, self._server_count)
        #: The final build takes carried models until the others have laid out.
        self.intake = FinalIntake(final if FinalIntake.qualifies(plan.recipe) else None,
                                  clock=clock)

    # -- control --------------------------------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        if not self._cancel.is_set():
            log.warning("run_cancel_requested", run_id=self.options.run_id)
        self._cancel.set()
        self._changed.set()

    # -- leases ---------------------------------------------------------------------------------

    def retry_destination(self, avoid: set[str]) -> str:
        """Where a retry goes, in words: ``on another server`` while one is in service, else
        back ``on server-1`` (``after restart`` while it is coming back; a remote, which the
        pool never restarts, ``when it answers again``)."""
        statuses = self.pool.status()
        if any(s.name not in avoid and s.state is not ServerState.RETIRED for s in statuses):
            return "on another server"
        back = [s for s in statuses if s.state is not ServerState.RETIRED]
        if not back:
            return "when a server is back"
        coming = (ServerState.RESTARTING, ServerState.STARTING, ServerState.CHECKING)
        if back[0].state not in coming:
            return f"on {back[0].name}"
        return f"on {back[0].name} " + ("when it answers again" if back[0].remote
                                         else "after restart")

    def lease_avoiding(self, avoid: set[str]) -> LeaseLike:
        """A lease, preferably on a server not in ``avoid`` (those failed this build).

        If the pool hands out an avoided server while another one is still in service, it is
        given back and the runner waits until one of the others is idle; only when every other
        server is retired, or ``lease_timeout_s`` has passed, does the build go back to a
        server that failed it.
        """
        deadline = (
            None if self.options.lease_timeout_s is None
            else self.clock.monotonic() + self.options.lease_timeout_s
        )
        while True:
            if self.cancelled:
                raise _Cancelled()
            remaining = None if deadline is None else max(0.0, deadline - self.clock.monotonic())
            lease = self.pool.lease(timeout=remaining)
            if lease.server.name not in avoid:
                return lease
            others = [
                s for s in self.pool.status()
                if s.name not in avoid and s.state is not ServerState.RETIRED
            ]
            if not others or (deadline is not None and self.clock.monotonic() >= deadline):
                # No other server in service, or the lease timeout is spent waiting for one:
                # the server at hand (leasing and giving it back again would only spin).
                return lease
            lease.release(healthy=True, builds=0)

            def other_idle(statuses: tuple[ServerStatus, ...]) -> bool:
                return self.cancelled or any(
                    s.name not in avoid and s.state is ServerState.IDLE for s in statuses
                ) or all(
                    s.state is ServerState.RETIRED for s in statuses if s.name not in avoid
                )

            while True:
                if deadline is not None and self.clock.monotonic() >= deadline:
                    break
                try:
                    self.pool.wait_for(other_idle, _WAIT_SLICE_S * 5)
                    break
                except TimeoutError:
                    if self.cancelled:
                        raise _Cancelled() from None

    # -- builds ---------------------------------------------------------------------------------

    def _submit(self, build: BuildPlan, parent: str | None) -> None:
        with self._lock:
            executor = self._executor
            self._builds[build.name] = (build, parent)
            if executor is None or self.cancelled:
                return
            future = executor.submit(self._run_build, build, parent)
            self._futures.add(future)
        future.add_done_callback(self._build_ended)

    def _build_ended(self, _future: Future[BuildOutcome]) -> None:
        self._changed.set()

    def _run_build(self, build: BuildPlan, parent: str | None) -> BuildOutcome:
        with self._lock:
            # A carry may have joined this build while it waited (executor/overflow.py).
            build = self._builds.get(build.name, (build, parent))[0]
            self._started.add(build.name)
        worker = _BuildWorker(self, build, parent)
        outcome = self._carried(worker, worker.run())
        outcome = self._untaken_carries(worker.build, outcome)
        with self._lock:
            self._outcomes[build.name] = outcome
            late = self._books_closed
        if self.options.build_report is not None:
            self._write_build_report(self.options.build_report, outcome,
                                     worker.facts.scene_fields)
        if late:
            # Its saves ended after the run removed `.preform-staging` (Runner.run): the
            # build's to remove when they left it empty.
            remove_empty_staging(self.resolved_output_root)
            # The run's result already called it unfinished and its summary is printed: a
            # line now would follow the run's last one. The log (and its own report, if
            # any) keep how and when it ended.
            log.info("build_finished_after_run", run_id=self.options.run_id,
                     build=build.name, status=outcome.status.value, reason=outcome.reason)
        else:
            self.reporter.build_finished(outcome)
        return outcome

    def _write_build_report(
        self, write: BuildReportWriter, outcome: BuildOutcome, scene: Mapping[str, str]
    ) -> None:
        """``scene``: the run fields the build's scene reported (an .fps recipe's)."""
        try:
            write(
                outcome,
                self.plan.recipe.outputs.report,
                {**build_values(self.values, self._builds[outcome.name][0]), **scene},
                self.options.output_root,
                run_id=self.options.run_id,
            )
        except (PipelineError, OSError) as exc:
            log.warning("build_report_failed", build=outcome.name, error=str(exc))

    def split(self, build: BuildPlan) -> tuple[BuildPlan, BuildPlan]:
        """Halve ``build`` and queue both halves (called from its worker thread)."""
        with self._lock:
            first = self._next_index
            self._next_index += 2
        children = split_build(self.plan.recipe, build, first)
        if self.options.on_split is not None:
            # Before the halves run: whoever records builds gives them theirs first.
            self.options.on_split(build, children)
        for child in children:
            self.reporter.build_added(child, parent=build.name)
            self._submit(child, build.name)
        return children

    def update_build(self, build: BuildPlan) -> None:
        """A running build took more models (the final build's intake)."""
        with self._lock:
            self._builds[build.name] = (build, self._builds[build.name][1])

    def place_carry(self, build: BuildPlan, carried: Sequence[int]) -> tuple[str, bool]:
        """Send the models a build's layout carried on to a planned build that has not
        started, else into another running build before its first layout is done, else into
        the final build, else to a new build (executor/overflow.py); a build is offered them
        only when the planner's plain pass lays them out with it.
        Called right after that layout; returns (build name, whether it is a new build)."""
        with self._lock:
            index = self._next_index
            self._next_index += 1
            waiting = [b for name, (b, _) in self._builds.items() if name not in self._started]
        _, carry = carry_build(self.plan.recipe, build, carried, index)
        recipe, machine = self.plan.recipe, self.plan.machine

        def fits(models: Sequence[ModelInfo]) -> bool:
            return plain_pass_fits(recipe, models, machine)

        target = join_waiting(recipe, carry, waiting, fits=fits)
        if target is not None:
            with self._lock:
                if target.name not in self._started:
                    self._builds[target.name] = (target, self._builds[target.name][1])
                    log.info("overflow_joined_build", build=build.name, into=target.name,
                             models=len(carry.models))
                    return target.name, False
        # A build on a server before its layout, the roomiest first (the final one last:
        # it waits for the others and takes what they carry after this).
        with self._lock:
            running = sorted(
                (self._builds[name][0] for name in self.intake.running_before_layout()
                 if name != build.name and name in self._builds),
                key=lambda b: (b.fill_ratio, len(b.models), b.index),
            )
        for other in running:
            if self.intake.offer_early(other.name, carry.models,
                                       fits=partial(_fits_with, fits, other.models)):
                log.info("overflow_joined_build", build=build.name, into=other.name,
                         models=len(carry.models), running=True)
                return other.name, False
        final = self.intake.final
        with self._lock:
            held = self._builds[final][0].models if final in self._builds else ()
        if final is not None and final != build.name and self.intake.offer(
            carry.models, fits=partial(_fits_with, fits, held)
        ):
            log.info("overflow_joined_build", build=build.name, into=final,
                     models=len(carry.models))
            return final, False
        log.info("overflow_build_added", build=build.name, carry=carry.name,
                 models=len(carry.models))
        self.reporter.build_added(carry, parent=build.name)
        self._submit(carry, build.name)
        return carry.name, True

    def _untaken_carries(self, final: BuildPlan, outcome: BuildOutcome) -> BuildOutcome:
        """``final`` (the final build, or another that took carries before its layout) has
        ended: models carried into it that it never took in (it failed or was stopped before
        its layout) go on as a build of their own."""
        left = self.intake.close(final.name)
        if not left:
            return outcome
        with self._lock:
            index = self._next_index
            self._next_index += 1
        models = (*final.models, *left)
        share = final.estimated_volume_ml / max(sum(m.volume_mm3 for m in final.models), 1e-9)
        held = replace(final, models=models,
                       estimated_volume_ml=share * sum(m.volume_mm3 for m in models))
        _, carry = carry_build(self.plan.recipe, held,
                               range(len(final.models), len(models)), index)
        with self._lock:
            while carry.name in self._builds:  # the final build's own carry has the name
                carry = replace(carry, name=carry_name(carry))
        log.info("overflow_build_added", build=final.name, carry=carry.name,
                 models=len(left), untaken=True)
        self.reporter.build_added(carry, parent=final.name)
        self._submit(carry, final.name)
        return replace(outcome, children=(*outcome.children, carry.name))

    def _carried(self, worker: _BuildWorker, outcome: BuildOutcome) -> BuildOutcome:
        """The outcome of a build whose layout carried models on lists only those that
        stayed (and the new build, when they went to one)."""
        build, carried = worker.build, worker.facts.carried
        if not carried:
            return outcome
        if worker.carried_to is None:
            if outcome.status is BuildStatus.CANCELLED:
                return outcome
            worker.carried_to = self.place_carry(build, carried)
        stayed = [m for i, m in enumerate(build.models) if i not in set(carried)]
        share = build.estimated_volume_ml / max(sum(m.volume_mm3 for m in build.models), 1e-9)
        name, added = worker.carried_to
        return replace(
            outcome,
            models=tuple(m.path.name for m in stayed),
            source_files=tuple(str(m.path) for m in stayed),
            units=tuple(units_label(m) for m in stayed),
            children=(*outcome.children, name) if added else outcome.children,
            estimated_volume_ml=sum(m.volume_mm3 for m in stayed) * share,
        )

    # -- running --------------------------------------------------------------------------------

    def run(self) -> RunResult:
        started = self.clock.monotonic()
        # What the servers of a killed run of this host were writing for it goes first;
        # never a live run's (another on this output folder), nor another host's.
        sweep_staging(self.resolved_output_root)
        builds = self._order
        self.reporter.run_started(
            self.options.run_id,
            self.plan.builds,
            # A run of no builds counts the servers up for other work (sending the builds
            # earlier runs left waiting), so that none is said to have started when one did.
            servers=self._usable if builds else _servers_up(self.pool.status()),
            simulated=self.pool.simulated,
        )
        log.info(
            "run_started",
            run_id=self.options.run_id,
            recipe=self.plan.recipe.name,
            builds=len(builds),
            models=self.plan.model_count,
            rejected=len(self.plan.rejected),
            servers=self._server_count,
            simulated=self.pool.simulated,
            dry_run=self.options.dry_run,
        )
        executor = ThreadPoolExecutor(
            max_workers=self._server_count, thread_name_prefix="build"
        )
        with self._lock:
            self._executor = executor
        try:
            for build in builds:
                self._submit(build, None)
            self._wait_all()
        except KeyboardInterrupt:
            self.cancel()
            self._wind_down()
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
            with self._lock:
                self._executor = None
        if self.cancelled:
            self._wind_down()
        self.clients.close()
        result = self._result(self.clock.monotonic() - started)
        # The builds' saves left `.preform-staging` for the run (StepContext.staging_kept):
        # gone now when empty; a save of another run on this output folder keeps it. After
        # the books close: a build still running (its server kept a save going past the
        # cancel) removes it when it ends (_run_build), one that ended before is seen here.
        remove_empty_staging(self.resolved_output_root)
        if not self._pending():
            # Every build has its outcome: the folder is left only when a build kept files
            # in it (a failed build's checkpoint, --keep-checkpoints). `.checkpoints/`
            # itself stays: another run on this output folder may be making its own below it.
            with contextlib.suppress(OSError):
                self.resolved_checkpoint_root.rmdir()
        tracking = self.options.print_tracking
        if tracking is not None and not self.cancelled and not self.options.dry_run:
            # Every build is sent: one shared poller verifies their prints (recipe `verify`).
            result = tracking.after_run(result, self._cancel)
            # The run's time is the person's wait: verification included.
            result = replace(result, wall_s=self.clock.monotonic() - started)
        log.info(
            "run_finished",
            run_id=self.options.run_id,
            ok=result.ok,
            cancelled=result.cancelled,
            builds=len(result.outcomes),
            succeeded=len(result.by_status(BuildStatus.SUCCEEDED)),
            failed=len(result.by_status(BuildStatus.FAILED)),
            wall_s=round(result.wall_s, 3),
        )
        self.reporter.run_finished(result)
        return result

    def _pending(self) -> set[Future[BuildOutcome]]:
        with self._lock:
            return {f for f in self._futures if not f.done()}

    def _wait_all(self) -> None:
        # Woken by each build's end (and by cancel), not by polling: a slice of 0.2 s cost
        # the runner five wake-ups a second, each building waiters for every future.
        while True:
            self._changed.clear()
            pending = self._pending()
            if not pending:
                return
            if self.cancelled:
                self._wind_down()
                return
            self._changed.wait(_RUN_WAKE_S)

    def _wind_down(self) -> None:
        """After cancel: let running steps end within the grace period, then stop the pool
        (which ends any step still running) and wait for the workers to notice. Once per
        run: ``run()`` reaches it from the wait and again at its end, and a second pass would
        wait all over again for a build that did not notice."""
        if self._wound_down:
            return
        self._wound_down = True
        grace_until = self.clock.monotonic() + self.options.cancel_grace_s
        try:
            while self._pending() and self.clock.monotonic() < grace_until:
                wait(self._pending(), timeout=_WAIT_SLICE_S, return_when=FIRST_COMPLETED)
        except KeyboardInterrupt:
            log.warning("run_cancel_forced", run_id=self.options.run_id)
        self.pool.close()
        stop_waiting = self.clock.monotonic() + max(self.options.cancel_grace_s, 5.0)
        while self._pending() and self.clock.monotonic() < stop_waiting:
            try:
                wait(self._pending(), timeout=_WAIT_SLICE_S, return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                break

    def _result(self, wall_s: float) -> RunResult:
        with self._lock:
            builds = dict(self._builds)
            outcomes = dict(self._outcomes)
            self._books_closed = True
        ordered: list[BuildOutcome] = []
        for name, (build, parent) in builds.items():
            outcome = outcomes.get(name)
            if outcome is None:
                outcome = BuildOutcome(
                    name=build.name,
                    index=build.index,
                    status=BuildStatus.CANCELLED,
                    models=tuple(m.path.name for m in build.models),
                    source_files=tuple(str(m.path) for m in build.models),
                    units=build.units,
                    reason="the run was interrupted before this build finished",
                    parent=parent,
                    estimated_volume_ml=build.estimated_volume_ml,
                    dry_run=self.options.dry_run,
                    case_ids=_case_ids(build),
                )
            ordered.append(outcome)
        ordered.sort(key=lambda o: o.index)
        mode = getattr(self.pool, "mode", None)
        return RunResult(
            run_id=self.options.run_id,
            recipe=self.plan.recipe.name,
            simulated=self.pool.simulated,
            dry_run=self.options.dry_run,
            outcomes=tuple(ordered),
            rejected=self.plan.rejected,
            cancelled=self.cancelled,
            wall_s=wall_s,
            server_count=self._server_count,
            pool_mode=str(getattr(mode, "value", mode or "")),
            output_root=self.options.output_root,
            warnings=self.plan.warnings,
        )


def run_plan(
    plan: Plan,
    pool: ServerSource,
    *,
    options: RunOptions,
    reporter: Reporter | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> RunResult:
    """Run every build of ``plan`` on ``pool`` (started); see :class:`Runner`."""
    return Runner(plan, pool, options=options, reporter=reporter, clock=clock).run()

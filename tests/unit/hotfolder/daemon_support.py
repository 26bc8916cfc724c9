"""Helpers for the daemon's unit tests: a scripted runner at the executor seam.

The daemon's seams are the store (a real SQLite file here), the pool factory and the
executor factory. :class:`ScriptedRunner` stands in for the executor: it walks each build
through the reporter the way the real runner does (``step_started`` of the ``print`` step
right before "sending"), records what the store said at that moment, "prints" by writing a
job file into a fleet folder (the simulator's format, so :class:`FleetDirLookup` finds it),
and answers a RunResult. Scripts make a build fail, split, or never finish until cancelled.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from preform_pipeline.api import PreFormClient, SceneSettings
from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.executor import (
    AttemptRecord,
    BuildOutcome,
    BuildStatus,
    Reporter,
    RunOptions,
    RunResult,
    split_build,
)
from preform_pipeline.executor.hooks import PRINT_HELD, PRINT_WAITING
from preform_pipeline.executor.ledger import RunLedger
from preform_pipeline.executor.runner import build_values
from preform_pipeline.executor.runroot import run_values
from preform_pipeline.executor.steps import shared_values
from preform_pipeline.hotfolder.daemon import HotFolderDaemon
from preform_pipeline.hotfolder.intake import HOTFOLDER_FIELD, JobPlace
from preform_pipeline.hotfolder.nodes import BuildStops, NodeRole
from preform_pipeline.hotfolder.testing import tetra_stl_bytes
from preform_pipeline.plan.builds import BuildPlan, ModelInfo, Plan
from preform_pipeline.printing import FleetFolderLocator, PrintLocator, PrintOwner, SendHolder
from preform_pipeline.recipes import render_template
from preform_pipeline.recipes.printers import KnownPrinters
from preform_pipeline.servers import ServerStatus
from preform_pipeline.settings import HotFolderSettings, ServerSettings, Settings
from preform_pipeline.settings.dispatch import DispatchSettings
from preform_pipeline.settings.hotfolder import BatchingSettings, InboxSettings
from preform_pipeline.store import Job, JobState, JobStore, SqliteJobStore
from preform_pipeline.verify.notify import Notifier

__all__ = [
    "DummyPool",
    "RunnerLosingSent",
    "RunnerSavingForms",
    "Script",
    "ScriptedRunner",
    "claimed_by_a_run",
    "drop",
    "levels_of",
    "make_daemon",
    "names",
    "processing_job",
    "run_daemon_once",
]


class DummyPool:
    """The pool seam: nothing to lease (the scripted runner needs no servers)."""

    simulated = True

    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def status(self) -> tuple[ServerStatus, ...]:
        """No servers to describe (the worker asks whether every one refused to start)."""
        return ()


@dataclass
class Script:
    """What the scripted runner does, and what it saw."""

    fleet_dir: Path
    fail: Callable[[BuildPlan], str | None] = lambda _build: None
    #: A failure's attempt ended on the job store being away (the real runner records
    #: ``AttemptRecord.store_outage`` from ``StoreError.outage``).
    fail_store_outage: bool = False
    #: A failure was a write refused there for want of room (the real runner records
    #: ``BuildOutcome.full_disk`` from the error's kind).
    fail_full_disk: Path | None = None
    split_first: bool = False
    #: Models to take out of a build with their case during preparation (the real runner
    #: does so under ``on_model_failure: drop_case``): (path, reason) pairs.
    drop: Callable[[BuildPlan], list[tuple[Path, str]]] = lambda _build: []
    block: threading.Event | None = None
    #: Each build's outcome names a saved ``<output root>/<build>.form`` (not written).
    saves_form: bool = False
    seen_states: list[tuple[str, str, str | None]] = field(default_factory=list)
    runs: list[tuple[str, ...]] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)
    store: JobStore | None = None


class ScriptedRunner:
    """Runs a plan through the reporter without servers (see the module docstring)."""

    #: The pool the daemon handed the run (set by :func:`make_daemon`'s executor).
    pool: Any = None

    def __init__(self, script: Script, plan: Plan, options: RunOptions,
                 reporter: Reporter) -> None:
        self.script = script
        self.plan = plan
        self.options = options
        self.reporter = reporter

    def cancel(self) -> None:
        self.script.cancelled.set()

    def _print(self, build: BuildPlan) -> str | None:
        """The executor's print step, through the same hooks, without a server."""
        recipe = self.plan.recipe
        step = recipe.step("print")
        if step is None or self.options.dry_run:
            return None
        values = shared_values(build, build_values(run_values(recipe, self.options.started_at),
                                                   build))
        job_name = render_template(str(step.options["job_name"]), values)
        printer = render_template(str(step.options["printer"]), values)
        tracking = self.options.print_tracking
        assert tracking is not None, "a printing recipe runs with print hooks"
        hooks = tracking.for_build(build)
        job_name = hooks.job_name(job_name)
        found = hooks.before_send(job_name, printer)
        if found is not None:
            return found
        return self._record_print(build, hooks, job_name, printer)

    def _record_print(self, build: BuildPlan, hooks: Any, job_name: str, printer: str) -> str:
        """The print itself: what the store said as it went out, a job file in the fleet
        folder, and the hooks told it was sent."""
        store = self.script.store
        assert store is not None
        stored = next(b for b in store.list_builds() if b.job_key == hooks.job_key)
        self.script.seen_states.append((build.name, stored.state.value, stored.job_name))
        job_id = str(uuid.uuid4())
        jobs = self.script.fleet_dir / "jobs"
        jobs.mkdir(parents=True, exist_ok=True)
        # Written whole, then renamed, as the simulator does: a reader never sees half a file.
        partial = jobs / f".{job_id}.json.tmp"
        partial.write_text(json.dumps(
            {"job_id": job_id, "job_name": job_name, "printer": printer,
             "created_at": datetime.now(timezone.utc).isoformat()}), encoding="utf-8")
        partial.replace(jobs / f"{job_id}.json")
        hooks.sent(job_id, printer)
        return job_id

    def _outcome(self, build: BuildPlan, status: BuildStatus, reason: str | None = None,
                 job_id: str | None = None, children: tuple[str, ...] = ()) -> BuildOutcome:
        return BuildOutcome(
            name=build.name, index=build.index, status=status,
            models=tuple(m.path.name for m in build.models),
            source_files=tuple(str(m.path) for m in build.models),
            reason=reason, job_id=job_id, server="server-1", children=children,
            outputs=((self.options.output_root / f"{build.name}.form",)
                     if self.script.saves_form else ()),
        )

    def _drop(self, build: BuildPlan) -> set[Path]:
        """The script's drops for ``build``, each told to the run as the runner tells it."""
        gone = set()
        for path, why in self.script.drop(build):
            gone.add(path)
            if self.options.on_model_dropped is not None:
                self.options.on_model_dropped(build.name, path, why)
        return gone

    def run(self) -> RunResult:
        self.script.runs.append(tuple(b.name for b in self.plan.builds))
        outcomes: list[BuildOutcome] = []
        todo = list(self.plan.builds)
        index = len(todo)
        while todo:
            build = todo.pop(0)
            if self.script.block is not None:
                while not self.script.cancelled.is_set() and not self.script.block.is_set():
                    self.script.block.wait(0.05)
            if self.script.cancelled.is_set():
                outcomes.append(self._outcome(build, BuildStatus.CANCELLED, "interrupted"))
                continue
            # The executor makes each build's print hooks as the build starts, whether its
            # recipe prints or not: hooks handed to a run must be able to make them.
            if self.options.print_tracking is not None:
                self.options.print_tracking.for_build(build)
            # As the real runner does before each step: a build its node must give up (a lost
            # lease) ends cancelled with the node's reason, and nothing more is sent for it.
            stopped = self.options.stop_reason(build.name) if self.options.stop_reason else None
            if stopped is not None:
                outcomes.append(self._outcome(build, BuildStatus.CANCELLED, stopped))
                continue
            if self.script.split_first and len(build.models) > 1 and "." not in build.name:
                # As the real runner: a case dropped before the layout overflowed has left
                # the build for good, and the halves are made from the models still in it.
                gone = self._drop(build)
                kept = tuple(m for m in build.models if m.path not in gone)
                halves = split_build(self.plan.recipe, replace(build, models=kept), index + 1)
                index += 2
                # As the real runner does: the split callback first, then the reporter.
                if self.options.on_split is not None:
                    self.options.on_split(build, halves)
                for half in halves:
                    self.reporter.build_added(half, parent=build.name)
                todo.extend(halves)
                outcomes.append(self._outcome(build, BuildStatus.SPLIT, "did not fit",
                                              children=tuple(h.name for h in halves)))
                continue
            reason = self.script.fail(build)
            if reason is not None:
                failed = replace(self._outcome(build, BuildStatus.FAILED, reason),
                                 full_disk=self.script.fail_full_disk)
                if self.script.fail_store_outage:
                    failed = replace(failed, attempts=(AttemptRecord(
                        1, "server-1", 0.0, error=reason, error_type="StoreError",
                        store_outage=True),))
                outcomes.append(failed)
                continue
            self._drop(build)
            job_id = self._print(build)
            outcomes.append(self._outcome(build, BuildStatus.SUCCEEDED, job_id=job_id))
        return RunResult(
            run_id=self.options.run_id, recipe=self.plan.recipe.name, simulated=True,
            dry_run=self.options.dry_run, outcomes=tuple(outcomes), rejected=self.plan.rejected,
            cancelled=self.script.cancelled.is_set(), wall_s=0.0, server_count=1,
            pool_mode="simulated", output_root=self.options.output_root,
        )


class RunnerSavingForms(ScriptedRunner):
    """The scripted runner, printing the way the executor's steps do on a server leased
    from the run's pool (a simulator): the build's models imported into a scene saved as a
    .form (save_form), the printer resolved through the hooks (``printer: auto`` or a list
    looks at the server's devices), and the saved .form handed to ``before_send``. A build
    the hooks make wait (the daemon's dispatch loop sends it later) prints nothing here."""

    def _print(self, build: BuildPlan) -> str | None:
        recipe = self.plan.recipe
        step = recipe.step("print")
        tracking = self.options.print_tracking
        if step is None or self.options.dry_run or tracking is None:
            return None
        values = shared_values(build, build_values(run_values(recipe, self.options.started_at),
                                                   build))
        hooks = tracking.for_build(build)
        lease = self.pool.lease(timeout=self.options.request_timeout_s)
        try:
            form, printer = self._save_and_resolve(build, hooks, lease.server.url, values)
        finally:
            lease.release()
        job_name = hooks.job_name(render_template(str(step.options["job_name"]), values))
        found = hooks.before_send(job_name, printer, form_path=form)
        if found in (PRINT_WAITING, PRINT_HELD):
            return None  # as the print step: the build succeeded, its print waits
        if found is not None:
            return found
        return self._record_print(build, hooks, job_name, printer)

    def _save_and_resolve(self, build: BuildPlan, hooks: Any, url: str,
                          values: dict[str, object]) -> tuple[Path, str]:
        """The build's .form saved on the server at ``url``, and its printer resolved."""
        recipe = self.plan.recipe
        step = recipe.step("print")
        assert step is not None
        with PreFormClient(url) as client:
            scene = recipe.scene
            created = client.create_scene(SceneSettings(
                machine_type=str(scene.machine_type), material_code=str(scene.material_code),
                layer_thickness_mm=scene.layer_thickness_mm))
            for model in build.models:
                client.import_model(created.id, model.path)
            form = self.options.output_root / f"{build.name}.form"
            form.parent.mkdir(parents=True, exist_ok=True)
            client.save_form(created.id, form)
            client.delete_scene(created.id)
            printer = hooks.resolve_printer(
                render_template(str(step.options["printer"]), values), recipe, client)
        return form, printer


def make_daemon(
    tmp_path: Path,
    store: JobStore,
    script: Script,
    recipe: Path,
    *,
    lookup: PrintLocator | None = None,
    batching: BatchingSettings | None = None,
    inbox: dict[str, Any] | None = None,
    stop_deadline_s: float = 5.0,
    duplicates: str = "skip",
    notifier: Notifier | None = None,
    hot: dict[str, Any] | None = None,
    settings_output_root: Path | None = None,
    known_printers: KnownPrinters | None = None,
    dry_run: bool = False,
    pool: Callable[[], Any] = DummyPool,
    runner: type[ScriptedRunner] | None = None,
    stops: BuildStops | None = None,
    dispatch: DispatchSettings | None = None,
    servers: ServerSettings | None = None,
    node: NodeRole | None = None,
    clock: Clock = SYSTEM_CLOCK,
    move: Callable[[Path, Path], None] | None = None,
) -> HotFolderDaemon:
    """A daemon with the scripted runner (or ``runner``), no servers, a real store and real
    folders below ``tmp_path``; ``hot`` adds or replaces hot folder settings, ``dispatch`` the
    dispatch loop's, ``servers`` the servers'. ``stops``: the
    builds' stop signals a farm node's worker gets (a real node's come from its
    :class:`NodeRole`, which needs a shared PostgreSQL store); ``node``: the daemon is that
    farm node (``store`` is its fenced store); ``clock``: the daemon's (a manual one moves
    its days); ``move``: how its files move (the intake's seam)."""
    script.store = store
    made = runner or ScriptedRunner
    hotfolder: dict[str, Any] = {
        "batching": batching or BatchingSettings(window_s=0.1),
        "duplicates": duplicates,
        "stop_deadline_s": stop_deadline_s,
        "output_root": tmp_path / "out",
        **(hot or {}),
    }
    settings = Settings(
        output_root=settings_output_root,
        dispatch=dispatch or DispatchSettings(),
        servers=servers or ServerSettings(),
        hotfolders=HotFolderSettings(
            inboxes=(InboxSettings(path=tmp_path / "inbox", recipe=recipe,
                                   **{"quiet_period_s": 0.2, **(inbox or {})}),),
            **hotfolder,
        ),
    )

    def executor(plan: Plan, pool: Any, *, options: RunOptions,
                 reporter: Reporter | None = None) -> ScriptedRunner:
        assert reporter is not None
        runner = made(script, plan, options, reporter)
        runner.pool = pool
        return runner

    daemon = HotFolderDaemon(settings, store, pool, executor, print_lookup=lookup,
                             notifier=notifier, known_printers=known_printers, dry_run=dry_run,
                             node=node, clock=clock,
                             **({"move": move} if move is not None else {}))
    if stops is not None:
        daemon.worker.stops = stops
    return daemon


class _SentLost:
    """A build's print hooks whose ``sent`` never reaches the store (the store was away at
    that write: the tracker logs it and the build stays print_sending)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def sent(self, job_id: str | None, printer: str) -> None:
        pass


class _TrackingLosingSent:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def for_build(self, build: BuildPlan) -> _SentLost:
        return _SentLost(self.inner.for_build(build))

    def after_run(self, result: Any, stop: threading.Event) -> Any:
        return self.inner.after_run(result, stop)


class RunnerLosingSent(ScriptedRunner):
    """The scripted runner, with every print's ``sent`` write lost."""

    def __init__(self, script: Script, plan: Plan, options: RunOptions,
                 reporter: Reporter) -> None:
        hooks = _TrackingLosingSent(options.print_tracking)
        super().__init__(script, plan, replace(options, print_tracking=hooks), reporter)


def processing_job(store: SqliteJobStore, inbox: Path, name: str, seed: int = 0, *,
                   recipe: str = "hot", size_mm: float = 2.0,
                   sidecar: dict[str, Any] | None = None, **kwargs: Any) -> int:
    """A job the intake took (its file in processing/<key>/, a part ``size_mm`` wide, with
    its sidecar's fields), as the batcher hands it on."""
    fields = {**(sidecar or {}), HOTFOLDER_FIELD: JobPlace(inbox, name).to_json()}
    job = store.create_job(recipe=recipe, source_path=inbox / name, state=JobState.PROCESSING,
                           fields=fields, **kwargs)
    path = inbox / "processing" / job.job_key / name
    path.parent.mkdir(parents=True)
    path.write_bytes(tetra_stl_bytes(seed, size_mm=size_mm))
    store.update_job(job.id, source_path=str(path))
    return job.id


def claimed_by_a_run(store: JobStore, model: Path, *, reprint: bool = False) -> Job:
    """``model`` (written already) claimed by ``run --recipe hot`` (``--reprint``) of this
    very process, so a live run, as ``run`` claims it before planning: PROCESSING, no build.
    Prints are looked for in ``<model's folder>/../fleet``."""
    owner = PrintOwner(store, [FleetFolderLocator(model.parent.parent / "fleet")])
    ledger = RunLedger(store, owner, "hot", "run-1", SendHolder.local("run", os.getpid(), 0.0),
                       reprint=reprint)
    info = ModelInfo(path=model, name=model.stem, size_mm=(2, 2, 2), footprint_mm=(2, 2),
                     volume_mm3=8.0, support_estimate_mm3=0.0, triangle_count=4)
    assert ledger.claim([info]) == ([info], [])
    (job,) = (j for j in store.list_jobs(state=JobState.PROCESSING) if j.source_path == model)
    return job


def run_daemon_once(daemon: HotFolderDaemon) -> None:
    assert daemon.run(once=True) == 0


def drop(tmp_path: Path, name: str, data: bytes) -> Path:
    """A file dropped into ``tmp_path/inbox`` (its folders made)."""
    path = tmp_path / "inbox" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def levels_of(logs: list[dict[str, Any]], prefix: str) -> list[tuple[str, str]]:
    """(event, level) of each captured event whose name starts with ``prefix``, in order:
    what a test of "said once, then at debug level" compares."""
    return [(e["event"], e["log_level"]) for e in logs if e["event"].startswith(prefix)]


def names(folder: Path) -> list[str]:
    """The files below ``folder``, relative to it, sorted."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())

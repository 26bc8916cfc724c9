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
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from preform_pipeline.executor import (
    AttemptRecord,
    BuildOutcome,
    BuildStatus,
    Reporter,
    RunOptions,
    RunResult,
    split_build,
)
from preform_pipeline.executor.runner import build_values, run_values
from preform_pipeline.executor.steps import shared_values
from preform_pipeline.hotfolder.daemon import HotFolderDaemon
from preform_pipeline.hotfolder.intake import HOTFOLDER_FIELD, JobPlace
from preform_pipeline.hotfolder.testing import tetra_stl_bytes
from preform_pipeline.plan.builds import BuildPlan, Plan
from preform_pipeline.printing import PrintLocator
from preform_pipeline.recipes import render_template
from preform_pipeline.recipes.printers import KnownPrinters
from preform_pipeline.settings import HotFolderSettings, Settings
from preform_pipeline.settings.hotfolder import BatchingSettings, InboxSettings
from preform_pipeline.store import JobState, JobStore, SqliteJobStore
from preform_pipeline.verify.notify import Notifier

__all__ = [
    "DummyPool",
    "RunnerLosingSent",
    "Script",
    "ScriptedRunner",
    "drop",
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


@dataclass
class Script:
    """What the scripted runner does, and what it saw."""

    fleet_dir: Path
    fail: Callable[[BuildPlan], str | None] = lambda _build: None
    #: A failure's attempt ended on the job store being away (the real runner records
    #: ``AttemptRecord.store_outage`` from ``StoreError.outage``).
    fail_store_outage: bool = False
    split_first: bool = False
    #: Models to take out of a build with their case during preparation (the real runner
    #: does so under ``on_model_failure: drop_case``): (path, reason) pairs.
    drop: Callable[[BuildPlan], list[tuple[Path, str]]] = lambda _build: []
    block: threading.Event | None = None
    seen_states: list[tuple[str, str, str | None]] = field(default_factory=list)
    runs: list[tuple[str, ...]] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)
    store: JobStore | None = None


class ScriptedRunner:
    """Runs a plan through the reporter without servers (see the module docstring)."""

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
        )

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
            if self.script.split_first and len(build.models) > 1 and "." not in build.name:
                halves = split_build(self.plan.recipe, build, index + 1)
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
                failed = self._outcome(build, BuildStatus.FAILED, reason)
                if self.script.fail_store_outage:
                    failed = replace(failed, attempts=(AttemptRecord(
                        1, "server-1", 0.0, error=reason, error_type="StoreError",
                        store_outage=True),))
                outcomes.append(failed)
                continue
            for path, why in self.script.drop(build):
                if self.options.on_model_dropped is not None:
                    self.options.on_model_dropped(build.name, path, why)
            job_id = self._print(build)
            outcomes.append(self._outcome(build, BuildStatus.SUCCEEDED, job_id=job_id))
        return RunResult(
            run_id=self.options.run_id, recipe=self.plan.recipe.name, simulated=True,
            dry_run=self.options.dry_run, outcomes=tuple(outcomes), rejected=self.plan.rejected,
            cancelled=self.script.cancelled.is_set(), wall_s=0.0, server_count=1,
            pool_mode="simulated", output_root=self.options.output_root,
        )


def make_daemon(
    tmp_path: Path,
    store: SqliteJobStore,
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
) -> HotFolderDaemon:
    """A daemon with the scripted runner (or ``runner``), no servers, a real store and real
    folders below ``tmp_path``; ``hot`` adds or replaces hot folder settings."""
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
        hotfolders=HotFolderSettings(
            inboxes=(InboxSettings(path=tmp_path / "inbox", recipe=recipe,
                                   **{"quiet_period_s": 0.2, **(inbox or {})}),),
            **hotfolder,
        ),
    )

    def executor(plan: Plan, pool: Any, *, options: RunOptions,
                 reporter: Reporter | None = None) -> ScriptedRunner:
        assert reporter is not None
        return made(script, plan, options, reporter)

    return HotFolderDaemon(settings, store, pool, executor, print_lookup=lookup,
                           notifier=notifier, known_printers=known_printers, dry_run=dry_run)


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


def run_daemon_once(daemon: HotFolderDaemon) -> None:
    assert daemon.run(once=True) == 0


def drop(tmp_path: Path, name: str, data: bytes) -> Path:
    """A file dropped into ``tmp_path/inbox`` (its folders made)."""
    path = tmp_path / "inbox" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def names(folder: Path) -> list[str]:
    """The files below ``folder``, relative to it, sorted."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())

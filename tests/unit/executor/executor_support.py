"""Helpers for the executor's unit tests: in-process simulators behind a small pool.

The runner's seams are the pool (``ServerSource``: lease / status / wait_for / close) and the
servers' HTTP. Here the servers are real simulator HTTP servers with the real engine, in this
process on port 0; the pool is :class:`FakePool`, which leases them like the real pool does
(exclusive, longest idle first) and records every lease and reported failure. Request-level
faults come from :class:`ScriptedFaults` (a 500 for the first N calls of an operation, or an
operation that hangs until shutdown), which takes the place of the simulator's random
injector.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from structlog.contextvars import merge_contextvars
from structlog.testing import LogCapture

from preform_pipeline.api import ImportOptions, PreFormClient, SceneSettings
from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.errors import PipelineError, PoolExhaustedError
from preform_pipeline.executor import (
    BuildOutcome,
    BuildStatus,
    NullReporter,
    RunOptions,
    RunResult,
    run_plan,
)
from preform_pipeline.executor.staging import process_folder_name
from preform_pipeline.geometry.stl import write_stl
from preform_pipeline.liveness import ProcessIdentity
from preform_pipeline.outputfolders import STAGING_FOLDER
from preform_pipeline.plan.builds import Plan, plan_builds, read_models
from preform_pipeline.recipes import load_recipe
from preform_pipeline.report import write_build_report
from preform_pipeline.servers.pathmap import PathMapper
from preform_pipeline.servers.pool import PoolServer, ServerState, ServerStatus
from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.meshops import box_triangles
from preform_pipeline.simulator.protocol import ProgressCallback, SimError
from preform_pipeline.simulator.server import SimulatorServer

__all__ = [
    "HANG_LIMIT_S",
    "STEP_LIMIT_S",
    "WAIT_S",
    "capture_bound_logs",
    "five_boxes",
    "named_case_folders",
    "saved_form",
    "write_box",
    "write_mushroom",
    "FakeLease",
    "FakePool",
    "ScriptedFaults",
    "SimFarm",
    "plan_for",
    "run",
    "run_held",
    "only_attempt_timed_out",
    "staged_name",
    "write_recipe",
]

#: Upper bound of every wait in these tests; reached only when something is broken.
WAIT_S = 20.0

#: The step deadline of a run that scripts no hang: out of reach of every step on a loaded
#: machine, so only a fault meets it. A run's steps are real work in this process's
#: simulators: one screenshot took 8 s and 21 s beside three busy loops at load 9-10 (a test
#: at nice 10, session 23), and under the 10 s deadline this was, the happy-path builds were
#: retried (docs/testing.md, "Session 23: tests that failed under load"). Three times the
#: slowest step seen; a step slower than this would also take the test near the suite's
#: 120 s limit per test.
STEP_LIMIT_S = WAIT_S * 3

#: The limit a scripted hang is meant to meet (a step's deadline, or the request limit): the
#: test waits it out once, and every other step and request of that run must end inside it.
#: Five times the slowest step other than the screenshot seen under load (an auto_layout,
#: 1.0 s at load 9-10 beside three busy loops, session 23); 2 and 3 s limits cut real steps
#: short there. It was 10 s until session 32: seventeen tests each waited it out (twice, for
#: a slow checkpoint save), about a twelfth of the whole suite's time on three workers; at
#: 5 s they ran beside two busy loops without a step cut short (docs/testing.md, session 32).
#: A run that uses it leaves the screenshot out, or has it polled.
HANG_LIMIT_S = 5.0

RECIPE_HEAD = """\
name: unit
scene:
  machine_type: FORM-4-0
  material_code: FLGPGR05
  layer_thickness_mm: 0.1
import:
  units: MILLIMETERS
  repair_behavior: REPAIR
"""


def write_box(folder: Path, name: str, sx: float, sy: float, sz: float) -> Path:
    """A closed box model file ``name``.stl of ``sx`` x ``sy`` x ``sz`` mm."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.stl"
    write_stl(path, box_triangles((0.0, 0.0, 0.0), (sx, sy, sz)), name=name)
    return path


def saved_form(url: str, folder: Path) -> Path:
    """A prepared build's .form (one 10 mm crown, Form 4, Grey), saved by the server at
    ``url`` as the runner saves it, into ``folder / "build.form"``."""
    form = folder / "build.form"
    with PreFormClient(url, timeout=WAIT_S) as client:
        scene = client.create_scene(
            SceneSettings("FORM-4-0", "FLGPGR05", 0.1, print_setting="DEFAULT"))
        assert scene.id is not None
        client.import_model(scene.id, write_box(folder, "crown", 10, 10, 5),
                            ImportOptions(name="crown"))
        client.save_form(scene.id, form)
        client.delete_scene(scene.id)
    return form


def five_boxes(tmp_path: Path) -> list[Path]:
    """Five 90 x 60 mm boxes: planned without rafts, a build of four and a build of one;
    with their rafts only three fit the first build's platform, so one is carried on."""
    return [write_box(tmp_path / "m", f"box{i}", 90, 60, 10) for i in range(5)]


def write_mushroom(folder: Path, name: str) -> Path:
    """A 10 mm pillar under a 30 mm plate: the plate's underside overhangs, so without
    supports print validation calls the model undersupported."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.stl"
    pillar = box_triangles((0.0, 0.0, 0.0), (10.0, 10.0, 10.0))
    plate = box_triangles((-10.0, -10.0, 10.0), (20.0, 20.0, 14.0))
    write_stl(path, np.concatenate([pillar, plate]), name=name)
    return path


def write_recipe(folder: Path, body: str, head: str = RECIPE_HEAD) -> Path:
    """A recipe file: the standard head (scene, import) plus ``body`` (steps, batching...)."""
    path = folder / "recipe.yaml"
    path.write_text(head + body, encoding="utf-8")
    return path


def named_case_folders(models: Sequence[Path]) -> list[Path]:
    """The folders among ``models``: each one case (these tests name case folders, as
    ``run C-1042/`` does a folder its case's sidecar marks), its name the case id."""
    return [path for path in models if path.is_dir()]


def plan_for(recipe_path: Path, models: Sequence[Path]) -> Plan:
    recipe = load_recipe(recipe_path)
    return plan_builds(recipe, read_models(models, import_spec=recipe.import_options,
                                           cases=named_case_folders(models)))


def plan_without_rafts(recipe_path: Path, models: Sequence[Path]) -> Plan:
    """A plan made as if the models had no raft (so the server's layout disagrees with it),
    to be run with the recipe as written (supports, rafts and all)."""
    from dataclasses import replace

    from preform_pipeline.plan.graph import compile_graph

    recipe = load_recipe(recipe_path)
    bare = replace(recipe, steps=tuple(s for s in recipe.steps if s.kind != "auto_support"))
    plan = plan_builds(bare, read_models(models, import_spec=recipe.import_options,
                                         cases=named_case_folders(models)))
    builds = tuple(replace(b, graph=compile_graph(recipe, b.models)) for b in plan.builds)
    return replace(plan, recipe=recipe, builds=builds)


@dataclass
class ScriptedFaults:
    """Request-level faults for an in-process simulator (the ``faults`` attribute).

    ``fail[op] = n``: the first ``n`` requests starting ``op`` answer 500 (a transient server
    fault). ``hang`` operations never finish until the server shuts down.
    """

    fail: dict[str, int] = field(default_factory=dict)
    hang: frozenset[str] = frozenset()
    stop: threading.Event = field(default_factory=threading.Event)
    seen: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_request(self, method: str, path: str) -> None:
        return None

    def simulated_error(self, operation_id: str) -> SimError | None:
        with self.lock:
            self.seen.append(operation_id)
            left = self.fail.get(operation_id, 0)
            if left <= 0:
                return None
            self.fail[operation_id] = left - 1
        return SimError(500, "SCRIPTED_FAULT", f"scripted fault in {operation_id}")

    def during_operation(self, operation_id: str, progress: ProgressCallback | None) -> None:
        if operation_id in self.hang:
            self.stop.wait()
            raise SimError(503, "SHUTTING_DOWN", "hung operation released at shutdown")


class SimFarm:
    """In-process simulator servers sharing one fleet folder; shut down by :meth:`close`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.servers: list[SimulatorServer] = []
        self.faults: list[ScriptedFaults] = []

    @property
    def fleet_dir(self) -> Path:
        return self.folder / "fleet"

    def add(self, faults: ScriptedFaults | None = None) -> SimulatorServer:
        index = len(self.servers)
        engine = SimEngine(
            scene_cache_size=100, fleet_dir=self.fleet_dir, work_dir=self.folder / f"work{index}"
        )
        server = SimulatorServer(engine, port=0, poll_interval=0.01)
        scripted = faults or ScriptedFaults()
        scripted.stop = server.stopping
        server.faults = scripted  # type: ignore[assignment]
        server.start()
        self.servers.append(server)
        self.faults.append(scripted)
        return server

    def jobs(self) -> list[dict[str, Any]]:
        import json

        folder = self.fleet_dir / "jobs"
        if not folder.is_dir():
            return []
        return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            # The engines were made here: they leave the fleet folder now, not in a collector's
            # finalizer during some later test.
            engine = server.engine
            if isinstance(engine, SimEngine):
                engine.close()


class FakeLease:
    def __init__(self, pool: FakePool, server: PoolServer) -> None:
        self.pool = pool
        self.server = server
        self.released = False

    def release(self, healthy: bool = True, builds: int = 1) -> None:
        if not self.released:
            self.released = True
            self.pool._give_back(self.server.name, None)

    def report_failure(self, exc: BaseException | None = None) -> None:
        if not self.released:
            self.released = True
            self.pool._give_back(self.server.name, exc or RuntimeError("reported"))


class FakePool:
    """Leases in-process servers like the real pool: exclusive, longest idle first.

    ``leases`` lists the names handed out in order; ``failures`` the (name, error type)
    reports. ``retire(name)`` takes a server out for good.
    """

    simulated = True

    def __init__(self, urls: Sequence[str]) -> None:
        self._cond = threading.Condition()
        self._tick = itertools.count()
        self._slots: dict[str, dict[str, Any]] = {
            f"server-{i + 1}": {"url": url, "state": ServerState.IDLE, "idle": next(self._tick)}
            for i, url in enumerate(urls)
        }
        self.leases: list[str] = []
        self.failures: list[tuple[str, str]] = []
        self.closed = False

    def lease(self, timeout: float | None = None) -> FakeLease:
        deadline = time.monotonic() + (WAIT_S if timeout is None else timeout)
        with self._cond:
            while True:
                if self.closed:
                    raise PipelineError("the server pool is closed")
                idle = [n for n, s in self._slots.items() if s["state"] is ServerState.IDLE]
                if idle:
                    name = min(idle, key=lambda n: self._slots[n]["idle"])
                    self._slots[name]["state"] = ServerState.LEASED
                    self.leases.append(name)
                    return FakeLease(self, self._server(name))
                if all(s["state"] is ServerState.RETIRED for s in self._slots.values()):
                    raise PoolExhaustedError("every server is retired")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no server became free")
                self._cond.wait(min(remaining, 0.05))

    def _server(self, name: str) -> PoolServer:
        return PoolServer(
            name=name,
            url=self._slots[name]["url"],
            path_mapper=PathMapper(),
            simulated=True,
            remote=False,
            port=None,
            pid=None,
            generation=1,
        )

    def _give_back(self, name: str, error: BaseException | None) -> None:
        with self._cond:
            if error is not None:
                self.failures.append((name, type(error).__name__))
            slot = self._slots[name]
            if slot["state"] is ServerState.LEASED:
                slot["state"] = ServerState.IDLE
                slot["idle"] = next(self._tick)
            self._cond.notify_all()

    def wait_for_failures(self, count: int, timeout: float = WAIT_S) -> None:
        """Block until ``count`` failures were reported (AssertionError after ``timeout``)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.failures) >= count, timeout):
                raise AssertionError(f"{count} failure report(s) expected, got {self.failures}")

    def retire(self, name: str) -> None:
        with self._cond:
            self._slots[name]["state"] = ServerState.RETIRED
            self._cond.notify_all()

    def status(self) -> tuple[ServerStatus, ...]:
        with self._cond:
            return tuple(
                ServerStatus(
                    name=name, state=slot["state"], url=slot["url"], port=None, pid=None,
                    remote=slot.get("remote", False), builds=0, total_builds=0, restarts=0,
                    generation=1,
                    retired_reason=None, last_error=None,
                )
                for name, slot in self._slots.items()
            )

    def wait_for(
        self, predicate: Callable[[tuple[ServerStatus, ...]], bool], timeout: float
    ) -> tuple[ServerStatus, ...]:
        deadline = time.monotonic() + timeout
        while True:
            snapshot = self.status()
            if predicate(snapshot):
                return snapshot
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("pool did not reach the expected state")
            with self._cond:
                self._cond.wait(min(remaining, 0.05))

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


def run(plan: Plan, pool: FakePool, output: Path, *, clock: Clock = SYSTEM_CLOCK,
        **options: Any) -> RunResult:
    """Run ``plan`` on ``clock`` with test-sized options (:data:`STEP_LIMIT_S` unless given),
    writing each build's report as the commands do."""
    options.setdefault("step_timeout_s", STEP_LIMIT_S)
    options.setdefault("build_report", write_build_report)
    options.setdefault("cancel_grace_s", 2.0)
    return run_plan(plan, pool, options=RunOptions(output_root=output, **options),
                    reporter=NullReporter(), clock=clock)


def run_held(plan: Plan, farm: SimFarm, output: Path, release: threading.Event, *,
             bound_s: float, held_in: str, **options: Any) -> RunResult:
    """Run ``plan`` on the farm's servers, one attempt a build, on a thread that a server may
    hold in a request (``held_in``, for the failure's message): wait up to ``bound_s``, then
    set ``release`` (the held request may end, whatever the run did) and wait again. Fails
    the test when the run had not ended by the first bound: the step's limit did not hold."""
    results: list[RunResult] = []

    def run_it() -> None:
        results.append(run(plan, FakePool([s.url for s in farm.servers]), output,
                           max_build_attempts=1, **options))

    runner = threading.Thread(target=run_it, name="held-run", daemon=True)
    runner.start()
    try:
        runner.join(bound_s)
        ended_in_time = not runner.is_alive()
    finally:
        release.set()
        runner.join(bound_s)
    step_s = options.get("step_timeout_s")
    assert ended_in_time, (f"the run still waited for {held_in} after {bound_s:g} s: the "
                           f"step's {step_s} s limit did not bound it")
    return results[0]


def only_attempt_timed_out(result: RunResult, logs: Sequence[dict[str, Any]]) -> BuildOutcome:
    """The run's one build, after checking that its one attempt, on server-1, failed on a
    request that timed out (its outcome and its ``build_attempt_failed`` event)."""
    (outcome,) = result.outcomes
    assert outcome.status is BuildStatus.FAILED
    assert [(a.server, a.error_type) for a in outcome.attempts] == [
        ("server-1", "ServerTimeoutError")]
    (failed,) = iter_events(logs, "build_attempt_failed")
    assert failed["error_type"] == "ServerTimeoutError"
    return outcome


@contextmanager
def capture_bound_logs() -> Iterator[list[dict[str, Any]]]:
    """Like ``structlog.testing.capture_logs``, with the contextvars (run_id, build, server,
    step) merged into each captured event."""
    capture = LogCapture()
    old = structlog.get_config()
    structlog.configure(processors=[merge_contextvars, capture])
    try:
        yield capture.entries
    finally:
        structlog.configure(**old)


def iter_events(logs: Sequence[dict[str, Any]], name: str) -> Iterator[dict[str, Any]]:
    return (e for e in logs if e.get("event") == name)



def staged_name(sent: str, output: Path) -> str:
    """The name of a file a server was asked to write, checked to be where the executor
    stages saves: ``<output>/.preform-staging/<one short folder per save>/<name>``, that
    save's folder and the file naming its owner removed since. (The file itself then goes to
    its output path, ``<output>/.../<name>``, which the caller checks.)"""
    path = Path(sent)
    staging = output.resolve() / STAGING_FOLDER
    assert path.parent.parent == staging, f"{sent} is not in the staging folder"
    assert len(path.parent.name) == 8, f"{sent}: the save's folder is not 8 characters"
    assert not path.parent.exists(), f"{path.parent} is left after the save"
    owner = staging / f"{path.parent.name}.{process_folder_name(ProcessIdentity.current())}"
    assert not owner.exists(), f"{owner} is left after the save"
    return path.name

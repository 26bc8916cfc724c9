"""The final build lays out at once and waits for the others' layouts only after its own:
what its server receives, what it ends with, and that no carried model is lost."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import structlog
from executor_support import (
    STEP_LIMIT_S,
    WAIT_S,
    FakePool,
    ScriptedFaults,
    SimFarm,
    five_boxes,
    iter_events,
    plan_for,
    plan_without_rafts,
    run,
    write_box,
    write_recipe,
)
from structlog.contextvars import merge_contextvars
from structlog.testing import LogCapture
from structlog.typing import EventDict, WrappedLogger
from test_executor_run_events import CARRY_STEPS, _saved_models
from test_executor_steps_requests import ReceivingEngine, _serve

from preform_pipeline.clock import SYSTEM_CLOCK, Clock, ManualClock
from preform_pipeline.executor import BuildStatus, RunResult
from preform_pipeline.plan.builds import Plan
from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.layout import MODELS_DO_NOT_FIT
from preform_pipeline.simulator.protocol import ProgressCallback, SimError

__all__ = ["watched_logs"]


@contextmanager
def watched_logs(
    event: str, **fields: Any
) -> Iterator[tuple[list[dict[str, Any]], threading.Event]]:
    """Capture log events with their contextvars merged (as ``capture_bound_logs``), and an
    event set as soon as one named ``event`` with these ``fields`` is logged."""
    capture = LogCapture()
    seen = threading.Event()

    def watch(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
        if event_dict.get("event") == event and all(
            event_dict.get(key) == value for key, value in fields.items()
        ):
            seen.set()
        return event_dict

    old = structlog.get_config()
    structlog.configure(processors=[merge_contextvars, watch, capture])
    try:
        yield capture.entries, seen
    finally:
        structlog.configure(**old)


def _hold_before_layout(
    build: str, until: threading.Event, held: threading.Event, *, nth: int = 4
) -> Callable[[str], str | None]:
    """A ``stop_reason`` that holds ``build`` before its ``nth`` step (its layout: the fourth
    in CARRY_STEPS, after create_scene, import_models and auto_support) until ``until``."""
    asked: list[str] = []

    def ask(name: str) -> str | None:
        asked.append(name)
        if name == build and asked.count(name) == nth:
            held.set()
            until.wait(WAIT_S * 2)
        return None

    return ask


def _run_holding(
    plan: Plan, farm: SimFarm, out: Path, build: str, until: threading.Event, problem: str,
    *, step_timeout_s: float, clock: Clock = SYSTEM_CLOCK,
) -> tuple[RunResult, list[str]]:
    """Run ``plan`` on ``clock`` with ``build`` held before its layout until ``until`` is
    set; the result, and what went wrong: ``build`` never held, or ``problem`` (``until``
    not set in time). The hold ends either way."""
    release, held = threading.Event(), threading.Event()
    problems: list[str] = []

    def watch() -> None:
        if not held.wait(WAIT_S):
            problems.append(f"{build} never reached its layout")
        elif not until.wait(WAIT_S):
            problems.append(problem)
        release.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    result = run(plan, FakePool([s.url for s in farm.servers]), out, clock=clock,
                 step_timeout_s=step_timeout_s,
                 stop_reason=_hold_before_layout(build, release, held))
    watcher.join(WAIT_S)
    return result, problems


def _move_on(clock: ManualClock, by_s: float, until: threading.Event) -> None:
    """Move ``clock`` on by ``by_s`` every tenth of a second until ``until`` is set (or
    ``WAIT_S`` has passed): a wait on that clock that starts meanwhile runs out at the
    next move."""
    for _ in range(int(WAIT_S * 10)):
        if until.wait(0.1):
            return
        clock.advance(by_s)


def _two_receiving_servers(farm: SimFarm) -> list[ReceivingEngine]:
    engines = []
    for index in range(2):
        engine = ReceivingEngine(scene_cache_size=100, fleet_dir=farm.fleet_dir,
                                 work_dir=farm.folder / f"work{index}")
        _serve(farm, engine)
        engines.append(engine)
    return engines


def _engine_of(result: RunResult, name: str, engines: list[ReceivingEngine]) -> ReceivingEngine:
    server = next(o.server for o in result.outcomes if o.name == name)
    assert server is not None
    return engines[int(server.removeprefix("server-")) - 1]


def _prepare_ops(engine: ReceivingEngine) -> list[str]:
    return [op for op, _ in engine.received
            if op in ("import_model", "auto_support", "auto_layout", "save_form_file")]


def _four_and_one(tmp_path: Path, steps: str = CARRY_STEPS) -> Plan:
    """Five 90 x 60 mm boxes planned without rafts: unit-001 holds four (three fit with
    their rafts, so it carries one on) and unit-002, the final build, one."""
    plan = plan_without_rafts(write_recipe(tmp_path, steps), five_boxes(tmp_path))
    assert [(b.name, len(b.models)) for b in plan.builds] == [("unit-001", 4),
                                                                ("unit-002", 1)]
    return plan


class TestFinalBuildLaysOutAtOnce:
    """The final build does not wait for another build's layout before its own."""

    def test_the_final_build_lays_out_while_the_other_is_held_before_its_layout(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # Four 90 x 60 mm boxes planned without rafts: unit-001 carries one of them on;
        # unit-002 (one box) is the final build.
        plan = _four_and_one(tmp_path)
        engines = _two_receiving_servers(farm)
        with watched_logs("step_finished", build="unit-002", kind="auto_layout") as (
            logs, final_laid_out
        ):
            result, problems = _run_holding(
                plan, farm, tmp_path / "out", "unit-001", final_laid_out,
                "the final build waited for unit-001 before its layout",
                step_timeout_s=WAIT_S * 3)
        assert problems == []
        assert result.ok
        assert [(o.name, len(o.models), o.children) for o in result.outcomes] == [
            ("unit-001", 3, ()), ("unit-002", 2, ())]
        # The box unit-001 carried after the final build had laid out is in its saved form.
        saved = [name for o in result.outcomes for name in _saved_models(o)]
        assert sorted(saved) == [f"box{i}" for i in range(5)]
        (waited,) = iter_events(logs, "final_build_waited")
        assert (waited["build"], waited["taken"]) == ("unit-002", 1)
        # The final build's server: its own box prepared and laid out, then the carried
        # box imported, supported on its own, and the whole scene laid out again, then saved
        # (the recipe's form; the first save is the checkpoint after auto_support).
        engine = _engine_of(result, "unit-002", engines)
        assert _prepare_ops(engine) == [
            "import_model", "auto_support", "save_form_file",  # its support checkpoint
            "auto_layout", "import_model", "auto_support", "auto_layout", "save_form_file"]
        late_id = engine.answers("import_model")[1]["id"]
        assert engine.bodies("auto_support")[1] == {"models": [late_id]}
        final = next(o for o in result.outcomes if o.name == "unit-002")
        assert final.layout_calls == 2


class TestCarryBeforeTheFinalLayout:
    """A carry that reaches the final build before its layout is laid out with it once."""

    def test_a_carry_taken_in_before_the_layout_needs_no_second_layout(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        plan = _four_and_one(tmp_path)
        engines = _two_receiving_servers(farm)
        # The final build is held before its layout until unit-001 has carried its box on.
        with watched_logs("overflow_joined_build", into="unit-002") as (logs, joined):
            result, problems = _run_holding(
                plan, farm, tmp_path / "out", "unit-002", joined,
                "unit-001 never carried its box into the final build",
                step_timeout_s=WAIT_S * 3)
        assert problems == []
        assert [(o.name, len(o.models)) for o in result.outcomes] == [
            ("unit-001", 3), ("unit-002", 2)]
        engine = _engine_of(result, "unit-002", engines)
        assert _prepare_ops(engine) == [
            "import_model", "auto_support", "save_form_file",  # its support checkpoint
            "import_model", "auto_support", "auto_layout", "save_form_file"]
        (taken,) = iter_events(logs, "overflow_taken_in")
        assert taken["build"] == "unit-002"
        # Nothing came after its layout: the wait there took nothing in.
        (waited,) = iter_events(logs, "final_build_waited")
        assert waited["taken"] == 0


class TestNothingCarried:
    """When no layout carries anything, every build is laid out exactly once."""

    def test_no_layout_is_requested_twice(self, tmp_path: Path, farm: SimFarm) -> None:
        # Planned with their rafts, five 90 x 60 mm boxes make two builds that both fit.
        boxes = five_boxes(tmp_path)
        plan = plan_for(write_recipe(tmp_path, CARRY_STEPS), boxes)
        assert len(plan.builds) == 2
        engines = _two_receiving_servers(farm)
        with watched_logs("final_build_waited") as (logs, waited_event):
            result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out",
                         step_timeout_s=WAIT_S * 3)
        assert result.ok and waited_event.is_set()
        assert [len(o.models) for o in result.outcomes] == [len(b.models) for b in plan.builds]
        assert [o.layout_calls for o in result.outcomes] == [1, 1]
        assert [op for e in engines for op, _ in e.received if op == "auto_layout"] == [
            "auto_layout", "auto_layout"]
        assert list(iter_events(logs, "overflow_taken_in")) == []
        (waited,) = iter_events(logs, "final_build_waited")
        assert waited["taken"] == 0


class TestCarryAfterTheIntakeClosed:
    """A carry that comes after the final build has closed its intake and saved becomes a
    build of its own: nothing is lost."""

    def test_the_late_carry_runs_as_a_new_build(self, tmp_path: Path, farm: SimFarm) -> None:
        plan = _four_and_one(tmp_path)
        farm.add()
        farm.add()
        # unit-001 is held before its layout until the final build has ended: the final
        # build's wait for it runs out and closes. That wait is bounded by the step deadline
        # on the run's clock, which the test moves on past it: the wait ends at once, while
        # every step keeps a deadline no loaded machine reaches (a real 2 s deadline here
        # once cut a step short under load and failed the run).
        clock = ManualClock()
        with watched_logs("build_finished", build="unit-002") as (logs, final_ended):
            mover = threading.Thread(target=_move_on, args=(clock, STEP_LIMIT_S, final_ended))
            mover.start()
            result, problems = _run_holding(
                plan, farm, tmp_path / "out", "unit-001", final_ended,
                "the final build did not end while unit-001 was held",
                step_timeout_s=STEP_LIMIT_S, clock=clock)
            mover.join(WAIT_S)
        assert problems == []
        assert result.ok
        assert [(o.name, o.status, len(o.models), o.children) for o in result.outcomes] == [
            ("unit-001", BuildStatus.SUCCEEDED, 3, ("unit-001+1",)),
            ("unit-002", BuildStatus.SUCCEEDED, 1, ()),
            ("unit-001+1", BuildStatus.SUCCEEDED, 1, ()),
        ]
        saved = [name for o in result.outcomes for name in _saved_models(o)]
        assert sorted(saved) == [f"box{i}" for i in range(5)]
        (waited,) = iter_events(logs, "final_build_waited")
        assert (waited["build"], waited["taken"]) == ("unit-002", 0)
        (added,) = iter_events(logs, "overflow_build_added")
        assert (added["build"], added["carry"]) == ("unit-001", "unit-001+1")


@dataclass
class _HangsTheFarmsFirstOrient(ScriptedFaults):
    """Each server's faults, sharing ``first``: the farm's first ``auto_orient``, on
    whichever server, hangs until that server shuts down; every other one runs."""

    first: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(1))

    def during_operation(self, operation_id: str, progress: ProgressCallback | None) -> None:
        if operation_id == "auto_orient" and self.first.acquire(blocking=False):
            self.stop.wait()
            raise SimError(503, "SHUTTING_DOWN", "hung operation released at shutdown")
        super().during_operation(operation_id, progress)


class TestCarryTakenInAfterARequestLimit:
    """The final build's retry polls the step kind the request limit cut short, for the
    models other builds carry into it as for its own."""

    def test_the_carried_models_orientation_is_polled_on_the_retry(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # CARRY_STEPS with an orientation first: unit-001 (four boxes) carries one box
        # into the final build, unit-002 (one box). unit-001 is held before its orientation
        # until unit-002 has given up its first attempt, whose orientation (the farm's
        # first) outlived the 2 s request limit; unit-002's retry polls its orientation.
        # The steps' own limit is the run's usual (out of reach on a loaded machine): the
        # final build waits for unit-001's layout no longer than a step may take.
        plan = _four_and_one(tmp_path, CARRY_STEPS.replace(
            "steps:\n", "steps:\n  - auto_orient\n", 1))
        first = threading.Semaphore(1)
        for _ in range(3):
            farm.add(_HangsTheFarmsFirstOrient(first=first))
        held = threading.Event()
        with watched_logs("build_retrying", build="unit-002") as (logs, retrying):
            result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out",
                         step_timeout_s=STEP_LIMIT_S, request_timeout_s=2.0,
                         # create_scene, import_models, then its orientation
                         stop_reason=_hold_before_layout("unit-001", retrying, held, nth=3))
        assert held.is_set() and retrying.is_set()
        assert result.ok, [o.reason for o in result.outcomes]
        final = result.outcome("unit-002")
        assert [a.error_type for a in final.attempts] == ["ServerTimeoutError", None]
        assert len(final.models) == 2
        (taken,) = iter_events(logs, "overflow_taken_in")
        assert taken["build"] == "unit-002"
        # On the retry's server: its own box's orientation, then the carried box's, both
        # started with ``?async=true`` and polled, not sent as one blocking request.
        retry = farm.servers[int(final.attempts[1].server.removeprefix("server-")) - 1]
        orients = [e for e in retry.exchanges if e.operation_id == "auto_orient"]
        assert [e.async_operation is not None for e in orients] == [True, True]


class TestAFinalBuildThatEndsBeforeTakingItsCarries:
    """Carries given to a final build that then ends before taking them in go on."""

    def test_a_carry_of_a_final_build_stopped_before_its_layout_is_not_lost(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # unit-001 carries one of its four boxes into the final build, unit-002, which its
        # node then stops before its layout (the hot folder does so when a lease is lost).
        plan = _four_and_one(tmp_path)
        farm.add()
        farm.add()
        asked: list[str] = []

        def stop_the_final_once_it_holds_the_carry(build: str) -> str | None:
            asked.append(build)
            if build == "unit-002" and asked.count(build) == 4:  # before its layout
                assert joined.wait(WAIT_S), "unit-001 never carried its box into unit-002"
                return "its node lost the lease"
            return None

        with watched_logs("overflow_joined_build", into="unit-002") as (logs, joined):
            result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out",
                         step_timeout_s=WAIT_S * 3,
                         stop_reason=stop_the_final_once_it_holds_the_carry)
        final = result.outcome("unit-002")
        assert final.status is BuildStatus.CANCELLED
        assert final.reason == "its node lost the lease"
        # Every box is in exactly one build's outcome: the carried one in a build of its own.
        listed = sorted(m for o in result.outcomes for m in o.models)
        assert listed == [f"box{i}.stl" for i in range(5)]
        (added,) = iter_events(logs, "overflow_build_added")
        carry = result.outcome(added["carry"])
        assert carry.status is BuildStatus.SUCCEEDED and len(carry.models) == 1
        assert final.children == (added["carry"],)
        saved = [name for o in result.outcomes if o.status is BuildStatus.SUCCEEDED
                 for name in _saved_models(o)]
        assert sorted(saved) == [f"box{i}" for i in range(5) if f"box{i}.stl" not in
                                 final.models]


class _CountsImports(SimEngine):
    """The simulator's engine, counting the models imported into each scene."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._imports: Counter[str] = Counter()
        self.lock = threading.Lock()

    def imported(self, operation_id: str, params: dict[str, str]) -> int:
        """The models imported into this request's scene so far (this request counted)."""
        scene = params.get("scene_id", "")
        with self.lock:
            if operation_id == "import_model":
                self._imports[scene] += 1
            return self._imports[scene]


class _HoldsLoneBoxLayouts(_CountsImports):
    """The simulator's engine, holding the layout of a scene of one imported model until
    ``release`` is set (the models of the other scenes lay out as they come)."""

    def __init__(self, release: threading.Event, **options: Any) -> None:
        super().__init__(**options)
        self.release = release

    def call(self, operation_id: str, params: dict[str, str], body: Any,
             progress: ProgressCallback | None = None) -> Any:
        imported = self.imported(operation_id, params)
        if operation_id == "auto_layout" and imported == 1:
            self.release.wait(WAIT_S)
        return super().call(operation_id, params, body, progress)


class TestACarryIntoAnotherRunningBuild:
    """A carry may join a build other than the final one that has not finished laying out."""

    @staticmethod
    def _three_builds(tmp_path: Path) -> Plan:
        # unit-001: four 90 x 60 mm boxes planned without rafts (three fit with them);
        # unit-002 and unit-003: one box each, room for the carried one.
        first = _four_and_one(tmp_path)
        extra = plan_without_rafts(tmp_path / "recipe.yaml",
                                   [write_box(tmp_path / "n", "box5", 90, 60, 10)])
        third = replace(extra.builds[0], index=3, name="unit-003")
        plan = replace(first, builds=(*first.builds, third))
        assert [(b.name, len(b.models)) for b in plan.builds] == [
            ("unit-001", 4), ("unit-002", 1), ("unit-003", 1)]
        return plan

    @staticmethod
    def _joined_one_small_build(
        result: RunResult, logs: list[dict[str, Any]], joined: threading.Event
    ) -> str:
        """The one-box build unit-001's carry joined while it ran (asserted: it took the
        carry in, no build was added, every box is saved once)."""
        assert joined.is_set()
        assert result.ok
        (join,) = iter_events(logs, "overflow_joined_build")
        assert join["build"] == "unit-001" and join["into"] in ("unit-002", "unit-003")
        assert list(iter_events(logs, "overflow_build_added")) == []
        (taken,) = iter_events(logs, "overflow_taken_in")
        assert taken["build"] == join["into"]
        saved = [name for o in result.outcomes for name in _saved_models(o)]
        assert sorted(saved) == [f"box{i}" for i in range(6)]
        return str(join["into"])

    def test_a_carry_joins_a_running_build_held_before_its_layout(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        plan = self._three_builds(tmp_path)
        for _ in range(3):
            farm.add()
        asked: list[str] = []

        def hold_the_small_builds_until_a_carry_joined_one(build: str) -> str | None:
            asked.append(build)
            if build != "unit-001" and asked.count(build) == 4:  # before its layout
                joined.wait(WAIT_S)
            return None

        with watched_logs("overflow_joined_build", running=True) as (logs, joined):
            result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out",
                         step_timeout_s=WAIT_S * 3,
                         stop_reason=hold_the_small_builds_until_a_carry_joined_one)
        into = self._joined_one_small_build(result, logs, joined)
        assert result.outcome(into).layout_calls == 1  # taken in before its layout
        assert sorted(len(o.models) for o in result.outcomes) == [1, 2, 3]

    def test_a_carry_that_comes_during_its_layout_is_laid_out_with_it_again(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        plan = self._three_builds(tmp_path)
        with watched_logs("overflow_joined_build", running=True) as (logs, joined):
            # The one-box builds' layouts wait on their servers until a carry has joined one.
            for index in range(3):
                _serve(farm, _HoldsLoneBoxLayouts(joined, scene_cache_size=100,
                                                  fleet_dir=farm.fleet_dir,
                                                  work_dir=farm.folder / f"work{index}"))
            result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out",
                         step_timeout_s=WAIT_S * 3)
        into = self._joined_one_small_build(result, logs, joined)
        assert result.outcome(into).layout_calls == 2  # laid out again with it


class _FailsTheFinalsLayoutAfterItsOverflow(_CountsImports):
    """The simulator's engine, except for the scene of two imported models (the final
    build's): its first layout waits until ``joined`` is set, then says one model does not
    fit; its second (with that model removed) fails with a server error that is not an
    overflow. Every other scene lays out as the simulator does."""

    def __init__(self, joined: threading.Event, **options: Any) -> None:
        super().__init__(**options)
        self.joined = joined
        self._layouts: Counter[str] = Counter()

    def call(self, operation_id: str, params: dict[str, str], body: Any,
             progress: ProgressCallback | None = None) -> Any:
        imported = self.imported(operation_id, params)
        finals = operation_id == "auto_layout" and imported == 2
        with self.lock:
            if finals:
                self._layouts[params.get("scene_id", "")] += 1
            nth = self._layouts[params.get("scene_id", "")]
        if finals and nth == 1:
            self.joined.wait(WAIT_S)
            raise SimError(400, MODELS_DO_NOT_FIT,
                           "1 of 2 models does not fit the build platform; "
                           "the scene is unchanged")
        if finals:
            raise SimError(400, "LAYOUT_ENGINE_FAILED", "the layout engine stopped")
        return super().call(operation_id, params, body, progress)


class TestAFinalBuildThatFailsAfterItsOwnOverflow:
    """The final build's own overflow and the carries it never took in each go on as a
    build of their own, under different names."""

    def test_its_carry_and_its_untaken_carries_get_builds_of_their_own(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # unit-001 (four boxes; three fit with rafts) carries a box into the final build,
        # unit-002 (two boxes), while unit-002's first layout is under way. That layout
        # then carries one of unit-002's boxes on, and its layout without that box fails:
        # unit-002 ends with its own carry and with unit-001's box never taken in.
        plan = plan_without_rafts(
            write_recipe(tmp_path, CARRY_STEPS),
            [*five_boxes(tmp_path), write_box(tmp_path / "m", "box5", 90, 60, 10)])
        assert [(b.name, len(b.models)) for b in plan.builds] == [("unit-001", 4),
                                                                    ("unit-002", 2)]
        with watched_logs("overflow_joined_build", into="unit-002") as (logs, joined):
            for index in range(2):
                _serve(farm, _FailsTheFinalsLayoutAfterItsOverflow(
                    joined, scene_cache_size=100, fleet_dir=farm.fleet_dir,
                    work_dir=farm.folder / f"work{index}"))
            result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out",
                         step_timeout_s=WAIT_S * 3, max_build_attempts=1)
        assert joined.is_set()
        final = result.outcome("unit-002")
        assert final.status is BuildStatus.FAILED
        added = {e["carry"]: e for e in iter_events(logs, "overflow_build_added")}
        assert sorted(added) == ["unit-002+1", "unit-002+2"]
        assert sorted(final.children) == ["unit-002+1", "unit-002+2"]
        # Every box is in exactly one build's outcome, each carried one in a build that
        # printed it.
        listed = sorted(m for o in result.outcomes for m in o.models)
        assert listed == [f"box{i}.stl" for i in range(6)]
        for name in added:
            carry = result.outcome(name)
            assert carry.status is BuildStatus.SUCCEEDED and len(carry.models) == 1
        saved = [name for o in result.outcomes if o.status is BuildStatus.SUCCEEDED
                 for name in _saved_models(o)]
        assert len(saved) == 5  # all but the box the failed build kept

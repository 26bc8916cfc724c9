"""What a run tells the person watching it: its log events and its progress lines, for a
build that succeeds, one whose step fails, one that resumes from its checkpoint, one that is
split, a cancel and a stop."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections import Counter
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import test_executor_runner as runner_tests
from executor_support import (
    STEP_LIMIT_S,
    FakePool,
    ScriptedFaults,
    SimFarm,
    capture_bound_logs,
    five_boxes,
    iter_events,
    plan_for,
    plan_without_rafts,
    write_box,
    write_recipe,
)

from preform_pipeline.clock import SYSTEM_CLOCK
from preform_pipeline.executor import (
    BuildOutcome,
    BuildStatus,
    NullReporter,
    PlainReporter,
    Runner,
    RunOptions,
    RunResult,
    run_plan,
)
from preform_pipeline.plan.builds import Plan
from preform_pipeline.plan.graph import compile_graph
from preform_pipeline.report import write_build_report
from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.protocol import SimError
from preform_pipeline.verify.tracking import PrintTracking

STEPS = """\
steps:
  - auto_support
  - auto_layout
  - save_form
"""

#: Boxes of 90 x 60 mm: four fit a Form 4 platform bare, three with their rafts; one
#: layout attempt, and what does not fit is carried on.
CARRY_STEPS = runner_tests.TestLayoutOverflow.BOXES.format(attempts=1, overflow="split")


class TickingClock:
    """The system clock, except that each monotonic reading is 12.3456 ms later than the
    one before: durations then have digits below the millisecond."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._now = 1000.0

    def monotonic(self) -> float:
        with self._lock:
            self._now += 0.0123456
            return self._now

    def now(self) -> datetime:
        return SYSTEM_CLOCK.now()

    def sleep(self, seconds: float) -> None:
        SYSTEM_CLOCK.sleep(seconds)


def _run(
    plan: Plan, farm: SimFarm, output: Path, *, clock: Any = SYSTEM_CLOCK, **options: Any
) -> tuple[RunResult, list[str]]:
    """Run ``plan`` on the farm's servers with the plain reporter; the result and its lines."""
    stream = io.StringIO()
    options.setdefault("step_timeout_s", STEP_LIMIT_S)
    result = run_plan(
        plan, FakePool([s.url for s in farm.servers]),
        options=RunOptions(output_root=output, run_id="run-1", **options),
        reporter=PlainReporter(stream), clock=clock,
    )
    return result, stream.getvalue().splitlines()


def _boxes(folder: Path, count: int, size: float = 10) -> list[Path]:
    return [write_box(folder, f"box{i}", size, size, size) for i in range(count)]


def _run_logged(
    tmp_path: Path, farm: SimFarm, steps: str, boxes: int = 1, **options: Any
) -> tuple[RunResult, list[str], list[dict[str, Any]]]:
    """Run ``boxes`` 10 mm boxes with the recipe ``steps`` (on one plain server unless the
    farm has some): the result, its progress lines and its log events."""
    plan = plan_for(write_recipe(tmp_path, steps), _boxes(tmp_path / "m", boxes))
    if not farm.servers:
        farm.add()
    with capture_bound_logs() as logs:
        result, lines = _run(plan, farm, tmp_path / "out", **options)
    return result, lines, logs


def _saved_models(outcome: BuildOutcome) -> list[str]:
    """The names of the models in the build's saved .form (the simulator's manifest)."""
    form = next(p for p in outcome.outputs if p.suffix == ".form")
    with zipfile.ZipFile(form) as archive:
        return [m["name"] for m in json.loads(archive.read("manifest.json"))["models"]]


class _StepOrder:
    """A ``stop_reason`` that stops no build but holds builds before their steps: a run asks
    it before each step of each build (the seam a node's lease check uses), and
    :meth:`before` keeps a build before its ``nth`` step until another build has been asked
    for its ``mth`` (so has done every step before that one), or has ended without (handed
    to :meth:`ended`, the run's ``build_report`` seam, called as each build ends)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._asked: Counter[str] = Counter()
        self._ended: set[str] = set()
        self._holds: dict[tuple[str, int], tuple[str, int]] = {}
        #: A hold whose build ended, or ran past the run's step limit, without getting there.
        self.problems: list[str] = []

    def before(self, build: str, nth: int, *, until: tuple[str, int]) -> None:
        self._holds[(build, nth)] = until

    def ended(self, outcome: BuildOutcome, *_: object, **__: object) -> None:
        with self._cond:
            self._ended.add(outcome.name)
            self._cond.notify_all()

    def ask(self, build: str) -> str | None:
        with self._cond:
            self._asked[build] += 1
            self._cond.notify_all()
            nth = self._asked[build]
            if (build, nth) in self._holds:
                other, mth = self._holds[(build, nth)]
                # Held as long as the other build goes on: each of its steps may take the
                # run's step limit on a loaded machine, so no shorter bound tells a slow
                # step from a wrong order; a build that ends without getting there does.
                self._cond.wait_for(lambda: self._asked[other] >= mth or other in self._ended,
                                    STEP_LIMIT_S)
                if self._asked[other] < mth:
                    self.problems.append(f"{build} was held before its step {nth} until "
                                         f"{other} reached its step {mth}, in vain")
        return None


class TestSucceededBuild:
    """Each step is logged and printed as it starts and ends, with the run's totals."""

    def test_events_and_lines_of_a_build_that_succeeds(self, tmp_path: Path, farm: SimFarm) -> None:
        result, lines, logs = _run_logged(tmp_path, farm, STEPS, 2, clock=TickingClock())
        assert result.ok
        steps = ["create_scene", "import_models", "auto_support", "auto_layout", "save_form"]
        assert lines[0] == "run run-1: 1 build, 2 models on 1 simulated server"
        assert lines[1] == "[unit-001] started on server-1: 5 steps"
        assert lines[2:7] == [f"[unit-001] step {i}/5 {s}" for i, s in enumerate(steps, 1)]
        (started,) = iter_events(logs, "run_started")
        assert {k: started[k] for k in ("run_id", "recipe", "builds", "models", "rejected",
                                        "servers", "simulated", "dry_run")} == {
            "run_id": "run-1", "recipe": "unit", "builds": 1, "models": 2, "rejected": 0,
            "servers": 1, "simulated": True, "dry_run": False,
        }
        (build,) = iter_events(logs, "build_started")
        assert (build["models"], build["steps"], build["parent"]) == (2, 5, None)
        begun = list(iter_events(logs, "step_started"))
        assert [(e["kind"], e["index"], e["of"]) for e in begun] == [
            (s, i, 5) for i, s in enumerate(steps, 1)
        ]
        ended = list(iter_events(logs, "step_finished"))
        assert [e["kind"] for e in ended] == steps
        # Durations are logged to the millisecond (the clock has finer digits).
        assert all(e["elapsed_s"] > 0 and e["elapsed_s"] == round(e["elapsed_s"], 3)
                   for e in ended)
        (saved,) = iter_events(logs, "checkpoint_saved")
        assert saved["after_step"] == "auto_support"
        assert Path(saved["checkpoint"]).name == "after-auto_support.form"
        (finished,) = iter_events(logs, "build_finished")
        assert {k: finished[k] for k in ("status", "reason", "attempts", "server")} == {
            "status": "succeeded", "reason": None, "attempts": 1, "server": "server-1",
        }
        assert finished["duration_s"] == round(finished["duration_s"], 3) > 0
        (closing,) = iter_events(logs, "run_finished")
        assert {k: closing[k] for k in ("ok", "cancelled", "builds", "succeeded", "failed")} == {
            "ok": True, "cancelled": False, "builds": 1, "succeeded": 1, "failed": 0,
        }
        # The run's time is the time it ran (the clock started at 1000 s).
        assert 0 < result.wall_s < 100 and closing["wall_s"] == round(result.wall_s, 3)
        # The finished build's scene is deleted: a server keeps only so many in memory.
        engine = farm.servers[0].engine
        assert isinstance(engine, SimEngine) and engine.scenes.ids() == []

    def test_a_dry_run_says_so_and_never_prints(self, tmp_path: Path, farm: SimFarm) -> None:
        result, _, logs = _run_logged(
            tmp_path, farm, "steps:\n  - print:\n      printer: SimulatedForm4-1\n",
            dry_run=True,
        )
        assert [(o.dry_run, o.job_id) for o in result.outcomes] == [(True, None)]
        assert [e["reason"] for e in iter_events(logs, "print_skipped")] == ["dry run"]
        assert farm.jobs() == []


    def test_a_build_report_that_cannot_be_written_is_a_warning_and_the_build_stands(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # A file where the folder of the build's report (outputs.report) goes. (A folder at
        # the report's own name no longer fails it: since session 42 the report takes the
        # next free name, as every output does.)
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "reports").write_text("not a folder\n", encoding="utf-8")
        result, _, logs = _run_logged(
            tmp_path, farm, "outputs:\n  report: reports/{build}.json\n"
            "steps:\n  - auto_layout\n  - save_form\n",
            started_at=datetime(2026, 1, 2, 9, 30), build_report=write_build_report,
        )
        assert [o.status for o in result.outcomes] == [BuildStatus.SUCCEEDED]
        assert (tmp_path / "out" / "2026-01-02" / "unit-001.form").is_file()
        (failed,) = iter_events(logs, "build_report_failed")
        assert failed["build"] == "unit-001" and "reports" in failed["error"]


class TestFailedStep:
    """A step that fails is logged with its kind and error, and the build with its reason."""

    def test_an_estimate_over_the_limit_is_logged_as_the_failing_step(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        result, lines, logs = _run_logged(
            tmp_path, farm, "steps:\n  - auto_layout\n  - estimate:\n      max_print_time_s: 1\n",
            clock=TickingClock(),
        )
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.FAILED
        (failed,) = iter_events(logs, "step_failed")
        assert (failed["kind"], failed["step"], failed["error_type"]) == (
            "estimate", "estimate", "StepFailure"
        )
        assert failed["error"] == outcome.reason
        assert failed["elapsed_s"] == round(failed["elapsed_s"], 3) > 0
        (closing,) = iter_events(logs, "run_finished")
        assert (closing["ok"], closing["succeeded"], closing["failed"]) == (False, 0, 1)
        assert lines[-2].startswith("[unit-001] failed on server-1 in ")
        assert lines[-2].endswith(f": {outcome.reason} (1/1 build done)")

    def test_a_template_field_no_model_has_is_logged_with_its_error_type(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        result, _, logs = _run_logged(
            tmp_path, farm,
            "steps:\n  - label:\n      text: \"{case_id}\"\n      font_size_mm: 3\n"
            "      depth_mm: 0.5\n      placement:\n        face: front\n  - auto_layout\n",
        )
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.FAILED and outcome.attempts == ()
        (failed,) = iter_events(logs, "build_failed")
        assert (failed["error_type"], failed["reason"]) == ("TemplateError", outcome.reason)


    def test_a_form_path_no_build_can_fill_fails_before_any_server_is_used(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        result, _, _ = _run_logged(
            tmp_path, farm,
            "steps:\n  - auto_layout\n  - save_form\n  - screenshot\n"
            "outputs:\n  form: \"{build}-{case_id}.form\"\n"
            "batching:\n  max_models_per_build: 1\n",
        )
        (outcome,) = result.outcomes
        assert (outcome.status, outcome.attempts) == (BuildStatus.FAILED, ())
        assert "no value for field {case_id}" in (outcome.reason or "")
        assert farm.faults[0].seen == []


class TestOneServer:
    """On one server the builds run one after the other, and a print is logged with its
    printer, job name and job."""

    def test_the_second_build_starts_after_the_first_has_finished(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        result, _, logs = _run_logged(
            tmp_path, farm,
            "steps:\n  - auto_layout\n  - print:\n      printer: SimulatedForm4-1\n"
            "      job_name: \"job-{build}\"\nbatching:\n  max_models_per_build: 1\n",
            2,
        )
        assert result.ok
        order = [(e["event"], e["build"]) for e in logs
                 if e["event"] in ("build_started", "build_finished")]
        first, second = order[0][1], order[2][1]
        assert {first, second} == {"unit-001", "unit-002"}
        assert order == [("build_started", first), ("build_finished", first),
                         ("build_started", second), ("build_finished", second)]
        sending = [(e["printer"], e["job_name"]) for e in iter_events(logs, "print_sending")]
        assert sending == [("SimulatedForm4-1", f"job-{first}"),
                           ("SimulatedForm4-1", f"job-{second}")]
        sent = {e["build"]: e["job_id"] for e in iter_events(logs, "print_sent")}
        assert sent == {o.name: o.job_id for o in result.outcomes} and all(sent.values())


    def test_the_prints_handed_to_verification_carry_the_printers_job_ids(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        tracking = PrintTracking()
        result, _, _ = _run_logged(
            tmp_path, farm, "steps:\n  - print:\n      printer: SimulatedForm4-1\n",
            print_tracking=tracking,
        )
        (outcome,) = result.outcomes
        assert outcome.job_id and outcome.job_key
        assert [(p.build, p.key, p.printer, p.job_id) for p in tracking.sent] == [
            ("unit-001", outcome.job_key, "SimulatedForm4-1", outcome.job_id)
        ]
        assert [j["job_id"] for j in farm.jobs()] == [outcome.job_id]


class TestLayoutSpacing:
    """A layout retry never crowds models closer than the run's minimum spacing."""

    def test_a_minimum_at_the_recipes_spacing_leaves_no_retry(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # Two 150 x 57.8 mm boxes with rafts fit the platform at 1 mm spacing, not at 2 mm.
        boxes = [write_box(tmp_path / "m", f"box{i}", 150, 57.8, 10) for i in range(2)]
        steps = CARRY_STEPS.replace(
            "      model_spacing_mm: 2\n", "      model_spacing_mm: 2\n      lock_rotation: true\n"
        ).replace("  layout_attempts: 1\n  on_overflow: split\n",
                  "  allow_rotation: false\n  layout_attempts: 2\n  on_overflow: fail\n")
        recipe = write_recipe(tmp_path, steps)
        farm.add()
        with capture_bound_logs() as logs:
            result, _ = _run(plan_without_rafts(recipe, boxes), farm, tmp_path / "out",
                             min_layout_spacing_mm=2.0)
        (outcome,) = result.outcomes
        assert (outcome.status, outcome.layout_calls) == (BuildStatus.FAILED, 1)
        assert "after 1 layout attempt (last spacing 2 mm)" in (outcome.reason or "")
        assert list(iter_events(logs, "layout_retry")) == []


class TestResumedBuild:
    """A retry after a server fault says where it goes and that it resumed from the
    checkpoint."""

    def test_the_retry_and_the_resume_are_logged_and_printed(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        farm.add(ScriptedFaults(fail={"auto_layout": 1}))
        farm.add()
        result, lines, logs = _run_logged(tmp_path, farm, STEPS, 2)
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED
        (failed,) = iter_events(logs, "build_attempt_failed")
        assert (failed["attempt"], failed["error_type"], failed["checkpoint"]) == (
            1, "ServerInternalError", "auto_support"
        )
        (retrying,) = iter_events(logs, "build_retrying")
        assert (retrying["attempt"], retrying["where"]) == (2, "on another server")
        (resumed,) = iter_events(logs, "build_resumed")
        assert (resumed["after_step"], resumed["attempt"], resumed["server"]) == (
            "auto_support", 2, "server-2"
        )
        assert Path(resumed["checkpoint"]).name == "after-auto_support.form"
        retry_line = next(line for line in lines if "retrying" in line)
        assert retry_line.startswith(
            "[unit-001] retrying (attempt 2) on another server: autoLayout failed on "
            "server-1: server answered 500 "
        )
        assert "[unit-001] started on server-2 (attempt 2): 5 steps" in lines


class TestSplitBuild:
    """A pack that does not fit splits the build in two halves, each printed as it is
    added."""

    def test_an_overfull_pack_is_split_and_both_halves_run(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        head = (
            "name: fuse\nscene:\n  machine_type: FS30-1-0\n  material_code: FLP12G01\n"
            "  layer_thickness_mm: 0.11\nimport:\n  units: MILLIMETERS\n"
            "  repair_behavior: REPAIR\n"
        )
        recipe = write_recipe(
            tmp_path,
            "steps:\n  - auto_pack\n  - save_form\nbatching:\n  on_overflow: split\n",
            head=head,
        )
        # Two 150 mm cubes fit the Fuse's chamber one at a time, never together.
        plan = plan_for(recipe, _boxes(tmp_path / "m", 2, size=150))
        models = tuple(m for b in plan.builds for m in b.models)
        first = replace(plan.builds[0], models=models, graph=compile_graph(plan.recipe, models))
        plan = replace(plan, builds=(first,))
        farm.add()
        halves: list[tuple[str, tuple[str, str]]] = []
        with capture_bound_logs() as logs:
            result, lines = _run(
                plan, farm, tmp_path / "out",
                on_split=lambda b, c: halves.append((b.name, (c[0].name, c[1].name))),
            )
        assert halves == [("fuse-001", ("fuse-001.1", "fuse-001.2"))]
        parent = result.outcome("fuse-001")
        assert parent.status is BuildStatus.SPLIT
        assert parent.children == ("fuse-001.1", "fuse-001.2")
        for name in parent.children:
            child = result.outcome(name)
            assert (child.status, child.parent, len(child.models)) == (
                BuildStatus.SUCCEEDED, "fuse-001", 1
            )
        assert "[fuse-001.1] split from fuse-001: 1 model" in lines
        assert "[fuse-001.2] split from fuse-001: 1 model" in lines
        (split,) = iter_events(logs, "build_split")
        assert (split["children"], split["models"]) == (["fuse-001.1", "fuse-001.2"], [1, 1])


class TestCancelAndStop:
    """A cancel is logged once; a stopped build logs why and where it stopped."""

    def test_a_cancel_is_logged_once_with_the_run(self, tmp_path: Path, farm: SimFarm) -> None:
        plan = plan_for(write_recipe(tmp_path, STEPS), _boxes(tmp_path / "m", 1))
        farm.add()
        runner = Runner(
            plan, FakePool([s.url for s in farm.servers]),
            options=RunOptions(output_root=tmp_path / "out", run_id="run-1", cancel_grace_s=0.5),
            reporter=NullReporter(),
        )
        with capture_bound_logs() as logs:
            runner.cancel()
            runner.cancel()
            result = runner.run()
        assert result.cancelled
        assert [e["run_id"] for e in iter_events(logs, "run_cancel_requested")] == ["run-1"]

    def test_a_stopped_build_logs_the_reason_and_the_step(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        farm.add()
        seen = farm.faults[0].seen
        result, _, logs = _run_logged(
            tmp_path, farm, STEPS,
            stop_reason=lambda build: "lease lost" if "auto_support" in seen else None,
        )
        assert [(o.status, o.reason) for o in result.outcomes] == [
            (BuildStatus.CANCELLED, "lease lost")
        ]
        (stopped,) = iter_events(logs, "build_stopped")
        assert (stopped["reason"], stopped["step"]) == ("lease lost", "auto_layout")


class DamagingFaults(ScriptedFaults):
    """Scripted faults that, as the first ``auto_layout`` fails, take ``models`` out of the
    build's checkpoint file (as if the file had been saved without them)."""

    def __init__(self, checkpoint: Path, *models: str) -> None:
        super().__init__(fail={"auto_layout": 1})
        self.checkpoint = checkpoint
        self.models = frozenset(models)

    def simulated_error(self, operation_id: str) -> SimError | None:
        if operation_id == "auto_layout" and self.fail.get("auto_layout"):
            with zipfile.ZipFile(self.checkpoint) as archive:
                members = {n: archive.read(n) for n in archive.namelist()}
            manifest = json.loads(members["manifest.json"])
            manifest["models"] = [m for m in manifest["models"] if m["name"] not in self.models]
            members["manifest.json"] = json.dumps(manifest).encode()
            with zipfile.ZipFile(self.checkpoint, "w") as archive:
                for name, data in members.items():
                    archive.writestr(name, data)
        return super().simulated_error(operation_id)


class TestUnusableCheckpoint:
    """A checkpoint that lacks one of the build's models is not used: the retry starts over
    and says why."""

    def test_the_retry_starts_over_and_names_the_missing_model(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        checkpoint = tmp_path / "out" / ".checkpoints" / "run-1" / "unit-001"
        farm.add(DamagingFaults(checkpoint / "after-auto_support.form", "box1"))
        farm.add()
        result, _, logs = _run_logged(tmp_path, farm, STEPS, 2)
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED
        assert [a.resumed_from for a in outcome.attempts] == [None, None]
        (unusable,) = iter_events(logs, "checkpoint_unusable")
        assert unusable["missing"] == ["box1"]
        assert Path(unusable["checkpoint"]).name == "after-auto_support.form"
        assert list(iter_events(logs, "build_resumed")) == []
        assert farm.faults[1].seen.count("import_model") == 2


class TestCarries:
    """Models a layout carries on go into the final build when it has room, and builds
    carried on from carried builds keep their place after the build they came from."""

    def test_a_carried_model_joins_the_final_build_running_beside(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        boxes = five_boxes(tmp_path)
        recipe = write_recipe(tmp_path, CARRY_STEPS)
        # Planned without rafts: four boxes in the first build, of which three fit with
        # their rafts; the second build (one box) is the final one and has room.
        plan = plan_without_rafts(recipe, boxes)
        assert [len(b.models) for b in plan.builds] == [4, 1]
        farm.add()
        farm.add()
        with capture_bound_logs() as logs:
            result, _ = _run(plan, farm, tmp_path / "out")
        assert result.ok
        assert [(o.name, len(o.models), o.children) for o in result.outcomes] == [
            ("unit-001", 3, ()), ("unit-002", 2, ()),
        ]
        (joined,) = iter_events(logs, "overflow_joined_build")
        assert (joined["build"], joined["into"], joined["models"]) == ("unit-001", "unit-002", 1)
        (taken,) = iter_events(logs, "overflow_taken_in")
        assert taken["build"] == "unit-002" and len(taken["models"]) == 1
        (waited,) = iter_events(logs, "final_build_waited")
        assert (waited["build"], waited["taken"]) == ("unit-002", 1)
        assert waited["waited_s"] == round(waited["waited_s"], 3) >= 0
        saved = [name for o in result.outcomes for name in _saved_models(o)]
        assert sorted(saved) == [f"box{i}" for i in range(5)]

    def test_a_full_final_build_is_not_offered_a_carry_it_would_carry_on_again(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # Planned without rafts: two builds of four boxes, of which three fit with their
        # rafts; unit-001 is the final build (the first of equals). The planner lays out no
        # fifth box with either.
        boxes = [write_box(tmp_path / "m", f"box{i}", 90, 60, 10) for i in range(8)]
        recipe = write_recipe(tmp_path, CARRY_STEPS)
        plan = plan_without_rafts(recipe, boxes)
        assert [len(b.models) for b in plan.builds] == [4, 4]
        farm.add()
        farm.add()
        # The order is held at the seam a node's lease check uses (asked before each step):
        # unit-002 carries its box on while the final build, on the other server, is before
        # its layout, so still takes carries; unit-002 goes on to its save only once the
        # final build's own carry has gone (to unit-002's carry, which waits for a server).
        hold = _StepOrder()
        hold.before("unit-001", 4, until=("unit-002", 5))  # its layout, after unit-002's
        hold.before("unit-002", 5, until=("unit-001", 5))  # its save, after unit-001's layout
        with capture_bound_logs() as logs:
            result, _ = _run(plan, farm, tmp_path / "out", stop_reason=hold.ask,
                             build_report=hold.ended)
        assert hold.problems == []
        assert result.ok
        # The final build was offered unit-002's box while it took carries, and refused it:
        # nothing was taken into a running build, and each planned build laid out as it
        # would alone: once with its four boxes, once more without the one carried on.
        assert list(iter_events(logs, "overflow_taken_in")) == []
        (waited,) = iter_events(logs, "final_build_waited")
        assert (waited["build"], waited["taken"]) == ("unit-001", 0)
        assert [result.outcome(b).layout_calls for b in ("unit-001", "unit-002")] == [2, 2]
        # Both carried boxes went on to one new build, of two.
        (added,) = iter_events(logs, "overflow_build_added")
        assert (added["build"], added["carry"], added["models"]) == ("unit-002", "unit-002+1", 1)
        (joined,) = iter_events(logs, "overflow_joined_build")
        assert (joined["build"], joined["into"], joined["models"]) == ("unit-001", "unit-002+1", 1)
        assert sorted((o.name, len(o.models), o.children) for o in result.outcomes) == [
            ("unit-001", 3, ()), ("unit-002", 3, ("unit-002+1",)), ("unit-002+1", 2, ())]
        saved = [name for o in result.outcomes for name in _saved_models(o)]
        assert sorted(saved) == [f"box{i}" for i in range(8)]
        # Each carried box was imported twice, none three times.
        imports = [e.operation_id for s in farm.servers for e in s.exchanges
                   if e.operation_id == "import_model"]
        assert len(imports) == 8 + 2

    def test_carries_of_carries_come_in_order(self, tmp_path: Path, farm: SimFarm) -> None:
        recipe = write_recipe(tmp_path, CARRY_STEPS)
        boxes = [write_box(tmp_path / "m", f"box{i}", 90, 60, 10) for i in range(7)]
        plan = plan_for(recipe, boxes)
        models = tuple(m for b in plan.builds for m in b.models)
        first = replace(plan.builds[0], models=models, graph=compile_graph(plan.recipe, models))
        farm.add()
        result, _ = _run(replace(plan, builds=(first,)), farm, tmp_path / "out")
        # Three of these boxes fit a platform with their rafts: 3, then 3 carried, then 1.
        assert [(o.name, o.index, len(o.models), o.children) for o in result.outcomes] == [
            ("unit-001", 1, 3, ("unit-001+1",)),
            ("unit-001+1", 2, 3, ("unit-001+2",)),
            ("unit-001+2", 3, 1, ()),
        ]
        assert result.ok

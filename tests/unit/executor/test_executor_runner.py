"""The runner drives builds across servers: steps in order, retries by error class, splits."""

from __future__ import annotations

import json
import threading
import zipfile
from pathlib import Path

from executor_support import (
    HANG_LIMIT_S,
    STEP_LIMIT_S,
    WAIT_S,
    FakePool,
    ScriptedFaults,
    SimFarm,
    capture_bound_logs,
    five_boxes,
    iter_events,
    plan_for,
    plan_without_rafts,
    run,
    write_box,
    write_mushroom,
    write_recipe,
)
from structlog.testing import capture_logs

from preform_pipeline.executor import BuildStatus, NullReporter, Runner, RunOptions
from preform_pipeline.simulator.protocol import ProgressCallback
from tests.recipe_texts import full_steps

FULL_STEPS = full_steps(3)
#: The whole job but the screenshot: drawing one took 2.0 to 5.3 s on a loaded 2-core machine
#: (load 5 to 7, four runs; every other step at most 0.26 s), and 8 and 21 s at load 9-10
#: (session 23; every other step at most 1.0 s).
WITHOUT_SCREENSHOT = FULL_STEPS.replace("  - screenshot\n", "")


class _HeldSupport(ScriptedFaults):
    """``auto_support`` sets ``reached`` and goes on only once the test sets ``release``."""

    def __init__(self) -> None:
        super().__init__()
        self.reached = threading.Event()
        self.release = threading.Event()

    def during_operation(self, operation_id: str, progress: ProgressCallback | None) -> None:
        if operation_id == "auto_support":
            self.reached.set()
            self.release.wait(WAIT_S)


def pool_of(farm: SimFarm, *faults: ScriptedFaults | None) -> FakePool:
    for fault in faults:
        farm.add(fault)
    return FakePool([s.url for s in farm.servers])


class TestHappyPath:
    """Every build runs its whole graph on one server and is printed once."""

    def test_every_build_runs_every_step_and_prints_once(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        plan = plan_for(write_recipe(tmp_path, FULL_STEPS), parts[:6])
        pool = pool_of(farm, None, None)
        result = run(plan, pool, tmp_path / "out")
        assert result.ok
        assert [o.status for o in result.outcomes] == [BuildStatus.SUCCEEDED] * 2
        for outcome, build in zip(result.outcomes, plan.builds, strict=True):
            assert outcome.steps_done == build.graph.ids
            assert len(outcome.attempts) == 1
            assert outcome.material_ml and outcome.material_ml > 0
            assert outcome.print_time_s and outcome.print_time_s > 0
            suffixes = sorted(p.suffix for p in outcome.outputs)
            assert suffixes == [".form", ".png"]
            assert all(p.is_file() for p in outcome.outputs)
        jobs = farm.jobs()
        assert sorted(j["job_name"] for j in jobs) == ["unit-unit-001", "unit-unit-002"]
        assert {j["job_id"] for j in jobs} == {o.job_id for o in result.outcomes}

    def test_each_build_gets_its_own_report_next_to_its_form(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        plan = plan_for(write_recipe(tmp_path, FULL_STEPS), parts[:3])
        result = run(plan, pool_of(farm, None), tmp_path / "out")
        form = next(p for p in result.outcomes[0].outputs if p.suffix == ".form")
        report = json.loads(form.with_suffix(".json").read_text(encoding="utf-8"))
        assert report["build"] == "unit-001"
        assert report["status"] == "succeeded"
        assert report["run_id"] == result.run_id

    def test_log_events_carry_run_build_server_and_step(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        plan = plan_for(write_recipe(tmp_path, FULL_STEPS), parts[:3])
        with capture_bound_logs() as logs:
            result = run(plan, pool_of(farm, None), tmp_path / "out")
        started = list(iter_events(logs, "step_started"))
        assert [e["step"] for e in started] == list(plan.builds[0].graph.ids)
        for event in started:
            assert event["run_id"] == result.run_id
            assert event["build"] == "unit-001"
            assert event["server"] == "server-1"

    def test_a_dry_run_prepares_everything_but_never_prints(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        plan = plan_for(write_recipe(tmp_path, FULL_STEPS), parts[:3])
        result = run(plan, pool_of(farm, None), tmp_path / "out", dry_run=True)
        assert result.ok and result.dry_run
        outcome = result.outcomes[0]
        assert outcome.job_id is None
        assert "print skipped (--dry-run)" in outcome.warnings
        assert farm.jobs() == []
        assert any(p.suffix == ".form" for p in outcome.outputs)

    def test_the_largest_builds_start_first(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        plan = plan_for(write_recipe(tmp_path, FULL_STEPS), parts[:7])
        assert [len(b.models) for b in plan.builds] == [3, 3, 1]
        with capture_bound_logs() as logs:
            run(plan, pool_of(farm, None), tmp_path / "out")
        order = [e["build"] for e in iter_events(logs, "build_started")]
        assert order[-1] == "unit-003"


class TestPerModelSteps:
    """Labels and drain holes are placed on each model from the bounding box the server
    reports."""

    def test_each_model_gets_its_own_label_and_drain_holes(
        self, tmp_path: Path, farm: SimFarm, sample_models_dir: Path
    ) -> None:
        arches = [sample_models_dir / "dental" / f"arch_{n}.stl" for n in ("upper", "lower")]
        recipe = write_recipe(
            tmp_path,
            "steps:\n  - auto_orient\n  - hollow:\n      wall_thickness_mm: 2\n"
            "  - add_drain_holes:\n      diameter_mm: 2\n      placement:\n"
            "        face: back\n        count: 2\n        inset_mm: 4\n"
            "  - label:\n      text: \"{stem}\"\n      font_size_mm: 3\n"
            "      depth_mm: 0.5\n      placement:\n        face: front\n"
            "  - auto_layout\n  - save_form\n",
        )
        result = run(plan_for(recipe, arches), pool_of(farm, None), tmp_path / "out")
        assert result.ok, result.outcomes[0].reason
        form = result.outcomes[0].outputs[0]
        with zipfile.ZipFile(form) as archive:
            manifest = json.loads(archive.read("manifest.json"))
        by_name = {m["name"]: m for m in manifest["models"]}
        assert [lab["label"] for lab in by_name["arch_upper"]["labels"]] == ["arch_upper"]
        assert [lab["label"] for lab in by_name["arch_lower"]["labels"]] == ["arch_lower"]
        assert all(len(m["drain_holes"]) == 2 for m in by_name.values())


    def test_fit_skip_leaves_a_too_small_model_unlabelled_and_the_build_succeeds(
        self, tmp_path: Path, farm: SimFarm, sample_models_dir: Path
    ) -> None:
        arch = sample_models_dir / "dental" / "arch_upper.stl"
        recipe = write_recipe(
            tmp_path,
            "steps:\n  - label:\n      text: \"{stem}-with-a-name-far-too-long-for-any-face\"\n"
            "      font_size_mm: 5\n      depth_mm: 0.5\n      placement:\n"
            "        face: front\n        fit: skip\n        min_font_size_mm: 4\n"
            "  - auto_layout\n  - save_form\n",
        )
        with capture_logs() as logs:
            result = run(plan_for(recipe, [arch]), pool_of(farm, None), tmp_path / "out")
        assert result.ok, result.outcomes[0].reason
        with zipfile.ZipFile(result.outcomes[0].outputs[0]) as archive:
            manifest = json.loads(archive.read("manifest.json"))
        assert [m["labels"] for m in manifest["models"]] == [[]]
        skipped = [e for e in logs if e["event"] == "label_skipped"]
        assert [Path(e["model"]).name for e in skipped] == ["arch_upper.stl"]


class TestTransientFailures:
    """A server fault moves the build to another server, from its checkpoint if it has one."""

    def test_a_fault_after_the_checkpoint_resumes_from_it_on_another_server(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        plan = plan_for(write_recipe(tmp_path, FULL_STEPS), parts[:3])
        pool = pool_of(farm, ScriptedFaults(fail={"auto_layout": 1}), None)
        result = run(plan, pool, tmp_path / "out")
        outcome = result.outcomes[0]
        assert outcome.status is BuildStatus.SUCCEEDED
        assert [a.server for a in outcome.attempts] == ["server-1", "server-2"]
        assert outcome.attempts[0].error_type == "ServerInternalError"
        assert outcome.attempts[1].resumed_from == "auto_support"
        second = farm.faults[1].seen
        assert "load_form_file" in second
        assert "import_model" not in second and "auto_support" not in second
        assert pool.failures == [("server-1", "ServerInternalError")]
        assert len(farm.jobs()) == 1

    def test_a_fault_before_any_checkpoint_starts_over(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        plan = plan_for(write_recipe(tmp_path, FULL_STEPS), parts[:3])
        pool = pool_of(farm, ScriptedFaults(fail={"auto_orient": 1}), None)
        outcome = run(plan, pool, tmp_path / "out").outcomes[0]
        assert outcome.status is BuildStatus.SUCCEEDED
        assert outcome.attempts[1].resumed_from is None
        assert farm.faults[1].seen.count("import_model") == 3

    def test_a_hung_operation_hits_the_step_deadline_and_moves_on(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        # The limit applies to every step of the second attempt too, so the recipe leaves out
        # the one step whose time on a loaded machine comes near it (WITHOUT_SCREENSHOT).
        assert "screenshot" not in WITHOUT_SCREENSHOT
        plan = plan_for(write_recipe(tmp_path, WITHOUT_SCREENSHOT), parts[:3])
        pool = pool_of(farm, ScriptedFaults(hang=frozenset({"auto_support"})), None)
        outcome = run(plan, pool, tmp_path / "out", step_timeout_s=HANG_LIMIT_S).outcomes[0]
        assert outcome.status is BuildStatus.SUCCEEDED
        assert outcome.attempts[0].error_type == "ServerTimeoutError"
        assert outcome.attempts[1].server == "server-2"

    def test_attempts_are_bounded(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        plan = plan_for(write_recipe(tmp_path, FULL_STEPS), parts[:3])
        pool = pool_of(
            farm, ScriptedFaults(fail={"auto_orient": 99}), ScriptedFaults(fail={"auto_orient": 99})
        )
        outcome = run(plan, pool, tmp_path / "out", max_build_attempts=3).outcomes[0]
        assert outcome.status is BuildStatus.FAILED
        assert outcome.reason and outcome.reason.startswith("gave up after 3 attempts")
        assert len(outcome.attempts) == 3

    def test_the_server_that_failed_a_build_is_used_again_only_when_no_other_is_left(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        plan = plan_for(write_recipe(tmp_path, FULL_STEPS), parts[:3])
        pool = pool_of(farm, ScriptedFaults(fail={"auto_orient": 1}), None)
        pool.retire("server-2")
        outcome = run(plan, pool, tmp_path / "out").outcomes[0]
        assert outcome.status is BuildStatus.SUCCEEDED
        assert [a.server for a in outcome.attempts] == ["server-1", "server-1"]

    def test_a_pool_with_every_server_retired_fails_the_builds_with_the_reason(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        plan = plan_for(write_recipe(tmp_path, FULL_STEPS), parts[:3])
        pool = pool_of(farm, None)
        pool.retire("server-1")
        outcome = run(plan, pool, tmp_path / "out").outcomes[0]
        assert outcome.status is BuildStatus.FAILED
        assert outcome.reason and outcome.reason.startswith("no server left")


class TestPermanentFailures:
    """A refused input fails its build with the reason; the other builds finish."""

    def test_an_invalid_model_fails_its_build_only(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path], sample_models_dir: Path
    ) -> None:
        recipe = write_recipe(
            tmp_path,
            FULL_STEPS.replace("max_models_per_build: 3", "max_models_per_build: 2"),
            head=(
                "name: unit\nscene:\n  machine_type: FORM-4-0\n  material_code: FLGPGR05\n"
                "  layer_thickness_mm: 0.1\nimport:\n  units: MILLIMETERS\n"
                "  repair_behavior: ERROR\n"
            ),
        )
        open_scan = sample_models_dir / "dental" / "arch_scan_open.stl"
        plan = plan_for(recipe, [open_scan, *parts[:3]])
        result = run(plan, pool_of(farm, None, None), tmp_path / "out")
        failed = result.by_status(BuildStatus.FAILED)
        assert len(failed) == 1
        assert "arch_scan_open.stl" in failed[0].models
        assert failed[0].reason and "MODEL_NOT_WATERTIGHT" in failed[0].reason
        assert len(failed[0].attempts) == 1
        assert len(result.by_status(BuildStatus.SUCCEEDED)) == len(plan.builds) - 1
        assert not result.ok

    def test_a_validation_finding_the_recipe_lists_fails_the_build(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        floating = write_mushroom(tmp_path / "m", "mushroom")
        recipe = write_recipe(
            tmp_path,
            "steps:\n  - auto_layout\n  - validate:\n      fail_on: [undersupported]\n"
            "  - save_form\n",
        )
        outcome = run(plan_for(recipe, [floating]), pool_of(farm, None), tmp_path / "out")
        assert outcome.outcomes[0].status is BuildStatus.FAILED
        assert outcome.outcomes[0].reason == "validation failed (undersupported: mushroom.stl)"

    def test_an_estimate_above_the_recipe_limit_fails_the_build(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        recipe = write_recipe(
            tmp_path, "steps:\n  - auto_layout\n  - estimate:\n      max_print_time_s: 1\n"
        )
        outcome = run(plan_for(recipe, parts[:2]), pool_of(farm, None), tmp_path / "out")
        assert outcome.outcomes[0].status is BuildStatus.FAILED
        assert "exceeds 1 s" in (outcome.outcomes[0].reason or "")

    def test_a_template_field_no_model_has_fails_before_any_server_is_used(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        recipe = write_recipe(
            tmp_path,
            "steps:\n  - auto_orient\n  - label:\n      text: \"{case_id}\"\n"
            "      font_size_mm: 3\n      depth_mm: 0.5\n      placement:\n"
            "        face: front\n  - auto_layout\n",
        )
        pool = pool_of(farm, None)
        outcome = run(plan_for(recipe, parts[:2]), pool, tmp_path / "out").outcomes[0]
        assert outcome.status is BuildStatus.FAILED
        assert "no value for field {case_id}" in (outcome.reason or "")
        assert outcome.attempts == ()
        assert pool.leases == [] and farm.faults[0].seen == []

    def test_a_refused_print_is_not_retried(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        recipe = write_recipe(
            tmp_path, FULL_STEPS.replace("SimulatedForm4-1", "NoSuchPrinter")
        )
        outcome = run(plan_for(recipe, parts[:2]), pool_of(farm, None, None), tmp_path / "out")
        only = outcome.outcomes[0]
        assert only.status is BuildStatus.FAILED
        assert "PRINTER_NOT_FOUND" in (only.reason or "")
        assert len(only.attempts) == 1


class TestPrintIsNeverSentTwice:
    """Without an answer a print is never resent; once sent, a retry never sends it again."""

    def test_a_print_without_an_answer_is_unconfirmed_and_not_resent(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        plan = plan_for(write_recipe(tmp_path, FULL_STEPS), parts[:3])
        pool = pool_of(farm, ScriptedFaults(fail={"print": 1}), None)
        result = run(plan, pool, tmp_path / "out")
        outcome = result.outcomes[0]
        assert outcome.status is BuildStatus.PRINT_UNCONFIRMED
        assert len(outcome.attempts) == 1
        assert "may have been queued" in (outcome.reason or "")
        assert farm.faults[1].seen == []
        assert not result.ok

    def test_a_build_that_fails_after_printing_resumes_without_printing_again(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        steps = FULL_STEPS.replace("  - screenshot\n", "").replace(
            '      job_name: "{recipe}-{build}"\n',
            '      job_name: "{recipe}-{build}"\n  - screenshot\n',
        )
        plan = plan_for(write_recipe(tmp_path, steps), parts[:3])
        pool = pool_of(farm, ScriptedFaults(fail={"save_screenshot": 1}), None)
        outcome = run(plan, pool, tmp_path / "out").outcomes[0]
        assert outcome.status is BuildStatus.SUCCEEDED
        assert len(outcome.attempts) == 2
        assert len(farm.jobs()) == 1
        assert "print" not in farm.faults[1].seen


class TestLayoutOverflow:
    """Layouts that do not fit retry with less spacing, then carry the overflow on to a new
    build without preparing the models that stayed again; one part fails at once."""

    BOXES = """\
steps:
  - auto_support
  - auto_layout:
      model_spacing_mm: 2
  - save_form
batching:
  spacing_mm: 2
  margin_mm: 0
  layout_attempts: {attempts}
  on_overflow: {overflow}
"""

    def test_a_tight_layout_fits_once_the_spacing_is_halved(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # Two 150 x 57.8 mm boxes in two rows: with a 2 mm raft border each side they need
        # 2 x (57.8 + 4) mm plus the spacing of the 125 mm platform: 2 mm is too much, 1 fits.
        boxes = [write_box(tmp_path / "m", f"box{i}", 150, 57.8, 10) for i in range(2)]
        recipe = write_recipe(
            tmp_path,
            "steps:\n  - auto_support\n  - auto_layout:\n      model_spacing_mm: 2\n"
            "      lock_rotation: true\n  - save_form\nbatching:\n  spacing_mm: 2\n"
            "  margin_mm: 0\n  allow_rotation: false\n  layout_attempts: 2\n",
        )
        plan = plan_without_rafts(recipe, boxes)
        assert len(plan.builds) == 1
        with capture_logs() as logs:
            result = run(plan, pool_of(farm, None), tmp_path / "out")
        assert result.outcomes[0].status is BuildStatus.SUCCEEDED
        assert result.outcomes[0].layout_calls == 2
        assert [e["spacing_mm"] for e in iter_events(logs, "layout_retry")] == [1.0]

    def test_the_overflow_is_carried_on_and_nothing_is_prepared_twice(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # Four 90 x 60 mm boxes fit one platform in two rows bare, not with their rafts.
        boxes = [write_box(tmp_path / "m", f"box{i}", 90, 60, 10) for i in range(4)]
        recipe = write_recipe(tmp_path, self.BOXES.format(attempts=1, overflow="split"))
        plan = plan_without_rafts(recipe, boxes)
        assert len(plan.builds) == 1
        result = run(plan, pool_of(farm, None, None), tmp_path / "out")
        parent = result.outcome("unit-001")
        assert parent.status is BuildStatus.SUCCEEDED
        assert parent.children == ("unit-001+1",)
        carry = result.outcome("unit-001+1")
        assert carry.status is BuildStatus.SUCCEEDED and carry.parent == "unit-001"
        assert sorted([*parent.models, *carry.models]) == sorted(p.name for p in boxes)
        assert parent.models and carry.models
        assert result.ok
        # Only the carried models were imported a second time; the others stayed prepared.
        operations = [e.operation_id for s in farm.servers for e in s.exchanges]
        assert operations.count("import_model") == 4 + len(carry.models)
        assert operations.count("delete_model") == len(carry.models)
        assert operations.count("auto_support") == 2  # one per build, each on its own scene

    def test_a_carry_joins_a_planned_build_that_has_not_started(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        boxes = five_boxes(tmp_path)
        recipe = write_recipe(tmp_path, self.BOXES.format(attempts=1, overflow="split"))
        plan = plan_without_rafts(recipe, boxes)
        assert [len(b.models) for b in plan.builds] == [4, 1]
        with capture_logs() as logs:
            result = run(plan, pool_of(farm, None), tmp_path / "out")  # one server: in turn
        assert result.ok
        joined = iter_events(logs, "overflow_joined_build")
        assert [(e["build"], e["into"]) for e in joined][:1] == [("unit-001", "unit-002")]
        files = sorted(f for o in result.outcomes for f in o.source_files)
        assert files == sorted(str(p) for p in boxes)  # every model in exactly one build
        carried = sum(e["models"] for e in iter_events(logs, "overflow_joined_build")) + sum(
            e["models"] for e in iter_events(logs, "overflow_build_added"))
        operations = [e.operation_id for s in farm.servers for e in s.exchanges]
        assert operations.count("import_model") == 5 + carried

    def test_a_carry_skips_a_waiting_build_the_planner_cannot_lay_out_with_it(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # Eight boxes planned bare in two builds of four; with rafts each lays out three.
        # The first build's carry would only overflow the full second build again.
        boxes = [write_box(tmp_path / "m", f"box{i}", 90, 60, 10) for i in range(8)]
        recipe = write_recipe(tmp_path, self.BOXES.format(attempts=1, overflow="split"))
        plan = plan_without_rafts(recipe, boxes)
        assert [len(b.models) for b in plan.builds] == [4, 4]
        with capture_logs() as logs:
            result = run(plan, pool_of(farm, None), tmp_path / "out")  # one server: in turn
        assert result.ok
        added = [(e["build"], e["carry"]) for e in iter_events(logs, "overflow_build_added")]
        joined = [(e["build"], e["into"]) for e in iter_events(logs, "overflow_joined_build")]
        ((first, carry),) = added  # whichever build ran first: its carry made a build
        assert joined == [({"unit-001", "unit-002"}.difference({first}).pop(), carry)]
        assert sorted(len(o.models) for o in result.outcomes) == [2, 3, 3]
        # Each carried box was imported twice, no box three times.
        operations = [e.operation_id for s in farm.servers for e in s.exchanges]
        assert operations.count("import_model") == 8 + 2

    def test_on_overflow_fail_fails_the_build(self, tmp_path: Path, farm: SimFarm) -> None:
        boxes = [write_box(tmp_path / "m", f"box{i}", 90, 60, 10) for i in range(4)]
        recipe = write_recipe(tmp_path, self.BOXES.format(attempts=1, overflow="fail"))
        result = run(plan_without_rafts(recipe, boxes), pool_of(farm, None), tmp_path / "out")
        assert [o.status for o in result.outcomes] == [BuildStatus.FAILED]
        assert "on_overflow: fail" in (result.outcomes[0].reason or "")

    def test_a_single_part_that_cannot_fit_fails_at_once(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # 197 mm fits the 200 mm platform, but not with its supports' raft around it.
        box = write_box(tmp_path / "m", "wide", 197, 60, 10)
        recipe = write_recipe(tmp_path, self.BOXES.format(attempts=3, overflow="split"))
        result = run(plan_without_rafts(recipe, [box]), pool_of(farm, None), tmp_path / "out")
        assert [o.status for o in result.outcomes] == [BuildStatus.FAILED]
        outcome = result.outcomes[0]
        assert "does not fit an empty platform" in (outcome.reason or "")
        assert outcome.layout_calls == 3
        assert len(outcome.attempts) == 1

    def test_the_planner_now_leaves_room_for_rafts(self, tmp_path: Path, farm: SimFarm) -> None:
        boxes = [write_box(tmp_path / "m", f"box{i}", 90, 60, 10) for i in range(4)]
        recipe = write_recipe(tmp_path, self.BOXES.format(attempts=1, overflow="split"))
        plan = plan_for(recipe, boxes)
        assert len(plan.builds) == 2
        result = run(plan, pool_of(farm, None, None), tmp_path / "out")
        assert result.ok and all(not o.children for o in result.outcomes)


class TestCancel:
    """Cancelling stops new work, closes the pool, and marks unfinished builds cancelled."""

    def test_cancelling_before_the_run_starts_runs_nothing(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        plan = plan_for(write_recipe(tmp_path, FULL_STEPS), parts[:6])
        pool = pool_of(farm, None)
        runner = Runner(
            plan, pool, options=RunOptions(output_root=tmp_path / "out", cancel_grace_s=0.5),
            reporter=NullReporter(),
        )
        runner.cancel()
        result = runner.run()
        assert result.cancelled and not result.ok
        assert {o.status for o in result.outcomes} == {BuildStatus.CANCELLED}
        assert pool.closed

    def test_cancelling_mid_step_lets_the_step_end_and_starts_no_other(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        plan = plan_for(write_recipe(tmp_path, FULL_STEPS), parts[:3])
        held = _HeldSupport()
        pool = pool_of(farm, held)
        # The step ends when the test lets it, within a grace period no loaded machine
        # outlasts; no step deadline is near (a 2 s one held every step before it too).
        runner = Runner(
            plan, pool,
            options=RunOptions(
                output_root=tmp_path / "out", cancel_grace_s=WAIT_S, step_timeout_s=STEP_LIMIT_S
            ),
            reporter=NullReporter(),
        )
        box: dict[str, object] = {}
        thread = threading.Thread(target=lambda: box.setdefault("result", runner.run()))
        thread.start()
        assert held.reached.wait(WAIT_S), "auto_support never started"
        runner.cancel()
        held.release.set()
        thread.join(WAIT_S)
        assert not thread.is_alive()
        result = box["result"]
        assert getattr(result, "cancelled", False)
        outcome = result.outcomes[0]  # type: ignore[attr-defined]
        assert outcome.status is BuildStatus.CANCELLED
        assert "auto_layout" not in farm.faults[0].seen
        assert pool.closed


class TestStopOneBuild:
    """A build told to stop (its node lost its lease) sends no further request."""

    def test_it_stops_before_its_next_step_and_gives_its_server_back(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        plan = plan_for(write_recipe(tmp_path, FULL_STEPS), parts[:3])
        pool = pool_of(farm, None)
        seen = farm.faults[0].seen

        def stop_reason(build: str) -> str | None:
            return "lease lost" if "auto_layout" in seen else None

        with capture_bound_logs() as logs:
            result = run(plan, pool, tmp_path / "out", stop_reason=stop_reason)
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.CANCELLED
        assert outcome.reason == "lease lost"
        assert "auto_layout" in seen and "print" not in seen
        events = [e for e in logs if e["event"] in ("step_started", "build_stopped")]
        assert events[-1]["event"] == "build_stopped"
        assert events[-1]["step"] == "validate"
        assert [e["kind"] for e in events[:-1]][-1] == "auto_layout"
        assert pool.lease(timeout=1.0).server.name == "server-1"
        assert farm.jobs() == []

"""Seed 40's and 41's gaps in the runner: where the final build goes in a split of the
work, a refusal without an error code, a server's clients after it failed a build, the
final build's second layout, and the run's material as a template field (the scene's when an
.fps file gives it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from executor_support import (
    RECIPE_HEAD,
    WAIT_S,
    FakePool,
    ScriptedFaults,
    SimFarm,
    five_boxes,
    iter_events,
    plan_for,
    plan_without_rafts,
    run,
    write_recipe,
)
from test_executor_final_intake_wait import _run_holding, watched_logs
from test_executor_run_events import CARRY_STEPS
from test_executor_steps_requests import ReceivingEngine, _black_fps, _serve

from preform_pipeline.executor import BuildOutcome, BuildStatus
from preform_pipeline.executor.runner import run_order
from preform_pipeline.plan.builds import BuildPlan, ModelInfo
from preform_pipeline.plan.graph import StepGraph
from preform_pipeline.simulator.protocol import Json, ProgressCallback, SimError
from tests.recipe_texts import full_steps


def _builds(spec: list[tuple[int, float]], triangles: int) -> list[BuildPlan]:
    """Builds ``b1``, ``b2``... of ``models`` models each (a build's work is 4 + one per
    model, plus ``triangles`` / 100,000 per model) and the given fill ratios."""
    builds = []
    for index, (models, fill) in enumerate(spec, start=1):
        parts = tuple(
            ModelInfo(path=Path("models") / f"b{index}-{n}.stl", name=f"b{index}-{n}",
                      size_mm=(10.0, 10.0, 10.0), footprint_mm=(10.0, 10.0), volume_mm3=1000.0,
                      support_estimate_mm3=0.0, triangle_count=triangles)
            for n in range(models)
        )
        builds.append(BuildPlan(index=index, name=f"b{index}", models=parts, placements=(),
                                fill_ratio=fill, estimated_volume_ml=0.0,
                                graph=StepGraph(nodes=())))
    return builds


class TestTheFinalBuildInASplitOfTheWork:
    """The final build ends the queue that ends last, changing places where that helps."""

    def test_a_swap_that_leaves_two_queues_exactly_equal_is_still_made(self) -> None:
        # Works 11 15 16 7 12 7 on 3 servers; b6 (the roomiest later build) is final. The
        # split is b3+b6 23, b2+b4 22, b5+b1 23: b6 sits in a queue that ends last only with
        # a tie, and moving it keeps both longest queues at 23. Taken, the split starts
        # b3 b2 b5 b1 b4 b6 and ends at 23 with b6 last; refused at the tie, the split no
        # longer ends with b6 and longest first (ending at 26) is run instead.
        builds = _builds([(7, 0.3), (11, 0.73), (12, 0.21), (3, 0.5), (8, 0.64), (3, 0.11)],
                         triangles=0)
        order, final = run_order(builds, servers=3)
        assert final == "b6"
        assert [b.name for b in order] == ["b3", "b2", "b5", "b1", "b4", "b6"]

    def test_the_final_build_changes_places_with_a_build_as_long_as_itself(self) -> None:
        # Works about 12 14 7 12 6 6 5 (12 triangles a model add a little) on 3 servers; b5
        # is final and its queue, b2+b5, is not the longest (b4+b6+b7). Changing places
        # with b6, as long as itself, keeps the run's estimated end at 23 units with b5
        # last; with the lighter b7 the longest queue grows and the run ends at 24.
        builds = _builds([(8, 0.32), (10, 0.38), (3, 0.82), (8, 0.53), (2, 0.14), (2, 0.84),
                          (1, 0.38)], triangles=12)
        order, final = run_order(builds, servers=3)
        assert final == "b5"
        assert [b.name for b in order] == ["b2", "b1", "b4", "b3", "b7", "b6", "b5"]

    def test_a_final_build_whose_queue_ties_the_longest_stays_at_its_end(self) -> None:
        # Seed 41. Works 5 15 5 9 6 7 6 on 3 servers; b7 (the roomiest later build) is
        # final. The split is b2 15, b4+b1+b3 19, b6+b5+b7 19: b7's queue ties the longest,
        # so b7 already ends last and stays where it is; the split ends at 19, longest first
        # at 20. Were the tie taken for a shorter queue, b7 would change places with the
        # lighter b3, that queue would grow to 20, and longest first would be run instead.
        builds = _builds([(1, 0.84), (11, 0.07), (1, 0.45), (5, 0.25), (2, 0.8), (3, 0.34),
                          (2, 0.17)], triangles=0)
        order, final = run_order(builds, servers=3)
        assert final == "b7"
        assert [b.name for b in order] == ["b2", "b4", "b6", "b5", "b1", "b7", "b3"]

    def test_a_split_that_ends_no_earlier_than_longest_first_is_not_taken(self) -> None:
        # Seed 41. Works 10 12 16 6 5 10 on 3 servers; b4 is final. Longest first (b4
        # leading the last round) and the split b3+b4, b2+b5, b1+b6 (b4 last of all) both
        # end at 22 by the estimates: an equal estimate keeps longest first, even though
        # the split would end a little earlier on average.
        builds = _builds([(6, 0.29), (8, 0.36), (12, 0.26), (2, 0.05), (1, 0.85), (6, 0.45)],
                         triangles=0)
        order, final = run_order(builds, servers=3)
        assert final == "b4"
        assert [b.name for b in order] == ["b3", "b2", "b1", "b4", "b6", "b5"]


class _ContractHollowRefusal(SimError):
    """The Local API contract's 400 answer to a hollow that failed: only ``failures``, the
    ids of the models it failed for, with no ErrorModel code."""

    def body(self) -> Json:
        return {"failures": ["model-7"]}


class _RefusesHollowAsTheContract(ScriptedFaults):
    def simulated_error(self, operation_id: str) -> SimError | None:
        if operation_id == "hollow_model":
            return _ContractHollowRefusal(400, "", "hollow failed")
        return super().simulated_error(operation_id)


class TestARefusalWithoutACode:
    """A refusal that carries no error code gives a reason without an empty code in it."""

    def test_the_reason_names_the_operation_and_the_server_s_words_alone(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        farm.add(_RefusesHollowAsTheContract())
        recipe = write_recipe(
            tmp_path, "steps:\n  - hollow: {wall_thickness_mm: 1.0}\n  - auto_layout\n")
        result = run(plan_for(recipe, parts[:2]), FakePool([s.url for s in farm.servers]),
                     tmp_path / "out")
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.FAILED
        assert outcome.reason == (
            "hollowModel refused: the operation failed for models: model-7")


class TestClientsAfterAFailure:
    """A server that failed a build is talked to with new clients afterwards."""

    def test_the_retry_on_the_same_server_asks_its_api_version_again(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        # One server: the pool hands the failed server back for the retry. Its old clients
        # are closed with their connections; the new ones check the server's version first.
        server = farm.add(ScriptedFaults(fail={"auto_orient": 1}))
        plan = plan_for(write_recipe(tmp_path, full_steps(2)), parts[:2])
        result = run(plan, FakePool([server.url]), tmp_path / "out")
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert [(a.server, a.error_type) for a in outcome.attempts] == [
            ("server-1", "ServerInternalError"), ("server-1", None)]
        asked = [(e.method, e.path) for e in server.exchanges if e.operation_id
                 in ("get_api_version", "create_scene")]
        assert asked == [("GET", "/"), ("POST", "/scene/"), ("GET", "/"), ("POST", "/scene/")]


class TestTheFinalBuildsSecondLayout:
    """The final build's layout after a late carry is reported as the same step again."""

    def test_both_layouts_start_as_the_same_step_of_the_build(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # As in test_executor_final_intake_wait: unit-001 is held before its layout until
        # the final build (unit-002) has laid out, then carries a box into it, which the
        # final build imports, supports and lays out again with its own.
        boxes = five_boxes(tmp_path)
        plan = plan_without_rafts(write_recipe(tmp_path, CARRY_STEPS), boxes)
        farm.add()
        farm.add()
        with watched_logs("step_finished", build="unit-002", kind="auto_layout") as (
            logs, final_laid_out
        ):
            result, problems = _run_holding(
                plan, farm, tmp_path / "out", "unit-001", final_laid_out,
                "the final build waited for unit-001 before its layout",
                step_timeout_s=WAIT_S * 3)
        assert problems == [] and result.ok
        assert result.outcome("unit-002").layout_calls == 2
        total = len(result.outcome("unit-002").steps_done)
        layouts = [(e["index"], e["of"]) for e in iter_events(logs, "step_started")
                   if e["build"] == "unit-002" and e["kind"] == "auto_layout"]
        assert layouts == [(4, total), (4, total)]  # create_scene, import, support, layout


def _forms(outcome: BuildOutcome, out: Path) -> list[str]:
    """The build's .form outputs, as paths under the output folder ``out``."""
    return [p.relative_to(out).as_posix() for p in outcome.outputs if p.suffix == ".form"]


def _run_on_black_fps(engine: ReceivingEngine, tmp_path: Path, farm: SimFarm,
                      parts: list[Path]) -> BuildOutcome:
    """One part run by ``engine`` through a recipe whose scene is ``black.fps`` (Black V5),
    its form and report named by ``{material}``."""
    _serve(farm, engine)
    _black_fps(engine, tmp_path)
    head = RECIPE_HEAD.replace(
        "  material_code: FLGPGR05\n  layer_thickness_mm: 0.1\n", "  fps_file: black.fps\n")
    recipe = write_recipe(tmp_path, "steps:\n  - auto_layout\n  - save_form\n"
                          "outputs:\n  form: \"{machine}-{material}/{build}.form\"\n"
                          "  report: \"{material}/{build}.json\"\n", head=head)
    result = run(plan_for(recipe, parts[:1]), FakePool([s.url for s in farm.servers]),
                 tmp_path / "out")
    (outcome,) = result.outcomes
    return outcome


class FpsAnsweringEngine(ReceivingEngine):
    """The simulator, whose scenes made from an .fps file report the file they were made
    from, not the settings in it (the contract allows either form)."""

    def call(self, operation_id: str, params: dict[str, str], body: Any,
             progress: ProgressCallback | None = None) -> Any:
        answer = super().call(operation_id, params, body, progress)
        if operation_id == "create_scene" and "fps_file" in body:
            answer = {**answer, "scene_settings": {"fps_file": body["fps_file"]}}
            with self._lock:
                self.answered[-1] = (operation_id, answer)
        return answer


class TestTheRunsTemplateFields:
    """Output names may use the run's machine and material."""

    def test_a_form_named_by_machine_and_material_is_saved_under_those_codes(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        farm.add()
        recipe = write_recipe(tmp_path, "steps:\n  - auto_layout\n  - save_form\n"
                              "outputs:\n  form: \"{machine}-{material}/{build}.form\"\n")
        result = run(plan_for(recipe, parts[:1]), FakePool([s.url for s in farm.servers]),
                     tmp_path / "out")
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert _forms(outcome, tmp_path / "out") == ["FORM-4-0-FLGPGR05/unit-001.form"]

    def test_a_recipe_with_an_fps_file_names_outputs_by_the_material_its_scene_reports(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        # Seed 41: never a stand-in code. Session 25: the material comes from the .fps file,
        # which only the server reads; the scene it made says which (Black V5 here).
        engine = ReceivingEngine(scene_cache_size=100, fleet_dir=farm.fleet_dir,
                                 work_dir=farm.folder / "work0")
        outcome = _run_on_black_fps(engine, tmp_path, farm, parts)
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert _forms(outcome, tmp_path / "out") == ["FORM-4-0-FLGPBK05/unit-001.form"]
        assert (tmp_path / "out" / "FLGPBK05" / "unit-001.json").is_file()  # its own report

    def test_a_scene_that_reports_its_fps_file_leaves_the_material_field_empty(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        # A server may answer with the .fps file it read instead of the settings in it: the
        # code is then not known, and the build goes on with the field empty ("_").
        engine = FpsAnsweringEngine(scene_cache_size=100, fleet_dir=farm.fleet_dir,
                                    work_dir=farm.folder / "work0")
        outcome = _run_on_black_fps(engine, tmp_path, farm, parts)
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert engine.answers("create_scene")[-1]["scene_settings"] == {
            "fps_file": str((tmp_path / "black.fps").resolve())}
        assert _forms(outcome, tmp_path / "out") == ["FORM-4-0-_/unit-001.form"]

    def test_a_retry_resumed_from_a_checkpoint_keeps_the_material_its_first_scene_reported(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        # The retry loads the checkpoint saved after auto_support into a new scene on the
        # second server: it makes no scene of its own to ask.
        writer = ReceivingEngine(scene_cache_size=100, fleet_dir=farm.fleet_dir,
                                 work_dir=farm.folder / "writer")
        _black_fps(writer, tmp_path)
        farm.add(ScriptedFaults(fail={"auto_layout": 1}))
        farm.add()
        head = RECIPE_HEAD.replace(
            "  material_code: FLGPGR05\n  layer_thickness_mm: 0.1\n", "  fps_file: black.fps\n")
        recipe = write_recipe(tmp_path, "steps:\n  - auto_support\n  - auto_layout\n"
                              "  - save_form\noutputs:\n  form: \"{material}/{build}.form\"\n",
                              head=head)
        result = run(plan_for(recipe, parts[:1]), FakePool([s.url for s in farm.servers]),
                     tmp_path / "out")
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert [a.resumed_from for a in outcome.attempts] == [None, "auto_support"]
        assert _forms(outcome, tmp_path / "out") == ["FLGPBK05/unit-001.form"]

"""What each step asks the server for: the options a recipe sets reach the request bodies the
simulator receives (scene, imports, drain holes, labels, layout, pack and cage, screenshots),
each step reports its progress, and a step cut short by the request limit is polled next."""

from __future__ import annotations

import copy
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import test_executor_blocking_steps as blocking_tests
from PIL import Image
from structlog.testing import capture_logs
from test_executor_steps_preflight import FUSE_HEAD

from preform_pipeline.executor import BuildOutcome, BuildStatus, NullReporter, RunOptions, run_plan
from preform_pipeline.plan.builds import Plan, plan_builds, read_models
from preform_pipeline.recipes import load_recipe
from preform_pipeline.recipes.model import SceneSpec
from preform_pipeline.report import write_build_report
from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.protocol import ProgressCallback, SimError
from preform_pipeline.simulator.server import SimulatorServer
from tests.unit.executor.executor_support import (
    HANG_LIMIT_S,
    RECIPE_HEAD,
    FakePool,
    ScriptedFaults,
    SimFarm,
    iter_events,
    plan_for,
    plan_without_rafts,
    staged_name,
    write_box,
    write_recipe,
)

#: Each step's limit: generous, since no step here hangs and none tests the limit. Drawing a
#: screenshot of supported models took up to 5.3 s on a loaded 2-core machine (load 5 to 7),
#: near the 10 s this was; the limit only ends a run that is broken.
STEP_LIMIT_S = 60.0


class ReceivingEngine(SimEngine):
    """The simulator's engine, keeping a copy of every operation's request body and of its
    answer or refusal: what the server received and said, as its request log would show."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._lock = threading.Lock()
        self.received: list[tuple[str, Any]] = []
        self.answered: list[tuple[str, Any]] = []
        #: The message of each refusal (an ErrorModel answer), by operation.
        self.refusals: dict[str, str] = {}

    def call(
        self,
        operation_id: str,
        params: dict[str, str],
        body: Any,
        progress: ProgressCallback | None = None,
    ) -> Any:
        with self._lock:
            self.received.append((operation_id, copy.deepcopy(body)))
        try:
            answer = super().call(operation_id, params, body, progress)
        except SimError as exc:
            with self._lock:
                self.refusals[operation_id] = exc.error_message
            raise
        with self._lock:
            self.answered.append((operation_id, copy.deepcopy(answer)))
        self.after(operation_id, params, body, answer)
        return answer

    def after(self, operation_id: str, params: dict[str, str], body: Any, answer: Any) -> None:
        """What the server does once it has answered (nothing: a subclass's fault)."""

    def bodies(self, operation_id: str) -> list[Any]:
        with self._lock:
            return [body for op, body in self.received if op == operation_id]

    def answers(self, operation_id: str) -> list[Any]:
        with self._lock:
            return [answer for op, answer in self.answered if op == operation_id]


class ProgressRecorder(NullReporter):
    """A reporter that keeps each step's progress fractions, as a progress bar gets them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.fractions: dict[str, list[float]] = {}

    def step_progress(self, build: str, step: str, fraction: float) -> None:
        with self._lock:
            self.fractions.setdefault(step, []).append(fraction)


def _serve(farm: SimFarm, engine: SimEngine) -> None:
    """Serve ``engine`` as one more simulator of the farm (shut down with it)."""
    server = SimulatorServer(engine, port=0, poll_interval=0.01)
    faults = ScriptedFaults(stop=server.stopping)
    server.faults = faults  # type: ignore[assignment]
    server.start()
    farm.servers.append(server)
    farm.faults.append(faults)


@pytest.fixture
def engine(farm: SimFarm) -> ReceivingEngine:
    """A receiving engine behind a simulator of the farm."""
    receiving = ReceivingEngine(scene_cache_size=100, fleet_dir=farm.fleet_dir,
                                work_dir=farm.folder / f"work{len(farm.servers)}")
    _serve(farm, receiving)
    return receiving


def _run(
    plan: Plan, farm: SimFarm, output: Path, reporter: NullReporter | None = None,
    **options: Any,
) -> BuildOutcome:
    result = run_plan(
        plan, FakePool([s.url for s in farm.servers]),
        options=RunOptions(output_root=output, step_timeout_s=STEP_LIMIT_S,
                           build_report=write_build_report, **options),
        reporter=reporter or NullReporter(),
    )
    (outcome,) = result.outcomes
    return outcome


def _black_fps(engine: ReceivingEngine, folder: Path) -> Path:
    """``folder/black.fps``, written by the simulator from a scene of its own (Black V5 at
    0.05 mm), as PreForm saves a print-settings file."""
    made = engine.call("create_scene", {}, {"machine_type": "FORM-4-0",
                                            "material_code": "FLGPBK05",
                                            "layer_thickness_mm": 0.05})
    fps = folder / "black.fps"
    engine.call("save_fps_file", {"scene_id": made["id"]}, {"file": str(fps)})
    return fps


class TestProgress:
    """Steps over several models move one model at a time, a server operation reports its
    end, and validation is half done once the server's findings are in."""

    def test_each_step_reports_its_fractions_in_order(
        self, tmp_path: Path, farm: SimFarm, engine: ReceivingEngine
    ) -> None:
        boxes = [write_box(tmp_path / "m", f"box{i}", 30, 30, 20) for i in range(2)]
        recipe = write_recipe(
            tmp_path,
            "steps:\n  - auto_orient\n  - hollow:\n      wall_thickness_mm: 2\n"
            "  - add_drain_holes:\n      diameter_mm: 3\n"
            "      placement: {face: bottom, count: 1}\n"
            "  - label:\n      text: \"{stem}\"\n      font_size_mm: 3\n      depth_mm: 0.5\n"
            "      placement:\n        face: front\n"
            "  - auto_support\n  - auto_layout\n"
            "  - validate\n  - estimate\n  - save_form\n  - screenshot\n"
            "batching:\n  max_models_per_build: 2\n",
        )
        recorder = ProgressRecorder()
        outcome = _run(plan_for(recipe, boxes), farm, tmp_path / "out", recorder)
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        # Steps over the models move one model at a time; a blocking operation ends at 1.0;
        # validation is half done once the server's findings are in (the rest are reads).
        assert recorder.fractions == {
            "import_models": [0.5, 1.0],
            "auto_orient": [1.0],
            "hollow": [1.0],
            "add_drain_holes": [0.5, 1.0],
            "label": [0.5, 1.0],
            "auto_support": [1.0],
            "auto_layout": [1.0],
            "validate": [0.5],
            "save_form": [1.0],
            "screenshot": [1.0],
        }


class TestDrainHoleRequests:
    """The recipe's drain-hole options reach each model's request: placement (face, count,
    inset) decides the positions, and every hole carries the diameter, depth, outset, search
    distance and plug."""

    @pytest.mark.parametrize(
        ("face", "points", "normal", "across"),
        [
            # The right face (x = 20 of the 40 x 30 mm box centred on the origin), spread
            # along y from -15 + 5 to 15 - 5, 5 mm above the floor.
            ("right", [(20.0, -10.0, 5.0), (20.0, 0.0, 5.0), (20.0, 10.0, 5.0)],
             [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]),
            # The front face (y = -15), spread along x from -20 + 5 to 20 - 5.
            ("front", [(-15.0, -15.0, 5.0), (0.0, -15.0, 5.0), (15.0, -15.0, 5.0)],
             [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]),
        ],
    )
    def test_holes_on_a_side_face_carry_every_option(
        self, tmp_path: Path, farm: SimFarm, engine: ReceivingEngine, face: str,
        points: list[tuple[float, float, float]], normal: list[float], across: list[float],
    ) -> None:
        box = write_box(tmp_path / "m", "box", 40, 30, 20)
        recipe = write_recipe(
            tmp_path,
            "steps:\n  - hollow:\n      wall_thickness_mm: 2\n"
            "  - add_drain_holes:\n      diameter_mm: 3\n      depth_mm: AUTO\n"
            "      outset_mm: 0.5\n      max_search_distance: 4\n      create_plug: true\n"
            f"      placement: {{face: {face}, count: 3, inset_mm: 5}}\n  - save_form\n",
        )
        outcome = _run(plan_for(recipe, [box]), farm, tmp_path / "out")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        (body,) = engine.bodies("add_drain_holes")
        holes = body["drain_holes"]
        assert [(h["position"]["x"], h["position"]["y"], h["position"]["z"])
                for h in holes] == points
        for hole in holes:
            assert {k: hole[k] for k in ("diameter_mm", "depth_mm", "outset_mm",
                                         "max_search_distance", "create_plug")} == {
                "diameter_mm": 3.0, "depth_mm": "AUTO", "outset_mm": 0.5,
                "max_search_distance": 4.0, "create_plug": True,
            }
            # Pointing out of the face, with a direction across it that is not the normal.
            assert hole["orientation"] == {"z_direction": normal, "x_direction": across}


class LosingEngine(ReceivingEngine):
    """A server that answers an import of ``lost`` with success but does not keep the
    model: the fault the import's scene check is there for."""

    lost = "lost.stl"

    def after(self, operation_id: str, params: dict[str, str], body: Any, answer: Any) -> None:
        if operation_id == "import_model" and str(body["file"]).endswith(self.lost):
            self.call("delete_model", {**params, "id": answer["id"]}, None)


class TestImportRequests:
    """Each model is imported from the file the run maps it to, with the recipe's repair
    behaviour, under its scene name; an import the server loses fails the attempt naming
    the file."""

    def test_the_server_reads_the_mapped_file_with_the_recipes_options(
        self, tmp_path: Path, farm: SimFarm, engine: ReceivingEngine
    ) -> None:
        box = write_box(tmp_path / "shared", "box", 10, 10, 10)
        local = tmp_path / "local"
        local.mkdir()
        copy_of = local / "box.stl"
        copy_of.write_bytes(box.read_bytes())
        recipe = write_recipe(tmp_path, "steps:\n  - save_form\n")
        outcome = _run(plan_for(recipe, [box]), farm, tmp_path / "out",
                       import_from=lambda path: local / path.name)
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        (body,) = engine.bodies("import_model")
        assert (body["file"], body["repair_behavior"], body["name"]) == (
            str(copy_of.resolve()), "REPAIR", "box"
        )

    def test_an_import_the_server_lost_fails_the_attempt_naming_the_file(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        losing = LosingEngine(fleet_dir=farm.fleet_dir, work_dir=farm.folder / "work-lost")
        _serve(farm, losing)
        kept = write_box(tmp_path / "m", "kept", 10, 10, 10)
        lost = write_box(tmp_path / "m", "lost", 10, 10, 10)
        recipe = write_recipe(tmp_path, "steps:\n  - save_form\nbatching:\n"
                              "  max_models_per_build: 2\n")
        outcome = _run(plan_for(recipe, [kept, lost]), farm, tmp_path / "out",
                       max_build_attempts=1)
        assert outcome.status is BuildStatus.FAILED
        (scene,) = losing.answers("create_scene")
        assert outcome.reason == (
            "gave up after 1 attempt; last: on server-1: the server answered "
            f"success for 1 import but scene {scene['id']} lacks it: lost.stl (the build "
            "is retried, on another server if it happens again)"
        )


class TestLabelRequests:
    """Each label request names its model, with the recipe's font size, depth and mode."""

    def test_every_model_gets_its_own_label_request(
        self, tmp_path: Path, farm: SimFarm, engine: ReceivingEngine
    ) -> None:
        boxes = [write_box(tmp_path / "m", f"box{i}", 30, 20, 10) for i in range(2)]
        recipe = write_recipe(
            tmp_path,
            "steps:\n  - auto_layout\n  - label:\n      text: \"{stem}\"\n"
            "      font_size_mm: 4\n      depth_mm: 0.6\n      application_mode: ENGRAVE\n"
            "      placement:\n        face: front\n  - save_form\n"
            "batching:\n  max_models_per_build: 2\n",
        )
        outcome = _run(plan_for(recipe, boxes), farm, tmp_path / "out")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        imported = {body["name"]: answer["id"]
                    for body, answer in zip(engine.bodies("import_model"),
                                            engine.answers("import_model"), strict=True)}
        labels = engine.bodies("label_part")
        assert sorted((b["model_id"], b["label"]) for b in labels) == sorted(
            (imported[name], name) for name in ("box0", "box1")
        )
        assert {(b["font_size_mm"], b["depth_mm"], b["application_mode"]) for b in labels} == {
            (4.0, 0.6, "ENGRAVE")
        }


class TestLayoutRetry:
    """A layout that does not fit is retried at half the spacing, and the retry's event
    carries the server's own reason."""

    def test_the_retry_event_names_the_attempt_the_spacing_and_the_servers_reason(
        self, tmp_path: Path, farm: SimFarm, engine: ReceivingEngine
    ) -> None:
        # Two 150 x 57.8 mm boxes in two rows: with a 2 mm raft border each side they need
        # 2 x (57.8 + 4) mm plus the spacing of the 125 mm platform: 2 mm is too much, 1 fits.
        # At the recipe's 4 mm and at 2 mm they do not; the third attempt, at 1 mm, fits.
        boxes = [write_box(tmp_path / "m", f"box{i}", 150, 57.8, 10) for i in range(2)]
        recipe = write_recipe(
            tmp_path,
            "steps:\n  - auto_support\n  - auto_layout:\n      model_spacing_mm: 4\n"
            "      lock_rotation: true\n  - save_form\nbatching:\n  spacing_mm: 4\n"
            "  margin_mm: 0\n  allow_rotation: false\n  layout_attempts: 3\n",
        )
        plan = plan_without_rafts(recipe, boxes)
        with capture_logs() as logs:
            outcome = _run(plan, farm, tmp_path / "out")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        retries = [{k: e[k] for k in ("attempt", "of", "spacing_mm", "previous_spacing_mm")}
                   for e in iter_events(logs, "layout_retry")]
        assert retries == [
            {"attempt": 2, "of": 3, "spacing_mm": 2.0, "previous_spacing_mm": 4.0},
            {"attempt": 3, "of": 3, "spacing_mm": 1.0, "previous_spacing_mm": 2.0},
        ]
        reasons = {e["reason"] for e in iter_events(logs, "layout_retry")}
        assert reasons == {engine.refusals["auto_layout"]}
        assert [b["model_spacing_mm"] for b in engine.bodies("auto_layout")] == [4.0, 2.0, 1.0]


class TestPolledAfterTheRequestLimit:
    """A step the request limit cut short on one server is polled on the retry, whichever
    kind it is, and only that kind."""

    @pytest.mark.parametrize(("step", "operation"), [("hollow", "hollow_model"),
                                                     ("auto_layout", "auto_layout"),
                                                     ("validate", "get_print_validation")])
    def test_the_retry_polls_the_step_that_outlived_the_request_limit(
        self, tmp_path: Path, farm: SimFarm, step: str, operation: str
    ) -> None:
        boxes = [write_box(tmp_path / "m", f"box{i}", 30, 30, 20) for i in range(2)]
        recipe = write_recipe(
            tmp_path,
            "steps:\n  - hollow:\n      wall_thickness_mm: 2\n  - auto_layout\n"
            "  - validate:\n      fail_on: [out_of_bounds]\n  - save_form\n"
            "batching:\n  max_models_per_build: 2\n",
        )
        farm.add(ScriptedFaults(hang=frozenset({operation})))
        farm.add()
        outcome = _run(plan_for(recipe, boxes), farm, tmp_path / "out",
                       request_timeout_s=HANG_LIMIT_S)
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert [(a.server, a.error_type) for a in outcome.attempts] == [
            ("server-1", "ServerTimeoutError"), ("server-2", None)
        ]
        # Of the steps' operations, only that one is polled (a checkpoint's load may be too).
        steps = {"hollow_model", "auto_layout", "get_print_validation", "save_form_file"}
        assert blocking_tests._polled(farm.faults[1].seen) & steps == {operation}


class TestSceneRequests:
    """The scene is made with the recipe's settings, or from its print-settings file found
    next to the recipe."""

    def test_the_recipes_scene_settings_reach_the_server(
        self, tmp_path: Path, farm: SimFarm, engine: ReceivingEngine
    ) -> None:
        box = write_box(tmp_path / "m", "box", 10, 10, 10)
        head = RECIPE_HEAD.replace("layer_thickness_mm: 0.1\n",
                                   "layer_thickness_mm: 0.05\n  print_setting: DEFAULT\n")
        recipe = write_recipe(tmp_path, "steps:\n  - save_form\n", head=head)
        outcome = _run(plan_for(recipe, [box]), farm, tmp_path / "out")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert engine.bodies("create_scene") == [{
            "machine_type": "FORM-4-0", "material_code": "FLGPGR05",
            "layer_thickness_mm": 0.05, "print_setting": "DEFAULT",
        }]

    def test_an_fps_file_beside_the_recipe_sets_the_scene(
        self, tmp_path: Path, farm: SimFarm, engine: ReceivingEngine
    ) -> None:
        fps = _black_fps(engine, tmp_path)
        box = write_box(tmp_path / "m", "box", 10, 10, 10)
        head = RECIPE_HEAD.replace(
            "  material_code: FLGPGR05\n  layer_thickness_mm: 0.1\n", "  fps_file: black.fps\n"
        )
        recipe = write_recipe(tmp_path, "steps:\n  - save_form\n", head=head)
        outcome = _run(plan_for(recipe, [box]), farm, tmp_path / "out")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert engine.bodies("create_scene")[-1] == {"fps_file": str(fps.resolve())}
        (scene,) = engine.answers("create_scene")[-1:]
        assert (scene["scene_settings"]["material_code"],
                scene["scene_settings"]["layer_thickness_mm"]) == ("FLGPBK05", 0.05)

    def test_a_relative_fps_file_of_a_recipe_built_in_code_is_read_beside_the_recipe(
        self, tmp_path: Path, farm: SimFarm, engine: ReceivingEngine
    ) -> None:
        # A loaded recipe's fps_file is made absolute by the loader; one built in code (an
        # API user's) may stay relative, and is read from the recipe's folder all the same.
        fps = _black_fps(engine, tmp_path)
        box = write_box(tmp_path / "m", "box", 10, 10, 10)
        loaded = load_recipe(write_recipe(tmp_path, "steps:\n  - save_form\n"))
        recipe = replace(loaded, scene=SceneSpec("FORM-4-0", None, None, fps_file="black.fps"))
        plan = plan_builds(recipe, read_models([box], import_spec=recipe.import_options))
        outcome = _run(plan, farm, tmp_path / "out")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert engine.bodies("create_scene")[-1] == {"fps_file": str(fps)}


class TestScreenshotRequests:
    """The screenshot's view reaches the server (of every model: the request names none),
    and the file is the build's output."""

    def test_the_view_the_recipe_sets_is_drawn_into_the_output(
        self, tmp_path: Path, farm: SimFarm, engine: ReceivingEngine
    ) -> None:
        box = write_box(tmp_path / "m", "box", 10, 10, 10)
        recipe = write_recipe(
            tmp_path,
            "steps:\n  - screenshot:\n      view_type: FULL_BUILD_VOLUME\n      yaw: 30\n"
            "      pitch: 20\n      image_size_px: 320\n      crop_to_models: false\n"
            "outputs:\n  screenshot: \"shots/{build}.png\"\n",
        )
        outcome = _run(plan_for(recipe, [box]), farm, tmp_path / "out")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        (body,) = engine.bodies("save_screenshot")
        shot = tmp_path / "out" / "shots" / "unit-001.png"
        assert staged_name(body.pop("file"), tmp_path / "out") == shot.name
        assert body == {
            "view_type": "FULL_BUILD_VOLUME", "yaw": 30.0,
            "pitch": 20.0, "image_size_px": 320, "crop_to_models": False,
        }
        assert outcome.outputs == (shot.resolve(),)
        assert shot.stat().st_size > 0


class DamagingEngine(ReceivingEngine):
    """A server whose screenshots come out damaged (not an image any reader knows)."""

    def after(self, operation_id: str, params: dict[str, str], body: Any, answer: Any) -> None:
        if operation_id == "save_screenshot":
            Path(body["file"]).write_bytes(b"\x89PNG\r\n\x1a\ndamaged")


class TestScreenshotFallbacks:
    """A screenshot whose legend cannot be drawn is kept without one, and the run says why;
    an animation's camera path reaches the server as the recipe wrote it."""

    def test_a_damaged_image_is_kept_and_the_missing_legend_is_a_warning(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        _serve(farm, DamagingEngine(fleet_dir=farm.fleet_dir, work_dir=farm.folder / "work"))
        box = write_box(tmp_path / "m", "box", 10, 10, 10)
        recipe = write_recipe(tmp_path, "steps:\n  - screenshot\n"
                              "outputs:\n  screenshot: \"{build}.png\"\n")
        with capture_logs() as logs:
            outcome = _run(plan_for(recipe, [box]), farm, tmp_path / "out")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        shot = (tmp_path / "out" / "unit-001.png").resolve()
        assert outcome.outputs == (shot,)
        (failed,) = iter_events(logs, "screenshot_legend_failed")
        assert failed["path"] == str(shot)
        assert "cannot identify image file" in failed["error"]
        assert outcome.warnings == (f"screenshot legend not drawn: {failed['error']}",)

    def test_an_animations_camera_path_reaches_the_server(
        self, tmp_path: Path, farm: SimFarm, engine: ReceivingEngine
    ) -> None:
        box = write_box(tmp_path / "m", "box", 10, 10, 10)
        recipe = write_recipe(
            tmp_path,
            "steps:\n  - screenshot:\n      image_size_px: 96\n      flyaround_transform:\n"
            "        transform:\n"
            "          - {yaw: 0, pitch: 30}\n          - {yaw: 90, pitch: 45}\n"
            "        frame_count: 12\n"
            "outputs:\n  screenshot: \"{build}.webp\"\n",
        )
        outcome = _run(plan_for(recipe, [box]), farm, tmp_path / "out")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        (body,) = engine.bodies("save_screenshot")
        assert body["flyaround_transform"] == {
            "transform": [{"yaw": 0.0, "pitch": 30.0}, {"yaw": 90.0, "pitch": 45.0}],
            "frame_count": 12,
        }
        # The simulator draws the animation (frame by frame: tests/unit/simulator).
        with Image.open(tmp_path / "out" / "unit-001.webp") as animation:
            assert (animation.format, animation.is_animated) == ("WEBP", True)


class TestPackAndCageRequests:
    """The packing type reaches the server in the contract's nested form, whichever form
    the recipe wrote it in."""

    @pytest.mark.parametrize("written", ["PACK_HEIGHT", "{packing_type: PACK_HEIGHT}"])
    def test_the_packing_type_is_sent_nested(
        self, tmp_path: Path, farm: SimFarm, engine: ReceivingEngine, written: str
    ) -> None:
        box = write_box(tmp_path / "m", "box", 20, 20, 10)
        recipe = write_recipe(
            tmp_path, f"steps:\n  - pack_and_cage:\n      packing_type: {written}\n",
            head=FUSE_HEAD,
        )
        outcome = _run(plan_for(recipe, [box]), farm, tmp_path / "out")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        (body,) = engine.bodies("pack_and_cage")
        assert body["packing_type"] == {"packing_type": "PACK_HEIGHT"}

"""The form's save and the output paths, run whole in session 15: a save that takes longer
than the request limit (but not than the step's deadline) still ends in one attempt, because
the save is one blocking request bounded by the step, never polled on a retry; and a run's
outputs go below the output folder as it was when the run started, even if a link to it is
switched while the run goes on."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from test_executor_steps_requests import ReceivingEngine, _serve

from preform_pipeline.executor import BuildStatus
from preform_pipeline.simulator.protocol import ProgressCallback
from tests.unit.executor.executor_support import (
    HANG_LIMIT_S,
    STEP_LIMIT_S,
    FakePool,
    SimFarm,
    plan_for,
    run,
    staged_name,
    write_box,
    write_recipe,
)

#: The request limit of the run below, and how long the slow server takes to write a form:
#: longer than the limit, well inside the step's deadline (STEP_LIMIT_S). Every other
#: request of the run must end inside the limit on a loaded machine (HANG_LIMIT_S; a 2 s
#: limit here was within reach of a loaded machine's ordinary requests). The save outlasts
#: the limit by half a second: the server starts its wait only once the request has reached
#: it, so a save bounded by the limit times out first however loaded the machine (it was 2 s,
#: paid on every slow save of every run of these tests).
REQUEST_LIMIT_S = HANG_LIMIT_S
SAVE_TAKES_S = REQUEST_LIMIT_S + 0.5


class SlowSaveEngine(ReceivingEngine):
    """A receiving engine that takes :data:`SAVE_TAKES_S` to write a .form file, as a large
    build on a busy PreFormServer does (the other operations answer at once)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        #: Never set: the save's duration is the wait's own timeout (the server's slowness,
        #: not a test waiting for something).
        self._never = threading.Event()

    def call(
        self, operation_id: str, params: dict[str, str], body: Any,
        progress: ProgressCallback | None = None,
    ) -> Any:
        if operation_id == "save_form_file" and self.slow(body):
            self._never.wait(SAVE_TAKES_S)
        return super().call(operation_id, params, body, progress)

    def slow(self, body: Any) -> bool:
        """Whether the save of ``body`` is a slow one: every save, here."""
        return True


class TestSaveLongerThanTheRequestLimit:
    """The save's request waits for the step's deadline, not the request limit: a slow save
    succeeds on its first attempt, and the form is the build's output."""

    def test_a_slow_save_succeeds_in_one_attempt(self, tmp_path: Path, farm: SimFarm) -> None:
        slow = SlowSaveEngine(scene_cache_size=100, fleet_dir=farm.fleet_dir,
                              work_dir=farm.folder / "work-slow")
        _serve(farm, slow)
        box = write_box(tmp_path / "m", "box", 10, 10, 10)
        recipe = write_recipe(tmp_path,
                              "steps:\n  - save_form\noutputs:\n  form: \"{build}.form\"\n")
        result = run(plan_for(recipe, [box]), FakePool([s.url for s in farm.servers]),
                     tmp_path / "out", step_timeout_s=STEP_LIMIT_S,
                     request_timeout_s=REQUEST_LIMIT_S)
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert [(a.server, a.error_type) for a in outcome.attempts] == [("server-1", None)]
        form = (tmp_path / "out" / "unit-001.form").resolve()
        assert outcome.outputs == (form,)
        assert form.stat().st_size > 0
        ((key, sent),) = [item for body in slow.bodies("save_form_file") for item in body.items()]
        assert key == "file" and staged_name(sent, tmp_path / "out") == form.name


class RelinkingEngine(ReceivingEngine):
    """A receiving engine that, once it has made the build's scene, points the link ``link``
    at ``then``: someone switching a ``latest`` output link while the run goes on."""

    def __init__(self, link: Path, then: Path, **options: Any) -> None:
        super().__init__(**options)
        self.link = link
        self.then = then

    def after(self, operation_id: str, params: dict[str, str], body: Any, answer: Any) -> None:
        if operation_id == "create_scene":
            fresh = self.link.with_name(self.link.name + ".new")
            fresh.symlink_to(self.then, target_is_directory=True)
            fresh.replace(self.link)


class TestOutputRootResolvedOnce:
    """The output root is the folder it named when the run started: a link to it switched
    during the run does not move the build's form (Linux: the test makes symbolic links)."""

    def test_the_outputs_stay_in_the_folder_the_run_started_with(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        first, second = tmp_path / "first", tmp_path / "second"
        first.mkdir()
        second.mkdir()
        link = tmp_path / "latest"
        link.symlink_to(first, target_is_directory=True)
        engine = RelinkingEngine(link, second, scene_cache_size=100,
                                 fleet_dir=farm.fleet_dir, work_dir=farm.folder / "work-link")
        _serve(farm, engine)
        box = write_box(tmp_path / "m", "box", 10, 10, 10)
        recipe = write_recipe(
            tmp_path, "steps:\n  - save_form\noutputs:\n  form: \"{build}.form\"\n",
        )
        result = run(plan_for(recipe, [box]), FakePool([s.url for s in farm.servers]), link)
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert link.resolve() == second.resolve()
        assert outcome.outputs == (first.resolve() / "unit-001.form",)
        # The build's form, and none below the link's new target (the build report is
        # written by the runner's report hook, not by these steps).
        assert [p.name for p in first.rglob("*.form")] == ["unit-001.form"]
        assert [p.name for p in second.rglob("*.form")] == []

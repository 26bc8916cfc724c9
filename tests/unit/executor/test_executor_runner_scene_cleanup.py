"""Which ends of a build delete its scene on the server: a build that failed a step's check
or had a request refused frees the scene at once, while a print that got no answer keeps it
(the server may still be sending that print); a delete the server refuses is logged."""

from __future__ import annotations

from pathlib import Path

from executor_support import (
    FakePool,
    ScriptedFaults,
    SimFarm,
    capture_bound_logs,
    iter_events,
    plan_for,
    run,
    write_box,
    write_recipe,
)

from preform_pipeline.executor import BuildStatus
from preform_pipeline.simulator.protocol import SimError


class _RefusesSupports(ScriptedFaults):
    """A server that refuses every auto-support request as a bad request (a 400)."""

    def simulated_error(self, operation_id: str) -> SimError | None:
        if operation_id == "auto_support":
            return SimError(400, "INVALID_REQUEST", "the support options are not accepted")
        return super().simulated_error(operation_id)


class _RefusesDeletes(ScriptedFaults):
    """A server that refuses to delete any scene (a 400); ``seen`` lists the refusals too."""

    def simulated_error(self, operation_id: str) -> SimError | None:
        error = super().simulated_error(operation_id)
        if operation_id == "delete_scene":
            return SimError(400, "INVALID_REQUEST", "the scene is still being written")
        return error


def _one_build(tmp_path: Path, farm: SimFarm, steps: str, faults: ScriptedFaults) -> tuple[
        BuildStatus, list[str]]:
    """One build of two boxes on one server with ``faults``: its status and the operations
    the server saw, in order."""
    boxes = [write_box(tmp_path / "m", f"box{i}", 20, 20, 10) for i in range(2)]
    farm.add(faults)
    result = run(plan_for(write_recipe(tmp_path, steps), boxes),
                 FakePool([s.url for s in farm.servers]), tmp_path / "out")
    (outcome,) = result.outcomes
    return outcome.status, faults.seen


class TestSceneFreed:
    """A build that failed on its input deletes its scene as its last request."""

    def test_a_failed_estimate_check_frees_the_scene(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        status, seen = _one_build(
            tmp_path, farm, "steps:\n  - auto_layout\n  - estimate:\n      max_print_time_s: 1\n",
            ScriptedFaults())
        assert status is BuildStatus.FAILED
        assert seen[-1] == "delete_scene" and seen.count("delete_scene") == 1

    def test_a_refused_request_frees_the_scene(self, tmp_path: Path, farm: SimFarm) -> None:
        status, seen = _one_build(tmp_path, farm, "steps:\n  - auto_support\n  - auto_layout\n",
                                  _RefusesSupports())
        assert status is BuildStatus.FAILED
        assert seen[-1] == "delete_scene" and seen.count("delete_scene") == 1
        assert "auto_layout" not in seen


class TestSceneKept:
    """A print the server never answered leaves its scene on the server."""

    def test_an_unconfirmed_print_keeps_the_scene(self, tmp_path: Path, farm: SimFarm) -> None:
        status, seen = _one_build(
            tmp_path, farm,
            "steps:\n  - auto_layout\n  - print:\n      printer: SimulatedForm4-1\n",
            ScriptedFaults(fail={"print": 1}))
        assert status is BuildStatus.PRINT_UNCONFIRMED
        assert seen[-1] == "print" and "delete_scene" not in seen


class TestSceneNotFreed:
    """A delete the server refuses leaves the build's result alone, and the log says why."""

    def test_the_refusal_is_logged_in_the_server_s_words(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        with capture_bound_logs() as logs:
            status, seen = _one_build(tmp_path, farm, "steps:\n  - auto_layout\n",
                                      _RefusesDeletes())
        assert status is BuildStatus.SUCCEEDED
        assert seen[-1] == "delete_scene"
        (failed,) = iter_events(logs, "scene_cleanup_failed")
        assert (failed["build"], failed["log_level"]) == ("unit-001", "debug")
        assert "the scene is still being written" in failed["error"]

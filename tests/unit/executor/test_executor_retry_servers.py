"""A build that a server failed is retried on another server, even when that one is busy.

The pool here behaves like the real one on the point that matters: a server that failed is
given back and can be leased again at once (the real pool hands it out after its health check
passes), while the other server is still leased. Only the runner can keep the retry away
from the failed server then.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from executor_support import WAIT_S, FakePool, ScriptedFaults, SimFarm, plan_for, run, write_recipe

from preform_pipeline.executor import BuildStatus, RunResult
from preform_pipeline.simulator.protocol import SimError
from tests.recipe_texts import full_steps


class TestRetryOnAnotherServer:
    """The retry waits for another server instead of going back to the one that failed."""

    def test_the_retry_waits_for_the_busy_server_rather_than_reuse_the_failed_one(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        farm.add(ScriptedFaults(fail={"auto_orient": 1}))
        farm.add(ScriptedFaults())
        pool = FakePool([s.url for s in farm.servers])
        first, busy = pool.lease(WAIT_S), pool.lease(WAIT_S)
        assert (first.server.name, busy.server.name) == ("server-1", "server-2")
        first.release()  # server-1 takes the build; server-2 stays busy with other work

        plan = plan_for(write_recipe(tmp_path, full_steps(3)), parts[:3])
        results: list[RunResult] = []
        runner = threading.Thread(target=lambda: results.append(run(plan, pool, tmp_path / "o")))
        runner.start()
        try:
            pool.wait_for_failures(1)
        finally:
            busy.release()
            runner.join(WAIT_S * 3)
        assert not runner.is_alive()

        [outcome] = results[0].outcomes
        assert outcome.status is BuildStatus.SUCCEEDED
        assert [a.server for a in outcome.attempts] == ["server-1", "server-2"]
        assert outcome.attempts[0].error_type == "ServerInternalError"
        # The work was done where the report says: server-2 imported the models.
        assert farm.faults[1].seen.count("import_model") == 3
        assert farm.faults[0].seen.count("import_model") == 3
        assert len(farm.jobs()) == 1


@dataclass
class LosesTheScene(ScriptedFaults):
    """A server restarted behind the runner's back: the first ``op`` finds no scene."""

    op: str = "auto_orient"
    lost: bool = False

    def simulated_error(self, operation_id: str) -> SimError | None:
        with self.lock:
            self.seen.append(operation_id)
            if operation_id != self.op or self.lost:
                return None
            self.lost = True
        return SimError(400, "SCENE_NOT_FOUND", "no scene with that id")


class TestSceneLostInARestart:
    """A build whose server lost its scene (a restart between two calls) is retried, not
    failed: the scene came from the server, so its absence is the server's doing."""

    def test_the_build_goes_on_on_another_server(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        farm.add(LosesTheScene())
        farm.add(ScriptedFaults())
        pool = FakePool([s.url for s in farm.servers])
        plan = plan_for(write_recipe(tmp_path, full_steps(2)), parts[:2])

        result = run(plan, pool, tmp_path / "o")

        [outcome] = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert [a.error_type for a in outcome.attempts] == ["SceneLostError", None]
        assert len(farm.jobs()) == 1

    def test_a_scene_lost_at_the_print_is_a_refused_print_not_an_unconfirmed_one(
        self, tmp_path: Path, farm: SimFarm, parts: list[Path]
    ) -> None:
        # The server answered: it has nothing to print, so nothing was queued. The print
        # was begun, so the build is not retried (never printed twice) and needs no person.
        farm.add(LosesTheScene(op="print"))
        farm.add(ScriptedFaults())
        pool = FakePool([s.url for s in farm.servers])
        plan = plan_for(write_recipe(tmp_path, full_steps(2)), parts[:2])

        result = run(plan, pool, tmp_path / "o")

        [outcome] = result.outcomes
        assert outcome.status is BuildStatus.FAILED
        assert outcome.reason.startswith("print refused: ")
        assert "no longer has scene" in outcome.reason
        assert len(outcome.attempts) == 1
        assert farm.jobs() == []

"""The recipe's step options reach the server as the Local API names them: the runner hands
each step its recipe step (whose options take the API's names and drop the pipeline's own
keys), not the graph node's options as the recipe wrote them."""

from __future__ import annotations

from pathlib import Path

from executor_support import FakePool, SimFarm, iter_events, plan_for, run, write_box, write_recipe
from structlog.testing import capture_logs

from preform_pipeline.executor import BuildStatus

#: A printer named by its address: the recipe's ``printer_ip`` is the API's ``printer``.
STEPS = "steps:\n  - auto_layout\n  - print:\n      printer_ip: 192.0.2.11\n"


class TestStepOptionsAsTheApiNamesThem:
    """A print step whose recipe names the printer by ``printer_ip`` sends the job there."""

    def test_a_printer_named_by_its_address_gets_the_job(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        box = write_box(tmp_path / "m", "box", 10, 10, 10)
        farm.add()
        with capture_logs() as logs:
            result = run(plan_for(write_recipe(tmp_path, STEPS), [box]),
                         FakePool([s.url for s in farm.servers]), tmp_path / "out")
        (outcome,) = result.outcomes
        assert (outcome.status, outcome.reason) == (BuildStatus.SUCCEEDED, None)
        (job,) = farm.jobs()
        assert (job["job_id"], job["status"]) == (outcome.job_id, "PRINTING")
        assert [e["printer"] for e in iter_events(logs, "print_sent")] == ["192.0.2.11"]

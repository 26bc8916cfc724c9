"""The ``build_finished`` event of a printed build names the printer's job, so a log reader
can follow a build to its print without the run's report."""

from __future__ import annotations

import io
from pathlib import Path

from executor_support import (
    STEP_LIMIT_S,
    FakePool,
    SimFarm,
    capture_bound_logs,
    iter_events,
    plan_for,
    write_box,
    write_recipe,
)

from preform_pipeline.executor import PlainReporter, RunOptions, run_plan

PRINTING = "steps:\n  - auto_layout\n  - print:\n      printer: SimulatedForm4-1\n"


class TestAPrintedBuildsFinishEvent:
    """A printed build's ``build_finished`` carries the job id its outcome has."""

    def test_the_event_names_the_same_print_job_as_the_outcome(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        plan = plan_for(write_recipe(tmp_path, PRINTING),
                        [write_box(tmp_path / "m", "box", 10, 10, 10)])
        farm.add()
        with capture_bound_logs() as logs:
            result = run_plan(
                plan, FakePool([s.url for s in farm.servers]),
                options=RunOptions(output_root=tmp_path / "out", run_id="run-1",
                                   step_timeout_s=STEP_LIMIT_S),
                reporter=PlainReporter(io.StringIO()),
            )
        (outcome,) = result.outcomes
        assert outcome.job_id
        finished = [(e["build"], e["status"], e.get("job_id"))
                    for e in iter_events(logs, "build_finished")]
        assert finished == [(outcome.name, "succeeded", outcome.job_id)]

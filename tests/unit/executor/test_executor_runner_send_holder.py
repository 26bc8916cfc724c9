"""The server an attempt holds is recorded with its print in the job store (the send's
holder), so that recovery after a crash can prove the send is over: the retry's server,
not the one that failed the first attempt."""

from __future__ import annotations

import os
from pathlib import Path

from executor_support import ScriptedFaults, SimFarm, plan_for, run, write_box, write_recipe
from test_executor_steps_printing import _prepared_build
from test_executor_steps_tail_print import OwnPidPool

from preform_pipeline.executor import BuildStatus
from preform_pipeline.store import JobState, SqliteJobStore
from preform_pipeline.verify.tracking import PrintTracking

STEPS = ("steps:\n  - auto_layout\n  - print:\n      printer: SimulatedForm4-1\n"
         "      print_now: false\n")


class TestSendHolderOfTheAttempt:
    """A print sent on the retry's server records that server, with its process, as the
    holder of the send."""

    def test_the_store_names_the_server_of_the_attempt_that_sent(
        self, tmp_path: Path, farm: SimFarm, store: SqliteJobStore
    ) -> None:
        farm.add(ScriptedFaults(fail={"auto_layout": 1}))
        farm.add()
        ours = _prepared_build(store)
        tracking = PrintTracking(store=store, build_ids={"unit-001": ours})
        box = write_box(tmp_path / "m", "box", 10, 10, 10)
        result = run(plan_for(write_recipe(tmp_path, STEPS), [box]),
                     OwnPidPool([s.url for s in farm.servers]), tmp_path / "out",
                     print_tracking=tracking)
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert [(a.server, a.error_type) for a in outcome.attempts] == [
            ("server-1", "ServerInternalError"), ("server-2", None)]
        build = store.get_build(ours)
        assert (build.state, build.print_job_id) == (JobState.PRINT_SENT, outcome.job_id)
        assert build.send_holder is not None
        assert (build.send_holder["server"], build.send_holder["pid"],
                build.send_holder["remote"]) == ("server-2", os.getpid(), False)

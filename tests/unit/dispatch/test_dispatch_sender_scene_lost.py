"""A waiting build whose scene the server lost between loading its .form and printing it (a
restart): the server answered, it had nothing to print, so nothing was queued. The send is a
refused print (FAILED, with the server's words), as at a run's print step, not a send left
in doubt for a person to settle (a real SQLite store, the real sender, an in-process
simulator serving the Local API)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from preform_pipeline.dispatch.sender import FormSender
from preform_pipeline.errors import SceneLostError
from preform_pipeline.printing import PrintOwner
from preform_pipeline.printing.target import PrintTarget
from preform_pipeline.simulator.protocol import SimError
from preform_pipeline.store import JobState, SqliteJobStore
from tests.unit.executor.executor_support import (
    WAIT_S,
    FakePool,
    ScriptedFaults,
    SimFarm,
    saved_form,
)

FORM4 = "FORM-4-0"
GREY = "FLGPGR05"


@dataclass
class LosesTheSceneAtThePrint(ScriptedFaults):
    """The server restarted after the .form loaded: the print finds no scene."""

    def simulated_error(self, operation_id: str) -> SimError | None:
        with self.lock:
            self.seen.append(operation_id)
        if operation_id == "print":
            return SimError(400, "SCENE_NOT_FOUND", "no scene with that id")
        return None


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[SimFarm]:
    farm = SimFarm(tmp_path)
    farm.add(LosesTheSceneAtThePrint())
    yield farm
    farm.close()



class TestASceneLostBeforeThePrint:
    def test_the_send_is_refused_not_left_in_doubt(self, tmp_path: Path, farm: SimFarm) -> None:
        url = farm.servers[0].url
        form = saved_form(url, tmp_path)
        pool = FakePool([url])
        try:
            with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
                job = store.create_job(recipe="hot", source_path=str(tmp_path / "crown.stl"),
                                       state=JobState.PROCESSING)
                build = store.create_build(recipe="hot", job_ids=[job.id])
                store.transition_build(build.id, JobState.PREPARING, "preparing")
                store.transition_build(build.id, JobState.PREPARED, "prepared", form_path=form)
                owner = PrintOwner(store)
                target = PrintTarget(auto=True, machine_type=FORM4, material=GREY)
                build = owner.wait_for_printer(build.id, target.to_json(),
                                               job_name=build.job_key, priority=0,
                                               describe=target.describe())
                sender = FormSender(pool, owner, request_timeout_s=WAIT_S)

                with pytest.raises(SceneLostError):
                    sender(build, "Form4-Lab")

                after = store.get_build(build.id)
        finally:
            pool.close()
        assert after.state is JobState.FAILED
        assert "no longer has scene" in after.reason
        assert farm.jobs() == []

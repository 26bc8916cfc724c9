"""A waiting build's report is brought up to date when it is sent, whatever suffix the recipe
gave it (a real SQLite store, the real sender, an in-process simulator serving the Local
API): the dispatcher read only ``{build}.json``, so a ``{build}.txt`` or ``.JSON`` report
kept saying the build was never printed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.dispatch.sender import FormSender
from preform_pipeline.executor.report_beside import BUILD_REPORT_FORMAT
from preform_pipeline.printing import PrintOwner
from preform_pipeline.store import SqliteJobStore
from tests.unit.dispatch.test_dispatch_sender_claims import _saved_form, _waiting
from tests.unit.executor.executor_support import WAIT_S, FakePool, SimFarm

PRINTER = "SimulatedForm4-1"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[SimFarm, FakePool]]:
    """One in-process simulated server, and the pool that leases it."""
    farm = SimFarm(tmp_path)
    farm.add()
    pool = FakePool([s.url for s in farm.servers])
    yield farm, pool
    pool.close()
    farm.close()


class TestAReportOfTheRecipesSuffix:
    @pytest.mark.parametrize("suffix", [".txt", ".JSON"])
    def test_the_sent_builds_report_names_its_print(
        self, store: SqliteJobStore, served: tuple[SimFarm, FakePool], tmp_path: Path,
        suffix: str,
    ) -> None:
        farm, pool = served
        form = _saved_form(farm.servers[0].url, tmp_path, "unit-001")
        build = _waiting(store, form, "unit-001")
        report = form.with_suffix(suffix)
        report.write_text(json.dumps({
            "format": BUILD_REPORT_FORMAT, "job_key": build.job_key, "printer": None,
            "job_id": None, "steps_done": ["create_scene", "import_models", "save_form"],
        }), encoding="utf-8")

        FormSender(pool, PrintOwner(store), request_timeout_s=WAIT_S)(build, PRINTER)

        (job,) = farm.jobs()
        data = json.loads(report.read_text(encoding="utf-8"))
        assert (data["printer"], data["job_id"]) == (PRINTER, job["job_id"])
        assert data["steps_done"] == ["create_scene", "import_models", "save_form", "print"]

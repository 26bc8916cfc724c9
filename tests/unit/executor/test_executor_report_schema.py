"""The run report (JSON and CSV) holds, per build, everything a person needs to trace a print."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from executor_support import (
    FakePool,
    SimFarm,
    plan_for,
    run,
    write_box,
    write_mushroom,
    write_recipe,
)

from preform_pipeline.report import CSV_COLUMNS, write_run_report
from preform_pipeline.store import extract_key, is_key
from preform_pipeline.verify.tracking import PrintTracking

#: Orient, lay out, save, screenshot, print with the default job name, verify.
STEPS = """\
steps:
  - auto_orient
  - auto_layout
  - save_form
  - screenshot
  - print: {printer: SimulatedForm4-1}
  - verify
batching:
  max_models_per_build: 2
"""

#: Every build carries these in the JSON report and as CSV columns.
PER_BUILD_FIELDS = (
    "printer", "job_name", "job_key", "case_ids", "models", "source_files", "outputs",
    "reason", "verify", "verify_message", "warnings",
)


class TestReportSchema:
    """A real run on the simulator fills printer, job name and key, cases, files and reasons."""

    def test_each_build_is_traceable_from_the_report(self, tmp_path: Path, farm: SimFarm) -> None:
        case = tmp_path / "models" / "case-7"
        models = [write_box(case, "crown_a", 10, 10, 8), write_box(case, "crown_b", 12, 10, 8)]
        plan = plan_for(write_recipe(tmp_path, STEPS), [case])
        farm.add()
        result = run(
            plan, FakePool([s.url for s in farm.servers]), tmp_path / "out",
            print_tracking=PrintTracking(),
        )
        assert result.ok
        json_path, csv_path = write_run_report(result, tmp_path / "out" / "reports")
        build = json.loads(json_path.read_text(encoding="utf-8"))["builds"][0]
        assert set(PER_BUILD_FIELDS) <= set(build)
        assert build["printer"] == "SimulatedForm4-1"
        assert is_key(build["job_key"])
        # The default job name is the case id with the key, never the recipe name twice.
        assert build["job_name"] == f"case-7 {build['job_key']}"
        assert extract_key(build["job_name"]) == build["job_key"]
        assert build["case_ids"] == ["case-7"]
        assert sorted(build["source_files"]) == sorted(str(m) for m in models)
        assert sorted(Path(p).suffix for p in build["outputs"]) == [".form", ".png"]
        assert all(Path(p).is_file() for p in build["outputs"])
        assert build["verify"] == "skipped (no Web API credentials)"
        sent = farm.jobs()
        assert [j["job_name"] for j in sent] == [build["job_name"]]

        with csv_path.open(encoding="utf-8", newline="") as stream:
            rows = list(csv.DictReader(stream))
        assert set(PER_BUILD_FIELDS) <= set(CSV_COLUMNS)
        assert rows[0]["printer"] == "SimulatedForm4-1"
        assert rows[0]["job_name"] == build["job_name"]
        assert rows[0]["job_key"] == build["job_key"]
        assert rows[0]["case_ids"] == "case-7"
        assert rows[0]["verify"] == build["verify"]

    def test_a_long_reason_is_kept_whole(self, tmp_path: Path, farm: SimFarm) -> None:
        folder = tmp_path / "models"
        models = [write_mushroom(folder, f"overhanging_part_with_a_long_name_{i}") for i in (1, 2)]
        recipe = write_recipe(tmp_path, STEPS.replace(
            "  - save_form\n", "  - validate: {fail_on: [undersupported]}\n  - save_form\n"
        ))
        farm.add()
        result = run(plan_for(recipe, models), FakePool([s.url for s in farm.servers]),
                     tmp_path / "out")
        json_path, csv_path = write_run_report(result, tmp_path / "reports")
        reason = json.loads(json_path.read_text(encoding="utf-8"))["builds"][0]["reason"]
        assert reason == result.outcomes[0].reason and len(reason) > 80
        assert "overhanging_part_with_a_long_name_2" in reason
        with csv_path.open(encoding="utf-8", newline="") as stream:
            assert next(csv.DictReader(stream))["reason"] == reason

"""What a finished build's own report (``outputs.report``) says: every figure the build ended
with, for a build that is printed, one that is a dry run, and one that fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from executor_support import FakePool, SimFarm, plan_for, run, write_box, write_recipe

from preform_pipeline.executor import BuildStatus, RunResult

#: Two 10 mm boxes: 1 ml of resin each, in the simulator's estimate and in the plan's.
CASE = "case-7"

PRINTED = """\
steps:
  - auto_layout
  - estimate
  - save_form
  - print:
      printer: SimulatedForm4-1
  - verify
"""


def _run_case(tmp_path: Path, farm: SimFarm, steps: str,
              **options: Any) -> tuple[RunResult, dict[str, Any], list[Path]]:
    """Run the two boxes of one case folder through ``steps`` on one server: the result, the
    build's report as written, and the model files."""
    folder = tmp_path / "m" / CASE
    boxes = [write_box(folder, f"box{i}", 10, 10, 10) for i in range(2)]
    farm.add()
    # A generous step deadline: one attempt each, even on a loaded machine.
    options.setdefault("step_timeout_s", 30.0)
    result = run(plan_for(write_recipe(tmp_path, steps), [folder]),
                 FakePool([s.url for s in farm.servers]), tmp_path / "out", **options)
    (report,) = (tmp_path / "out").rglob("unit-001.json")
    data: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    return result, data, boxes


def _same_for_every_build(data: dict[str, Any], boxes: list[Path]) -> None:
    """What the plan alone decides: the build's name, files, case, units and planned resin."""
    assert (data["build"], data["index"], data["parent"], data["children"]) == (
        "unit-001", 1, None, [])
    assert data["models"] == ["box0.stl", "box1.stl"]
    assert data["source_files"] == [str(b) for b in boxes]
    assert data["case_ids"] == [CASE]
    assert data["units"] == ["box0.stl: MILLIMETERS (recipe)", "box1.stl: MILLIMETERS (recipe)"]
    assert data["estimated_volume_ml"] == 2.0


class TestPrintedBuild:
    """A printed build's report names its job, printer, figures, outputs and its one attempt."""

    def test_every_figure_of_the_printed_build(self, tmp_path: Path, farm: SimFarm) -> None:
        result, data, boxes = _run_case(tmp_path, farm, PRINTED)
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        _same_for_every_build(data, boxes)
        (job,) = farm.jobs()
        assert (data["status"], data["reason"], data["dry_run"]) == ("succeeded", None, False)
        assert (data["job_id"], data["printer"], data["job_name"]) == (
            job["job_id"], "SimulatedForm4-1", CASE)
        # No job store behind this run: nothing keys the job.
        assert data["job_key"] is None
        assert (data["material_ml"], data["server"], data["layout_calls"]) == (
            2.0, "server-1", 1)
        assert data["estimated_print_time_s"] > 0
        assert data["steps_done"] == ["create_scene", "import_models", "auto_layout",
                                      "estimate", "save_form", "print", "verify"]
        (form,) = data["outputs"]
        assert Path(form).name == "unit-001.form" and Path(form).is_file()
        assert (data["warnings"], data["dropped"], data["sls"]) == ([], [], None)
        assert data["verify"] == "skipped (no Web API credentials)"
        (attempt,) = data["attempt_details"]
        assert (attempt["number"], attempt["server"], attempt["error"]) == (1, "server-1", None)
        # The build's time covers its one attempt's time on the server.
        assert data["duration_s"] >= attempt["busy_s"] > 0


class TestDryRun:
    """A dry run's report says so: nothing sent, the print's skip a warning, verify skipped."""

    def test_the_dry_run_build_report(self, tmp_path: Path, farm: SimFarm) -> None:
        result, data, boxes = _run_case(tmp_path, farm, PRINTED, dry_run=True)
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        _same_for_every_build(data, boxes)
        assert farm.jobs() == []
        assert (data["dry_run"], data["job_id"], data["printer"], data["job_name"]) == (
            True, None, None, None)
        assert data["warnings"] == ["print skipped (--dry-run)"]
        assert data["verify"] == "skipped"
        assert data["material_ml"] == 2.0


class TestFailedBuild:
    """A build that fails keeps its reason and what it did before the failing step."""

    def test_the_failed_build_report(self, tmp_path: Path, farm: SimFarm) -> None:
        result, data, boxes = _run_case(
            tmp_path, farm, "steps:\n  - auto_layout\n  - estimate:\n      max_print_time_s: 1\n")
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.FAILED
        _same_for_every_build(data, boxes)
        assert (data["status"], data["reason"]) == ("failed", outcome.reason)
        assert "print time" in data["reason"]
        assert data["steps_done"] == ["create_scene", "import_models", "auto_layout"]
        assert (data["layout_calls"], data["job_id"], data["outputs"]) == (1, None, [])


class TestAReportOfAnotherSuffix:
    """A recipe's report need not be ``.json``: an earlier build's report at the name (one
    that failed, with no ``.form``) kept the next ``.form`` off only when it was ``.json``,
    and the new ``.form`` then sat beside the other build's report, its own at ``-2``."""

    def test_the_form_and_its_report_take_the_same_free_name(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        folder, out = _one_box_on_one_server(tmp_path, farm)
        out.mkdir()
        (out / "unit-001.txt").write_text("an earlier failed build's\n", encoding="utf-8")
        recipe = write_recipe(tmp_path, "steps:\n  - auto_layout\n  - save_form\n"
                              "outputs:\n  form: '{build}.form'\n  report: '{build}.txt'\n")

        result = _run_on(farm, recipe, folder, out)

        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
            "unit-001-2.form", "unit-001-2.txt", "unit-001.txt"]
        assert json.loads((out / "unit-001-2.txt").read_text(encoding="utf-8"))["outputs"] == [
            str(out / "unit-001-2.form")]
        assert (out / "unit-001.txt").read_text(encoding="utf-8") == (
            "an earlier failed build's\n")


class TestAScreenshotBesideItsForm:
    """A build's screenshot took its free name apart from its ``.form``: after an earlier
    run's build that failed past its screenshot (its ``.png`` left, its report kept in
    ``reports/``), the next run's screenshot went to ``unit-001-2.png`` and its ``.form`` to
    ``unit-001.form``."""

    def test_the_form_and_its_screenshot_take_one_free_name_over_two_runs(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        folder, out = _one_box_on_one_server(tmp_path, farm)
        outputs = ("outputs:\n  form: '{build}.form'\n  screenshot: '{build}.png'\n"
                   "  report: 'reports/{build}.json'\n")
        results = []
        for limit_s in (1, 10**6):  # the first run's build fails after its screenshot
            recipe = write_recipe(tmp_path, "steps:\n  - auto_layout\n  - screenshot\n"
                                  f"  - estimate:\n      max_print_time_s: {limit_s}\n"
                                  "  - save_form\n" + outputs)
            results.append(_run_on(farm, recipe, folder, out))

        assert [o.status for r in results for o in r.outcomes] == [
            BuildStatus.FAILED, BuildStatus.SUCCEEDED]
        assert sorted(p.name for p in out.iterdir() if p.is_file()) == [
            "unit-001-2.form", "unit-001-2.png", "unit-001.png"]
        report = json.loads((out / "reports" / "unit-001-2.json").read_text(encoding="utf-8"))
        assert report["outputs"] == [str(out / "unit-001-2.png"), str(out / "unit-001-2.form")]


def _one_box_on_one_server(tmp_path: Path, farm: SimFarm) -> tuple[Path, Path]:
    """A case folder of one 10 mm box, one simulated server, and the output folder's path."""
    folder = tmp_path / "m" / CASE
    write_box(folder, "box0", 10, 10, 10)
    farm.add()
    return folder, tmp_path / "out"


def _run_on(farm: SimFarm, recipe: Path, folder: Path, out: Path) -> RunResult:
    # A generous step deadline: one attempt each, even on a loaded machine.
    return run(plan_for(recipe, [folder]), FakePool([s.url for s in farm.servers]), out,
               step_timeout_s=30.0)

"""``preform-pipeline run`` end to end: a batch of sample models on simulated servers.

Real subprocesses throughout: the command line, its server pool, three simulator processes.
"""

from __future__ import annotations

import csv
from pathlib import Path

from run_e2e_support import (
    command,
    fleet_jobs,
    full_steps,
    printed_name,
    run_cli,
    write_recipe,
    write_settings,
)

from preform_pipeline.commands.run import SIMULATED_LINE
from preform_pipeline.plan.builds import plan_builds, read_models
from preform_pipeline.recipes import load_recipe
from preform_pipeline.store import extract_key


def thirty_models(sample_models_dir: Path) -> list[Path]:
    batch = sorted((sample_models_dir / "batch").glob("*.stl"))
    parts = sorted((sample_models_dir / "parts").iterdir())
    models = [*batch, *parts]
    assert len(models) == 30
    return models


class TestThirtyModelsOnThreeServers:
    """30 sample models on 3 simulated servers give the planned builds, files and report."""

    def test_the_run_makes_the_right_builds_files_and_report(
        self, tmp_path: Path, sample_models_dir: Path
    ) -> None:
        models = thirty_models(sample_models_dir)
        recipe = write_recipe(tmp_path, full_steps(10))
        settings = write_settings(tmp_path, count=3)
        run = run_cli(tmp_path, command(tmp_path, recipe, models, "--settings", str(settings)))

        assert run.returncode == 0, run.stderr[-3000:]
        assert run.stdout.splitlines()[0] == SIMULATED_LINE
        report = run.report
        assert report["simulated"] is True and report["ok"] is True
        assert report["servers"] == 3

        loaded = load_recipe(recipe)
        planned = plan_builds(loaded, read_models(models, import_spec=loaded.import_options))
        expected = {b.name: sorted(str(p) for p in b.paths) for b in planned.builds}
        got = {b["build"]: sorted(b["source_files"]) for b in run.builds()}
        assert got == expected
        assert sorted(f for files in got.values() for f in files) == sorted(map(str, models))

        jobs = fleet_jobs(tmp_path)
        assert len(jobs) == len(expected)
        assert {j["job_id"] for j in jobs} == {b["job_id"] for b in run.builds()}
        assert len({extract_key(j["job_name"]) for j in jobs}) == len(jobs)  # one key each
        assert sorted(printed_name(j) for j in jobs) == sorted(f"e2e-{n}" for n in expected)
        assert len({b["server"] for b in run.builds()}) == 3

        for build in run.builds():
            assert build["status"] == "succeeded"
            assert build["material_ml"] > 0 and build["estimated_print_time_s"] > 0
            outputs = [Path(p) for p in build["outputs"]]
            assert sorted(p.suffix for p in outputs) == [".form", ".png"]
            assert all(p.is_file() and p.stat().st_size > 0 for p in outputs)
            form = next(p for p in outputs if p.suffix == ".form")
            assert form.with_suffix(".json").is_file()  # the build's own report

        csv_path = next((run.out / "reports").glob("*.csv"))
        with csv_path.open(encoding="utf-8", newline="") as stream:
            rows = list(csv.DictReader(stream))
        assert sorted(r["build"] for r in rows) == sorted(expected)
        assert all(r["simulated"] == "true" and r["job_id"] for r in rows)

        steps = run.events_named("step_finished")
        assert steps and all(
            {"run_id", "build", "step", "server"} <= set(e) for e in steps
        )
        assert {e["run_id"] for e in steps} == {report["run_id"]}


class TestDryRun:
    """--dry-run prepares every build but sends nothing to a printer."""

    def test_a_dry_run_saves_forms_and_prints_nothing(
        self, tmp_path: Path, sample_models_dir: Path
    ) -> None:
        models = sorted((sample_models_dir / "batch").glob("*.stl"))[:4]
        recipe = write_recipe(tmp_path, full_steps(2))
        settings = write_settings(tmp_path, count=2)
        run = run_cli(
            tmp_path, command(tmp_path, recipe, models, "--settings", str(settings), "--dry-run")
        )
        assert run.returncode == 0, run.stderr[-3000:]
        assert run.report["dry_run"] is True
        assert fleet_jobs(tmp_path) == []
        assert all(b["job_id"] is None for b in run.builds())
        assert all(any(p.endswith(".form") for p in b["outputs"]) for b in run.builds())


class TestRejectedUpFront:
    """A part larger than the machine is rejected before any server sees it."""

    def test_an_oversized_part_is_rejected_and_the_others_still_run(
        self, tmp_path: Path, sample_models_dir: Path
    ) -> None:
        oversized = sample_models_dir / "oversized" / "long_bar_260mm.stl"
        models = [*sorted((sample_models_dir / "batch").glob("*.stl"))[:2], oversized]
        recipe = write_recipe(tmp_path, full_steps(10))
        settings = write_settings(tmp_path, count=2)
        run = run_cli(tmp_path, command(tmp_path, recipe, models, "--settings", str(settings)))

        assert run.returncode == 1
        assert "long_bar_260mm.stl (260.0 x 60.0 x 20.0 mm)" in run.stdout
        rejected = run.report["rejected"]
        assert [r["path"] for r in rejected] == [str(oversized)]
        assert rejected[0]["size_mm"] == [260.0, 60.0, 20.0]
        builds = run.builds()
        assert [b["status"] for b in builds] == ["succeeded"]
        assert str(oversized) not in builds[0]["source_files"]
        assert builds[0]["layout_calls"] == 1 and builds[0]["attempts"] == 1
        assert len(fleet_jobs(tmp_path)) == 1

"""``preform-pipeline run`` whose report cannot be written says which file and why, briefly."""

from __future__ import annotations

from pathlib import Path

from run_e2e_support import command, run_cli, write_recipe, write_settings


class TestAReportFolderInTheWay:
    """A file named like the reports folder: one error line with the path and a hint."""

    def test_the_error_names_the_report_and_no_traceback_is_shown(
        self, tmp_path: Path, sample_models_dir: Path
    ) -> None:
        recipe = write_recipe(tmp_path, "steps:\n  - save_form\n")
        settings = write_settings(tmp_path, count=1)
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "reports").write_text("", encoding="utf-8")
        argv = command(
            tmp_path, recipe, [sample_models_dir / "parts" / "gear.obj"],
            "--dry-run", "--settings", str(settings),
        )
        done = run_cli(tmp_path, argv)
        assert done.returncode != 0
        (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("error: ")]
        assert line.startswith(f"error: {tmp_path / 'out' / 'reports'}/")
        assert ".json: making its folder failed" in line
        assert "a file stands where a folder of the path should be" in line
        assert "Traceback" not in done.stderr
        assert (tmp_path / "out" / "reports").is_file()

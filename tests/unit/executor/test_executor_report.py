"""Run reports (JSON and CSV), progress output, and the run command's small helpers."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

from executor_support import plan_for, write_recipe

from preform_pipeline import cli
from preform_pipeline.commands._common import EXIT_FAILURE
from preform_pipeline.commands._console import exit_line
from preform_pipeline.commands.run import parse_simulator_args
from preform_pipeline.executor import (
    AttemptRecord,
    BuildOutcome,
    BuildStatus,
    PlainReporter,
    RichReporter,
    RunResult,
    make_reporter,
)
from preform_pipeline.executor.progress import run_line
from preform_pipeline.executor.runroot import output_root
from preform_pipeline.plan.builds import Rejection
from preform_pipeline.report import CSV_COLUMNS, result_to_dict, write_run_report


def outcome(name: str, status: BuildStatus, **extra: object) -> BuildOutcome:
    values: dict[str, object] = {
        "name": name,
        "index": 1,
        "status": status,
        "models": ("a.stl", "b.stl"),
        "source_files": ("/m/a.stl", "/m/b.stl"),
        "attempts": (AttemptRecord(1, "server-1", 1.5),),
        "server": "server-1",
    }
    values.update(extra)
    return BuildOutcome(**values)  # type: ignore[arg-type]


def result(*outcomes: BuildOutcome, rejected: tuple[Rejection, ...] = ()) -> RunResult:
    return RunResult(
        run_id="20240101-000000-abcdef",
        recipe="r",
        simulated=True,
        dry_run=False,
        outcomes=outcomes,
        rejected=rejected,
        wall_s=2.0,
        server_count=2,
        pool_mode="SIMULATED",
    )


OVERSIZED = Rejection(
    Path("/m/long.stl"), "too large", (260.0, 60.0, 20.0), (200.0, 125.0, 210.0)
)


class TestRunResult:
    """A run is ok only when every build succeeded and nothing was rejected."""

    def test_splits_count_through_their_children(self) -> None:
        run = result(
            outcome("b1", BuildStatus.SPLIT, children=("b1.1", "b1.2")),
            outcome("b1.1", BuildStatus.SUCCEEDED),
            outcome("b1.2", BuildStatus.SUCCEEDED),
        )
        assert run.ok

    def test_a_failed_build_or_a_rejected_model_makes_it_not_ok(self) -> None:
        assert not result(outcome("b1", BuildStatus.FAILED, reason="x")).ok
        assert not result(outcome("b1", BuildStatus.SUCCEEDED), rejected=(OVERSIZED,)).ok
        assert not result().ok


class TestReports:
    """The JSON and CSV reports list builds and rejected models with the simulated flag."""

    def test_json_report_has_the_run_and_every_build(self, tmp_path: Path) -> None:
        run = result(
            outcome(
                "b1", BuildStatus.SUCCEEDED, material_ml=12.5, print_time_s=3600.0,
                job_id="job-1",
            ),
            outcome("b2", BuildStatus.FAILED, reason="validation failed"),
            rejected=(OVERSIZED,),
        )
        json_path, csv_path = write_run_report(run, tmp_path / "reports")
        assert json_path.name == "20240101-000000-abcdef.json"
        data = json.loads(json_path.read_text(encoding="utf-8"))
        assert data["simulated"] is True
        assert data["ok"] is False
        assert data["counts"] == {"succeeded": 1, "failed": 1}
        first = data["builds"][0]
        assert (first["material_ml"], first["estimated_print_time_s"], first["job_id"]) == (
            12.5, 3600.0, "job-1",
        )
        assert first["source_files"] == ["/m/a.stl", "/m/b.stl"]
        assert data["rejected"][0]["size_mm"] == [260.0, 60.0, 20.0]
        assert csv_path.is_file()

    def test_csv_report_has_a_row_per_build_and_per_rejected_model(self, tmp_path: Path) -> None:
        run = result(outcome("b1", BuildStatus.SUCCEEDED, job_id="j"), rejected=(OVERSIZED,))
        _, csv_path = write_run_report(run, tmp_path)
        with csv_path.open(encoding="utf-8", newline="") as stream:
            rows = list(csv.DictReader(stream))
        assert tuple(rows[0]) == CSV_COLUMNS
        assert rows[0]["models"] == "a.stl;b.stl"
        assert rows[0]["simulated"] == "true"
        assert rows[1]["status"] == "rejected"
        assert "260.0 x 60.0 x 20.0 mm" in rows[1]["reason"]

    def test_an_interrupted_run_says_so(self) -> None:
        run = RunResult("id", "r", False, False, (), cancelled=True)
        assert result_to_dict(run)["interrupted"] is True


class TestHeldAndWaitingBuilds:
    """The JSON report says which builds were held for approval or left waiting for a free
    printer (prepared, nothing sent) and counts them as the console's closing and exit lines
    do, from the same values; its by-status ``counts`` stay as scripts read them."""

    def test_the_tally_is_the_count_the_run_and_exit_lines_say(self, tmp_path: Path) -> None:
        run = result(
            outcome("b1", BuildStatus.SUCCEEDED, job_id="j1"),
            outcome("b2", BuildStatus.SUCCEEDED, held=True, job_key="PP-HELD00001"),
            outcome("b3", BuildStatus.SUCCEEDED, waiting=True, printer="auto"),
            outcome("b4", BuildStatus.FAILED, reason="validation failed"),
            outcome("b5", BuildStatus.SPLIT, children=("b5.1", "b5.2")),
            outcome("b5.1", BuildStatus.SUCCEEDED, parent="b5", waiting=True, printer="auto"),
            outcome("b5.2", BuildStatus.PRINT_UNCONFIRMED, parent="b5", reason="no answer"),
        )
        json_path, csv_path = write_run_report(run, tmp_path)
        data = json.loads(json_path.read_text(encoding="utf-8"))
        assert data["tally"] == {"builds": 6, "succeeded": 1, "held": 1, "waiting": 2,
                                 "failed": 1, "print_unconfirmed": 1, "cancelled": 0,
                                 "split": 1, "print_failed": 0}
        assert data["counts"] == {"succeeded": 4, "failed": 1, "split": 1,
                                  "print_unconfirmed": 1}
        assert [(b["build"], b["held"], b["waiting"]) for b in data["builds"]] == [
            ("b1", False, False), ("b2", True, False), ("b3", False, True),
            ("b4", False, False), ("b5", False, False), ("b5.1", False, True),
            ("b5.2", False, False)]
        # The CSV says them too, as its last columns: its status alone reads "succeeded".
        with csv_path.open(encoding="utf-8", newline="") as stream:
            rows = list(csv.DictReader(stream))
        assert list(CSV_COLUMNS[-2:]) == ["held", "waiting"]
        assert [(r["build"], r["status"], r["held"], r["waiting"]) for r in rows] == [
            ("b1", "succeeded", "false", "false"), ("b2", "succeeded", "true", "false"),
            ("b3", "succeeded", "false", "true"), ("b4", "failed", "false", "false"),
            ("b5", "split", "false", "false"), ("b5.1", "succeeded", "false", "true"),
            ("b5.2", "print_unconfirmed", "false", "false")]
        said = (f"{data['tally']['succeeded']} of {data['tally']['builds']} builds succeeded, "
                f"{data['tally']['held']} held for approval, {data['tally']['waiting']} "
                "waiting for a free printer")
        assert run_line(run) == (f"run {run.run_id} finished in 2.0 s: {said} (1 split into "
                                 "smaller builds)")
        assert exit_line(run, EXIT_FAILURE) == (
            f"exit 1: 1 build failed, 1 print unconfirmed, {said}")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class TestProgress:
    """Plain lines when the output is not a terminal, bars when it is."""

    def test_a_split_build_is_not_counted_as_a_build_that_failed(self) -> None:
        stream = io.StringIO()
        builds = (
            outcome("r-001", BuildStatus.SPLIT, children=("r-001.1", "r-001.2")),
            outcome("r-001.1", BuildStatus.SUCCEEDED, parent="r-001"),
            outcome("r-001.2", BuildStatus.SUCCEEDED, parent="r-001"),
        )
        PlainReporter(stream).run_finished(RunResult("run-1", "r", True, False, builds))
        assert "2 of 2 builds succeeded (1 split into smaller builds)" in stream.getvalue()

    def test_a_pipe_gets_plain_lines(self, tmp_path: Path, sample_models_dir: Path) -> None:
        stream = io.StringIO()
        reporter = make_reporter(stream)
        assert isinstance(reporter, PlainReporter)
        plan = plan_for(
            write_recipe(tmp_path, "steps:\n  - auto_layout\n"),
            [sample_models_dir / "parts" / "gear.obj"],
        )
        reporter.run_started("run-1", plan.builds, servers=2, simulated=True)
        reporter.build_started("unit-001", server="server-1", attempt=1, steps=3)
        reporter.step_started("unit-001", "auto_layout", index=3, total=3)
        reporter.build_finished(outcome("unit-001", BuildStatus.SUCCEEDED))
        lines = stream.getvalue().splitlines()
        assert lines[0] == "run run-1: 1 build, 1 model on 2 simulated servers"
        assert lines[2] == "[unit-001] step 3/3 auto_layout"
        assert lines[3].startswith("[unit-001] succeeded on server-1")
        assert lines[3].endswith("(1/1 build done)")

    def test_a_terminal_gets_bars_and_a_line_per_finished_build(
        self, tmp_path: Path, sample_models_dir: Path
    ) -> None:
        stream = _Terminal()
        reporter = make_reporter(stream)
        assert isinstance(reporter, RichReporter)
        plan = plan_for(
            write_recipe(tmp_path, "steps:\n  - auto_layout\n"),
            [sample_models_dir / "parts" / "gear.obj"],
        )
        reporter.run_started("run-1", plan.builds, servers=1, simulated=True)
        reporter.build_started("unit-001", server="server-1", attempt=1, steps=3)
        reporter.step_started("unit-001", "auto_layout", index=3, total=3)
        reporter.step_progress("unit-001", "auto_layout", 0.5)
        reporter.build_finished(
            outcome("unit-001", BuildStatus.FAILED, reason="validation failed")
        )
        reporter.close()
        assert "unit-001: failed on server-1" in stream.getvalue()
        assert "validation failed" in stream.getvalue()

    def test_quiet_says_nothing(self) -> None:
        stream = io.StringIO()
        make_reporter(stream, quiet=True).build_started("b", server="s", attempt=1, steps=1)
        assert stream.getvalue() == ""


class TestRunCommandHelpers:
    """Simulator arguments go to every server or to one; the output root follows the recipe."""

    def test_simulator_args_can_target_one_server(self) -> None:
        args = parse_simulator_args(
            ["--latency=instant", "server-2:--exit-during=auto_support", "--fleet-dir=C:\\x"]
        )
        assert args("server-1") == ("--latency=instant", "--fleet-dir=C:\\x")
        assert args("server-2") == (
            "--latency=instant", "--fleet-dir=C:\\x", "--exit-during=auto_support",
        )

    def test_the_output_root_is_the_recipes_relative_to_its_folder(self, tmp_path: Path) -> None:
        plan = plan_for(write_recipe(tmp_path, "steps:\n  - auto_layout\n"), [])
        root = output_root(plan.recipe, None, datetime(2024, 5, 6))
        assert root == (tmp_path / "output" / "unit").resolve()
        assert output_root(plan.recipe, tmp_path / "o", datetime(2024, 5, 6)) == tmp_path / "o"

    def test_the_settings_output_root_comes_after_the_override_and_before_the_recipe(
        self, tmp_path: Path
    ) -> None:
        plan = plan_for(write_recipe(tmp_path, "steps:\n  - auto_layout\n"), [])
        started = datetime(2024, 5, 6)
        configured = tmp_path / "from-settings"
        assert output_root(plan.recipe, None, started, configured) == configured
        assert output_root(plan.recipe, tmp_path / "o", started, configured) == tmp_path / "o"

    def test_an_invalid_recipe_is_reported_like_validate_does_and_nothing_runs(
        self, tmp_path: Path, sample_models_dir: Path
    ) -> None:
        recipe = write_recipe(tmp_path, "steps:\n  - auto_suport\n")
        out, err = io.StringIO(), io.StringIO()
        code = cli.run(
            ["run", str(recipe), str(sample_models_dir / "parts"), "--output", str(tmp_path)],
            out,
            err,
        )
        assert code == 1
        assert "did you mean 'auto_support'?" in err.getvalue()
        assert err.getvalue().rstrip().endswith("recipe is invalid, nothing was run")
        assert not (tmp_path / "reports").exists()


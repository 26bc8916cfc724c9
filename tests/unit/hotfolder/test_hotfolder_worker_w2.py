"""The hot folder's worker under mutation (session 19, group w2, its functions run whole):
a sidecar's print target (what it names, how it is checked, how the recipe is pointed at
it) and how a build's outcome settles its store build and files."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from daemon_support import (
    RunnerLosingSent,
    Script,
    make_daemon,
    run_daemon_once,
)
from structlog.testing import capture_logs

from preform_pipeline.hotfolder.testing import (
    fleet_jobs,
    tetra_stl_bytes,
    wait_for,
    write_recipe,
)
from preform_pipeline.hotfolder.worker import recipe_printing_to, sidecar_target, target_problem
from preform_pipeline.plan.builds import BuildPlan
from preform_pipeline.recipes import load_recipe
from preform_pipeline.recipes.model import Recipe
from preform_pipeline.recipes.printers import KnownPrinter, KnownPrinters
from preform_pipeline.store import Job, JobState, SqliteJobStore

FLEET = KnownPrinters(
    (
        KnownPrinter("Form4-A", ("FORM-4-0",)),
        KnownPrinter("Form4-B", ("FORM-4-0",)),
        KnownPrinter("Form3-C", ("FORM-3-0",)),
        KnownPrinter("Lab queue"),  # a queue: the server checks its machine type
    ),
    "the test's fleet",
)
UNKNOWN_FORM3CC = "unknown printer 'Form3-CC' (not in the test's fleet); did you mean 'Form3-C'?"
FORM3_MISMATCH = "printer 'Form3-C' is a FORM-3-0, not a FORM-4-0 (the test's fleet)"


def _put(tmp_path: Path, name: str, seed: int, sidecar: str | None = None, *,
         size_mm: float = 2.0) -> None:
    """A model file (and its sidecar) dropped at ``inbox/name``."""
    path = tmp_path / "inbox" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tetra_stl_bytes(seed, size_mm=size_mm))
    if sidecar is not None:
        path.with_suffix(".yaml").write_text(sidecar, encoding="utf-8")


def _note(tmp_path: Path, name: str) -> str:
    return (tmp_path / "inbox" / "failed" / f"{name}.error.txt").read_text(encoding="utf-8")


def _job(fields: dict[str, Any]) -> Job:
    now = datetime(2026, 12, 4, tzinfo=timezone.utc)
    return Job(id=1, job_key="k1", recipe="hot", source_path=Path("p.stl"),
               original_name="p.stl", state=JobState.PREPARING, created_at=now,
               updated_at=now, fields=fields)


class TestTheSidecarsPrinterField:
    """A sidecar's `printer:` is the case's target, trimmed; empty or absent is the recipe's."""

    @pytest.mark.parametrize(("fields", "expected"), [
        ({}, None),
        ({"printer": None}, None),
        ({"printer": ""}, None),
        ({"printer": "   "}, None),
        ({"printer": "  Form4-A \t"}, "Form4-A"),
        ({"printer": 7}, "7"),
        ({"patient": "Form4-A"}, None),
    ])
    def test_the_target_is_the_trimmed_text_or_none(
        self, fields: dict[str, Any], expected: str | None
    ) -> None:
        assert sidecar_target(_job(fields)) == expected


class TestASidecarTargetChecked:
    """A sidecar target is usable when every named printer is known and of the scene's type."""

    @pytest.mark.parametrize("target", [
        "Form4-A", " Form4-A ", "auto", "AUTO", " Auto ", "Form4-A,Form4-B", "auto,Form4-B",
        "Form4-A,,Form4-B", ",", "Lab queue",
    ])
    def test_known_names_of_the_machine_type_and_auto_are_usable(self, target: str) -> None:
        assert target_problem(target, FLEET, "FORM-4-0") is None

    @pytest.mark.parametrize("target", ["Form3-CC", "Form4-A,Form3-CC", "auto,Form3-CC",
                                        "Form3-CC,Form3-C", ",Form3-CC"])
    def test_the_first_unknown_name_is_the_problem_with_its_suggestion(
        self, target: str
    ) -> None:
        assert target_problem(target, FLEET, "FORM-4-0") == UNKNOWN_FORM3CC

    @pytest.mark.parametrize("target", ["Form3-C", "Form4-A,Form3-C", "auto, Form3-C"])
    def test_a_printer_of_another_machine_type_is_the_problem(self, target: str) -> None:
        assert target_problem(target, FLEET, "FORM-4-0") == FORM3_MISMATCH

    def test_without_the_scenes_machine_type_any_known_printer_is_usable(self) -> None:
        assert target_problem("Form3-C,Form4-A", FLEET, None) is None

    def test_a_name_is_matched_exactly_not_by_case(self) -> None:
        assert target_problem("form3-c", FLEET, "FORM-4-0") == (
            "unknown printer 'form3-c' (not in the test's fleet); did you mean 'Form3-C'?")


class TestTheRecipePointedAtATarget:
    """The recipe's print step sends to the sidecar's target alone; nothing else changes."""

    @pytest.fixture
    def recipe(self, tmp_path: Path) -> Recipe:
        loaded = load_recipe(write_recipe(tmp_path, extra_steps=["estimate"]))
        # A print step naming its target three ways, as a recipe may (one of them, in a
        # valid file): every one of them gives way to the sidecar's.
        steps = tuple(
            replace(s, options={**s.options, "printer_ip": "10.0.0.9",
                                "fleet_group": "Night shift", "job_name": "{stem}"})
            if s.kind == "print" else s
            for s in loaded.steps
        )
        return replace(loaded, steps=steps)

    def test_the_print_step_names_only_the_target_and_keeps_its_other_options(
        self, recipe: Recipe
    ) -> None:
        pointed = recipe_printing_to(recipe, "Form4-B")
        step = pointed.step("print")
        assert step is not None
        before = recipe.step("print")
        assert before is not None
        expected = {k: v for k, v in before.options.items()
                    if k not in ("printer", "printer_ip", "fleet_group")}
        assert dict(step.options) == {**expected, "printer": "Form4-B"}
        assert expected["job_name"] == "{stem}"

    def test_the_other_steps_and_the_recipe_are_unchanged(self, recipe: Recipe) -> None:
        pointed = recipe_printing_to(recipe, "Form4-B")
        assert [s for s in pointed.steps if s.kind != "print"] == [
            s for s in recipe.steps if s.kind != "print"]
        assert [s.kind for s in pointed.steps] == [s.kind for s in recipe.steps]
        assert [s.id for s in pointed.steps] == [s.id for s in recipe.steps]
        assert replace(pointed, steps=recipe.steps) == recipe
        # The recipe given is left as it was (a batch's other targets still use it).
        original = recipe.step("print")
        assert original is not None and original.options["printer_ip"] == "10.0.0.9"


class TestSidecarTargetsCheckedInTheDaemon:
    """Each case whose sidecar target cannot be used fails alone, with a note saying why."""

    def test_bad_targets_fail_their_cases_whole_and_a_good_one_prints(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        _put(tmp_path, "C-1/upper.stl", 1, "printer: Form4-A\n")
        _put(tmp_path, "C-7/upper.stl", 2, "printer: Form3-CC\n")
        _put(tmp_path, "C-7/lower.stl", 3, "printer: Form3-CC\n")
        _put(tmp_path, "loose.stl", 4, "printer: Form3-C\n")
        with capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                                    known_printers=FLEET))
        assert [j["printer"] for j in fleet_jobs(script.fleet_dir)] == ["Form4-A"]
        states = {j.source_path.name if j.case_id is None else f"{j.case_id}/{j.original_name}":
                  j.state for j in store.list_jobs()}
        assert states == {"C-1/upper.stl": JobState.PRINT_SENT,
                          "C-7/upper.stl": JobState.FAILED, "C-7/lower.stl": JobState.FAILED,
                          "loose.stl": JobState.FAILED}
        todo = ("What to do: correct the sidecar's `printer:` and drop the case again (its "
                "other cases were not affected)\n")
        for model in ("upper.stl", "lower.stl"):
            note = _note(tmp_path, f"C-7/{model}")
            assert note.startswith(
                f"What failed: case C-7: model {model}: step print: sidecar printer: "
                f"{UNKNOWN_FORM3CC}\nWhere: checking case C-7 before batching\n")
            assert note.endswith(todo)
        loose = _note(tmp_path, "loose.stl")
        assert loose.startswith(
            f"What failed: model loose.stl: step print: sidecar printer: {FORM3_MISMATCH}\n"
            "Where: checking case loose.stl before batching\n")
        assert loose.endswith(todo)
        events = sorted((e["case_id"] or "", e["target"], e["reason"], e["log_level"])
                        for e in logs if e["event"] == "case_target_unknown")
        assert events == [("", "Form3-C", FORM3_MISMATCH, "warning"),
                          ("C-7", "Form3-CC", UNKNOWN_FORM3CC, "warning"),
                          ("C-7", "Form3-CC", UNKNOWN_FORM3CC, "warning")]


class TestAPrintWhoseSentWriteWasLost:
    """A print the server accepted, its ``sent`` write lost, is recorded with its job id."""

    def test_the_builds_history_names_the_print_job(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        _put(tmp_path, "p.stl", 1)
        run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                                runner=RunnerLosingSent))
        [printed] = fleet_jobs(script.fleet_dir)
        (build,) = store.list_builds()
        last = store.build_history(build.id)[-1]
        assert (last.to_state, last.reason) == (
            JobState.PRINT_SENT, f"print accepted (job {printed['job_id']})")
        assert build.print_job_id == printed["job_id"]


class TestABuildStoppedBeforeItPrinted:
    """A build stopped at the deadline before its print is taken apart, saying why."""

    def test_the_builds_history_says_it_is_prepared_again_on_the_next_start(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        script.block = threading.Event()
        daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                             stop_deadline_s=0.3)
        _put(tmp_path, "p.stl", 1)
        result: list[int] = []
        thread = threading.Thread(target=lambda: result.append(daemon.run()))
        thread.start()
        try:
            wait_for(lambda: bool(script.runs), 10, what="the batch to start")
        finally:
            daemon.stop()
            thread.join(10)
        assert result == [0]
        (build,) = store.list_builds()
        last = store.build_history(build.id)[-1]
        assert (build.state, last.reason) == (
            JobState.CANCELLED, "stopped before it was printed; prepared again on the next start")
        assert fleet_jobs(script.fleet_dir) == []


class TestABuildFailedWhileTheStoreWasAway:
    """A build that failed on the job store being away is taken apart and batched again."""

    def test_its_history_says_why_and_the_file_prints_once(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        failures = ["cannot reach the PostgreSQL job store while reading build 1"]
        script.fail = lambda build: failures.pop() if failures else None
        script.fail_store_outage = True
        _put(tmp_path, "p.stl", 1)
        run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path)))
        first, second = store.list_builds()
        assert (first.state, store.build_history(first.id)[-1].reason) == (
            JobState.CANCELLED, "the job store was away while it was prepared; batched again")
        assert second.state is JobState.PRINT_SENT
        assert len(fleet_jobs(script.fleet_dir)) == 1


class TestAJobCancelledWhileItsBuildRuns:
    """A job cancelled mid-run sends its build back; the build's other files are redone."""

    def test_the_build_says_so_and_the_other_file_prints_alone(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        def cancel_a(build: BuildPlan) -> str | None:
            jobs = {j.original_name: j for j in store.list_jobs()}
            if jobs["a.stl"].state is JobState.CANCELLED:
                return None
            store.transition(jobs["a.stl"].id, JobState.CANCELLED, "cancelled by a user")
            return "the scene changed under the run"

        script.fail = cancel_a
        _put(tmp_path, "a.stl", 1)
        _put(tmp_path, "b.stl", 2)
        run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path)))
        first, second = store.list_builds()
        assert (first.state, store.build_history(first.id)[-1].reason) == (
            JobState.CANCELLED, "a job was cancelled; batched again without it")
        assert second.state is JobState.PRINT_SENT
        [printed] = fleet_jobs(script.fleet_dir)
        jobs = {j.original_name: j for j in store.list_jobs()}
        assert jobs["b.stl"].print_job_id == printed["job_id"]
        assert jobs["a.stl"].state is JobState.CANCELLED


class TestCasesThatCannotBeDone:
    """A case the feasibility check refuses fails whole, before batching; the others go on."""

    THIN = ("a 4 mm drain hole does not fit a part 2.00 mm thin (2.0 x 2.0 x 2.0 mm, read as "
            "MILLIMETERS (recipe))")
    TODO = ("What to do: use a smaller diameter_mm, or a recipe without drain holes for thin "
            "parts; a part smaller than it should be was exported in other units: state them "
            "(a sidecar's units, or the recipe's import units or scale); then drop the case "
            "again (its other cases were not affected)\n")

    def test_each_file_of_a_refused_case_fails_with_the_cases_reason(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        # A 4 mm drain hole cannot be cut into a 2 mm part; a 30 mm part takes it.
        _put(tmp_path, "C-7/upper.stl", 1)
        _put(tmp_path, "C-7/lower.stl", 2, size_mm=30.0)
        _put(tmp_path, "C-8/upper.stl", 3, size_mm=30.0)
        _put(tmp_path, "thin.stl", 4)
        _put(tmp_path, "big.stl", 5, size_mm=30.0)
        recipe = write_recipe(tmp_path, extra_steps=(
            "hollow: {wall_thickness_mm: 1.0}",
            "add_drain_holes: {diameter_mm: 4.0, placement: {face: back, count: 1}}",
        ))
        with capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        states = {(j.case_id, j.original_name): j.state for j in store.list_jobs()}
        assert states == {
            ("C-7", "upper.stl"): JobState.FAILED, ("C-7", "lower.stl"): JobState.FAILED,
            ("C-8", "upper.stl"): JobState.PRINT_SENT, (None, "thin.stl"): JobState.FAILED,
            (None, "big.stl"): JobState.PRINT_SENT,
        }
        for model in ("upper.stl", "lower.stl"):
            note = _note(tmp_path, f"C-7/{model}")
            assert note.startswith(
                f"What failed: case C-7: model upper.stl: step add_drain_holes: {self.THIN}\n"
                f"Where: checking case C-7 before batching\nFile: {model}\n")
            assert note.endswith(self.TODO)
        thin = _note(tmp_path, "thin.stl")
        assert thin.startswith(f"What failed: model thin.stl: step add_drain_holes: "
                               f"{self.THIN}\nWhere: checking case thin.stl before batching\n")
        assert thin.endswith(self.TODO)
        events = sorted(
            (e["case_id"] or "", e["model"], e["step"], e["reason"], e["jobs"], e["log_level"])
             for e in logs if e["event"] == "case_infeasible")
        assert events == [("", "thin.stl", "add_drain_holes", self.THIN, 1, "warning"),
                          ("C-7", "upper.stl", "add_drain_holes", self.THIN, 2, "warning")]


class TestABuildThatFailed:
    """A build the run failed ends failed, its history giving the run's own reason."""

    def test_the_builds_history_names_the_reason(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        script.fail = lambda build: "the server lost the scene"
        _put(tmp_path, "p.stl", 1)
        run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path)))
        (build,) = store.list_builds()
        assert (build.state, store.build_history(build.id)[-1].reason) == (
            JobState.FAILED, "the server lost the scene")
        assert "What failed: the server lost the scene\n" in _note(tmp_path, "p.stl")

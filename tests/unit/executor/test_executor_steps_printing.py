"""The print step against a simulator: what reaches the printer (target, job name, options),
what a printer list becomes, a build left waiting for a free printer, and the events a
person watching the run sees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from preform_pipeline.executor import BuildOutcome, BuildStatus, RunResult
from preform_pipeline.store import JobState, SqliteJobStore
from preform_pipeline.verify.tracking import PrintTracking
from tests.unit.executor.executor_support import (
    FakePool,
    SimFarm,
    iter_events,
    plan_for,
    run,
    write_box,
    write_recipe,
)

#: Two Form 4 printers of the simulated fleet with the recipe's resin (Grey V5) loaded.
LISTED = ("Form4-CapableClam", "SimulatedForm4-1")


def _run(
    tmp_path: Path, farm: SimFarm, steps: str, **options: Any
) -> tuple[BuildOutcome, list[dict[str, Any]]]:
    box = write_box(tmp_path / "m", "box", 10, 10, 10)
    # One model per build: the job name may use the model's fields.
    recipe = write_recipe(tmp_path, "steps:\n" + steps + "batching:\n  max_models_per_build: 1\n")
    farm.add()
    with capture_logs() as logs:
        result: RunResult = run(plan_for(recipe, [box]), FakePool([s.url for s in farm.servers]),
                                tmp_path / "out", **options)
    (outcome,) = result.outcomes
    return outcome, logs


class TestWhatIsSent:
    """The printer, the job name (rendered with the build's fields) and the print options
    reach the printer, and the run says so in its events."""

    def test_the_job_lands_on_the_named_printer_with_its_rendered_name(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        outcome, logs = _run(
            tmp_path, farm,
            "  - print:\n      printer: SimulatedForm4-1\n"
            "      job_name: \"{recipe}-{build}-{stem}\"\n      print_now: false\n",
        )
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        (job,) = farm.jobs()
        assert (job["printer"], job["job_name"], job["job_id"]) == (
            "SimulatedForm4-1", "unit-unit-001-box", outcome.job_id
        )
        assert (job["print_now"], job["status"]) == (False, "QUEUED")  # the printer was free
        assert (outcome.waiting, outcome.held) == (False, False)  # its run sent it
        sending = [(e["printer"], e["job_name"]) for e in iter_events(logs, "print_sending")]
        assert sending == [("SimulatedForm4-1", "unit-unit-001-box")]
        sent = [(e["printer"], e["job_name"], e["job_id"]) for e in iter_events(logs, "print_sent")]
        assert sent == [("SimulatedForm4-1", "unit-unit-001-box", outcome.job_id)]

    def test_a_printer_named_by_its_address_gets_the_job(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        outcome, logs = _run(tmp_path, farm, "  - print:\n      printer_ip: 192.0.2.11\n")
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        (job,) = farm.jobs()
        assert (job["printer"], job["print_now"], job["status"]) == (
            "SimulatedForm4-1", True, "PRINTING"
        )
        assert [e["printer"] for e in iter_events(logs, "print_sent")] == ["192.0.2.11"]

    def test_a_dry_run_sends_nothing_and_says_why(self, tmp_path: Path, farm: SimFarm) -> None:
        outcome, logs = _run(
            tmp_path, farm, "  - print:\n      printer: SimulatedForm4-1\n", dry_run=True
        )
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert farm.jobs() == []
        assert outcome.warnings == ("print skipped (--dry-run)",)
        assert [e["reason"] for e in iter_events(logs, "print_skipped")] == ["dry run"]
        assert list(iter_events(logs, "print_sending")) == []

    def test_a_refused_print_fails_the_build_with_the_printers_reason(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        # The Form 4L takes no Form 4 scene: the server refuses, nothing is queued.
        outcome, logs = _run(tmp_path, farm, "  - print:\n      printer: SimulatedForm4L-1\n")
        assert outcome.status is BuildStatus.FAILED
        assert "SimulatedForm4L-1 prints FORM-4L-0" in (outcome.reason or "")
        assert farm.jobs() == []
        assert list(iter_events(logs, "print_sent")) == []


class TestPrinterLists:
    """A list of printers goes on as one target: the run chooses a free printer of the list,
    or leaves the build waiting for one when builds already wait."""

    def test_the_print_goes_to_a_printer_of_the_list(self, tmp_path: Path, farm: SimFarm) -> None:
        tracking = PrintTracking()
        outcome, logs = _run(
            tmp_path, farm, f"  - print:\n      printer: [{', '.join(LISTED)}]\n",
            print_tracking=tracking,
        )
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        (job,) = farm.jobs()
        assert job["printer"] in LISTED
        assert [p.printer for p in tracking.sent] == [job["printer"]]
        assert [e["printer"] for e in iter_events(logs, "print_sent")] == [job["printer"]]

    def test_behind_waiting_builds_it_waits_in_the_store_for_a_printer_of_the_list(
        self, tmp_path: Path, farm: SimFarm, store: SqliteJobStore
    ) -> None:
        earlier = _prepared_build(store)
        store.transition_build(earlier, JobState.WAITING_FOR_PRINTER, "waits",
                               print_target={"names": [LISTED[0]], "auto": False})
        ours = _prepared_build(store)
        tracking = PrintTracking(store=store, dispatch=True, build_ids={"unit-001": ours})
        outcome, logs = _run(
            tmp_path, farm,
            f"  - save_form\n  - print:\n      printer: [{', '.join(LISTED)}]\n"
            "      job_name: \"{build}-{stem}\"\n",
            print_tracking=tracking,
        )
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert farm.jobs() == []
        joined = ",".join(LISTED)
        assert outcome.warnings == (
            f"waiting in the job store for a free printer ({joined}); sent from its saved "
            ".form when one is free (by watch, or by the next run)",
        )
        (waiting,) = iter_events(logs, "print_waiting")
        assert waiting["printer"] == joined
        assert waiting["job_name"].startswith("unit-001-box")
        build = store.get_build(ours)
        assert build.state is JobState.WAITING_FOR_PRINTER
        assert build.job_name == waiting["job_name"]  # dispatch sends it under this name
        assert build.print_target is not None and build.print_target["names"] == list(LISTED)
        assert build.form_path is not None and Path(build.form_path).suffix == ".form"
        # Its run sent nothing: the dispatch loop's send is the loop's to record.
        assert (outcome.waiting, outcome.held) == (True, False)
        assert build.handed_to_dispatch


class TestHeldForApproval:
    """A build held for an operator's approval (the hot folder's ``approval: required``) says
    that a person must approve it first, not that it waits for a free printer (session 35:
    its report and the dashboard said "waiting in the job store for a free printer ... or by
    the next run" while it waited for an approval no run gives)."""

    #: What approval needs before the print: the .form it is sent from, the picture it is
    #: judged by.
    HELD = ("  - save_form\n  - screenshot\n  - print:\n      printer: Form4-CapableClam\n"
            "      approval: required\n")

    def test_its_warning_and_event_name_the_approval(
        self, tmp_path: Path, farm: SimFarm, store: SqliteJobStore
    ) -> None:
        ours = _prepared_build(store)
        outcome, logs = _run(tmp_path, farm, self.HELD, print_tracking=PrintTracking(
            store=store, dispatch=True, build_ids={"unit-001": ours}))
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert farm.jobs() == []
        build = store.get_build(ours)
        assert build.state is JobState.AWAITING_APPROVAL
        assert outcome.warnings == (
            "held in the job store for an operator's approval (on the dashboard, or `jobs "
            f"approve {build.job_key}`); once approved it waits for a free printer "
            "(Form4-CapableClam) and is sent from its saved .form",
        )
        assert [e["printer"] for e in iter_events(logs, "print_held")] == ["Form4-CapableClam"]
        assert list(iter_events(logs, "print_waiting")) == []
        assert (outcome.waiting, outcome.held) == (False, True)
        assert build.handed_to_dispatch  # the store's mark: its send is dispatch's to record


def _prepared_build(store: SqliteJobStore) -> int:
    """A build of one job, prepared in the store (what the hot folder records before the
    executor runs it)."""
    job = store.create_job(recipe="unit", source_path="box.stl", state=JobState.PROCESSING)
    build = store.create_build(recipe="unit", job_ids=[job.id])
    for state in (JobState.PREPARING, JobState.PREPARED):
        store.transition_build(build.id, state, "test")
    return build.id

"""The print step whole, with the job store behind it: what the printer receives, what the
store, the outcome and the run's events say after a send, a refusal, a request without an
answer, and a print an earlier run already sent."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs
from test_executor_steps_printing import _prepared_build
from test_executor_steps_requests import ReceivingEngine
from test_executor_steps_requests import engine as engine  # the fixture

from preform_pipeline.executor import BuildOutcome, BuildStatus, RunResult
from preform_pipeline.servers.pool import PoolServer
from preform_pipeline.store import JobState, SqliteJobStore
from preform_pipeline.verify.tracking import PrintTracking
from tests.unit.executor.executor_support import (
    FakePool,
    ScriptedFaults,
    SimFarm,
    iter_events,
    plan_for,
    run,
    write_box,
    write_recipe,
)


class OwnPidPool(FakePool):
    """The fake pool, naming each server's process: this one, where the in-process
    simulators run (so a send's holder can be recorded, as for a pool's local server)."""

    def _server(self, name: str) -> PoolServer:
        return replace(super()._server(name), pid=os.getpid())


def _sent_earlier(store: SqliteJobStore) -> tuple[int, str]:
    """A build the store says an earlier run sent (as job ``job-earlier``), and its key."""
    ours = _prepared_build(store)
    key = store.get_build(ours).job_key
    store.transition_build(ours, JobState.PRINT_SENDING, "test", job_name=f"x {key}",
                           printer="SimulatedForm4-1")
    store.transition_build(ours, JobState.PRINT_SENT, "test", print_job_id="job-earlier")
    return ours, key


def _run(
    tmp_path: Path, farm: SimFarm, steps: str, stem: str = "box",
    pool: FakePool | None = None, **options: Any,
) -> tuple[BuildOutcome, list[dict[str, Any]]]:
    """Run one 10 mm box named ``stem`` through ``steps`` (one model per build)."""
    box = write_box(tmp_path / "m", stem, 10, 10, 10)
    recipe = write_recipe(tmp_path, "steps:\n" + steps + "batching:\n  max_models_per_build: 1\n")
    if not farm.servers:
        farm.add()
    # No step here hangs: the limit only has to outlast a screenshot on a loaded machine
    # (the shared 10 s did not, at load 10-15: a retry saved the forms again).
    options.setdefault("step_timeout_s", 60.0)
    with capture_logs() as logs:
        result: RunResult = run(plan_for(recipe, [box]),
                                pool or OwnPidPool([s.url for s in farm.servers]),
                                tmp_path / "out", **options)
    (outcome,) = result.outcomes
    return outcome, logs


class TestSentThroughTheStore:
    """A print sent with the job store: the printer gets the keyed name and the recipe's
    options, and the store, the outcome and the events agree on what was sent."""

    def test_the_send_is_recorded_everywhere_with_the_key_in_the_name(
        self, tmp_path: Path, farm: SimFarm, store: SqliteJobStore, engine: ReceivingEngine
    ) -> None:
        ours = _prepared_build(store)
        key = store.get_build(ours).job_key
        tracking = PrintTracking(store=store, build_ids={"unit-001": ours})
        outcome, logs = _run(
            tmp_path, farm,
            # The printer is named by the model's file: a template, rendered.
            "  - print:\n      printer: \"{stem}\"\n"
            "      print_now: false\n      find_printer_timeout_seconds: 7\n",
            stem="SimulatedForm4-1", print_tracking=tracking,
        )
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        # The default job name is the build's name (no case ids), with the store's key.
        name = f"unit-001 {key}"
        (body,) = engine.bodies("print")
        assert body == {"printer": "SimulatedForm4-1", "job_name": name, "print_now": False,
                        "find_printer_timeout_seconds": 7}
        (job,) = farm.jobs()
        assert (job["printer"], job["job_name"], job["job_id"]) == (
            "SimulatedForm4-1", name, outcome.job_id
        )
        assert (outcome.printer, outcome.job_name, outcome.job_key) == (
            "SimulatedForm4-1", name, key
        )
        build = store.get_build(ours)
        assert (build.state, build.print_job_id, build.printer, build.job_name) == (
            JobState.PRINT_SENT, outcome.job_id, "SimulatedForm4-1", name
        )
        # The server that held the send is known, for recovery after a crash.
        assert build.send_holder is not None
        assert (build.send_holder["server"], build.send_holder["pid"]) == (
            "server-1", os.getpid()
        )
        assert [(p.printer, p.job_name, p.job_id, p.build_id) for p in tracking.sent] == [
            ("SimulatedForm4-1", name, outcome.job_id, ours)
        ]
        assert [(e["printer"], e["job_name"]) for e in iter_events(logs, "print_sending")] == [
            ("SimulatedForm4-1", name)
        ]
        assert [(e["printer"], e["job_name"], e["job_id"])
                for e in iter_events(logs, "print_sent")] == [
            ("SimulatedForm4-1", name, outcome.job_id)
        ]

    def test_a_refusal_fails_the_build_in_the_store_with_the_servers_reason(
        self, tmp_path: Path, farm: SimFarm, store: SqliteJobStore, engine: ReceivingEngine
    ) -> None:
        ours = _prepared_build(store)
        tracking = PrintTracking(store=store, build_ids={"unit-001": ours})
        outcome, logs = _run(tmp_path, farm, "  - print:\n      printer: SimulatedForm4L-1\n",
                             print_tracking=tracking)
        assert outcome.status is BuildStatus.FAILED
        refusal = engine.refusals["print"]
        assert refusal in (outcome.reason or "")
        build = store.get_build(ours)
        assert build.state is JobState.FAILED
        assert build.reason.startswith("the server refused the print: ")
        assert refusal in build.reason
        assert farm.jobs() == [] and tracking.sent == ()
        assert list(iter_events(logs, "print_sent")) == []


class TestNoAnswer:
    """A print request that gets no answer leaves the build unconfirmed: never sent again,
    the store left sending for recovery, and the reason tells the user what to check."""

    def test_the_build_is_unconfirmed_and_the_print_is_not_resent(
        self, tmp_path: Path, farm: SimFarm, store: SqliteJobStore
    ) -> None:
        farm.add(ScriptedFaults(fail={"print": 1}))
        ours = _prepared_build(store)
        tracking = PrintTracking(store=store, build_ids={"unit-001": ours})
        pool = OwnPidPool([s.url for s in farm.servers])
        outcome, logs = _run(tmp_path, farm, "  - print:\n      printer: SimulatedForm4-1\n",
                             pool=pool, print_tracking=tracking)
        assert outcome.status is BuildStatus.PRINT_UNCONFIRMED
        # The server may be dead: the pool is told, with the request's own error.
        assert pool.failures == [("server-1", "ServerInternalError")]
        reason = outcome.reason or ""
        assert reason.startswith("the print request to SimulatedForm4-1 got no usable answer "
                                 "(POST ")  # the request itself, not its error's class
        assert "scripted fault in print" in reason
        assert reason.endswith("); the job may have been queued: check the printer before "
                               "sending it again")
        assert farm.faults[0].seen.count("print") == 1
        assert store.get_build(ours).state is JobState.PRINT_SENDING
        (left,) = iter_events(logs, "print_left_sending")
        assert (left["build_id"], left["reason"]) == (ours, reason)
        assert tracking.sent == ()


class TestAlreadySent:
    """A build the store says was sent already is not sent again: the run reports the
    earlier print's job id, printer and keyed name."""

    def test_the_earlier_print_is_reported_and_nothing_is_sent(
        self, tmp_path: Path, farm: SimFarm, store: SqliteJobStore
    ) -> None:
        ours, key = _sent_earlier(store)
        tracking = PrintTracking(store=store, build_ids={"unit-001": ours})
        outcome, logs = _run(
            tmp_path, farm,
            "  - print:\n      printer: SimulatedForm4-1\n      job_name: \"{build} {stem}\"\n",
            print_tracking=tracking,
        )
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        name = f"unit-001 box {key}"
        assert (outcome.job_id, outcome.printer, outcome.job_name, outcome.job_key) == (
            "job-earlier", "SimulatedForm4-1", name, key
        )
        assert farm.jobs() == []
        assert "print" not in farm.faults[0].seen
        assert [(e["printer"], e["job_name"], e["job_id"])
                for e in iter_events(logs, "print_found")] == [
            ("SimulatedForm4-1", name, "job-earlier")
        ]
        assert list(iter_events(logs, "print_sending")) == []

    def test_a_retry_after_the_found_print_does_not_ask_the_store_again(
        self, tmp_path: Path, farm: SimFarm, store: SqliteJobStore
    ) -> None:
        # The screenshot after the print fails once: the attempt is retried.
        farm.add(ScriptedFaults(fail={"save_screenshot": 1}))
        ours, _ = _sent_earlier(store)
        tracking = PrintTracking(store=store, build_ids={"unit-001": ours})
        outcome, logs = _run(
            tmp_path, farm, "  - print:\n      printer: SimulatedForm4-1\n  - screenshot\n",
            print_tracking=tracking,
        )
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert len(outcome.attempts) == 2
        assert outcome.job_id == "job-earlier"
        assert len(list(iter_events(logs, "print_found"))) == 1
        assert len(list(iter_events(logs, "print_already_sent"))) == 1
        assert farm.jobs() == []


class TestLeftWaiting:
    """A build left waiting for a free printer is sent later from the .form it saved last,
    so the store keeps that file, not an earlier one or an image."""

    def test_the_last_saved_form_is_the_one_that_waits(
        self, tmp_path: Path, farm: SimFarm, store: SqliteJobStore
    ) -> None:
        # A build already waits for these printers: ours queues behind it.
        earlier = _prepared_build(store)
        store.transition_build(earlier, JobState.WAITING_FOR_PRINTER, "waits",
                               print_target={"names": ["Form4-CapableClam"], "auto": False})
        ours = _prepared_build(store)
        tracking = PrintTracking(store=store, dispatch=True, build_ids={"unit-001": ours})
        outcome, logs = _run(
            tmp_path, farm,
            "  - save_form\n  - save_form\n  - screenshot\n"
            "  - print:\n      printer: [Form4-CapableClam, SimulatedForm4-1]\n",
            print_tracking=tracking,
        )
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        forms = [p for p in outcome.outputs if p.suffix == ".form"]
        assert len(forms) == 2 and forms[0] != forms[1]
        build = store.get_build(ours)
        assert build.state is JobState.WAITING_FOR_PRINTER
        assert build.form_path == forms[-1]
        assert farm.jobs() == []
        (waiting,) = iter_events(logs, "print_waiting")
        assert waiting["printer"] == "Form4-CapableClam,SimulatedForm4-1"
        assert outcome.job_id is None


class TestRetryAfterThePrint:
    """A step after the print that fails is retried without printing again: the printer
    holds one job, and the outcome names it."""

    def test_the_printer_gets_one_job(self, tmp_path: Path, farm: SimFarm) -> None:
        farm.add(ScriptedFaults(fail={"save_screenshot": 1}))
        outcome, logs = _run(
            tmp_path, farm, "  - print:\n      printer: SimulatedForm4-1\n  - screenshot\n"
        )
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert len(outcome.attempts) == 2
        (job,) = farm.jobs()
        assert job["job_id"] == outcome.job_id
        assert len(list(iter_events(logs, "print_sent"))) == 1

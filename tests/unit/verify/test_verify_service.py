"""The job store's pending prints verified: states, messages, compare-and-set, notifications."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
from verify_support import run_record

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import WebApiClient
from preform_pipeline.commands.verify import ended_badly, format_report
from preform_pipeline.printing import FleetFolderLocator
from preform_pipeline.printing.web import WebApiLocator
from preform_pipeline.simulator.cloud.testing import FakeWebApi, write_job
from preform_pipeline.store import Build, JobState, SqliteJobStore, embed_key
from preform_pipeline.verify import Notifier, verify_pending
from tests.integration.test_cli_stdout_escaped import HOSTILE, SHOWN


def _sent_build(store: SqliteJobStore, name: str, *, jobs: int = 2) -> Build:
    """A build whose print was accepted (print_sent), with ``jobs`` model files."""
    ids = [
        store.create_job(recipe="dental", source_path=f"{name}-{n}.stl",
                         state=JobState.PROCESSING).id
        for n in range(jobs)
    ]
    build = store.create_build(recipe="dental", job_ids=ids)
    for state in (JobState.PREPARING, JobState.PREPARED):
        store.transition_build(build.id, state, "test")
    store.transition_build(build.id, JobState.PRINT_SENDING, "sending",
                           job_name=embed_key(name, build.job_key), printer="Form4-Lab")
    return store.transition_build(build.id, JobState.PRINT_SENT, "accepted",
                                  print_job_id=f"job-{name}")


def _jammed(store: SqliteJobStore, fake_api: FakeWebApi, clock: ManualClock, name: str) -> Build:
    """A sent build whose print the prints feed shows ended in error ("Jam") just now."""
    build = _sent_build(store, name)
    fake_api.prints = [run_record(build.job_name or "", status="ERROR", message="Jam",
                                  created=clock.now())]
    return build


def _interrupted_send(store: SqliteJobStore) -> tuple[Build, str]:
    """A build whose send was interrupted (left in print_sending), and its print's name."""
    job = store.create_job(recipe="dental", source_path="x.stl", state=JobState.PROCESSING)
    build = store.create_build(recipe="dental", job_ids=[job.id])
    for state in (JobState.PREPARING, JobState.PREPARED):
        store.transition_build(build.id, state, "test")
    name = embed_key("crash", build.job_key)
    return store.transition_build(build.id, JobState.PRINT_SENDING, "sending",
                                  job_name=name), name


class TestVerifyPending:
    """One poll writes every print's outcome onto its build and jobs."""

    def test_outcomes_and_messages_land_on_builds_and_jobs(
        self, store: SqliteJobStore, client: WebApiClient, fake_api: FakeWebApi,
        clock: ManualClock,
    ) -> None:
        done, failed, running = (_sent_build(store, n) for n in ("done", "failed", "running"))
        fake_api.prints = [
            run_record(done.job_name or "", status="FINISHED", created=clock.now(), guid="a"),
            run_record(failed.job_name or "", status="ERROR", message="Resin level too low",
                       created=clock.now(), guid="b"),
            run_record(running.job_name or "", status="PRINTING", remaining_s=900,
                       created=clock.now(), guid="c"),
        ]
        report = verify_pending(store, client, clock=clock)
        states = {b.job_key: b.state for b in report.builds}
        assert states == {done.job_key: JobState.FINISHED, failed.job_key: JobState.PRINT_ERROR,
                          running.job_key: JobState.VERIFYING}
        error_build = store.get_build(failed.id)
        assert (error_build.verified_status, error_build.verified_message) == (
            "ERROR", "Resin level too low"
        )
        for job in store.list_jobs(build_id=failed.id):
            assert (job.state, job.verified_message) == (JobState.PRINT_ERROR,
                                                         "Resin level too low")
        assert report.polls == 1 and report.requests == 2
        assert all(b.changed for b in report.builds)

    def test_waiting_polls_until_the_last_print_ended_or_expired(
        self, store: SqliteJobStore, client: WebApiClient, fake_api: FakeWebApi,
        clock: ManualClock,
    ) -> None:
        build = _sent_build(store, "slow")
        record = run_record(build.job_name or "", status="PRINTING", remaining_s=600,
                            created=clock.now())
        fake_api.prints = [record]

        def sleep(seconds: float) -> None:
            clock.sleep(seconds)
            record.update(status="ABORTED", message="Aborted on the printer")

        report = verify_pending(store, client, clock=clock, sleep=sleep, wait=True,
                                requests_per_hour=3600)
        [row] = report.builds
        assert (row.state, row.message) == (JobState.ABORTED, "Aborted on the printer")
        assert report.polls == 2

    def test_a_print_past_its_deadline_is_unverified_and_a_later_verify_can_settle_it(
        self, store: SqliteJobStore, client: WebApiClient, fake_api: FakeWebApi,
        clock: ManualClock,
    ) -> None:
        build = _sent_build(store, "lost")
        clock.advance(timedelta(hours=25).total_seconds())
        verify_pending(store, client, clock=clock)
        assert store.get_build(build.id).state is JobState.UNVERIFIED
        fake_api.prints = [run_record(build.job_name or "", status="FINISHED",
                                      created=clock.now())]
        verify_pending(store, client, clock=clock)
        assert store.get_build(build.id).state is JobState.FINISHED

    def test_a_build_someone_else_moved_is_left_alone(
        self, store: SqliteJobStore, client: WebApiClient, fake_api: FakeWebApi,
        clock: ManualClock,
    ) -> None:
        build = _sent_build(store, "raced")
        fake_api.prints = [run_record(build.job_name or "", status="FINISHED",
                                      created=clock.now())]

        class Racing:
            """The store, where another process finishes the build just before our write."""

            def __getattr__(self, name: str) -> object:
                return getattr(store, name)

            def transition_build(self, build_id: int, *args: object, **kwargs: object) -> Build:
                if store.get_build(build_id).state is JobState.PRINT_SENT:
                    store.transition_build(build_id, JobState.PRINT_ERROR, "someone else")
                return store.transition_build(build_id, *args, **kwargs)  # type: ignore[arg-type]

        verify_pending(Racing(), client, clock=clock)  # type: ignore[arg-type]
        assert store.get_build(build.id).state is JobState.PRINT_ERROR

    def test_interrupted_sends_are_settled_first(
        self, store: SqliteJobStore, client: WebApiClient, fake_api: FakeWebApi,
        clock: ManualClock,
    ) -> None:
        build, name = _interrupted_send(store)
        fake_api.prints = [run_record(name, status="FINISHED", created=clock.now(), guid="g")]
        report = verify_pending(store, client, clock=clock, locators=[WebApiLocator(client)])
        assert [s.decision for s in report.settled] == ["found"]
        assert store.get_build(build.id).state is JobState.FINISHED

    def test_each_print_that_ended_is_notified(
        self, store: SqliteJobStore, client: WebApiClient, fake_api: FakeWebApi,
        clock: ManualClock,
    ) -> None:
        _jammed(store, fake_api, clock, "notified")
        posted: list[httpx.Request] = []

        def answer(request: httpx.Request) -> httpx.Response:
            posted.append(request)
            return httpx.Response(200)

        with Notifier(webhook_url="https://hooks.example.com/x",
                      transport=httpx.MockTransport(answer)) as notifier:
            verify_pending(store, client, clock=clock, notifier=notifier)
            assert notifier.flush(5)
        [request] = posted
        assert b'"event": "print_error"' in request.content and b"Jam" in request.content


class TestTheCommandsInterruptedSendLine:
    """``verify``'s line for a settled interrupted send names where the print was found (a
    fleet folder's path) as escapes."""

    def test_a_fleet_folder_so_named(
        self, store: SqliteJobStore, client: WebApiClient, clock: ManualClock, tmp_path: Path
    ) -> None:
        fleet = tmp_path / HOSTILE
        build, name = _interrupted_send(store)
        write_job(fleet, name=name, printer="Form4-Lab")
        report = verify_pending(store, client, clock=clock,
                                locators=[FleetFolderLocator(fleet, report_delay_s=0.0)])
        line = format_report(report)[0]
        assert line == (f"interrupted send {build.job_key}: found (found in the fleet folder "
                        f"{tmp_path}/{SHOWN}); now print_sent"), line


class TestTheQuietLinesOnceBetweenVerifies:
    """``verify --quiet`` says a print that ended badly once between the verifies that saw it
    end: cron's verify on two nodes of one store, the same minute, both read the print pending
    before either wrote its end (the branch said it "once" by the state each read before)."""

    def test_two_verifies_polling_at_once_say_the_failed_print_once(
        self, store: SqliteJobStore, client: WebApiClient, fake_api: FakeWebApi,
        clock: ManualClock,
    ) -> None:
        build = _jammed(store, fake_api, clock, "failed")
        other: list[list[str]] = []

        class OtherNode:
            """The store, where the other node's verify runs whole just before our write."""

            def __getattr__(self, name: str) -> object:
                return getattr(store, name)

            def transition_build(self, build_id: int, *args: object, **kwargs: object) -> Build:
                if not other:
                    other.append(ended_badly(verify_pending(store, client, clock=clock), store))
                return store.transition_build(build_id, *args, **kwargs)  # type: ignore[arg-type]

        report = verify_pending(OtherNode(), client, clock=clock)  # type: ignore[arg-type]
        [row] = report.builds
        assert (row.state, row.changed) == (JobState.PRINT_ERROR, True)  # seen end by both
        said = [*other[0], *ended_badly(report, store)]
        assert said == [
            f"{build.job_key}: print ERROR on Form4-SweetMatcha ({build.job_name}): Jam"]
        # A verify without a webhook takes no notifier's notice of the print's end.
        assert store.notice_about(f"print end {build.job_key}") is None

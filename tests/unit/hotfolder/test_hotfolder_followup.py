"""The daemon's follow-up: failed cases notify once each, with no Web API credentials."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from structlog.testing import capture_logs

from preform_pipeline.cloud import Credentials, WebApiClient, load_credentials
from preform_pipeline.hotfolder.followup import FollowUp
from preform_pipeline.simulator.cloud.outcomes import parse_outcomes
from preform_pipeline.simulator.cloud.testing import TEST_CLIENT_ID, FakeWebApi, dashboard_server
from preform_pipeline.store import JobState, SqliteJobStore
from preform_pipeline.verify.notify import Notifier
from tests.integration.test_verify_command import sent_print


def _failed(store: SqliteJobStore, name: str, case_id: str, reason: str) -> int:
    job = store.create_job(recipe="r", source_path=f"/in/{case_id}/{name}", case_id=case_id,
                           state=JobState.QUEUED)
    return store.transition(job.id, JobState.FAILED, reason).id


def _sent(store: SqliteJobStore) -> int:
    """A build whose print was sent and is not verified yet."""
    job = store.create_job(recipe="r", source_path="/in/a.stl", state=JobState.PROCESSING)
    build = store.create_build(recipe="r", job_ids=[job.id])
    for state in (JobState.PREPARING, JobState.PREPARED, JobState.PRINT_SENDING,
                  JobState.PRINT_SENT):
        store.transition_build(build.id, state, "test")
    return build.id


class TestCaseFailed:
    """A case in failed/ is told once, whatever number of files it had."""

    def test_each_failed_case_notifies_once_with_its_own_reason(self, tmp_path: Path) -> None:
        bodies: list[dict[str, object]] = []

        def handler(request: httpx.Request) -> httpx.Response:
            bodies.append(json.loads(request.content))
            return httpx.Response(204)

        notifier = Notifier(webhook_url="http://hooks.invalid/x",
                            transport=httpx.MockTransport(handler))
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            followup = FollowUp(store, notifier=notifier)
            assert not followup.verifies  # no client: no verification thread
            for job_id in (_failed(store, "upper.stl", "C-1", "label does not fit"),
                           _failed(store, "lower.stl", "C-1", "label does not fit"),
                           _failed(store, "plate.stl", "C-2", "drain hole too wide")):
                followup.case_failed(store.get_job(job_id))
            followup.stop()
        notifier.close()
        assert sorted((b["event"], b["case_id"], b["message"]) for b in bodies) == [
            ("case_failed", "C-1", "label does not fit"),
            ("case_failed", "C-2", "drain hole too wide"),
        ]

    def test_without_a_notifier_nothing_is_sent_and_nothing_fails(self, tmp_path: Path) -> None:
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            followup = FollowUp(store)
            followup.case_failed(store.get_job(_failed(store, "a.stl", "C-3", "bad")))
            followup.stop()


class TestRefusedCredentials:
    """A secret regenerated while the service runs: each poll logs what to check, and the lab
    is told once (again only after a poll succeeded in between)."""

    def test_refused_credentials_are_notified_once_per_refusal(self, tmp_path: Path) -> None:
        bodies: list[dict[str, object]] = []

        def handler(request: httpx.Request) -> httpx.Response:
            bodies.append(json.loads(request.content))
            return httpx.Response(204)

        api = FakeWebApi(client_secret="regenerated")
        credentials = load_credentials(
            {"client_id": api.client_id, "client_secret": "s3cret-before"}, {},
            settings_source="site.yaml: cloud")
        client = WebApiClient(credentials, base_url=api.base_url, transport=api.transport())
        notifier = Notifier(webhook_url="http://hooks.invalid/x",
                            transport=httpx.MockTransport(handler))
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store, client, notifier, \
                capture_logs() as logs:
            _sent(store)
            followup = FollowUp(store, client=client, notifier=notifier)
            for _ in range(3):
                followup.poll_and_tell()
            api.client_secret = "s3cret-before"  # corrected on the Dashboard's side, for this test
            followup.poll_and_tell()
            api.client_secret = "regenerated again"
            api.invalidate_tokens()
            followup.poll_and_tell()
            assert notifier.flush(5)
        failed = [e for e in logs if e["event"] == "hotfolder_verify_failed"]
        assert len(failed) == 4
        assert all("the client secret (from site.yaml: cloud: client_secret)" in e["hint"]
                   for e in failed)
        assert [b["event"] for b in bodies] == ["verification_failed"] * 2
        assert "print ends are not confirmed" in str(bodies[0]["message"])
        assert "s3cret-before" not in json.dumps(bodies) + json.dumps(failed, default=str)


class TestPrintEndsOnTheConsole:
    """The console said "sent to Form4-..." and then nothing of a print that failed for low
    resin (session 43): each print end is a line, in `run`'s words, with the printer's
    message. Over real HTTP on 127.0.0.1 from the Dashboard simulator."""

    def test_an_error_an_abort_and_a_finish_each_say_a_line(self, tmp_path: Path) -> None:
        fleet, said = tmp_path / "fleet", []
        outcomes = parse_outcomes({"jobs": [
            {"name": "low-resin*", "outcome": "ERROR", "message": "Resin level too low"},
            {"name": "stopped*", "outcome": "ABORTED"}]})
        credentials = Credentials(TEST_CLIENT_ID, "followup-secret")
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store, dashboard_server(
                fleet, credentials=credentials, outcomes=outcomes, time_scale=0.0) as api, \
                WebApiClient(credentials, base_url=api.url) as client:
            builds = [sent_print(store, fleet, label, printer=printer) for label, printer in (
                ("low-resin C-3", "SimulatedForm4-1"), ("stopped C-4", "SimulatedForm4-2"),
                ("fine C-5", "SimulatedForm3-1"))]
            followup = FollowUp(store, client=client)
            followup.say = said.append

            assert followup.poll_once() == 3
            followup.stop()
            states = [store.get_build(b.id).state for b in builds]

        assert states == [JobState.PRINT_ERROR, JobState.ABORTED, JobState.FINISHED]
        assert sorted(said) == sorted([
            f"[{builds[0].job_key}] verify: print_error on SimulatedForm4-1: "
            "Resin level too low",
            f"[{builds[1].job_key}] verify: aborted on SimulatedForm4-2: "
            "Print aborted (simulated)",
            f"[{builds[2].job_key}] verify: finished on SimulatedForm3-1",
        ])

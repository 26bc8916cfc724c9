"""The daemon's verification meets a long Retry-After: it is deferred, not waited out.

The Dashboard simulator runs in this process on real HTTP with a limit of three requests an
hour, so its 429s and their Retry-After are real; every clock (the simulator's, the client's,
the store's and the follow-up's) is one manual clock, so an hour passes at once. The Web API
clients are made as ``watch`` makes them: with the job store as their ledger and
``WEB_API_MAX_WAIT_S`` as their longest wait.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import WEB_API_MAX_WAIT_S, Credentials
from preform_pipeline.cloud.client import WebApiClient
from preform_pipeline.cloud.factory import make_web_client
from preform_pipeline.errors import CloudRateLimitError
from preform_pipeline.hotfolder.followup import FollowUp
from preform_pipeline.settings import CloudSettings, VerifySettings
from preform_pipeline.simulator.cloud.server import DashboardServer
from preform_pipeline.simulator.cloud.testing import TEST_CLIENT_ID, dashboard_server, write_job
from preform_pipeline.store import Build, JobState, SqliteJobStore, embed_key

SECRET = "deferred-verify-secret"
VERIFY = VerifySettings(interval_s=120.0, requests_per_hour=1500)


@dataclass
class Setting:
    clock: ManualClock
    store: SqliteJobStore
    dashboard: DashboardServer
    build: Build
    path: Path

    def client(self, store: SqliteJobStore | None = None) -> WebApiClient:
        return make_web_client(
            CloudSettings(base_url=self.dashboard.url), Credentials(TEST_CLIENT_ID, SECRET),
            clock=self.clock, sleep=self.clock.sleep, ledger=store or self.store,
            max_wait_s=WEB_API_MAX_WAIT_S,
        )

    def statuses(self) -> list[int]:
        return [e.status for e in self.dashboard.exchanges]


@pytest.fixture
def setting(tmp_path: Path) -> Iterator[Setting]:
    clock = ManualClock()
    fleet = tmp_path / "fleet"
    with SqliteJobStore(tmp_path / "jobs.sqlite3", clock=clock) as store:
        job = store.create_job(recipe="r", source_path="a.stl", state=JobState.PROCESSING)
        build = store.create_build(recipe="r", job_ids=[job.id])
        for state in (JobState.PREPARING, JobState.PREPARED):
            store.transition_build(build.id, state, "printing")
        name = embed_key("case-1", build.job_key)
        store.transition_build(build.id, JobState.PRINT_SENDING, "printing", job_name=name)
        # A print of 1,000 s on the manual clock.
        job_id = write_job(fleet, name=name, created_at=clock.now(),
                           estimated_print_time_s=1000.0)
        build = store.transition_build(build.id, JobState.PRINT_SENT, "accepted",
                                       print_job_id=job_id, printer="SimulatedForm4-1")
        with dashboard_server(fleet, clock=clock, time_scale=1.0, hourly_limit=3,
                              credentials=Credentials(TEST_CLIENT_ID, SECRET)) as dashboard:
            yield Setting(clock, store, dashboard, build, tmp_path / "jobs.sqlite3")
            dashboard.check()


def _until_limited(setting: Setting, followup: FollowUp) -> None:
    """Poll until the simulator answered 429 (its three requests: token, two pages)."""
    for _ in range(4):
        followup.poll_once()
        if 429 in setting.statuses():
            return
        setting.clock.advance(VERIFY.interval_s)
    raise AssertionError(f"no 429 after four polls: {setting.statuses()}")


class TestDeferredNotWaited:
    """A poll that meets the Retry-After returns at once and defers verification."""

    def test_verification_is_deferred_until_the_retry_time(self, setting: Setting) -> None:
        followup = FollowUp(setting.store, client=setting.client(), verify=VERIFY,
                            clock=setting.clock)
        with capture_logs() as logs:
            _until_limited(setting, followup)
        limited_at = setting.clock.now()
        assert setting.statuses() == [200, 200, 200, 429]
        assert setting.clock.slept < WEB_API_MAX_WAIT_S  # nothing waited the hour out
        assert followup.deferred_until is not None
        wait_s = (followup.deferred_until - limited_at).total_seconds()
        assert 3000 < wait_s <= 3600
        assert followup.next_wait_s() == pytest.approx(wait_s)
        deferred = [e for e in logs if e["event"] == "hotfolder_verify_deferred"]
        assert [(e["log_level"], e["pending"]) for e in deferred] == [("warning", 1)]
        assert deferred[0]["until"] == followup.deferred_until.strftime(
            "%Y-%m-%d %H:%M:%S UTC")
        assert setting.store.get_build(setting.build.id).state is JobState.VERIFYING

    def test_the_deferral_is_the_one_warning_it_gives(self, setting: Setting) -> None:
        """The 429 and the failed poll are told at info level: the deferral's warning says
        what happened, how long it waits and when it resumes."""
        followup = FollowUp(setting.store, client=setting.client(), verify=VERIFY,
                            clock=setting.clock)
        with capture_logs() as logs:
            _until_limited(setting, followup)
        assert followup.deferred_until is not None
        loud = [e for e in logs if e["log_level"] in ("warning", "error", "critical")]
        assert [e["event"] for e in loud] == ["hotfolder_verify_deferred"]
        assert loud[0]["wait_s"] == pytest.approx(
            (followup.deferred_until - setting.clock.now()).total_seconds())
        assert loud[0]["until"] == followup.deferred_until.strftime("%Y-%m-%d %H:%M:%S UTC")
        # What was met is still in the log, below the warning.
        quiet = {e["event"]: e["log_level"] for e in logs
                 if e["event"] in ("web_api_rate_limited", "verify_poll_failed")}
        assert quiet == {"web_api_rate_limited": "info", "verify_poll_failed": "info"}

    def test_the_daemons_other_clients_are_not_held_either(self, setting: Setting) -> None:
        followup = FollowUp(setting.store, client=setting.client(), verify=VERIFY,
                            clock=setting.clock)
        _until_limited(setting, followup)
        readiness = setting.client()  # dispatch's printer readiness, on the same store
        slept = setting.clock.slept
        with pytest.raises(CloudRateLimitError) as raised:
            readiness.list_printers()
        assert raised.value.hint is not None and "try again after" in raised.value.hint
        assert setting.clock.slept == slept
        assert setting.statuses() == [200, 200, 200, 429]  # it sent nothing

    def test_verification_resumes_after_the_retry_time(self, setting: Setting) -> None:
        followup = FollowUp(setting.store, client=setting.client(), verify=VERIFY,
                            clock=setting.clock)
        _until_limited(setting, followup)
        assert followup.deferred_until is not None
        setting.clock.advance(followup.next_wait_s())
        with capture_logs() as logs:
            assert followup.poll_once() == 1
        assert followup.deferred_until is None
        assert followup.next_wait_s() == VERIFY.interval_s
        assert [e["event"] for e in logs if e["event"].startswith("hotfolder_verify_")] == [
            "hotfolder_verify_resumed"]
        build = setting.store.get_build(setting.build.id)
        assert (build.state, build.verified_status) == (JobState.FINISHED, "FINISHED")
        assert setting.statuses()[-1] == 200


class TestDeferredAcrossARestart:
    """The retry time is in the store: a daemon started again sends nothing before it."""

    def test_a_restarted_daemon_waits_for_the_same_retry_time(self, setting: Setting) -> None:
        first = FollowUp(setting.store, client=setting.client(), verify=VERIFY,
                         clock=setting.clock)
        _until_limited(setting, first)
        assert first.deferred_until is not None
        setting.clock.advance(60)
        with SqliteJobStore(setting.path, clock=setting.clock) as reopened:
            again = FollowUp(reopened, client=setting.client(reopened), verify=VERIFY,
                             clock=setting.clock)
            assert again.poll_once() == 0
            assert setting.statuses() == [200, 200, 200, 429]  # nothing was sent
            assert again.deferred_until is not None
            assert abs((again.deferred_until - first.deferred_until).total_seconds()) <= 1
            assert reopened.get_build(setting.build.id).state is JobState.VERIFYING
            setting.clock.advance(again.next_wait_s())
            assert again.poll_once() == 1
            assert reopened.get_build(setting.build.id).state is JobState.FINISHED

"""What one cron ``verify`` spends of the Web API's hourly budget, counted at the Dashboard.

Cron runs ``preform-pipeline verify`` every five minutes: twelve times an hour, each a new
process with no access token. The Dashboard simulator runs in this process on real HTTP
(``dashboard_server``) and records every exchange (:attr:`DashboardServer.exchanges`); the
command runs as a user types it (``in_process``), so what the Dashboard sees is all it sent.
"""

from __future__ import annotations

from pathlib import Path

from preform_pipeline.cloud import Credentials
from preform_pipeline.simulator.cloud.server import DashboardServer
from preform_pipeline.simulator.cloud.testing import TEST_CLIENT_ID, dashboard_server
from preform_pipeline.store import JobState, SqliteJobStore
from tests.command_line import InProcess
from tests.integration.test_verify_command import sent_print

SECRET = "verify-spend-secret"
TOKEN = ("POST", "/developer/v1/o/token/")
PRINTS = ("GET", "/developer/v1/prints/")


def _verify(in_process: InProcess, tmp_path: Path, server: DashboardServer, *,
            secret: str = SECRET) -> tuple[int, str, str]:
    settings = tmp_path / "settings.yaml"
    settings.write_text(f"cloud: {{base_url: '{server.url}'}}\n", encoding="utf-8")
    done = in_process(tmp_path, "verify", "--settings", str(settings),
                      "--store", str(tmp_path / "jobs.sqlite3"),
                      env_extra={"PREFORM_PIPELINE_CLIENT_ID": TEST_CLIENT_ID,
                                 "PREFORM_PIPELINE_CLIENT_SECRET": secret,
                                 "HOME": str(tmp_path)})
    return done.returncode, done.stdout, done.stderr


def _sent(server: DashboardServer) -> list[tuple[str, str, int]]:
    return [(e.method, e.path.split("?")[0], e.status) for e in server.exchanges]


class TestOneCronVerify:
    """A cron ``verify`` spends a token and one page with a print pending, nothing without."""

    def test_a_pending_print_costs_a_token_and_one_page(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        fleet = tmp_path / "fleet"
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            build = sent_print(store, fleet, "good")
        with dashboard_server(fleet, credentials=Credentials(TEST_CLIENT_ID, SECRET)) as server:
            status, _out, err = _verify(in_process, tmp_path, server)
            server.check()
            sent = _sent(server)
        assert status == 0, err
        # The poll proves the credentials: no separate one-record read before it.
        assert sent == [(*TOKEN, 200), (*PRINTS, 200)]
        with SqliteJobStore(tmp_path / "jobs.sqlite3", create=False) as store:
            assert store.get_build(build.id).state is JobState.VERIFYING

    def test_nothing_pending_sends_nothing_and_says_so(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        fleet = tmp_path / "fleet"
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            build = sent_print(store, fleet, "good")
            store.transition_build(build.id, JobState.FINISHED, "verified")
        with dashboard_server(fleet, credentials=Credentials(TEST_CLIENT_ID, SECRET)) as server:
            status, out, err = _verify(in_process, tmp_path, server)
            server.check()
            sent = _sent(server)
        assert (status, err) == (0, "")
        assert out == "no pending prints: nothing to verify\n"
        assert sent == []

    def test_refused_credentials_cost_one_request_and_say_what_to_check(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        fleet = tmp_path / "fleet"
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            build = sent_print(store, fleet, "good")
        with dashboard_server(fleet, credentials=Credentials(TEST_CLIENT_ID, SECRET)) as server:
            status, out, err = _verify(in_process, tmp_path, server, secret="not-the-secret")
            sent = _sent(server)
        assert status == 1
        assert sent == [(*TOKEN, 400)]
        assert out == ""
        assert err.startswith("error: POST ")
        assert "the Web API refused to issue an access token (invalid_grant" in err
        assert (f"check the client id {TEST_CLIENT_ID!r} (from $PREFORM_PIPELINE_CLIENT_ID) "
                "and the client secret (from $PREFORM_PIPELINE_CLIENT_SECRET)") in err
        assert "not-the-secret" not in out + err
        assert "Traceback" not in err
        with SqliteJobStore(tmp_path / "jobs.sqlite3", create=False) as store:
            assert store.get_build(build.id).state is JobState.PRINT_SENT

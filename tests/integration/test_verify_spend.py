"""What one cron ``verify`` spends of the Web API's hourly budget, counted at the Dashboard.

Cron runs ``preform-pipeline verify`` every five minutes: twelve times an hour, each a new
process with no access token. The Dashboard simulator runs in this process on real HTTP
(``dashboard_server``) and records every exchange (:attr:`DashboardServer.exchanges`); the
command runs as a user types it (``in_process``), so what the Dashboard sees is all it sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from preform_pipeline.cloud import Credentials
from preform_pipeline.simulator.cloud.testing import TEST_CLIENT_ID, dashboard_server
from preform_pipeline.store import JobState, SqliteJobStore
from tests.command_line import InProcess
from tests.integration.test_verify_command import sent_print

SECRET = "verify-spend-secret"
TOKEN = ("POST", "/developer/v1/o/token/")
PRINTS = ("GET", "/developer/v1/prints/")


@dataclass(frozen=True)
class Spent:
    """One ``verify`` against the Dashboard: how it ended, what it sent, the print after."""

    status: int
    out: str
    err: str
    sent: list[tuple[str, str, int]]  # (method, path, status) of each exchange
    state: JobState


def _one_verify(in_process: InProcess, tmp_path: Path, *, pending: bool = True,
                secret: str = SECRET) -> Spent:
    """One print sent by an earlier run (already verified unless ``pending``), then one
    ``verify`` with ``secret``, as cron runs it."""
    fleet = tmp_path / "fleet"
    store_path = tmp_path / "jobs.sqlite3"
    with SqliteJobStore(store_path) as store:
        build = sent_print(store, fleet, "good")
        if not pending:
            store.transition_build(build.id, JobState.FINISHED, "verified")
    settings = tmp_path / "settings.yaml"
    with dashboard_server(fleet, credentials=Credentials(TEST_CLIENT_ID, SECRET)) as server:
        settings.write_text(f"cloud: {{base_url: '{server.url}'}}\n", encoding="utf-8")
        done = in_process(tmp_path, "verify", "--settings", str(settings),
                          "--store", str(store_path),
                          env_extra={"PREFORM_PIPELINE_CLIENT_ID": TEST_CLIENT_ID,
                                     "PREFORM_PIPELINE_CLIENT_SECRET": secret,
                                     "HOME": str(tmp_path)})
        server.check()
        sent = [(e.method, e.path.split("?")[0], e.status) for e in server.exchanges]
    with SqliteJobStore(store_path, create=False) as store:
        state = store.get_build(build.id).state
    return Spent(done.returncode, done.stdout, done.stderr, sent, state)


class TestOneCronVerify:
    """A cron ``verify`` spends a token and one page with a print pending, nothing without."""

    def test_a_pending_print_costs_a_token_and_one_page(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        spent = _one_verify(in_process, tmp_path)
        assert spent.status == 0, spent.err
        # The poll proves the credentials: no separate one-record read before it.
        assert spent.sent == [(*TOKEN, 200), (*PRINTS, 200)]
        assert spent.state is JobState.VERIFYING

    def test_nothing_pending_sends_nothing_and_says_so(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        spent = _one_verify(in_process, tmp_path, pending=False)
        assert (spent.status, spent.err) == (0, "")
        assert spent.out == "no pending prints: nothing to verify\n"
        assert spent.sent == []

    def test_refused_credentials_cost_one_request_and_say_what_to_check(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        spent = _one_verify(in_process, tmp_path, secret="not-the-secret")
        assert spent.status == 1
        assert spent.sent == [(*TOKEN, 400)]
        assert spent.out == ""
        assert spent.err.startswith("error: POST ")
        assert "the Web API refused to issue an access token (invalid_grant" in spent.err
        assert (f"check the client id {TEST_CLIENT_ID!r} (from $PREFORM_PIPELINE_CLIENT_ID) "
                "and the client secret (from $PREFORM_PIPELINE_CLIENT_SECRET)") in spent.err
        assert "not-the-secret" not in spent.out + spent.err
        assert "Traceback" not in spent.err
        assert spent.state is JobState.PRINT_SENT

"""Two ``preform-pipeline verify`` processes keep one hourly Web API budget between them.

Real processes against the Dashboard simulator process; the job store is a SQLite file, or a
PostgreSQL database that two nodes would share. The pipeline's share of the account's 1,500
requests an hour is set to 0.0014 (2 requests an hour) so the budget runs out after one run:
the first run spends its token and one page of the prints feed. The
simulator's own request log counts what reached it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from test_verify_command import sent_print

from preform_pipeline.simulator.cloud.testing import RunningDashboard, start_dashboard
from preform_pipeline.store import Build, JobState, JobStore, SqliteJobStore
from preform_pipeline.store.pgurl import PASSWORD_FILE_ENV
from preform_pipeline.store.postgres import PostgresJobStore
from tests.pg_cluster import PG_PASSWORD, PgCluster

REPO = Path(__file__).resolve().parents[2]
SECRET = "shared-budget-secret"
TIMEOUT_S = 60.0
#: 0.0014 x 1,500: two requests an hour (a run's token and its one page) for everything that
#: spends this account's budget.
SHARE = 0.0014


def _hour_long(store: JobStore, fleet: Path) -> Build:
    # A print of an hour on the simulator's real-time clock: still printing for both runs.
    return sent_print(store, fleet, "case-1", printer="SimulatedForm4-1", print_time_s=3600.0)


def _verify(tmp_path: Path, dashboard: RunningDashboard, store: str) -> subprocess.Popen[str]:
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        f"cloud: {{base_url: '{dashboard.url}', hourly_budget_share: {SHARE}}}\n"
        "verify: {interval_s: 0.5}\n",
        encoding="utf-8",
    )
    password = tmp_path / "store-password"
    password.write_text(PG_PASSWORD + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFORM_PIPELINE_", "PG"))}
    env.update(PYTHONPATH=str(REPO), PREFORM_PIPELINE_CLIENT_ID=dashboard.credentials.client_id,
               PREFORM_PIPELINE_CLIENT_SECRET=SECRET)
    env[PASSWORD_FILE_ENV] = str(password)
    return subprocess.Popen(
        [sys.executable, "-m", "preform_pipeline", "verify", "--settings", str(settings),
         "--store", store],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8", env=env,
    )


def _finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    out, err = process.communicate(timeout=TIMEOUT_S)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def _exchanges(tmp_path: Path) -> list[dict[str, object]]:
    return [json.loads(line)
            for line in (tmp_path / "dashboard.jsonl").read_text(encoding="utf-8").splitlines()
            if "dashboard_exchange" in line]


def _dashboard(tmp_path: Path) -> RunningDashboard:
    return start_dashboard(  # type: ignore[return-value]
        "--time-scale", "1", "--log-file", str(tmp_path / "dashboard.jsonl"),
        fleet_dir=tmp_path / "fleet", client_secret=SECRET,
    )


def _one_after_the_other(tmp_path: Path, store: str) -> tuple[
        subprocess.CompletedProcess[str], subprocess.CompletedProcess[str], datetime]:
    with _dashboard(tmp_path) as dash:
        first = _finish(_verify(tmp_path, dash, store))
        asked_at = datetime.now(timezone.utc)
        second = _finish(_verify(tmp_path, dash, store))
    return first, second, asked_at


def _check_the_second_run_stopped(
    tmp_path: Path, first: subprocess.CompletedProcess[str],
    second: subprocess.CompletedProcess[str], asked_at: datetime,
) -> None:
    assert first.returncode == 0, first.stderr
    assert "1 print checked: 1 verifying; 2 Web API requests in 1 poll (0 of 2 left this hour)" \
        in first.stdout
    assert second.returncode == 1, second.stdout + second.stderr
    assert "error: cannot verify now: " in second.stderr
    assert "the Web API request budget is spent for the next" in second.stderr
    assert "every program using this job store spends it" in second.stderr
    said = re.search(r"try again after (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", second.stderr)
    assert said is not None, second.stderr
    when = datetime.strptime(said.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    assert 3000 < (when - asked_at).total_seconds() <= 3601
    assert "the prints still pending are checked on the next verify" in second.stderr
    assert "Traceback" not in second.stderr
    # What reached the Web API: the first run's two requests (token, page), none of the
    # second's.
    assert [e["status"] for e in _exchanges(tmp_path)] == [200, 200]
    everything = first.stdout + first.stderr + second.stdout + second.stderr
    assert SECRET not in everything and PG_PASSWORD not in everything


class TestOnSqlite:
    """Two runs from cron, one after the other, on one store file."""

    def test_the_second_run_stops_before_spending_the_hour_twice(self, tmp_path: Path) -> None:
        store = tmp_path / "jobs.sqlite3"
        with SqliteJobStore(store) as opened:
            build = _hour_long(opened, tmp_path / "fleet")
        first, second, asked_at = _one_after_the_other(tmp_path, str(store))
        _check_the_second_run_stopped(tmp_path, first, second, asked_at)
        with SqliteJobStore(store, create=False) as opened:
            assert opened.get_build(build.id).state is JobState.VERIFYING  # pending, kept


class TestOnPostgres:
    """Two nodes' runs on one PostgreSQL store: one after the other, then at once."""

    @pytest.fixture
    def shared(self, pg_cluster: PgCluster, request: pytest.FixtureRequest) -> str:
        return pg_cluster.create_database(f"budget_{request.node.name[-24:].lower()}")

    def test_the_second_node_stops_before_spending_the_hour_twice(
        self, tmp_path: Path, shared: str
    ) -> None:
        with PostgresJobStore(shared, password=PG_PASSWORD) as opened:
            build = _hour_long(opened, tmp_path / "fleet")
        first, second, asked_at = _one_after_the_other(tmp_path, shared)
        _check_the_second_run_stopped(tmp_path, first, second, asked_at)
        with PostgresJobStore(shared, password=PG_PASSWORD) as opened:
            assert opened.get_build(build.id).state is JobState.VERIFYING

    def test_two_runs_at_once_spend_at_most_the_hour_between_them(
        self, tmp_path: Path, shared: str
    ) -> None:
        with PostgresJobStore(shared, password=PG_PASSWORD) as opened:
            build = _hour_long(opened, tmp_path / "fleet")
        with _dashboard(tmp_path) as dash:
            runs = [_verify(tmp_path, dash, shared) for _ in range(2)]
            done = [_finish(run) for run in runs]
        # Each run alone needs two requests; the hour has two for both together.
        assert len(_exchanges(tmp_path)) <= 2
        assert 429 not in [e["status"] for e in _exchanges(tmp_path)]
        stopped = [run for run in done if run.returncode != 0]
        assert stopped, [run.stdout for run in done]
        for run in stopped:
            # Refused at the poll's token or its page, whichever found the hour spent.
            assert run.returncode == 1
            assert "the Web API request budget is spent for the next" in run.stderr, run.stderr
            assert "try again after" in run.stderr
            assert "the prints still pending are checked on the next verify" in run.stderr
            assert "Traceback" not in run.stderr
        with PostgresJobStore(shared, password=PG_PASSWORD) as opened:
            assert opened.get_build(build.id).state in (JobState.PRINT_SENT,
                                                        JobState.VERIFYING)

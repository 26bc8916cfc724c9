"""``preform-pipeline run`` with print verification, end to end over real HTTP.

Each test runs the real command line as a subprocess: its pool starts a simulated
PreFormServer that writes print jobs into a fleet folder, and a Dashboard simulator (in this
process, on a real port, real clock, prints ending the moment they are sent) serves the Web
API from the same folder. Credentials reach the run through the environment, as in
production.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from preform_pipeline.cloud import Credentials
from preform_pipeline.cloud.ratelimit import account_key
from preform_pipeline.simulator.cloud.outcomes import parse_outcomes
from preform_pipeline.simulator.cloud.server import DashboardServer
from preform_pipeline.simulator.cloud.testing import TEST_CLIENT_ID, dashboard_server
from preform_pipeline.store import SqliteJobStore, extract_key

REPO = Path(__file__).resolve().parents[2]
PARTS = REPO / "sample_models" / "batch"
SECRET = "run-verify-secret"
RUN_TIMEOUT_S = 90.0

RECIPE = """\
name: verified
scene:
  machine_type: FORM-4-0
  material_code: {material}
  layer_thickness_mm: 0.1
import:
  units: MILLIMETERS
  repair_behavior: REPAIR
steps:
  - auto_layout
  - print:
      printer: {printer}
      job_name: "{{build}}"
  - verify:
      timeout_s: 600
batching:
  max_models_per_build: 1
"""


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    report: dict[str, Any]
    jobs: list[dict[str, Any]]

    def build(self, name: str) -> dict[str, Any]:
        return next(b for b in self.report["builds"] if b["build"] == name)


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[DashboardServer]:
    plan = parse_outcomes({"jobs": [
        {"name": "verified-002 *", "outcome": "ERROR", "message": "Resin level too low"},
    ]})
    with dashboard_server(tmp_path / "fleet", credentials=Credentials(TEST_CLIENT_ID, SECRET),
                          time_scale=0.0, outcomes=plan) as server:
        yield server
        server.check()


def _run(
    tmp_path: Path,
    dashboard: DashboardServer,
    *,
    secret: str | None = SECRET,
    printer: str = "SimulatedForm4-1",
    material: str = "FLGPGR05",
    models: int = 2,
    verify: bool = True,
    verify_timeout_s: int = 600,
    store: Path | None = None,
) -> Run:
    recipe = tmp_path / "recipe.yaml"
    text = RECIPE.format(printer=printer, material=material)
    text = text.replace("timeout_s: 600", f"timeout_s: {verify_timeout_s}")
    if not verify:
        text = text.replace(f"  - verify:\n      timeout_s: {verify_timeout_s}\n", "")
    recipe.write_text(text, encoding="utf-8")
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        "servers: {count: 1, base_port: 0, health_interval_s: 0, startup_timeout_s: 30}\n"
        f"cloud: {{base_url: '{dashboard.url}'}}\n"
        "verify: {interval_s: 1, requests_per_hour: 1500}\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
    env["PYTHONPATH"] = str(REPO)
    if secret is not None:
        env["PREFORM_PIPELINE_CLIENT_ID"] = TEST_CLIENT_ID
        env["PREFORM_PIPELINE_CLIENT_SECRET"] = secret
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "preform_pipeline", "run", str(recipe),
         *(str(PARTS / f"part_0{n + 1}.stl") for n in range(models)),
         "--settings", str(settings), "--output", str(out),
         *(["--store", str(store)] if store is not None else []),
         f"--simulator-arg=--fleet-dir={tmp_path / 'fleet'}"],
        capture_output=True, text=True, encoding="utf-8", env=env, cwd=tmp_path,
        timeout=RUN_TIMEOUT_S, check=False,
    )
    reports = sorted((out / "reports").glob("*.json"))
    report = json.loads(reports[-1].read_text(encoding="utf-8")) if reports else {}
    jobs_dir = tmp_path / "fleet" / "jobs"
    jobs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(jobs_dir.glob("*.json"))]
    return Run(done.returncode, done.stdout, done.stderr, report, jobs)


class TestVerifiedRun:
    """The run waits for its prints and reports how each one ended, with the message."""

    def test_a_printer_error_surfaces_its_message_in_the_report(
        self, tmp_path: Path, dashboard: DashboardServer
    ) -> None:
        run = _run(tmp_path, dashboard)
        assert run.returncode == 1, run.stderr  # a print failed: the run did not do its job
        ok, failed = run.build("verified-001"), run.build("verified-002")
        assert (ok["status"], ok["verify"], ok["verify_message"]) == (
            "succeeded", "finished", None
        )
        assert (failed["verify"], failed["verify_message"]) == (
            "print_error", "Resin level too low"
        )
        assert "verify verified-002: print_error: Resin level too low" in run.stdout
        # The build was sent; its print failed: neither the summary nor the counts call it
        # succeeded (review of session 43: "2 of 2 builds succeeded" above the error).
        lines = run.stdout.splitlines()
        assert "verified-002  print_error" in lines and "verified-001  succeeded" in lines
        assert any(line.endswith(": 1 of 2 builds succeeded, 1 print did not finish well")
                   for line in lines), run.stdout
        assert lines[-1] == "exit 1: 1 print did not finish well, 1 of 2 builds succeeded"
        assert (run.report["ok"], run.report["tally"]["succeeded"],
                run.report["tally"]["print_failed"]) == (False, 1, 1)
        verification = run.report["verification"]
        assert (verification["prints"], verification["verified"]) == (2, 2)
        assert verification["requests"] <= 3
        # Every job name carries a key, and each print was sent once.
        keys = [extract_key(j["job_name"]) for j in run.jobs]
        assert len(run.jobs) == 2 and None not in keys and len(set(keys)) == 2
        csv = next((tmp_path / "out" / "reports").glob("*.csv")).read_text(encoding="utf-8")
        assert "print_error,Resin level too low" in csv

    def test_refused_credentials_stop_the_run_before_anything_is_printed(
        self, tmp_path: Path, dashboard: DashboardServer
    ) -> None:
        run = _run(tmp_path, dashboard, secret="not-the-secret")
        assert run.returncode == 1
        assert "invalid_grant" in run.stderr and "nothing was sent to a printer" in run.stderr
        assert "not-the-secret" not in run.stderr + run.stdout
        assert run.jobs == [] and run.report == {}

    def test_without_credentials_verification_is_skipped_and_says_why(
        self, tmp_path: Path, dashboard: DashboardServer
    ) -> None:
        run = _run(tmp_path, dashboard, secret=None, models=1)
        assert run.returncode == 0, run.stderr
        assert run.build("verified-001")["verify"] == "skipped (no Web API credentials)"
        assert len(run.jobs) == 1


class TestStartedWithoutTheWebApi:
    """A run whose Web API cannot be reached (the Dashboard simulator not started, a wrong
    base URL) prints all the same, and its console says so at once: it showed only the log
    event, then polls failing, less often each time, until the verify step's deadline."""

    def test_the_run_says_it_goes_on_without_the_web_api_and_prints(
        self, tmp_path: Path
    ) -> None:
        with dashboard_server(tmp_path / "gone-fleet",
                              credentials=Credentials(TEST_CLIENT_ID, SECRET)) as gone:
            pass  # stopped: its address now refuses connections
        run = _run(tmp_path, gone, models=1, verify_timeout_s=2)

        assert run.returncode == 1, run.stderr  # its print could not be confirmed
        [line] = [x for x in run.stdout.splitlines()
                  if x.startswith("warning: ") and "cannot reach the Web API" in x]
        assert line.startswith(f"warning: GET {gone.url}/developer/v1/")
        assert line.endswith(
            ": this run goes on without it (the prints are sent, and verification polls "
            "again, less often each time, until the verify step's timeout_s); check the "
            "network connection, proxy settings and the configured base URL")
        assert "web_api_unreachable_at_start" in run.stderr
        # Each failed poll is said once, by the progress line (its warning said it again).
        assert "last poll failed: GET " in run.stdout
        assert "verify_poll_failed" not in run.stderr
        assert SECRET not in run.stderr + run.stdout
        assert len(run.jobs) == 1
        assert run.build("verified-001")["verify"] == "unverified"


class TestAutoPrinter:
    """``printer: auto`` sends to the ready printer of the machine type with the material."""

    def test_the_printer_with_the_recipes_material_is_chosen_from_web_api_status(
        self, tmp_path: Path, dashboard: DashboardServer
    ) -> None:
        run = _run(tmp_path, dashboard, printer="auto", material="FLGPBK05", models=1)
        assert run.returncode == 0, run.stderr
        [job] = run.jobs
        assert job["printer"] == "SimulatedForm4-2"  # the Form 4 with black resin loaded
        assert run.build("verified-001")["verify"] == "finished"

    def test_no_printer_with_the_material_fails_the_build_listing_each_printer(
        self, tmp_path: Path, dashboard: DashboardServer
    ) -> None:
        run = _run(tmp_path, dashboard, printer="auto", material="FLGPCL05", models=1,
                   secret=None)
        assert run.returncode == 1
        reason = run.build("verified-001")["reason"]
        assert "no printer can take a FORM-4-0 print in FLGPCL05" in reason
        assert "SimulatedForm4-2: FLGPBK05 loaded, not FLGPCL05" in reason
        assert "Local API devices" in reason
        assert run.jobs == []


class TestStartedWhileRateLimited:
    """A run started while the job store holds the Web API back (another process met its
    limit) says it is rate-limited, until when and what helps, and prints without it."""

    def test_the_run_says_until_when_and_chooses_from_the_servers_devices(
        self, tmp_path: Path, dashboard: DashboardServer
    ) -> None:
        store_path = tmp_path / "jobs.sqlite3"
        until = (datetime.now(timezone.utc) + timedelta(minutes=50)).replace(microsecond=0)
        with SqliteJobStore(store_path) as store:
            # A cron verify met a 50-minute Retry-After on this account a moment ago.
            store.hold_web_requests(account_key(dashboard.url, TEST_CLIENT_ID), until)
        run = _run(tmp_path, dashboard, printer="auto", material="FLGPBK05", models=1,
                   verify=False, store=store_path)
        assert run.returncode == 0, run.stderr
        [line] = [x for x in run.stdout.splitlines() if "rate-limited" in x]
        said = re.search(r"^warning: the Web API is rate-limited until "
                         r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC \(the Web API asked "
                         r"to wait \d+ s before the next request\): ", line)
        assert said is not None, line
        when = datetime.strptime(said.group(1), "%Y-%m-%d %H:%M:%S").replace(
            tzinfo=timezone.utc)
        assert abs((when - until).total_seconds()) <= 2
        assert "this run goes on without it" in line
        assert "`printer: auto` chooses from the PreFormServer's device list" in line
        # What helps, said once: the run goes on, so no "try again after".
        assert line.endswith("; another program may be spending the same account's "
                             "1,500 requests/hour")
        assert "try again" not in line
        assert "web_api_rate_limited_at_start" in run.stderr
        assert "web_api_unreachable_at_start" not in run.stderr + run.stdout
        assert SECRET not in run.stderr + run.stdout
        [job] = run.jobs  # printed, to a printer the PreFormServer listed
        assert job["printer"].startswith("SimulatedForm4-")
        assert dashboard.exchanges == []  # the hold kept every request back

"""``verify`` without credentials says what helps where ``cloud.base_url`` points.

A newcomer rehearsing on the simulators was sent to the Developer Tools page of a Dashboard
they may not have; the Dashboard simulator's own defaults would do (docs/dashboard-simulator.md).
"""

from __future__ import annotations

import io
import shlex
import sys
from pathlib import Path

import pytest

from preform_pipeline.cli import run
from preform_pipeline.store import JobState, SqliteJobStore

S = JobState

_WAYS = ("set PREFORM_PIPELINE_CLIENT_ID and PREFORM_PIPELINE_CLIENT_SECRET (or their _FILE "
         "forms, or the settings' cloud section)")
_DEFAULTS = ("PREFORM_PIPELINE_CLIENT_ID=preform-pipeline-simulator and "
             "PREFORM_PIPELINE_CLIENT_SECRET=preform-pipeline-simulator-secret")


@pytest.fixture
def pending(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store holding one print sent and not yet verified; no credentials anywhere."""
    for name in ("SETTINGS", "CLIENT_ID", "CLIENT_SECRET", "CLIENT_ID_FILE",
                 "CLIENT_SECRET_FILE"):
        monkeypatch.delenv(f"PREFORM_PIPELINE_{name}", raising=False)
    path = tmp_path / "jobs.sqlite3"
    with SqliteJobStore(path) as store:
        job = store.create_job(recipe="dental", source_path="/hot/processing/a.stl",
                               state=S.PROCESSING)
        build = store.create_build(recipe="dental", job_ids=[job.id])
        for state in (S.PREPARING, S.PREPARED, S.PRINT_SENDING, S.PRINT_SENT):
            store.transition_build(build.id, state, f"to {state.value}", printer="Form4-A")
    return path


def _verify(*argv: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run(["verify", *argv], stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


class TestNoCredentials:
    """The refusal names the Developer Tools page, and the simulator's defaults for a rehearsal."""

    def test_on_the_formlabs_web_api_it_says_how_to_rehearse_on_the_simulator(
        self, pending: Path
    ) -> None:
        assert _verify("--store", str(pending)) == (1, "", (
            f"error: no Web API credentials: {_WAYS}; create them on the Dashboard's Developer "
            "Tools page\n"
            "to rehearse on the simulators instead: start the Dashboard simulator "
            f"(`{shlex.quote(sys.executable)} -m preform_pipeline.simulator.cloud`, it listens "
            "on port 44389; beside a simulated `watch` or `run`, whose servers take the ports "
            "from 44388 up, give it `--port` with a free port and use that port below), "
            'give `--settings` a file holding `cloud: {base_url: '
            '"http://127.0.0.1:44389"}`, and set its default credentials, '
            f"{_DEFAULTS} (docs/dashboard-simulator.md)\n"))

    def test_pointed_elsewhere_it_names_the_simulators_defaults_if_that_is_it(
        self, pending: Path, tmp_path: Path
    ) -> None:
        settings = tmp_path / "settings.yaml"
        settings.write_text('cloud: {base_url: "http://127.0.0.1:44389"}\n', encoding="utf-8")
        assert _verify("--store", str(pending), "--settings", str(settings)) == (1, "", (
            f"error: no Web API credentials for http://127.0.0.1:44389: {_WAYS}; if that is "
            f"the Dashboard simulator, its default credentials are {_DEFAULTS} (unless it was "
            "started with --client-id or --client-secret-file); if not, create them on the "
            "Dashboard's Developer Tools page\n"))

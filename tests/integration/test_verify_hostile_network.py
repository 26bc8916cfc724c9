"""``preform-pipeline verify`` when something else answers in the Web API's place.

The Dashboard simulator runs as its own process with finished prints; between it and
``verify`` sits :mod:`tests.hostile_http`'s front, which answers the prints feed as a guest
Wi-Fi's sign-in page or a broken server does. Such an answer must change nothing in the
store: no print is marked finished or failed on it, and the next ``verify`` through a good
network records both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from preform_pipeline.simulator.cloud.testing import start_dashboard
from preform_pipeline.store import JobState, SqliteJobStore
from tests.hostile_http import Answer, reply, running_front
from tests.integration.test_verify_command import REPO, SECRET, TIMEOUT_S, sent_print

PRINTS = "/developer/v1/prints/"
PORTAL = ("Location", "http://portal.example/guest/login?mac=00:11:22&session=s39")

BROKEN = [
    pytest.param(reply(200, "<html><body>Sign in to Guest Wi-Fi</body></html>",
                       content_type="text/html"), "captive portal", id="sign-in-page"),
    pytest.param(reply(302, "", headers=(PORTAL,)),
                 "a redirect to http://portal.example/guest/login", id="redirect"),
    pytest.param(reply(200, json.dumps({"count": 9, "next": 2, "previous": None,
                                        "results": []})),
                 "'next' is a link or null", id="broken-next"),
]


def _verify(tmp_path: Path, url: str, client_id: str) -> subprocess.CompletedProcess[str]:
    settings = tmp_path / "settings.yaml"
    settings.write_text(f"cloud: {{base_url: '{url}'}}\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
    env.update(PYTHONPATH=str(REPO), PREFORM_PIPELINE_CLIENT_ID=client_id,
               PREFORM_PIPELINE_CLIENT_SECRET=SECRET)
    return subprocess.run(
        [sys.executable, "-m", "preform_pipeline", "verify", "--settings", str(settings),
         "--store", str(tmp_path / "jobs.sqlite3")],
        capture_output=True, text=True, encoding="utf-8", env=env, timeout=TIMEOUT_S,
        check=False,
    )


class TestVerifyBehindABadNetwork:
    """A broken answer leaves every print pending and is said on one line with what helps."""

    @pytest.mark.parametrize(("answer", "said"), BROKEN)
    def test_nothing_is_marked_on_a_broken_answer(
        self, tmp_path: Path, answer: Answer, said: str
    ) -> None:
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            fleet = tmp_path / "fleet"
            builds = [sent_print(store, fleet, label) for label in ("good", "bad")]
        outcomes = tmp_path / "outcomes.yaml"
        outcomes.write_text("jobs:\n  - {name: 'bad *', outcome: ERROR, at: 0.5}\n",
                            encoding="utf-8")
        with start_dashboard("--outcomes", str(outcomes), "--time-scale", "0",
                             fleet_dir=fleet, client_secret=SECRET) as dash, \
                running_front(dash.url) as front:
            front.on("GET", PRINTS, answer, times=1)
            broken = _verify(tmp_path, front.url, dash.credentials.client_id)
            with SqliteJobStore(tmp_path / "jobs.sqlite3", create=False) as store:
                untouched = {store.get_build(b.id).state for b in builds}
            healed = _verify(tmp_path, front.url, dash.credentials.client_id)
            front.check()
        assert broken.returncode == 1
        lines = broken.stderr.splitlines()
        assert lines[0].startswith("error: the prints feed could not be read: "), lines
        assert said in lines[0]
        assert lines[1:] == ["the prints still pending are checked on the next verify"]
        assert "Traceback" not in broken.stderr and "session=s39" not in broken.stderr
        assert untouched == {JobState.PRINT_SENT}
        assert healed.returncode == 0, healed.stderr
        with SqliteJobStore(tmp_path / "jobs.sqlite3", create=False) as store:
            assert [store.get_build(b.id).state for b in builds] == [
                JobState.FINISHED, JobState.PRINT_ERROR
            ]

"""A long Retry-After in the hot-folder service: new cases still print, verification waits.

The daemon runs in a thread of the test process on simulated PreFormServer subprocesses that
print to two simulated printers. The Dashboard simulator (in this process, real HTTP on
127.0.0.1) allows three requests an hour, so it soon answers 429 with a Retry-After of about
an hour. The daemon's Web API clients are those ``watch`` makes: the prints feed
(``prints_feed_for``) and, with the credentials in the environment, dispatch's printer
readiness; both keep their budget in the job store.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from preform_pipeline.cloud import Credentials
from preform_pipeline.cloud.credentials import ENV_CLIENT_ID, ENV_CLIENT_SECRET
from preform_pipeline.commands.watch import prints_feed_for
from preform_pipeline.hotfolder.daemon import HotFolderDaemon
from preform_pipeline.hotfolder.testing import (
    declare_fleet,
    fleet_jobs,
    pool_factory,
    running_daemon,
    tetra_stl_bytes,
    wait_for,
    write_hotfolder_settings,
    write_recipe,
)
from preform_pipeline.printing import FleetFolderLocator
from preform_pipeline.settings import CloudSettings, VerifySettings, load_settings
from preform_pipeline.simulator.cloud.testing import TEST_CLIENT_ID, dashboard_server
from preform_pipeline.store import JobState, SqliteJobStore
from tests.fleet_prints import end_print

SECRET = "retry-after-secret"
PRINTERS = ("Form4-RetryA", "Form4-RetryB")
#: Real seconds per simulated second: a 20 mm part (about 1,700 s) prints in about 20 s, so
#: the third case, dropped once verification is deferred, still finds both printers busy and
#: waits for one (at 5 s a loaded machine took longer than that to defer and prepare it, and
#: the third case found a printer free), and dispatch reads printer readiness. The test ends
#: a print once the third case is seen waiting (``end_print``) rather than sleeping through
#: the rest of it.
SCALE = 0.012
TIMEOUT_S = 60.0


def _recipe(folder: Path) -> Path:
    return write_recipe(folder, name="retry", printer=f"[{', '.join(PRINTERS)}]", per_build=1,
                        extra_steps=["save_form: {}"])


def _third_waits(store: SqliteJobStore, logs: list[MutableMapping[str, Any]]) -> bool:
    """Whether the third case's build has gone to wait for a printer (its transition logged)."""
    builds = {j.build_id for j in store.list_jobs() if j.case_id == "C-3"} - {None}
    return any(e["event"] == "build_transition" and e["to_state"] == "waiting_for_printer"
               and e.get("build_id") in builds for e in logs)


def _drop(inbox: Path, case: str) -> None:
    (inbox / case).mkdir()
    (inbox / case / "upper.stl").write_bytes(tetra_stl_bytes(int(case[2:]), size_mm=20.0))


class TestALongRetryAfter:
    """Verification is deferred; a case that waits for a printer is dispatched meanwhile."""

    def test_new_cases_print_while_verification_waits_for_the_retry_time(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        fleet = tmp_path / "fleet"
        path = write_hotfolder_settings(tmp_path, _recipe(tmp_path), fleet_dir=fleet,
                                        servers=2, hotfolders={"batching": {"window_s": 0.5}})
        declare_fleet(path, PRINTERS, print_time_scale=SCALE, sections={
            "dispatch": {"poll_interval_s": 0.2}})
        credentials = Credentials(TEST_CLIENT_ID, SECRET)
        env = {ENV_CLIENT_ID: TEST_CLIENT_ID, ENV_CLIENT_SECRET: SECRET}
        for name, value in env.items():
            monkeypatch.setenv(name, value)  # dispatch reads its credentials from here
        inbox = tmp_path / "inbox"
        with dashboard_server(fleet, credentials=credentials, time_scale=SCALE,
                              hourly_limit=3) as dashboard:
            settings = load_settings(path, env={})
            settings = replace(settings, cloud=CloudSettings(base_url=dashboard.url),
                               verify=VerifySettings(interval_s=0.2, requests_per_hour=1500))
            store = SqliteJobStore(settings.store.path)
            daemon = HotFolderDaemon(settings, store, pool_factory(settings.pool),
                                     web_client=prints_feed_for(settings, env, store=store),
                                     print_lookup=FleetFolderLocator(fleet))
            statuses = lambda: [e.status for e in dashboard.exchanges]  # noqa: E731
            with capture_logs() as logs, running_daemon(daemon, timeout=TIMEOUT_S):
                for case in ("C-1", "C-2"):
                    _drop(inbox, case)
                wait_for(lambda: any(e["event"] == "hotfolder_verify_deferred" for e in logs),
                         TIMEOUT_S, interval=0.1, what="verification to be deferred")
                _drop(inbox, "C-3")  # both printers busy: it waits, then dispatch sends it
                wait_for(lambda: _third_waits(store, logs), TIMEOUT_S, interval=0.1,
                         what="the third case to wait for a printer")
                freed = end_print(fleet)
                wait_for(lambda: len(fleet_jobs(fleet)) == 3, TIMEOUT_S, interval=0.1,
                         what="the third case to print")
                held = statuses()
            dashboard.check()
        deferred = [e for e in logs if e["event"] == "hotfolder_verify_deferred"]
        assert len(deferred) == 1 and deferred[0]["wait_s"] > 3000, deferred
        assert held.count(429) == 1, held  # after it, nothing asked before the retry time
        builds = store.list_builds()
        assert len(builds) == 3
        assert {b.state for b in builds} <= {JobState.PRINT_SENT, JobState.VERIFYING}
        assert {b.printer for b in builds} == set(PRINTERS)
        # The third went through dispatch, to the printer freed while it waited.
        (job,) = [j for j in store.list_jobs() if j.case_id == "C-3"]
        assert [b.printer for b in builds if b.id == job.build_id] == [freed]
        store.close()

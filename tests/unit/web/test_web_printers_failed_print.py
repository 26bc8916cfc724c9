"""The Printers page says how a printer's last print ended when it failed: the printer itself
reports IDLE and ready again after an error or an abort (session 43: the card of a printer
whose print had just failed for low resin said "ready" and nothing else). Over real HTTP on
127.0.0.1: the dashboard reads the Dashboard simulator's Web API, as `serve` with `cloud:`
credentials does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

from preform_pipeline.cloud import Credentials, WebApiClient
from preform_pipeline.settings.web import WebSettings, WebUser
from preform_pipeline.simulator.cloud.outcomes import parse_outcomes
from preform_pipeline.simulator.cloud.testing import TEST_CLIENT_ID, dashboard_server, write_job
from preform_pipeline.store import SqliteJobStore
from preform_pipeline.verify.targets import WebApiPrinters
from preform_pipeline.web import WebServer
from preform_pipeline.web.sources import LiveSources
from tests.unit.web import clients
from tests.unit.web.conftest import VIEWER_AUTH

CREDENTIALS = Credentials(TEST_CLIENT_ID, "printers-page-secret")
OUTCOMES = parse_outcomes({"jobs": [
    {"name": "*low-resin*", "outcome": "ERROR", "message": "Resin level too low"},
    {"name": "*stopped*", "outcome": "ABORTED"},
]})


@contextmanager
def printers_page_of(tmp_path: Path, users: tuple[WebUser, ...],
                     prints: dict[str, str]) -> Iterator[str]:
    """The Printers page of a dashboard whose Web API printers printed ``prints`` (serial →
    job name), each ended an hour ago."""
    fleet = tmp_path / "fleet"
    an_hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    for serial, name in prints.items():
        write_job(fleet, name=name, printer=serial, created_at=an_hour_ago,
                  estimated_print_time_s=600.0)
    with dashboard_server(fleet, credentials=CREDENTIALS, outcomes=OUTCOMES) as api, \
            WebApiClient(CREDENTIALS, base_url=api.url) as client, \
            SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
        server = WebServer(store, WebSettings(port=0, users=users),
                           LiveSources(printers=lambda: WebApiPrinters(client)))
        server.start()
        try:
            yield clients.get(server.url + "/printers", headers=VIEWER_AUTH).text
        finally:
            server.stop()


def card(page: str, serial: str) -> str:
    found = re.search(rf'<section class="card printer" data-printer="{serial}">(.*?)</section>',
                      page, re.S)
    assert found is not None, page
    return found.group(1)


class TestAPrinterWhoseLastPrintFailed:

    def test_its_card_says_the_print_erred_with_the_printer_s_message(
        self, tmp_path: Path, users: tuple[WebUser, ...]
    ) -> None:
        with printers_page_of(tmp_path, users, {
                "SimulatedForm4-1": "low-resin C-3 PP-LOWRESIN01",
                "SimulatedForm4-2": "stopped C-4 PP-STOPPED001",
                "SimulatedForm3-1": "fine C-5 PP-FINISHED01"}) as page:
            erred = card(page, "SimulatedForm4-1")
            aborted = card(page, "SimulatedForm4-2")
            finished = card(page, "SimulatedForm3-1")

        assert '<span class="status">ready</span>' in erred  # what the printer reports
        assert ('<dt>Last print</dt><dd class="trouble">low-resin C-3 PP-LOWRESIN01 '
                "(error: Resin level too low)</dd>") in erred
        assert ('<dt>Last print</dt><dd class="trouble">stopped C-4 PP-STOPPED001 '
                "(aborted: Print aborted (simulated))</dd>") in aborted
        assert "Last print" not in finished  # a print that finished needs nobody

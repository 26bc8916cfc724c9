"""A refused approval on the dashboard names the ``jobs`` command that reaches its store."""

from __future__ import annotations

from pathlib import Path

import pytest

from preform_pipeline.settings.web import WebSettings, WebUser
from preform_pipeline.store import SqliteJobStore
from preform_pipeline.web import WebServer
from tests.unit.web import clients
from tests.unit.web.conftest import OPERATOR_SECRET, held_build

JOBS = 'preform-pipeline jobs --store "/srv/lab share/jobs.sqlite3"'


class TestASecondDecision:
    """Approving or rejecting a build someone already decided points at its history there."""

    @pytest.mark.parametrize("second", ["approve", "reject"])
    def test_the_refusal_names_this_stores_show(
        self, tmp_path: Path, users: tuple[WebUser, ...], second: str
    ) -> None:
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            held = held_build(store, tmp_path, "C-9")
            key = store.get_build(held).job_key
            server = WebServer(store, WebSettings(port=0, users=users), jobs=JOBS)
            server.start()
            try:
                headers = {"Authorization": f"Bearer olivia:{OPERATOR_SECRET}",
                           "Origin": server.url, "Sec-Fetch-Site": "same-origin"}
                first = clients.post(f"{server.url}/builds/{held}/approve", headers=headers)
                again = clients.post(f"{server.url}/builds/{held}/{second}", headers=headers,
                                   data={"reason": "too late"})
            finally:
                server.stop()
        assert first.status_code == 303
        assert again.status_code == 409
        assert f"see `{JOBS} show {key}`".replace('"', "&#34;") in again.text

"""The Printers page lists the server pool's PreFormServers: each one's state, builds, and a
local server's restarts or a remote's checks after a failure since its pool started (session
48: both counts reached /metrics only). Over real HTTP on 127.0.0.1; the pool is read through
its seam (``pool.status()``), as /metrics reads it."""

from __future__ import annotations

import re
from pathlib import Path

from preform_pipeline.servers import ServerState
from preform_pipeline.settings.web import WebSettings, WebUser
from preform_pipeline.store import SqliteJobStore
from preform_pipeline.web import WebServer
from preform_pipeline.web.sources import LiveSources
from tests.unit.web import clients
from tests.unit.web.conftest import VIEWER_AUTH, Statuses, server_status


def _printers_page(tmp_path: Path, users: tuple[WebUser, ...],
                   pool: Statuses | None) -> str:
    with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
        server = WebServer(store, WebSettings(port=0, users=users),
                           LiveSources(pool=lambda: pool))  # type: ignore[arg-type,return-value]
        server.start()
        try:
            return clients.get(server.url + "/printers", headers=VIEWER_AUTH).text
        finally:
            server.stop()


def _rows(page: str) -> list[list[str]]:
    """The servers table's rows, cell by cell."""
    return [re.findall(r"<td[^>]*>(.*?)</td>", row)
            for row in re.findall(r'<tr data-server="[^"]*">(.*?)</tr>', page, re.S)]


class TestThePrintersPageListsTheServers:
    def test_a_local_servers_restarts_and_a_remotes_rechecks_are_shown(
        self, tmp_path: Path, users: tuple[WebUser, ...]
    ) -> None:
        pool = Statuses((
            server_status("server-1", remote=False, restarts=2, builds=7),
            server_status("printhost", remote=True, rechecks=1, builds=3,
                          state=ServerState.RESTARTING),
            server_status("server-2", remote=False, state=ServerState.RETIRED,
                          retired_reason="crashed 3 times"),
        ))
        page = _printers_page(tmp_path, users, pool)
        assert _rows(page) == [
            ["server-1", "local", "idle", "7", "restarted 2 times"],
            ["printhost", "remote", "restarting", "3", "checked again 1 time after failing"],
            ["server-2", "local", "retired (crashed 3 times)", "0", "restarted 0 times"],
        ]

    def test_without_a_pool_no_servers_are_listed(
        self, tmp_path: Path, users: tuple[WebUser, ...]
    ) -> None:
        page = _printers_page(tmp_path, users, None)
        assert "<h1>Printers</h1>" in page
        assert 'class="servers"' not in page

    def test_a_servers_name_and_reason_are_shown_as_text(
        self, tmp_path: Path, users: tuple[WebUser, ...]
    ) -> None:
        # A remote's name and a retired server's reason are the config's and the pool's
        # words, not the page's markup (session 48's review).
        pool = Statuses((server_status('<b>lab"2</b>', remote=True, state=ServerState.RETIRED,
                                       retired_reason="answered <script>x()</script>"),))
        page = _printers_page(tmp_path, users, pool)
        assert "<script>x()" not in page and "<b>lab" not in page
        assert _rows(page) == [[
            "&lt;b&gt;lab&#34;2&lt;/b&gt;", "remote",
            "retired (answered &lt;script&gt;x()&lt;/script&gt;)", "0",
            "checked again 0 times after failing"]]

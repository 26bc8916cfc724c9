"""``verify --quiet`` from cron says a wait for the Web API's rate limits once, when it starts.

Session 48's trial: with the account's hour spent, a cron ``verify`` every minute mailed
"cannot verify now ... try again after 23:49:10 UTC" about 48 times an hour. The wait ends by
itself at the time it names, so the first verify that meets it says it (with that time) and the
verifies after it, a minute apart on the clock seam, say nothing until it has passed; a real
failure (credentials refused) is said each time. The Dashboard simulator runs in-process on
loopback, its rate limits on the same :class:`ManualClock` as the verifies.
"""

from __future__ import annotations

import argparse
import io
import re
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import Credentials
from preform_pipeline.commands import verify
from preform_pipeline.commands.arguments.verify import add_arguments
from preform_pipeline.simulator.cloud.testing import dashboard_server
from preform_pipeline.store import SqliteJobStore
from preform_pipeline.verify.service import HELD_NOTICE
from tests.integration.test_verify_command import sent_print

SECRET = "held-quiet-secret"
CLIENT_ID = "held-quiet-client"
HOUR_S = 3600.0


class Cron:
    """A store with two prints pending, a Dashboard simulator that allows one request an
    hour, and ``verify --quiet`` run as cron runs it, on one manual clock."""

    def __init__(self, tmp_path: Path, url: str, clock: ManualClock) -> None:
        self.clock = clock
        self.store = tmp_path / "jobs.sqlite3"
        self.settings = tmp_path / "settings.yaml"
        self.settings.write_text(f"cloud: {{base_url: '{url}'}}\n", encoding="utf-8")

    def verify(self) -> tuple[int, str, str, list[str]]:
        """One cron verify: its exit status, stdout, stderr and log event names."""
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        args = parser.parse_args(["--settings", str(self.settings), "--store", str(self.store),
                                  "--quiet"])
        out, err = io.StringIO(), io.StringIO()
        with capture_logs() as logs:
            code = verify.run(args, out, err, clock=self.clock)
        return code, out.getvalue(), err.getvalue(), [e["event"] for e in logs]


@pytest.fixture
def cron(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cron]:
    monkeypatch.setenv("PREFORM_PIPELINE_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("PREFORM_PIPELINE_CLIENT_SECRET", SECRET)
    # The prints were sent now (the store's and the fleet's dates are the machine's).
    clock = ManualClock(wall=datetime.now(timezone.utc))
    with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
        for label in ("good", "bad"):
            sent_print(store, tmp_path / "fleet", label)
    with dashboard_server(tmp_path / "fleet", clock=clock, time_scale=1.0, hourly_limit=1,
                          credentials=Credentials(CLIENT_ID, SECRET)) as server:
        yield Cron(tmp_path, server.url, clock)


def _ends(said: str) -> datetime:
    found = re.search(r"try again after (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", said)
    assert found is not None, said
    return datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)


class TestASpentHourFromCron:

    def test_the_wait_is_said_once_with_its_end_and_not_each_minute(self, cron: Cron) -> None:
        code, out, err, events = cron.verify()
        assert (code, out) == (1, "")
        said, pending, quiet = err.splitlines()
        assert said.startswith("error: cannot verify now: ")
        assert 3000 < (_ends(said) - cron.clock.now()).total_seconds() <= 3601
        assert pending == "the prints still pending are checked on the next verify"
        assert quiet == "verify --quiet says nothing more of this wait until it ends"
        assert "verify_wait_said" in events
        for _minute in range(3):
            cron.clock.advance(60)
            code, out, err, events = cron.verify()
            assert (code, out, err) == (1, "", "")
            assert "verify_wait_said_before" in events and "verify_wait_said" not in events

    def test_a_wait_that_outlasts_the_end_said_is_said_again(self, cron: Cron) -> None:
        first = _ends(cron.verify()[2])
        # Past the end said, the hour's one request goes; the next is refused again.
        cron.clock.advance(HOUR_S + 1)
        code, out, err, events = cron.verify()
        assert (code, out) == (1, "")
        assert _ends(err) > first
        assert "verify_wait_said" in events

    def test_refused_credentials_are_said_every_minute(
        self, cron: Cron, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("PREFORM_PIPELINE_CLIENT_SECRET", "not-the-secret")
        for _minute in range(2):
            code, out, err, _ = cron.verify()
            assert (code, out) == (1, "")
            assert err.startswith("error: ") and "cannot verify now" not in err
            cron.clock.advance(60)


class _Down(BaseHTTPRequestHandler):
    """A Web API down for maintenance: every request answered 503 with an hour's Retry-After."""

    def _down(self) -> None:
        self.send_response(503)
        self.send_header("Retry-After", "3600")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _down

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def down_cron(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cron]:
    monkeypatch.setenv("PREFORM_PIPELINE_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("PREFORM_PIPELINE_CLIENT_SECRET", SECRET)
    with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
        sent_print(store, tmp_path / "fleet", "good")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Down)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        yield Cron(tmp_path, f"http://127.0.0.1:{server.server_port}",
                   ManualClock(wall=datetime.now(timezone.utc)))
    finally:
        server.shutdown()
        server.server_close()
        serving.join(timeout=5)


class TestAWebApiDownFromCron:
    """A 503 that says when the Web API is back is the Web API failing, not the account's
    budget: ``--quiet`` says it on every verify, as the docs say of an unreachable Web API,
    and it leaves no wait that would keep a later spent budget unsaid (rv49-verify: it was
    said once and taken for the budget's wait)."""

    def test_it_is_said_every_minute_and_no_wait_is_recorded(self, down_cron: Cron) -> None:
        for _minute in range(2):
            code, out, err, events = down_cron.verify()
            assert (code, out) == (1, "")
            assert "(HTTP 503)" in err and "says nothing more" not in err
            assert "verify_wait_said" not in events and "verify_wait_said_before" not in events
            down_cron.clock.advance(60)
        with SqliteJobStore(down_cron.store) as store:
            assert store.notice_keys(HELD_NOTICE) == ()


class TestTwoAccountsOfOneStore:
    """The wait said is the account's: another account's wait (another Dashboard user the
    settings name, with its own budget) is said by the first verify that meets it, though the
    first account's wait is still on."""

    def test_each_account_s_wait_is_said_once(self, cron: Cron) -> None:
        url = re.search(r"base_url: '([^']+)'", cron.settings.read_text(encoding="utf-8"))
        assert url is not None
        for account in ("lab-a", "lab-b"):
            cron.settings.write_text(
                f"cloud: {{base_url: '{url.group(1)}', account: {account}}}\n", encoding="utf-8")
            code, _, err, events = cron.verify()
            assert code == 1 and err.startswith("error: cannot verify now: ")
            assert "verify_wait_said" in events
            cron.clock.advance(60)
            assert cron.verify()[2] == ""

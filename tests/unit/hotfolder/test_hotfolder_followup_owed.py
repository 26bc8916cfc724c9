"""A failed case's notice is owed through the store: a daemon killed before it went out sends
it on its next start, once per case and reason, and never again after it was delivered.

The daemons are real (a scripted runner at the executor seam, a real SQLite store); the
webhook is a real HTTP server on loopback; the first life is a child process killed with
SIGKILL while its notice is on the wire.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from daemon_support import Script, drop, make_daemon, names, run_daemon_once
from structlog.testing import capture_logs

from preform_pipeline.hotfolder.followup import CASE_FAILED_FIELD
from preform_pipeline.hotfolder.testing import tetra_stl_bytes
from preform_pipeline.store import JobState, SqliteJobStore
from preform_pipeline.verify.notify import Notifier

WAIT_S = 20.0
HERE = Path(__file__).parent
REASON = "label refused: too long"


class Hook:
    """A webhook on loopback: records every body; answers ``status``, or holds each request
    (no answer) while ``holding`` is set, until released."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 204
        self.holding = threading.Event()
        self.released = threading.Event()
        self.received = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.bodies.append(json.loads(body))
                hook.received.set()
                if hook.holding.is_set():
                    hook.released.wait(WAIT_S)
                    return  # the caller was killed meanwhile: nobody reads an answer
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def told(self) -> list[tuple[str, str | None, str | None]]:
        return [(b["event"], b["case_id"], b["message"]) for b in self.bodies]

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    served = Hook()
    yield served
    served.close()


def _drop_case(tmp_path: Path, case: str, *files: str) -> None:
    for i, name in enumerate(files):
        drop(tmp_path, f"{case}/{name}", tetra_stl_bytes(i))


def _failing(tmp_path: Path) -> Script:
    return Script(fleet_dir=tmp_path / "fleet", fail=lambda _build: REASON)


def _life(tmp_path: Path, recipe: Path, hook: Hook, *, attempts: int = 1) -> None:
    """One life of the daemon in this process: it runs what is there, then stops."""
    notifier = Notifier(webhook_url=hook.url, max_attempts=attempts)
    with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
        run_daemon_once(make_daemon(tmp_path, store, _failing(tmp_path), recipe,
                                    notifier=notifier))
    notifier.close()


def _markers(tmp_path: Path) -> list[tuple[str, str]]:
    with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
        return sorted((j.original_name, j.fields[CASE_FAILED_FIELD]["state"])
                      for j in store.list_jobs() if CASE_FAILED_FIELD in j.fields)


class TestANoticeOwedAcrossLives:
    """Killed, refused or cut short, the notice goes out on the next start, once."""

    def test_a_daemon_killed_while_its_notice_is_on_the_wire_sends_it_on_its_next_start(
        self, tmp_path: Path, recipe: Path, hook: Hook, python_exe: str
    ) -> None:
        _drop_case(tmp_path, "C-7", "upper.stl", "lower.stl")
        hook.holding.set()
        child = subprocess.Popen([python_exe, str(HERE / "notice_child.py"), str(tmp_path),
                                  str(recipe), hook.url])
        try:
            assert hook.received.wait(WAIT_S), "the first life never sent its notice"
            child.send_signal(signal.SIGKILL)
            assert child.wait(timeout=WAIT_S) == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=WAIT_S)
        hook.holding.clear()
        hook.released.set()
        # Its other file may have been cut off mid-settle: whatever was recorded is owed.
        owed = _markers(tmp_path)
        assert owed and {state for _, state in owed} == {"owed"}

        _life(tmp_path, recipe, hook)
        assert names(tmp_path / "inbox" / "failed") == [
            "C-7/lower.stl", "C-7/lower.stl.error.txt", "C-7/upper.stl", "C-7/upper.stl.error.txt"]
        assert hook.told() == [("case_failed", "C-7", REASON)] * 2  # the killed one, then this
        assert _markers(tmp_path) == [("lower.stl", "told"), ("upper.stl", "told")]

        _life(tmp_path, recipe, hook)
        assert len(hook.bodies) == 2  # delivered: never again

    def test_a_notice_the_webhook_refused_goes_out_on_the_next_start(
        self, tmp_path: Path, recipe: Path, hook: Hook
    ) -> None:
        _drop_case(tmp_path, "C-8", "crown.stl")
        hook.status = 503
        _life(tmp_path, recipe, hook)
        assert _markers(tmp_path) == [("crown.stl", "owed")]
        hook.status = 204
        with capture_logs() as logs:
            _life(tmp_path, recipe, hook)
        assert [(e["case_id"], e["reason"]) for e in logs
                if e["event"] == "case_failed_resent"] == [("C-8", REASON)]
        _life(tmp_path, recipe, hook)
        assert hook.told() == [("case_failed", "C-8", REASON)] * 2  # refused, then delivered
        assert _markers(tmp_path) == [("crown.stl", "told")]

    def test_a_case_told_in_one_life_is_not_told_again_for_a_file_failing_in_the_next(
        self, tmp_path: Path, recipe: Path, hook: Hook
    ) -> None:
        _drop_case(tmp_path, "C-9", "upper.stl")
        _life(tmp_path, recipe, hook)
        _drop_case(tmp_path, "C-9", "lower.stl")  # the case's other file, dropped later
        _life(tmp_path, recipe, hook)
        assert hook.told() == [("case_failed", "C-9", REASON)]
        assert _markers(tmp_path) == [("lower.stl", "told"), ("upper.stl", "told")]


class TestWhatIsNotOwed:
    """Without a notifier nothing is owed; another host's notices are that host's to send."""

    def test_without_a_notifier_no_notice_is_recorded(
        self, tmp_path: Path, recipe: Path, store: SqliteJobStore
    ) -> None:
        _drop_case(tmp_path, "C-10", "crown.stl")
        run_daemon_once(make_daemon(tmp_path, store, _failing(tmp_path), recipe))
        assert [j.state for j in store.list_jobs()] == [JobState.FAILED]
        assert all(CASE_FAILED_FIELD not in j.fields for j in store.list_jobs())

    def test_a_notice_another_host_owes_is_not_sent_from_here(
        self, tmp_path: Path, recipe: Path, hook: Hook
    ) -> None:
        _drop_case(tmp_path, "C-11", "crown.stl")
        hook.status = 503
        _life(tmp_path, recipe, hook)
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            (job,) = store.list_jobs()
            owed = {**job.fields[CASE_FAILED_FIELD], "host": "another-pc"}
            store.update_job(job.id, fields={**job.fields, CASE_FAILED_FIELD: owed})
        hook.status = 204
        _life(tmp_path, recipe, hook)
        assert len(hook.bodies) == 1  # only the refused first try
        assert _markers(tmp_path) == [("crown.stl", "owed")]

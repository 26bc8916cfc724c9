"""A model file that stopped growing before it was complete is said once on the console.

Session 41: an STL cut short (a copy that died) was said nowhere, console or dashboard, for
``incomplete_timeout_s`` (600 s by default), then failed. Now once it has not changed for the
inbox's quiet period, the daemon says once that it waits for the rest (event
``drop_waiting_incomplete``, at info), and takes it when it is whole. A real daemon loop in a
thread over a real inbox and SQLite store, with a real model file cut short.
"""

from __future__ import annotations

import threading
from pathlib import Path

from daemon_support import Script, make_daemon
from structlog.testing import capture_logs

from preform_pipeline.hotfolder.testing import fleet_jobs, wait_for, write_recipe
from preform_pipeline.store import SqliteJobStore
from tests.conftest import REPO_ROOT

PART = REPO_ROOT / "sample_models" / "parts" / "l_bracket.stl"
#: Bound on every wait for the daemon's loop.
WAIT_S = 10.0


class TestAFileCutShort:
    """Said once while it waits, with what happens next; taken when it is whole."""

    def test_it_is_said_once_then_taken_when_the_rest_comes(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        whole = PART.read_bytes()
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        cut = inbox / "l_bracket.stl"
        cut.write_bytes(whole[:600])
        script = Script(fleet_dir=tmp_path / "fleet")
        daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path, name="hot"),
                             inbox={"quiet_period_s": 0.1})
        said: list[str] = []
        first, second = threading.Event(), threading.Event()

        def notice(line: str) -> None:
            if "is not complete yet" in line:
                said.append(line)
                (second if first.is_set() else first).set()

        daemon.notice = notice
        thread = threading.Thread(target=daemon.run, daemon=True)
        with capture_logs() as logs:
            thread.start()
            try:
                assert first.wait(WAIT_S), "the cut file was never said"
                # Several more looks at it (each 0.1 s quiet) say nothing new.
                assert not second.wait(0.4), said
                cut.write_bytes(whole)  # the rest came: taken and printed
                wait_for(lambda: bool(fleet_jobs(script.fleet_dir)), WAIT_S,
                         what="the whole file's print")
            finally:
                daemon.stop()
                thread.join(WAIT_S)
        assert said == [
            f"{cut} is not complete yet (600 bytes, unchanged for 0.1 s): waiting for the rest "
            "of it; if it stays so for 600 s, it is taken as it is and fails (copy it again "
            "whole)"]
        (event,) = [e for e in logs if e["event"] == "drop_waiting_incomplete"]
        assert (event["log_level"], event["path"], event["size"], event["taken_after_s"]) == (
            "info", str(cut), 600, 600.0)

"""``watch`` stops, on start, what a dead predecessor left running, and says so.

The orphan is a real process that looks like a server the pool started (its command line asks
for the recorded port) and whose record names an owner that has ended. ``watch --once`` on an
empty inbox must kill it, print one line naming it, log ``server_reaped`` in its JSON log and
remove the record.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from preform_pipeline.cli import run
from preform_pipeline.hotfolder.testing import wait_for, write_hotfolder_settings, write_recipe
from preform_pipeline.liveness import ProcessIdentity
from preform_pipeline.servers.records import ServerRecord, ServerRecords

WAIT_S = 30.0
PORT = 44391


def _waiting_process(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()", *argv], stdin=subprocess.PIPE,
        text=True,
    )


class TestWatchReaps:
    """The daemon's start reaps a dead owner's server: console line, log event, no record."""

    def test_watch_once_reaps_and_reports(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        state_dir = tmp_path / "state"
        monkeypatch.setenv("PREFORM_PIPELINE_SERVER_STATE_DIR", str(state_dir))
        settings = write_hotfolder_settings(tmp_path, write_recipe(tmp_path))
        data = json.loads(settings.read_text(encoding="utf-8"))
        log_file = tmp_path / "watch.jsonl"
        data["logging"] = {"file": str(log_file)}
        settings.write_text(json.dumps(data), encoding="utf-8")
        (tmp_path / "inbox").mkdir()

        dead_owner = _waiting_process()
        owner = ProcessIdentity.of_running(dead_owner.pid)
        assert dead_owner.stdin is not None
        dead_owner.stdin.close()
        dead_owner.wait(WAIT_S)
        orphan = _waiting_process("--port", str(PORT))
        try:
            server = ProcessIdentity.of_running(orphan.pid)
            assert owner is not None and server is not None
            ServerRecords(state_dir).add(ServerRecord(
                server=server, owner=owner, name="server-1", port=PORT,
                command=("preformserver", "--port", str(PORT)),
                started_at=datetime(2024, 5, 1, tzinfo=timezone.utc),
            ))
            out, err = io.StringIO(), io.StringIO()
            assert run(["watch", str(settings), "--once", "--quiet"], out, err) == 0, (
                err.getvalue()
            )
            # Its stdin stays open: only a kill ends it (the reaper collects its exit status).
            try:
                wait_for(lambda: orphan.poll() is not None, WAIT_S, what="the orphan gone")
            except TimeoutError:
                # Seen once in a whole run (session 37), not reproduced alone: say what the
                # reaper judged, and the identities it judged by.
                judged = [line for line in log_file.read_text(encoding="utf-8").splitlines()
                          if '"server_re' in line]
                now = ProcessIdentity.of_running(orphan.pid)
                pytest.fail(f"the orphan still runs {WAIT_S:g} s after `watch --once`: it said "
                            f"{out.getvalue()!r}; the reaper logged {judged}; recorded owner "
                            f"{owner}, server {server}; the orphan now {now}")
        finally:
            if orphan.poll() is None:  # the safety net: the test has failed already
                orphan.kill()
                orphan.wait(WAIT_S)
        assert (
            f"stopped 1 server left running by a run or daemon that had died: pid {orphan.pid} "
            f"on port {PORT} (owner pid {dead_owner.pid})"
        ) in out.getvalue()
        events = [json.loads(line) for line in log_file.read_text().splitlines()]
        reaped = [e for e in events if e["event"] == "server_reaped"]
        assert [(e["pid"], e["port"], e["owner_pid"]) for e in reaped] == [
            (orphan.pid, PORT, dead_owner.pid)
        ]
        assert ServerRecords(state_dir).read_all() == []

"""A simulator whose stderr nobody reads keeps serving, as under Formlabs' own launcher.

Formlabs' Python library starts PreFormServer with stdout and stderr on pipes and reads only
stdout (for ``READY FOR INPUT``). Started that way, the simulator used to stop answering once
its request log had filled the stderr pipe (64 KiB on Linux, a few hundred requests). The
stop is SIGTERM, as that launcher's ``terminate()`` sends on POSIX systems.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

import httpx
import pytest

#: Requests that log far more than a pipe holds (each logs one line of 150-250 bytes).
REQUESTS = 1000
WAIT_S = 30.0


def _lines(stream: IO[str] | None, into: queue.Queue[str]) -> None:
    assert stream is not None
    for line in iter(stream.readline, ""):
        into.put(line)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals; Windows terminate is a kill")
class TestUnreadStderr:
    """Requests are answered and the process stops cleanly though stderr is never read."""

    def test_a_thousand_requests_are_answered_and_the_log_catches_up_once_read(
        self, python_exe: str, tmp_path: Path
    ) -> None:
        process = subprocess.Popen(
            [python_exe, "-m", "preform_pipeline.simulator", "--port", "0",
             "--fleet-dir", str(tmp_path / "fleet"), "--work-dir", str(tmp_path / "work")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            out: queue.Queue[str] = queue.Queue()
            threading.Thread(target=_lines, args=(process.stdout, out), daemon=True).start()
            port = None
            while True:
                line = out.get(timeout=WAIT_S)
                if "listening on port" in line:
                    port = int(line.rsplit(" ", 1)[1])
                if "READY FOR INPUT" in line:
                    break
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=WAIT_S) as client:
                for _ in range(REQUESTS):
                    assert client.get("/").status_code == 200
                # A reader turns up at last: everything logged meanwhile reaches it.
                err: queue.Queue[str] = queue.Queue()
                threading.Thread(target=_lines, args=(process.stderr, err), daemon=True).start()
                assert client.get("/scenes/").status_code == 200
            process.send_signal(signal.SIGTERM)
            assert process.wait(WAIT_S) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(WAIT_S)
        logged = []
        while True:
            try:
                logged.append(err.get(timeout=WAIT_S))
            except queue.Empty:
                break
            if "server_stopped" in logged[-1]:
                break
        exchanges = [line for line in logged if "http_exchange" in line]
        assert len(exchanges) == REQUESTS + 1
        assert "/scenes/" in exchanges[-1]

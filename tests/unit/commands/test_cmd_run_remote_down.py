"""``run`` with a remote server that does not answer: said once on the console, with what
helps, never as a restart; each check in the log file only.

Session 44's trial: each health check of a remote that was down printed three warning lines,
one of them a restart the pool never does to another machine's server.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.command_line import in_a_process

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "engineering-grey-form4.yaml"


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A loopback port bound but not listening: every connection to it is refused."""
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.bind(("127.0.0.1", 0))
    yield held.getsockname()[1]
    held.close()


def _events(out: Path) -> list[dict[str, Any]]:
    (log,) = (out / "logs").glob("*.jsonl")
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


class TestARemoteThatDoesNotAnswer:
    """Its outage is one warning on the console; the log file has each check."""

    def test_the_console_says_it_once_and_names_no_restart(
        self, tmp_path: Path, sample_models_dir: Path, dead_port: int,
    ) -> None:
        share = tmp_path / "share"
        share.mkdir()
        shutil.copy(sample_models_dir / "parts" / "cube_with_hole.stl", share)
        settings = tmp_path / "settings.yaml"
        url = f"http://127.0.0.1:{dead_port}"
        settings.write_text(
            "servers: {remote_wait_s: 1, restart_backoff_s: 0.1, restart_backoff_max_s: 0.1}\n"
            f"remotes:\n  - url: {url}\n    name: printhost\n"
            f"    path_map: {{{share}: 'Z:\\'}}\n",
            encoding="utf-8",
        )
        out = share / "out"

        done = in_a_process(tmp_path, "run", str(RECIPE), str(share), "--settings",
                            str(settings), "--output", str(out), "--store",
                            str(tmp_path / "jobs.sqlite3"))

        assert done.returncode == 1, done.stderr
        warned = [line for line in done.stderr.splitlines() if "[warning" in line]
        assert [line.split()[3] for line in warned] == [
            "remote_server_not_answering", "server_retired"], done.stderr
        assert "restart" not in done.stderr
        events = _events(out)
        (down,) = [e for e in events if e["event"] == "remote_server_not_answering"]
        assert (down["server"], down["url"]) == ("printhost", url)
        assert down["reason"].startswith("health check failed: unreachable: ")
        assert "check the remote machine" in down["hint"]
        waiting = [e for e in events if e["event"] == "remote_server_waiting"]
        assert len(waiting) >= 2 and {e["level"] for e in waiting} == {"info"}

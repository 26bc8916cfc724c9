"""``run`` with a remote server that does not answer: said once on the console, with what
helps, never as a restart; each check in the log file only.

Session 44's trial: each health check of a remote that was down printed three warning lines,
one of them a restart the pool never does to another machine's server.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.command_line import in_a_process

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "engineering-grey-form4.yaml"
#: A password written in the remote's url.
SECRET = "hunter2-in-the-url"


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


def _run_against(url: str, tmp_path: Path, models: Path
                 ) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``run`` in a process of its own, its one remote at ``url`` waited for a second; its
    outcome and its output folder."""
    share = tmp_path / "share"
    share.mkdir()
    shutil.copy(models / "parts" / "cube_with_hole.stl", share)
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        "servers: {remote_wait_s: 1, restart_backoff_s: 0.1, restart_backoff_max_s: 0.1}\n"
        f"remotes:\n  - url: {url}\n    name: printhost\n"
        f"    path_map: {{{share}: 'Z:\\'}}\n",
        encoding="utf-8",
    )
    out = share / "out"
    return in_a_process(tmp_path, "run", str(RECIPE), str(share), "--settings", str(settings),
                        "--output", str(out), "--store", str(tmp_path / "jobs.sqlite3")), out


class TestARemoteThatDoesNotAnswer:
    """Its outage is one warning on the console; the log file has each check."""

    def test_the_console_says_it_once_and_names_no_restart(
        self, tmp_path: Path, sample_models_dir: Path, dead_port: int,
    ) -> None:
        url = f"http://127.0.0.1:{dead_port}"

        done, out = _run_against(url, tmp_path, sample_models_dir)

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

    def test_a_password_in_its_url_is_said_nowhere(
        self, tmp_path: Path, sample_models_dir: Path, dead_port: int,
    ) -> None:
        # The servers line printed the url as the settings wrote it, password and all.
        done, out = _run_against(f"http://olivia:{SECRET}@127.0.0.1:{dead_port}", tmp_path,
                                 sample_models_dir)

        assert done.returncode == 1, done.stderr
        assert f"(REMOTE, http://olivia:[redacted]@127.0.0.1:{dead_port}, not answering" in (
            done.stdout)
        assert SECRET not in done.stdout + done.stderr
        assert not [p for p in out.rglob("*") if p.is_file() and SECRET in p.read_text()]

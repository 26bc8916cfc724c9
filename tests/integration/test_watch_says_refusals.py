"""``watch`` says a server the pool refuses as ``run`` does: once, on stderr (a service's
journal), ``error: server NAME (REMOTE, URL): why ...`` (commands/_console.py
``start_saying_refusals``), its ``server_retired`` event kept for the log, and the batch
prepared on the servers left.

A real loopback HTTP front (tests/hostile_http.py) answers as a NAS's home page at one
remote's address, a real simulator on loopback at the other's; ``watch --once`` runs in the
test's process (its console is the point). A daemon starts a new pool when every server of
its last one refused: the same refusal is not said again then (two real pools, one set of
lines said)."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

from preform_pipeline.commands._console import start_saying_refusals
from preform_pipeline.hotfolder.testing import tetra_stl_bytes, write_recipe
from preform_pipeline.servers import ServerPool
from preform_pipeline.settings import PoolSettings, RemoteServer, ServerSettings
from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.server import SimulatorServer
from tests.command_line import InProcess
from tests.hostile_http import reply, running_front

NAS_PAGE = "<html><head><title>DiskStation</title></head></html>"
#: How the refusal of a NAS's home page begins, after ``error: server nas (REMOTE, URL): ``.
NAS_SAID = ("it answers, but cannot be used at this address: the server answered GET / with an "
            'HTML page titled "DiskStation", where a PreFormServer answers its Local API version')


def _settings(tmp_path: Path, remotes: list[dict[str, str]]) -> Path:
    recipe = write_recipe(tmp_path, per_build=1)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.stl").write_bytes(tetra_stl_bytes(1))
    os.utime(inbox / "a.stl", (1e9, 1e9))  # long since written: taken at once
    settings = tmp_path / "settings.yaml"
    settings.write_text(json.dumps({
        "servers": {"count": 0, "health_interval_s": 0},
        "remotes": remotes,
        "store": {"path": str(tmp_path / "jobs.sqlite3")},
        "hotfolders": {"inboxes": [{"path": str(inbox), "recipe": str(recipe),
                                    "quiet_period_s": 0.1}],
                       "batching": {"window_s": 0.1}, "stop_deadline_s": 20,
                       "output_root": str(tmp_path / "out")},
    }), encoding="utf-8")
    return settings


class TestWatchSaysARefusedServer:
    """Once, on stderr, in ``run``'s words; the batch goes on the usable server."""

    def test_beside_a_usable_remote(self, tmp_path: Path, in_process: InProcess) -> None:
        engine = SimEngine(work_dir=tmp_path / "sim" / "work",
                           fleet_dir=tmp_path / "sim" / "fleet")
        with running_front() as front, SimulatorServer(engine, port=0) as simulator:
            front.on("GET", "/", reply(200, NAS_PAGE, content_type="text/html"))
            settings = _settings(tmp_path, [{"url": front.url, "name": "nas"},
                                            {"url": simulator.url, "name": "printhost"}])
            done = in_process(tmp_path, "watch", str(settings), "--once", "--dry-run")
            asked = len(front.requests_to("/"))
            front.check()
            simulator.check()
        assert done.returncode == 0, done.stdout + done.stderr
        (refusal,) = [line for line in done.stderr.splitlines() if "DiskStation" in line]
        assert refusal.startswith(f"error: server nas (REMOTE, {front.url}): {NAS_SAID}")
        assert refusal.endswith("that address is this remote's url under remotes in the settings")
        assert "server_retired" not in done.stderr  # the event is the log's
        assert "DiskStation" not in done.stdout
        assert asked == 1
        assert done.stdout.splitlines()[-1] == "stopped after 1 batch"
        assert [p.name for p in (tmp_path / "inbox" / "done").iterdir()
                if p.suffix == ".stl"] == ["a.stl"]


class TestARenewedPoolSaysNothingAgain:
    """A pool whose every server refused is started again later: said the first time only."""

    def test_two_pools_one_line(self) -> None:
        servers = ServerSettings(count=0, health_timeout_s=2, health_interval_s=0)
        err = io.StringIO()
        said: set[str] = set()
        with running_front() as front:
            front.on("GET", "/", reply(200, NAS_PAGE, content_type="text/html"))
            for _ in range(2):
                pool = ServerPool(PoolSettings(servers=servers,
                                               remotes=(RemoteServer(front.url, name="nas"),)),
                                  handle_signals=False)
                with contextlib.closing(pool):  # started by start_saying_refusals
                    (status,) = start_saying_refusals(pool, err, said)
                    assert status.refused
            front.check()
        (line,) = err.getvalue().splitlines()
        assert line.startswith(f"error: server nas (REMOTE, {front.url}): {NAS_SAID}")
        assert said == {line}

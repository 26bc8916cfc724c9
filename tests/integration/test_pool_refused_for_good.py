"""A server that refuses to start for good is not started again, and the refusal is said once.

Real processes: a rehearsal simulator with a declared fleet holds its fleet folder, and the
pool (or ``run``) starts a simulator without one on the same folder, which refuses
(simulator/fleetusers.py); a server program that cannot be run at all. A transient failure
keeps its retries (tests/integration/test_server_pool.py).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from preform_pipeline.errors import PoolExhaustedError
from preform_pipeline.geometry import read_mesh_bytes
from preform_pipeline.hotfolder.daemon import HotFolderDaemon
from preform_pipeline.hotfolder.testing import (
    pool_factory,
    running_daemon,
    tetra_stl_bytes,
    wait_for,
    write_hotfolder_settings,
    write_recipe,
)
from preform_pipeline.servers import ServerPool, ServerState
from preform_pipeline.settings import ServerSettings, Settings, load_settings
from preform_pipeline.simulator.fleet import default_fleet_dir
from preform_pipeline.simulator.formfile import save_form
from preform_pipeline.simulator.scene import Scene as SimScene
from preform_pipeline.simulator.scene import SceneSettings as SimSceneSettings
from preform_pipeline.simulator.scene import SimModel
from preform_pipeline.simulator.testing import start_simulator
from preform_pipeline.store import JobState, SqliteJobStore
from tests.command_line import in_a_process, user_environment
from tests.two_nodes import waiting_build

WAIT_S = 20.0
REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = REPO_ROOT / "recipes" / "engineering-grey-form4.yaml"
MODEL = REPO_ROOT / "sample_models" / "parts" / "gear.obj"
BENCH = json.dumps([{"serial": "Bench-A", "machine_type_id": "FORM-4-0",
                     "product_name": "Form 4", "ip_address": "192.0.2.71",
                     "material_code": "FLGPGR05"}])
IN_USE = "is in use by a simulator with another fleet"
REFUSED_SAID = "server-1: refused (why and what helps were said when it was)"


def _settings(**overrides: Any) -> Settings:
    """One simulated server that would be restarted twice (quickly) after a failure."""
    servers = ServerSettings(count=1, base_port=0, startup_timeout_s=WAIT_S, stop_timeout_s=2.0,
                             health_interval_s=0.0, max_restarts=2, restart_backoff_s=0.05,
                             restart_backoff_max_s=0.1)
    return Settings(servers=replace(servers, **overrides))


def _events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


class TestAPoolOnAFleetFolderInUse:
    """The pool's server refused for its fleet folder is retired at its first attempt."""

    def test_one_attempt_one_event_and_the_builds_name_it(self, tmp_path: Path) -> None:
        fleet = tmp_path / "fleet"
        with start_simulator("--fleet-printers", BENCH, fleet_dir=fleet, timeout=WAIT_S):
            pool = ServerPool(_settings().pool, simulator_args=("--fleet-dir", str(fleet)),
                              handle_signals=False, state_dir=tmp_path / "state")
            with capture_logs() as logs, pool:
                (status,) = pool.status()
                with pytest.raises(PoolExhaustedError) as raised:
                    pool.lease(timeout=WAIT_S)
        assert status.state is ServerState.RETIRED and status.restarts == 0
        assert len(_events(logs, "server_starting")) == 1
        assert not _events(logs, "server_restart_scheduled")
        assert not _events(logs, "server_start_failed")
        (retired,) = _events(logs, "server_retired")
        assert retired["refused"] is True
        assert retired["reason"].startswith(
            f"server-1 refused to start: fleet folder {fleet.resolve()} {IN_USE} (pid ")
        assert retired["reason"].endswith("--fleet-dir, or for a pool another XDG_DATA_HOME)")
        assert status.retired_reason == retired["reason"]
        # Said whole once (the event); each build failing for it names it without repeating.
        assert IN_USE not in str(raised.value)
        assert REFUSED_SAID in str(raised.value)
        assert "raise servers.max_restarts" not in str(raised.value)


class TestAProgramThatCannotRun:
    """A server executable the system cannot run (not a program) is not tried again."""

    def test_retired_at_the_first_attempt(self, tmp_path: Path) -> None:
        program = tmp_path / "PreFormServer"
        program.write_text("not a program\n", encoding="utf-8")
        program.chmod(program.stat().st_mode | stat.S_IXUSR)
        settings = _settings(executable=str(program))
        with capture_logs() as logs, ServerPool(settings.pool, handle_signals=False,
                                                 state_dir=tmp_path / "state") as pool:
            (status,) = pool.status()
        assert status.state is ServerState.RETIRED
        assert len(_events(logs, "server_starting")) == 1
        (retired,) = _events(logs, "server_retired")
        assert retired["refused"] is True
        assert retired["reason"] == (
            f"server-1: cannot run {str(program)!r}: Exec format error (check "
            "servers.executable and servers.command_prefix (PREFORM_PIPELINE_SERVER_EXECUTABLE))")


class TestRunBesideARehearsal:
    """``run`` on the default fleet folder while a rehearsal with a declared fleet holds it:
    one attempt, the refusal said once on stderr, exit 1, the rehearsal's printers kept."""

    def test_said_once_and_exit_1(self, tmp_path: Path) -> None:
        fleet = default_fleet_dir()
        out = tmp_path / "out"
        with start_simulator("--fleet-printers", BENCH, fleet_dir=fleet, timeout=WAIT_S) as sim:
            done = in_a_process(tmp_path, "run", str(RECIPE), str(MODEL), "--output", str(out))
            assert sim.process.poll() is None
            printers = json.loads((fleet / "printers.json").read_text(encoding="utf-8"))
        assert done.returncode == 1, done.stdout + done.stderr
        assert done.stdout.count(IN_USE) == 0, done.stdout
        assert done.stderr.count(IN_USE) == 1, done.stderr
        assert done.stderr.startswith(f"error: server server-1: refused to start: fleet "
                                      f"folder {fleet.resolve()} {IN_USE} (pid "
                                      f"{sim.process.pid} on ")
        assert "servers started: server-1 (refused, said on stderr)" in done.stdout.splitlines()
        assert REFUSED_SAID in done.stdout
        assert done.stdout.splitlines()[-1] == "exit 1: 1 build failed, 0 of 1 build succeeded"
        (log_file,) = (out / "logs").glob("*.jsonl")
        events = [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines()]
        assert len(_events(events, "server_starting")) == 1
        assert [e["refused"] for e in _events(events, "server_retired")] == [True]
        assert [p["serial"] for p in printers["printers"]] == ["Bench-A"]
        assert os.environ["XDG_DATA_HOME"] in str(fleet)  # the test's own data folder


class TestWatchBesideARehearsal:
    """``watch`` whose pool's simulator is refused for its fleet folder: one attempt, said
    once (the event), the file to failed/ naming the refusal, no restart loop."""

    def test_said_once_and_the_file_kept_in_failed(self, tmp_path: Path) -> None:
        fleet = tmp_path / "fleet"
        settings = write_hotfolder_settings(tmp_path, write_recipe(tmp_path), fleet_dir=fleet)
        (tmp_path / "inbox").mkdir()
        (tmp_path / "inbox" / "a.stl").write_bytes(tetra_stl_bytes(1))
        with start_simulator("--fleet-printers", BENCH, fleet_dir=fleet, timeout=WAIT_S):
            done = in_a_process(tmp_path, "watch", str(settings), "--once",
                                "--log-level", "INFO")
        said = done.stdout + done.stderr
        assert said.count(IN_USE) == 1, said
        assert said.count("server_starting") == 1 and "server_restart_scheduled" not in said
        # Said as run says it (the server_retired event is the log's): once, on stderr.
        assert "server_retired" not in said
        (retired,) = [line for line in done.stderr.splitlines() if IN_USE in line]
        assert retired.startswith("error: server server-1: ") and "let that one end first" \
            in retired
        failed = tmp_path / "inbox" / "failed"
        assert (failed / "a.stl").read_bytes() == tetra_stl_bytes(1)
        assert REFUSED_SAID in (failed / "a.stl.error.txt").read_text(encoding="utf-8")


def _wait_for(path: Path, watch: subprocess.Popen[str]) -> None:
    """Wait (bounded) until ``path`` exists; at once if ``watch`` ended first."""
    wait_for(lambda: path.exists() or watch.poll() is not None, WAIT_S, what=str(path))
    assert path.exists(), f"watch ended ({watch.returncode}) before {path.name}"


class TestWatchTriesAgainForTheNextFile:
    """A long-running ``watch`` does not keep a pool whose every server refused: once the
    rehearsal has ended, the next file is prepared without restarting the daemon (one new
    attempt per batch, never a loop on its own)."""

    def test_the_next_file_after_the_rehearsal_ended_is_done(self, tmp_path: Path) -> None:
        fleet = tmp_path / "fleet"
        settings = write_hotfolder_settings(tmp_path, write_recipe(tmp_path), fleet_dir=fleet)
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        err = tmp_path / "watch.err"
        with start_simulator("--fleet-printers", BENCH, fleet_dir=fleet, timeout=WAIT_S), \
                err.open("w", encoding="utf-8") as err_file:
            watch = subprocess.Popen(
                [sys.executable, "-m", "preform_pipeline", "watch", str(settings),
                 "--log-level", "INFO"], cwd=tmp_path, env=user_environment(),
                stdout=subprocess.DEVNULL, stderr=err_file, text=True)
            try:
                (inbox / "a.stl").write_bytes(tetra_stl_bytes(1))
                _wait_for(inbox / "failed" / "a.stl", watch)
            except BaseException:
                watch.kill()
                watch.wait(WAIT_S)
                raise
        try:
            (inbox / "b.stl").write_bytes(tetra_stl_bytes(2))
            _wait_for(inbox / "done" / "b.stl", watch)
        finally:
            watch.send_signal(signal.SIGTERM)
            watch.wait(WAIT_S)
        said = err.read_text(encoding="utf-8")
        assert said.count(IN_USE) == 1, said
        assert said.count("] pool_refused_renewing ") == 1
        assert said.count("] server_starting ") == 2  # the refused one, the new pool's


def _left_form(path: Path) -> Path:
    """The simulator's own .form of one small part (as an earlier life of the daemon saved a
    build that then waited for a printer)."""
    scene = SimScene(id="left", settings=SimSceneSettings("FORM-4-0", "FLGPGR05", 0.1))
    mesh = read_mesh_bytes(tetra_stl_bytes(1), ".stl", name="left")
    scene.models["m1"] = SimModel(model_id="m1", name="left", mesh=mesh,
                                  original_file="left.stl", position=(0.0, 0.0, 0.0))
    save_form(scene, path)
    return path


class TestWatchSendsWhatWaitedOnceThePoolIsRenewed:
    """A print left waiting while the daemon's pool was refused goes out through the renewed
    pool, without a new file and without restarting the daemon; the refused pool is closed
    as soon as nothing uses it (in-process daemon, real simulators)."""

    def test_the_waiting_build_is_sent_and_the_refused_pool_closed(self, tmp_path: Path) -> None:
        fleet = tmp_path / "fleet"
        path = write_hotfolder_settings(tmp_path, write_recipe(tmp_path), fleet_dir=fleet,
                                        hotfolders={"rescan_interval_s": 0.5})
        data = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps({**data, "dispatch": {"poll_interval_s": 0.2}}),
                        encoding="utf-8")
        settings = load_settings(path, env={})
        form = _left_form(tmp_path / "left.form")
        store = SqliteJobStore(settings.store.path)
        build = waiting_build(store, "left", form)
        pools: list[ServerPool] = []

        def factory() -> ServerPool:
            pools.append(pool_factory(settings.pool)())
            return pools[-1]

        daemon = HotFolderDaemon(settings, store, factory)
        sent = (JobState.PRINT_SENT, JobState.VERIFYING, JobState.FINISHED)
        with ExitStack() as rehearsal, capture_logs() as logs:
            rehearsal.enter_context(
                start_simulator("--fleet-printers", BENCH, fleet_dir=fleet, timeout=WAIT_S))
            with running_daemon(daemon, timeout=WAIT_S):
                wait_for(lambda: bool(_events(logs, "server_retired")), WAIT_S,
                         what="the dispatch loop's pool refused")
                rehearsal.close()  # the rehearsal ends; the daemon runs on
                wait_for(lambda: store.get_build(build.id).state in sent, WAIT_S,
                         what="the waiting build sent")
                closed = [e["servers"] for e in _events(logs, "pool_replaced_closed")]
        store.close()
        assert _events(logs, "server_retired")[0]["refused"] is True
        assert _events(logs, "pool_refused_renewing")
        # Every pool but the one that sent is closed before the daemon stops.
        assert len(closed) == len(pools) - 1 and closed[0] == ["server-1"], (closed, pools)


#: A server program whose first start is the simulator's, and every later one refused.
REFUSED_LATER = '''
import os, runpy, sys
mark = os.path.join(os.path.dirname(os.path.abspath(__file__)), "started-once")
if os.path.exists(mark):
    print("error: refused to start: told to refuse after its first start", flush=True)
    sys.exit(3)
open(mark, "w").close()
sys.argv[0] = "preform_pipeline.simulator"
runpy.run_module("preform_pipeline.simulator", run_name="__main__", alter_sys=True)
'''


class TestRunRefusedAtARecycle:
    """``run`` whose server is refused when it is recycled, after its first build: not said
    by the command's refusal lines (those are the start's), so its event says it on the
    console, once."""

    def test_the_refusal_reaches_the_console(self, tmp_path: Path) -> None:
        program = tmp_path / "server" / "server.py"
        program.parent.mkdir()
        program.write_text(REFUSED_LATER, encoding="utf-8")
        recipe = tmp_path / "one-per-build.yaml"
        recipe.write_text(RECIPE.read_text(encoding="utf-8").replace(
            "max_models_per_build: null", "max_models_per_build: 1"), encoding="utf-8")
        models = [tmp_path / name for name in ("a.obj", "b.obj")]
        for model in models:
            model.write_bytes(MODEL.read_bytes())
            os.utime(model, (MODEL.stat().st_mtime, MODEL.stat().st_mtime))  # not being written
        settings = tmp_path / "settings.yaml"
        settings.write_text(json.dumps({"servers": {
            # A port the system picks: on 44388, taken by another test's server, the first
            # start fails by its port after the stand-in counted it, and the next is refused.
            "count": 1, "base_port": 0, "executable": str(program),
            "command_prefix": [sys.executable],
            "recycle_after_builds": 1, "restart_backoff_s": 0.05,
            "restart_backoff_max_s": 0.1}}), encoding="utf-8")
        done = in_a_process(tmp_path, "run", str(recipe), *map(str, models), "--settings",
                            str(settings), "--output", str(tmp_path / "out"))
        said = done.stdout + done.stderr
        assert done.returncode == 1, said
        assert "servers started: server-1 (pid " in done.stdout
        assert said.count("told to refuse after its first start") == 1, said
        assert REFUSED_SAID in done.stdout
        assert done.stdout.splitlines()[-1] == "exit 1: 1 build failed, 1 of 2 builds succeeded"

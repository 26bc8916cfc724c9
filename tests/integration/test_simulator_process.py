"""``python -m preform_pipeline.simulator`` as a real process: start-up, ports, stopping.

Signal tests send POSIX signals (SIGINT/SIGTERM); on Windows ``terminate`` cannot be caught,
so those two tests only hold on macOS and Linux, where CI runs them.
"""

from __future__ import annotations

import json
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from preform_pipeline.errors import PortInUseError, ServerProcessError
from preform_pipeline.servers.process import server_command, start_server_process
from preform_pipeline.settings import ServerSettings
from preform_pipeline.simulator.cli import EXIT_FAILURE, EXIT_OK, READY_LINE
from preform_pipeline.simulator.testing import launch_simulator, start_simulator

#: Bound for every wait on the simulator process.
WAIT_S = 30.0


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another socket listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


class TestStartUp:
    """It starts like PreFormServer: a few lines, then READY FOR INPUT, then it serves."""

    def test_prints_start_up_lines_then_ready_and_answers(self) -> None:
        with start_simulator(timeout=WAIT_S) as sim:
            lines = sim.stdout_lines
            assert lines[-1] == READY_LINE
            assert any("starting HTTP server" in line for line in lines[:-1])
            assert f"HTTP server listening on port {sim.port}" in lines
            assert sim.port and sim.port > 0
            with httpx.Client(base_url=sim.url, timeout=WAIT_S) as client:
                version = client.get("/")
                operations = client.get("/operations/")
            assert version.status_code == 200 and isinstance(version.json()["version"], str)
            assert operations.json() == {"count": 0, "operations": []}

    def test_binds_loopback_by_default(self) -> None:
        with start_simulator(timeout=WAIT_S) as sim:
            assert "Listening on 127.0.0.1..." in sim.stdout_lines

    def test_request_logs_go_to_stderr_not_stdout(self) -> None:
        with start_simulator(timeout=WAIT_S) as sim:
            httpx.get(sim.url + "/missing/", timeout=WAIT_S)
            before = len(sim.stdout_lines)
            sim.stop()
        assert len(sim.stdout_lines) == before
        logged = [line for line in sim.stderr_lines if "http_exchange" in line]
        assert logged and "/missing/" in logged[0] and "404" in logged[0]

    def test_log_file_gets_json_lines_and_stderr_only_warnings(self, tmp_path: Path) -> None:
        log_file = tmp_path / "sim.jsonl"
        with start_simulator("--log-file", str(log_file), timeout=WAIT_S) as sim:
            httpx.get(sim.url + "/", timeout=WAIT_S)
            sim.stop()
        events = [json.loads(line) for line in log_file.read_text().splitlines()]
        exchanges = [e for e in events if e["event"] == "http_exchange"]
        assert exchanges[0]["path"] == "/" and exchanges[0]["status"] == 200
        assert not any("http_exchange" in line for line in sim.stderr_lines)

    def test_slow_start_delays_ready(self) -> None:
        delay = 1.0
        sim = launch_simulator("--slow-start", str(delay))
        try:
            sim.wait_for_line("starting HTTP server", WAIT_S)
            started = time.monotonic()
            sim.wait_ready(WAIT_S)
            assert time.monotonic() - started >= delay * 0.95
            assert httpx.get(sim.url + "/", timeout=WAIT_S).status_code == 200
        finally:
            sim.stop()

    def test_an_engine_that_cannot_load_fails_start_up_loudly(self) -> None:
        sim = launch_simulator("--engine", "no_such_module_here:Engine")
        try:
            with pytest.raises(ServerProcessError) as caught:
                sim.wait_ready(WAIT_S)
            assert caught.value.exit_code == EXIT_FAILURE
            assert READY_LINE not in sim.stdout_lines
            assert "no_such_module_here" in "\n".join(sim.stderr_lines)
        finally:
            sim.stop()


class TestALogFileRotated:
    """A log file moved away while the simulator runs (logrotate's rename) is let go within
    about a second: its path is made again and takes the events from then on."""

    def test_the_moved_file_keeps_what_came_before_and_the_path_gets_what_follows(
        self, tmp_path: Path
    ) -> None:
        log_file = tmp_path / "sim.jsonl"
        rotated = tmp_path / "sim.jsonl.1"
        with start_simulator("--log-file", str(log_file), timeout=WAIT_S) as sim, \
                httpx.Client(base_url=sim.url, timeout=WAIT_S) as client:
            client.get("/", params={"n": "before"})
            log_file.rename(rotated)
            deadline = time.monotonic() + WAIT_S
            while not (log_file.exists() and "http_exchange" in log_file.read_text()):
                assert time.monotonic() < deadline, "the log's path was never written again"
                client.get("/", params={"n": "after"})
            sim.stop()

        def exchanges(path: Path) -> list[str]:
            return [e["path"] for line in path.read_text().splitlines()
                    if (e := json.loads(line))["event"] == "http_exchange"]

        assert exchanges(rotated)[0] == "/?n=before"
        assert set(exchanges(log_file)) == {"/?n=after"}


class TestPortInUse:
    """A taken port is reported like PreFormServer does, with a non-zero exit."""

    def test_prints_address_in_use_and_exits_non_zero(self, taken_port: int) -> None:
        sim = launch_simulator(port=taken_port)
        try:
            with pytest.raises(PortInUseError) as caught:
                sim.wait_ready(WAIT_S)
            assert caught.value.exit_code == EXIT_FAILURE
            assert any("address is already in use" in line for line in sim.stdout_lines)
            assert READY_LINE not in sim.stdout_lines
        finally:
            sim.stop()

    def test_start_simulator_raises_port_in_use(self, taken_port: int) -> None:
        with pytest.raises(PortInUseError), start_simulator(port=taken_port, timeout=WAIT_S):
            pass

    def test_the_pool_reads_the_simulators_words_for_a_taken_port(self, taken_port: int) -> None:
        # The pool's own start (not the simulator's test helper, which reads the words where
        # the simulator prints them): both read serverlines, so the two cannot drift apart.
        command = server_command(ServerSettings(), taken_port, extra=("--latency", "instant"))
        with pytest.raises(PortInUseError):
            start_server_process(command, name="s", port=taken_port, startup_timeout_s=WAIT_S)



@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals; Windows terminate is a kill")
class TestStopping:
    """SIGTERM and SIGINT stop it cleanly with status 0."""

    @pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
    def test_a_stop_signal_exits_zero(self, signum: int) -> None:
        with start_simulator(timeout=WAIT_S) as sim:
            sim.process.send_signal(signum)
            assert sim.wait_exit(WAIT_S) == EXIT_OK
        assert any("server_stopped" in line for line in sim.stderr_lines)

    def test_a_signal_during_slow_start_exits_zero(self) -> None:
        sim = launch_simulator("--slow-start", "60")
        try:
            sim.wait_for_line("starting HTTP server", WAIT_S)
            sim.process.send_signal(signal.SIGTERM)
            assert sim.wait_exit(WAIT_S) == EXIT_OK
        finally:
            sim.stop()


class TestAsAnExecutable:
    """Installed as ``preform-simulator``, it starts as a launcher starts PreFormServer."""

    def test_path_and_port_start_it_and_a_vendor_style_scene_is_created(self) -> None:
        # Formlabs' Python library starts "<path> --port N", reads stdout up to READY FOR
        # INPUT, and its examples send the layer thickness as the string "0.1".
        executable = Path(sys.executable).with_name("preform-simulator")
        assert executable.is_file(), "pip install -e . installs the preform-simulator script"
        process = subprocess.Popen(
            [str(executable), "--port", "0", "--latency", "instant"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(
            target=lambda: [lines.put(line.rstrip("\n")) for line in process.stdout or ()],
            daemon=True,
        )
        reader.start()
        try:
            seen: list[str] = []
            while READY_LINE not in seen:
                seen.append(lines.get(timeout=WAIT_S))
            port = next(int(m.group(1)) for line in seen
                        if (m := re.search(r"listening on port (\d+)", line)))
            scene = httpx.post(
                f"http://127.0.0.1:{port}/scene/",
                json={"machine_type": "FORM-4-0", "material_code": "FLRG1011",
                      "layer_thickness_mm": "0.1", "print_setting": "DEFAULT"},
                timeout=WAIT_S,
            )
            assert scene.status_code == 200, scene.text
            assert scene.json()["scene_settings"]["layer_thickness_mm"] == 0.1
        finally:
            process.terminate()
            process.wait(WAIT_S)


class TestAFleetFolderInUse:
    """A simulator started without a declared fleet on the folder of a live one with a
    declared fleet (a default run beside a rehearsal) exits before READY FOR INPUT, its
    refusal the last line, and the rehearsal's printers stay (real processes)."""

    def test_the_later_start_is_refused_and_the_printers_stay(self, tmp_path: Path) -> None:
        fleet = tmp_path / "fleet"
        bench = [{"serial": "Bench-A", "machine_type_id": "FORM-4-0", "product_name": "Form 4",
                  "ip_address": "192.0.2.71", "material_code": "FLGPGR05"}]
        with start_simulator("--fleet-printers", json.dumps(bench), fleet_dir=fleet,
                             timeout=WAIT_S) as rehearsal:
            later = subprocess.run(
                [sys.executable, "-m", "preform_pipeline.simulator", "--port", "0",
                 "--fleet-dir", str(fleet), "--work-dir", str(tmp_path / "later")],
                capture_output=True, text=True, timeout=WAIT_S, check=False)
            printers = json.loads((fleet / "printers.json").read_text(encoding="utf-8"))
            assert rehearsal.process.poll() is None
        assert later.returncode == EXIT_FAILURE
        lines = later.stdout.splitlines()
        assert READY_LINE not in lines
        assert lines[-1].startswith(
            f"error: refused to start: fleet folder {fleet.resolve()} is in use by a simulator "
            f"with another fleet (pid {rehearsal.process.pid} on ")
        assert lines[-1].endswith("--fleet-dir, or for a pool another XDG_DATA_HOME)")
        assert len(lines[-1]) < 500  # the pool shows a server's last 500 characters
        assert [p["serial"] for p in printers["printers"]] == ["Bench-A"]

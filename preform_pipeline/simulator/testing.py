"""Test helpers for the simulator, shipped in the package so every test suite can use them.

:func:`start_simulator` runs ``python -m preform_pipeline.simulator`` as a real subprocess and
yields a :class:`RunningSimulator` once it printed ``READY FOR INPUT``; leaving the block
stops it (SIGINT, then SIGTERM, then kill, each with a timeout) and removes the temporary
directories it was given. :func:`launch_simulator` starts one without waiting, for tests of
start-up itself (taken port, ``--slow-start``, ``--fail-start``)::

    with start_simulator("--latency", "realistic", "--time-scale", "0.01") as sim:
        httpx.get(sim.url + "/")

Output is read by background threads (so a chatty simulator never blocks on a full pipe) and
waited for with timeouts, never with sleeps. :class:`StandInEngine` is a geometry-free engine
for tests of the server and the pool (``--engine`` :data:`STAND_IN_ENGINE`).
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

from preform_pipeline.errors import (
    PortInUseError,
    ServerProcessError,
    ServerStartTimeoutError,
)
from preform_pipeline.simulator.cli import LISTENING_PATTERN, PORT_IN_USE_TEXT, READY_LINE
from preform_pipeline.simulator.protocol import ProgressCallback, SimError, WorkEstimate

__all__ = [
    "DEFAULT_START_TIMEOUT_S",
    "DEFAULT_STOP_TIMEOUT_S",
    "STAND_IN_API_VERSION",
    "STAND_IN_ENGINE",
    "RunningSimulator",
    "StandInEngine",
    "launch_module",
    "launch_simulator",
    "start_simulator",
]

#: Generous: a cold interpreter on a busy 2-core CI machine imports numpy and friends.
DEFAULT_START_TIMEOUT_S = 30.0
#: Per step of stopping (SIGINT, SIGTERM, kill).
DEFAULT_STOP_TIMEOUT_S = 5.0

STAND_IN_API_VERSION: Final = "0.9.12"
#: ``--engine`` value selecting :class:`StandInEngine`.
STAND_IN_ENGINE: Final = "preform_pipeline.simulator.testing:StandInEngine"

_EOF = None


class RunningSimulator:
    """A simulator subprocess and what it has printed so far."""

    def __init__(
        self,
        process: subprocess.Popen[str],
        command: Sequence[str],
        *,
        cleanup: Sequence[Path] = (),
    ) -> None:
        self.process = process
        self.command = tuple(command)
        self.port: int | None = None
        self.host = "127.0.0.1"
        self._cleanup = tuple(cleanup)
        self._lock = threading.Lock()
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._readers = [
            self._reader(process.stdout, self._stdout, self._lines, "stdout"),
            self._reader(process.stderr, self._stderr, None, "stderr"),
        ]

    def _reader(
        self,
        stream: IO[str] | None,
        sink: list[str],
        lines: queue.Queue[str | None] | None,
        name: str,
    ) -> threading.Thread:
        def pump() -> None:
            if stream is None:
                return
            try:
                for raw in stream:
                    line = raw.rstrip("\r\n")
                    with self._lock:
                        sink.append(line)
                    if lines is not None:
                        lines.put(line)
            except (OSError, ValueError):
                pass  # the pipe closed under us while stopping
            finally:
                if lines is not None:
                    lines.put(_EOF)

        thread = threading.Thread(target=pump, name=f"sim-{name}-{self.process.pid}", daemon=True)
        thread.start()
        return thread

    # -- what it said ------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the simulator has not reported its port yet; call wait_ready()")
        return f"http://{self.host}:{self.port}"

    @property
    def stdout_lines(self) -> list[str]:
        with self._lock:
            return list(self._stdout)

    @property
    def stderr_lines(self) -> list[str]:
        with self._lock:
            return list(self._stderr)

    def output_tail(self, lines: int = 20) -> str:
        """The last lines of stdout and stderr, for error messages."""
        return "\n".join([*self.stdout_lines[-lines:], *self.stderr_lines[-lines:]])

    # -- waiting -----------------------------------------------------------------------------

    def wait_for_line(self, wanted: str | Callable[[str], bool], timeout: float) -> str:
        """The next stdout line containing ``wanted`` (or satisfying it, if callable).

        Raises :class:`ServerStartTimeoutError` when ``timeout`` passes first and
        :class:`ServerProcessError` when stdout ends (the process exited) first.
        """
        matches = wanted if callable(wanted) else (lambda line: wanted in line)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ServerStartTimeoutError(
                    f"simulator printed no line matching {wanted!r} within {timeout:.1f} s",
                    command=self.command,
                    output_tail=self.output_tail(),
                )
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is _EOF:
                self._lines.put(_EOF)  # later waits see the end too
                raise ServerProcessError(
                    f"simulator ended its output before a line matching {wanted!r}",
                    command=self.command,
                    exit_code=self.wait_exit(DEFAULT_STOP_TIMEOUT_S),
                    output_tail=self.output_tail(),
                )
            found = LISTENING_PATTERN.search(line)
            if found:
                self.port = int(found.group(1))
            if PORT_IN_USE_TEXT in line.lower() and not matches(line):
                raise PortInUseError(
                    f"simulator could not bind its port: {line}",
                    command=self.command,
                    exit_code=self.wait_exit(DEFAULT_STOP_TIMEOUT_S),
                    output_tail=self.output_tail(),
                    hint="choose another --port, or --port 0 for a free one",
                )
            if matches(line):
                return line

    def wait_ready(self, timeout: float = DEFAULT_START_TIMEOUT_S) -> RunningSimulator:
        """Wait for ``READY FOR INPUT``; the port is known afterwards."""
        self.wait_for_line(lambda line: line.strip() == READY_LINE, timeout)
        return self

    def wait_exit(self, timeout: float) -> int | None:
        """The exit status, or ``None`` if the process still runs after ``timeout``."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    # -- stopping ----------------------------------------------------------------------------

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT_S) -> int:
        """Stop gently, then firmly: interrupt, terminate, kill; returns the exit status."""
        try:
            code = self.process.poll()
            if code is not None:
                return code
            for step in self._stop_steps():
                step()
                code = self.wait_exit(timeout)
                if code is not None:
                    return code
            return self.process.wait(timeout=timeout)
        finally:
            self._close()

    def _stop_steps(self) -> list[Callable[[], None]]:
        process = self.process
        if sys.platform == "win32":
            ctrl_break = getattr(signal, "CTRL_BREAK_EVENT", None)
            steps: list[Callable[[], None]] = []
            if ctrl_break is not None:
                steps.append(lambda: process.send_signal(ctrl_break))
            return [*steps, process.terminate, process.kill]
        return [
            lambda: process.send_signal(signal.SIGINT),
            process.terminate,
            process.kill,
        ]

    def terminate(self) -> None:
        """Send SIGTERM (TerminateProcess on Windows) and return at once."""
        self.process.terminate()

    def kill(self) -> None:
        """Kill at once (SIGKILL) and reap the process."""
        try:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(timeout=DEFAULT_STOP_TIMEOUT_S)
        finally:
            self._close()

    def _close(self) -> None:
        for reader in self._readers:
            reader.join(timeout=DEFAULT_STOP_TIMEOUT_S)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        for path in self._cleanup:
            shutil.rmtree(path, ignore_errors=True)

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def launch_simulator(
    *args: str,
    port: int = 0,
    python: str | None = None,
    fleet_dir: Path | None = None,
    work_dir: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> RunningSimulator:
    """Start ``python -m preform_pipeline.simulator ARGS`` without waiting for it.

    ``--port`` is added unless ``args`` name one. ``--fleet-dir`` and ``--work-dir`` default
    to fresh temporary directories (removed when the simulator is stopped), so simulators
    started by tests never share state with each other or with the user's own.
    """
    arguments = list(args)
    cleanup: list[Path] = []

    def named(flag: str) -> bool:
        return any(a == flag or a.startswith(flag + "=") for a in arguments)

    if not named("--port"):
        arguments += ["--port", str(port)]
    if not (named("--fleet-dir") and named("--work-dir")):
        base = Path(tempfile.mkdtemp(prefix="preform-sim-test-"))
        cleanup.append(base)
        if not named("--fleet-dir"):
            arguments += ["--fleet-dir", str(fleet_dir or base / "fleet")]
        if not named("--work-dir"):
            arguments += ["--work-dir", str(work_dir or base / "work")]
    return launch_module(
        "preform_pipeline.simulator", arguments, python=python, env=env, cwd=cwd, cleanup=cleanup
    )


def launch_module(
    module: str,
    arguments: Sequence[str],
    *,
    python: str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    cleanup: Sequence[Path] = (),
) -> RunningSimulator:
    """Start ``python -m MODULE ARGUMENTS`` with its output read by background threads.

    The package is put on the child's ``PYTHONPATH``; ``cleanup`` folders are removed when the
    process is stopped. Shared by every simulator that talks the start-up handshake (the
    Dashboard simulator's helpers use it too).
    """
    command = [python or sys.executable, "-m", module, *arguments]
    environment = {**os.environ, **(env or {})}
    environment.setdefault("PYTHONIOENCODING", "utf-8")
    # The package must be importable from the child even when it is not installed.
    package_root = str(Path(__file__).resolve().parents[2])
    existing = environment.get("PYTHONPATH")
    environment["PYTHONPATH"] = package_root + os.pathsep + existing if existing else package_root
    extra: dict[str, Any] = {}
    if sys.platform == "win32":
        # Its own process group, so CTRL_BREAK_EVENT reaches it and not the test runner.
        extra["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        env=environment,
        cwd=cwd,
        **extra,
    )
    return RunningSimulator(process, command, cleanup=cleanup)


@contextmanager
def start_simulator(
    *args: str,
    timeout: float = DEFAULT_START_TIMEOUT_S,
    **options: Any,
) -> Iterator[RunningSimulator]:
    """A simulator that printed READY FOR INPUT; stopped (and cleaned up) on leaving.

    ``options`` are those of :func:`launch_simulator`. If it cannot start, the process is
    reaped and :class:`ServerStartTimeoutError`, :class:`PortInUseError` or
    :class:`ServerProcessError` says why, with its last output.
    """
    simulator = launch_simulator(*args, **options)
    try:
        simulator.wait_ready(timeout)
        yield simulator
    finally:
        simulator.stop()


class StandInEngine:
    """A geometry-free engine: answers the version probe, ``{}`` to everything else.

    For tests of the HTTP server, the pool and fault handling that do not care what a scene
    contains. Same constructor as the real engine.
    """

    def __init__(
        self,
        *,
        scene_cache_size: int = 100,
        fleet_dir: Path | None = None,
        work_dir: Path | None = None,
    ) -> None:
        self.scene_cache_size = scene_cache_size
        self.fleet_dir = fleet_dir
        self.work_dir = work_dir

    def estimate_work(self, operation_id: str, params: dict[str, str], body: Any) -> WorkEstimate:
        return WorkEstimate()

    def call(
        self,
        operation_id: str,
        params: dict[str, str],
        body: Any,
        progress: ProgressCallback | None = None,
    ) -> Any:
        if operation_id == "get_api_version":
            return {"version": STAND_IN_API_VERSION}
        if not operation_id:
            raise SimError(404, "NOT_FOUND", "no operation id")
        if progress is not None:
            progress(1.0)
        return {}

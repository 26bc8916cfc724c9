"""One PreFormServer process: start it, know when it is ready, hear its last words, stop its tree.

Start-up: the command is ``[prefix...] executable --port N --scene-cache-size K [extra...]``
(the simulator: ``python -m preform_pipeline.simulator`` in place of prefix and executable).
Two reader threads copy stdout and stderr into a bounded tail and into ``server_output`` debug
events; stdout's ``READY FOR INPUT`` marks the server ready, and a line containing
``address is already in use`` means the port was taken, and one beginning with
``error: refused to start:`` (errors.REFUSAL_PREFIX) a refusal for good: the pool does not
start that server again (:class:`~preform_pipeline.errors.ServerRefusedError`).

Stopping steps through interrupt → terminate → kill, waiting ``timeout_s`` after each, for the
whole process tree (psutil, recursively: wine and helper processes included). POSIX servers
run in their own session, so the interrupt reaches the group and a terminal's Ctrl-C reaches
only the runner, which then stops its servers in order. Windows servers run in their own
process group and are interrupted with CTRL_BREAK_EVENT.

A server never outlives the process that started it: it is tied to it where the platform
allows (lifetime.py: Linux parent-death signal, Windows kill-on-close job), and the pool
records it so that the next runner reaps it everywhere else (records.py, reaper.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, Any, Final

import psutil

from preform_pipeline.errors import (
    REFUSAL_PREFIX,
    PortInUseError,
    ServerProcessError,
    ServerRefusedError,
    ServerStartTimeoutError,
)
from preform_pipeline.liveness import start_ticks_of
from preform_pipeline.logging import get_logger
from preform_pipeline.serverlines import PORT_IN_USE_TEXT, READY_LINE
from preform_pipeline.servers.lifetime import popen_tied
from preform_pipeline.servers.ports import LOOPBACK
from preform_pipeline.settings import ServerSettings
from preform_pipeline.settings.servers import DEFAULT_STOP_TIMEOUT_S

__all__ = [
    "DEFAULT_OUTPUT_TAIL_LINES",
    "PORT_IN_USE_TEXT",
    "READY_LINE",
    "SIMULATOR_MODULE",
    "ServerProcess",
    "process_tree_alive",
    "server_command",
    "start_server_process",
    "stop_all",
]

SIMULATOR_MODULE: Final = "preform_pipeline.simulator"
#: Lines of combined stdout/stderr kept for error messages and the retirement log event.
DEFAULT_OUTPUT_TAIL_LINES: Final = 40
#: Longer lines are cut: a tail is for reading, not for replaying a binary dump.
MAX_LINE_CHARS: Final = 2000
#: After a stop, how long to let the readers drain the pipes so the tail is complete; after
#: an exit during start-up, the least (the rest of the start's deadline is given).
DRAIN_TIMEOUT_S: Final = 1.0
# Exit of processes we did not start cannot be waited on portably, so stopping polls.
_POLL_INTERVAL_S: Final = 0.02
# While waiting for READY, wake this often to notice an exit that closed no pipe.
_READY_POLL_INTERVAL_S: Final = 0.05

_log = get_logger(__name__)


def server_command(
    settings: ServerSettings, port: int, *, extra: Sequence[str] = ()
) -> tuple[str, ...]:
    """The command line that starts one server on ``port``.

    Without an executable the simulator runs, started exactly like the real server (the
    command prefix, meant for wine, is not applied to it).
    """
    if settings.executable is None:
        head: tuple[str, ...] = (sys.executable, "-m", SIMULATOR_MODULE)
    else:
        head = (*settings.command_prefix, str(settings.executable))
    return (
        *head,
        "--port",
        str(port),
        "--scene-cache-size",
        str(settings.scene_cache_size),
        *settings.extra_args,
        *extra,
    )


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def process_tree_alive(pids: Iterable[int]) -> list[int]:
    """The pids among ``pids`` that still run (zombies count as gone); for checks and tests."""
    alive: list[int] = []
    for pid in pids:
        try:
            if _alive(psutil.Process(pid)):
                alive.append(pid)
        except psutil.NoSuchProcess:
            continue
    return alive


class ServerProcess:
    """A launched server process and its output; create with :meth:`launch`.

    Thread-safe: the pool's supervisor, lease holders and ``close()`` may call it at once.
    """

    def __init__(
        self,
        popen: subprocess.Popen[str],
        *,
        name: str,
        port: int,
        command: Sequence[str],
        tail_lines: int = DEFAULT_OUTPUT_TAIL_LINES,
        on_stopped: Callable[[ServerProcess], None] | None = None,
    ) -> None:
        self._popen = popen
        self._on_stopped = on_stopped
        self.name = name
        self.port = port
        self.command = tuple(command)
        self.pid = popen.pid
        self.url = f"http://{LOOPBACK}:{port}"
        self.started_at = time.monotonic()
        self._cond = threading.Condition()
        self._tail: deque[str] = deque(maxlen=tail_lines)
        self._ready = False
        self._port_in_use = False
        #: What the server said when it refused to start for good (REFUSAL_PREFIX), or None.
        self._refusal: str | None = None
        self._stop_lock = threading.Lock()
        self._stopped_how: str | None = None
        # Descendants seen so far: once the root dies, orphans can no longer be found by
        # walking from it, so every walk adds to this record.
        self._known: dict[int, psutil.Process] = {}
        self._tree_lock = threading.Lock()
        try:
            self._root: psutil.Process | None = psutil.Process(popen.pid)
            #: The start time that, with the PID, names this process in the pool's records.
            self.create_time: float | None = self._root.create_time()
            #: Its start in clock ticks after boot, which setting the clock does not move.
            self.start_ticks: int | None = start_ticks_of(popen.pid)
        except psutil.NoSuchProcess:
            self._root = None
            self.create_time = None
            self.start_ticks = None
        self._readers = [
            threading.Thread(
                target=self._read, args=(stream, label), name=f"{name}-{label}", daemon=True
            )
            for stream, label in ((popen.stdout, "stdout"), (popen.stderr, "stderr"))
            if stream is not None
        ]
        for reader in self._readers:
            reader.start()

    # --- starting -----------------------------------------------------------------------

    @classmethod
    def launch(
        cls,
        command: Sequence[str],
        *,
        name: str,
        port: int,
        env: Mapping[str, str] | None = None,
        tail_lines: int = DEFAULT_OUTPUT_TAIL_LINES,
        die_with_parent: bool = True,
        on_stopped: Callable[[ServerProcess], None] | None = None,
    ) -> ServerProcess:
        """Start ``command`` without waiting for readiness; see :meth:`wait_ready`.

        The process dies with this one where the platform allows (``die_with_parent=False``
        is a seam for tests of the reaper); ``on_stopped`` runs once :meth:`stop` is done.
        Raises :class:`ServerProcessError` when the program cannot be run at all.
        """
        child_env = dict(os.environ if env is None else env)
        # A Python server (the simulator) must not sit on READY FOR INPUT in a pipe buffer.
        child_env.setdefault("PYTHONUNBUFFERED", "1")
        options: dict[str, Any] = {}
        if sys.platform == "win32":
            options["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            options["start_new_session"] = True
        _log.info("server_starting", server=name, port=port, command=list(command))
        try:
            popen = popen_tied(
                list(command),
                die_with_parent=die_with_parent,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
                env=child_env,
                **options,
            )
        except OSError as exc:
            # Not there, not executable, not a program: the next attempt fares no better.
            raise ServerRefusedError(
                f"{name}: cannot run {command[0]!r}: {exc.strerror or exc}",
                command=command,
                hint="check servers.executable and servers.command_prefix "
                "(PREFORM_PIPELINE_SERVER_EXECUTABLE)",
            ) from exc
        return cls(
            popen, name=name, port=port, command=command, tail_lines=tail_lines,
            on_stopped=on_stopped,
        )

    def _read(self, stream: IO[str], label: str) -> None:
        try:
            for raw in stream:
                line = raw.rstrip("\r\n")[:MAX_LINE_CHARS]
                _log.debug("server_output", server=self.name, stream=label, line=line)
                with self._cond:
                    self._tail.append(line)
                    if label == "stdout" and READY_LINE in line:
                        self._ready = True
                    if PORT_IN_USE_TEXT in line.lower():
                        self._port_in_use = True
                    if label == "stdout" and line.startswith(REFUSAL_PREFIX):
                        self._refusal = line[len(REFUSAL_PREFIX):]
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass  # the pipe was closed under us while stopping
        finally:
            with contextlib.suppress(OSError):
                stream.close()
            with self._cond:
                self._cond.notify_all()

    def wait_ready(self, timeout_s: float) -> float:
        """Block until READY FOR INPUT; returns the seconds start-up took.

        Raises PortInUseError, ServerProcessError (exited first; exit code and last output)
        or ServerStartTimeoutError (with the output so far). Does not stop the process.
        """
        deadline = self.started_at + timeout_s
        with self._cond:
            while True:
                if self._ready:
                    self._remember_tree()
                    return time.monotonic() - self.started_at
                if self._port_in_use:
                    raise self._port_error()
                if self._popen.poll() is not None:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ServerStartTimeoutError(
                        f"{self.name}: no {READY_LINE!r} within {timeout_s:g} s on port "
                        f"{self.port}",
                        command=self.command,
                        output_tail=self._tail_text(),
                        hint="raise servers.startup_timeout_s, or run the command by hand: "
                        + " ".join(self.command),
                    )
                self._cond.wait(min(remaining, _READY_POLL_INTERVAL_S))
        # Its last words decide what the exit was (a refusal for good is not retried), and
        # the readers may not have run yet on a loaded machine: they end at the pipes' end,
        # at once unless a descendant still holds them, so they get what is left of the
        # start's own deadline (at least DRAIN_TIMEOUT_S), not a second.
        self._drain(max(DRAIN_TIMEOUT_S, deadline - time.monotonic()))
        if self.port_in_use:
            raise self._port_error()
        with self._cond:
            refusal = self._refusal
        if refusal is not None:
            # Its own words say what, where and what helps: the rest of the output would
            # only repeat them (its log event, the banner).
            raise ServerRefusedError(f"{self.name} refused to start: {refusal}",
                                     command=self.command)
        raise ServerProcessError(
            f"{self.name} exited during start-up",
            command=self.command,
            exit_code=self._popen.returncode,
            output_tail=self.output_tail(),
            hint="run the command by hand to see why: " + " ".join(self.command),
        )

    def _port_error(self) -> PortInUseError:
        return PortInUseError(
            f"{self.name}: port {self.port} is already in use",
            command=self.command,
            output_tail=self._tail_text(),
        )

    def _drain(self, timeout_s: float = DRAIN_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        for reader in self._readers:
            reader.join(max(0.0, deadline - time.monotonic()))

    # --- state --------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        with self._cond:
            return self._ready

    @property
    def port_in_use(self) -> bool:
        with self._cond:
            return self._port_in_use

    @property
    def exit_code(self) -> int | None:
        """The exit status once the process has ended, else None."""
        return self._popen.poll()

    def is_running(self) -> bool:
        return self._popen.poll() is None

    def wait_exited(self) -> int:
        """Block until the process has ended (for any reason); its exit status."""
        return self._popen.wait()

    def _tail_text(self) -> str:
        return "\n".join(self._tail)

    def output_tail(self) -> str:
        """The last lines of stdout and stderr, oldest first."""
        with self._cond:
            return self._tail_text()

    def _remember_tree(self) -> list[psutil.Process]:
        """Walk the tree from the root, remember every descendant; returns the live ones."""
        with self._tree_lock:
            if self._root is not None:
                for child in _children(self._root):
                    self._known.setdefault(child.pid, child)
            for pid, proc in list(self._known.items()):
                if not _alive(proc):
                    del self._known[pid]
                else:
                    for child in _children(proc):
                        self._known.setdefault(child.pid, child)
            return list(self._known.values())

    def _known_alive(self) -> list[psutil.Process]:
        with self._tree_lock:
            known = list(self._known.values())
        return [p for p in known if _alive(p)]

    def tree_pids(self) -> list[int]:
        """The pids of the process and its live descendants."""
        descendants = self._remember_tree()
        root = [self.pid] if self.is_running() else []
        return root + [p.pid for p in descendants]

    def rss_bytes(self) -> int:
        """Resident memory of the whole tree; 0 once it has ended."""
        procs = self._remember_tree()
        if self.is_running() and self._root is not None:
            procs = [self._root, *procs]
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return total

    # --- stopping -----------------------------------------------------------------------

    def stop(self, timeout_s: float = DEFAULT_STOP_TIMEOUT_S) -> str:
        """Stop the process and all its descendants; safe to call again and from any thread.

        Returns how it ended: ``"exited"`` (already gone), ``"interrupt"``, ``"terminate"``,
        ``"kill"``, or ``"survived"`` when even kill left something running (logged).
        """
        with self._stop_lock:
            if self._stopped_how is not None:
                return self._stopped_how
            descendants = self._remember_tree()
            how = "exited"
            if self.is_running() or descendants:
                how = "survived"
                for step in ("interrupt", "terminate", "kill"):
                    descendants = self._remember_tree()
                    self._signal(step, descendants)
                    if self._wait_gone(timeout_s):
                        how = step
                        break
            self._popen.poll()
            self._drain()
            self._stopped_how = how
            if self._on_stopped is not None:
                self._on_stopped(self)
        log = _log.warning if how == "survived" else _log.info
        log(
            "server_stopped",
            server=self.name,
            pid=self.pid,
            how=how,
            exit_code=self._popen.returncode,
            survivors=[p.pid for p in self._known_alive()],
        )
        return how

    def _signal(self, step: str, descendants: list[psutil.Process]) -> None:
        if sys.platform == "win32":
            if step == "interrupt":
                # Without a shared console (a service) this fails; terminate comes next.
                with contextlib.suppress(OSError):
                    self._popen.send_signal(signal.CTRL_BREAK_EVENT)
                return
            targets = ([self._root] if self._root is not None else []) + descendants
            for proc in targets:
                _send(proc, step)
            return
        number = {"interrupt": signal.SIGINT, "terminate": signal.SIGTERM}.get(
            step, signal.SIGKILL
        )
        # The server leads its own process group: one signal reaches every member, even
        # members we never saw. Descendants that left the group get theirs one by one.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, number)
        for proc in descendants:
            try:
                if os.getpgid(proc.pid) == self.pid:
                    continue
            except (ProcessLookupError, PermissionError):
                continue
            _send(proc, step)

    def _wait_gone(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while True:
            root_gone = self._popen.poll() is not None
            if root_gone and not self._known_alive():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_INTERVAL_S)


def _children(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def _send(proc: psutil.Process, step: str) -> None:
    try:
        if step == "interrupt":
            proc.send_signal(signal.SIGINT)
        elif step == "terminate":
            proc.terminate()
        else:
            proc.kill()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass


def start_server_process(
    command: Sequence[str],
    *,
    name: str,
    port: int,
    startup_timeout_s: float,
    stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S,
    on_launch: Callable[[ServerProcess], None] | None = None,
    on_stopped: Callable[[ServerProcess], None] | None = None,
    env: Mapping[str, str] | None = None,
    die_with_parent: bool = True,
) -> ServerProcess:
    """Launch ``command`` and wait for READY FOR INPUT; on any failure stop its tree, re-raise.

    ``on_launch`` sees the process before the wait (the pool records it so that ``close()``
    can stop a server that is still starting); if it raises, the process is stopped.
    """
    process = ServerProcess.launch(
        command, name=name, port=port, env=env, die_with_parent=die_with_parent,
        on_stopped=on_stopped,
    )
    try:
        if on_launch is not None:
            on_launch(process)
        startup_s = process.wait_ready(startup_timeout_s)
    except BaseException as exc:
        process.stop(stop_timeout_s)
        # A refusal for good is said once, by whoever decides not to try again (the pool).
        if isinstance(exc, ServerProcessError) and not isinstance(exc, ServerRefusedError):
            _log.warning(
                "server_start_failed",
                server=name,
                port=port,
                error=exc.message,
                exit_code=exc.exit_code,
                output_tail=exc.output_tail,
            )
        raise
    _log.info("server_ready", server=name, port=port, pid=process.pid,
              startup_s=round(startup_s, 3))
    return process


def stop_all(processes: Iterable[ServerProcess], timeout_s: float = DEFAULT_STOP_TIMEOUT_S) -> None:
    """Stop several process trees in parallel and wait for all of them."""
    threads = [
        threading.Thread(target=p.stop, args=(timeout_s,), name=f"stop-{p.name}", daemon=True)
        for p in processes
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        # join in slices: a bare join() cannot be interrupted by Ctrl-C on Windows.
        while thread.is_alive():
            thread.join(0.2)

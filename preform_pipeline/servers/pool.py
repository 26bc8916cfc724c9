"""The server pool: local servers (or the simulator) and remote endpoints, leased per build.

Lifecycle of one server (a "slot"; its process changes across restarts, its name does not)::

    STARTING ──ready──► IDLE ──lease()──► LEASED ──release()──► IDLE
        │                │ ▲                         │ healthy=False / report_failure()
        │ failed         │ └──── healthy ◄── CHECKING ◄┘   (health check decides)
        ▼                ▼ died / unhealthy       │ unhealthy
    RESTARTING ◄─────────┴────────────────────────┘
        │ backoff elapsed: start again (STARTING)
        │ more than max_restarts failures within crash_window_s
        ▼
    RETIRED  (logged as ``server_retired`` with the reason; never leased again)

A start the server refuses for good (ServerRefusedError: it said so, or its program cannot be
run) goes from STARTING to RETIRED at once: retrying would only say the same thing again. So
does a server whose first health check is answered, but as no server this client can use
(no ``GET /``, a 200 that is no Local API version, a version outside the range, a proxy
asking for https://: health.py): a local one is asked as soon as it is ready, a remote at
its first check; it is not down, so restarting it or waiting ``remote_wait_s`` for it
would only delay the same answer. A remote's later checks refuse only a version outside
the range (the server's own answer, ``HealthResult.from_server``: one upgraded or replaced
mid-run is retired with the same words as at its first check); any other such answer from
a remote that answered as a PreFormServer before, or was down, may be its proxy's while the
server restarts, and is waited for like any failed check.

    LEASED ──release() after K builds or above the RSS limit──► RECYCLING ──► IDLE

A lease gives one caller a server exclusively for the life of one build's scene, so operations
on a scene never overlap. Remote servers join the pool as slots that are health-checked but
never started, restarted, recycled or stopped.

Threads: ``start()`` starts every server in parallel; a supervisor thread schedules restarts
and health checks of idle servers (it sleeps until a server changes state or its process
exits, and wakes on a short tick only while a restart is pending or idle servers are due
health checks); slow work (start, stop, health check) runs in short-lived
worker threads, never under the pool lock (every server process itself is started on the
one long-lived launcher thread, see lifetime.py). ``close()`` stops every process tree
(interrupt → terminate → kill), is idempotent, and is registered with ``atexit`` so that no
server outlives the runner, also on Ctrl-C.

A runner killed without cleanup takes its servers with it where the operating system allows
(lifetime.py). Everywhere, the pool records each server it starts in its state folder
(records.py), and ``start()`` first reaps the servers that a dead runner left (reaper.py);
``reaped`` says what it stopped.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Final
from urllib.parse import urlsplit

from preform_pipeline.backoff import backoff
from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.cloud.login import load_dashboard_login
from preform_pipeline.errors import (
    ConfigError,
    LeaseTimeoutError,
    PipelineError,
    PoolExhaustedError,
    ServerProcessError,
    ServerRefusedError,
    ServerTimeoutError,
    TransientApiError,
)
from preform_pipeline.liveness import ProcessIdentity, this_host, this_instance
from preform_pipeline.logging import get_logger
from preform_pipeline.servers.health import check_health
from preform_pipeline.servers.login import log_in
from preform_pipeline.servers.pathmap import PathMapper
from preform_pipeline.servers.ports import PortAllocator, start_on_free_port
from preform_pipeline.servers.process import (
    ServerProcess,
    server_command,
    start_server_process,
    stop_all,
)
from preform_pipeline.servers.reaper import ReapedServer, reap_orphans
from preform_pipeline.servers.records import ServerRecord, ServerRecords, state_dir_of
from preform_pipeline.servers.simfleet import declared_fleet_argument
from preform_pipeline.settings import PoolMode, PoolSettings, RemoteServer, ServerSettings
from preform_pipeline.wording import counted

__all__ = [
    "SUPERVISOR_TICK_S",
    "TERMINATING_SIGNALS",
    "Lease",
    "PoolMode",
    "PoolServer",
    "ServerPool",
    "ServerState",
    "ServerStatus",
    "local_server_names",
    "refuse_unreached",
]

#: While a restart is pending or idle servers get health checks, the supervisor wakes this
#: often to see whether one is due (it reads time through the pool's clock, which tests move by
#: hand). Otherwise it sleeps until notified: every state change notifies, and so does each
#: server process's exit, so a dead idle server is still noticed at once.
SUPERVISOR_TICK_S: Final = 0.25
# Joins are sliced so that Ctrl-C (KeyboardInterrupt) is seen promptly on every platform.
_JOIN_SLICE_S: Final = 0.2
#: Signals whose default action kills the runner without running cleanup code; while a pool
#: runs they raise SystemExit instead, so ``with`` blocks and atexit stop the servers.
TERMINATING_SIGNALS: Final = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGBREAK") if hasattr(signal, name)
)

#: A refused server, local or remote, as a build failing for it names it: the refusal was
#: said whole once (its ``server_retired`` event; ``run`` says it on stderr).
_REFUSED_SAID: Final = "refused (why and what helps were said when it was)"

#: What helps with a remote that does not answer: the pool cannot restart it, a person can.
_REMOTE_DOWN_HINT: Final = ("check the remote machine, and that its PreFormServer runs and "
                            "answers at this url from here")

_log = get_logger(__name__)


class ServerState(str, Enum):
    STARTING = "starting"
    IDLE = "idle"
    LEASED = "leased"
    CHECKING = "checking"
    RESTARTING = "restarting"
    RECYCLING = "recycling"
    RETIRED = "retired"
    STOPPED = "stopped"


@dataclass(frozen=True)
class PoolServer:
    """The server a lease holds: where to send requests and how to translate paths.

    ``generation`` counts (re)starts of this slot, so a holder can tell a restarted server
    (whose scenes are gone) from the one it leased.
    """

    name: str
    url: str
    path_mapper: PathMapper
    simulated: bool
    remote: bool
    port: int | None
    pid: int | None
    generation: int


@dataclass(frozen=True)
class ServerStatus:
    """A snapshot of one slot, for progress displays and tests."""

    name: str
    state: ServerState
    url: str | None
    port: int | None
    pid: int | None
    remote: bool
    builds: int
    total_builds: int
    restarts: int
    generation: int
    retired_reason: str | None
    last_error: str | None
    #: Retired because it refused to start for good: starting it again in this pool would
    #: only be refused again (a new pool may try once more).
    refused: bool = False
    #: A remote's checks after it failed (it is asked again, never restarted: its
    #: ``restarts`` stay 0); 0 for a local server.
    rechecks: int = 0


class _Slot:
    """Mutable state of one server; guarded by the pool's lock."""

    def __init__(self, name: str, mapper: PathMapper, remote: RemoteServer | None) -> None:
        self.name = name
        self.mapper = mapper
        self.remote = remote
        self.state = ServerState.STARTING
        self.process: ServerProcess | None = None
        self.url: str | None = remote.url.rstrip("/") if remote is not None else None
        self.builds = 0
        self.total_builds = 0
        self.generation = 0
        self.restarts = 0
        self.rechecks = 0
        self.failures: deque[float] = deque()
        self.consecutive_failures = 0
        self.next_attempt_at: float | None = None
        self.last_health_at = 0.0
        self.idle_since = 0.0
        self.retired_reason: str | None = None
        #: Retired because it refused to start for good (its retired_reason says why).
        self.refused = False
        self.last_error: str | None = None
        #: A remote's outage: when its current run of failures began (None while up).
        self.down_since: float | None = None

    def status(self) -> ServerStatus:
        process = self.process
        return ServerStatus(
            name=self.name,
            state=self.state,
            url=self.url,
            port=process.port if process is not None else None,
            pid=process.pid if process is not None else None,
            remote=self.remote is not None,
            builds=self.builds,
            total_builds=self.total_builds,
            restarts=self.restarts,
            generation=self.generation,
            retired_reason=self.retired_reason,
            last_error=self.last_error,
            refused=self.refused,
            rechecks=self.rechecks,
        )


class Lease:
    """Exclusive use of one server until :meth:`release` (or the end of a ``with`` block).

    Leaving the ``with`` block releases the server: healthy after a normal exit or an error of
    the input; via :meth:`report_failure` after a TransientApiError or ServerProcessError (the
    server, not the input, failed). Releasing twice does nothing.
    """

    def __init__(self, pool: ServerPool, server: PoolServer) -> None:
        self._pool = pool
        self.server = server
        self._released = False
        self._lock = threading.Lock()

    @property
    def released(self) -> bool:
        return self._released

    def _claim(self) -> bool:
        with self._lock:
            if self._released:
                return False
            self._released = True
            return True

    def release(self, healthy: bool = True, builds: int = 1) -> None:
        """Give the server back; ``builds`` finished on it count towards recycling.

        ``healthy=False`` has the server health-checked (and restarted if it fails) before
        anyone else gets it.
        """
        if self._claim():
            self._pool._release(self, healthy=healthy, builds=builds, error=None)

    def report_failure(self, exc: BaseException | None = None) -> None:
        """The server failed this build (``exc`` says how): release it as unhealthy.

        The server is health-checked and restarted if the check fails; after a
        ServerTimeoutError (an operation hung) it is restarted without asking, since a hung
        operation may keep the server busy while ``GET /`` still answers.
        """
        if self._claim():
            self._pool._release(self, healthy=False, builds=0, error=exc)

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, (TransientApiError, ServerProcessError)):
            self.report_failure(exc)
        else:
            self.release(healthy=True)


def _remote_name(remote: RemoteServer, taken: set[str]) -> str:
    # Host and port (docs/settings.md), never a user and password written before them: the
    # name is in every event, line and report that names the server, none of them redacted.
    base = remote.name or urlsplit(remote.url).netloc.rpartition("@")[2] or remote.url
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def local_server_names(count: int) -> list[str]:
    """The names of a pool's ``count`` local servers, in start order: ``server-1``, ..."""
    return [f"server-{i + 1}" for i in range(count)]


def _servers_of(
    settings: PoolSettings, local_count: int
) -> list[tuple[PathMapper, RemoteServer | None]]:
    """Each server of a pool, named as the pool names it (its mapper carries the name): the
    ``local_count`` local ones, then the remotes."""
    cfg = settings.servers
    servers: list[tuple[PathMapper, RemoteServer | None]] = [
        (PathMapper(cfg.path_map, name), None) for name in local_server_names(local_count)
    ]
    taken = {mapper.server for mapper, _ in servers}
    for remote in settings.remotes:
        name = _remote_name(remote, taken)
        taken.add(name)
        servers.append((PathMapper(remote.path_map, name), remote))
    return servers


def refuse_unreached(settings: PoolSettings, folder: Path, *, what: str, hint: str) -> None:
    """Raise :class:`ConfigError` when a server's path map does not reach ``folder``, a
    folder the servers save into (a run's output folder). Checked before anything starts or
    is recorded: otherwise every build fails on its first save, naming a checkpoint file
    inside it that the user never chose, with advice to move that file."""
    for mapper, _ in _servers_of(settings, min(settings.local_count, 1)):
        if not mapper.reaches(folder):
            raise ConfigError(
                f"the {what} {folder} is not inside any folder mapped for {mapper.who} "
                f"({mapper.mapped_folders}): the server saves the .form files, screenshots "
                "and checkpoints there",
                hint=hint,
            )


class ServerPool:
    """Local PreFormServers (or the simulator) and remote endpoints, leased one build at a time.

    ``simulator_args`` are appended to the simulator's command line (only when the simulator
    runs): one sequence for every server, or a function of the server name (``server-1``...)
    for per-server fault injection. ``port_probe`` replaces the free-port probe (tests).
    ``count`` caps the local servers started below ``servers.count`` (a run with three builds
    starts three at most); remote endpoints are not counted.

    With ``handle_signals`` (the default), a pool started on the main thread turns SIGTERM,
    SIGHUP and SIGBREAK into ``SystemExit(128 + signal)`` while it runs (only where no handler
    was installed), so a runner stopped by a service manager still stops its servers.

    ``state_dir`` overrides ``servers.state_dir`` (where servers are recorded for reaping);
    ``die_with_parent=False`` starts servers untied to this process (a seam for reaper tests).
    ``env`` is where the Dashboard login (``dashboard_login``, docs/dispatch.md) is looked up
    (default: the process environment); with one, every server is logged in after each start
    and restart, so Fleet Control queue prints are accepted.
    """

    def __init__(
        self,
        settings: PoolSettings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        simulator_args: Sequence[str] | Callable[[str], Sequence[str]] = (),
        port_probe: Callable[[int], bool] | None = None,
        handle_signals: bool = True,
        state_dir: Path | None = None,
        die_with_parent: bool = True,
        count: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        # Read now, so a missing password file fails before any server starts.
        self._login = load_dashboard_login(
            settings.dashboard_login,
            os.environ if env is None else env,
            base_dir=settings.dashboard_login_base,
            written_in=settings.dashboard_login_source,
        )
        self._records = ServerRecords(
            state_dir if state_dir is not None else state_dir_of(settings.servers)
        )
        self._die_with_parent = die_with_parent
        #: The orphans of dead runners that ``start()`` stopped.
        self.reaped: tuple[ReapedServer, ...] = ()
        self._handle_signals = handle_signals
        self._signals_held = False
        self._server_settings: ServerSettings = settings.servers
        self._clock = clock
        self._simulator_args = simulator_args
        self._cond = threading.Condition()
        self._started = False
        self._closing = False
        self._processes: set[ServerProcess] = set()
        self._supervisor: threading.Thread | None = None
        cfg = settings.servers
        self._allocator = PortAllocator(cfg.base_port, cfg.port_attempts, probe=port_probe)
        local_count = settings.local_count
        if count is not None:
            # Right-sized: no more local servers than the run has builds for.
            local_count = min(local_count, max(1, count))
        self._slots: list[_Slot] = [
            _Slot(mapper.server, mapper, remote)
            for mapper, remote in _servers_of(settings, local_count)
        ]
        if not self._slots:
            raise ConfigError(
                "no servers: servers.count is 0 and no remote servers are configured",
                hint="set servers.count to 1 or more, or add remotes",
            )

    # --- public ----------------------------------------------------------------------------

    @property
    def mode(self) -> PoolMode:
        return self.settings.mode

    @property
    def simulated(self) -> bool:
        """True when the pool runs the built-in simulator: every run must say SIMULATED."""
        return self.settings.simulated

    def __enter__(self) -> ServerPool:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start every local server in parallel and check every remote; returns when each
        has either come up or failed its first attempt (failed ones restart with backoff).

        Raises ServerProcessError when the server program cannot be found at all.
        """
        with self._cond:
            if self._started:
                return
            if self._closing:
                raise PipelineError("the server pool is closed", hint="create a new ServerPool")
            self._started = True
        self._preflight()
        self.reaped = reap_orphans(self._records)
        atexit.register(self.close)
        self._install_signal_handlers()
        _log.info(
            "pool_starting",
            mode=self.mode.value,
            servers=[s.name for s in self._slots],
            simulated=self.simulated,
        )
        workers = [self._spawn(self._bring_up, slot, "start") for slot in self._slots]
        self._supervisor = threading.Thread(
            target=self._supervise, name="server-pool-supervisor", daemon=True
        )
        self._supervisor.start()
        for worker in workers:
            _join(worker)
        with self._cond:
            ready = [s.name for s in self._slots if s.state is ServerState.IDLE]
        _log.info("pool_started", mode=self.mode.value, ready=ready, total=len(self._slots))

    def lease(self, timeout: float | None = None) -> Lease:
        """Wait for an idle server and hold it exclusively.

        Raises LeaseTimeoutError after ``timeout`` seconds (None: wait as long as any server
        may still come back), PoolExhaustedError when every server is retired.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if not self._started:
                raise PipelineError(
                    "the server pool is not started",
                    hint="use `with ServerPool(settings) as pool:` or call pool.start()",
                )
            while True:
                if self._closing:
                    raise PipelineError("the server pool is closed")
                idle = [s for s in self._slots if s.state is ServerState.IDLE]
                if idle:
                    # The server idle longest goes first, spreading builds (and wear) evenly.
                    slot = min(idle, key=lambda s: s.idle_since)
                    slot.state = ServerState.LEASED
                    server = self._snapshot(slot)
                    _log.debug("server_leased", server=slot.name, url=slot.url)
                    return Lease(self, server)
                if all(s.state is ServerState.RETIRED for s in self._slots):
                    raise self._exhausted()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise LeaseTimeoutError(
                        f"no server became free within {timeout:g} s "
                        f"({self._describe_states()})",
                        hint="raise the lease timeout or servers.count",
                    )
                self._cond.wait(
                    SUPERVISOR_TICK_S if remaining is None else min(remaining, SUPERVISOR_TICK_S)
                )

    def status(self) -> tuple[ServerStatus, ...]:
        with self._cond:
            return tuple(slot.status() for slot in self._slots)

    def wait_for(
        self, predicate: Callable[[tuple[ServerStatus, ...]], bool], timeout: float
    ) -> tuple[ServerStatus, ...]:
        """Block until ``predicate(status())`` holds; raises TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                snapshot = tuple(slot.status() for slot in self._slots)
                if predicate(snapshot):
                    return snapshot
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"pool did not reach the expected state: {snapshot}")
                self._cond.wait(min(remaining, SUPERVISOR_TICK_S))

    def close(self) -> None:
        """Stop every server process tree; safe to call twice and from atexit."""
        with self._cond:
            first = not self._closing
            self._closing = True
            for slot in self._slots:
                if slot.state is not ServerState.RETIRED:
                    slot.state = ServerState.STOPPED
            processes = list(self._processes)
            self._cond.notify_all()
        stop_all(processes, self._server_settings.stop_timeout_s)
        with self._cond:
            self._processes.difference_update(processes)
            for process in processes:
                self._allocator.release(process.port)
        if self._supervisor is not None and self._supervisor is not threading.current_thread():
            _join(self._supervisor)
        atexit.unregister(self.close)
        self._restore_signal_handlers()
        if first:
            _log.info("pool_closed", stopped=[p.name for p in processes])

    # --- internals: signals ------------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        if not self._handle_signals or threading.current_thread() is not threading.main_thread():
            return
        with _SIGNALS.lock:
            _SIGNALS.pools += 1
            self._signals_held = True
            if _SIGNALS.pools > 1:
                return
            for number in TERMINATING_SIGNALS:
                if signal.getsignal(number) is signal.SIG_DFL:
                    _SIGNALS.previous[number] = signal.signal(number, _exit_on_signal)

    def _restore_signal_handlers(self) -> None:
        # Signal handlers can only be changed on the main thread; close() from atexit and from
        # a with block runs there.
        if not self._signals_held or threading.current_thread() is not threading.main_thread():
            return
        with _SIGNALS.lock:
            self._signals_held = False
            _SIGNALS.pools -= 1
            if _SIGNALS.pools > 0:
                return
            for number, previous in list(_SIGNALS.previous.items()):
                if signal.getsignal(number) is _exit_on_signal:
                    signal.signal(number, previous)
                del _SIGNALS.previous[number]

    # --- internals: starting -----------------------------------------------------------------

    def _preflight(self) -> None:
        if not any(slot.remote is None for slot in self._slots):
            return
        program = server_command(self._server_settings, 0)[0]
        if shutil.which(program) is None:
            raise ServerProcessError(
                f"cannot find the server program {program!r}",
                command=(program,),
                hint="set servers.executable (PREFORM_PIPELINE_SERVER_EXECUTABLE) to the "
                "PreFormServer executable, and servers.command_prefix if it runs under wine",
            )

    def _extra_args(self, name: str) -> Sequence[str]:
        if not self.simulated:
            return ()
        args = self._simulator_args
        chosen = args(name) if callable(args) else args
        # The embedded simulator rehearses recipes on the declared fleet (or its default one).
        return (*declared_fleet_argument(self.settings), *chosen)

    def _spawn(
        self, work: Callable[[_Slot, str], None], slot: _Slot, reason: str
    ) -> threading.Thread:
        thread = threading.Thread(
            target=self._run_worker,
            args=(work, slot, reason),
            name=f"{slot.name}-{reason}",
            daemon=True,
        )
        thread.start()
        return thread

    def _run_worker(self, work: Callable[[_Slot, str], None], slot: _Slot, reason: str) -> None:
        try:
            work(slot, reason)
        except Exception as exc:  # a bug must not leave a slot stuck in a busy state
            _log.exception("server_worker_failed", server=slot.name, work=reason)
            with self._cond:
                self._record_failure(slot, f"internal error: {exc!r}", "")

    def _register(self, process: ServerProcess) -> None:
        with self._cond:
            if self._closing:
                raise ServerProcessError(f"{process.name}: the pool is closing")
            self._processes.add(process)
        self._record(process)

    def _record(self, process: ServerProcess) -> None:
        """Write the server's record, so a later runner can reap it if we die uncleanly."""
        if process.create_time is None:
            return  # already gone: nothing to reap
        owner = ProcessIdentity.current()
        record = ServerRecord(
            server=ProcessIdentity(process.pid, process.create_time, owner.host,
                                   owner.instance,  # its child: our pids
                                   start_ticks=process.start_ticks),
            owner=owner,
            name=process.name,
            port=process.port,
            command=process.command,
            started_at=self._clock.now(),
        )
        try:
            self._records.add(record)
        except OSError as exc:  # the tie (lifetime.py) still holds where the OS offers one
            _log.warning("server_record_failed", server=process.name,
                         folder=str(self._records.folder), error=str(exc))

    def _forget(self, process: ServerProcess) -> None:
        """``on_stopped`` of every server: a stopped server needs no record."""
        try:
            self._records.discard(
                self._records.folder / ServerRecord.file_name_of(process.pid, this_host(),
                                                                   this_instance())
            )
        except OSError as exc:
            # As in _record: the folder is only a safety net. Raising here would abort the
            # stop (close() would skip the other servers, a recycle would count as a crash);
            # a record left behind is harmless, since the reaper checks the process's identity.
            _log.warning("server_record_not_removed", server=process.name,
                         folder=str(self._records.folder), error=str(exc))

    def _bring_up(self, slot: _Slot, reason: str) -> None:
        """Start (or for a remote: check) one slot; on failure record it."""
        if slot.remote is not None:
            self._check(slot, reason)
            return
        cfg = self._server_settings
        launched: list[ServerProcess] = []

        def register(process: ServerProcess) -> None:
            self._register(process)
            launched.append(process)

        def start(port: int) -> ServerProcess:
            return start_server_process(
                server_command(cfg, port, extra=self._extra_args(slot.name)),
                name=slot.name,
                port=port,
                startup_timeout_s=cfg.startup_timeout_s,
                stop_timeout_s=cfg.stop_timeout_s,
                on_launch=register,
                on_stopped=self._forget,
                die_with_parent=self._die_with_parent,
            )

        try:
            process = start_on_free_port(start, self._allocator, name=slot.name)
        except ServerProcessError as exc:
            with self._cond:
                # Failed attempts were stopped by start_server_process: forget them.
                self._processes.difference_update(launched)
                if isinstance(exc, ServerRefusedError):
                    self._retire_refused(slot, str(exc))  # with what helps
                elif not self._closing:
                    self._record_failure(slot, exc.message, exc.output_tail)
            return
        with self._cond:
            self._processes.difference_update(p for p in launched if p is not process)
        refusal = check_health(process.url, timeout_s=cfg.health_timeout_s).refusal
        if refusal is not None:
            # Our own program, answering as none this client can use (a Local API version
            # outside the range, mostly): every start of it would say the same.
            self._discard(process)
            with self._cond:
                self._retire_refused(
                    slot, f"it started, but cannot be used: {refusal}; the program is "
                    "servers.executable in the settings")
            return
        self._log_in(slot.name, process.url)
        with self._cond:
            if not self._closing:
                now = self._clock.monotonic()
                slot.process = process
                slot.url = process.url
                slot.builds = 0
                slot.generation += 1
                slot.state = ServerState.IDLE
                slot.last_health_at = now
                slot.idle_since = now
                self._cond.notify_all()
                threading.Thread(
                    target=self._watch_exit, args=(process,), name=f"{slot.name}-exit",
                    daemon=True,
                ).start()
                return
        self._discard(process)  # close() ran while we started

    def _watch_exit(self, process: ServerProcess) -> None:
        """Wake the supervisor when ``process`` ends, so that it need not poll for deaths
        (the thread blocks in the operating system's wait, costing no CPU meanwhile)."""
        process.wait_exited()
        with self._cond:
            self._cond.notify_all()

    def _log_in(self, name: str, url: str) -> None:
        if self._login is not None:
            log_in(name, url, self._login, timeout_s=self._server_settings.request_timeout_s)

    def _discard(self, process: ServerProcess | None) -> None:
        if process is None:
            return
        process.stop(self._server_settings.stop_timeout_s)
        with self._cond:
            self._processes.discard(process)
            self._allocator.release(process.port)

    # --- internals: health, failure, restart ------------------------------------------------

    def _check(self, slot: _Slot, reason: str) -> None:
        """Health-check a slot taken out of rotation; back to IDLE, or a recorded failure."""
        process = slot.process
        url = slot.url
        if slot.remote is None and (process is None or not process.is_running()):
            code = process.exit_code if process is not None else None
            tail = process.output_tail() if process is not None else ""
            _log.warning("server_exited", server=slot.name, exit_code=code, output_tail=tail)
            with self._cond:
                self._record_failure(slot, f"process exited (exit code {code})", tail)
            return
        assert url is not None
        result = check_health(url, timeout_s=self._server_settings.health_timeout_s)
        if result.healthy and slot.remote is not None and reason in ("start", "restart"):
            self._log_in(slot.name, url)  # a remote that was down forgot its login
        with self._cond:
            if self._closing:
                return
            if result.healthy:
                now = self._clock.monotonic()
                slot.last_health_at = now
                if slot.state is not ServerState.IDLE:
                    slot.idle_since = now
                if slot.remote is not None and reason in ("start", "restart"):
                    # A remote that was down may have restarted: its scenes are gone.
                    slot.generation += 1
                if slot.down_since is not None:
                    _log.warning("remote_server_back", server=slot.name, url=url,
                                 down_s=round(now - slot.down_since, 1))
                    slot.down_since = None
                slot.state = ServerState.IDLE
                self._cond.notify_all()
                return
        if slot.remote is not None and result.refusal is not None and (
                reason == "start" or result.from_server):
            # Later, only the server's own version: any other refusal from one that answered
            # as a PreFormServer here before, or was down, may be a proxy's page while the
            # server behind it restarts; waited for.
            with self._cond:
                self._retire_refused(
                    slot, "it answers, but cannot be used at this address: "
                    f"{result.refusal}; that address is this remote's url under remotes in "
                    "the settings",
                )
            return
        if slot.remote is None:
            # A remote's failed checks are said once per outage, by _record_failure: one
            # that stays down would otherwise say it again at every check.
            _log.warning("server_unhealthy", server=slot.name, url=url, reason=result.detail)
        with self._cond:
            self._record_failure(
                slot, f"health check failed: {result.detail}",
                process.output_tail() if process is not None else "",
            )

    def _record_failure(self, slot: _Slot, reason: str, output_tail: str) -> None:
        """Called with the lock held: retire the slot or schedule its restart with backoff."""
        if self._closing or slot.state is ServerState.RETIRED:
            return
        cfg = self._server_settings
        now = self._clock.monotonic()
        slot.last_error = reason
        slot.failures.append(now)
        while slot.failures and now - slot.failures[0] > cfg.crash_window_s:
            slot.failures.popleft()
        slot.consecutive_failures += 1
        old = slot.process
        slot.process = None
        outage_begins = slot.remote is not None and slot.down_since is None
        if outage_begins:
            slot.down_since = now
        if slot.remote is not None and cfg.remote_wait_s > 0:
            # A remote server restarting (an update, a crash) is waited for, by time rather
            # than by count: servers.remote_wait_s from the start of this outage (0: counted
            # like a local server's crashes).
            assert slot.down_since is not None
            down = now - slot.down_since
            give_up = down > cfg.remote_wait_s
            why = (f"unreachable for {down:.0f} s, longer than servers.remote_wait_s "
                   f"({cfg.remote_wait_s:g} s); last: {reason}")
        else:
            give_up = len(slot.failures) > cfg.max_restarts
            why = (f"{counted(len(slot.failures), 'failure')} within {cfg.crash_window_s:g} s; "
                   f"last: {reason}")
        if outage_begins and not give_up:
            # Not when it is retired at once (servers.max_restarts 0): server_retired says
            # it, and "asked again" would not be true.
            self._say_remote_down(slot, reason)
        if give_up:
            self._retire(slot, why, failures=len(slot.failures), window_s=cfg.crash_window_s,
                         last_error=reason, output_tail=output_tail)
        else:
            delay = backoff(
                slot.consecutive_failures - 1, cfg.restart_backoff_s, cfg.restart_backoff_max_s
            )
            slot.state = ServerState.RESTARTING
            slot.next_attempt_at = now + delay
            if slot.remote is not None and slot.down_since is not None:
                # Every check of an outage, for the log file: the console had it once.
                _log.info(
                    "remote_server_waiting",
                    server=slot.name,
                    url=slot.url,
                    reason=reason,
                    waited_s=round(now - slot.down_since, 1),
                    wait_limit_s=cfg.remote_wait_s,
                    next_check_s=round(delay, 1),
                    failures_in_window=len(slot.failures),
                )
            else:
                _log.warning(
                    "server_restart_scheduled",
                    server=slot.name,
                    reason=reason,
                    backoff_s=delay,
                    failures_in_window=len(slot.failures),
                )
        self._cond.notify_all()
        if old is not None:
            # Stopping takes up to three timeouts: never under the lock.
            threading.Thread(
                target=self._discard, args=(old,), name=f"{slot.name}-stop", daemon=True
            ).start()

    def _say_remote_down(self, slot: _Slot, reason: str) -> None:
        """Called with the lock held, once per outage of a remote: what was tried and what
        helps. The pool can only ask again (it cannot restart another machine's server), so
        nothing here names a restart; ``remote_server_back`` says the end of the outage."""
        wait = self._server_settings.remote_wait_s
        _log.warning(
            "remote_server_not_answering",
            server=slot.name,
            url=slot.url,
            reason=reason,
            waiting=(f"asked again with backoff for up to servers.remote_wait_s ({wait:g} s)"
                     if wait > 0 else
                     "asked again up to servers.max_restarts times (servers.remote_wait_s is 0)"),
            hint=_REMOTE_DOWN_HINT,
        )

    def _retire_refused(self, slot: _Slot, refusal: str) -> None:
        """Called with the lock held: the server refused to start for good, or a remote
        answered as none we can use (``refusal``: why, with what helps); retire it now, said
        once (no restart or wait, whatever max_restarts or remote_wait_s allow)."""
        if self._closing or slot.state is ServerState.RETIRED:
            return
        slot.refused = True
        slot.last_error = refusal
        self._retire(slot, slot.last_error, refused=True)
        self._cond.notify_all()

    def _retire(self, slot: _Slot, reason: str, **said: Any) -> None:
        """Called with the lock held: ``slot`` is never started or leased again; one
        ``server_retired`` event with ``reason`` and what ``said`` adds."""
        slot.state = ServerState.RETIRED
        slot.retired_reason = reason
        slot.next_attempt_at = None
        _log.warning(
            "server_retired",
            server=slot.name,
            reason=reason,
            **said,
            remaining=[s.name for s in self._slots if s.state is not ServerState.RETIRED],
        )

    def _restart(self, slot: _Slot, reason: str) -> None:
        if slot.remote is not None:
            # Another machine's server is only asked again (remote_server_waiting said so).
            with self._cond:
                slot.rechecks += 1
            self._bring_up(slot, reason)
            return
        with self._cond:
            slot.restarts += 1
        _log.info("server_restarting", server=slot.name, reason=reason, restarts=slot.restarts)
        self._bring_up(slot, reason)

    def _recycle(self, slot: _Slot, reason: str) -> None:
        old = slot.process
        self._discard(old)
        with self._cond:
            if self._closing:
                return
            slot.process = None
            slot.restarts += 1
        self._bring_up(slot, "recycle")

    def _supervise(self) -> None:
        cfg = self._server_settings
        with self._cond:
            while not self._closing:
                now = self._clock.monotonic()
                for slot in self._slots:
                    if slot.state is ServerState.RESTARTING and slot.next_attempt_at is not None:
                        if now >= slot.next_attempt_at:
                            slot.next_attempt_at = None
                            slot.state = (
                                ServerState.STARTING if slot.remote is None
                                else ServerState.CHECKING
                            )
                            self._spawn(self._restart, slot, "restart")
                    elif slot.state is ServerState.IDLE:
                        dead = slot.process is not None and not slot.process.is_running()
                        due = (
                            cfg.health_interval_s > 0
                            and now - slot.last_health_at >= cfg.health_interval_s
                        )
                        if dead or due:
                            slot.state = ServerState.CHECKING
                            self._spawn(self._check, slot, "health")
                self._cond.wait(self._supervisor_timeout())

    def _supervisor_timeout(self) -> float | None:
        """Called with the lock held: the supervisor's next sleep, None for "until notified".

        Only the restart backoff and the health interval are measured in time; a dead idle
        server is reported by its exit watcher, any other change by the notifying thread.
        """
        checks = self._server_settings.health_interval_s > 0
        for slot in self._slots:
            if slot.state is ServerState.RESTARTING and slot.next_attempt_at is not None:
                return SUPERVISOR_TICK_S
            if checks and slot.state is ServerState.IDLE:
                return SUPERVISOR_TICK_S
        return None

    # --- internals: leases ---------------------------------------------------------------

    def _snapshot(self, slot: _Slot) -> PoolServer:
        process = slot.process
        assert slot.url is not None
        return PoolServer(
            name=slot.name,
            url=slot.url,
            path_mapper=slot.mapper,
            simulated=self.simulated and slot.remote is None,
            remote=slot.remote is not None,
            port=process.port if process is not None else None,
            pid=process.pid if process is not None else None,
            generation=slot.generation,
        )

    def _slot(self, name: str) -> _Slot:
        return next(s for s in self._slots if s.name == name)

    def _release(
        self, lease: Lease, *, healthy: bool, builds: int, error: BaseException | None
    ) -> None:
        slot = self._slot(lease.server.name)
        process = slot.process
        cfg = self._server_settings
        recycle: str | None = None
        rss_mb = 0.0
        if healthy and process is not None:
            if cfg.recycle_after_builds and slot.builds + builds >= cfg.recycle_after_builds:
                recycle = "builds"
            elif cfg.recycle_rss_mb:
                rss_mb = process.rss_bytes() / (1024 * 1024)
                if rss_mb > cfg.recycle_rss_mb:
                    recycle = "rss"
        with self._cond:
            if (
                self._closing
                or slot.state is not ServerState.LEASED
                or slot.generation != lease.server.generation
            ):
                return
            slot.builds += builds
            slot.total_builds += builds
            if not healthy:
                _log.warning(
                    "server_failure_reported",
                    server=slot.name,
                    error=str(error) if error is not None else None,
                    error_type=type(error).__name__ if error is not None else None,
                )
                if isinstance(error, ServerTimeoutError):
                    self._record_failure(slot, f"operation hung: {error}", "")
                else:
                    slot.state = ServerState.CHECKING
                    self._spawn(self._check, slot, "reported")
                return
            slot.consecutive_failures = 0
            if recycle is not None:
                _log.info(
                    "server_recycled",
                    server=slot.name,
                    reason=recycle,
                    builds=slot.builds,
                    rss_mb=round(rss_mb, 1),
                    pid=process.pid if process is not None else None,
                )
                slot.state = ServerState.RECYCLING
                self._spawn(self._recycle, slot, recycle)
                return
            slot.state = ServerState.IDLE
            slot.idle_since = self._clock.monotonic()
            _log.debug("server_released", server=slot.name, builds=slot.builds)
            self._cond.notify_all()

    def _exhausted(self) -> PoolExhaustedError:
        # A refusal was said whole when the server was retired (the event; `run` says it on
        # stderr); every build failing for it names it, without repeating it.
        reasons = "; ".join(
            f"{s.name}: {_REFUSED_SAID}" if s.refused else f"{s.name}: {s.retired_reason}"
            for s in self._slots)
        refused = all(s.refused for s in self._slots)
        return PoolExhaustedError(
            f"every server of the pool is retired ({reasons})",
            hint="see the server_retired log events; fix the server or its settings"
            + ("" if refused else ", or raise servers.max_restarts"),
        )

    def _describe_states(self) -> str:
        counts: dict[str, int] = {}
        for slot in self._slots:
            counts[slot.state.value] = counts.get(slot.state.value, 0) + 1
        return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


class _SignalState:
    """Terminating-signal handlers shared by every pool of the process (counted)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pools = 0
        self.previous: dict[int, Any] = {}


_SIGNALS: Final = _SignalState()


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _join(thread: threading.Thread) -> None:
    while thread.is_alive():
        thread.join(_JOIN_SLICE_S)

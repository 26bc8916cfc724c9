"""The ``servers`` and ``remotes`` settings sections: local PreFormServer processes and
servers that run elsewhere, and what the pool made of them will hold.

```yaml
servers:
  executable: /opt/PreFormServer/PreFormServer.exe   # unset: the built-in simulator
  command_prefix: [wine]
  count: 2
  path_map: {/: 'Z:\\'}
remotes:
  - {url: "http://printhost:44388", path_map: {/mnt/share: 'Z:\\'}}
```

docs/settings.md explains every key. :class:`PoolSettings` is the slice the server pool
receives: both sections, with how many servers they make and whether they are simulated.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path, PurePath, PureWindowsPath
from types import MappingProxyType
from typing import Any, Final

from preform_pipeline.errors import ConfigError
from preform_pipeline.settings.reading import BaseDir, SourceOf, resolve_path
from preform_pipeline.userpath import expand_user
from preform_pipeline.yamlerrors import format_json_path

__all__ = [
    "DEFAULT_BASE_PORT",
    "DEFAULT_CRASH_WINDOW_S",
    "DEFAULT_HEALTH_INTERVAL_S",
    "DEFAULT_HEALTH_TIMEOUT_S",
    "DEFAULT_MAX_RESTARTS",
    "DEFAULT_PORT_ATTEMPTS",
    "DEFAULT_RECYCLE_AFTER_BUILDS",
    "DEFAULT_RECYCLE_RSS_MB",
    "DEFAULT_RESTART_BACKOFF_MAX_S",
    "DEFAULT_RESTART_BACKOFF_S",
    "DEFAULT_SCENE_CACHE_SIZE",
    "DEFAULT_SERVER_COUNT",
    "DEFAULT_REMOTE_WAIT_S",
    "DEFAULT_SERVER_REQUEST_TIMEOUT_S",
    "DEFAULT_STARTUP_TIMEOUT_S",
    "DEFAULT_STOP_TIMEOUT_S",
    "PathMapping",
    "PoolMode",
    "PoolSettings",
    "RemoteServer",
    "ServerSettings",
    "SimulatedPrinterSettings",
    "read_pool_settings",
]

#: Two servers keep a laptop responsive and already overlap one build's upload with another's
#: slicing; production machines raise it.
DEFAULT_SERVER_COUNT: Final = 2
#: The port PreFormServer's own examples use; the pool counts upward from it.
DEFAULT_BASE_PORT: Final = 44388
#: How many ports upward from the base port the pool tries before giving up.
DEFAULT_PORT_ATTEMPTS: Final = 20
#: PreFormServer's own default for ``--scene-cache-size``.
DEFAULT_SCENE_CACHE_SIZE: Final = 100
#: PreFormServer loads printer and material data at start; under wine that takes a while.
DEFAULT_STARTUP_TIMEOUT_S: Final = 120.0
#: Each stop step (interrupt, terminate, kill) waits this long before the next one.
DEFAULT_STOP_TIMEOUT_S: Final = 5.0
#: Restarting after this many builds bounds slow memory growth at a small cost; 0 never.
DEFAULT_RECYCLE_AFTER_BUILDS: Final = 100
#: No memory limit unless configured: a sensible one depends on the machine.
DEFAULT_RECYCLE_RSS_MB: Final = 0.0
DEFAULT_HEALTH_INTERVAL_S: Final = 15.0
#: ``GET /`` is instant on a live server; no answer within this is a hung server.
DEFAULT_HEALTH_TIMEOUT_S: Final = 5.0
#: Seconds one Local API request may take; an interrupted print is concluded "not printed" no
#: earlier than this after its send started (docs/printing.md).
DEFAULT_SERVER_REQUEST_TIMEOUT_S: Final = 610.0
#: A remote PreFormServer restarting (Windows update, a crash) is back within a few minutes.
DEFAULT_REMOTE_WAIT_S: Final = 300.0
#: A server may restart this often within the crash window; the next failure retires it.
DEFAULT_MAX_RESTARTS: Final = 3
DEFAULT_CRASH_WINDOW_S: Final = 300.0
#: First restart delay; doubled per consecutive failure up to the maximum.
DEFAULT_RESTART_BACKOFF_S: Final = 1.0
DEFAULT_RESTART_BACKOFF_MAX_S: Final = 30.0


@dataclass(frozen=True)
class PathMapping:
    """One local folder and the same folder as a server sees it (``/mnt/share`` → ``Z:\\``)."""

    local: PurePath
    remote: str


@dataclass(frozen=True)
class ServerSettings:
    """How local PreFormServer processes are started, watched, recycled and stopped.

    ``executable=None`` means the built-in simulator (unless remote servers are configured, then
    no local servers run). ``path_map`` empty means the server sees local paths as they are;
    under wine, map ``/`` to ``Z:\\``.
    """

    executable: Path | None = None
    command_prefix: tuple[str, ...] = ()
    extra_args: tuple[str, ...] = ()
    count: int = DEFAULT_SERVER_COUNT
    base_port: int = DEFAULT_BASE_PORT
    port_attempts: int = DEFAULT_PORT_ATTEMPTS
    scene_cache_size: int = DEFAULT_SCENE_CACHE_SIZE
    startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S
    stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S
    recycle_after_builds: int = DEFAULT_RECYCLE_AFTER_BUILDS
    recycle_rss_mb: float = DEFAULT_RECYCLE_RSS_MB
    health_interval_s: float = DEFAULT_HEALTH_INTERVAL_S
    health_timeout_s: float = DEFAULT_HEALTH_TIMEOUT_S
    request_timeout_s: float = DEFAULT_SERVER_REQUEST_TIMEOUT_S
    #: How long a remote server may stay down or restarting before it is given up (its builds
    #: then fail); 0 counts its failures like a local server's (max_restarts, crash_window_s).
    remote_wait_s: float = DEFAULT_REMOTE_WAIT_S
    max_restarts: int = DEFAULT_MAX_RESTARTS
    crash_window_s: float = DEFAULT_CRASH_WINDOW_S
    restart_backoff_s: float = DEFAULT_RESTART_BACKOFF_S
    restart_backoff_max_s: float = DEFAULT_RESTART_BACKOFF_MAX_S
    path_map: tuple[PathMapping, ...] = ()
    #: Where the pool records the servers it runs, so that a later run reaps what a killed one
    #: left (None: ``servers/`` in the user's data folder).
    state_dir: Path | None = None


@dataclass(frozen=True)
class RemoteServer:
    """A PreFormServer that runs elsewhere: leased and health-checked, never started or stopped.

    ``path_map`` translates local model and output paths into the server machine's paths.
    """

    url: str
    path_map: tuple[PathMapping, ...] = ()
    name: str | None = None


class PoolMode(str, Enum):
    """What the pool runs; the runner prints SIMULATED on every simulated run."""

    SIMULATED = "SIMULATED"
    LOCAL = "LOCAL"
    REMOTE = "REMOTE"
    MIXED = "LOCAL+REMOTE"


@dataclass(frozen=True)
class SimulatedPrinterSettings:
    """One printer of the declared simulated fleet (``simulator.fleet``)."""

    name: str
    machine_type: str
    material: str
    tank: str | None = None
    ip_address: str | None = None


@dataclass(frozen=True)
class PoolSettings:
    """The servers section and the remotes: the slice of the settings the server pool gets,
    with what it needs to start and log in its servers (the Dashboard login, the simulated
    fleet).

    The one place that says how many servers they make and what kind: without an executable
    and with remotes, no local server runs; without both, the built-in simulator does.
    """

    servers: ServerSettings = field(default_factory=ServerSettings)
    remotes: tuple[RemoteServer, ...] = ()
    #: ``dashboard_login`` as written (no secrets: those come from files or the environment,
    #: read by the pool when it starts), and the folder its relative paths are relative to.
    dashboard_login: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    dashboard_login_base: Path | None = None
    #: Where ``dashboard_login`` was written (the settings file), for its errors' positions.
    dashboard_login_source: str = "settings"
    #: ``simulator.fleet``; empty: the simulator's default fleet.
    simulated_fleet: tuple[SimulatedPrinterSettings, ...] = ()
    #: ``simulator.print_time_scale``: simulated printers are busy for a print's estimated
    #: time times this (0: free again at once).
    simulated_print_time_scale: float = 0.0

    @property
    def local_count(self) -> int:
        """How many local processes run (the simulator's, or PreFormServer's)."""
        runs_local = self.servers.executable is not None or not self.remotes
        return self.servers.count if runs_local else 0

    @property
    def size(self) -> int:
        """How many servers the pool holds: the local ones and the remotes."""
        return self.local_count + len(self.remotes)

    @property
    def mode(self) -> PoolMode:
        if self.servers.executable is None:
            return PoolMode.REMOTE if self.remotes else PoolMode.SIMULATED
        return PoolMode.MIXED if self.remotes else PoolMode.LOCAL

    @property
    def simulated(self) -> bool:
        """True when nothing real is configured: the pool runs the built-in simulator."""
        return self.mode is PoolMode.SIMULATED


def _executable(text: str, base: Path, source_of: SourceOf) -> Path:
    # A bare command name stays a name so the operating system looks it up on PATH.
    if os.sep not in text and (os.altsep is None or os.altsep not in text):
        return Path(text)
    return resolve_path(text, base, ["servers", "executable"], source_of)


def _is_absolute_server_path(text: str) -> bool:
    return text.startswith(("/", "\\\\")) or PureWindowsPath(text).drive != ""


def _path_map(
    raw: Mapping[str, str], key_path: list[str | int], source: str
) -> tuple[PathMapping, ...]:
    mappings: list[PathMapping] = []
    for local_text, remote in raw.items():
        where = format_json_path([*key_path, local_text])
        local = expand_user(local_text, source=source, key=where)
        if not local.is_absolute():
            raise ConfigError(
                f"{where}: local folder {local_text!r} is not an absolute path",
                source=source,
                hint="map absolute folders, e.g. /mnt/share: 'Z:\\'",
            )
        if not _is_absolute_server_path(remote):
            raise ConfigError(
                f"{where}: server folder {remote!r} is not absolute",
                source=source,
                hint="use a drive (Z:\\), a UNC share (\\\\host\\share) or a /path",
            )
        mappings.append(PathMapping(local=local, remote=remote))
    return tuple(mappings)


def _read_servers(raw: Mapping[str, Any], base_dir: BaseDir, source_of: SourceOf) -> ServerSettings:
    defaults = ServerSettings()
    executable = raw.get("executable")
    whole = ("count", "base_port", "port_attempts", "scene_cache_size", "recycle_after_builds",
             "max_restarts")
    real = ("startup_timeout_s", "stop_timeout_s", "recycle_rss_mb", "health_interval_s",
            "health_timeout_s", "crash_window_s", "restart_backoff_s", "restart_backoff_max_s",
            "request_timeout_s", "remote_wait_s")
    plain: dict[str, Any] = {key: int(raw[key]) for key in whole if key in raw}
    plain.update({key: float(raw[key]) for key in real if key in raw})
    settings = ServerSettings(
        executable=_executable(executable, base_dir(["servers", "executable"]), source_of)
        if executable
        else None,
        command_prefix=tuple(raw.get("command_prefix", defaults.command_prefix)),
        extra_args=tuple(raw.get("extra_args", defaults.extra_args)),
        path_map=_path_map(
            raw.get("path_map", {}), ["servers", "path_map"],
            source_of(["servers", "path_map"]),
        ),
        state_dir=resolve_path(raw["state_dir"], base_dir(["servers", "state_dir"]),
                               ["servers", "state_dir"], source_of)
        if raw.get("state_dir")
        else None,
        **plain,
    )
    if settings.restart_backoff_max_s < settings.restart_backoff_s:
        raise ConfigError(
            "$.servers.restart_backoff_max_s: is smaller than restart_backoff_s",
            source=source_of(["servers", "restart_backoff_max_s"]),
        )
    return settings


def _read_remote(index: int, raw: Mapping[str, Any], source_of: SourceOf) -> RemoteServer:
    key_path: list[str | int] = ["remotes", index, "path_map"]
    return RemoteServer(
        url=str(raw["url"]).rstrip("/"),
        path_map=_path_map(raw.get("path_map", {}), key_path, source_of(key_path)),
        name=raw.get("name"),
    )


def read_pool_settings(
    raw: Mapping[str, Any],
    base_dir: BaseDir,
    source_of: SourceOf,
) -> PoolSettings:
    """The ``servers``, ``remotes``, ``dashboard_login`` and ``simulator`` sections from the
    raw settings (valid against the schema); ConfigError when they make no server at all, or
    two remotes share a name."""
    simulator = raw.get("simulator", {})
    pool = PoolSettings(
        servers=_read_servers(raw.get("servers", {}), base_dir, source_of),
        remotes=tuple(
            _read_remote(i, item, source_of) for i, item in enumerate(raw.get("remotes", []))
        ),
        # Secrets stay unread here: the pool reads them (environment or files) when it starts.
        dashboard_login=MappingProxyType(dict(raw.get("dashboard_login", {}))),
        dashboard_login_base=base_dir(["dashboard_login"]),
        dashboard_login_source=source_of(["dashboard_login"]),
        simulated_fleet=tuple(
            SimulatedPrinterSettings(**p) for p in simulator.get("fleet", ())
        ),
        simulated_print_time_scale=float(simulator.get("print_time_scale", 0.0)),
    )
    if pool.simulated and pool.size == 0:  # a real executable fails later, in the pool
        raise ConfigError(
            "$.servers.count: is 0 and no remote servers are configured: nothing can run",
            source=source_of(["servers", "count"]),
            hint="set servers.count to 1 or more, or add remotes",
        )
    names = [r.name for r in pool.remotes if r.name]
    if len(names) != len(set(names)):
        raise ConfigError("$.remotes: two remote servers share a name",
                          source=source_of(["remotes"]))
    return pool

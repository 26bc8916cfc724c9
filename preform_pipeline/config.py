"""Settings: a YAML settings file, overridden by ``PREFORM_PIPELINE_*`` environment variables.

Values are frozen dataclasses with named ``DEFAULT_*`` constants, so code that builds settings
by hand (tests, the simulator demo) and code that loads them from a file see the same defaults.

Loading (:func:`load_settings`) goes: read the YAML file (``PREFORM_PIPELINE_SETTINGS`` names it
when no path is passed) → overlay environment variables onto the raw mapping → validate the
result against ``schemas/settings.schema.json`` → semantic checks (absolute path-map folders) →
dataclasses. Every problem is a :class:`~preform_pipeline.errors.ConfigError` naming its source
(the file, or the environment variable) and the key path (``$.servers.count``).

Adding a section later (cloud credentials, hot folders, ...):

1. describe it in the schema: one entry under ``properties`` and one under ``$defs``;
2. add a frozen dataclass with defaults and a field on :class:`Settings`;
3. add a ``_read_<section>`` function and call it from :func:`_build_settings`;
4. add its environment variables to :data:`ENVIRONMENT_VARIABLES` (docs/settings.md lists them,
   and a test checks that every variable there is documented).

Unknown top-level keys are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import difflib
import json
import os
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path, PurePath, PureWindowsPath
from typing import Any, Final

import jsonschema
import yaml

from preform_pipeline.errors import ConfigError, Problem, SettingsError
from preform_pipeline.hotfolder.settings import HotFolderSettings, read_hotfolder_settings
from preform_pipeline.verify.settings import (
    CloudSettings,
    VerifySettings,
    read_cloud_settings,
    read_verify_settings,
)
from preform_pipeline.yamlerrors import describe_yaml_error

__all__ = [
    "DEFAULT_BASE_PORT",
    "DEFAULT_CRASH_WINDOW_S",
    "DEFAULT_HEALTH_INTERVAL_S",
    "DEFAULT_HEALTH_TIMEOUT_S",
    "DEFAULT_SERVER_REQUEST_TIMEOUT_S",
    "DEFAULT_LOG_LEVEL",
    "DEFAULT_MAX_RESTARTS",
    "DEFAULT_OUTPUT_ROOT",
    "DEFAULT_PORT_ATTEMPTS",
    "DEFAULT_RECYCLE_AFTER_BUILDS",
    "DEFAULT_RECYCLE_RSS_MB",
    "DEFAULT_RESTART_BACKOFF_MAX_S",
    "DEFAULT_RESTART_BACKOFF_S",
    "DEFAULT_SCENE_CACHE_SIZE",
    "DEFAULT_SERVER_COUNT",
    "DEFAULT_STARTUP_TIMEOUT_S",
    "DEFAULT_STOP_TIMEOUT_S",
    "DEFAULT_STORE_FILENAME",
    "ENVIRONMENT_VARIABLES",
    "ENV_PREFIX",
    "MAX_SETTINGS_FILE_BYTES",
    "SETTINGS_ENV",
    "STORE_PATH_ENV",
    "EnvironmentVariable",
    "LoggingSettings",
    "PathMapping",
    "RemoteServer",
    "ServerSettings",
    "Settings",
    "StoreSettings",
    "default_store_path",
    "load_settings",
    "settings_schema",
]

ENV_PREFIX: Final = "PREFORM_PIPELINE_"
#: Environment variable naming the settings file when ``load_settings`` gets no path.
SETTINGS_ENV: Final = ENV_PREFIX + "SETTINGS"

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
#: A server may restart this often within the crash window; the next failure retires it.
DEFAULT_MAX_RESTARTS: Final = 3
DEFAULT_CRASH_WINDOW_S: Final = 300.0
#: First restart delay; doubled per consecutive failure up to the maximum.
DEFAULT_RESTART_BACKOFF_S: Final = 1.0
DEFAULT_RESTART_BACKOFF_MAX_S: Final = 30.0
DEFAULT_OUTPUT_ROOT: Final = Path("out")
DEFAULT_LOG_LEVEL: Final = "INFO"
#: The job store's file name inside the user's data folder (see :func:`default_store_path`).
DEFAULT_STORE_FILENAME: Final = "jobs.sqlite3"
#: Environment variable naming the job store file (``store.path``).
STORE_PATH_ENV: Final = ENV_PREFIX + "STORE_PATH"
_APP_DIR_NAME: Final = "preform-pipeline"

_SCHEMA_RESOURCE: Final = "settings.schema.json"
#: A settings file is a page of YAML; a larger one is the wrong file.
MAX_SETTINGS_FILE_BYTES: Final = 1024 * 1024


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


@dataclass(frozen=True)
class LoggingSettings:
    level: str = DEFAULT_LOG_LEVEL
    file: Path | None = None


def default_store_path(
    env: Mapping[str, str] = os.environ, platform: str = sys.platform
) -> Path:
    """Where the job store lives unless configured: the user's data folder.

    Windows ``%LOCALAPPDATA%\\preform-pipeline``, macOS ``~/Library/Application Support/
    preform-pipeline``, elsewhere ``$XDG_DATA_HOME/preform-pipeline`` (``~/.local/share``).
    A local folder on purpose: SQLite's locking is unreliable on network shares.
    """
    home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
    if platform.startswith("win"):
        base = Path(env["LOCALAPPDATA"]) if env.get("LOCALAPPDATA") else home / "AppData" / "Local"
    elif platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(env["XDG_DATA_HOME"]) if env.get("XDG_DATA_HOME") else home / ".local" / "share"
    return base / _APP_DIR_NAME / DEFAULT_STORE_FILENAME


@dataclass(frozen=True)
class StoreSettings:
    """The job store (hot folders, print verification, ``preform-pipeline jobs``)."""

    path: Path = field(default_factory=default_store_path)
    #: ``postgresql://user@host/db``: a PostgreSQL store shared by several nodes instead of
    #: the file (docs/multi-node.md). Never holds the password in practice: see store.pgurl.
    url: str | None = None

    @property
    def location(self) -> str | Path:
        """What ``store.open_store`` opens: the URL when set, else the file."""
        return self.url if self.url else self.path


@dataclass(frozen=True)
class Settings:
    """Everything a run is configured with; ``source`` is the settings file, if any."""

    servers: ServerSettings = field(default_factory=ServerSettings)
    remotes: tuple[RemoteServer, ...] = ()
    output_root: Path = DEFAULT_OUTPUT_ROOT
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    source: Path | None = None
    store: StoreSettings = field(default_factory=StoreSettings)
    hotfolders: HotFolderSettings = field(default_factory=HotFolderSettings)
    cloud: CloudSettings = field(default_factory=CloudSettings)
    verify: VerifySettings = field(default_factory=VerifySettings)

    @property
    def log_file(self) -> Path | None:
        return self.logging.file

    @property
    def simulated(self) -> bool:
        """True when nothing real is configured: the pool will run the simulator."""
        return self.servers.executable is None and not self.remotes


# --- environment variables -------------------------------------------------------------------


@dataclass(frozen=True)
class EnvironmentVariable:
    """One ``PREFORM_PIPELINE_*`` variable: the settings key it overrides and how it is read."""

    name: str
    key_path: tuple[str, ...]
    kind: str  # "int", "number", "string", "path", "words", "json", "level"
    description: str


def _server_var(key: str, kind: str, description: str) -> EnvironmentVariable:
    return EnvironmentVariable(
        ENV_PREFIX + "SERVER_" + key.upper(), ("servers", key), kind, description
    )


#: Every environment variable read by :func:`load_settings` (plus :data:`SETTINGS_ENV`).
ENVIRONMENT_VARIABLES: Final[tuple[EnvironmentVariable, ...]] = (
    _server_var("executable", "path", "PreFormServer executable (unset: the simulator)"),
    _server_var("command_prefix", "words", "words before the executable, e.g. `wine`"),
    _server_var("extra_args", "words", "words after --port/--scene-cache-size"),
    _server_var("count", "int", "number of local servers"),
    _server_var("base_port", "int", "first port tried (0: any free port)"),
    _server_var("port_attempts", "int", "ports tried upward from the base port"),
    _server_var("scene_cache_size", "int", "--scene-cache-size passed to each server"),
    _server_var("startup_timeout_s", "number", "seconds to wait for READY FOR INPUT"),
    _server_var("stop_timeout_s", "number", "seconds per stop step (interrupt/terminate/kill)"),
    _server_var("recycle_after_builds", "int", "restart after this many builds (0: never)"),
    _server_var("recycle_rss_mb", "number", "restart above this memory in MiB (0: never)"),
    _server_var("health_interval_s", "number", "seconds between health checks (0: never)"),
    _server_var("health_timeout_s", "number", "seconds a health check waits for an answer"),
    _server_var("request_timeout_s", "number", "seconds one Local API request may take"),
    _server_var("max_restarts", "int", "restarts allowed within the crash window"),
    _server_var("crash_window_s", "number", "crash-loop window in seconds"),
    _server_var("restart_backoff_s", "number", "first restart delay in seconds"),
    _server_var("restart_backoff_max_s", "number", "longest restart delay in seconds"),
    _server_var("path_map", "json", "JSON object: local folder -> the server's folder"),
    _server_var("state_dir", "path", "folder recording running servers, for orphan reaping"),
    EnvironmentVariable(
        ENV_PREFIX + "REMOTES",
        ("remotes",),
        "json",
        'JSON array of remote servers: [{"url": ..., "path_map": {...}}] (replaces the file\'s)',
    ),
    EnvironmentVariable(ENV_PREFIX + "OUTPUT_ROOT", ("output_root",), "path", "output folder"),
    EnvironmentVariable(ENV_PREFIX + "LOG_LEVEL", ("logging", "level"), "level", "log level"),
    EnvironmentVariable(ENV_PREFIX + "LOG_FILE", ("logging", "file"), "path", "JSON-lines log"),
    EnvironmentVariable(STORE_PATH_ENV, ("store", "path"), "path", "job store file (SQLite)"),
    EnvironmentVariable(ENV_PREFIX + "STORE_URL", ("store", "url"), "string",
                        "PostgreSQL job store URL (postgresql://user@host/db)"),
)


def _read_env_value(var: EnvironmentVariable, text: str) -> Any:
    """Convert one variable's text to the raw value the schema expects."""
    source = f"environment variable {var.name}"
    kind = var.kind
    try:
        if kind == "int":
            return int(text.strip())
        if kind == "number":
            return float(text.strip())
        if kind == "level":
            return text.strip().upper()
        if kind == "words":
            stripped = text.strip()
            if stripped.startswith("["):
                return json.loads(stripped)
            return shlex.split(stripped)
        if kind == "json":
            return json.loads(text)
    except ValueError as exc:
        expected = {"int": "an integer", "number": "a number"}.get(kind, "valid JSON")
        raise ConfigError(
            f"expected {expected}, got {text!r} ({exc})",
            source=source,
            hint=f"fix or unset {var.name}",
        ) from exc
    return text


# --- loading ---------------------------------------------------------------------------------


@cache
def settings_schema() -> dict[str, Any]:
    """The settings JSON Schema (draft 2020-12), as shipped with the package."""
    text = resources.files("preform_pipeline.schemas").joinpath(_SCHEMA_RESOURCE).read_text(
        encoding="utf-8"
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


def load_settings(path: Path | None = None, env: Mapping[str, str] = os.environ) -> Settings:
    """Read settings from ``path`` (or ``$PREFORM_PIPELINE_SETTINGS``), then the environment.

    With neither a file nor variables, returns the defaults: simulated servers. Relative paths
    in the file are relative to the file's folder; relative paths from variables to the current
    folder. Raises :class:`ConfigError` naming the file or variable and the key path.
    """
    if path is None and env.get(SETTINGS_ENV):
        path = Path(env[SETTINGS_ENV])
    raw: dict[str, Any] = {}
    file_dir = Path.cwd()
    if path is not None:
        path = path.expanduser().absolute()
        raw = _read_settings_file(path)
        file_dir = path.parent
    from_env = _overlay_environment(raw, env)
    log_section = raw.get("logging")
    if isinstance(log_section, dict) and isinstance(log_section.get("level"), str):
        log_section["level"] = log_section["level"].upper()  # "debug" is as clear as "DEBUG"

    def source_of(key_path: Sequence[str | int]) -> str:
        for var in from_env:
            if tuple(key_path[: len(var.key_path)]) == var.key_path:
                return f"environment variable {var.name}"
        return str(path) if path is not None else "settings"

    def base_dir(key_path: Sequence[str]) -> Path:
        from_variable = any(tuple(key_path[: len(v.key_path)]) == v.key_path for v in from_env)
        return Path.cwd() if from_variable else file_dir

    _validate(raw, source_of)
    return _build_settings(raw, source=path, base_dir=base_dir, source_of=source_of)


def _read_settings_file(path: Path) -> dict[str, Any]:
    try:
        if path.is_dir():
            raise ConfigError("is a folder, not a settings file", source=str(path))
        if path.stat().st_size > MAX_SETTINGS_FILE_BYTES:
            raise ConfigError(f"is over {MAX_SETTINGS_FILE_BYTES} bytes; a settings file is a "
                              "page of YAML", source=str(path))
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "settings file not found",
            source=str(path),
            hint=f"create it, or unset {SETTINGS_ENV} to run with defaults",
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read settings file: {exc}", source=str(path)) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        line, column, message = describe_yaml_error(exc, text)
        raise SettingsError([Problem(str(path), line, column, "$", message)]) from None
    except RecursionError:  # the pure-Python parser recurses per nesting level
        raise SettingsError(
            [Problem(str(path), None, None, "$", "YAML nests too deeply to be settings")]
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"$: expected a mapping of sections, got {type(data).__name__}",
            source=str(path),
            hint="start the file with a section such as `servers:`",
        )
    return data


def _overlay_environment(raw: dict[str, Any], env: Mapping[str, str]) -> list[EnvironmentVariable]:
    """Write every set variable into ``raw``; returns the variables that were set."""
    used: list[EnvironmentVariable] = []
    for var in ENVIRONMENT_VARIABLES:
        text = env.get(var.name)
        if text is None or text == "":
            continue
        value = _read_env_value(var, text)
        target = raw
        for key in var.key_path[:-1]:
            section = target.get(key)
            if not isinstance(section, dict):
                section = {}
                target[key] = section
            target = section
        target[var.key_path[-1]] = value
        used.append(var)
    return used


def _json_path(parts: Sequence[str | int]) -> str:
    text = "$"
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier():
            text += f".{part}"
        else:
            text += f"[{part!r}]"
    return text


def _validate(raw: dict[str, Any], source_of: Callable[[Sequence[str | int]], str]) -> None:
    validator = jsonschema.Draft202012Validator(settings_schema())
    problems: list[tuple[str, list[str | int], str]] = []
    for error in validator.iter_errors(raw):
        parts: list[str | int] = list(error.absolute_path)
        message = error.message
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = sorted(error.schema.get("properties", {}))
            for key in sorted(set(error.instance) - set(allowed), key=str):
                close = difflib.get_close_matches(str(key), allowed, n=1)
                text = (
                    f"unknown key (did you mean {close[0]!r}?)"
                    if close
                    else f"unknown key; known keys: {', '.join(allowed)}"
                )
                problems.append((source_of(parts), [*parts, str(key)], text))
            continue
        if error.validator == "oneOf" and error.context:
            # "null or a path": the non-null branch's complaint is the useful one.
            message = next(
                (c.message for c in error.context if c.validator != "type"), error.message
            )
        problems.append((source_of(parts), parts, message))
    if problems:
        problems.sort(key=lambda p: (p[0], _json_path(p[1]), p[2]))
        raise SettingsError(
            [Problem(source, None, None, _json_path(parts), message)
             for source, parts, message in problems],
            [tuple(parts) for _, parts, _ in problems],
            hint="see docs/settings.md for every setting",
        )


def _resolve(text: str, base: Path) -> Path:
    p = Path(text).expanduser()
    return p if p.is_absolute() else base / p


def _executable(text: str, base: Path) -> Path:
    # A bare command name stays a name so the operating system looks it up on PATH.
    if os.sep not in text and (os.altsep is None or os.altsep not in text):
        return Path(text)
    return _resolve(text, base)


def _is_absolute_server_path(text: str) -> bool:
    return text.startswith(("/", "\\\\")) or PureWindowsPath(text).drive != ""


def _path_map(
    raw: Mapping[str, str], key_path: list[str | int], source: str
) -> tuple[PathMapping, ...]:
    mappings: list[PathMapping] = []
    for local_text, remote in raw.items():
        where = _json_path([*key_path, local_text])
        local = Path(local_text).expanduser()
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


def _build_settings(
    raw: Mapping[str, Any],
    *,
    source: Path | None,
    base_dir: Callable[[Sequence[str]], Path],
    source_of: Callable[[Sequence[str | int]], str],
) -> Settings:
    servers = _read_servers(raw.get("servers", {}), base_dir, source_of)
    remotes = tuple(
        _read_remote(i, item, source_of) for i, item in enumerate(raw.get("remotes", []))
    )
    if servers.executable is None and not remotes and servers.count == 0:
        raise ConfigError(
            "$.servers.count: is 0 and no remote servers are configured: nothing can run",
            source=source_of(["servers", "count"]),
            hint="set servers.count to 1 or more, or add remotes",
        )
    names = [r.name for r in remotes if r.name]
    if len(names) != len(set(names)):
        raise ConfigError("$.remotes: two remote servers share a name",
                          source=source_of(["remotes"]))
    output_root = raw.get("output_root")
    log = raw.get("logging", {})
    log_file = log.get("file")
    store_path = raw.get("store", {}).get("path")
    store_url = raw.get("store", {}).get("url")
    return Settings(
        servers=servers,
        remotes=remotes,
        output_root=_resolve(output_root, base_dir(["output_root"]))
        if output_root
        else Path.cwd() / DEFAULT_OUTPUT_ROOT,
        logging=LoggingSettings(
            level=str(log.get("level", DEFAULT_LOG_LEVEL)).upper(),
            file=_resolve(log_file, base_dir(["logging", "file"])) if log_file else None,
        ),
        source=source,
        store=StoreSettings(
            path=_resolve(store_path, base_dir(["store", "path"])) if store_path
            else default_store_path(),
            url=store_url or None,
        ),
        hotfolders=read_hotfolder_settings(
            raw.get("hotfolders", {}), base_dir(["hotfolders"]), source_of
        ),
        cloud=read_cloud_settings(raw.get("cloud", {}), base_dir(["cloud"]), source_of),
        verify=read_verify_settings(raw.get("verify", {}), base_dir(["verify"]), source_of),
    )


def _read_servers(
    raw: Mapping[str, Any],
    base_dir: Callable[[Sequence[str]], Path],
    source_of: Callable[[Sequence[str | int]], str],
) -> ServerSettings:
    defaults = ServerSettings()
    executable = raw.get("executable")
    whole = ("count", "base_port", "port_attempts", "scene_cache_size", "recycle_after_builds",
             "max_restarts")
    real = ("startup_timeout_s", "stop_timeout_s", "recycle_rss_mb", "health_interval_s",
            "health_timeout_s", "crash_window_s", "restart_backoff_s", "restart_backoff_max_s",
            "request_timeout_s")
    plain: dict[str, Any] = {key: int(raw[key]) for key in whole if key in raw}
    plain.update({key: float(raw[key]) for key in real if key in raw})
    settings = ServerSettings(
        executable=_executable(executable, base_dir(["servers", "executable"]))
        if executable
        else None,
        command_prefix=tuple(raw.get("command_prefix", defaults.command_prefix)),
        extra_args=tuple(raw.get("extra_args", defaults.extra_args)),
        path_map=_path_map(
            raw.get("path_map", {}), ["servers", "path_map"],
            source_of(["servers", "path_map"]),
        ),
        state_dir=_resolve(raw["state_dir"], base_dir(["servers", "state_dir"]))
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


def _read_remote(
    index: int, raw: Mapping[str, Any], source_of: Callable[[Sequence[str | int]], str]
) -> RemoteServer:
    key_path: list[str | int] = ["remotes", index, "path_map"]
    return RemoteServer(
        url=str(raw["url"]).rstrip("/"),
        path_map=_path_map(raw.get("path_map", {}), key_path, source_of(key_path)),
        name=raw.get("name"),
    )

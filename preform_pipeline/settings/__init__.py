"""Settings: a YAML settings file, overridden by ``PREFORM_PIPELINE_*`` environment variables.

A leaf of the package: plain frozen dataclasses and their readers, importing nothing of the
pipeline but :mod:`preform_pipeline.errors` (and the logging and YAML helpers of the base
layer). What is built from settings (clients, notifiers, the server pool) is built beside what
it builds, from the slice it needs. One module per section, its dataclass next to its reader:

============  ==================================================================
servers       ``servers`` and ``remotes``: :class:`PoolSettings`, the pool's slice
store         ``store``: where the job store file lives
logging       ``logging``: console level and log file
hotfolder     ``hotfolders``: inboxes, batching, outcome folders
cloud         ``cloud``: the Web API's address, credentials and request budget
verify        ``verify``: polling, deadlines, notifications
environment   ``PREFORM_PIPELINE_*`` variables and the keys they override
schema        the JSON Schema and checking raw settings against it
files         reading the settings file
reading       what the readers share: sources of key paths, relative paths
============  ==================================================================

Values have named ``DEFAULT_*`` constants, so code that builds settings by hand (tests, the
simulator demo) and code that loads them from a file see the same defaults.

Loading (:func:`load_settings`) goes: read the YAML file (``PREFORM_PIPELINE_SETTINGS`` names it
when no path is passed) → overlay environment variables onto the raw mapping → validate the
result against ``schemas/settings.schema.json`` → semantic checks (absolute path-map folders) →
dataclasses. Every problem is a :class:`~preform_pipeline.errors.ConfigError` naming its source
(the file, or the environment variable) and the key path (``$.servers.count``).

Adding a section later:

1. describe it in the schema: one entry under ``properties`` and one under ``$defs``;
2. add ``settings/<section>.py`` with a frozen dataclass with defaults and its
   ``read_<section>_settings`` function, and a field on :class:`Settings`;
3. call the reader from :func:`_build_settings`;
4. add its environment variables to :data:`ENVIRONMENT_VARIABLES` (docs/settings.md lists them,
   and a test checks that every variable there is documented).

Unknown top-level keys are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from preform_pipeline.settings.cloud import CloudSettings, read_cloud_settings
from preform_pipeline.settings.dispatch import DispatchSettings, read_dispatch_settings
from preform_pipeline.settings.environment import (
    ENV_PREFIX,
    ENVIRONMENT_VARIABLES,
    SETTINGS_ENV,
    STORE_PATH_ENV,
    EnvironmentVariable,
    overlay_environment,
)
from preform_pipeline.settings.files import MAX_SETTINGS_FILE_BYTES, read_settings_file
from preform_pipeline.settings.fleet import (
    FleetGroup,
    FleetMember,
    FleetSettings,
    read_fleet_settings,
)
from preform_pipeline.settings.hotfolder import HotFolderSettings, read_hotfolder_settings
from preform_pipeline.settings.logging import LoggingSettings, read_logging_settings
from preform_pipeline.settings.reading import BaseDir, SourceOf, resolve_path
from preform_pipeline.settings.run import RunSettings, read_run_settings
from preform_pipeline.settings.schema import settings_schema, validate_settings
from preform_pipeline.settings.servers import (
    PathMapping,
    PoolMode,
    PoolSettings,
    RemoteServer,
    ServerSettings,
    SimulatedPrinterSettings,
    read_pool_settings,
)
from preform_pipeline.settings.store import StoreSettings, default_store_path, read_store_settings
from preform_pipeline.settings.verify import VerifySettings, read_verify_settings
from preform_pipeline.settings.web import WebSettings, WebUser, read_web_settings
from preform_pipeline.userpath import expand_user

__all__ = [
    "CloudSettings",
    "DispatchSettings",
    "ENVIRONMENT_VARIABLES",
    "ENV_PREFIX",
    "EnvironmentVariable",
    "FleetGroup",
    "FleetMember",
    "FleetSettings",
    "HotFolderSettings",
    "LoggingSettings",
    "MAX_SETTINGS_FILE_BYTES",
    "PathMapping",
    "PoolMode",
    "PoolSettings",
    "RemoteServer",
    "RunSettings",
    "SETTINGS_ENV",
    "STORE_PATH_ENV",
    "ServerSettings",
    "Settings",
    "SimulatedPrinterSettings",
    "StoreSettings",
    "VerifySettings",
    "WebSettings",
    "WebUser",
    "default_store_path",
    "load_settings",
    "read_fleet_settings",
    "settings_schema",
]


@dataclass(frozen=True)
class Settings:
    """Everything a run is configured with; ``source`` is the settings file, if any.

    ``output_root`` None: each recipe's ``outputs.root`` (``--output`` and the hot folders'
    ``output_root`` still come first; :func:`preform_pipeline.executor.output_root`).
    """

    servers: ServerSettings = field(default_factory=ServerSettings)
    remotes: tuple[RemoteServer, ...] = ()
    output_root: Path | None = None
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    source: Path | None = None
    store: StoreSettings = field(default_factory=StoreSettings)
    hotfolders: HotFolderSettings = field(default_factory=HotFolderSettings)
    cloud: CloudSettings = field(default_factory=CloudSettings)
    verify: VerifySettings = field(default_factory=VerifySettings)
    fleet: FleetSettings = field(default_factory=FleetSettings)
    #: ``dashboard_login`` as written (no secrets) and the folder its paths are relative to.
    dashboard_login: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    dashboard_login_base: Path | None = None
    dashboard_login_source: str = "settings"
    #: ``simulator.fleet`` (empty: the simulator's default fleet) and its print-time scale.
    simulated_fleet: tuple[SimulatedPrinterSettings, ...] = ()
    simulated_print_time_scale: float = 0.0
    dispatch: DispatchSettings = field(default_factory=DispatchSettings)
    run: RunSettings = field(default_factory=RunSettings)
    #: The web dashboard (``serve``, ``watch --serve``): address and users (docs/web.md).
    web: WebSettings = field(default_factory=WebSettings)

    @property
    def pool(self) -> PoolSettings:
        """The slice the server pool gets: the servers section, the remotes, the Dashboard
        login and the simulated fleet."""
        return PoolSettings(
            servers=self.servers,
            remotes=self.remotes,
            dashboard_login=self.dashboard_login,
            dashboard_login_base=self.dashboard_login_base,
            dashboard_login_source=self.dashboard_login_source,
            simulated_fleet=self.simulated_fleet,
            simulated_print_time_scale=self.simulated_print_time_scale,
        )

    @property
    def log_file(self) -> Path | None:
        return self.logging.file

    @property
    def simulated(self) -> bool:
        """True when nothing real is configured: the pool will run the simulator."""
        return self.pool.simulated


def load_settings(path: Path | None = None, env: Mapping[str, str] = os.environ) -> Settings:
    """Read settings from ``path`` (or ``$PREFORM_PIPELINE_SETTINGS``), then the environment.

    With neither a file nor variables, returns the defaults: simulated servers. Relative paths
    in the file are relative to the file's folder; relative paths from variables to the current
    folder. Raises :class:`ConfigError` naming the file or variable and the key path.
    """
    named_by_env = path is None and bool(env.get(SETTINGS_ENV))
    if named_by_env:
        path = Path(env[SETTINGS_ENV])
    raw: dict[str, Any] = {}
    file_dir = Path.cwd()
    if path is not None:
        path = expand_user(path, source=f"environment variable {SETTINGS_ENV}" if named_by_env
                           else "settings file").absolute()
        raw = read_settings_file(path, named_by_env=named_by_env)
        file_dir = path.parent
    from_env = overlay_environment(raw, env)
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

    validate_settings(raw, source_of)
    return _build_settings(raw, source=path, base_dir=base_dir, source_of=source_of, env=env)


def _build_settings(
    raw: Mapping[str, Any], *, source: Path | None, base_dir: BaseDir, source_of: SourceOf,
    env: Mapping[str, str] = os.environ,
) -> Settings:
    pool = read_pool_settings(raw, base_dir, source_of)
    output_root = raw.get("output_root")
    return Settings(
        servers=pool.servers,
        remotes=pool.remotes,
        dashboard_login=pool.dashboard_login,
        dashboard_login_base=pool.dashboard_login_base,
        dashboard_login_source=pool.dashboard_login_source,
        simulated_fleet=pool.simulated_fleet,
        simulated_print_time_scale=pool.simulated_print_time_scale,
        dispatch=read_dispatch_settings(raw.get("dispatch", {})),
        run=read_run_settings(raw.get("run", {})),
        output_root=resolve_path(output_root, base_dir(["output_root"]), ["output_root"],
                                 source_of) if output_root else None,
        logging=read_logging_settings(raw.get("logging", {}), base_dir(["logging", "file"]),
                                      source_of),
        source=source,
        store=read_store_settings(raw.get("store", {}), base_dir(["store", "path"]), source_of),
        hotfolders=read_hotfolder_settings(
            raw.get("hotfolders", {}), base_dir(["hotfolders"]), source_of
        ),
        cloud=read_cloud_settings(raw.get("cloud", {}), base_dir(["cloud"]), source_of),
        verify=read_verify_settings(raw.get("verify", {}), source_of),
        fleet=read_fleet_settings(raw.get("fleet"), source_of),
        web=read_web_settings(raw.get("web", {}), base_dir, source_of, env),
    )

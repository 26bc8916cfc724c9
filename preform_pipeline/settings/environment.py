"""``PREFORM_PIPELINE_*`` environment variables: which settings key each overrides, and how
its text becomes the raw value the schema expects.

docs/settings.md lists every variable here, and a test checks that none is missing there.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from preform_pipeline.errors import ConfigError
from preform_pipeline.yamlerrors import describe_not_finite, is_finite

__all__ = [
    "ENVIRONMENT_VARIABLES",
    "ENV_PREFIX",
    "SETTINGS_ENV",
    "STORE_PATH_ENV",
    "EnvironmentVariable",
    "overlay_environment",
    "without_overrides",
]

ENV_PREFIX: Final = "PREFORM_PIPELINE_"
#: Environment variable naming the settings file when ``load_settings`` gets no path.
SETTINGS_ENV: Final = ENV_PREFIX + "SETTINGS"
#: Environment variable naming the job store file (``store.path``).
STORE_PATH_ENV: Final = ENV_PREFIX + "STORE_PATH"


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


#: Every environment variable read by ``load_settings`` (plus :data:`SETTINGS_ENV`).
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
    EnvironmentVariable(
        ENV_PREFIX + "STORE_URL",
        ("store", "url"),
        "string",
        "PostgreSQL job store URL (postgresql://user@host/db)",
    ),
    EnvironmentVariable(ENV_PREFIX + "NODE_ID", ("store", "node_id"), "string",
                        "this node's name on a shared store"),
    EnvironmentVariable(ENV_PREFIX + "NODE_LEASE_S", ("store", "lease_s"), "number",
                        "seconds a node's claim on a build lasts unless renewed"),
)


def _read_env_value(var: EnvironmentVariable, text: str) -> Any:
    """Convert one variable's text to the raw value the schema expects."""
    source = f"environment variable {var.name}"
    kind = var.kind
    try:
        if kind == "int":
            return int(text.strip())
        if kind == "number":
            number = float(text.strip())  # takes "nan" and "inf", as a settings file did
            if not is_finite(number):
                raise ConfigError(describe_not_finite(text.strip(), "setting"), source=source,
                                  hint=f"fix or unset {var.name}")
            return number
        if kind == "level":
            return text.strip().upper()
        if kind == "words":
            stripped = text.strip()
            if stripped.startswith("["):
                return json.loads(stripped)
            return shlex.split(stripped)
        if kind == "json":
            return json.loads(text)
    except RecursionError:  # the JSON decoder recurses per level of nesting
        raise ConfigError(
            "expected valid JSON, got text nested too deeply to read",
            source=source,
            hint=f"fix or unset {var.name}",
        ) from None
    except ValueError as exc:
        expected = {"int": "an integer", "number": "a number"}.get(kind, "valid JSON")
        raise ConfigError(
            f"expected {expected}, got {text!r} ({exc})",
            source=source,
            hint=f"fix or unset {var.name}",
        ) from exc
    return text


def without_overrides(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without the variables :func:`overlay_environment` applies (nor
    :data:`SETTINGS_ENV`): a settings file read on its own, whose own ``secret_env`` is still
    read whatever its name (``PREFORM_PIPELINE_WEB_TOKEN`` too, as ``serve`` reads it)."""
    overrides = {SETTINGS_ENV, *(var.name for var in ENVIRONMENT_VARIABLES)}
    return {name: value for name, value in env.items() if name not in overrides}


def overlay_environment(raw: dict[str, Any], env: Mapping[str, str]) -> list[EnvironmentVariable]:
    """Write every set variable into ``raw``; returns the variables that were set.

    ConfigError names the variable whose text is not what its kind needs."""
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

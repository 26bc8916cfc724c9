"""The Dashboard login a PreFormServer needs for Fleet Control queues (Local API ``/login/``).

A print to a Fleet Control queue is refused with ``NOT_LOGGED_IN`` until the server is logged
in to the Dashboard account, and a server forgets its login when it restarts. The server pool
therefore logs every server in after it starts and after every restart, with this login.

The username and password are found like the Web API credentials
(:mod:`.credentials`): the environment variable, then the environment variable naming a file,
then the settings section ``dashboard_login`` (``username`` / ``username_file``;
``password_file`` only: a password is never written into the settings file itself). Neither
value set means no login; only one of them set is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from preform_pipeline.cloud.credentials import _find, _Lookup
from preform_pipeline.errors import ConfigError

__all__ = [
    "ENV_DASHBOARD_PASSWORD",
    "ENV_DASHBOARD_PASSWORD_FILE",
    "ENV_DASHBOARD_USERNAME",
    "ENV_DASHBOARD_USERNAME_FILE",
    "LOGIN_SETTING_HINT",
    "DashboardLogin",
    "load_dashboard_login",
    "unreadable_login_files",
]

#: Where a server's Dashboard login comes from, said wherever a missing one stops a print.
LOGIN_SETTING_HINT: Final = "set dashboard_login in the settings (docs/dispatch.md)"

ENV_DASHBOARD_USERNAME: Final = "PREFORM_PIPELINE_DASHBOARD_USERNAME"
ENV_DASHBOARD_USERNAME_FILE: Final = "PREFORM_PIPELINE_DASHBOARD_USERNAME_FILE"
ENV_DASHBOARD_PASSWORD: Final = "PREFORM_PIPELINE_DASHBOARD_PASSWORD"
ENV_DASHBOARD_PASSWORD_FILE: Final = "PREFORM_PIPELINE_DASHBOARD_PASSWORD_FILE"

_USERNAME: Final = _Lookup(
    "Dashboard username", ENV_DASHBOARD_USERNAME, ENV_DASHBOARD_USERNAME_FILE, "username",
    "username_file",
)
_PASSWORD: Final = _Lookup(
    "Dashboard password", ENV_DASHBOARD_PASSWORD, ENV_DASHBOARD_PASSWORD_FILE, "password",
    "password_file",
)


@dataclass(frozen=True)
class DashboardLogin:
    """A Dashboard account's username and password; the password never shows in a repr."""

    username: str
    password: str = field(repr=False)


def unreadable_login_files(
    section: Mapping[str, Any] | None,
    env: Mapping[str, str],
    *,
    base_dir: Path | None = None,
    written_in: str = "settings",
) -> list[ConfigError]:
    """The error of each file ``section`` names (``username_file``, ``password_file``) that
    cannot be read, and would be (its environment variables do not give the value first),
    each said at its key (``$.dashboard_login.password_file: ...``) in ``written_in``, the
    settings file, so its line and column are found as for every settings error. ``validate``
    says them all (``env`` empty: the file is checked on its own); the pool says the first
    at its start. A password file that was not there was said only when the pool started,
    without where the settings name it."""
    raw = dict(section or {})
    errors: list[ConfigError] = []
    for lookup in (_USERNAME, _PASSWORD):
        written = raw.get(lookup.key_file)
        if not written or not isinstance(written, str) or env.get(lookup.env) \
                or env.get(lookup.env_file):
            continue
        try:
            _find(lookup, {lookup.key_file: written}, {}, "dashboard_login", base_dir)
        except ConfigError as exc:
            # The key is said once, as the position's path; the file, when the error names it.
            said = exc.message.removeprefix(f"dashboard_login: {lookup.key_file}: ")
            errors.append(ConfigError(f"$.dashboard_login.{lookup.key_file}: {said}",
                                      source=written_in, hint=exc.hint))
    return errors


def load_dashboard_login(
    section: Mapping[str, Any] | None,
    env: Mapping[str, str],
    *,
    settings_source: str = "settings: dashboard_login",
    base_dir: Path | None = None,
    written_in: str = "settings",
) -> DashboardLogin | None:
    """The configured login (module docstring gives the order), or None when none is set.
    ``written_in``: the settings file, where a file it names that cannot be read is said to
    be named (:func:`unreadable_login_files`)."""
    unreadable = unreadable_login_files(section, env, base_dir=base_dir, written_in=written_in)
    if unreadable:
        raise unreadable[0]
    raw = dict(section or {})
    if raw.get("password"):
        raise ConfigError(
            "a Dashboard password is never read from the settings file",
            source=settings_source,
            hint=f"put it in a file named by password_file, or set {ENV_DASHBOARD_PASSWORD} "
            f"(or {ENV_DASHBOARD_PASSWORD_FILE}) in the service's environment",
        )
    username, _ = _find(_USERNAME, raw, env, settings_source, base_dir)
    password, _ = _find(_PASSWORD, raw, env, settings_source, base_dir)
    if username is None and password is None:
        return None
    if username is None or password is None:
        missing = _USERNAME if username is None else _PASSWORD
        raise ConfigError(
            f"a Dashboard login needs both a username and a password; the {missing.what} is "
            "not set",
            source=settings_source,
            hint=f"set {missing.env} (or {missing.env_file} naming a file that holds it, or "
            f"{missing.key_file!r} under dashboard_login in the settings)",
        )
    return DashboardLogin(username, password)

"""A path a user wrote, with its leading ``~`` or ``~name`` expanded, or a clear error.

Python's :meth:`pathlib.Path.expanduser` raises ``RuntimeError("Could not determine home
directory")`` for ``~name`` naming no user of this machine, and takes an empty ``HOME`` for
the root folder ``/`` (a data folder of ``/.local/share``). Every option, setting and variable
that takes a path goes through :func:`expand_user`, and every default below the home folder
through :func:`own_home`, so neither ends a command with a crash or writes below ``/``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePath

from preform_pipeline.errors import ConfigError

__all__ = ["expand_user", "own_home"]


def own_home(env: Mapping[str, str] = os.environ) -> Path:
    """This user's home folder: ``HOME`` (``USERPROFILE`` on Windows) when set and not empty,
    else the one the system's user database lists. A ConfigError when there is none."""
    for name in ("HOME", "USERPROFILE"):
        if env.get(name):
            return Path(env[name])
    try:
        import pwd
    except ImportError:  # Windows: no user database, Python asks the system
        return Path.home()
    try:
        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:  # a bare container's user id, listed nowhere
        raise ConfigError(
            "no home folder is known for this user: HOME is not set and the user database "
            f"lists no user {os.getuid()}",
            source="environment variable HOME",
            hint="set HOME, or write the paths in full",
        ) from None


def expand_user(text: str | PurePath, *, source: str, key: str = "") -> Path:
    """``text`` with a leading ``~`` (:func:`own_home`) or ``~name`` (user name's) expanded.

    ``source`` says where the path was written (``--store``, ``environment variable X``, a
    settings file or variable) and ``key`` the settings key (``$.store.path``), if any: a
    ``~name`` for a user this machine lacks is a :class:`ConfigError` naming them, the path and
    what helps.
    """
    parts = PurePath(text).parts
    if parts[:1] == ("~",):
        return own_home().joinpath(*parts[1:])
    try:
        return Path(text).expanduser()
    except RuntimeError:
        user = parts[0][1:]
    where = f"{key}: " if key else ""
    raise ConfigError(
        f"{where}{str(text)!r}: no user named {user!r} on this machine",
        source=source,
        hint="write the path in full, or start it with ~/ for your own home folder",
    )

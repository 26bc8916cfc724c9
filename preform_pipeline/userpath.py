"""A path a user wrote, with its leading ``~`` or ``~name`` expanded, or a clear error.

Python's :meth:`pathlib.Path.expanduser` raises ``RuntimeError("Could not determine home
directory")`` for ``~name`` naming no user of this machine (and for ``~`` when neither ``HOME``
nor the password database knows the home folder): every option, setting and variable that takes
a path goes through :func:`expand_user`, so none of them ends a command with a crash.
"""

from __future__ import annotations

from pathlib import Path, PurePath

from preform_pipeline.errors import ConfigError

__all__ = ["expand_user"]


def expand_user(text: str | PurePath, *, source: str, key: str = "") -> Path:
    """``text`` with a leading ``~`` (this user's home) or ``~name`` (user name's) expanded.

    ``source`` says where the path was written (``--store``, ``environment variable X``, a
    settings file or variable) and ``key`` the settings key (``$.store.path``), if any: a home
    folder that cannot be found is a :class:`ConfigError` naming them, the path and what helps.
    """
    try:
        return Path(text).expanduser()
    except RuntimeError:
        user = Path(text).parts[0][1:]
    where = f"{key}: " if key else ""
    if user:
        message = f"{where}{str(text)!r}: no user named {user!r} on this machine"
        hint = "write the path in full, or start it with ~/ for your own home folder"
    else:
        # HOME unset and this user missing from the password database (a bare container).
        message = f"{where}{str(text)!r}: ~ stands for your home folder, which is not known here"
        hint = "write the path in full, or set HOME"
    raise ConfigError(message, source=source, hint=hint)

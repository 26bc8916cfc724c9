"""A path a user wrote, with its leading ``~`` or ``~name`` expanded, or a clear error.

Python's :meth:`pathlib.Path.expanduser` raises ``RuntimeError("Could not determine home
directory")`` for ``~name`` naming no user of this machine, and takes an empty ``HOME`` for
the root folder ``/`` (a data folder of ``/.local/share``). Every option, setting and variable
that takes a path goes through :func:`expand_user`, and every default below the home folder
through :func:`own_home`, so neither ends a command with a crash or writes below ``/``.

Where a file holding a secret is named, a newcomer now and then types the secret itself:
``--client-secret-file hunter2`` was said as "hunter2: cannot read the client secret" on the
console, in a cron mail and in the log. :func:`secret_file_named` names such a path only when
it reads as one.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Final

from preform_pipeline.errors import ConfigError

__all__ = ["expand_user", "own_home", "secret_file_named", "unusable_path"]

#: A file name's extension as people give one (``.txt``, ``.key``, ``.secret``): lower case,
#: a letter first, short. A secret ending in a dot and letters is rarely spelt so.
_EXTENSION: Final = re.compile(r"\.[a-z][a-z0-9]{0,7}")
#: What the system says of a path no file can ever be found at, whatever is on the disk: a
#: name or a part of it too long, symbolic links that loop, a name it does not take.
_UNUSABLE: Final = {
    errno.ENAMETOOLONG: "it is too long for this system (a name at most 255 bytes, a path "
                        "at most 4096)",
    errno.ELOOP: "its symbolic links lead round in a loop",
    errno.EINVAL: "this system does not take it as a file name",
}


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


def secret_file_named(written: str, path: PurePath) -> str:
    """How an error names the file that should hold a secret and could not be read:
    ``written`` (as the user wrote it, before ``~`` was expanded or a settings folder put
    before it), or, when it may be the secret itself, its length and where it was looked for.

    A mistyped path is the likelier mistake, and naming it helps most, so it is named
    whenever it reads as a path: something is at ``path`` (a folder, a file this user may not
    read), it is anchored (``/``, ``~``, ``./``, ``../``, a drive), it has a folder and that
    folder is there (a typo in the file's name), or it ends in an extension (``secret.txt``).
    What is left (a bare word naming nothing, or words after a folder that is not there) is
    what a secret typed in place of its file looks like."""
    path = Path(path).absolute()
    anchored = (PurePath(written).is_absolute() or written.startswith(("~", "./", "../"))
                or bool(PurePath(written).drive))
    folder = PurePath(written).parent != PurePath(".")
    if (os.path.lexists(path) or anchored or (folder and os.path.isdir(path.parent))
            or _EXTENSION.fullmatch(PurePath(written).suffix) is not None):
        return written
    # Relative, so path is the folder it was read from with written's parts after it; that
    # folder is said, none of written's parts (a secret's first part before a "/").
    below = PurePath(*path.parts[:len(path.parts) - len(PurePath(written).parts)])
    return (f"the name given ({len(written)} characters, not repeated here: no file is at it "
            f"and it does not read as a path, so it may be the secret itself; looked for "
            f"below {below})")


def unusable_path(exc: OSError | ValueError) -> str | None:
    """Why the path an error of stat or open was about cannot name a file (a NUL in it, or
    :data:`_UNUSABLE`), or None for an error of the file itself (not there, no permission).
    Such a path is the value's mistake, to be said at the setting that gave it: Path.is_file
    raises for a name too long (exit 70 on a settings file, session 45's fuzzer), and takes
    a loop of links for a file that is not there."""
    if isinstance(exc, ValueError):
        return "it holds a NUL character" if "null" in str(exc) else None
    return _UNUSABLE.get(exc.errno or 0)

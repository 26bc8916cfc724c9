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

#: A file's name as people write one: lower-case words joined by ``-`` or ``_``, perhaps an
#: extension (``client-secret.txt``, ``formlabs.key``). Digits, capitals and signs are the stuff
#: of secrets (``hunter2.txt``, ``aB3+x==``, ``p@ss.Word``): a name with any is not said.
_FILE_NAME: Final = re.compile(r"[a-z]+(?:[-_][a-z]+)*(?:\.[a-z]{1,8})?")
#: How a written folder that names where it starts begins: the root, the working folder, its
#: parent, the home folder (``~/``: not ``~`` alone, a secret's first character as often).
_ANCHORS: Final = ("/", "./", "../", "~/", os.sep, f".{os.sep}", f"..{os.sep}", f"~{os.sep}")
#: What the system says of a path no file can ever be found at, whatever is on the disk: a
#: name or a part of it too long, symbolic links that loop, a name it does not take.
_UNUSABLE: Final = {
    errno.ENAMETOOLONG: "it is too long for this system (a name at most 255 bytes, a path "
                        "at most 4096)",
    errno.ELOOP: "its symbolic links lead round in a loop",
    errno.EINVAL: "this system does not take it as a file name",
}
#: A file's name in a folder the user wrote and that is there: letters of either case and
#: digits, in words joined by ``-``, ``_``, ``.`` or a space (``Client_Secret.txt``,
#: ``form4-secret-2.txt``, ``client.secret.txt``).
_WRITTEN_NAME: Final = re.compile(r"[A-Za-z0-9]+(?:[-_. ][A-Za-z0-9]+)*")
#: A Windows drive's start of a path (``C:\\``, ``D:/``), whatever system reads it.
_DRIVE: Final = re.compile(r"[A-Za-z]:[\\/]")


def _a_written_folder_is_there(written: str, path: Path, there: Path) -> bool:
    """Whether ``written`` is relative and the first folder it names (not ``./`` or ``../``)
    is there: ``there``, the nearest folder that is on the way to ``path``, is it or below
    it. Not an absolute path's: a caller may pass one ``~`` was expanded in (the simulator's
    ``--client-secret-file ~/Hunter2``), whose home folder the user did not write, and a
    secret's first part is rarely a folder of the working or settings folder."""
    parts = PurePath(written).parts
    if not parts or PurePath(written).anchor or parts[0].startswith("~"):
        return False
    start = len(path.parts) - len(parts)  # path's parts before written's own
    folders = [i for i in range(max(start, 0), len(path.parts) - 1) if path.parts[i] != ".."]
    return bool(folders) and len(there.parts) > folders[0]


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


def expand_user(text: str | PurePath, *, source: str, key: str = "", secret: bool = False
                ) -> Path:
    """``text`` with a leading ``~`` (:func:`own_home`) or ``~name`` (user name's) expanded.

    ``source`` says where the path was written (``--store``, ``environment variable X``, a
    settings file or variable) and ``key`` the settings key (``$.store.path``), if any: a
    ``~name`` for a user this machine lacks is a :class:`ConfigError` naming them, the path and
    what helps. ``secret``: ``text`` names a file holding a secret, and may be the secret itself
    typed in its place (``~hunter2``): such an error says its length, not ``text``.
    """
    parts = PurePath(text).parts
    if parts[:1] == ("~",):
        return own_home().joinpath(*parts[1:])
    try:
        return Path(text).expanduser()
    except RuntimeError:
        user = parts[0][1:]
    where = f"{key}: " if key else ""
    if secret:
        raise ConfigError(
            f"{where}the name given ({len(str(text))} characters, not repeated here: it may be "
            "the secret itself) starts with ~ and no user of this machine is named so",
            source=source,
            hint="write the file's path in full, or start it with ~/ for your own home folder",
        )
    raise ConfigError(
        f"{where}{str(text)!r}: no user named {user!r} on this machine",
        source=source,
        hint="write the path in full, or start it with ~/ for your own home folder",
    )


def secret_file_named(written: str, path: PurePath) -> str:
    """How an error names the file that should hold a secret and could not be read:
    ``written`` (as the user wrote it, before ``~`` was expanded or a settings folder put
    before it), or, when it may be the secret itself, its length and the folder it was looked
    for in.

    A mistyped path is the likelier mistake and naming it helps most, but a secret said back
    is worse (the console, a cron mail, the log): ``written`` is said only when it is very
    likely a path. Something is at ``path`` (a folder, a file this user may not read), or its
    file name reads as one (:data:`_FILE_NAME`) and has an extension (``client-secret.txt``)
    or a folder written before it that is there or names where it starts (``/``, ``./``,
    ``../``, ``~/``, a drive); a bare word naming nothing is what a secret typed in its
    file's place looks like. A relative path whose first folder is there, or one starting
    with a Windows drive, is said with capitals, digits and dots in its file's name too
    (``secrets/Client_Secret.txt``, review rv45-small). Else none of it is said, only the nearest
    folder that is there on the way to ``path`` (the settings' or working folder when no part
    of ``written`` is one): a secret's parts never are, nor a folder that is not there."""
    path = Path(path).absolute()
    if os.path.lexists(path):
        return written
    # A Windows path in a settings file read on another system (``C:\\secrets\\x.txt``) is
    # anchored by its drive, and its name is after its last backslash.
    windows = _DRIVE.match(written) is not None
    cut = max(written.rfind("/"), written.rfind(os.sep), written.rfind("\\") if windows else -1)
    folder, name = written[:cut + 1], written[cut + 1:]
    folder_known = bool(folder) and (os.path.isdir(path.parent) or folder.startswith(_ANCHORS)
                                     or bool(PurePath(written).drive) or windows)
    known = "." in name or folder_known
    there = path.parent
    while not os.path.isdir(there) and there != there.parent:
        there = there.parent
    if known and _FILE_NAME.fullmatch(name):
        return written
    # A folder the user wrote is there (``secrets/Client_Secret.txt``: a relative path), or a
    # drive starts it: a path, whose file's name may have capitals and digits as people's
    # files do; only signs a name seldom has (``+``, ``=``, ``@``) still hide it.
    if _WRITTEN_NAME.fullmatch(name) and (windows or _a_written_folder_is_there(written, path,
                                                                                  there)):
        return written
    return (f"the name given ({len(written)} characters, not repeated here: no file is at it "
            f"and it does not read as a path, so it may be the secret itself; looked for "
            f"below {there})")


def unusable_path(exc: OSError | ValueError) -> str | None:
    """Why the path an error of stat or open was about cannot name a file (a NUL in it, or
    :data:`_UNUSABLE`), or None for an error of the file itself (not there, no permission).
    Such a path is the value's mistake, to be said at the setting that gave it: Path.is_file
    raises for a name too long (exit 70 on a settings file, session 45's fuzzer), and takes
    a loop of links for a file that is not there."""
    if isinstance(exc, ValueError):
        return "it holds a NUL character" if "null" in str(exc) else None
    return _UNUSABLE.get(exc.errno or 0)

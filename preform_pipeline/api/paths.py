"""Turning the caller's file paths into the absolute paths a PreFormServer expects.

The server reads and writes files on its own machine and refuses relative paths. The client
therefore refuses a relative path before sending anything (relative to *which* directory would
be a guess), then hands the absolute path to a ``path_mapper``: by default the resolved local
path, for a remote server a mapping onto that machine's file system (owned by the server pool).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from os import PathLike
from pathlib import Path, PureWindowsPath
from typing import Final

from preform_pipeline.errors import FileWriteError

__all__ = [
    "WINDOWS_MAX_PATH",
    "FolderResolver",
    "PathMapper",
    "check_saved_path",
    "default_path_mapper",
    "is_absolute_server_path",
    "same_machine_path",
    "to_server_path",
]

#: Paths are POSIX here: read once (the per-model short ways below are POSIX only).
_POSIX = os.name == "posix"

#: Maps an absolute local path to the path string the server should use.
PathMapper = Callable[[Path], str]

#: The longest path a Windows program opens without the long-path opt-in (MAX_PATH: 260
#: with the string's end), which nothing says PreFormServer has; its own temporaries beside
#: the file it saves may need a few more.
WINDOWS_MAX_PATH: Final = 259


def default_path_mapper(path: Path) -> str:
    """The server shares this machine's file system: send the resolved local path."""
    return str(path.resolve())


def same_machine_path(path: Path) -> str:
    """``str(Path(os.path.abspath(path)))``: the text a server on this machine is sent for
    ``path`` (absolute, ``..`` dropped, no link resolved), what an identity path map gives.

    On POSIX ``os.path.abspath``'s text is already the one a ``Path`` would print (it is
    normalised, and a path keeps its two leading slashes in both), so no ``Path`` is built
    for it: every model import and every save sends one of these (runner CPU per model).
    """
    text = os.path.abspath(path)
    return text if os.name == "posix" else str(Path(text))


def is_absolute_server_path(text: str) -> bool:
    """True for ``/srv/x.stl``, ``C:\\x.stl`` and ``\\\\host\\share\\x.stl`` alike.

    The server may run on another OS than the client, so both path flavours count.
    """
    # A POSIX path is absolute exactly when it starts with "/" (checked first: it is the
    # common case, and parsing the text as a path costs more).
    return text.startswith("/") or PureWindowsPath(text).is_absolute()


def to_server_path(
    path: str | PathLike[str], mapper: PathMapper = default_path_mapper, *, what: str = "file"
) -> str:
    """The server-side path for ``path``, or ``ValueError`` if either side is not absolute."""
    if mapper is same_machine_path and type(path) is str and path[:1] == "/" and _POSIX:
        # An absolute POSIX text for a server on this machine (a model's import, whose
        # folder the executor resolved as text): what the long way below gives, without a
        # Path built and printed again. ``same_machine_path`` is ``os.path.abspath``, which
        # for an absolute text is ``normpath``: it normalises what Path would, and more.
        # Every import sends one of these (runner CPU per model).
        return os.path.normpath(path)
    local = path if isinstance(path, Path) else Path(path)
    if not local.is_absolute():
        raise ValueError(
            f"{what} {str(path)!r} is a relative path; the Local API needs an absolute path "
            "(resolve it against the folder it came from before calling the client)"
        )
    mapped = mapper(local)
    if not is_absolute_server_path(mapped):
        raise ValueError(
            f"the path mapper turned {what} {str(local)!r} into {mapped!r}, which is not an "
            "absolute path on the server; fix the server's path map"
        )
    return mapped


def check_saved_path(server_path: str, local: str | PathLike[str], *, what: str) -> None:
    """Refuse, before it is sent, a path a server is asked to save to that it cannot write:
    one over :data:`WINDOWS_MAX_PATH` characters when the path is a Windows one (a drive or
    a share: the server runs on Windows, or under wine). The Local API does not say which
    system a server runs on; a POSIX path has no such limit (4,096 bytes on Linux) and is
    left to the server. Raises :class:`FileWriteError` naming the local file."""
    if len(server_path) <= WINDOWS_MAX_PATH or not PureWindowsPath(server_path).drive:
        return
    raise FileWriteError(
        Path(local),
        f"the server would save the {what} to a path of {len(server_path)} characters "
        f"({server_path}); a server on Windows takes at most {WINDOWS_MAX_PATH}",
        hint="use a shorter output folder (outputs.root, --output) or shorter output names, "
        "or map the output folder to a shorter server folder (path_map)",
    )


class FolderResolver:
    """``Path.resolve()`` for many files in a few folders, each folder resolved once.

    A resolve checks every component of the path for a symbolic link; a build imports its
    models from one or two folders. Here a file that is not itself a link is joined to its
    folder's resolved path (the same path ``resolve()`` gives), and a link, a relative path
    or a name like ``..`` is resolved whole. On Windows every path is resolved whole (there
    ``resolve()`` also gives each name its case on disk). Keep one for a short task, such
    as one import of a build: a folder turned into a link meanwhile is not seen.
    """

    def __init__(self) -> None:
        #: Resolved folders' texts by the folder's text as given (the text before the path's
        #: last ``/``), each ending in ``/``: looked up by a string, not by a ``Path``.
        self._texts: dict[str, str] = {}

    def resolve(self, path: Path) -> Path:
        """``path.resolve()``, by :meth:`resolve_text`."""
        return Path(self.resolve_text(path))

    def resolve_text(self, path: Path) -> str:
        """The text of ``path.resolve()``: what a model's import sends, without a ``Path`` built
        for the file (about twenty calls per model, after each wait for the
        server). A link, a relative path or an odd name is resolved whole, as above."""
        text = str(path)
        folder_text, _, name = text.rpartition("/")
        if (
            not _POSIX
            # Not absolute, or a file at the root ("/a.stl": its folder's text is empty).
            or not folder_text.startswith("/")
            or name in ("", ".", "..")
            or os.path.islink(text)
        ):
            return str(path.resolve())
        folder = self._texts.get(folder_text)
        if folder is None:
            resolved = str(Path(folder_text).resolve())
            # The root is the one resolved folder whose text already ends in "/".
            folder = self._texts[folder_text] = (
                resolved if resolved.endswith("/") else resolved + "/"
            )
        return folder + name

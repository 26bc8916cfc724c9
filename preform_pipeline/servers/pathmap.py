"""Local paths → the paths a server opens.

The Local API takes absolute OS paths on the server's own machine. A local server sees the
pipeline's paths as they are; a server under wine or on another machine sees the same files
through a drive or a share, so each server carries a path map (``/mnt/share`` → ``Z:\\``) and
the longest matching local folder wins.
"""

from __future__ import annotations

import ntpath
import os
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath, PureWindowsPath

from preform_pipeline.errors import ConfigError
from preform_pipeline.settings import PathMapping

__all__ = ["PathMapper", "server_path_style"]


def server_path_style(folder: str) -> str:
    """The separator a server folder uses: ``\\`` for a drive or UNC share, else ``/``."""
    if PureWindowsPath(folder).drive or "\\" in folder:
        return "\\"
    return "/"


def _join(folder: str, parts: Sequence[str]) -> str:
    sep = server_path_style(folder)
    base = folder.rstrip("\\/") if sep == "\\" else folder.rstrip("/")
    if sep == "\\" and base.endswith(":"):
        base += "\\"  # a bare drive "Z:" means its root, "Z:\"
    elif sep == "/" and not base:
        base = "/"
    if not parts:
        return base
    glue = "" if base.endswith(sep) else sep
    return base + glue + sep.join(parts)


def _where_named(said: str, folder: str) -> int | None:
    """Where ``said`` first names a path in the server folder ``folder`` (or the folder
    itself), or None. A server may quote a Windows path as Python's repr does
    (``'Z:\\\\models'``), so a run of backslashes counts as one; drive and share paths match in
    any case, as Windows does."""
    windows = server_path_style(folder) == "\\"
    text = re.sub(r"\\+", r"\\", said) if windows else said
    base = re.sub(r"\\+", r"\\", folder).rstrip("\\/") if windows else folder.rstrip("/")
    if not base:  # the server's root: any absolute path it quotes
        found = re.search(r"(?<=['\"\s])[\\/]", text)
        return found.start() if found else None
    flags = re.IGNORECASE if windows else 0
    before = r"(?<![\w\\/])" if windows else r"(?<![\w/])"
    found = re.search(before + re.escape(base) + r"(?=[\\/'\"\s)]|$)", text, flags)
    return found.start() if found else None


def _absolute(path: PurePath) -> PurePath:
    """Make ``path`` absolute and drop ``..``: native paths against the current folder."""
    if isinstance(path, Path):
        return Path(os.path.abspath(path))
    if not path.is_absolute():
        raise ConfigError(f"{path}: a path sent to a server must be absolute")
    flavour = ntpath if isinstance(path, PureWindowsPath) else posixpath
    return type(path)(flavour.normpath(str(path)))


@dataclass(frozen=True)
class PathMapper:
    """Translates local paths for one server; no mappings means the identity (a local server).

    ``server`` names the server in error messages.
    """

    mappings: tuple[PathMapping, ...] = ()
    server: str = ""

    @property
    def identity(self) -> bool:
        return not self.mappings

    @property
    def mapped_folders(self) -> str:
        """The local folders this server reaches, for messages (``/mnt/share, /srv/x``)."""
        return ", ".join(str(m.local) for m in self.mappings)

    @property
    def who(self) -> str:
        return f"server {self.server}" if self.server else "this server"

    def check_hint(self, said: str) -> str:
        """What to check when the server did not find or could not use a path it was sent:
        the mapping that made the path the server's words ``said`` name first (the longest
        whose server folder holds it), or empty when no mapping made it (the identity, or words
        about something else: a map not applied is no lead)."""
        named = [(at, -len(m.remote), i, m) for i, m in enumerate(self.mappings)
                 if (at := _where_named(said, m.remote)) is not None]
        if not named:
            return ""
        mapping = min(named)[3]
        return (f"{self.who} is sent paths through its path_map: check that it sees "
                f"{mapping.local} as {mapping.remote}")

    def reaches(self, path: str | PurePath) -> bool:
        """True when the server can be sent ``path``: no map, or a mapped folder holds it."""
        local = _absolute(path if isinstance(path, PurePath) else Path(path))
        return self.identity or self._best(local) is not None

    def to_server(self, path: str | PurePath) -> str:
        """The absolute path string the server must be sent for local ``path``.

        Raises :class:`ConfigError` when no mapped folder contains ``path``.
        """
        local = _absolute(path if isinstance(path, PurePath) else Path(path))
        if self.identity:
            return str(local)
        best = self._best(local)
        if best is None:
            raise ConfigError(
                f"{local}: not inside any folder mapped for {self.who} ({self.mapped_folders})",
                hint="move the file under a mapped folder, or add a path_map entry for its "
                "folder in the settings",
            )
        mapping, parts = best
        return _join(mapping.remote, parts)

    def _best(self, local: PurePath) -> tuple[PathMapping, tuple[str, ...]] | None:
        """The mapping whose local folder holds ``local`` most closely, and the rest of it."""
        best: tuple[PathMapping, tuple[str, ...]] | None = None
        for mapping in self.mappings:
            try:
                relative = type(mapping.local)(local).relative_to(mapping.local)
            except (ValueError, TypeError):
                continue
            if best is None or len(mapping.local.parts) > len(best[0].local.parts):
                best = (mapping, relative.parts)
        return best

"""The pool's state folder: one small JSON file per running server it started.

A record names the server (PID, start time, host and instance, port, command line) and its
owner (the runner or daemon process: PID, start time, host and instance, liveness.py). It is
written as soon as the server is launched and removed when the pool stops it, so a record
that is still there names a server whose owner may have died without cleanup; the reaper
(reaper.py) decides. Files are written to a temporary name and renamed, so a reader never
sees half a record.

The folder is ``servers.state_dir``, by default ``servers/`` in the user's data folder (beside
the default job store): one folder per user and machine, shared by every run and daemon.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from preform_pipeline.atomicfile import (
    fitted_name,
    instance_tag,
    temporary_name,
    write_text_atomically,
)
from preform_pipeline.liveness import ProcessIdentity
from preform_pipeline.logging import get_logger
from preform_pipeline.settings import ServerSettings, default_store_path

__all__ = [
    "RECORD_SUFFIX",
    "RECORD_VERSION",
    "STATE_DIR_NAME",
    "ServerRecord",
    "ServerRecords",
    "default_state_dir",
    "state_dir_of",
]

RECORD_VERSION: Final = 1
RECORD_SUFFIX: Final = ".server.json"
#: Name of the state folder inside the user's data folder.
STATE_DIR_NAME: Final = "servers"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")

_log = get_logger(__name__)


def default_state_dir(
    env: Mapping[str, str] = os.environ, platform: str = sys.platform
) -> Path:
    """``servers/`` in the user's data folder (the folder of the default job store)."""
    return default_store_path(env, platform).parent / STATE_DIR_NAME


def state_dir_of(settings: ServerSettings) -> Path:
    """The configured state folder, or the default one."""
    return settings.state_dir if settings.state_dir is not None else default_state_dir()


@dataclass(frozen=True)
class ServerRecord:
    """A server the pool started, and the process that owns it."""

    server: ProcessIdentity
    owner: ProcessIdentity
    name: str
    port: int
    command: tuple[str, ...]
    started_at: datetime

    @property
    def file_name(self) -> str:
        return self.file_name_of(self.server.pid, self.server.host, self.server.instance)

    @staticmethod
    def file_name_of(pid: int, host: str, instance: str | None) -> str:
        """The record file of the server ``pid`` on ``host`` in ``instance``:
        ``<host>-<pid>-<instance tag>.server.json`` (two containers of one host name sharing
        the folder number their servers apart: :func:`~preform_pipeline.atomicfile.instance_tag`),
        cut to fit the file systems' 255 bytes when the host's name is that long (macOS
        takes host names of up to 255 bytes); its temporary is cut alike (``add``). Records
        named ``<host>-<pid>.server.json``, before names said the instance, are read alike."""
        return fitted_name(f"{_UNSAFE.sub('_', host)}-{pid}-{instance_tag(host, instance)}",
                           RECORD_SUFFIX)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": RECORD_VERSION,
            "server": self.server.to_json(),
            "owner": self.owner.to_json(),
            "name": self.name,
            "port": self.port,
            "command": list(self.command),
            "started_at": self.started_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: Any) -> ServerRecord:
        """Read a record; raises ValueError when it is not one this version wrote."""
        if not isinstance(data, dict) or data.get("version") != RECORD_VERSION:
            raise ValueError("not a server record of this version")
        port, command = data.get("port"), data.get("command")
        if not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"not a port: {port!r}")
        if not isinstance(command, list) or not all(isinstance(w, str) for w in command):
            raise ValueError("the command is not a list of words")
        try:
            started = datetime.fromisoformat(str(data.get("started_at")))
        except ValueError as exc:
            raise ValueError(f"not a start date: {data.get('started_at')!r}") from exc
        return cls(
            server=ProcessIdentity.from_json(data.get("server") or {}),
            owner=ProcessIdentity.from_json(data.get("owner") or {}),
            name=str(data.get("name", "")),
            port=port,
            command=tuple(command),
            started_at=started,
        )


class ServerRecords:
    """The record files in one state folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def add(self, record: ServerRecord) -> Path:
        """Write ``record`` (atomically); raises FileWriteError (an OSError) when the folder
        is not writable, leaving no temporary behind."""
        path = self.folder / record.file_name
        return write_text_atomically(
            path,
            json.dumps(record.to_json(), indent=1),
            temporary=path.with_name(temporary_name(path.name, f"{os.getpid()}.tmp")),
        )

    def remove(self, record: ServerRecord) -> None:
        """Forget ``record``; a record already gone is fine."""
        self.discard(self.folder / record.file_name)

    def discard(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def read_all(self) -> list[tuple[Path, ServerRecord | None]]:
        """Every record file with its record (None when it cannot be read: not ours)."""
        if not self.folder.is_dir():
            return []
        found: list[tuple[Path, ServerRecord | None]] = []
        for path in sorted(self.folder.glob("*" + RECORD_SUFFIX)):
            try:
                record: ServerRecord | None = ServerRecord.from_json(
                    json.loads(path.read_text(encoding="utf-8"))
                )
            except FileNotFoundError:
                continue  # its owner stopped it while we looked
            except (OSError, ValueError) as exc:
                _log.warning("server_record_unreadable", path=str(path), error=str(exc))
                record = None
            found.append((path, record))
        return found

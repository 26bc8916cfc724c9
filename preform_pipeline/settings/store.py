"""The ``store`` settings section: where the job store lives (a file, or a shared PostgreSQL).

```yaml
store:
  path: /var/lib/preform-pipeline/jobs.sqlite3   # unset: the user's data folder
  url: postgresql://pipeline@db.example:5432/jobs  # set: several nodes share this store
```

The URL never carries the password in practice: store.pgurl reads it from
``PREFORM_PIPELINE_STORE_PASSWORD``/``_FILE`` or libpq's own sources (docs/multi-node.md).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from preform_pipeline.settings.reading import SourceOf, resolve_path, unknown_source
from preform_pipeline.userpath import own_home

__all__ = [
    "DEFAULT_STORE_FILENAME",
    "JOBS_COMMAND",
    "REHEARSAL_STORE_FILENAME",
    "StoreSettings",
    "default_store_path",
    "rehearsal_store_path",
    "read_store_settings",
]

#: The job store's file name inside the user's data folder (see :func:`default_store_path`).
DEFAULT_STORE_FILENAME: Final = "jobs.sqlite3"
#: Where simulated runs that name no store record their jobs, beside the default store: a
#: rehearsal's prints are not real prints, so they must never make a real run skip a model.
REHEARSAL_STORE_FILENAME: Final = "rehearsal-jobs.sqlite3"
#: The ``jobs`` command as a hint names it when the store is the one ``jobs`` opens by itself
#: (``hotfolder.files.jobs_command`` names any other; parts below it take that text).
JOBS_COMMAND: Final = "preform-pipeline jobs"
#: The folder of this program inside the user's data folder.
_APP_DIR_NAME: Final = "preform-pipeline"


def default_store_path(
    env: Mapping[str, str] = os.environ, platform: str = sys.platform
) -> Path:
    """Where the job store lives unless configured: the user's data folder.

    Windows ``%LOCALAPPDATA%\\preform-pipeline``, macOS ``~/Library/Application Support/
    preform-pipeline``, elsewhere ``$XDG_DATA_HOME/preform-pipeline`` (``~/.local/share``).
    A local folder on purpose: SQLite's locking is unreliable on network shares.
    """
    home = own_home(env)
    if platform.startswith("win"):
        base = Path(env["LOCALAPPDATA"]) if env.get("LOCALAPPDATA") else home / "AppData" / "Local"
    elif platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(env["XDG_DATA_HOME"]) if env.get("XDG_DATA_HOME") else home / ".local" / "share"
    return base / _APP_DIR_NAME / DEFAULT_STORE_FILENAME


def rehearsal_store_path(store: Path, *, simulated: bool) -> Path:
    """The store a run records into: ``store``, except that a simulated run using the default
    store records into the rehearsal store beside it (a store chosen on purpose is kept)."""
    if simulated and store == default_store_path():
        return store.with_name(REHEARSAL_STORE_FILENAME)
    return store


@dataclass(frozen=True)
class StoreSettings:
    """The job store (hot folders, print verification, ``preform-pipeline jobs``)."""

    path: Path = field(default_factory=default_store_path)
    #: ``postgresql://user@host/db``: a PostgreSQL store shared by several nodes instead of
    #: the file (docs/multi-node.md). Never holds the password in practice: see store.pgurl.
    url: str | None = None
    #: This node's name on a shared store (None: the PC's name; docs/multi-node.md).
    node_id: str | None = None
    #: A node's claim on a build lasts this long unless renewed (None: the store's default).
    lease_s: float | None = None
    #: How long a starting node waits for a database that does not accept connections yet
    #: (None: hotfolder.storewait's default; 0: no wait).
    start_wait_s: float | None = None

    @property
    def location(self) -> str | Path:
        """What ``store.open_store`` opens: the URL when set, else the file."""
        return self.url if self.url else self.path


def read_store_settings(
    raw: Mapping[str, Any], base: Path, source_of: SourceOf = unknown_source
) -> StoreSettings:
    """The section from its raw mapping (already valid against the schema)."""
    path = raw.get("path")
    return StoreSettings(
        path=resolve_path(path, base, ["store", "path"], source_of) if path
        else default_store_path(),
        url=raw.get("url") or None,
        node_id=raw.get("node_id") or None,
        lease_s=float(raw["lease_s"]) if raw.get("lease_s") is not None else None,
        start_wait_s=(float(raw["start_wait_s"]) if raw.get("start_wait_s") is not None
                      else None),
    )

"""Shared by the tests of moves cut short by a kill: an inbox whose folders lie on two disks,
and a child life (``cut_short_child.py``) killed at a chosen directory flush."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

from daemon_support import Script, make_daemon, run_daemon_once
from structlog.testing import capture_logs

from preform_pipeline.settings.hotfolder import InboxSettings, OutcomeFolders
from preform_pipeline.store import SqliteJobStore

__all__ = ["WAIT_S", "daemon_started_once", "inbox_across", "killed_mid_move"]

HERE = Path(__file__).parent
#: How long the child may take to reach its kill (a loaded machine included).
WAIT_S = 60.0


def inbox_across(tmp_path: Path, folders: OutcomeFolders) -> InboxSettings:
    """The daemon's inbox (``tmp_path/inbox``, as ``make_daemon`` makes it) with its
    processing/, done/ and failed/ where ``folders`` puts them, all made."""
    inbox = InboxSettings(path=tmp_path / "inbox", recipe=tmp_path / "r.yaml", folders=folders)
    for kind in ("processing", "done", "failed"):
        inbox.folder(kind).mkdir(parents=True)
    return inbox


def killed_mid_move(python_exe: str, database: Path, inbox: InboxSettings, *,
                    kill_at: int = 1, kill_in: Path | None = None, **action: Any) -> None:
    """Run ``action`` (see ``cut_short_child.py``) in a child killed after its
    ``kill_at``-th rename into ``kill_in`` (failed/ unless given; with ``kill_below=True``,
    into any folder inside it)."""
    spec = {"database": str(database), "inbox": str(inbox.path),
            "processing": str(inbox.folder("processing")),
            "done": str(inbox.folder("done")), "failed": str(inbox.folder("failed")),
            "kill_in": str(kill_in or inbox.folder("failed")), "kill_at": kill_at, **action}
    child = subprocess.run(
        [python_exe, str(HERE / "cut_short_child.py"), json.dumps(spec)],
        timeout=WAIT_S, capture_output=True, text=True, check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr


def daemon_started_once(tmp_path: Path, database: Path, script: Script, recipe: Path,
                        inbox: InboxSettings) -> list[Any]:
    """The next life: the real daemon started on ``database`` with ``inbox``'s folders, run
    until idle; the structured log events it wrote."""
    with SqliteJobStore(database) as store, capture_logs() as logs:
        run_daemon_once(make_daemon(tmp_path, store, script, recipe,
                                    inbox={"folders": inbox.folders}))
    return logs

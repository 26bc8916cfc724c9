"""A hot-folder daemon's life that the notice tests kill: it fails every build of the file
dropped before it starts, so its case goes to failed/ and the daemon sends ``case_failed`` to
the webhook named on the command line (argv: test folder, recipe, webhook URL)."""

from __future__ import annotations

import sys
from pathlib import Path

from daemon_support import Script, make_daemon, run_daemon_once

from preform_pipeline.store import SqliteJobStore
from preform_pipeline.verify.notify import Notifier

__all__: list[str] = []

if __name__ == "__main__":
    folder, recipe, webhook = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    script = Script(fleet_dir=folder / "fleet", fail=lambda _build: "label refused: too long")
    with SqliteJobStore(folder / "jobs.sqlite3") as store:
        run_daemon_once(make_daemon(folder, store, script, recipe,
                                    notifier=Notifier(webhook_url=webhook, max_attempts=1)))

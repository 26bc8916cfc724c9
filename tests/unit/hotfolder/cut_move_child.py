"""A daemon's life that is killed in the middle of a settle's move to another disk: after the
copy is renamed into failed/ and before the file in processing/ is removed (argv: the job
store's file, the inbox, the done/ and failed/ folders, the job's id).

The job failed: its file goes to failed/ (on the other disk) beside its note.

The kill is the real thing (SIGKILL to itself, nothing runs after it); the directory flush
that comes between the rename and the removal is the point where it lands.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from preform_pipeline.hotfolder import files
from preform_pipeline.hotfolder.intake import Intake
from preform_pipeline.settings.hotfolder import InboxSettings, OutcomeFolders
from preform_pipeline.store import SqliteJobStore

__all__: list[str] = []

#: The failed job's note (what the test expects beside the file).
NOTE = "What failed: preparation\n"


def _killed_after_the_rename_into(outcome: Path) -> None:
    flush = files._fsync_dir

    def flush_then_die(folder: Path) -> None:
        flush(folder)
        if folder == outcome:
            os.kill(os.getpid(), signal.SIGKILL)

    files._fsync_dir = flush_then_die


if __name__ == "__main__":
    database, inbox_path, done, failed = (Path(a) for a in sys.argv[1:5])
    job_id = int(sys.argv[5])
    inbox = InboxSettings(path=inbox_path, recipe=inbox_path.parent / "r.yaml",
                          folders=OutcomeFolders(done=str(done), failed=str(failed)))
    _killed_after_the_rename_into(failed)
    with SqliteJobStore(database) as store:
        Intake(store, [inbox]).settle(store.get_job(job_id), ok=False, note=NOTE)
    sys.exit("the settle's move ended without being killed")

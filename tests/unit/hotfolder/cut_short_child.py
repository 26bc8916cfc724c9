"""A life of the hot folder's intake killed in the middle of a move to another disk: after
the copy is renamed into its folder and before the source is removed (argv: one JSON object).

The object names the job store's file (``database``), the inbox and its ``done`` and
``failed`` folders (absolute; ``processing`` too, optionally), the folder whose directory
flush is the kill point (``kill_in``; with ``"kill_below": true``, any folder inside it, as
``processing/<key>/`` whose key is made by the life) and which flush of it (``kill_at``, 1
for the first: a settle with a sidecar flushes failed/ once for the model, then once for the
sidecar). Then what the life does: ``{"settle": <job id>}`` settles a failed job to failed/
(its note ``NOTE``), ``{"requeue": <job id>}`` takes a retried job's file back into
processing/, ``{"refuse": "<name>"}`` takes the inbox file of that name as a dropped file
that is not a model, which is refused to failed/, ``{"take": "<name>"}`` takes it as a
dropped model, into processing/, or ``{"case": "<name>"}`` takes the inbox folder of that
name as a dropped case (its ``.stl`` files in name order, its other files as others).

The kill is the real thing (SIGKILL to itself, nothing runs after it); the directory flush
that comes between the rename and the removal (``files._fsync_dir``) is where it lands.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from preform_pipeline.hotfolder import Drop, files
from preform_pipeline.hotfolder.intake import Intake
from preform_pipeline.settings.hotfolder import InboxSettings, OutcomeFolders
from preform_pipeline.store import SqliteJobStore

__all__ = ["NOTE"]

#: The failed job's note (what the tests expect beside the file).
NOTE = "What failed: preparation\n"


def _killed_at_flush(folder: Path, nth: int, *, below: bool = False) -> None:
    flush = files._fsync_dir
    seen = 0

    def flush_then_die(flushed: Path) -> None:
        nonlocal seen
        flush(flushed)
        if flushed == folder or (below and folder in flushed.parents):
            seen += 1
            if seen == nth:
                os.kill(os.getpid(), signal.SIGKILL)

    files._fsync_dir = flush_then_die


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    inbox_path = Path(spec["inbox"])
    inbox = InboxSettings(path=inbox_path, recipe=inbox_path.parent / "r.yaml",
                          folders=OutcomeFolders(processing=spec.get("processing", "processing"),
                                                 done=spec["done"], failed=spec["failed"]))
    _killed_at_flush(Path(spec["kill_in"]), int(spec["kill_at"]),
                     below=bool(spec.get("kill_below")))
    with SqliteJobStore(Path(spec["database"])) as store:
        intake = Intake(store, [inbox])
        if "settle" in spec:
            intake.settle(store.get_job(int(spec["settle"])), ok=False, note=NOTE)
        elif "requeue" in spec:
            intake.requeue(store.get_job(int(spec["requeue"])))
        elif "case" in spec:
            root = inbox_path / spec["case"]
            found = sorted(root.iterdir())
            models = tuple(p for p in found if p.suffix == ".stl")
            intake.take(Drop(inbox, root, "hot", True, models=models,
                             others=tuple(p for p in found if p not in models)))
        elif "take" in spec:
            path = inbox_path / spec["take"]
            intake.take(Drop(inbox, path, "hot", False, models=(path,)))
        else:
            path = inbox_path / spec["refuse"]
            intake.take(Drop(inbox, path, "hot", False, others=(path,)))
    sys.exit("the move ended without being killed")

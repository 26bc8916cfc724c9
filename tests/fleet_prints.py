"""A simulated printer finishing its print now, as the fleet folder records it.

The simulators (PreFormServer's and the Dashboard's) read a printer's state from the jobs in
the fleet folder (``preform_pipeline/simulator/fleet.py``): a printer prints until its last
job's ``ends_at``. A test that needs a printer busy while something waits for it, then free,
lets the print run long (a wide margin on a loaded machine) and ends it here when the wait has
been seen, rather than sleeping through a print sized to the machine's speed.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["end_print"]


def end_print(fleet: Path) -> str:
    """End the print that would end first among those still printing, now, as its printer
    does when it finishes: its job file's ``ends_at`` (the fleet folder's record, which the
    simulators read for a printer's state) set to this moment, written aside and renamed in
    as the simulator writes it. The printer freed (one at a time: each free printer is one
    choice among the waiting builds); its name."""
    now = datetime.now(timezone.utc)
    running = [(datetime.fromisoformat(str(job["ends_at"]).replace("Z", "+00:00")), path, job)
               for path in sorted((fleet / "jobs").glob("*.json"))
               for job in [json.loads(path.read_text(encoding="utf-8"))]]
    _, path, job = min((r for r in running if r[0] > now), key=lambda r: r[0])
    aside = path.with_name(path.name + ".tmp")
    aside.write_text(json.dumps({**job, "ends_at": now.isoformat()}), encoding="utf-8")
    os.replace(aside, path)
    return str(job["printer"])

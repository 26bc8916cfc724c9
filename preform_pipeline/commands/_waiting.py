"""``preform-pipeline jobs waiting``: the builds waiting for a printer, in dispatch order.

One row per waiting build: its key, priority, since when it waits and for how long, which
printers it may go to, and its jobs. The order is the order dispatch sends them in (priority,
then the longest waiting). ``jobs`` lists these jobs too (state ``waiting_for_printer``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from preform_pipeline.dispatch.waiting import waiting_order
from preform_pipeline.printing.target import PrintTarget
from preform_pipeline.store import Build, JobState
from preform_pipeline.store.opening import describe_store, open_store, store_exists
from preform_pipeline.wording import aligned, counted

__all__ = ["waiting_rows", "write_waiting"]


def _age(seconds: float) -> str:
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{int(seconds) % 60:02d}s"


def waiting_rows(builds: Sequence[Build], now: datetime) -> list[dict[str, Any]]:
    """The waiting builds as data, in dispatch order."""
    rows = []
    for build in waiting_order(builds):
        since = build.waiting_since or build.updated_at
        rows.append({
            "job_key": build.job_key,
            "recipe": build.recipe,
            "priority": build.priority,
            "waiting_since": since.astimezone(timezone.utc).isoformat(),
            "waited_s": round((now - since).total_seconds(), 1),
            "for": PrintTarget.from_json(build.print_target).describe(),
            "job_ids": list(build.job_ids),
        })
    return rows


def write_waiting(path: Path | str, fmt: str, out: TextIO) -> int:
    """Print the waiting builds of the store at ``path`` (a file or a PostgreSQL URL;
    ``fmt``: text or json); exit 0."""
    builds: Sequence[Build] = ()
    if store_exists(path):
        with open_store(path, create=False, read_only=True) as store:
            builds = store.list_builds(state=JobState.WAITING_FOR_PRINTER)
    rows = waiting_rows(builds, datetime.now(timezone.utc))
    if fmt == "json":
        print(json.dumps({"store": describe_store(path), "waiting": rows}, indent=2), file=out)
        return 0
    if not rows:
        print("no builds waiting for a printer", file=out)
        return 0
    table = [("KEY", "PRIORITY", "WAITING SINCE (UTC)", "WAITED", "FOR", "JOBS")]
    table += [
        (r["job_key"], str(r["priority"]), r["waiting_since"][:19].replace("T", " "),
         _age(r["waited_s"]), r["for"], ",".join(str(i) for i in r["job_ids"]))
        for r in rows
    ]
    for line in aligned(table):  # a printer's name is the fleet's: shown as escapes
        print(line, file=out)
    print(f"{counted(len(rows), 'build')} waiting for a printer", file=out)
    return 0

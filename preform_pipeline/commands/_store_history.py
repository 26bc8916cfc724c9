"""A job store that has forgotten the prints an output folder's earlier runs made.

``run`` skips models its job store records as printed: that store is what makes a repeat
from cron print nothing twice. A store deleted (or another one named) knows none of them,
and the next run would print the whole folder again, in silence under ``--quiet``. So a run
whose store holds no job of its recipe looks at the output folder's earlier run reports
(newest first): one of the same recipe, kind (simulated or not) and not a dry run that made
a job is the proof that another store recorded prints here, and the run is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from preform_pipeline.errors import StoreError
from preform_pipeline.store import JobStore

__all__ = ["EarlierPrints", "earlier_prints", "forgotten_prints_error"]


@dataclass(frozen=True)
class EarlierPrints:
    """The newest earlier run report naming a job this store does not know."""

    report: Path
    run_id: str
    job_keys: tuple[str, ...]


def earlier_prints(
    root: Path, store: JobStore, *, recipe: str, simulated: bool
) -> EarlierPrints | None:
    """The newest run report below ``root`` of prints ``store`` has no job of ``recipe``
    for; None when the store has one (it is the store those runs used, or it has been used
    since) or no such report is there."""
    if store.list_jobs(recipe=recipe, limit=1):
        return None
    try:
        reports = sorted((root / "reports").glob("*.json"), reverse=True)  # run ids by time
    except OSError:
        return None
    for path in reports:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not ours to judge: a damaged or foreign file proves nothing
        if not isinstance(data, dict) or data.get("recipe") != recipe or data.get(
                "dry_run") is not False or data.get("simulated") is not simulated:
            continue
        builds = data.get("builds")
        keys = tuple(str(b["job_key"]) for b in builds if isinstance(b, dict)
                     and b.get("job_key")) if isinstance(builds, list) else ()
        if keys:
            return EarlierPrints(path, str(data.get("run_id") or path.stem), keys)
    return None


def forgotten_prints_error(found: EarlierPrints, store_name: str, root: Path) -> StoreError:
    """What a refused run says: which store, which earlier run, and the two ways on."""
    shown = ", ".join(found.job_keys[:3]) + (", ..." if len(found.job_keys) > 3 else "")
    return StoreError(
        f"the job store {store_name} holds no job of this recipe, but run {found.run_id} "
        f"printed into {root} before ({shown}; {found.report.name}): the store that recorded "
        "those prints is gone or another one is named, so every model of the folders would "
        "be printed again",
        hint="name the store that recorded them (--store, or store.path or store.url in the "
        "settings); or, to print the folders' models again on purpose (move the ones "
        "already printed out first), run once with --reprint",
    )

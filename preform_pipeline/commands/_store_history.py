"""A job store that has forgotten the prints an output folder's earlier runs made.

``run`` skips models its job store records as printed: that store is what makes a repeat
from cron print nothing twice. A store deleted (or another one named) knows none of them,
and the next run would print the whole folder again, in silence under ``--quiet``. So a run
whose store holds no job of its recipe looks at the output folder's earlier run reports
(newest first): one of the same recipe, kind (simulated or not) and not a dry run, with a
build of a model still in this run's folders, is the proof that another store recorded
prints of those models, and the run is refused. A report whose models are not in this run's
folders proves nothing of them: a hot folder's batches or another inbox writing into the
same output folder, or models moved out before a ``--reprint`` run (the refusal's advice),
hold up no run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from preform_pipeline.errors import StoreError
from preform_pipeline.outputfolders import REPORTS_FOLDER
from preform_pipeline.store import JobStore
from preform_pipeline.store.opening import describe_store

__all__ = ["EarlierPrints", "earlier_prints", "forgotten_prints_error"]


@dataclass(frozen=True)
class EarlierPrints:
    """The newest earlier run report naming a job this store does not know."""

    report: Path
    run_id: str
    job_keys: tuple[str, ...]


def earlier_prints(
    root: Path, store: JobStore, *, recipe: str, simulated: bool, models: Sequence[Path]
) -> EarlierPrints | None:
    """The newest run report below ``root`` of prints of models still in ``models`` (this
    run's files and folders) that ``store`` has no job of ``recipe`` for; None when the
    store has one (it is the store those runs used, or it has been used since) or no such
    report is there."""
    if store.list_jobs(recipe=recipe, limit=1):
        return None
    taken = tuple(_absolute(path) for path in models)
    seen: dict[str, bool] = {}  # a model in many reports is looked at once
    try:
        reports = sorted((root / REPORTS_FOLDER).glob("*.json"), reverse=True)  # run ids by time
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
                     and b.get("job_key") and _any_still_in(b.get("source_files"), taken, seen)
                     ) if isinstance(builds, list) else ()
        if keys:
            return EarlierPrints(path, str(data.get("run_id") or path.stem), keys)
    return None


def _any_still_in(files: object, taken: Sequence[Path], seen: dict[str, bool]) -> bool:
    """Whether one of a report's ``source_files`` is still a file of this run's ``taken``
    (a file named, or one below a folder named). Compared as written, made absolute against
    this run's folder (as cron's line runs each time), without a look at links: a report of
    thousands of runs is read in a moment."""
    if not isinstance(files, list):
        return False
    for name in map(str, files):
        if name not in seen:
            path = _absolute(Path(name))
            seen[name] = any(path == t or path.is_relative_to(t) for t in taken) and (
                path.is_file())
        if seen[name]:
            return True
    return False


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))


def forgotten_prints_error(found: EarlierPrints, location: Path | str, root: Path) -> StoreError:
    """What a refused run says: which store (a URL without its password: cron mails this),
    which earlier run, and the ways on."""
    store_name = describe_store(location)
    shown = ", ".join(found.job_keys[:3]) + (", ..." if len(found.job_keys) > 3 else "")
    return StoreError(
        f"the job store {store_name} holds no job of this recipe, but run {found.run_id} "
        f"printed into {root} before ({shown}; {found.report.name}): the store that recorded "
        "those prints is gone or another one is named, so the models of those prints still "
        "in the folders would be printed again",
        hint="name the store that recorded them (--store, or store.path or store.url in the "
        "settings); or move the models already printed out of the folders; or, to print "
        "them again on purpose, run once with --reprint",
    )

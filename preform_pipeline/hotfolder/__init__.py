"""Hot folders: drop model files into a folder, get prepared (and printed) builds.

``preform-pipeline watch SETTINGS`` runs :class:`HotFolderDaemon`; docs/hotfolder.md explains
inboxes, completeness, cases and sidecars, batching, outcome folders, restarts and running it
as a service. Modules, one concern each:

============  ======================================================================
stability     when a file is complete (format rules, quiet period, injected clock)
watcher       watchdog observers (native or polling) and full scans
presence      whether an inbox is there: a share unmounted is away, not emptied
mounts        which mount a path is on: a bind mount of one disk told apart
sidecar       ``part.json`` / ``part.yaml`` values for a model or a case
intake        taking files: store first, then move; outcome folders
batcher       which taken files are prepared together, and when
files         atomic, never-overwriting moves; notes
daemon        the watch loop: drops, batches, worker threads, graceful stop
worker        one batch: plan, then store builds, then run (split callback, outcomes)
sharedpool    the one server pool of batches and dispatch; a refused one renewed, closed
recovery      resuming after a restart; interrupted prints through the print owner
outcomes      settling files into done/ or failed/ with reports and notes
decisions     the console's line for an operator's approval or rejection taking effect
whereabouts   where a taken file is now, as this machine sees it; whether a retry can run
============  ======================================================================

The ``hotfolders`` settings section lives in :mod:`preform_pipeline.settings.hotfolder`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from preform_pipeline.lazyexports import lazy_exports

if TYPE_CHECKING:
    from preform_pipeline.hotfolder.batcher import Batch, Batcher, BatchItem
    from preform_pipeline.hotfolder.daemon import (
        ExecutorFactory,
        HotFolderDaemon,
        PoolFactory,
        RunnerLike,
        load_recipes,
    )
    from preform_pipeline.hotfolder.intake import Drop, Intake, TakeResult
    from preform_pipeline.hotfolder.sidecar import SidecarValues, read_sidecar
    from preform_pipeline.hotfolder.stability import Check, StabilityTracker, Verdict
    from preform_pipeline.hotfolder.watcher import InboxWatcher, WatchRoot


__all__ = [
    "Batch",
    "BatchItem",
    "Batcher",
    "Check",
    "Drop",
    "ExecutorFactory",
    "HotFolderDaemon",
    "InboxWatcher",
    "Intake",
    "PoolFactory",
    "RunnerLike",
    "SidecarValues",
    "StabilityTracker",
    "TakeResult",
    "Verdict",
    "WatchRoot",
    "load_recipes",
    "read_sidecar",
]

#: Where each name lives: imported on first use (lazyexports.py), so importing one module of
#: the package does not import all the others.
_HOMES: Final = {
    "preform_pipeline.hotfolder.batcher": (
        "Batch",
        "Batcher",
        "BatchItem",
    ),
    "preform_pipeline.hotfolder.daemon": (
        "ExecutorFactory",
        "HotFolderDaemon",
        "PoolFactory",
        "RunnerLike",
        "load_recipes",
    ),
    "preform_pipeline.hotfolder.intake": (
        "Drop",
        "Intake",
        "TakeResult",
    ),
    "preform_pipeline.hotfolder.sidecar": (
        "SidecarValues",
        "read_sidecar",
    ),
    "preform_pipeline.hotfolder.stability": (
        "Check",
        "StabilityTracker",
        "Verdict",
    ),
    "preform_pipeline.hotfolder.watcher": (
        "InboxWatcher",
        "WatchRoot",
    ),
}

__getattr__ = lazy_exports(__name__, _HOMES)

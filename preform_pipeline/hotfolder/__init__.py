"""Hot folders: drop model files into a folder, get prepared (and printed) builds.

``preform-pipeline watch SETTINGS`` runs :class:`HotFolderDaemon`; docs/hotfolder.md explains
inboxes, completeness, cases and sidecars, batching, outcome folders, restarts and running it
as a service. Modules, one concern each:

============  ======================================================================
settings      the ``hotfolders`` settings section (frozen dataclasses)
stability     when a file is complete (format rules, quiet period, injected clock)
watcher       watchdog observers (native or polling) and full scans
sidecar       ``part.json`` / ``part.yaml`` values for a model or a case
intake        taking files: store first, then move; outcome folders
batcher       which taken files are prepared together, and when
files         atomic, never-overwriting moves; notes
daemon        the watch loop: drops, batches, worker threads, graceful stop
worker        one batch: plan, then store builds, then run (split callback, outcomes)
recovery      resuming after a restart; interrupted prints through the print owner
outcomes      settling files into done/ or failed/ with reports and notes
============  ======================================================================

``config.load_settings`` imports :mod:`.settings`, so this package imports its other
modules lazily (on first use of a name): the daemon depends on the executor, which depends on
the configuration.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
    from preform_pipeline.hotfolder.settings import (
        BatchingSettings,
        HotFolderSettings,
        InboxSettings,
        OutcomeFolders,
        read_hotfolder_settings,
    )
    from preform_pipeline.hotfolder.sidecar import SidecarValues, read_sidecar
    from preform_pipeline.hotfolder.stability import Check, StabilityTracker, Verdict
    from preform_pipeline.hotfolder.watcher import InboxWatcher, WatchRoot

__all__ = [
    "Batch",
    "BatchItem",
    "Batcher",
    "BatchingSettings",
    "Check",
    "Drop",
    "ExecutorFactory",
    "HotFolderDaemon",
    "HotFolderSettings",
    "InboxSettings",
    "InboxWatcher",
    "Intake",
    "OutcomeFolders",
    "PoolFactory",
    "RunnerLike",
    "SidecarValues",
    "StabilityTracker",
    "TakeResult",
    "Verdict",
    "WatchRoot",
    "load_recipes",
    "read_hotfolder_settings",
    "read_sidecar",
]

_HOMES = {
    "batcher": ("Batch", "BatchItem", "Batcher"),
    "daemon": ("ExecutorFactory", "HotFolderDaemon", "PoolFactory", "RunnerLike",
               "load_recipes"),
    "intake": ("Drop", "Intake", "TakeResult"),
    "settings": ("BatchingSettings", "HotFolderSettings", "InboxSettings", "OutcomeFolders",
                 "read_hotfolder_settings"),
    "sidecar": ("SidecarValues", "read_sidecar"),
    "stability": ("Check", "StabilityTracker", "Verdict"),
    "watcher": ("InboxWatcher", "WatchRoot"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value

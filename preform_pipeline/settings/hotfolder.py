"""The ``hotfolders`` settings section: inboxes, batching, duplicates, outcome folders, stopping.

```yaml
hotfolders:
  inboxes:
    - path: /mnt/share/inbox          # relative paths: relative to the settings file
      recipe: recipes/dental.yaml     # files and case folders directly in the inbox
      routes: [recipes/hollow.yaml]   # inbox/<recipe name>/... uses that recipe
      mode: polling                   # native (file system events) | polling (network shares)
      poll_interval_s: 2
      quiet_period_s: 5
  batching: {window_s: 10, max_models: 50, cutoff_time: "17:30", min_fill: 0.3}
  duplicates: skip                    # skip | print
  stop_deadline_s: 60
```

Values are frozen dataclasses with ``DEFAULT_*`` constants; :func:`read_hotfolder_settings`
turns the raw (schema-validated) mapping into them. :func:`preform_pipeline.settings.load_settings`
calls it, so the section arrives as ``Settings.hotfolders``. The schema lives in
``schemas/settings.schema.json`` (``$defs.hotfolders``); docs/hotfolder.md explains each key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any, Final, Literal

from preform_pipeline.errors import ConfigError
from preform_pipeline.settings.reading import SourceOf, resolve_path, unknown_source

__all__ = [
    "DEFAULT_DUPLICATES",
    "DEFAULT_INCOMPLETE_TIMEOUT_S",
    "DEFAULT_MAX_HOLD_S",
    "DEFAULT_MAX_MODELS",
    "DEFAULT_MIN_FILL",
    "DEFAULT_MODE",
    "DEFAULT_POLL_INTERVAL_S",
    "DEFAULT_QUIET_PERIOD_S",
    "DEFAULT_RESCAN_INTERVAL_S",
    "DEFAULT_STOP_DEADLINE_S",
    "DEFAULT_WINDOW_S",
    "DUPLICATE_POLICIES",
    "WATCH_MODES",
    "BatchingSettings",
    "DuplicatePolicy",
    "HotFolderSettings",
    "InboxSettings",
    "OutcomeFolders",
    "WatchMode",
    "parse_time_of_day",
    "read_hotfolder_settings",
]

WatchMode = Literal["native", "polling"]
DuplicatePolicy = Literal["skip", "print"]
WATCH_MODES: Final[tuple[WatchMode, ...]] = ("native", "polling")
DUPLICATE_POLICIES: Final[tuple[DuplicatePolicy, ...]] = ("skip", "print")

#: File system events are immediate and cheap on a local disk; network shares need polling.
DEFAULT_MODE: Final[WatchMode] = "native"
#: A network share is listed this often in polling mode; listing a big share costs the server.
DEFAULT_POLL_INTERVAL_S: Final = 2.0
#: Files without a completeness rule (OBJ, sidecars) are taken when their size and mtime have
#: not changed for this long. A copy over a slow link pauses for a second or two at most.
DEFAULT_QUIET_PERIOD_S: Final = 5.0
#: An STL or 3MF that never becomes complete (a truncated upload) is taken anyway after this
#: long without change, so it ends in failed/ with the reason instead of sitting forever.
DEFAULT_INCOMPLETE_TIMEOUT_S: Final = 600.0
#: Files that arrive within this many seconds of the first one are prepared together.
DEFAULT_WINDOW_S: Final = 10.0
#: Most models one batch takes; the planner may still need several builds for them.
DEFAULT_MAX_MODELS: Final = 50
#: 0: every build is released however empty its platform is.
DEFAULT_MIN_FILL: Final = 0.0
#: A build held back for min_fill goes anyway after this long, so a lone file still prints.
DEFAULT_MAX_HOLD_S: Final = 3600.0
DEFAULT_DUPLICATES: Final[DuplicatePolicy] = "skip"
#: SIGTERM gives in-flight builds this long to finish before they are stopped and resumed on
#: the next start; service managers wait 90 s (systemd) before they kill.
DEFAULT_STOP_DEADLINE_S: Final = 60.0
#: Native events can be lost (an overflowing inotify queue, a share remounted): every inbox is
#: listed again this often, so a file is never overlooked for long.
DEFAULT_RESCAN_INTERVAL_S: Final = 60.0


@dataclass(frozen=True)
class OutcomeFolders:
    """Names of the folders files move to: relative to the inbox (the default, so moves stay on
    one file system and are atomic), or absolute paths."""

    processing: str = "processing"
    done: str = "done"
    failed: str = "failed"


@dataclass(frozen=True)
class InboxSettings:
    """One watched folder and the recipes it feeds.

    ``recipe`` takes files and case folders dropped directly into the inbox; each recipe in
    ``routes`` takes what is dropped into ``inbox/<its name>/``. At least one of them is set.
    """

    path: Path
    recipe: Path | None = None
    routes: tuple[Path, ...] = ()
    mode: WatchMode = DEFAULT_MODE
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S
    quiet_period_s: float = DEFAULT_QUIET_PERIOD_S
    incomplete_timeout_s: float = DEFAULT_INCOMPLETE_TIMEOUT_S
    folders: OutcomeFolders = field(default_factory=OutcomeFolders)

    def folder(self, kind: Literal["processing", "done", "failed"]) -> Path:
        """The absolute outcome folder of ``kind`` for this inbox."""
        name = Path(getattr(self.folders, kind))
        return name if name.is_absolute() else self.path / name

    @property
    def reserved_names(self) -> frozenset[str]:
        """Top-level names in the inbox that are outcome folders, never drops."""
        names = set()
        for kind in ("processing", "done", "failed"):
            value = Path(getattr(self.folders, kind))
            if not value.is_absolute() and len(value.parts) >= 1:
                names.add(value.parts[0])
        return frozenset(names)


@dataclass(frozen=True)
class BatchingSettings:
    """When taken files are released for preparation (docs/hotfolder.md, "Batching")."""

    window_s: float = DEFAULT_WINDOW_S
    max_models: int = DEFAULT_MAX_MODELS
    cutoff_time: time | None = None
    min_fill: float = DEFAULT_MIN_FILL
    max_hold_s: float = DEFAULT_MAX_HOLD_S


@dataclass(frozen=True)
class HotFolderSettings:
    """The whole ``hotfolders`` section. ``output_root`` None: each recipe's ``outputs.root``."""

    inboxes: tuple[InboxSettings, ...] = ()
    batching: BatchingSettings = field(default_factory=BatchingSettings)
    duplicates: DuplicatePolicy = DEFAULT_DUPLICATES
    stop_deadline_s: float = DEFAULT_STOP_DEADLINE_S
    rescan_interval_s: float = DEFAULT_RESCAN_INTERVAL_S
    #: Take links that point outside the inbox (off: they go to failed/ with a note).
    follow_symlinks: bool = False
    output_root: Path | None = None
    #: Copy each source file to this node before import (None: when the node shares its
    #: store with others, i.e. on a PostgreSQL store; docs/multi-node.md).
    local_copies: bool | None = None
    #: The node's cache folder for those copies (None: ``local-copies/<node>`` in the user's
    #: data folder).
    local_copy_dir: Path | None = None
    #: Prune the output folders' reports, logs, checkpoints and .form outputs older than this
    #: many days, at the daemon's start and daily (``run.retention_days``' rule); None: keep.
    retention_days: float | None = None


def parse_time_of_day(text: str) -> time:
    """``"17:30"`` or ``"17:30:15"`` as a time; ValueError otherwise."""
    parts = text.strip().split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        raise ValueError(f"expected HH:MM or HH:MM:SS, got {text!r}")
    numbers = [int(p) for p in parts] + [0]
    return time(numbers[0], numbers[1], numbers[2])


def _inbox(
    index: int,
    raw: Mapping[str, Any],
    base: Path,
    source_of: SourceOf,
) -> InboxSettings:
    where: list[str | int] = ["hotfolders", "inboxes", index]
    recipe = raw.get("recipe")
    routes = tuple(resolve_path(str(r), base, [*where, "routes", i], source_of)
                   for i, r in enumerate(raw.get("routes", ())))
    if recipe is None and not routes:
        raise ConfigError(
            f"$.hotfolders.inboxes[{index}]: names no recipe and no routes, so nothing it "
            "receives could be prepared",
            source=source_of(where),
            hint="add `recipe: path/to/recipe.yaml` (or `routes: [...]`) to the inbox",
        )
    folders_raw = raw.get("folders", {})
    defaults = OutcomeFolders()
    folders = OutcomeFolders(
        processing=str(folders_raw.get("processing", defaults.processing)),
        done=str(folders_raw.get("done", defaults.done)),
        failed=str(folders_raw.get("failed", defaults.failed)),
    )
    if len({folders.processing, folders.done, folders.failed}) != 3:
        raise ConfigError(
            f"$.hotfolders.inboxes[{index}].folders: processing, done and failed must be "
            "three different folders",
            source=source_of([*where, "folders"]),
        )
    inbox = InboxSettings(
        path=resolve_path(str(raw["path"]), base, [*where, "path"], source_of).absolute(),
        recipe=resolve_path(str(recipe), base, [*where, "recipe"], source_of).absolute()
        if recipe is not None else None,
        routes=tuple(r.absolute() for r in routes),
        mode=raw.get("mode", DEFAULT_MODE),
        poll_interval_s=float(raw.get("poll_interval_s", DEFAULT_POLL_INTERVAL_S)),
        quiet_period_s=float(raw.get("quiet_period_s", DEFAULT_QUIET_PERIOD_S)),
        incomplete_timeout_s=float(
            raw.get("incomplete_timeout_s", DEFAULT_INCOMPLETE_TIMEOUT_S)
        ),
        folders=folders,
    )
    if inbox.incomplete_timeout_s < inbox.quiet_period_s:
        raise ConfigError(
            f"$.hotfolders.inboxes[{index}].incomplete_timeout_s: is shorter than "
            "quiet_period_s",
            source=source_of([*where, "incomplete_timeout_s"]),
            hint="an incomplete file must be given at least the quiet period to finish",
        )
    return inbox


def read_hotfolder_settings(
    raw: Mapping[str, Any],
    base: Path,
    source_of: SourceOf = unknown_source,
) -> HotFolderSettings:
    """The section from its raw mapping (already valid against the schema).

    Relative paths are relative to ``base`` (the settings file's folder). Raises ConfigError
    for what the schema cannot say: an inbox without recipes, a bad cutoff time, two inboxes
    on one folder.
    """
    inboxes = tuple(
        _inbox(i, item, base, source_of) for i, item in enumerate(raw.get("inboxes", ()))
    )
    seen: dict[Path, int] = {}
    for index, inbox in enumerate(inboxes):
        if inbox.path in seen:
            raise ConfigError(
                f"$.hotfolders.inboxes[{index}].path: {inbox.path} is already inbox "
                f"{seen[inbox.path]}",
                source=source_of(["hotfolders", "inboxes", index, "path"]),
                hint="give each folder one entry; route subfolders with `routes`",
            )
        seen[inbox.path] = index
    batch_raw = raw.get("batching", {})
    cutoff_text = batch_raw.get("cutoff_time")
    cutoff: time | None = None
    if cutoff_text is not None:
        try:
            cutoff = parse_time_of_day(str(cutoff_text))
        except ValueError as exc:
            raise ConfigError(
                f"$.hotfolders.batching.cutoff_time: {exc}",
                source=source_of(["hotfolders", "batching", "cutoff_time"]),
                hint='write the time of day as "17:30" (quoted, 24-hour clock)',
            ) from None
    batching = BatchingSettings(
        window_s=float(batch_raw.get("window_s", DEFAULT_WINDOW_S)),
        max_models=int(batch_raw.get("max_models", DEFAULT_MAX_MODELS)),
        cutoff_time=cutoff,
        min_fill=float(batch_raw.get("min_fill", DEFAULT_MIN_FILL)),
        max_hold_s=float(batch_raw.get("max_hold_s", DEFAULT_MAX_HOLD_S)),
    )
    output_root = raw.get("output_root")
    return HotFolderSettings(
        inboxes=inboxes,
        batching=batching,
        duplicates=raw.get("duplicates", DEFAULT_DUPLICATES),
        stop_deadline_s=float(raw.get("stop_deadline_s", DEFAULT_STOP_DEADLINE_S)),
        rescan_interval_s=float(raw.get("rescan_interval_s", DEFAULT_RESCAN_INTERVAL_S)),
        follow_symlinks=bool(raw.get("follow_symlinks", False)),
        output_root=resolve_path(str(output_root), base, ["hotfolders", "output_root"],
                                 source_of).absolute() if output_root else None,
        local_copies=bool(raw["local_copies"]) if "local_copies" in raw else None,
        local_copy_dir=resolve_path(str(raw["local_copy_dir"]), base,
                                    ["hotfolders", "local_copy_dir"], source_of).absolute()
        if raw.get("local_copy_dir") else None,
        retention_days=None if raw.get("retention_days") is None
        else float(raw["retention_days"]),
    )

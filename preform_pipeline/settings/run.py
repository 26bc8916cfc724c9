"""The ``run`` section: how ``preform-pipeline run`` (from cron) takes files and keeps outputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "DEFAULT_INCOMPLETE_TIMEOUT_S",
    "DEFAULT_QUIET_PERIOD_S",
    "RunSettings",
    "read_run_settings",
]

#: A file of a format without a completeness rule is taken once unchanged this long.
DEFAULT_QUIET_PERIOD_S: Final = 5.0
#: A whole-looking rule that keeps failing this long takes the file anyway, so it fails with
#: the reader's reason instead of waiting for ever.
DEFAULT_INCOMPLETE_TIMEOUT_S: Final = 600.0


@dataclass(frozen=True)
class RunSettings:
    """``preform-pipeline run`` (cron-friendly): which files it takes, what it keeps.

    A model file is taken once its format rule says it is whole (STL size or ``endsolid``,
    3MF zip directory) or, for other formats, once it has not changed for
    ``quiet_period_s``; a whole-looking rule failing for ``incomplete_timeout_s`` takes it
    anyway so it fails with the reader's reason. ``retention_days`` prunes the output
    folder's reports, logs and checkpoints (and .form outputs) older than that many days
    at the start of each run; None keeps everything.
    """

    quiet_period_s: float = DEFAULT_QUIET_PERIOD_S
    incomplete_timeout_s: float = DEFAULT_INCOMPLETE_TIMEOUT_S
    retention_days: float | None = None


def read_run_settings(raw: Mapping[str, Any]) -> RunSettings:
    """The section from its raw mapping (already valid against the schema)."""
    days = raw.get("retention_days")
    return RunSettings(
        quiet_period_s=float(raw.get("quiet_period_s", DEFAULT_QUIET_PERIOD_S)),
        incomplete_timeout_s=float(raw.get("incomplete_timeout_s", DEFAULT_INCOMPLETE_TIMEOUT_S)),
        retention_days=None if days is None else float(days),
    )

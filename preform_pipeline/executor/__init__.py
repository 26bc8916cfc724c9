"""The executor: runs planned builds on the server pool (see :mod:`.runner`).

``run_plan(plan, pool, options=RunOptions(output_root=...), reporter=...)`` returns a
:class:`RunResult` with one :class:`BuildOutcome` per build; :mod:`.steps` maps each recipe
step to Local API calls; :mod:`.progress` draws progress; ``docs/running.md`` explains retries,
checkpoints, splitting and the print guarantee.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from preform_pipeline.lazyexports import lazy_exports

if TYPE_CHECKING:
    from preform_pipeline.executor.defaults import (
        DEFAULT_MAX_BUILD_ATTEMPTS,
        DEFAULT_STEP_TIMEOUT_S,
    )
    from preform_pipeline.executor.progress import (
        NullReporter,
        PlainReporter,
        Reporter,
        RichReporter,
        make_reporter,
    )
    from preform_pipeline.executor.runids import new_run_id
    from preform_pipeline.executor.runner import (
        DEFAULT_CANCEL_GRACE_S,
        DEFAULT_CHECKPOINT_KINDS,
        Runner,
        RunOptions,
        ServerSource,
        run_plan,
        split_build,
    )
    from preform_pipeline.executor.state import (
        OK_STATUSES,
        AttemptRecord,
        BuildCounts,
        BuildOutcome,
        BuildStatus,
        RunResult,
    )

__all__ = [
    "DEFAULT_CANCEL_GRACE_S",
    "DEFAULT_CHECKPOINT_KINDS",
    "DEFAULT_MAX_BUILD_ATTEMPTS",
    "DEFAULT_STEP_TIMEOUT_S",
    "OK_STATUSES",
    "AttemptRecord",
    "BuildCounts",
    "BuildOutcome",
    "BuildStatus",
    "NullReporter",
    "PlainReporter",
    "Reporter",
    "RichReporter",
    "RunOptions",
    "RunResult",
    "Runner",
    "ServerSource",
    "make_reporter",
    "new_run_id",
    "run_plan",
    "split_build",
]

#: Where each name lives: imported on first use (lazyexports.py), so that a module of the
#: package (``defaults``: ``run --help``) is imported without the runner and numpy.
_HOMES: Final = {
    "preform_pipeline.executor.defaults": (
        "DEFAULT_MAX_BUILD_ATTEMPTS",
        "DEFAULT_STEP_TIMEOUT_S",
    ),
    "preform_pipeline.executor.progress": (
        "NullReporter",
        "PlainReporter",
        "Reporter",
        "RichReporter",
        "make_reporter",
    ),
    "preform_pipeline.executor.runner": (
        "DEFAULT_CANCEL_GRACE_S",
        "DEFAULT_CHECKPOINT_KINDS",
        "Runner",
        "RunOptions",
        "ServerSource",
        "run_plan",
        "split_build",
    ),
    "preform_pipeline.executor.runids": ("new_run_id",),
    "preform_pipeline.executor.state": (
        "OK_STATUSES",
        "AttemptRecord",
        "BuildCounts",
        "BuildOutcome",
        "BuildStatus",
        "RunResult",
    ),
}

__getattr__ = lazy_exports(__name__, _HOMES)

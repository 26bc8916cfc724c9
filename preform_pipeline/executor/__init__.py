"""The executor: runs planned builds on the server pool (see :mod:`.runner`).

``run_plan(plan, pool, options=RunOptions(output_root=...), reporter=...)`` returns a
:class:`RunResult` with one :class:`BuildOutcome` per build; :mod:`.steps` maps each recipe
step to Local API calls; :mod:`.progress` draws progress; ``docs/running.md`` explains retries,
checkpoints, splitting and the print guarantee.
"""

from __future__ import annotations

from preform_pipeline.executor.progress import (
    NullReporter,
    PlainReporter,
    Reporter,
    RichReporter,
    make_reporter,
)
from preform_pipeline.executor.runner import (
    DEFAULT_CANCEL_GRACE_S,
    DEFAULT_CHECKPOINT_KINDS,
    DEFAULT_MAX_BUILD_ATTEMPTS,
    DEFAULT_STEP_TIMEOUT_S,
    Runner,
    RunOptions,
    ServerSource,
    new_run_id,
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

"""The job store: durable jobs, builds and their audit trail, shared by the hot folder, the
print verifier and the ``jobs`` command.

Write the state first, then act (move the file, send the print): a crash at any point leaves a
state from which the pipeline resumes without losing a file or printing twice. See
docs/jobs.md for the state table and the restart rules.

```python
from preform_pipeline.store import JobState, SqliteJobStore, embed_key

with SqliteJobStore(path) as store:
    job = store.create_job(recipe="dental", source_path=inbox / "arch.stl")
    ...
    build = store.transition_build(
        build.id, JobState.PRINT_SENDING, "sending the print", expect=JobState.PREPARED
    )
    client.print(scene, job_name=embed_key("case 7", build.job_key))
```
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from preform_pipeline.lazyexports import lazy_exports

if TYPE_CHECKING:
    from preform_pipeline.store.content import content_hash
    from preform_pipeline.store.keys import (
        DEFAULT_MAX_JOB_NAME_LENGTH,
        KEY_PREFIX,
        embed_key,
        extract_key,
        is_key,
        new_key,
        normalize_key,
    )
    from preform_pipeline.store.model import (
        ACTIVE_STATES,
        ALLOWED_TRANSITIONS,
        BUILD_ALLOWED_TRANSITIONS,
        BUILD_DRIVEN_STATES,
        BUILD_STATES,
        CANCELLABLE_STATES,
        DUPLICATE_STATES,
        FINAL_STATES,
        INITIAL_STATES,
        INTERRUPTED_STATES,
        PRINT_PENDING_STATES,
        PRINT_SENT_STATES,
        RETRYABLE_STATES,
        STATE_DESCRIPTIONS,
        TERMINAL_STATES,
        VERIFIED_STATES,
        Build,
        CaseKey,
        Job,
        JobState,
        Transition,
        parse_state,
    )
    from preform_pipeline.store.protocol import (
        BUILD_FIELDS,
        BUILD_MIRRORED_FIELDS,
        JOB_FIELDS,
        JobStore,
        StateFilter,
    )
    from preform_pipeline.store.sqlite import (
        DEFAULT_BUSY_TIMEOUT_S,
        MIGRATIONS,
        SCHEMA_VERSION,
        Migration,
        SqliteJobStore,
    )

__all__ = [
    "ACTIVE_STATES",
    "ALLOWED_TRANSITIONS",
    "BUILD_ALLOWED_TRANSITIONS",
    "BUILD_DRIVEN_STATES",
    "BUILD_FIELDS",
    "BUILD_MIRRORED_FIELDS",
    "BUILD_STATES",
    "CANCELLABLE_STATES",
    "DUPLICATE_STATES",
    "DEFAULT_BUSY_TIMEOUT_S",
    "DEFAULT_MAX_JOB_NAME_LENGTH",
    "FINAL_STATES",
    "INITIAL_STATES",
    "INTERRUPTED_STATES",
    "JOB_FIELDS",
    "KEY_PREFIX",
    "MIGRATIONS",
    "PRINT_PENDING_STATES",
    "PRINT_SENT_STATES",
    "RETRYABLE_STATES",
    "SCHEMA_VERSION",
    "STATE_DESCRIPTIONS",
    "TERMINAL_STATES",
    "VERIFIED_STATES",
    "Build",
    "CaseKey",
    "Job",
    "JobState",
    "JobStore",
    "Migration",
    "SqliteJobStore",
    "StateFilter",
    "Transition",
    "content_hash",
    "embed_key",
    "extract_key",
    "is_key",
    "new_key",
    "normalize_key",
    "parse_state",
]

#: Where each name lives: imported on first use (lazyexports.py), so that reading the states
#: (``jobs --help``) or a store's URL (``--store``) does not import the SQLite store, and with
#: it the settings and PyYAML.
_HOMES: Final = {
    "preform_pipeline.store.content": (
        "content_hash",
    ),
    "preform_pipeline.store.keys": (
        "DEFAULT_MAX_JOB_NAME_LENGTH",
        "KEY_PREFIX",
        "embed_key",
        "extract_key",
        "is_key",
        "new_key",
        "normalize_key",
    ),
    "preform_pipeline.store.model": (
        "ACTIVE_STATES",
        "ALLOWED_TRANSITIONS",
        "BUILD_ALLOWED_TRANSITIONS",
        "BUILD_DRIVEN_STATES",
        "BUILD_STATES",
        "CANCELLABLE_STATES",
        "DUPLICATE_STATES",
        "FINAL_STATES",
        "INITIAL_STATES",
        "INTERRUPTED_STATES",
        "PRINT_PENDING_STATES",
        "PRINT_SENT_STATES",
        "RETRYABLE_STATES",
        "STATE_DESCRIPTIONS",
        "TERMINAL_STATES",
        "VERIFIED_STATES",
        "Build",
        "CaseKey",
        "Job",
        "JobState",
        "Transition",
        "parse_state",
    ),
    "preform_pipeline.store.protocol": (
        "BUILD_FIELDS",
        "BUILD_MIRRORED_FIELDS",
        "JOB_FIELDS",
        "JobStore",
        "StateFilter",
    ),
    "preform_pipeline.store.sqlite": (
        "DEFAULT_BUSY_TIMEOUT_S",
        "MIGRATIONS",
        "SCHEMA_VERSION",
        "Migration",
        "SqliteJobStore",
    ),
}

__getattr__ = lazy_exports(__name__, _HOMES)

"""The job fields that are the pipeline's own records, not values from a sidecar.

A job's ``fields`` hold a sidecar's values (template fields a label or job name may use) and,
under names that start with ``_``, what the pipeline records for itself: the hot folder's
place of the file, the ``run`` process that claimed it, the case notice its move owes. They
are named here, a leaf every layer may import: ``jobs`` lists a job's fields without them and
must not import the executor or the hot folder to know their names.
"""

from __future__ import annotations

from typing import Final

__all__ = ["BOOKKEEPING_FIELDS", "CASE_FAILED_FIELD", "HOTFOLDER_FIELD", "RUN_FIELD"]

#: The hot folder's own bookkeeping of a job's file (never a template value).
HOTFOLDER_FIELD: Final = "_hotfolder"
#: The run process that claimed the job.
RUN_FIELD: Final = "_run"
#: The ``case_failed`` notice a job's move to failed/ owes.
CASE_FAILED_FIELD: Final = "_case_failed"

BOOKKEEPING_FIELDS: Final = frozenset({HOTFOLDER_FIELD, RUN_FIELD, CASE_FAILED_FIELD})

"""The folders a run makes below its output folder, each name written once.

Their writers (the runner its checkpoints and journals, a save its staging folder, ``run``
and the hot folder their reports and logs) and their readers (retention, the store's
history) import the names from here. A leaf: retention imported the whole executor (about
0.4 s, the progress consoles and the build states with it) to learn ``.checkpoints``.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CHECKPOINT_FOLDER", "LOGS_FOLDER", "REPORTS_FOLDER", "STAGING_FOLDER"]

#: Checkpoint ``.form`` files and build journals, one folder per run (``<run id>/``).
CHECKPOINT_FOLDER: Final = ".checkpoints"
#: Where servers write a save before it is moved to its name; hidden, and named for us.
STAGING_FOLDER: Final = ".preform-staging"
#: Run reports (JSON and CSV), one pair per run.
REPORTS_FOLDER: Final = "reports"
#: A run's log file when the settings name none (``<run id>.jsonl``).
LOGS_FOLDER: Final = "logs"

"""A run's id, made at its start.

Apart from the runner (whose import brings the planner and numpy) because ``run`` names
itself before it knows whether it has a build to run: a cron repeat with nothing new never
imports the runner (tests/unit/test_cli_start_imports.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime

__all__ = ["new_run_id"]


def new_run_id(now: datetime | None = None) -> str:
    """``20240131-142501-3fa2c1``: sortable by start time, unique across machines."""
    moment = now or datetime.now()
    return f"{moment:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"

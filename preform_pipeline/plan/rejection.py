"""A model that cannot be planned, and why: a value light enough for the hot folder's intake.

The intake says the files it refuses as it takes them with this value (its console lines),
and importing the intake must not import the planner (numpy, the model readers): ``jobs``
imports the intake for the outcome folders, and each start pays for what it imports.
``plan.builds`` hands it on under its old name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Rejection"]


@dataclass(frozen=True)
class Rejection:
    """A model that cannot be planned, and why; sizes are None when the file was unreadable."""

    path: Path
    reason: str
    size_mm: tuple[float, float, float] | None = None
    build_volume_mm: tuple[float, float, float] | None = None

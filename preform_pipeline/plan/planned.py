"""A batch's plan: its builds, and the models that could not be planned.

Apart from the planner (:mod:`preform_pipeline.plan.builds`, which imports numpy and the
geometry) because ``run`` makes an empty plan where it has nothing to plan (an empty inbox,
every model refused): such a cron start stays light (tests/unit/test_cli_start_imports.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from preform_pipeline.plan.rejection import Rejection
from preform_pipeline.recipes.model import Recipe

if TYPE_CHECKING:
    from preform_pipeline.catalogue import MachineType
    from preform_pipeline.plan.builds import BuildPlan

__all__ = ["Plan"]


@dataclass(frozen=True)
class Plan:
    """The builds for one batch of models, and the models that could not be planned."""

    recipe: Recipe
    builds: tuple[BuildPlan, ...]
    rejected: tuple[Rejection, ...] = ()
    machine: MachineType | None = None
    #: Things the user should know that did not stop planning (a case split over builds).
    warnings: tuple[str, ...] = ()
    #: The servers the builds' work was balanced over (1: not balanced).
    servers: int = 1

    @property
    def ok(self) -> bool:
        """True when every model was planned into a build."""
        return not self.rejected

    @property
    def total_volume_ml(self) -> float:
        return sum(b.estimated_volume_ml for b in self.builds)

    @property
    def model_count(self) -> int:
        return sum(len(b.models) for b in self.builds)

    def build_of(self, path: Path | str) -> BuildPlan | None:
        """The build a model file was planned into, or None (rejected or unknown)."""
        wanted = Path(path)
        for build in self.builds:
            if wanted in build.paths:
                return build
        return None

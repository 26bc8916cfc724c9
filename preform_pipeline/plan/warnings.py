"""A plan's warnings as a person reads them: the models whose units were guessed alike in one
line (the README's first run guessed 28, and 28 long lines alike hid everything after them),
a single guess and every other warning as it is.

``run`` prints them before its builds, and the hot folder's console for each batch (session
41: ``watch`` showed the reader's raw ``units_guessed`` event instead, naming the file's
transient ``processing/`` path). ``named`` names each model as its user knows it: ``run``
by its file's name, the hot folder by the path it was dropped at.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from preform_pipeline.geometry.units import UNITS_SETTINGS
from preform_pipeline.wording import visible

if TYPE_CHECKING:
    # For annotations only: the planner brings numpy (see ``executor.progress``).
    from preform_pipeline.plan.builds import ModelInfo, Plan

__all__ = ["MAX_NAMES_PER_WARNING", "WarningGroup", "plan_warnings"]

#: A grouped warning names this many models, then says how many more (the report has all).
MAX_NAMES_PER_WARNING: Final = 5


@dataclass(frozen=True)
class WarningGroup:
    """Warnings of one kind in one build: ``14 labels skipped: part_02, … (see report)``."""

    what: str
    names: tuple[str, ...]

    def text(self, limit: int = MAX_NAMES_PER_WARNING) -> str:
        if not self.names:
            return self.what
        shown = ", ".join(self.names[:limit])
        more = len(self.names) - limit
        tail = f", … (+{more}, see report)" if more > 0 else ""
        return f"{len(self.names)} {self.what}: {shown}{tail}"


def plan_warnings(
    plan: Plan, *, whole: bool = False, named: Mapping[Path, str] | None = None
) -> list[str]:
    """The plan's warnings, guesses of the same units in one line; the report keeps each.
    ``whole`` (``run --verbose``): every warning as the plan has it, none grouped.
    ``named``: how to name a model (by its path) in place of its file's name."""
    names = {} if named is None else named

    def name(model: ModelInfo) -> str:
        return names.get(model.path, model.path.name)

    guessed: dict[str, list[tuple[ModelInfo, str]]] = {}  # each with its warning, renamed
    own: dict[str, str] = {}  # a guess's warning as the plan has it: renamed
    for build in plan.builds:
        for model in build.models:
            if model.units_source == "guess" and model.units_warning:
                renamed = model.units_warning.replace(model.path.name, name(model), 1)
                guessed.setdefault(model.units, []).append((model, renamed))
                own[model.units_warning] = renamed
    warnings = [own.get(w, w) for w in plan.warnings]
    if whole:
        return [visible(warning) for warning in warnings]
    groups = {units: models for units, models in guessed.items() if len(models) > 1}
    said = {renamed for models in groups.values() for _, renamed in models}
    lines = [
        WarningGroup(f"models' units not stated, guessed {units}",
                     tuple(name(m) for m, _ in models)).text()
        + f"; state them with {UNITS_SETTINGS}"
        for units, models in groups.items()
    ]
    # A model's name may hold a terminal's escape sequences: shown as escapes.
    return [visible(line) for line in lines + [w for w in warnings if w not in said]]

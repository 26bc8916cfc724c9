"""A run's output folder and its template fields, apart from the runner.

The hot-folder daemon names its output folders at its start (for the retention sweep and
the staging folders a killed process left), before it knows whether a batch will come; the
runner imports the planner and numpy, so these two live here, where that start reads them
without it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from preform_pipeline.recipes.model import Recipe
from preform_pipeline.recipes.templates import render_template
from preform_pipeline.userpath import expand_user

__all__ = ["output_root", "run_values"]


def run_values(recipe: Recipe, started_at: datetime) -> dict[str, object]:
    """The run's template fields: ``recipe``, ``date``, ``time``, ``machine``, ``material``."""
    return {
        "recipe": recipe.name,
        "date": f"{started_at:%Y-%m-%d}",
        "time": f"{started_at:%H%M%S}",
        "machine": recipe.scene.machine_type or "",
        "material": recipe.scene.material_code or "",
    }


def output_root(
    recipe: Recipe, override: Path | None, started_at: datetime, configured: Path | None = None
) -> Path:
    """A run's output folder: ``override`` (``--output``, or a hot folder's ``output_root``),
    else ``configured`` (the settings' ``output_root``), else the recipe's ``outputs.root``
    rendered with the run's fields, relative to the recipe's folder."""
    chosen = override if override is not None else configured
    if chosen is not None:
        return expand_user(chosen, source="output folder").resolve()
    rendered = Path(render_template(recipe.outputs.root, run_values(recipe, started_at)))
    if not rendered.is_absolute():
        rendered = recipe.base_dir / rendered
    return rendered.resolve()

"""Recipes: YAML with positions, validation (JSON Schema + semantic checks), frozen model.

``load_recipe(path)`` gives a :class:`Recipe` or raises
:class:`~preform_pipeline.errors.RecipeError` with every problem; ``validate_recipe(path)``
gives a :class:`ValidationReport` instead of raising. The format is described in
``docs/recipes.md`` and defined by ``schemas/recipe.schema.json``.
"""

from __future__ import annotations

from preform_pipeline.recipes.model import (
    STEP_KINDS,
    BatchingSpec,
    ImportSpec,
    OutputSpec,
    Position,
    Recipe,
    SceneSpec,
    Step,
)
from preform_pipeline.recipes.templates import (
    HOTFOLDER_SIDECAR_FIELDS,
    TEMPLATE_FIELDS_BUILTIN,
    render_output_path,
    render_template,
    template_fields,
)
from preform_pipeline.recipes.validate import (
    ValidationReport,
    catalogue_from_server,
    load_recipe,
    validate_recipe,
)

__all__ = [
    "HOTFOLDER_SIDECAR_FIELDS",
    "STEP_KINDS",
    "TEMPLATE_FIELDS_BUILTIN",
    "BatchingSpec",
    "ImportSpec",
    "OutputSpec",
    "Position",
    "Recipe",
    "SceneSpec",
    "Step",
    "ValidationReport",
    "catalogue_from_server",
    "load_recipe",
    "render_output_path",
    "render_template",
    "template_fields",
    "validate_recipe",
]

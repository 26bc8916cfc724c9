"""Recipes: YAML with positions, validation (JSON Schema + semantic checks), frozen model.

``load_recipe(path)`` gives a :class:`Recipe` or raises
:class:`~preform_pipeline.errors.RecipeError` with every problem; ``validate_recipe(path)``
gives a :class:`ValidationReport` instead of raising. The format is described in
``docs/recipes.md`` and defined by ``schemas/recipe.schema.json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from preform_pipeline.lazyexports import lazy_exports

if TYPE_CHECKING:
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

#: Where each name lives: imported on first use (lazyexports.py), so that a module of the
#: package (settings_check, for a settings error's line) does not import the recipe checker
#: and its schema.
_HOMES: Final = {
    "preform_pipeline.recipes.model": (
        "STEP_KINDS",
        "BatchingSpec",
        "ImportSpec",
        "OutputSpec",
        "Position",
        "Recipe",
        "SceneSpec",
        "Step",
    ),
    "preform_pipeline.recipes.templates": (
        "HOTFOLDER_SIDECAR_FIELDS",
        "TEMPLATE_FIELDS_BUILTIN",
        "render_output_path",
        "render_template",
        "template_fields",
    ),
    "preform_pipeline.recipes.validate": (
        "ValidationReport",
        "catalogue_from_server",
        "load_recipe",
        "validate_recipe",
    ),
}

__getattr__ = lazy_exports(__name__, _HOMES)

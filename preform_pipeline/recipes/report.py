"""What checking one recipe or settings file found: apart from the recipe checker, so that
the settings' own check (``settings_check``, which every command's settings error passes
through) says it without importing the recipe schema, the catalogue and the printers."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from preform_pipeline.errors import Problem

if TYPE_CHECKING:
    from preform_pipeline.recipes.model import Recipe

__all__ = ["ValidationReport"]


@dataclasses.dataclass(frozen=True)
class ValidationReport:
    """What validating one recipe file found."""

    problems: tuple[Problem, ...]
    #: Which catalogue machine types and materials were checked against.
    catalogue_source: str
    #: The recipe, when there are no problems.
    recipe: Recipe | None = None
    #: The recipe file as problems name it.
    file: str = ""

    @property
    def valid(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "valid": self.valid,
            "catalogue_source": self.catalogue_source,
            "problems": [
                {
                    "file": p.file,
                    "line": p.line,
                    "column": p.column,
                    "path": p.json_path,
                    "message": p.message,
                    "suggestion": p.suggestion,
                }
                for p in self.problems
            ],
        }

"""Shared helpers for the recipe tests: small valid recipes and a marker for expected lines."""

from __future__ import annotations

from pathlib import Path

from preform_pipeline.errors import Problem
from preform_pipeline.recipes import ValidationReport, validate_recipe

__all__ = [
    "FPS_NAME",
    "MARK",
    "SLA_RECIPE",
    "SLS_RECIPE",
    "marked_line",
    "only_problem_at",
    "validate_text",
]

#: Put this comment on the line a problem is expected at.
MARK = "# <-"

#: A small valid SLA recipe; tests append or replace sections.
SLA_RECIPE = """\
scene:
  machine_type: FORM-4-0
  material_code: FLGPGR05
  layer_thickness_mm: 0.1
steps:
  - auto_orient
  - auto_support
  - auto_layout
"""

SLS_RECIPE = """\
scene:
  machine_type: FS30-1-0
  material_code: FLP12G01
  layer_thickness_mm: 0.11
steps:
  - auto_pack
"""


def marked_line(text: str) -> int:
    """The 1-based number of the line carrying :data:`MARK`."""
    for number, line in enumerate(text.splitlines(), start=1):
        if MARK in line:
            return number
    raise AssertionError("the test recipe has no marked line")


#: The scene file the cases name (``fps_file: grey.fps``); :func:`validate_text` writes it
#: beside the recipe, as a user's would be (``validate`` reports a missing one).
FPS_NAME = "grey.fps"


def validate_text(folder: Path, text: str, name: str = "recipe.yaml") -> ValidationReport:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    (path.parent / FPS_NAME).write_text("{}\n", encoding="utf-8")
    return validate_recipe(path, display=name)


def only_problem_at(report: ValidationReport, json_path: str) -> Problem:
    """The one problem reported at ``json_path`` (fails listing all problems otherwise)."""
    found = [p for p in report.problems if p.json_path == json_path]
    listing = "\n".join(str(p) for p in report.problems)
    assert len(found) == 1, f"expected one problem at {json_path}, got:\n{listing}"
    return found[0]

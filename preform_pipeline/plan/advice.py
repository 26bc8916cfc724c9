"""What is said of a file in a format that is not printed, and what helps: one rule for ``run``
(:mod:`preform_pipeline.plan.sources`) and the hot folder's intake.

The two said different things for the same file until session 42 (the intake told to convert
a ``.zip`` or a ``.form``, ``run`` to unpack it or open it in PreForm). The words are the same
in both, so nothing here names an inbox or a command line: what helps is said of the file.
Kept as light as :mod:`.parts` (no planner, no numpy): the intake's import must stay cheap
(``tests/unit/test_cli_start_imports.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from preform_pipeline.plan.parts import CAD_SUFFIXES, OTHER_MESH_SUFFIXES
from preform_pipeline.plan.rejection import advised

__all__ = ["IMPORTED", "Advice", "by_name"]

#: What the readers, and PreFormServer after them, take: said after every refused format.
IMPORTED: Final = "preform-pipeline prepares .stl, .obj and .3mf"

#: Each kind of file that holds a part in a format not printed: what it is, what helps.
_PACKAGES: Final[dict[str, tuple[str, str]]] = {
    ".form": ("a PreForm job, not a model file",
              "open it in PreForm, or give the model files it was made from instead"),
    ".zip": ("an archive, not a model file",
             "unpack it, and give the model files it holds instead"),
}
_CAD: Final = ("a CAD file, not a mesh",
               "export the part from the CAD software as STL, OBJ or 3MF, and give that "
               "file instead")
_OTHER_MESH: Final = ("a mesh format PreFormServer does not import",
                      "convert it to STL, OBJ or 3MF, and give that file instead")
# A text, a photo, a prescription: nothing to convert, and nothing of a case is missing.
_NO_PART: Final = ("not a model file",
                   "it is not a model to print: keep it out of folders of models (only model "
                   "files and their sidecars belong there)")


@dataclass(frozen=True)
class Advice:
    """Why a file is not printed (``why``: what it is) and what helps (``todo``)."""

    why: str
    todo: str

    @property
    def said(self) -> str:
        """The one line: why, then what helps (:func:`~.rejection.advised`)."""
        return advised(self.why, self.todo)


def by_name(path: Path) -> Advice:
    """The advice for ``path``, a file whose suffix names no format the readers take."""
    suffix = path.suffix.lower()
    what, todo = (_PACKAGES.get(suffix)
                  or (_CAD if suffix in CAD_SUFFIXES
                      else _OTHER_MESH if suffix in OTHER_MESH_SUFFIXES else _NO_PART))
    named = path.suffix or "a file without extension"
    return Advice(f"{named} is {what} ({IMPORTED})", todo)

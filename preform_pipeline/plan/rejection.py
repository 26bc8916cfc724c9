"""A model that cannot be planned, and why: a value light enough for the hot folder's intake.

The intake says the files it refuses as it takes them with this value (its console lines),
and importing the intake must not import the planner (numpy, the model readers): ``jobs``
imports the intake for the outcome folders, and each start pays for what it imports.
``plan.builds`` hands it on under its old name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from preform_pipeline.plan.parts import is_part

__all__ = ["Rejection", "advised"]


def advised(why: str, todo: str) -> str:
    """The one way a refused file is said with what helps: ``why; todo``. ``run``'s line
    for a format not printed (:attr:`~preform_pipeline.plan.advice.Advice.said`), its held
    cases, and the hot folder's console lines at intake and at the batch all join so."""
    return f"{why}; {todo}"


@dataclass(frozen=True)
class Rejection:
    """A model that cannot be planned, and why; sizes are None when the file was unreadable.
    ``not_a_model``: its content, once read, showed it is no model at all (a PNG named
    ``.stl``: :class:`~preform_pipeline.errors.NotAModelError`), whatever its name says;
    ``looks_like``: what its bytes show it is (``"a PNG image"``), when known. ``hint``: the
    reader's advice, which ``reason`` ends with in brackets (``run`` says it so)."""

    path: Path
    reason: str
    size_mm: tuple[float, float, float] | None = None
    build_volume_mm: tuple[float, float, float] | None = None
    not_a_model: bool = False
    looks_like: str | None = None
    hint: str | None = None

    @property
    def why(self) -> str:
        """``reason`` without the reader's bracketed advice: for a line that says its own
        (the hot folder's, for a file that is no model), so advice is said once."""
        return self.reason.removesuffix(f" ({self.hint})") if self.hint else self.reason

    @property
    def of_a_model(self) -> bool:
        """Whether the refused file is a model (or a part in another format): by its name
        (:func:`~preform_pipeline.plan.parts.is_part`), and by its content once read. What
        ``run``'s and the hot folder's headings count (``rejected 1 model`` or ``1 file``)."""
        return is_part(self.path) and not self.not_a_model

"""How text from outside (case ids, file names, reasons) is written into the dashboard's pages.

Autoescaping keeps markup out; this keeps out what escaping lets through: a right-to-left
override (U+202E) in a file name showed ``rtl<U+202E>gnp.stl`` as "rtllts.png", and in a
History line it reversed the state and the file name after it; a line break read as a space.
Every string a template writes goes through :func:`preform_pipeline.wording.visible`.
"""

from __future__ import annotations

from markupsafe import Markup

from preform_pipeline.wording import visible

__all__ = ["finalize"]


def finalize(value: object) -> object:
    """The templates' ``finalize``: every ``{{ … }}`` string is shown :func:`visible`.
    Markup (a macro's output, or a value marked ``|e`` because a form must send it back as
    it is, such as a case action's ``target``) is left alone."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return visible(value)
    return value

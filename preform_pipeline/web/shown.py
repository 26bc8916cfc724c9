"""How text from outside (case ids, file names, reasons) is written into the dashboard's pages.

Autoescaping keeps markup out; this keeps out what escaping lets through: a right-to-left
override (U+202E) in a file name showed ``rtl<U+202E>gnp.stl`` as "rtllts.png", and in a
History line it reversed the state and the file name after it; a line break read as a space.
Such characters are written as the escape Python would print (``\\u202e``, ``\\n``), as
:func:`preform_pipeline.wording.quoted` writes them in messages, so the page shows what the
name holds.
"""

from __future__ import annotations

import unicodedata
from typing import Final

from markupsafe import Markup

__all__ = ["finalize", "visible"]

#: Joiners that some scripts (Persian, Indic) and emoji need inside a word: kept as they are.
_JOINERS: Final = frozenset("\u200c\u200d")


def _hidden(char: str) -> bool:
    """A control character (Cc) or an invisible format character (Cf: the bidi overrides and
    isolates, zero-width space, soft hyphen, BOM) other than the joiners."""
    return unicodedata.category(char) in ("Cc", "Cf") and char not in _JOINERS


def visible(text: str) -> str:
    """``text`` with each hidden character written as its escape."""
    if not any(_hidden(c) for c in text):
        return text
    return "".join(repr(c)[1:-1] if _hidden(c) else c for c in text)


def finalize(value: object) -> object:
    """The templates' ``finalize``: every ``{{ … }}`` string is shown :func:`visible`.
    Markup (a macro's output, or a value marked ``|e`` because a form must send it back as
    it is, such as a case action's ``target``) is left alone."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return visible(value)
    return value

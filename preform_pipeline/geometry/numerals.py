"""What the model formats call a number, written once for every reader.

Python's ``float`` and ``int`` (and numpy's conversions, which call them) take more than any
model format defines: ``1_0`` (underscores), surrounding Unicode spaces, ``infinity``, and
digits of any script (an Arabic-Indic one, U+0661). A reader that takes those reads a file
other programs refuse or read differently, so each reader checks its numbers' text against
its format's lexical rule: one whole-array pass on the usual path, a token-by-token search
only to name the offender of a refused file.

* 3MF (core specification 1.2, Appendix A, the XSD): ``ST_Number`` is
  ``((\\-|\\+)?(([0-9]+(\\.[0-9]+)?)|(\\.[0-9]+))((e|E)(\\-|\\+)?[0-9]+)?)`` after XML
  whitespace collapse (space, tab, CR, LF around it); ``ST_Matrix3D`` is twelve of them
  separated by whitespace; ``ST_ResourceIndex`` is ``xs:nonNegativeInteger`` below 2^31
  (XML Schema Part 2: an optional ``+``, or ``-`` before a zero, then ASCII digits), and
  ``ST_ResourceID`` (an object's ``id``, an item's or component's ``objectid``) the same form
  from 1 up: both are numbers, so ``01`` is ``1``.
* ASCII STL and OBJ define no grammar of their own beyond "a floating-point number" and "an
  integer"; their writers are C's ``printf`` and their readers C's ``strtod`` and ``atoi``.
  Their numbers are the same decimal form; the words ``inf`` and ``nan`` (which ``strtod``
  reads) are read too, so the reader's non-finite check refuses them with the triangle.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from ..wording import quoted

__all__ = [
    "MAX_RESOURCE_INDEX",
    "XML_NUMBER_FORM",
    "XML_OBJECT_ID_FORM",
    "is_text_index",
    "is_text_number",
    "is_xml_index",
    "is_xml_number",
    "shown_token",
    "text_indices_may_pass",
    "text_numbers_may_pass",
    "xml_indices_may_pass",
    "xml_integer",
    "xml_numbers_may_pass",
    "xml_tokens",
]

# The rules, as patterns: what the refusals are judged by, token by token.
_DECIMAL: Final = r"[-+]?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
# XML whitespace (what xs:whiteSpace="collapse" removes): not Python's str.isspace set.
_XML_SPACE: Final = r"[ \t\r\n]*"
_ONE_XML_NUMBER: Final = re.compile(_XML_SPACE + "(?:" + _DECIMAL + ")" + _XML_SPACE)
_ONE_XML_INDEX: Final = re.compile(_XML_SPACE + r"(?:\+?[0-9]+|-0+)" + _XML_SPACE)
# C's strtod also reads the decimal form with a trailing point ("1.", as "%#g" writes it).
_ONE_TEXT_NUMBER: Final = re.compile(
    rb"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?(?i:inf|infinity|nan)"
)
_ONE_TEXT_INDEX: Final = re.compile(rb"[-+]?[0-9]+")
_XML_SPACE_RUN: Final = re.compile(r"[ \t\r\n]+")

# The same rules for a whole array at C speed (a regex over millions of tokens took seconds):
# the only bytes a rule's tokens may hold. Within these bytes Python's float() and int()
# accept exactly the rule's forms, but for a point without a digit after it ("1.", "1.e5"),
# which 3MF refuses and C reads; so the guard and the conversion that follows are the rule,
# and tests/unit/geometry/test_geometry_numerals.py holds them to the patterns above.
_DIGITS: Final = b"0123456789"
_XML_SPACE_BYTES: Final = b" \t\r\n"
_XML_NUMBER_BYTES: Final = _DIGITS + b"+-.eE" + _XML_SPACE_BYTES
_XML_INDEX_BYTES: Final = _DIGITS + b"+-" + _XML_SPACE_BYTES
# Text tokens are checked as numpy holds them, NUL-padded to one width (NUL is no token's).
_TEXT_NUMBER_BYTES: Final = _DIGITS + b"+-.eE" + b"infatyINFATY\x00"  # inf, infinity, nan
_TEXT_INDEX_BYTES: Final = _DIGITS + b"+-\x00"
_BARE_POINT: Final = re.compile(rb"\.(?![0-9])")

#: ST_ResourceIndex's and ST_ResourceID's maxExclusive less one: the largest index, and the
#: largest object id, a 3MF may hold.
MAX_RESOURCE_INDEX: Final = 2**31 - 1
#: How a refusal says what a 3MF number looks like.
XML_NUMBER_FORM: Final = (
    "a 3MF number is ASCII digits with an optional sign, decimal point and exponent"
)
#: How a refusal says what a 3MF object id (ST_ResourceID, xs:positiveInteger) looks like.
XML_OBJECT_ID_FORM: Final = (
    f"a 3MF object id is a whole number from 1 to {MAX_RESOURCE_INDEX:,} in ASCII digits"
)


def is_xml_number(text: str) -> bool:
    """Is ``text`` a 3MF ``ST_Number`` (XML whitespace around it allowed)?"""
    return _ONE_XML_NUMBER.fullmatch(text) is not None


def is_xml_index(text: str) -> bool:
    """Is ``text`` the lexical form of a 3MF ``ST_ResourceIndex`` (its size not checked)?"""
    return _ONE_XML_INDEX.fullmatch(text) is not None


def xml_integer(text: str) -> int | None:
    """The value of ``text`` when it has the lexical form of an XML Schema non-negative or
    positive integer (:func:`is_xml_index`), else None. 3MF compares ids and indices as
    numbers (``01`` is ``1``). A value over :data:`MAX_RESOURCE_INDEX` comes back as one more
    than it: every such value is beyond the limit alike, and ``int()`` refuses over 4,300
    digits."""
    if not is_xml_index(text):
        return None
    digits = text.strip(" \t\r\n").lstrip("+-").lstrip("0")
    if len(digits) > len(str(MAX_RESOURCE_INDEX)):
        return MAX_RESOURCE_INDEX + 1
    return min(int(digits or "0"), MAX_RESOURCE_INDEX + 1)


def is_text_number(token: bytes) -> bool:
    """Is ``token`` a number of an ASCII STL or OBJ file?"""
    return _ONE_TEXT_NUMBER.fullmatch(token) is not None


def is_text_index(token: bytes) -> bool:
    """Is ``token`` an OBJ vertex index's form (a signed run of ASCII digits)?"""
    return _ONE_TEXT_INDEX.fullmatch(token) is not None


def _only(data: bytes, allowed: bytes) -> bool:
    return not data.translate(None, allowed)


def _ascii(texts: Sequence[str]) -> bytes | None:
    try:
        return " ".join(texts).encode("ascii")
    except UnicodeEncodeError:  # a digit of another script, a no-break space
        return None


def xml_numbers_may_pass(texts: Sequence[str]) -> bool:
    """False when one of ``texts`` is surely no ``ST_Number``; True when each is one if
    Python's ``float`` takes it (the conversion that follows is the rest of the check)."""
    raw = _ascii(texts)
    return raw is not None and _only(raw, _XML_NUMBER_BYTES) and not _BARE_POINT.search(raw)


def xml_indices_may_pass(texts: Sequence[str]) -> bool:
    """False when one of ``texts`` is surely no index; True when each is one if ``int``
    takes it and it is not negative (the conversion and range check that follow)."""
    raw = _ascii(texts)
    return raw is not None and _only(raw, _XML_INDEX_BYTES)


def text_numbers_may_pass(tokens: bytes, *, nul_in_text: bool) -> bool:
    """False when a token of ``tokens`` (the tokens' bytes, joined or NUL-padded as numpy
    stores them) may be no text number; True when each is one if ``float`` takes it.

    ``nul_in_text``: whether the text the tokens were cut from holds a NUL byte. numpy drops
    a token's own trailing NULs as padding (``b"1\\x00"`` converts as 1), so the guard, which
    allows NUL for the padding, cannot see them: a NUL there sends the caller to the
    token-by-token check (:func:`is_text_number`), which refuses it. NUL is no text's byte
    and costs one ``memchr`` to rule out.
    """
    return not nul_in_text and _only(tokens, _TEXT_NUMBER_BYTES)


def text_indices_may_pass(tokens: bytes, *, nul_in_text: bool) -> bool:
    """False when a token of ``tokens`` (as for :func:`text_numbers_may_pass`, NUL too) may
    be no OBJ index; True when each is one if ``int`` takes it."""
    return not nul_in_text and _only(tokens, _TEXT_INDEX_BYTES)


def shown_token(token: bytes) -> str:
    """``token`` quoted for a refusal, as the user's editor shows it where it can: a digit of
    another script as itself (UTF-8), a NUL or other control byte escaped (``'1\\x00'``),
    bytes that are no UTF-8 as escapes (``'1\\xff'``)."""
    try:
        return quoted(token.decode("utf-8"))
    except UnicodeDecodeError:
        return repr(token)[1:]


def xml_tokens(text: str) -> list[str]:
    """``text`` split at XML whitespace (an ``ST_Matrix3D``'s numbers); Python's ``split()``
    would also split at spaces XML does not know (a no-break space, an em space)."""
    stripped = text.strip(" \t\r\n")
    return _XML_SPACE_RUN.split(stripped) if stripped else []

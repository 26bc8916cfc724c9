"""Job keys: short, unique, stable names that survive a trip through a printer's job name.

A key is ``PP-`` and 10 characters of Crockford's base32 (digits and upper-case letters without
I, L, O, U), 50 random bits: ``PP-4K7QX0M2ZD``. Every job and every build gets one when it is
created, and it never changes. A build's key goes into the name its print is sent with
(:func:`embed_key`), so a print found in the Web API prints feed (whose ``name`` filter matches
substrings) maps back to its build (:func:`extract_key`) — that is how a send interrupted by a
crash is looked up instead of sent twice.

Why random rather than a hash of the content: the same file printed again (a retry, a second
order) must be a different print, and 50 bits keep collisions out of reach for any lab's
lifetime (the store also enforces uniqueness).
"""

from __future__ import annotations

import re
import secrets
from typing import Final

__all__ = [
    "DEFAULT_MAX_JOB_NAME_LENGTH",
    "KEY_ALPHABET",
    "KEY_LENGTH",
    "KEY_PREFIX",
    "embed_key",
    "extract_key",
    "is_key",
    "new_key",
    "normalize_key",
]

KEY_PREFIX: Final = "PP-"
#: Crockford's base32: no I, L, O or U, so a key read aloud or typed is not misread.
KEY_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
KEY_LENGTH: Final = 10
_KEY_BITS: Final = 5 * KEY_LENGTH
#: Job names longer than this are shortened (the name part, never the key). Printers and the
#: Dashboard show names in narrow places; 100 characters is well within what they accept.
DEFAULT_MAX_JOB_NAME_LENGTH: Final = 100

# Letters people type for digits, mapped the way Crockford's base32 decodes them.
_TYPO_MAP: Final = str.maketrans({"O": "0", "I": "1", "L": "1"})

# A key stands alone: not glued to letters or digits on either side (``_``, ``-``, spaces,
# brackets around it are fine, so ``case7_PP-…`` and ``[PP-…]`` both match).
_KEY_IN_TEXT: Final = re.compile(
    r"(?<![0-9A-Za-z])PP-([0-9A-Za-z]{" + str(KEY_LENGTH) + r"})(?![0-9A-Za-z])",
    re.IGNORECASE,
)
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]+")


def new_key(bits: int | None = None) -> str:
    """A new random key; ``bits`` (50 bits) fixes it, for tests."""
    value = secrets.randbits(_KEY_BITS) if bits is None else bits
    if not 0 <= value < 1 << _KEY_BITS:
        raise ValueError(f"a key holds {_KEY_BITS} bits, got {value}")
    chars = []
    for _ in range(KEY_LENGTH):
        chars.append(KEY_ALPHABET[value & 31])
        value >>= 5
    return KEY_PREFIX + "".join(reversed(chars))


def normalize_key(text: str) -> str | None:
    """The canonical form of a key as a person or a printer may have written it, else None.

    Case is ignored and ``O``/``I``/``L`` read as ``0``/``1``/``1``: ``pp-4k7qxom2zd`` is
    ``PP-4K7QX0M2ZD``.
    """
    candidate = text.strip().upper()
    if not candidate.startswith(KEY_PREFIX):
        return None
    body = candidate[len(KEY_PREFIX) :].translate(_TYPO_MAP)
    if len(body) != KEY_LENGTH or any(c not in KEY_ALPHABET for c in body):
        return None
    return KEY_PREFIX + body


def is_key(text: str) -> bool:
    """True for a key in canonical form (what :func:`new_key` returns)."""
    return normalize_key(text) == text


def embed_key(
    job_name: str, key: str, *, max_length: int = DEFAULT_MAX_JOB_NAME_LENGTH
) -> str:
    """``job_name`` with ``key`` appended (``"case 7 crowns PP-4K7QX0M2ZD"``).

    Idempotent: a name that already ends with the key is returned as it is. Control characters
    become spaces; a name too long for ``max_length`` loses characters from its end, never from
    the key. Raises ValueError for a key that is not canonical.
    """
    if not is_key(key):
        raise ValueError(f"not a job key: {key!r} (expected {KEY_PREFIX} and {KEY_LENGTH} chars)")
    if max_length < len(key):
        raise ValueError(f"max_length {max_length} is shorter than the key itself")
    name = " ".join(_CONTROL.sub(" ", job_name).split())
    if name == key or name.endswith(" " + key):
        name = name[: -len(key)].rstrip()  # already embedded: embed once, not twice
    room = max_length - len(key) - 1
    name = name[: max(room, 0)].rstrip()
    return f"{name} {key}" if name else key


def extract_key(job_name: str) -> str | None:
    """The key in a job name (the last one, which :func:`embed_key` appended), or None."""
    found = None
    for match in _KEY_IN_TEXT.finditer(job_name):
        key = normalize_key(match.group(0))
        if key is not None:
            found = key
    return found

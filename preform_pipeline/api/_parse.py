"""Small, strict readers for JSON the server sends back.

A body that breaks the contract raises :class:`MalformedResponse`; the client turns it into a
``ServerInternalError`` carrying the request, because a server that answers nonsense is at
fault, not the input.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from preform_pipeline.crash import shorten
from preform_pipeline.logging import SECRET_KEY_PATTERN, hide_secrets

__all__ = [
    "MESSAGE_CHARS",
    "MalformedResponse",
    "as_object",
    "opt_bool",
    "opt_fraction",
    "opt_int",
    "opt_number",
    "opt_object",
    "opt_str",
    "opt_str_list",
    "req_number",
    "req_str",
]


#: The longest a MalformedResponse's message is. It quotes the value that broke the contract,
#: which can be anything a server sends: a list of 10,000 numbers made a 70 KB build reason,
#: said on the console and in the log (session 47's fuzzer). Its start (the field and what was
#: expected) and its end are kept, after the secrets the log never shows are taken out.
MESSAGE_CHARS: Final = 300


class MalformedResponse(ValueError):
    """A response body does not have the shape the contract promises; its message is cut to
    :data:`MESSAGE_CHARS`, whatever value it quotes."""

    def __init__(self, message: str) -> None:
        # Secrets hidden before the cut, not after it: the cut keeps whole words from the
        # start and the end, and could leave out ``Bearer`` and keep the token after it, which
        # the log's rule (hide_secrets) no longer knows for one (review rv47-fuzz).
        super().__init__(shorten(hide_secrets(message), MESSAGE_CHARS, max_lines=1))


def _got(key: str, value: Any) -> str:
    """``value`` as a refusal quotes it: its ``repr``, but only its type under a key that
    names a secret (a login's ``access_token`` of another type), by the log's rule for keys:
    hide_secrets knows a token by the words before it, and a quoted value has none."""
    if SECRET_KEY_PATTERN.search(key):
        return f"a {type(value).__name__} (not shown: {key} is a secret)"
    return repr(value)


# Decoded JSON holds exactly dict, str, float and int: the readers test for those types
# first (a scene's models make hundreds of these checks per answer), and fall back to the
# general checks for anything else a caller may pass.


def as_object(value: Any, what: str) -> Mapping[str, Any]:
    if type(value) is dict:
        return value
    if not isinstance(value, Mapping):
        raise MalformedResponse(f"{what}: expected a JSON object, got {type(value).__name__}")
    return value


def opt_object(data: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = data.get(key)
    return None if value is None else as_object(value, key)


def opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if type(value) is str:
        return value
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedResponse(f"{key}: expected a string, got {_got(key, value)}")
    return value


def req_str(data: Mapping[str, Any], key: str) -> str:
    value = opt_str(data, key)
    if value is None:
        raise MalformedResponse(f"{key}: required string is missing")
    return value


def opt_number(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if type(value) is float and math.isfinite(value):
        return value
    if value is None:
        return None
    # JSON true/false arrive as bool, which Python counts as int: refuse them as numbers.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedResponse(f"{key}: expected a number, got {_got(key, value)}")
    # JSON has no NaN or infinity, and no contract number is one; Python's decoder reads
    # NaN, Infinity and 1e400 all the same, and a print time of NaN crashed run's summary
    # (session 47's fuzzer). An integer too large for a float is refused too.
    try:
        number = float(value)
    except OverflowError:
        raise MalformedResponse(f"{key}: expected a number, got one too large to use") from None
    if not math.isfinite(number):
        raise MalformedResponse(f"{key}: expected a finite number, got {_got(key, value)}")
    return number


def opt_fraction(data: Mapping[str, Any], key: str) -> float | None:
    """A fraction from 0.0 to 1.0 (a progress): any other number, NaN and infinity included,
    reads as unknown (None); a value that is no number is refused."""
    value = data.get(key)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    number = opt_number(data, key)
    return number if number is not None and 0.0 <= number <= 1.0 else None


def req_number(data: Mapping[str, Any], key: str) -> float:
    value = opt_number(data, key)
    if value is None:
        raise MalformedResponse(f"{key}: required number is missing")
    return value


def opt_int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedResponse(f"{key}: expected an integer, got {_got(key, value)}")
    return value


def opt_bool(data: Mapping[str, Any], key: str) -> bool | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise MalformedResponse(f"{key}: expected true or false, got {_got(key, value)}")
    return value


def opt_str_list(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise MalformedResponse(f"{key}: expected a list of strings, got {_got(key, value)}")
    return tuple(value)

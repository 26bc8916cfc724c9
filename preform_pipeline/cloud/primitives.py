"""The Web API's plain values: its print statuses, and its timestamps read as datetimes.

Apart from the models (``models.py`` re-exports them) because the simulators use them too:
the PreFormServer simulator's fleet outcomes and the Dashboard simulator's filters and
timelines need these and none of the models, whose dozen dataclasses cost ~10 ms of every
simulator start to build.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

__all__ = ["PRINT_STATUSES", "TERMINAL_PRINT_STATUSES", "parse_datetime"]

#: Every print status the Web API documents (also the values the ``status`` filter accepts).
PRINT_STATUSES = frozenset(
    {
        "QUEUED",
        "PREPRINT",
        "PRINTING",
        "PAUSING",
        "PAUSED",
        "FINISHED",
        "ABORTING",
        "ABORTED",
        "ERROR",
        "WAITING_FOR_RESOLUTION",
        "PREHEAT",
        "PRECOAT",
        "POSTCOAT",
    }
)
#: Statuses after which a print run does not change any more.
TERMINAL_PRINT_STATUSES = frozenset({"FINISHED", "ABORTED", "ERROR"})

_ISO_8601 = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}(?::\d{2})?)"
    r"(?:[.,](?P<fraction>\d+))?(?P<zone>[Zz]|[+-]\d{2}(?::?\d{2})?)?$"
)


def parse_datetime(value: Any) -> datetime | None:
    """An ISO 8601 timestamp as an aware datetime; ``None`` for anything else.

    Written out rather than left to ``datetime.fromisoformat`` because Python 3.10's version
    rejects a ``Z`` suffix and fractions that are not 3 or 6 digits long.
    """
    if not isinstance(value, str):
        return None
    match = _ISO_8601.match(value.strip())
    if match is None:
        return None
    clock = match["time"] if match["time"].count(":") == 2 else match["time"] + ":00"
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    zone = match["zone"] or "+00:00"
    if zone in ("Z", "z"):
        zone = "+00:00"
    elif len(zone) == 3:
        zone += ":00"
    elif ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    try:
        parsed = datetime.fromisoformat(f"{match['date']}T{clock}.{fraction}{zone}")
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)

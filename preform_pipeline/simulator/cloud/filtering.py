"""The Web API's list filters as both fakes of the Dashboard apply them.

The Dashboard simulator (a real HTTP server) and the in-process ``FakeWebApi`` read a query
the same way: the last non-empty value of a key counts, a date is an ISO 8601 time or a
``YYYY-MM-DD`` day, and a bad value is refused with the field-keyed 400 body Django REST
framework answers. Which print runs pass is :meth:`~preform_pipeline.cloud.PrintFilter.matches`,
the value the client sends, so the rule is written once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Final

from preform_pipeline.cloud.filters import DATE_FILTER_KEYS, PrintFilter, created_within
from preform_pipeline.cloud.primitives import parse_datetime

__all__ = [
    "BadFilter",
    "Query",
    "filter_events",
    "filter_prints",
    "last_value",
    "print_filter",
]

#: A parsed query string: every value of every key, in order.
Query = Mapping[str, Sequence[str]]
Record = dict[str, Any]

_DATE_ONLY: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EXACT_EVENT_FILTERS: Final = ("printer", "tank", "cartridge", "type")


class BadFilter(ValueError):
    """A filter value the Web API refuses; ``body`` is its 400 answer."""

    def __init__(self, body: Record) -> None:
        super().__init__(str(body))
        self.body = body


def print_filter(query: Query) -> PrintFilter:
    """The print filter a query names (dates are checked even when nothing is listed)."""
    status = last_value(query, "status")
    dates = {key: _when(query, key) for key in DATE_FILTER_KEYS}
    try:
        return PrintFilter(
            date=dates["date"],
            date__gt=dates["date__gt"],
            date__lt=dates["date__lt"],
            machine_type_id=tuple(dict.fromkeys(v for v in query.get("machine_type_id", []) if v)),
            material=last_value(query, "material"),
            name=last_value(query, "name"),
            printer=last_value(query, "printer"),
            status=status,
        )
    except ValueError:
        message = f"Select a valid choice. {status} is not one of the available choices."
        raise BadFilter({"status": [message]}) from None


def filter_prints(
    runs: Sequence[Record], query: Query, machine_type_of: Callable[[Record], str | None]
) -> list[Record]:
    """The runs a prints query keeps; ``machine_type_of`` names the type a run printed on."""
    wanted = print_filter(query)
    return [run for run in runs if wanted.matches(run, machine_type_of(run))]


def filter_events(events: Sequence[Record], query: Query) -> list[Record]:
    """The events an events query keeps: serials, print run id, type, ``created_at`` bounds."""
    bounds = [(key, _when(query, key)) for key in DATE_FILTER_KEYS[1:]]
    given = [(key, bound) for key, bound in bounds if bound is not None]
    exact = {key: last_value(query, key) for key in _EXACT_EVENT_FILTERS}
    print_run = last_value(query, "print_run")

    def keep(event: Record) -> bool:
        if not created_within(event.get("created_at"), given):
            return False
        if any(value is not None and event.get(key) != value for key, value in exact.items()):
            return False
        return print_run is None or (event.get("print_run") or {}).get("guid") == print_run

    return [event for event in events if keep(event)]


def last_value(query: Query, key: str) -> str | None:
    """The value of a query key that counts: the last non-empty one."""
    values = [v for v in query.get(key, []) if v != ""]
    return values[-1] if values else None


def _when(query: Query, key: str) -> datetime | date | None:
    """A date filter: an aware datetime, a whole day, or None when absent."""
    text = last_value(query, key)
    if text is None:
        return None
    if _DATE_ONLY.match(text.strip()):
        return date.fromisoformat(text.strip())
    parsed = parse_datetime(text)
    if parsed is None:
        raise BadFilter({key: ["Enter a valid date/time."]})
    return parsed

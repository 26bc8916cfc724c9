"""The print filters of the Web API's prints feed, as one value.

:class:`PrintFilter` is written once and read from both sides: the client turns it into the
query the API documents (:meth:`PrintFilter.params`), and both fakes of the Dashboard decide
with it which print runs a query keeps (:meth:`PrintFilter.matches`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from preform_pipeline.cloud.primitives import PRINT_STATUSES, parse_datetime

__all__ = ["DATE_FILTER_KEYS", "PrintFilter", "created_within", "format_datetime"]

#: The filters on a record's ``created_at``: exactly, after, before.
DATE_FILTER_KEYS = ("date", "date__gt", "date__lt")

Bound = datetime | date


def format_datetime(value: datetime) -> str:
    """A filter timestamp as the Web API expects: ISO 8601 in UTC with a ``Z`` suffix.

    Naive datetimes are refused: the server would read them in its own zone, which silently
    shifts the window a verification poll looks at.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{value!r} has no timezone; pass an aware datetime (e.g. datetime.now(timezone.utc))"
        )
    utc = value.astimezone(timezone.utc)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}"
    return text + "Z"


@dataclass(frozen=True)
class PrintFilter:
    """Which print runs to list; every field left as None (or empty) lets all runs through.

    Dates bound ``created_at`` (a ``date`` means the whole UTC day); ``name`` matches a
    substring; ``printer``, ``status`` and ``material`` match exactly; a run matches any of
    several ``machine_type_id``. An unknown ``status`` is refused when the filter is made.
    """

    date: Bound | None = None
    date__gt: Bound | None = None
    date__lt: Bound | None = None
    machine_type_id: str | Sequence[str] = ()
    material: str | None = None
    name: str | None = None
    printer: str | None = None
    status: str | None = None

    def __post_init__(self) -> None:
        ids = self.machine_type_id
        object.__setattr__(
            self, "machine_type_id", (ids,) if isinstance(ids, str) else tuple(ids)
        )
        if self.status is not None and self.status not in PRINT_STATUSES:
            known = ", ".join(sorted(PRINT_STATUSES))
            raise ValueError(f"unknown print status {self.status!r}; the Web API knows {known}")

    @property
    def machine_types(self) -> tuple[str, ...]:
        """The machine types named (a run on any of them matches)."""
        ids = self.machine_type_id
        return (ids,) if isinstance(ids, str) else tuple(ids)

    def bounds(self) -> list[tuple[str, Bound]]:
        """The date filters given, as (query key, bound)."""
        given = (("date", self.date), ("date__gt", self.date__gt), ("date__lt", self.date__lt))
        return [(key, bound) for key, bound in given if bound is not None]

    def exact(self) -> list[tuple[str, str]]:
        """The filters a run's field must equal, as (field, value). An empty value filters
        nothing, as the Web API reads an empty query value, so it is neither sent nor
        matched."""
        pairs = (("material", self.material), ("printer", self.printer), ("status", self.status))
        return [(key, value) for key, value in pairs if value]

    def params(self) -> list[tuple[str, str]]:
        """The query parameters, encoded as the Web API documents them."""
        query = [(key, _format_bound(bound)) for key, bound in self.bounds()]
        # Documented as an exploded array: one machine_type_id=... per value.
        query += [("machine_type_id", str(item)) for item in self.machine_types]
        named = dict(self.exact())
        if self.name is not None:
            named["name"] = self.name
        return query + [(key, named[key]) for key in sorted(named)]

    def matches(self, run: Mapping[str, Any], machine_type: str | None) -> bool:
        """Whether a print record (as the feed lists it) passes; ``machine_type`` is the
        type of the printer it ran on, which print records do not carry."""
        if not created_within(run.get("created_at"), self.bounds()):
            return False
        if any(run.get(key) != value for key, value in self.exact()):
            return False
        if self.name is not None and self.name not in str(run.get("name") or ""):
            return False
        return not self.machine_types or machine_type in self.machine_types


def created_within(created: Any, bounds: Sequence[tuple[str, Bound]]) -> bool:
    """Whether a record's ``created_at`` lies within date filters given as (key, bound)."""
    if not bounds:
        return True
    when = parse_datetime(created)
    if when is None:
        return False
    for key, bound in bounds:
        left: Bound = when
        if not isinstance(bound, datetime):  # a whole day, in UTC
            left = when.astimezone(timezone.utc).date()
        if key == "date" and left != bound:
            return False
        if key == "date__gt" and not left > bound:
            return False
        if key == "date__lt" and not left < bound:
            return False
    return True


def _format_bound(bound: Bound) -> str:
    return format_datetime(bound) if isinstance(bound, datetime) else bound.isoformat()

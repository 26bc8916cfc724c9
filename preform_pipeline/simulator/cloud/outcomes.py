"""Forced outcomes for the Dashboard simulator: failing or aborting prints, printers going offline.

Without an outcomes file every print finishes. The file (``--outcomes FILE``, JSON or YAML)
says which prints end otherwise and which printers drop off the network::

    jobs:                                   # first matching rule wins
      - name: "*-fail-*"                    # glob on the job name as printed ...
        outcome: ERROR
        at: 0.4                             # ... at 40 % of the print's duration
        message: "Resin level too low"
      - job_id: 0d6c2a0e-...                # ... or the print answer's job id
        outcome: ABORTED
    printers:
      SimulatedForm4-2:
        offline_after_s: 5                  # real seconds after the simulator started
      SimulatedForm3-1:
        offline_at: "2025-01-06T08:00:00Z"  # or from an absolute time

:class:`OutcomesFile` re-reads the file whenever its content changes, so a running test can
force the outcome of a job it is about to print; a change that does not parse is logged and
the previous plan kept.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final

from preform_pipeline.cloud.primitives import parse_datetime
from preform_pipeline.errors import ConfigError
from preform_pipeline.logging import get_logger
from preform_pipeline.wording import noun

__all__ = [
    "ABORTED",
    "DEFAULT_ABORTED_MESSAGE",
    "DEFAULT_ERROR_MESSAGE",
    "DEFAULT_FAILURE_AT",
    "ERROR",
    "FINISHED",
    "OUTCOMES",
    "Outcome",
    "OutcomePlan",
    "OutcomeRule",
    "OutcomesFile",
    "PrinterOutage",
    "load_outcomes",
    "parse_outcomes",
]

log = get_logger(__name__)

FINISHED: Final = "FINISHED"
ERROR: Final = "ERROR"
ABORTED: Final = "ABORTED"
#: The ends a print can be forced to.
OUTCOMES: Final = (FINISHED, ERROR, ABORTED)

#: Where in the print (fraction of its whole duration) a forced error or abort strikes.
DEFAULT_FAILURE_AT: Final = 0.5
DEFAULT_ERROR_MESSAGE: Final = "Simulated print error"
DEFAULT_ABORTED_MESSAGE: Final = "Print aborted (simulated)"

_RULE_KEYS: Final = frozenset({"name", "job_id", "outcome", "at", "message"})
_PRINTER_KEYS: Final = frozenset({"offline_after_s", "offline_at"})


@dataclass(frozen=True)
class Outcome:
    """How one print ends: its final status, when (fraction of its duration) and the message."""

    status: str = FINISHED
    at: float = 1.0
    message: str | None = None


#: Every print not named by a rule.
_NATURAL: Final = Outcome()


@dataclass(frozen=True)
class OutcomeRule:
    """A forced outcome for the jobs whose name matches ``name`` (a glob) or whose id is
    ``job_id``."""

    outcome: Outcome
    name: str | None = None
    job_id: str | None = None

    def matches(self, job_id: str, job_name: str) -> bool:
        if self.job_id is not None:
            return job_id == self.job_id
        return self.name is not None and fnmatch.fnmatchcase(job_name, self.name)


@dataclass(frozen=True)
class PrinterOutage:
    """A printer that goes offline: ``offline_after_s`` after start-up, or at ``offline_at``."""

    serial: str
    offline_after_s: float | None = None
    offline_at: datetime | None = None

    def starts(self, started_at: datetime) -> datetime:
        """The moment the printer drops off (the earlier of both when both are given)."""
        times = []
        if self.offline_at is not None:
            times.append(self.offline_at)
        if self.offline_after_s is not None:
            times.append(started_at + timedelta(seconds=self.offline_after_s))
        return min(times)


@dataclass(frozen=True)
class OutcomePlan:
    """Everything an outcomes file says; the empty plan lets every print finish."""

    rules: tuple[OutcomeRule, ...] = ()
    outages: tuple[PrinterOutage, ...] = field(default_factory=tuple)

    def outcome_for(self, job_id: str, job_name: str) -> Outcome:
        for rule in self.rules:
            if rule.matches(job_id, job_name):
                return rule.outcome
        return _NATURAL

    def offline_from(self, serial: str, started_at: datetime) -> datetime | None:
        times = [o.starts(started_at) for o in self.outages if o.serial == serial]
        return min(times) if times else None


def _fail(source: str, where: str, message: str) -> ConfigError:
    return ConfigError(
        f"{where}: {message}",
        source=source,
        hint="see docs/dashboard-simulator.md, 'Forcing outcomes', for the file format",
    )


def _fraction(value: Any, source: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(source, where, f"must be a number from 0 to 1, not {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise _fail(source, where, f"must be from 0 to 1, not {value}")
    return float(value)


def _text(value: Any, source: str, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(source, where, f"must be a non-empty string, not {value!r}")
    return value


def _rule(entry: Any, source: str, where: str) -> OutcomeRule:
    if not isinstance(entry, Mapping):
        raise _fail(source, where, "must be a mapping with 'name' or 'job_id' and 'outcome'")
    unknown = sorted(set(entry) - _RULE_KEYS)
    if unknown:
        raise _fail(source, where,
                    f"unknown {noun(len(unknown), 'key')} {unknown}; known: {sorted(_RULE_KEYS)}")
    if ("name" in entry) == ("job_id" in entry):
        raise _fail(source, where, "needs exactly one of 'name' (a glob) or 'job_id'")
    status = entry.get("outcome")
    if status not in OUTCOMES:
        raise _fail(source, f"{where}.outcome", f"must be one of {list(OUTCOMES)}, not {status!r}")
    if status == FINISHED:
        outcome = _NATURAL
    else:
        at = _fraction(entry.get("at", DEFAULT_FAILURE_AT), source, f"{where}.at")
        default = DEFAULT_ERROR_MESSAGE if status == ERROR else DEFAULT_ABORTED_MESSAGE
        message = _text(entry.get("message", default), source, f"{where}.message")
        outcome = Outcome(status=status, at=at, message=message)
    if "name" in entry:
        return OutcomeRule(outcome, name=_text(entry["name"], source, f"{where}.name"))
    return OutcomeRule(outcome, job_id=_text(entry["job_id"], source, f"{where}.job_id"))


def _outage(serial: Any, entry: Any, source: str, where: str) -> PrinterOutage:
    if not isinstance(serial, str) or not serial:
        raise _fail(source, where, f"printer serials must be strings, not {serial!r}")
    if not isinstance(entry, Mapping) or not entry:
        raise _fail(source, where, "must be a mapping with 'offline_after_s' or 'offline_at'")
    unknown = sorted(set(entry) - _PRINTER_KEYS)
    if unknown:
        raise _fail(source, where, f"unknown {noun(len(unknown), 'key')} {unknown}; "
                    f"known: {sorted(_PRINTER_KEYS)}")
    after = entry.get("offline_after_s")
    if after is not None and (
        isinstance(after, bool) or not isinstance(after, (int, float)) or after < 0
    ):
        raise _fail(source, f"{where}.offline_after_s", f"must be seconds >= 0, not {after!r}")
    at_text = entry.get("offline_at")
    at = None
    if at_text is not None:
        # YAML reads an unquoted timestamp as a datetime already.
        at = at_text if isinstance(at_text, datetime) else parse_datetime(at_text)
        if at is None:
            raise _fail(
                source, f"{where}.offline_at", f"must be an ISO 8601 time, not {at_text!r}"
            )
        if at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)
    return PrinterOutage(
        serial, offline_after_s=None if after is None else float(after), offline_at=at
    )


def parse_outcomes(data: Any, source: str = "outcomes") -> OutcomePlan:
    """An :class:`OutcomePlan` from the decoded file; :class:`ConfigError` says what is wrong."""
    if data is None:
        return OutcomePlan()
    if not isinstance(data, Mapping):
        raise _fail(source, "$", "must be a mapping with 'jobs' and/or 'printers'")
    unknown = sorted(set(data) - {"jobs", "printers"})
    if unknown:
        raise _fail(source, "$", f"unknown {noun(len(unknown), 'key')} {unknown}; "
                    "known: ['jobs', 'printers']")
    jobs = data.get("jobs") or []
    if not isinstance(jobs, list):
        raise _fail(source, "$.jobs", "must be a list of rules")
    printers = data.get("printers") or {}
    if not isinstance(printers, Mapping):
        raise _fail(source, "$.printers", "must map printer serials to outages")
    return OutcomePlan(
        rules=tuple(_rule(entry, source, f"$.jobs[{i}]") for i, entry in enumerate(jobs)),
        outages=tuple(
            _outage(serial, entry, source, f"$.printers.{serial}")
            for serial, entry in printers.items()
        ),
    )


def load_outcomes(path: Path) -> OutcomePlan:
    """Read and check an outcomes file (JSON is YAML, so one reader takes both)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the outcomes file: {exc}", source=str(path), hint="check the path"
        ) from exc
    return _parse_text(text, str(path))


def _parse_text(text: str, source: str) -> OutcomePlan:
    # Imported when a file is read: a simulator's fleet has no outcomes file unless a test or
    # a demo writes one, and PyYAML is ~30 modules of every simulator's start otherwise.
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"not valid JSON or YAML: {exc}", source=source, hint="fix the file's syntax"
        ) from exc
    return parse_outcomes(data, source)


class OutcomesFile:
    """An outcomes file read again whenever its content changes; the last good plan stays.

    The file is small, so it is read on every call and compared byte for byte: a test that
    rewrites it twice within one tick of the file system's clock is still seen.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._content = self._read()
        self._plan = load_outcomes(path)  # a bad file at start-up is the caller's error

    def _read(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except OSError:
            return None

    def current(self) -> OutcomePlan:
        content = self._read()
        with self._lock:
            if content == self._content:
                return self._plan
            self._content = content
            if content is None:
                log.warning("outcomes_file_missing", path=str(self.path))
                self._plan = OutcomePlan()
                return self._plan
            try:
                self._plan = _parse_text(content.decode("utf-8", "replace"), str(self.path))
            except ConfigError as exc:
                log.error("outcomes_reload_failed", path=str(self.path), error=str(exc))
            else:
                log.info(
                    "outcomes_reloaded",
                    path=str(self.path),
                    rules=len(self._plan.rules),
                    outages=len(self._plan.outages),
                )
            return self._plan

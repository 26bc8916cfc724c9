"""``jobs``'s command line: its arguments, cheap to import (arguments/__init__.py)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final

from preform_pipeline.commands.arguments import COMMANDS
from preform_pipeline.commands.arguments.common import store_argument
from preform_pipeline.store.model import (
    ACTIVE_STATES,
    INTERRUPTED_STATES,
    PRINT_PENDING_STATES,
    RETRYABLE_STATES,
    TERMINAL_STATES,
    JobState,
    parse_state,
)

__all__ = [
    "DEFAULT_LIMIT",
    "FORMATS",
    "HELP",
    "NAME",
    "STATE_GROUPS",
    "add_arguments",
    "parse_since",
    "parse_state_filter",
]

NAME: Final = "jobs"
HELP: Final = COMMANDS[NAME]

FORMATS = ("text", "json")

#: The list shows the most recent jobs only, unless --limit says otherwise (0: all).
DEFAULT_LIMIT: Final = 100

#: Names ``--state`` accepts besides single states.
STATE_GROUPS: Final[Mapping[str, frozenset[JobState]]] = {
    "active": ACTIVE_STATES,
    "terminal": TERMINAL_STATES,
    "interrupted": INTERRUPTED_STATES,
    "pending": PRINT_PENDING_STATES,
    "retryable": RETRYABLE_STATES,
}

_AGE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)

_AGE_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_state_filter(text: str) -> frozenset[JobState]:
    """``failed,print-sent`` or a group name → the states; ArgumentTypeError when unknown."""
    states: set[JobState] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        group = STATE_GROUPS.get(part.lower())
        if group is not None:
            states |= group
            continue
        try:
            states.add(parse_state(part))
        except ValueError as exc:
            groups = ", ".join(STATE_GROUPS)
            raise argparse.ArgumentTypeError(f"{exc}; groups: {groups}") from None
    if not states:
        raise argparse.ArgumentTypeError("no state given")
    return frozenset(states)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """An age (``12h``, ``1d``) before ``now``, or an ISO date/time (local time if no zone)."""
    now = now or datetime.now(timezone.utc)
    match = _AGE.match(text)
    if match:
        try:
            return now - timedelta(seconds=float(match[1]) * _AGE_UNITS[match[2].lower()])
        except OverflowError:
            # An age back past the year 1 (99999999d) or beyond any float (400 digits): the
            # arithmetic's OverflowError came out of argparse as a traceback.
            raise argparse.ArgumentTypeError(
                f"{text.strip()!r} reaches back before the year 1: give an age such as 30d or "
                "a date (2024-05-01)"
            ) from None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither an age (30m, 12h, 1d, 2w) nor a date/time (2024-05-01, "
            "2024-05-01T08:00)"
        ) from None
    # A date without a zone is the user's local time, as they read clocks.
    return moment if moment.tzinfo else moment.astimezone()


def _since(text: str) -> datetime:
    return parse_since(text)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; 0 means all")
    return value


def _common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # Subcommands repeat the common options with SUPPRESS defaults, so `jobs --store X show 3`
    # and `jobs show 3 --store X` both work and neither resets the other.
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--store", metavar="PATH|URL", type=store_argument, default=default(None),
        help="job store file or postgresql:// URL (default: store.url or store.path from the "
        "settings, "
        "PREFORM_PIPELINE_STORE_PATH, or jobs.sqlite3 in the user's data folder)",
    )
    parser.add_argument(
        "--settings", type=Path, metavar="FILE", default=default(None),
        help="settings YAML file (for store.url or store.path)",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default=default("text"),
        help="text (default) or json",
    )


def _filters(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--state", type=parse_state_filter, action="append", metavar="S[,S...]",
        default=default(None),
        help="only jobs in these states (repeatable); also active, terminal, interrupted, "
        "pending, retryable",
    )
    parser.add_argument("--recipe", metavar="R", default=default(None), help="only this recipe")
    parser.add_argument(
        "--since", type=_since, metavar="WHEN", default=default(None),
        help="only jobs changed since: an age (30m, 12h, 1d, 2w) or a date/time "
        "(2024-05-01, 2024-05-01T08:00; local time unless a zone is given)",
    )
    parser.add_argument(
        "--limit", type=_count, metavar="N", default=default(DEFAULT_LIMIT),
        help=f"show the N most recent matching jobs (default {DEFAULT_LIMIT}; 0: all)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser, suppress=False)
    _filters(parser, suppress=False)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser("list", help="list jobs (the default action)",
                                 description="list jobs (the default action)")
    _common(listing, suppress=True)
    _filters(listing, suppress=True)
    for name, text in (
        ("show", "show one job, its build and print, and its history"),
        ("retry", "queue a failed, aborted, errored, unverified, cancelled or skipped job again"),
        ("cancel", "cancel a job whose print has not been sent"),
        ("resolve", "settle an unverified print by hand: --printed or --not-printed"),
        ("waiting", "list the builds waiting for a free printer, in the order they go out"),
        ("approve", "approve a build held for approval: it is then sent when its printer is "
         "free"),
        ("reject", "reject a build held for approval (--reason): its cases fail"),
    ):
        sub = actions.add_parser(name, help=text, description=text)
        if name != "waiting":
            sub.add_argument(
                "job", metavar="JOB",
                help="job id, job key (PP-...) or case id (case:ID if it could be read as an id)"
                if name != "resolve" else "job id or job key (PP-...)",
            )
        _common(sub, suppress=True)
        if name == "reject":
            sub.add_argument("--reason", required=True,
                             help="what is wrong (written into each case's error note)")
        if name == "retry":
            sub.add_argument(
                "--force", action="store_true",
                help="queue a failed job again even though a later job printed the same file "
                "with the same recipe (it prints once more)")
        if name == "resolve":
            answer = sub.add_mutually_exclusive_group(required=True)
            answer.add_argument("--printed", dest="printed", action="store_true",
                                default=None, help="the print exists on the printer")
            answer.add_argument("--not-printed", dest="printed", action="store_false",
                                help="the print does not exist; `jobs retry` prints it again")

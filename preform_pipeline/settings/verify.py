"""The ``verify`` settings section: how printed jobs are verified, and who is told.

```yaml
verify:
  interval_s: 120                                 # between polls while nothing says otherwise
  deadline_s: 86400                               # then a print is `unverified`
  requests_per_hour: 60                           # most requests verification spends an hour
  lookup_grace_s: 300                             # before an interrupted send counts as unsent
  notifications:
    webhook_url: https://hooks.example.com/T0/B0/xyz
    command: [notify-send, "preform-pipeline"]    # JSON on stdin; no shell
```

docs/verification.md explains each key; the notifier made from the section is built beside it
(:func:`preform_pipeline.verify.notify.make_notifier`).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from preform_pipeline.errors import ConfigError
from preform_pipeline.logging import redact_url
from preform_pipeline.settings.reading import SourceOf, unknown_source

__all__ = [
    "DEFAULT_LOOKUP_GRACE_S",
    "DEFAULT_POLL_INTERVAL_S",
    "DEFAULT_POLL_REQUESTS_PER_HOUR",
    "DEFAULT_VERIFY_DEADLINE_S",
    "NotificationSettings",
    "VerifySettings",
    "read_verify_settings",
    "split_command",
]

#: Interval between polls while nothing says otherwise (no estimate in the feed yet).
DEFAULT_POLL_INTERVAL_S: Final = 120.0
#: A print without a final status this long after it was sent is marked ``unverified``.
#: Long prints (a Form 4L platform) take 15 hours and more, and a print may first wait in a
#: printer's queue behind another; a later ``preform-pipeline verify`` still settles it.
DEFAULT_VERIFY_DEADLINE_S: Final = 24 * 3600.0
#: Most Web API requests verification spends in an hour (each page counts); at 1,500 requests
#: an hour for the whole account, 60 leaves the rest to everything else.
DEFAULT_POLL_REQUESTS_PER_HOUR: Final = 60.0
#: How long after a send a Dashboard-connected printer has to show a job it accepted (the
#: Web API locator's report delay). A minute of a slow link is covered several times over.
DEFAULT_LOOKUP_GRACE_S: Final = 300.0


def split_command(command: str | Sequence[str]) -> tuple[str, ...]:
    """A command as its argument list: a list as given, a string split as a shell would (on
    Windows with Windows quoting rules off, so backslashes in paths survive)."""
    if isinstance(command, str):
        return tuple(shlex.split(command, posix=os.name != "nt"))
    return tuple(str(part) for part in command)


@dataclass(frozen=True)
class NotificationSettings:
    """Where to send notifications; nothing is sent when both are unset."""

    webhook_url: str | None = None
    command: tuple[str, ...] = ()

    def __repr__(self) -> str:
        hook = redact_url(self.webhook_url) if self.webhook_url else None
        return f"NotificationSettings(webhook_url={hook!r}, command={self.command!r})"

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url) or bool(self.command)


@dataclass(frozen=True)
class VerifySettings:
    """How printed jobs are verified through the Web API (docs/verification.md)."""

    interval_s: float = DEFAULT_POLL_INTERVAL_S
    deadline_s: float = DEFAULT_VERIFY_DEADLINE_S
    requests_per_hour: float = DEFAULT_POLL_REQUESTS_PER_HOUR
    lookup_grace_s: float = DEFAULT_LOOKUP_GRACE_S
    notifications: NotificationSettings = field(default_factory=NotificationSettings)


def read_verify_settings(
    raw: Mapping[str, Any], source_of: SourceOf = unknown_source
) -> VerifySettings:
    """The ``verify`` section from its raw mapping (already valid against the schema)."""
    defaults = VerifySettings()
    notes = raw.get("notifications", {})
    command = notes.get("command")
    if isinstance(command, str):
        try:
            words = split_command(command)
        except ValueError as exc:
            raise ConfigError(
                f"$.verify.notifications.command: cannot be split into words: {exc}",
                source=source_of(["verify", "notifications", "command"]),
                hint="give the command as a list: [program, arg, ...]",
            ) from None
    else:
        words = tuple(str(w) for w in command or ())
    return VerifySettings(
        interval_s=float(raw.get("interval_s", defaults.interval_s)),
        deadline_s=float(raw.get("deadline_s", defaults.deadline_s)),
        requests_per_hour=float(raw.get("requests_per_hour", defaults.requests_per_hour)),
        lookup_grace_s=float(raw.get("lookup_grace_s", defaults.lookup_grace_s)),
        notifications=NotificationSettings(
            webhook_url=notes.get("webhook_url") or None, command=words
        ),
    )

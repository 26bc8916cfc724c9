"""The ``cloud`` and ``verify`` settings sections, and the Web API client made from them.

```yaml
cloud:
  client_id_file: secrets/formlabs-client-id      # or client_id; env wins (docs/cloud.md)
  client_secret_file: secrets/formlabs-secret     # or client_secret
  base_url: https://api.formlabs.com
  hourly_budget_share: 0.8                        # of the account's 1,500 requests/hour
  max_requests_per_second: 20
verify:
  interval_s: 120                                 # between polls while nothing says otherwise
  deadline_s: 86400                               # then a print is `unverified`
  requests_per_hour: 60                           # most requests verification spends an hour
  lookup_grace_s: 300                             # before an interrupted send counts as unsent
  notifications:
    webhook_url: https://hooks.example.com/T0/B0/xyz
    command: [notify-send, "preform-pipeline"]    # JSON on stdin; no shell
```

Values are frozen dataclasses with ``DEFAULT_*`` constants; :func:`read_cloud_settings` and
:func:`read_verify_settings` turn the raw (schema-validated) mappings into them, and
``config.load_settings`` calls both. Credentials are looked up by
:func:`preform_pipeline.cloud.load_credentials` (environment first), never from the command
line; secrets never show in a repr.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from preform_pipeline.clock import SYSTEM_CLOCK, Clock, Sleep
from preform_pipeline.cloud import (
    DEFAULT_WEB_API_URL,
    Credentials,
    RateLimiter,
    WebApiClient,
    load_credentials,
)
from preform_pipeline.cloud.credentials import (
    ENV_CLIENT_ID,
    ENV_CLIENT_ID_FILE,
    ENV_CLIENT_SECRET,
    ENV_CLIENT_SECRET_FILE,
)
from preform_pipeline.cloud.ratelimit import DEFAULT_HOURLY_BUDGET_SHARE, DEFAULT_MAX_PER_SECOND
from preform_pipeline.errors import CloudAuthError, ConfigError
from preform_pipeline.verify.lookup import DEFAULT_LOOKUP_GRACE_S
from preform_pipeline.verify.notify import Notifier, redact_url, split_command
from preform_pipeline.verify.poller import (
    DEFAULT_POLL_INTERVAL_S,
    DEFAULT_POLL_REQUESTS_PER_HOUR,
    DEFAULT_VERIFY_DEADLINE_S,
)

__all__ = [
    "CloudSettings",
    "NotificationSettings",
    "VerifySettings",
    "check_credentials",
    "credentials_configured",
    "load_cloud_credentials",
    "make_notifier",
    "make_web_client",
    "read_cloud_settings",
    "read_verify_settings",
]

_CREDENTIAL_ENV: Final = (
    ENV_CLIENT_ID, ENV_CLIENT_ID_FILE, ENV_CLIENT_SECRET, ENV_CLIENT_SECRET_FILE
)

SourceOf = Callable[[Sequence[str | int]], str]


@dataclass(frozen=True)
class CloudSettings:
    """Where the Web API is and how much of its request budget the pipeline may use.

    Credentials set here are the fallback after the environment (``docs/cloud.md``); relative
    ``*_file`` paths are already resolved against the settings file's folder.
    """

    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    client_id_file: Path | None = None
    client_secret_file: Path | None = None
    base_url: str = DEFAULT_WEB_API_URL
    hourly_budget_share: float = DEFAULT_HOURLY_BUDGET_SHARE
    max_requests_per_second: float = DEFAULT_MAX_PER_SECOND
    #: Names this section in error messages (``settings.yaml: cloud``).
    source: str = "settings: cloud"

    def credentials_section(self) -> dict[str, str]:
        """The section as :func:`~preform_pipeline.cloud.load_credentials` reads it."""
        section: dict[str, str] = {}
        for key in ("client_id", "client_secret", "client_id_file", "client_secret_file"):
            value = getattr(self, key)
            if value is not None:
                section[key] = str(value)
        return section


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


def _resolve(text: str, base: Path) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


def read_cloud_settings(
    raw: Mapping[str, Any],
    base: Path,
    source_of: SourceOf = lambda _path: "settings",
) -> CloudSettings:
    """The ``cloud`` section from its raw mapping (already valid against the schema)."""
    defaults = CloudSettings()
    id_file = raw.get("client_id_file")
    secret_file = raw.get("client_secret_file")
    return CloudSettings(
        client_id=raw.get("client_id"),
        client_secret=raw.get("client_secret"),
        client_id_file=_resolve(str(id_file), base) if id_file else None,
        client_secret_file=_resolve(str(secret_file), base) if secret_file else None,
        base_url=str(raw.get("base_url", defaults.base_url)).rstrip("/"),
        hourly_budget_share=float(raw.get("hourly_budget_share", defaults.hourly_budget_share)),
        max_requests_per_second=float(
            raw.get("max_requests_per_second", defaults.max_requests_per_second)
        ),
        source=f"{source_of(['cloud'])}: cloud",
    )


def read_verify_settings(
    raw: Mapping[str, Any],
    base: Path,
    source_of: SourceOf = lambda _path: "settings",
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


def credentials_configured(cloud: CloudSettings, env: Mapping[str, str] = os.environ) -> bool:
    """True when any source names a client id or secret (so a missing half is an error, and
    none at all means: no Web API)."""
    return any(env.get(name) for name in _CREDENTIAL_ENV) or bool(cloud.credentials_section())


def load_cloud_credentials(
    cloud: CloudSettings, env: Mapping[str, str] = os.environ
) -> Credentials:
    """The client id and secret from the environment or this section (ConfigError if absent)."""
    return load_credentials(cloud.credentials_section(), env, settings_source=cloud.source)


def make_web_client(
    cloud: CloudSettings,
    credentials: Credentials,
    *,
    clock: Clock = SYSTEM_CLOCK,
    sleep: Sleep = time.sleep,
    **options: Any,
) -> WebApiClient:
    """A Web API client with the section's base URL, request rate and hourly budget share."""
    limiter = RateLimiter(
        max_per_second=cloud.max_requests_per_second,
        hourly_share=cloud.hourly_budget_share,
        clock=clock,
        sleep=sleep,
    )
    return WebApiClient(
        credentials, base_url=cloud.base_url, limiter=limiter, clock=clock, sleep=sleep, **options
    )


def check_credentials(client: WebApiClient) -> None:
    """Fetch a token and read one record now, so refused credentials fail before anything is
    sent, not hours later; raises :class:`~preform_pipeline.errors.CloudAuthError`."""
    try:
        client.list_prints_page(1, per_page=1)
    except CloudAuthError as exc:
        exc.hint = (
            "check the client id and secret (PREFORM_PIPELINE_CLIENT_ID / _SECRET, their _FILE "
            "forms, or the settings' cloud section) on the Dashboard's Developer Tools page; "
            "nothing was sent to a printer"
        )
        raise


def make_notifier(settings: NotificationSettings, **options: Any) -> Notifier | None:
    """A :class:`Notifier` for the configured channels, or None when none is configured."""
    if not settings.enabled:
        return None
    return Notifier(webhook_url=settings.webhook_url, command=settings.command or None, **options)

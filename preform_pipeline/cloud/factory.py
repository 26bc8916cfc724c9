"""A Web API client made from the ``cloud`` settings section, and its credentials.

Beside the client on purpose: the settings stay plain values, and what is built from them is
built where it lives.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any, Final

from preform_pipeline.clock import SYSTEM_CLOCK, Clock, Sleep
from preform_pipeline.cloud.client import WebApiClient
from preform_pipeline.cloud.credentials import (
    ENV_CLIENT_ID,
    ENV_CLIENT_ID_FILE,
    ENV_CLIENT_SECRET,
    ENV_CLIENT_SECRET_FILE,
    Credentials,
    load_credentials,
)
from preform_pipeline.cloud.ratelimit import (
    DEFAULT_LOUD_WAIT_S,
    RateLimiter,
    RequestLedger,
    account_key,
)
from preform_pipeline.errors import CloudAuthError
from preform_pipeline.settings.cloud import CloudSettings

__all__ = [
    "WEB_API_MAX_WAIT_S",
    "budget_account",
    "check_credentials",
    "credentials_configured",
    "load_cloud_credentials",
    "make_web_client",
]

#: The longest wait for the Web API's rate limits a client of work that has something else to
#: do takes (``make_web_client(max_wait_s=...)``): the hot folder's, and a ``run``'s (which
#: chooses printers and looks up interrupted sends with it). Shorter than a wait worth a
#: warning; a longer one fails at once, and what needed it goes on without it (printer status
#: from the Local API) or later (a lookup, a poll), as each caller says.
WEB_API_MAX_WAIT_S: Final = DEFAULT_LOUD_WAIT_S

_CREDENTIAL_ENV: Final = (
    ENV_CLIENT_ID, ENV_CLIENT_ID_FILE, ENV_CLIENT_SECRET, ENV_CLIENT_SECRET_FILE
)


def credentials_configured(cloud: CloudSettings, env: Mapping[str, str] = os.environ) -> bool:
    """True when any source names a client id or secret (so a missing half is an error, and
    none at all means: no Web API)."""
    return any(env.get(name) for name in _CREDENTIAL_ENV) or bool(cloud.credentials_section())


def load_cloud_credentials(
    cloud: CloudSettings, env: Mapping[str, str] = os.environ
) -> Credentials:
    """The client id and secret from the environment or this section (ConfigError if absent)."""
    return load_credentials(cloud.credentials_section(), env, settings_source=cloud.source,
                            files_written=cloud.files_written)


def budget_account(cloud: CloudSettings, credentials: Credentials) -> str:
    """The name the job store keeps this section's hourly budget and holds under."""
    # The Web API's hourly limit is per user: applications of one user (a client id per
    # node) share one budget when the settings name that user.
    return account_key(cloud.base_url, cloud.account or credentials.client_id)


def make_web_client(
    cloud: CloudSettings,
    credentials: Credentials,
    *,
    clock: Clock = SYSTEM_CLOCK,
    sleep: Sleep = time.sleep,
    ledger: RequestLedger | None = None,
    **options: Any,
) -> WebApiClient:
    """A Web API client with the section's base URL, request rate and hourly budget share.

    ``ledger``: where the hourly budget is kept with every other process that spends it for the
    same account (``cloud.account``, else the client id): the job store the command opened
    (docs/cloud.md). Without one, the budget is this process's own.
    """
    limiter = RateLimiter(
        max_per_second=cloud.max_requests_per_second,
        hourly_share=cloud.hourly_budget_share,
        clock=clock,
        sleep=sleep,
        ledger=ledger,
        account=budget_account(cloud, credentials),
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
            f"{client.auth.credentials.where_to_check()} on the Dashboard's Developer Tools "
            "page; nothing was sent to a printer"
        )
        raise

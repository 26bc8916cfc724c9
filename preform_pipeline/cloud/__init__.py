"""Formlabs Web API (Dashboard Developer API): credentials, OAuth2 auth, rate limits, client.

``WebApiClient`` is the entry point; see ``docs/cloud.md`` for configuration and behaviour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from preform_pipeline.lazyexports import lazy_exports

if TYPE_CHECKING:
    from preform_pipeline.cloud.auth import AccessToken, ClientCredentialsAuth
    from preform_pipeline.cloud.client import WebApiClient, format_datetime
    from preform_pipeline.cloud.credentials import Credentials, load_credentials
    from preform_pipeline.cloud.factory import (
        WEB_API_MAX_WAIT_S,
        budget_account,
        check_credentials,
        credentials_configured,
        load_cloud_credentials,
        make_web_client,
    )
    from preform_pipeline.cloud.filters import PrintFilter
    from preform_pipeline.cloud.models import (
        PRINT_STATUSES,
        TERMINAL_PRINT_STATUSES,
        Cartridge,
        Event,
        GroupMember,
        GroupRef,
        NewGroup,
        Page,
        Printer,
        PrinterGroup,
        PrintPart,
        PrintRun,
        QueueItem,
        Tank,
    )
    from preform_pipeline.cloud.ratelimit import BudgetSnapshot, RateLimiter, parse_retry_after
    from preform_pipeline.settings.cloud import DEFAULT_WEB_API_URL


__all__ = [
    "DEFAULT_WEB_API_URL",
    "PRINT_STATUSES",
    "TERMINAL_PRINT_STATUSES",
    "AccessToken",
    "BudgetSnapshot",
    "Cartridge",
    "ClientCredentialsAuth",
    "Credentials",
    "Event",
    "GroupMember",
    "GroupRef",
    "NewGroup",
    "Page",
    "PrintFilter",
    "PrintPart",
    "PrintRun",
    "Printer",
    "PrinterGroup",
    "QueueItem",
    "RateLimiter",
    "Tank",
    "WEB_API_MAX_WAIT_S",
    "WebApiClient",
    "format_datetime",
    "budget_account",
    "check_credentials",
    "credentials_configured",
    "load_cloud_credentials",
    "load_credentials",
    "make_web_client",
    "parse_retry_after",
]

#: Where each name lives: imported on first use (lazyexports.py), so importing one module of
#: the package does not import all the others.
_HOMES: Final = {
    "preform_pipeline.cloud.auth": (
        "AccessToken",
        "ClientCredentialsAuth",
    ),
    "preform_pipeline.cloud.client": (
        "WebApiClient",
        "format_datetime",
    ),
    "preform_pipeline.cloud.credentials": (
        "Credentials",
        "load_credentials",
    ),
    "preform_pipeline.cloud.factory": (
        "WEB_API_MAX_WAIT_S",
        "budget_account",
        "check_credentials",
        "credentials_configured",
        "load_cloud_credentials",
        "make_web_client",
    ),
    "preform_pipeline.cloud.filters": (
        "PrintFilter",
    ),
    "preform_pipeline.cloud.models": (
        "PRINT_STATUSES",
        "TERMINAL_PRINT_STATUSES",
        "Cartridge",
        "Event",
        "GroupMember",
        "GroupRef",
        "NewGroup",
        "Page",
        "Printer",
        "PrinterGroup",
        "PrintPart",
        "PrintRun",
        "QueueItem",
        "Tank",
    ),
    "preform_pipeline.cloud.ratelimit": (
        "BudgetSnapshot",
        "RateLimiter",
        "parse_retry_after",
    ),
    "preform_pipeline.settings.cloud": (
        "DEFAULT_WEB_API_URL",
    ),
}

__getattr__ = lazy_exports(__name__, _HOMES)

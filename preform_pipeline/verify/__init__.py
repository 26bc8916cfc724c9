"""Printing and verification: did the job really print? (docs/verification.md)

Modules, one concern each:

============  ======================================================================
poller        one shared poll of the Web API prints feed for every pending print
service       the job store's pending prints through the poller (``verify`` command)
lookup        sends left in print_sending, settled through the print owner (printing/)
targets       ``printer: auto``: the first ready printer of the machine type and material
notify        webhook / command notifications, retried in the background
tracking      the executor's print hooks: job keys, policy, durable sends, verification
hooks         the protocol the executor calls (light: the executor imports it)
settings      the ``cloud`` and ``verify`` settings sections; the Web API client
============  ======================================================================

``config.load_settings`` imports :mod:`.settings`; none of these modules imports the
configuration or the executor at run time, so there is no import cycle.
"""

from __future__ import annotations

from preform_pipeline.verify.hooks import (
    VERIFY_PENDING,
    VERIFY_SKIPPED_DRY_RUN,
    VERIFY_SKIPPED_NO_CREDENTIALS,
    BuildPrintHooks,
    PrintHooks,
)
from preform_pipeline.verify.lookup import (
    DEFAULT_LOOKUP_GRACE_S,
    SettledSend,
    settle_interrupted_sends,
)
from preform_pipeline.verify.notify import Notification, Notifier, redact_url
from preform_pipeline.verify.poller import (
    DEFAULT_FEED_OVERLAP_S,
    DEFAULT_MAX_POLL_INTERVAL_S,
    DEFAULT_MIN_POLL_INTERVAL_S,
    DEFAULT_POLL_INTERVAL_S,
    DEFAULT_POLL_REQUESTS_PER_HOUR,
    DEFAULT_VERIFY_DEADLINE_S,
    PendingPrint,
    PollOutcome,
    PrintProgress,
    VerificationPoller,
    VerificationResult,
    VerifiedStatus,
)
from preform_pipeline.verify.service import VerifyReport, verify_pending
from preform_pipeline.verify.settings import (
    CloudSettings,
    NotificationSettings,
    VerifySettings,
    make_web_client,
)
from preform_pipeline.verify.targets import (
    AUTO_PRINTER,
    LocalApiDevices,
    PrinterCandidate,
    PrinterSource,
    WebApiPrinters,
    select_printer,
)
from preform_pipeline.verify.tracking import PrintTracking

__all__ = [
    "AUTO_PRINTER",
    "DEFAULT_FEED_OVERLAP_S",
    "DEFAULT_LOOKUP_GRACE_S",
    "DEFAULT_MAX_POLL_INTERVAL_S",
    "DEFAULT_MIN_POLL_INTERVAL_S",
    "DEFAULT_POLL_INTERVAL_S",
    "DEFAULT_POLL_REQUESTS_PER_HOUR",
    "DEFAULT_VERIFY_DEADLINE_S",
    "VERIFY_PENDING",
    "VERIFY_SKIPPED_DRY_RUN",
    "VERIFY_SKIPPED_NO_CREDENTIALS",
    "BuildPrintHooks",
    "CloudSettings",
    "LocalApiDevices",
    "Notification",
    "NotificationSettings",
    "Notifier",
    "PendingPrint",
    "PollOutcome",
    "PrintHooks",
    "PrintProgress",
    "PrintTracking",
    "PrinterCandidate",
    "PrinterSource",
    "SettledSend",
    "VerificationPoller",
    "VerificationResult",
    "VerifiedStatus",
    "VerifySettings",
    "VerifyReport",
    "WebApiPrinters",
    "make_web_client",
    "redact_url",
    "select_printer",
    "settle_interrupted_sends",
    "verify_pending",
]

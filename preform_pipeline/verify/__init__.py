"""Printing and verification: did the job really print? (docs/verification.md)

Modules, one concern each:

============  ======================================================================
poller        one shared poll of the Web API prints feed for every pending print
service       the job store's pending prints through the poller (``verify`` command)
lookup        sends left in print_sending, settled through the print owner (printing/)
targets       ``printer: auto``: the first ready printer of the machine type and material
notify        webhook / command notifications, retried in the background
tracking      the executor's print hooks (``executor.hooks``): job keys, policy, durable
              sends, verification
============  ======================================================================

The ``cloud`` and ``verify`` settings sections live in :mod:`preform_pipeline.settings`; the
Web API client made from them in :mod:`preform_pipeline.cloud.factory`.
"""

from __future__ import annotations

from preform_pipeline.verify.lookup import SettledSend, settle_interrupted_sends
from preform_pipeline.verify.notify import Notification, Notifier, make_notifier
from preform_pipeline.verify.poller import (
    DEFAULT_FEED_OVERLAP_S,
    DEFAULT_MAX_POLL_INTERVAL_S,
    DEFAULT_MIN_POLL_INTERVAL_S,
    PendingPrint,
    PollOutcome,
    PrintProgress,
    VerificationPoller,
    VerificationResult,
    VerifiedStatus,
)
from preform_pipeline.verify.service import VerifyReport, verify_pending
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
    "DEFAULT_MAX_POLL_INTERVAL_S",
    "DEFAULT_MIN_POLL_INTERVAL_S",
    "LocalApiDevices",
    "Notification",
    "Notifier",
    "PendingPrint",
    "PollOutcome",
    "PrintProgress",
    "PrintTracking",
    "PrinterCandidate",
    "PrinterSource",
    "SettledSend",
    "VerificationPoller",
    "VerificationResult",
    "VerifiedStatus",
    "VerifyReport",
    "WebApiPrinters",
    "select_printer",
    "settle_interrupted_sends",
    "make_notifier",
    "verify_pending",
]

"""The Formlabs Web API as a :class:`~preform_pipeline.printing.locators.PrintLocator`.

Wherever a job the Dashboard knows can surface, the send's key is searched:

1. the **prints feed** (``GET /prints/?name=<key>``, from just before the send): every print a
   cloud-connected printer started or queued;
2. the **Fleet Control queues** of the account's groups: jobs sent to a group that wait for a
   free printer and are not prints yet;
3. the **target printer** (``GET /printers/{serial}/``): its current and its previous run, which
   a printer reports before the feed lists them.

A request that fails raises :class:`~preform_pipeline.errors.PrintLookupError`: a lookup that
could not be made never reads as "not there".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final

from preform_pipeline.cloud import WebApiClient
from preform_pipeline.cloud.skew import behind_s
from preform_pipeline.errors import CloudAuthError, CloudError, PrintLookupError
from preform_pipeline.logging import get_logger
from preform_pipeline.printing.locators import SendRecord, Sighting

__all__ = [
    "DEFAULT_SEND_OVERLAP_S",
    "DEFAULT_WEB_RECHECK_S",
    "DEFAULT_WEB_REPORT_DELAY_S",
    "WebApiLocator",
]

log = get_logger(__name__)

#: A printer connected to the Dashboard reports a job it accepted within seconds; a minute of a
#: slow link or a busy Dashboard is covered several times over.
DEFAULT_WEB_REPORT_DELAY_S: Final = 300.0
#: Within the grace period the key is looked up again this often (the rate budget is shared).
DEFAULT_WEB_RECHECK_S: Final = 15.0
#: The feed is searched from this long before the send started (clocks of two machines).
DEFAULT_SEND_OVERLAP_S: Final = 600.0


class WebApiLocator:
    """Looks a send's key up in the prints feed, Fleet Control queues and the printer's runs."""

    name = "the Formlabs Web API"

    def __init__(
        self,
        client: WebApiClient,
        *,
        report_delay_s: float = DEFAULT_WEB_REPORT_DELAY_S,
        recheck_s: float = DEFAULT_WEB_RECHECK_S,
        overlap_s: float = DEFAULT_SEND_OVERLAP_S,
    ) -> None:
        if report_delay_s < 0 or recheck_s <= 0 or overlap_s < 0:
            raise ValueError("report_delay_s and overlap_s must be >= 0, recheck_s > 0")
        self.client = client
        self.report_delay_s = float(report_delay_s)
        self.recheck_s = float(recheck_s)
        self.overlap_s = float(overlap_s)

    def locate(self, send: SendRecord) -> Sighting | None:
        try:
            return self._locate(send)
        except CloudAuthError:
            raise  # refused credentials are a configuration error, not "cannot tell"
        except CloudError as exc:
            raise PrintLookupError(send.job_key, f"the Web API could not be asked: {exc}",
                                   hint="the lookup is repeated; check the network and the "
                                   "Dashboard") from exc

    def _locate(self, send: SendRecord) -> Sighting | None:
        key = send.job_key
        # created_at is the Dashboard's clock: start earlier by as much as it is behind ours.
        since = send.started_at - timedelta(
            seconds=self.overlap_s + behind_s(self.client.clock_skew_s))
        for run in self.client.iter_prints(name=key, date__gt=since):
            if send.matches(run.name):
                return Sighting("the prints feed", run.print_job or run.guid or None,
                                run.printer or None, run.status or None, run.name)
        for group in self.client.list_groups():
            if group.has_fleet_control is False:
                continue
            try:
                queue = self.client.list_group_queue(group.id)
            except CloudError as exc:
                if exc.status_code == 404:
                    continue  # the group went away (or has no queue) since it was listed
                raise
            for item in queue:
                if send.matches(item.name):
                    return Sighting(f"the Fleet Control queue of {group.name or group.id}",
                                    item.id or None, None, "QUEUED", item.name)
        if send.printer:
            return self._on_printer(send, send.printer)
        return None

    def _on_printer(self, send: SendRecord, printer: str) -> Sighting | None:
        try:
            status = self.client.get_printer(printer)
        except CloudError as exc:
            if exc.status_code == 404:
                return None  # an IP address or a group id is not a printer serial
            raise
        current = status.current_print
        if current is not None and send.matches(current.name):
            return Sighting(f"the current run of printer {printer}",
                            current.print_job or current.guid or None, printer,
                            current.status or None, current.name)
        previous = status.raw.get("previous_print_run")
        if isinstance(previous, Mapping) and send.matches(str(previous.get("name", ""))):
            return Sighting(f"the previous run of printer {printer}", _text(previous, "guid"),
                            printer, _text(previous, "status"), str(previous.get("name", "")))
        return None


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return str(value) if value else None

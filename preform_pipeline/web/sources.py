"""What the dashboard reads besides the job store: printers, the server pool, the request budget.

``serve`` on its own has the store and, with Web API credentials, the printers feed; with
``watch --serve`` the daemon's own server pool and Web API client are shared, so the pages and
``/metrics`` show the pool's health and the budget the daemon spends. A source that is not
there shows as "not known here", never as zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from preform_pipeline.cloud.client import WebApiClient
from preform_pipeline.cloud.ratelimit import BudgetSnapshot
from preform_pipeline.dispatch.sender import PoolDevices
from preform_pipeline.executor.runner import ServerSource
from preform_pipeline.hotfolder.daemon import HotFolderDaemon
from preform_pipeline.verify.targets import PrinterSource, WebApiPrinters

__all__ = ["LiveSources", "daemon_sources"]


def _none() -> None:
    return None


@dataclass(frozen=True)
class LiveSources:
    """Optional live sources: each callable returns None while it has nothing to say."""

    printers: Callable[[], PrinterSource | None] = _none
    pool: Callable[[], ServerSource | None] = _none
    budget: Callable[[], BudgetSnapshot | None] = _none


def daemon_sources(daemon: HotFolderDaemon, web_client: WebApiClient | None) -> LiveSources:
    """The live sources of a running hot-folder daemon (``watch --serve``): its server pool
    (printer status from the Local API's devices, else the Web API's printers feed) and the
    request budget of its Web API client."""
    timeout = daemon.settings.servers.request_timeout_s
    pool = daemon.worker.current_pool

    def printers() -> PrinterSource | None:
        if web_client is not None:
            return WebApiPrinters(web_client)
        running = pool()
        if running is None:
            return None
        # The Printers page shows an offline printer as offline rather than leaving it out.
        return PoolDevices(running, request_timeout_s=timeout, offline_too=True)

    budget = web_client.budget if web_client is not None else _none
    return LiveSources(printers=printers, pool=pool, budget=budget)

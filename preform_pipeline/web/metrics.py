"""``/metrics``: Prometheus text exposition (format 0.0.4) of the store and the live sources.

Every number is read when scraped: cases (jobs) and builds by state, builds prepared, prints
sent / verified / failed, the server pool's servers by state and each one's restarts (a local
server) or checks after a failure (a remote one), and the Web API request budget.
A failed job a later job of its recipe and file printed (store/superseded.py) is not counted
as ``failed`` but as ``cases_superseded``, as the dashboard's pages and ``jobs`` show it: an
alert on failures fired for a killed run whose next run printed every model.
A live source that is not there (``serve`` without the daemon) leaves its series out rather
than reporting zero.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Final

from preform_pipeline.store import JobState, JobStore
from preform_pipeline.store.model import VERIFIED_STATES
from preform_pipeline.store.superseded import superseded
from preform_pipeline.web.sources import LiveSources

__all__ = ["CONTENT_TYPE", "PREPARED_STATES", "render_metrics"]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
_P: Final = "preform_pipeline"

#: A build in one of these was prepared (its .form saved) at some point.
PREPARED_STATES: Final = frozenset({
    JobState.PREPARED, JobState.WAITING_FOR_PRINTER, JobState.AWAITING_APPROVAL,
    JobState.PRINT_SENDING, JobState.PRINT_SENT, JobState.VERIFYING, JobState.FINISHED,
    JobState.ABORTED, JobState.PRINT_ERROR, JobState.UNVERIFIED, JobState.DONE,
})
_FAILED_PRINTS: Final = frozenset({JobState.ABORTED, JobState.PRINT_ERROR})


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Text:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(self, name: str, kind: str, text: str,
               samples: Iterable[tuple[dict[str, str], float]]) -> None:
        self.lines.append(f"# HELP {_P}_{name} {text}")
        self.lines.append(f"# TYPE {_P}_{name} {kind}")
        for labels, value in samples:
            inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            self.lines.append(f"{_P}_{name}{{{inner}}} {value:g}" if inner
                              else f"{_P}_{name} {value:g}")


def render_metrics(store: JobStore, sources: LiveSources) -> str:
    out = _Text()
    every = store.list_jobs()
    later = superseded(store, every)
    jobs = Counter(j.state for j in every if j.id not in later)
    builds_list = store.list_builds()
    builds = Counter(b.state for b in builds_list)
    out.metric("cases", "gauge", "Jobs (one per model file of a case) by state.",
               (({"state": s.value}, float(jobs.get(s, 0))) for s in JobState))
    out.metric("cases_superseded", "gauge",
               "Failed jobs (failed, print_error, aborted) a later job of the same recipe and "
               "file printed (counted here, not in cases).", [({}, float(len(later)))])
    out.metric("builds", "gauge", "Builds by state.",
               (({"state": s.value}, float(builds.get(s, 0))) for s in JobState))
    out.metric("builds_prepared", "gauge", "Builds whose .form was prepared and saved.",
               [({}, float(sum(builds[s] for s in PREPARED_STATES)))])
    sent = sum(1 for b in builds_list if b.print_sent_at is not None)
    out.metric("prints_sent", "gauge", "Builds whose print was sent.", [({}, float(sent))])
    out.metric("prints_verified", "gauge", "Prints with a final status from the prints feed.",
               [({}, float(sum(builds[s] for s in VERIFIED_STATES)))])
    out.metric("prints_failed", "gauge", "Prints that ended aborted or with a printer error.",
               [({}, float(sum(builds[s] for s in _FAILED_PRINTS)))])
    out.metric("prints_unverified", "gauge", "Prints a person has to settle.",
               [({}, float(builds.get(JobState.UNVERIFIED, 0)))])
    pool = sources.pool()
    if pool is not None:
        servers = pool.status()
        states = Counter(s.state.value for s in servers)
        out.metric("pool_servers", "gauge", "PreFormServers of the pool by state.",
                   (({"state": k}, float(v)) for k, v in sorted(states.items())))
        # A local server is restarted after a failure; a remote one (another machine's) only
        # checked again: each count is said of the servers it can be of. Both begin at 0
        # with each pool the daemon starts (a counter's reset, to Prometheus).
        out.metric("pool_server_restarts_total", "counter",
                   "Restarts of each local PreFormServer since its pool started.",
                   (({"server": s.name}, float(s.restarts)) for s in servers if not s.remote))
        out.metric("pool_server_rechecks_total", "counter",
                   "Checks of each remote PreFormServer after a failure since its pool "
                   "started (the pool never restarts another machine's server).",
                   (({"server": s.name}, float(s.rechecks)) for s in servers if s.remote))
    budget = sources.budget()
    if budget is not None:
        out.metric("web_api_requests_used", "gauge",
                   "Web API requests spent in the current hour's window.",
                   [({}, float(budget.spent))])
        out.metric("web_api_requests_limit", "gauge", "Web API requests allowed per window.",
                   [({}, float(budget.limit))])
    return "\n".join(out.lines) + "\n"

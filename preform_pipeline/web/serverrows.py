"""The server pool's PreFormServers as the Printers page shows them: each one's state, its
builds, and what the pool did about its failures since it started (a local server's restarts,
a remote's checks after a failure). Before session 48 the two counts reached ``/metrics``
only, which a person at the dashboard does not read."""

from __future__ import annotations

from dataclasses import dataclass

from preform_pipeline.servers import ServerStatus
from preform_pipeline.web.sources import LiveSources
from preform_pipeline.wording import counted

__all__ = ["ServerRow", "server_rows"]


@dataclass(frozen=True)
class ServerRow:
    """One server of the pool, in words."""

    name: str
    #: "local" (the pool starts and restarts it) or "remote" (another machine's).
    where: str
    #: Its state, and why it was retired when it was.
    state: str
    #: Builds it finished since its pool started.
    builds: int
    #: Its restarts (local) or checks after a failure (remote) since its pool started.
    failures: str


def _failures(status: ServerStatus) -> str:
    if status.remote:
        # The pool never restarts another machine's server: it asks it again.
        return f"checked again {counted(status.rechecks, 'time')} after failing"
    return f"restarted {counted(status.restarts, 'time')}"


def server_rows(sources: LiveSources) -> tuple[ServerRow, ...]:
    """The pool's servers, in its order; none while there is no pool (``serve`` alone, or
    ``watch --serve`` before its first batch)."""
    pool = sources.pool()
    if pool is None:
        return ()
    return tuple(
        ServerRow(name=s.name, where="remote" if s.remote else "local",
                  state=s.state.value + (f" ({s.retired_reason})" if s.retired_reason else ""),
                  builds=s.total_builds, failures=_failures(s))
        for s in pool.status())

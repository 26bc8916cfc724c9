"""Who held a print's send, and whether that holder could still send it.

A print request is handed to one PreFormServer. If the process that asked dies mid-request,
the server may still deliver the print seconds later. "Not printed" can therefore only be
concluded once the server that held the send is gone. :class:`SendHolder` is written into the
store with the send (``Build.send_holder``); :func:`holder_gone` answers, with psutil, whether
that exact process (pid *and* start time, so a reused pid does not count) is over.

A remote server, a server on another host, or a send whose holder was not recorded can never be
proven gone from here: such a send is never concluded absent automatically.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from preform_pipeline.liveness import ProcessIdentity, this_host

__all__ = [
    "HeldServer",
    "HolderProbe",
    "SendHolder",
    "holder_gone",
    "process_create_time",
]

def process_create_time(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None when it is gone."""
    running = ProcessIdentity.of_running(pid)
    return running.create_time if running is not None else None


class HeldServer(Protocol):
    """What a send's holder is taken from: a pool's leased server (``servers.PoolServer``)."""

    @property
    def name(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def remote(self) -> bool: ...
    @property
    def pid(self) -> int | None: ...


@dataclass(frozen=True)
class SendHolder:
    """The server a print request was handed to.

    ``pid``/``create_time`` identify a local server process; ``remote`` marks a server this
    machine does not run; ``request_timeout_s`` bounds how long the server may take to pass the
    print on after it got the request (the grace period counts from the send's start).
    """

    server: str
    request_timeout_s: float
    pid: int | None = None
    create_time: float | None = None
    host: str = ""
    remote: bool = False

    @classmethod
    def local(cls, server: str, pid: int, request_timeout_s: float) -> SendHolder:
        """A server process of this machine, identified by pid and start time."""
        return cls(server=server, request_timeout_s=request_timeout_s, pid=pid,
                   create_time=process_create_time(pid), host=this_host())

    @classmethod
    def of_server(cls, server: HeldServer, request_timeout_s: float) -> SendHolder | None:
        """Who holds a send made on a pool's ``server``: its process, or the remote server
        (None: a local server whose process id is unknown)."""
        if server.remote:
            return cls(server=server.url, request_timeout_s=request_timeout_s, remote=True)
        if server.pid is None:
            return None
        return cls.local(server.name, server.pid, request_timeout_s)

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "request_timeout_s": self.request_timeout_s,
            "pid": self.pid,
            "create_time": self.create_time,
            "host": self.host,
            "remote": self.remote,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> SendHolder | None:
        """The holder the store recorded; None when there is none (or it is unreadable)."""
        if not data:
            return None
        try:
            pid = data.get("pid")
            created = data.get("create_time")
            return cls(
                server=str(data.get("server", "")),
                request_timeout_s=float(data["request_timeout_s"]),
                pid=int(pid) if pid is not None else None,
                create_time=float(created) if created is not None else None,
                host=str(data.get("host", "")),
                remote=bool(data.get("remote", False)),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def describe(self) -> str:
        if self.remote:
            return f"remote server {self.server}"
        return f"server {self.server} (pid {self.pid})"


class HolderProbe(Protocol):
    """Answers whether a send's holder is certainly over (tests may pass their own)."""

    def __call__(self, holder: SendHolder) -> bool: ...


def holder_gone(holder: SendHolder) -> bool:
    """True only when the holder certainly cannot send any more: the process with that pid and
    start time no longer runs on this host. Remote or unidentified holders are never gone."""
    if holder.remote or holder.pid is None or holder.create_time is None:
        return False
    process = ProcessIdentity(holder.pid, holder.create_time, holder.host or this_host())
    # Another host's process cannot be checked from here: never gone. Here: gone unless
    # that very process (pid and start time) still runs (one rule: liveness.py).
    return process.has_ended()

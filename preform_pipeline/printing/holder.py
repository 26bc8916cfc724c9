"""Who held a print's send, and whether that holder could still send it.

A print request is handed to one PreFormServer. If the process that asked dies mid-request,
the server may still deliver the print seconds later. "Not printed" can therefore only be
concluded once the server that held the send is gone. :class:`SendHolder` is written into the
store with the send (``Build.send_holder``); :func:`holder_gone` answers, with psutil, whether
that exact process (pid *and* start time, so a reused pid does not count) is over.

A pid names a process only within its *instance* (liveness.py: the boot and the pid namespace):
two containers sharing a store can have the same host name and the same pids. So a holder names
its instance, and is judged by the one rule of liveness.py: in a store kept on this machine's
own disk (SQLite) as the daemon's lock and the server records are
(:meth:`~preform_pipeline.liveness.ProcessIdentity.judged_on_this_machine`); in a store shared
by machines (PostgreSQL), where another boot of this host name may be another machine, only a
process of this very instance can be judged (:meth:`~.ProcessIdentity.has_ended`).

A remote server, a server on another host or in another container, and a send whose holder was
not recorded can never be proven gone from here: such a send is never concluded absent
automatically (a person settles it). Nor can a holder recorded before holders named their
instance, unless, in a store on this machine's disk, it started before this machine booted or
no process that may be ours started at its moment on this machine (liveness.py's proof), or
the system names no instances (where the host name tells: liveness.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from preform_pipeline.liveness import (
    Liveness,
    ProcessIdentity,
    read_instance,
    read_start_ticks,
    this_host,
    this_instance,
)
from preform_pipeline.logging import hide_secrets

__all__ = [
    "HeldServer",
    "HolderProbe",
    "SendHolder",
    "holder_gone",
]

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

    ``pid``/``create_time`` identify a local server process on ``host`` in ``instance``
    (:func:`~preform_pipeline.liveness.this_instance`; None in a record written before holders
    named it), and ``start_ticks`` its start where setting the clock does not move it (None in
    a record written before holders kept them: compared by start time); ``remote`` marks a
    server this machine does not run; ``request_timeout_s`` bounds how long the server may
    take to pass the print on after it got the request (the grace period counts from the
    send's start).
    """

    server: str
    request_timeout_s: float
    pid: int | None = None
    create_time: float | None = None
    host: str = ""
    remote: bool = False
    instance: str | None = None
    start_ticks: int | None = None

    @classmethod
    def local(cls, server: str, pid: int, request_timeout_s: float) -> SendHolder:
        """A server process of this machine, identified by pid, start and instance."""
        running = ProcessIdentity.of_running(pid)
        return cls(server=server, request_timeout_s=request_timeout_s, pid=pid,
                   create_time=running.create_time if running is not None else None,
                   host=this_host(), instance=this_instance(),
                   start_ticks=running.start_ticks if running is not None else None)

    @classmethod
    def of_server(cls, server: HeldServer, request_timeout_s: float) -> SendHolder | None:
        """Who holds a send made on a pool's ``server``: its process, or the remote server
        (None: a local server whose process id is unknown)."""
        if server.remote:
            # Its address as the log shows it: the store keeps it, and a message says it.
            return cls(server=hide_secrets(server.url), request_timeout_s=request_timeout_s,
                       remote=True)
        if server.pid is None:
            return None
        return cls.local(server.name, server.pid, request_timeout_s)

    @property
    def process(self) -> ProcessIdentity | None:
        """The local process that held the send; None for a remote server, or when its pid,
        start time or host was not recorded (then it can never be judged)."""
        if self.remote or self.pid is None or self.create_time is None or not self.host:
            return None
        return ProcessIdentity(self.pid, self.create_time, self.host, self.instance,
                               self.start_ticks)

    def to_json(self) -> dict[str, Any]:
        """The holder as the store keeps it; ``instance`` only when known (as liveness.py
        writes it: an earlier version reading the row ignores it)."""
        data: dict[str, Any] = {
            "server": self.server,
            "request_timeout_s": self.request_timeout_s,
            "pid": self.pid,
            "create_time": self.create_time,
            "host": self.host,
            "remote": self.remote,
        }
        if self.instance is not None:
            data["instance"] = self.instance
        if self.start_ticks is not None:
            data["start_ticks"] = self.start_ticks
        return data

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
                instance=read_instance(data.get("instance")),
                start_ticks=read_start_ticks(data.get("start_ticks")),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def describe(self) -> str:
        """The holder for people; where its pid is not one of this machine's, whose it is."""
        if self.remote:
            return f"remote server {self.server}"
        return f"server {self.server} (pid {self.pid}{self._whose_pid()})"

    def _whose_pid(self) -> str:
        if self.host and self.host != this_host():
            return f" on {self.host}"
        if self.pid is None or not self.host:
            return ""
        if self.instance is None:
            return ", recorded by an earlier version that did not name its container"
        if self.instance != this_instance():
            return ", in another container or boot of this host name"
        return ""


class HolderProbe(Protocol):
    """Answers whether a send's holder is certainly over (tests may pass their own)."""

    def __call__(self, holder: SendHolder) -> bool: ...


def holder_gone(holder: SendHolder, *, store_on_this_machine: bool = False) -> bool:
    """True only when the holder certainly cannot send any more: that very process (pid, start
    time, host and instance) runs no more. ``store_on_this_machine``: the send was recorded in
    a store kept on this machine's own disk (``JobStore.kept_on_this_machine``), where a
    process of this host name in another boot can only be this machine's before it restarted.
    Remote or unidentified holders are never gone, nor are holders recorded without their
    instance (by an earlier version), except, in a store on this machine's disk, one proven
    ended by liveness.py's rule (started before this machine booted, or no process that may
    be ours started at its moment; or a system that names no instances)."""
    process = holder.process
    if process is None:
        return False
    if store_on_this_machine:
        return process.judged_on_this_machine() is Liveness.ENDED
    # A shared store: another boot of this host name may be another machine, and a holder
    # that names no instance may be another container's pid (a pid judged in the wrong
    # namespace prints twice): only a process of this very instance is judged here.
    return process.instance is not None and process.has_ended()

"""A node's presence on a shared store: register, beat in the background, stop cleanly.

The hot-folder daemon holds one :class:`NodePresence` while it runs on a PostgreSQL store.
A node that stops beating (killed, stalled, cut off) shows as ``silent`` after one lease; the
builds it held become claimable as their leases (renewed only by the work itself) run out.

Any number of nodes may be present at once: each claims its own builds
(:mod:`preform_pipeline.store.fenced`). Two daemons must not share one node id.
"""

from __future__ import annotations

import os
import socket
import threading
from types import TracebackType
from typing import Final

from preform_pipeline import __version__
from preform_pipeline.errors import NodeIdInUseError, StoreError
from preform_pipeline.liveness import ProcessIdentity
from preform_pipeline.logging import get_logger
from preform_pipeline.store.leases import DEFAULT_LEASE_S, NodeInfo
from preform_pipeline.store.postgres import PostgresJobStore

__all__ = ["NodePresence", "default_node_id"]

log = get_logger(__name__)

#: Beats per lease: two may be missed (a slow database, a busy PC) before the lease runs out.
_BEATS_PER_LEASE: Final = 3
#: Past the moment a silent holder's beat is a lease old, so the next look finds it so.
_WAIT_MARGIN_S: Final = 0.1


def default_node_id() -> str:
    """This PC's name: stable across restarts, so a restarted node is the same node."""
    return socket.gethostname().split(".")[0].lower() or "node"


class NodePresence:
    """Registers ``node`` on ``store`` and beats every ``lease_s / 3`` until closed."""

    def __init__(
        self, store: PostgresJobStore, node: NodeInfo, *, lease_s: float = DEFAULT_LEASE_S,
    ) -> None:
        self.store = store
        self.node = node
        self.lease_s = lease_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_this_pc(cls, store: PostgresJobStore, *, node_id: str | None = None,
                    lease_s: float = DEFAULT_LEASE_S, printers: tuple[str, ...] = (),
                    machine_types: tuple[str, ...] = (),
                    inboxes: tuple[str, ...] = ()) -> NodePresence:
        node = NodeInfo(id=node_id or default_node_id(), host=socket.gethostname(),
                        version=__version__, pid=os.getpid(), printers=printers,
                        machine_types=machine_types, inboxes=inboxes,
                        process=ProcessIdentity.current().label())
        return cls(store, node, lease_s=lease_s)

    def start(self) -> None:
        self._register()
        self._thread = threading.Thread(target=self._beat, name="node-heartbeat", daemon=True)
        self._thread.start()

    def _register(self) -> None:
        """Register, waiting (at most one lease, said as ``node_id_waiting``) while a holder of
        this id that is not proven to run (another PC, container or boot: this node's own
        previous life, perhaps) still has a fresh beat: it is taken once that beat is a lease
        old, as claims take a silent node's builds. Refused (:class:`NodeIdInUseError`) at once
        when the holder is proven to run, or as soon as it beats again while this one waits."""
        seen: object = None
        while True:
            try:
                self.store.register_node(self.node, lease_s=self.lease_s)
                return
            except NodeIdInUseError as exc:
                if exc.running or (seen is not None and exc.heartbeat_at != seen):
                    raise
                if seen is None:
                    log.warning("node_id_waiting", node=self.node.id, host=exc.host,
                                pid=exc.pid, free_in_s=round(exc.free_in_s, 1))
                seen = exc.heartbeat_at
                # Look again at least twice per beat interval: a live holder is refused soon.
                pause = min(exc.free_in_s, self.lease_s / _BEATS_PER_LEASE / 2)
                self._stop.wait(max(pause, 0.0) + _WAIT_MARGIN_S)

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_s / _BEATS_PER_LEASE):
            try:
                self.store.heartbeat(self.node.id)
            except StoreError as exc:
                # The database is away (restarting?): keep trying; leases may run out meanwhile.
                log.warning("node_heartbeat_failed", node=self.node.id, error=str(exc))

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
            try:
                self.store.node_stopped(self.node.id)
            except StoreError as exc:
                log.warning("node_stop_not_recorded", node=self.node.id, error=str(exc))

    def __enter__(self) -> NodePresence:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

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
from preform_pipeline.errors import StoreError
from preform_pipeline.logging import get_logger
from preform_pipeline.store.leases import DEFAULT_LEASE_S, NodeInfo
from preform_pipeline.store.postgres import PostgresJobStore

__all__ = ["NodePresence", "default_node_id"]

log = get_logger(__name__)

#: Beats per lease: two may be missed (a slow database, a busy PC) before the lease runs out.
_BEATS_PER_LEASE: Final = 3


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
                        machine_types=machine_types, inboxes=inboxes)
        return cls(store, node, lease_s=lease_s)

    def start(self) -> None:
        self.store.register_node(self.node, lease_s=self.lease_s)
        self._thread = threading.Thread(target=self._beat, name="node-heartbeat", daemon=True)
        self._thread.start()

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

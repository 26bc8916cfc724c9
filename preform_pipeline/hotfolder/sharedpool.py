"""The daemon's one server pool, shared by its batches and its dispatch loop.

It is started when first needed and kept warm. A pool whose every server refused to start
for good (``ServerStatus.refused``: a fleet folder a rehearsal's simulator holds) never
serves again, but its cause may go (the rehearsal ends): the next user that needs a pool gets
a new one (``pool_refused_renewing``), so neither a retried file nor a print left waiting
needs a restart of the daemon. A batch renews at once (one attempt per batch: driven by new
work); the dispatch loop, which asks on every pass while prints wait, renews a refused pool
only once it is ``renew_after_s`` old (the daemon's rescan interval), never a loop of
server starts of its own.

A replaced pool is closed as soon as nothing uses it (:meth:`SharedPool.lent`): a batch
still running on it gets "no server left" from it, not a closed pool's "interrupted", and no
replaced pool stays open until the daemon stops.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final

from preform_pipeline.clock import Clock
from preform_pipeline.errors import PipelineError
from preform_pipeline.logging import get_logger

if TYPE_CHECKING:
    from preform_pipeline.executor.runner import ServerSource


__all__ = ["DEFAULT_START_RETRY_S", "PoolFactory", "SharedPool"]

log = get_logger(__name__)

#: Seconds between attempts to start the pool when it fails to start.
DEFAULT_START_RETRY_S: Final = 10.0

#: Returns a started server pool (raises PipelineError or OSError when it cannot).
PoolFactory = Callable[[], "ServerSource"]


class SharedPool:
    """The daemon's pool (module docstring); ``stop``: the daemon stops (no pool then)."""

    def __init__(self, factory: PoolFactory, stop: threading.Event, clock: Clock) -> None:
        self.factory = factory
        self.stop = stop
        self.clock = clock
        self._lock = threading.Lock()
        self._pool: ServerSource | None = None
        #: When the current pool was started (the clock's monotonic seconds).
        self._started_at = 0.0
        #: Users of each pool now (batches running on it, a dispatch pass), by pool.
        self._users: dict[ServerSource, int] = {}
        #: Pools replaced while in use: each is closed when its last user is done.
        self._replaced: set[ServerSource] = set()

    def current(self) -> ServerSource | None:
        """The pool if one was started; never starts one."""
        return self._pool

    def ensure(self, *, renew_after_s: float = 0.0) -> ServerSource | None:
        """The pool, started now if none is (None: the daemon stops). A pool whose every
        server refused is replaced first, if it is at least ``renew_after_s`` old."""
        closing: ServerSource | None = None
        with self._lock:
            pool = self._pool
            statuses = pool.status() if pool is not None else ()
            if (pool is not None and statuses and all(s.refused for s in statuses)
                    and self.clock.monotonic() - self._started_at >= renew_after_s):
                log.info("pool_refused_renewing", servers=[s.name for s in statuses])
                self._pool = None
                if self._users.get(pool):
                    self._replaced.add(pool)
                else:
                    closing = pool
            while self._pool is None and not self.stop.is_set():
                try:
                    self._pool = self.factory()
                    self._started_at = self.clock.monotonic()
                except (PipelineError, OSError) as exc:
                    log.error("pool_start_failed", error=str(exc),
                              retry_in_s=DEFAULT_START_RETRY_S)
                    self.stop.wait(DEFAULT_START_RETRY_S)
            pool = self._pool
        if closing is not None:
            self._close_replaced(closing)
        return pool

    @contextmanager
    def lent(self, *, renew_after_s: float = 0.0) -> Iterator[ServerSource | None]:
        """:meth:`ensure`'s pool, counted in use until the block ends (a pool replaced
        meanwhile is closed then, if this was its last user)."""
        self.ensure(renew_after_s=renew_after_s)
        with self._lock:
            # The current one (a batch may have replaced it since): counted before the lock
            # is let go, so it cannot be closed under this user.
            pool = self._pool
            if pool is not None:
                self._users[pool] = self._users.get(pool, 0) + 1
        if pool is None:
            yield None
            return
        try:
            yield pool
        finally:
            self._give_back(pool)

    def _give_back(self, pool: ServerSource) -> None:
        with self._lock:
            left = self._users[pool] - 1
            if left:
                self._users[pool] = left
                return
            del self._users[pool]
            if pool not in self._replaced:
                return
            self._replaced.discard(pool)
        self._close_replaced(pool)

    def _close_replaced(self, pool: ServerSource) -> None:
        log.info("pool_replaced_closed", servers=[s.name for s in pool.status()])
        pool.close()

    def close(self) -> None:
        """The daemon stops: close the pool and any replaced one still in use."""
        with self._lock:
            pool, self._pool = self._pool, None
            replaced, self._replaced = self._replaced, set()
        for old in replaced:
            old.close()
        if pool is not None:
            pool.close()

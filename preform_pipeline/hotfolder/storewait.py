"""A starting node waits for a shared store that does not accept connections yet.

A daemon run as a service starts when its PC boots, often before the database server it
shares with the other nodes is up (or while that server restarts). Exiting then would leave
the restart to the service manager, with only an error in a log; a service is expected to
wait instead. So joining the farm is tried again while the database is *away*: the
connection is refused, the server is starting up, shutting down or recovering, the session
was cut, or it has no free connection slot. Each failed try is logged
(``store_unreachable_waiting``, with the error and when the next try is), the tries back off
up to :data:`MAX_RETRY_S` apart, the first one is also handed to ``on_wait`` (what a
command prints, so its console says it waits, not nothing nor that it watches), and after
``store.start_wait_s`` (:data:`DEFAULT_START_WAIT_S` unless set; 0: no wait) the last error
stands, with a hint.

Which failures a wait may end is :mod:`preform_pipeline.store.pgerrors`'s one classification,
the same that words the error a user reads: *away* (no server answered, or it is starting,
stopping or recovering) and *overloaded* (no connection free) are waited for; *refused* (a
wrong password or user, no such database, no pg_hba.conf entry, no LOGIN or CONNECT) and
*misconfigured* (an sslmode the server does not take, a host name that does not resolve, a
bad port) fail at once, their hint saying that waiting does not cure them. So does anything
but a failed connection (a schema newer than this node's code, a deadlock or lock_timeout
of a statement).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar

from preform_pipeline.backoff import backoff
from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.errors import StoreError, StoreUnavailableError
from preform_pipeline.logging import get_logger
from preform_pipeline.store.pgerrors import FailureKind

__all__ = [
    "DEFAULT_START_WAIT_S",
    "FIRST_RETRY_S",
    "MAX_RETRY_S",
    "database_away",
    "wait_for_store",
]

log = get_logger(__name__)

#: How long a starting node waits for an unreachable database unless ``store.start_wait_s``
#: says otherwise: long enough for a database server (or its VM) to boot or restart.
DEFAULT_START_WAIT_S: Final = 300.0
#: The first retry comes this soon; later ones back off to :data:`MAX_RETRY_S`.
FIRST_RETRY_S: Final = 1.0
MAX_RETRY_S: Final = 10.0

#: What helps once the wait is over, by what the last try met.
_AWAY_HELP: Final = "start the database server, or check that this node reaches it"
_FULL_HELP: Final = ("close the database's sessions that are not needed, or raise its "
                     "max_connections or the CONNECTION LIMIT of the URL's user or database")

T = TypeVar("T")


def database_away(error: StoreError) -> bool:
    """Whether ``error`` (or one it was raised from) is a failed connection a wait may end:
    the database away or out of connections, not an answer of no nor a URL that cannot
    work (:mod:`preform_pipeline.store.pgerrors`)."""
    failed = _unavailable(error)
    return failed is not None and failed.waits


def _unavailable(error: StoreError) -> StoreUnavailableError | None:
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, StoreUnavailableError):
            return cause
        cause = cause.__cause__
    return None


def wait_for_store(
    join: Callable[[], T],
    *,
    location: str,
    wait_s: float = DEFAULT_START_WAIT_S,
    clock: Clock = SYSTEM_CLOCK,
    on_wait: Callable[[StoreError, float], None] | None = None,
) -> T:
    """``join()``, tried again while the database is away, for up to ``wait_s`` seconds
    (module docstring). ``join`` must leave nothing open when it fails. ``on_wait(error,
    wait_s)`` is called once, when the first wait begins."""
    started = clock.monotonic()
    tries = 0
    while True:
        try:
            joined = join()
        except StoreError as exc:
            waited = clock.monotonic() - started
            if not database_away(exc):
                raise
            delay = min(backoff(tries, FIRST_RETRY_S, MAX_RETRY_S), wait_s - waited)
            if delay <= 0:
                failed = _unavailable(exc)
                full = failed is not None and failed.kind == FailureKind.OVERLOADED.value
                raise StoreError(
                    f"{exc.message} (still "
                    f"{'no connection free' if full else 'unreachable'} after {waited:.0f} s "
                    "of waiting)",
                    hint=f"{_FULL_HELP if full else _AWAY_HELP}; store.start_wait_s "
                    f"({wait_s:g} s) sets how long a starting node waits for it",
                ) from exc
            tries += 1
            log.warning("store_unreachable_waiting", store=location, attempt=tries,
                        retry_in_s=round(delay, 1), waited_s=round(waited, 1),
                        wait_s=wait_s, error=exc.message)
            if tries == 1 and on_wait is not None:
                on_wait(exc, wait_s)
            clock.sleep(delay)
            continue
        if tries:
            log.info("store_reachable", store=location, attempts=tries + 1,
                     waited_s=round(clock.monotonic() - started, 1))
        return joined

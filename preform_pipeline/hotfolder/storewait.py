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

What no wait can cure fails at once, as before: a wrong password or user, a database that
does not exist, a host name that does not resolve, a schema newer than this node's code.
Those are told apart from an outage by libpq's own English wording (the server's
``lc_messages`` may translate its half: a translated "starting up" then fails at once, which
is the behaviour without this wait).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar

from preform_pipeline.backoff import backoff
from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.errors import StoreError
from preform_pipeline.logging import get_logger

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

#: libpq's and the server's words for "the database is away now" (lower case).
_AWAY: Final = (
    "connection refused",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "the database system is not accepting connections",
    "server closed the connection unexpectedly",
    "terminating connection due to administrator command",
    "sorry, too many clients already",
    "timeout expired",
    "connection timed out",
    "no route to host",
    "network is unreachable",
)

T = TypeVar("T")


def database_away(error: StoreError) -> bool:
    """Whether ``error`` says the database did not answer now (an outage a wait may end),
    rather than that it answered no (credentials, a missing database, a newer schema)."""
    if not error.outage:
        return False
    cause: BaseException | None = error
    while cause is not None:
        text = str(cause).lower()
        if any(marker in text for marker in _AWAY):
            return True
        cause = cause.__cause__
    return False


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
                raise StoreError(
                    f"{exc.message} (still unreachable after {waited:.0f} s of waiting)",
                    hint=f"start the database server, or check that this node reaches it; "
                    f"store.start_wait_s ({wait_s:g} s) sets how long a starting node "
                    "waits for it",
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

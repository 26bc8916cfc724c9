"""Builds an earlier ``run`` left waiting for a printer: the next run sends them first.

A ``run`` whose build found no free printer of its list or ``auto`` within
``dispatch.run_wait_s`` leaves it prepared (its .form saved) in ``waiting_for_printer``.
:func:`send_left_waiting` is what the next run does before its own work: it walks those builds
(priority, then oldest first) through the one :class:`~.waiting.Dispatcher` and sends each
from its saved .form through the print owner, so each goes out once and is never prepared
again; it waits for printers at most ``wait_s``, and what is still waiting then stays waiting.
Only builds of runs are taken: the hot folder's waiting builds belong to its daemon, which
settles their files when it sends them (``watch`` sends a run's too).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.dispatch.sender import FormSender, PoolDevices
from preform_pipeline.dispatch.waiting import Dispatcher
from preform_pipeline.executor.ledger import RUN_FIELD
from preform_pipeline.executor.runner import ServerSource
from preform_pipeline.logging import get_logger
from preform_pipeline.printing import PrintOwner
from preform_pipeline.printing.target import PrintTarget
from preform_pipeline.store import Build, JobStore
from preform_pipeline.verify.tracking import PrinterClaims
from preform_pipeline.wording import counted, noun

__all__ = ["LeftWaiting", "is_run_build", "send_left_waiting"]

log = get_logger(__name__)

#: The pass reads readiness at most this often however short the settings' interval is.
_MIN_INTERVAL_S: Final = 0.05


def is_run_build(store: JobStore, build: Build) -> bool:
    """True for a build of a ``run`` (its jobs carry the run that claimed them)."""
    return any(RUN_FIELD in j.fields for j in store.build_members(build.id))


@dataclass(frozen=True)
class LeftWaiting:
    """What the pass did: builds sent, and builds still waiting."""

    sent: tuple[str, ...]
    still_waiting: tuple[str, ...]


def send_left_waiting(
    store: JobStore,
    pool: ServerSource,
    owner: PrintOwner,
    *,
    wait_s: float,
    poll_interval_s: float,
    request_timeout_s: float,
    say: Callable[[str], None],
    clock: Clock = SYSTEM_CLOCK,
) -> LeftWaiting:
    """Send the builds runs left waiting as matching printers are free, for at most
    ``wait_s``; ``say`` tells the console what waits and what went out."""
    claims = PrinterClaims(store)
    dispatcher = Dispatcher(
        store,
        PoolDevices(pool, request_timeout_s=request_timeout_s),
        FormSender(pool, owner, request_timeout_s=request_timeout_s, claims=claims),
        clock=clock,
        only=lambda build: is_run_build(store, build),
        claims=claims,
    )
    builds = dispatcher.waiting()
    if not builds:
        return LeftWaiting((), ())
    for build in builds:
        target = PrintTarget.from_json(build.print_target).describe()
        say(f"waiting since an earlier run: {build.job_key} for {target}")
    deadline = clock.monotonic() + wait_s
    sent: list[str] = []
    while True:
        for done in dispatcher.dispatch_once():
            if done.error is None:
                sent.append(done.job_key)
                say(f"sent {done.job_key} to {done.printer} from its saved .form")
            else:
                say(f"{done.job_key} not sent to {done.printer}: {done.error}")
        left = dispatcher.waiting()
        if not left or clock.monotonic() >= deadline:
            break
        clock.sleep(max(_MIN_INTERVAL_S, min(poll_interval_s, deadline - clock.monotonic())))
    keys = tuple(b.job_key for b in left)
    if keys:
        say(f"{counted(len(keys), 'build')} still {noun(len(keys), 'waits', 'wait')} for a "
            f"printer: {', '.join(keys)} (the next run or watch sends "
            f"{noun(len(keys), 'it', 'them')})")
    log.info("left_waiting_pass", sent=len(sent), still_waiting=len(keys))
    return LeftWaiting(tuple(sent), keys)

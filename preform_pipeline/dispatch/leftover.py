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
from typing import TYPE_CHECKING, Final

from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.dispatch.sender import FormSender, PoolDevices
from preform_pipeline.dispatch.waiting import Dispatcher
from preform_pipeline.executor.ledger import is_run_build
from preform_pipeline.logging import get_logger
from preform_pipeline.printing import PrintOwner
from preform_pipeline.printing.target import PrintTarget
from preform_pipeline.store import JobStore
from preform_pipeline.verify.tracking import PrinterClaims
from preform_pipeline.wording import counted, noun

if TYPE_CHECKING:
    from preform_pipeline.executor.runner import ServerSource


__all__ = ["LeftWaiting", "send_left_waiting"]

log = get_logger(__name__)

#: The pass reads readiness at most this often however short the settings' interval is.
_MIN_INTERVAL_S: Final = 0.05


@dataclass(frozen=True)
class LeftWaiting:
    """What the pass did: builds sent (each key with the printer it went to), builds still
    waiting for a printer, and builds whose send failed (each key with why, as said), which
    still wait in the store."""

    sent: tuple[tuple[str, str], ...]
    still_waiting: tuple[str, ...]
    unsent: tuple[tuple[str, str], ...] = ()

    @property
    def failed(self) -> bool:
        """True when a send failed: the run's exit status says so (a build still waiting
        for a printer is no failure: the next run or watch sends it)."""
        return bool(self.unsent)

    def reasons(self) -> list[str]:
        """What the pass did, for a run's exit line: a run whose only work was these builds
        did not have "nothing to run"."""
        reasons = []
        if self.sent:
            where = ", ".join(f"{key} to {printer}" for key, printer in self.sent)
            reasons.append(f"{counted(len(self.sent), 'build')} left waiting by an earlier "
                           f"run sent ({where})")
        if self.unsent:
            # Why, again: `run --quiet` gives cron this line alone (on stderr).
            why = "; ".join(f"{key}: {error}" for key, error in self.unsent)
            reasons.append(f"{counted(len(self.unsent), 'build')} left waiting by an earlier "
                           f"run not sent ({why})")
        if self.still_waiting:
            reasons.append(f"{counted(len(self.still_waiting), 'build')} left waiting by an "
                           f"earlier run still {noun(len(self.still_waiting), 'waits', 'wait')} "
                           "for a printer")
        return reasons


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
    sent: list[tuple[str, str]] = []  # each build sent, with the printer it went to
    unsent: dict[str, str] = {}  # the last failure of each build whose send failed
    while True:
        for done in dispatcher.dispatch_once():
            if done.error is None:
                sent.append((done.job_key, done.printer))
                unsent.pop(done.job_key, None)
                say(f"sent {done.job_key} to {done.printer} from its saved .form")
            elif unsent.get(done.job_key) != done.error:  # tried again: said once
                unsent[done.job_key] = done.error
                say(f"{done.job_key} not sent to {done.printer}: {done.error}")
        left = dispatcher.waiting()
        if not left or clock.monotonic() >= deadline:
            break
        clock.sleep(max(_MIN_INTERVAL_S, min(poll_interval_s, deadline - clock.monotonic())))
    # A build whose send failed was said with why: "the next run sends it" is not known.
    failed = tuple((b.job_key, unsent[b.job_key]) for b in left if b.job_key in unsent)
    keys = tuple(b.job_key for b in left if b.job_key not in unsent)
    if keys:
        say(f"{counted(len(keys), 'build')} still {noun(len(keys), 'waits', 'wait')} for a "
            f"printer: {', '.join(keys)} (the next run or watch sends "
            f"{noun(len(keys), 'it', 'them')})")
    log.info("left_waiting_pass", sent=len(sent), still_waiting=len(keys), unsent=len(failed))
    return LeftWaiting(tuple(sent), keys, failed)

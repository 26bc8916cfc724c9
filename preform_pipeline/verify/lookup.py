"""Settling sends a crash left in ``print_sending``, before anything is verified or sent.

The job store is written before every print request (``print_sending``, with the server that
holds the send) and after its answer (``print_sent``). A build found in ``print_sending`` had a
request under way whose outcome is unknown. What becomes of it is decided by the one print
owner (:class:`~preform_pipeline.printing.PrintOwner`), the same rule ``run`` and ``watch`` use:
found → ``print_sent``; proven absent → ``prepared`` (safe to send again); unknown → left as it
is while the grace period runs, then ``unverified`` (a person settles it with ``jobs resolve``).

What the Web API cannot see: a printer that is not connected to the Dashboard (LAN-only) and
kept the job in its own local queue. If your printers may be offline from the Dashboard for
long, raise ``verify.lookup_grace_s``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

from preform_pipeline.errors import CloudAuthError
from preform_pipeline.logging import get_logger
from preform_pipeline.printing import Evidence, PrintOwner, Resolution
from preform_pipeline.store import Build, JobState, JobStore

__all__ = [
    "Decision",
    "SettledSend",
    "settle_interrupted_sends",
]

log = get_logger(__name__)


Decision = Literal["found", "not_sent", "undecided", "unverified"]


@dataclass(frozen=True)
class SettledSend:
    """What became of one build found in ``print_sending``."""

    build: Build
    decision: Decision
    reason: str


def _decision(answer: Resolution) -> Decision:
    if answer.evidence is Evidence.FOUND:
        return "found"
    if answer.evidence is Evidence.ABSENT:
        return "not_sent"
    return "undecided" if answer.pending else "unverified"


def settle_interrupted_sends(
    store: JobStore,
    owner: PrintOwner,
    *,
    wait: bool = False,
    stop: threading.Event | None = None,
) -> list[SettledSend]:
    """Resolve every build left in ``print_sending`` through ``owner``.

    ``wait`` looks again until each answer is final (up to the grace period); without it an
    answer that may still change leaves the build as it is.
    """
    settled: list[SettledSend] = []
    for build in store.list_builds(state=JobState.PRINT_SENDING):
        try:
            answer = owner.resolve_waiting(build, stop=stop) if wait else owner.resolve(build)
        except CloudAuthError:
            raise
        moved = answer.build or store.get_build(build.id)
        settled.append(SettledSend(moved, _decision(answer), answer.reason))
    return settled

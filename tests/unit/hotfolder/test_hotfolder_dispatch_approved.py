"""The dispatch loop tells the daemon of an approved build no lease of its node covers
(hotfolder/dispatching.py ``on_approved``): on a shared store an approved build is nobody's,
the node's reads no longer show it, and the daemon claims it then rather than at its next
maintenance pass. Store and outcomes are fakes at the loop's seams."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, cast

from preform_pipeline.hotfolder.dispatching import DispatchLoop
from preform_pipeline.hotfolder.testing import wait_for
from preform_pipeline.settings.dispatch import DispatchSettings
from preform_pipeline.store import JobState

WAIT_S = 10.0


class _NodeStore:
    """Builds 1 and 2 held for approval; as a node's view of a shared store, a build waiting
    for a printer is listed only once this node holds it (none here)."""

    def __init__(self) -> None:
        self.builds = {i: SimpleNamespace(id=i, state=JobState.AWAITING_APPROVAL)
                       for i in (1, 2)}
        self.reads = 0
        self.lock = threading.Lock()

    def list_builds(self, state: Any = None) -> list[Any]:
        with self.lock:
            self.reads += 1
            return [b for b in self.builds.values() if b.state is JobState.AWAITING_APPROVAL]

    def get_build(self, build_id: int) -> Any:
        return self.builds[build_id]

    def decide(self, **states: JobState) -> None:
        """Both decisions between two of the loop's reads."""
        with self.lock:
            for name, to in states.items():
                self.builds[int(name[1:])].state = to


class _Outcomes:
    """A rejected build's files meet a share that is away."""

    def __init__(self) -> None:
        self.active: set[int] = set()

    def settle_build(self, build: Any, outcome: object) -> None:
        raise OSError(5, "Input/output error", "//share/inbox/processing")


@contextmanager
def _running(store: _NodeStore) -> Iterator[threading.Event]:
    """The loop running over ``store`` until both builds were seen held; the event it sets
    when it tells of an approval."""
    told, stop = threading.Event(), threading.Event()
    settings = SimpleNamespace(dispatch=DispatchSettings(poll_interval_s=0.01))
    loop = DispatchLoop(cast(Any, settings), cast(Any, store), cast(Any, None),
                        cast(Any, _Outcomes()), cast(Any, None), stop, on_approved=told.set)
    loop.start()
    try:
        wait_for(lambda: store.reads >= 2, WAIT_S, what="both builds seen held")
        yield told
    finally:
        stop.set()
        loop.close()


class TestAnApprovedBuildNoLeaseCovers:
    """The daemon is told on the pass that learns of the approval."""

    def test_told_on_the_pass_after_it(self) -> None:
        store = _NodeStore()
        with _running(store) as told:
            assert not told.is_set()
            store.decide(b2=JobState.WAITING_FOR_PRINTER)
            assert told.wait(WAIT_S), "the approval was not told"

    def test_told_when_a_rejection_beside_it_cannot_be_settled(self) -> None:
        # Decided on one pass, the rejected build 1 first: its files cannot move, the pass
        # fails, and at the next pass build 2 is no longer held to be learnt again.
        store = _NodeStore()
        with _running(store) as told:
            store.decide(b1=JobState.FAILED, b2=JobState.WAITING_FOR_PRINTER)
            assert told.wait(WAIT_S), "the approval was lost with the rejection's pass"

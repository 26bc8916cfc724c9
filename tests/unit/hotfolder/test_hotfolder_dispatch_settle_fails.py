"""The daemon's dispatch loop outlives a file it cannot settle (hotfolder/dispatching.py).

A build an operator rejected is settled by the dispatch loop on the pass that learns it;
moving its files may fail (the share away: ``OSError``). The sweep of processing/ settles
them later; the loop must go on: before, the error ended the dispatch thread (a traceback
on the console, and no waiting build sent again until a restart). Store and outcomes are
fakes at the loop's seams."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any, cast

from preform_pipeline.hotfolder.dispatching import DispatchLoop
from preform_pipeline.hotfolder.testing import wait_for
from preform_pipeline.settings.dispatch import DispatchSettings
from preform_pipeline.store import JobState

WAIT_S = 10.0


class _Store:
    """Builds by id; the loop reads the held and waiting ones."""

    def __init__(self) -> None:
        self.builds = {i: SimpleNamespace(id=i, state=JobState.AWAITING_APPROVAL)
                       for i in (1, 2)}
        self.reads = 0

    def list_builds(self, state: Any = None) -> list[Any]:
        self.reads += 1
        return [b for b in self.builds.values() if b.state in state]

    def get_build(self, build_id: int) -> Any:
        return self.builds[build_id]


class _Outcomes:
    """The first build settled meets a share that is away."""

    def __init__(self) -> None:
        self.active: set[int] = set()
        self.settled: list[int] = []

    def settle_build(self, build: Any, outcome: object) -> None:
        if build.id == 1:
            raise OSError(5, "Input/output error", "//share/inbox/processing")
        self.settled.append(build.id)


class TestARejectedBuildsFilesThatCannotMove:
    """The pass fails, logged; the next rejection is settled on its own pass."""

    def test_the_loop_goes_on(self) -> None:
        store, outcomes, stop = _Store(), _Outcomes(), threading.Event()
        settings = SimpleNamespace(dispatch=DispatchSettings(poll_interval_s=0.01))
        loop = DispatchLoop(cast(Any, settings), cast(Any, store), cast(Any, None),
                            cast(Any, outcomes), cast(Any, None), stop)
        loop.start()
        try:
            wait_for(lambda: store.reads >= 2, WAIT_S, what="both builds seen held")
            store.builds[1].state = JobState.FAILED  # rejected: its files cannot move now
            reads = store.reads
            wait_for(lambda: store.reads > reads + 1, WAIT_S, what="a pass after it")
            store.builds[2].state = JobState.FAILED  # rejected later
            wait_for(lambda: outcomes.settled == [2], WAIT_S, what="the second one settled")
        finally:
            stop.set()
            loop.close()

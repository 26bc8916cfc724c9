"""The daemon's shared pool (hotfolder/sharedpool.py): a refused pool is renewed (the dispatch
loop's asks no more often than it is told), and a replaced pool is closed as soon as nothing
uses it. Pools at the factory seam (the pool's own refusal: tests/integration/
test_pool_refused_for_good.py); time from a manual clock."""

from __future__ import annotations

import threading

from daemon_support import DummyPool

from preform_pipeline.clock import ManualClock
from preform_pipeline.hotfolder.sharedpool import SharedPool
from preform_pipeline.servers import ServerState
from preform_pipeline.servers.pool import ServerStatus


class RefusedPool(DummyPool):
    """A pool whose one server refused to start for good."""

    def status(self) -> tuple[ServerStatus, ...]:
        return (ServerStatus("server-1", ServerState.RETIRED, None, None, None, False, 0, 0,
                             0, 0, "server-1 refused to start: ...", None, refused=True),)


def _shared() -> tuple[SharedPool, list[RefusedPool], ManualClock]:
    made: list[RefusedPool] = []

    def factory() -> RefusedPool:
        made.append(RefusedPool())
        return made[-1]

    clock = ManualClock()
    return SharedPool(factory, threading.Event(), clock), made, clock


class TestARefusedPool:
    """Renewed when asked, at once or once it is old enough; the old one closed."""

    def test_a_batch_renews_at_once_the_dispatch_loop_after_its_wait(self) -> None:
        shared, made, clock = _shared()
        first = shared.ensure()
        assert shared.ensure(renew_after_s=60) is first  # too young for the dispatch loop
        clock.advance(59.9)
        assert shared.ensure(renew_after_s=60) is first and len(made) == 1
        clock.advance(0.1)
        second = shared.ensure(renew_after_s=60)
        assert second is not first and first.closed and not second.closed
        third = shared.ensure()  # a batch: at once
        assert third is not second and second.closed and len(made) == 3

    def test_one_in_use_is_closed_when_its_last_user_is_done(self) -> None:
        shared, made, _ = _shared()
        with shared.lent() as batch, shared.lent(renew_after_s=60) as dispatch:
            assert batch is dispatch is made[0]  # (too young for the dispatch loop)
            with shared.lent() as renewed:  # a new batch meanwhile
                assert renewed is made[1]
            assert not made[0].closed  # a batch runs on it still
        assert made[0].closed and not made[1].closed
        shared.close()
        assert made[1].closed

    def test_the_daemon_s_stop_closes_one_still_in_use(self) -> None:
        shared, made, _ = _shared()
        with shared.lent():
            shared.ensure()  # renewed while a batch still runs on the first
            shared.close()
            assert [pool.closed for pool in made] == [True, True]

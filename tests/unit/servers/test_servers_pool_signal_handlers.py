"""A pool started in the main thread answers the terminating signals (so that no server
outlives a runner that is told to stop), and the last pool closed gives them back."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from preform_pipeline.servers import ServerPool
from preform_pipeline.servers.pool import TERMINATING_SIGNALS
from preform_pipeline.servers.testing import standin_settings, write_standin_server


@pytest.fixture
def default_handlers() -> Iterator[None]:
    """The terminating signals at their default handling, as in a fresh runner; the
    handlers the test process had are put back after the test."""
    before = {number: signal.getsignal(number) for number in TERMINATING_SIGNALS}
    for number in TERMINATING_SIGNALS:
        signal.signal(number, signal.SIG_DFL)
    yield
    for number, handler in before.items():
        signal.signal(number, handler)


def _pool(folder: Path) -> ServerPool:
    folder.mkdir()
    return ServerPool(standin_settings(write_standin_server(folder)).pool,
                      state_dir=folder / "records", handle_signals=True)


def _handlers() -> set[object]:
    return {signal.getsignal(number) for number in TERMINATING_SIGNALS}


@pytest.mark.usefixtures("default_handlers")
class TestSignalHandlersOfPools:
    """Two pools share one handler; it goes when the last of them closes."""

    def test_the_handler_stays_until_the_last_pool_is_closed(self, tmp_path: Path) -> None:
        first, second = _pool(tmp_path / "a"), _pool(tmp_path / "b")
        with first:
            (handler,) = _handlers()
            assert handler is not signal.SIG_DFL
            with second:
                assert _handlers() == {handler}
            assert _handlers() == {handler}, "closing one pool took the other's handler"
        assert _handlers() == {signal.SIG_DFL}

    def test_a_terminating_signal_exits_through_the_pool_which_stops_its_server(
        self, tmp_path: Path
    ) -> None:
        pool = _pool(tmp_path / "a")
        with pytest.raises(SystemExit) as caught, pool:
            (status,) = pool.status()
            assert status.pid is not None
            (handler,) = _handlers()
            assert callable(handler)
            handler(TERMINATING_SIGNALS[0], None)
        assert caught.value.code == 128 + TERMINATING_SIGNALS[0]
        assert not psutil.pid_exists(status.pid) or psutil.Process(status.pid).status() == (
            psutil.STATUS_ZOMBIE)
        assert _handlers() == {signal.SIG_DFL}

"""A stop asked for from a signal handler never waits on the thread the handler interrupted."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from preform_pipeline.interrupts import outside_the_handler, stop_on_signals

WAIT_S = 10.0

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX signals only")


class TestOutsideTheHandler:
    """The action runs on a thread of its own, once the interrupted thread lets go."""

    def test_an_event_held_by_the_calling_thread_is_set_once_it_is_released(self) -> None:
        stop = threading.Event()
        # The moment a handler can interrupt ``stop.wait()``: the main thread holds the
        # event's own lock, which is not reentrant. ``stop.set()`` called here would hang.
        with stop._cond:  # type: ignore[attr-defined]
            outside_the_handler(stop.set)
            assert not stop.is_set()
        assert stop.wait(WAIT_S)


@posix_only
class TestStopOnSignals:
    """The servers' stop handler records the signal and stops it without touching the lock."""

    def test_a_signal_while_the_stop_event_is_held_still_stops(self) -> None:
        stop = threading.Event()
        with stop_on_signals(stop) as received:
            with stop._cond:  # type: ignore[attr-defined]
                signal.raise_signal(signal.SIGTERM)
                assert received == [signal.SIGTERM]
            assert stop.wait(WAIT_S)

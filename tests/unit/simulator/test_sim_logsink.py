"""The simulators' console log stream never holds up the server when nobody reads it."""

from __future__ import annotations

import io
import threading

from preform_pipeline.simulator.logsink import UnblockedStream, unblocked

#: Generous bound for a thread hand-over on a loaded machine.
WAIT_S = 10.0


class GatedText(io.StringIO):
    """A text stream whose writes wait until the test opens the gate (a full pipe)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()

    def write(self, text: str) -> int:
        self.entered.set()
        assert self.gate.wait(WAIT_S), "the test never opened the gate"
        return super().write(text)


class TestUnblockedStream:
    """Lines get through in order while read, and are counted, not waited on, while not."""

    def test_a_line_is_out_when_its_log_call_returns(self) -> None:
        target = io.StringIO()
        stream = UnblockedStream(target, stall_s=WAIT_S)
        stream.write("first\n")
        stream.flush()
        assert target.getvalue() == "first\n"

    def test_a_stalled_reader_costs_one_wait_then_lines_queue_and_overflow_is_counted(
        self,
    ) -> None:
        target = GatedText()
        stream = UnblockedStream(target, max_pending=3, stall_s=0.05)
        stream.write("one\n")
        assert target.entered.wait(WAIT_S)
        stream.flush()  # waits stall_s at most, then the stream counts as stalled
        for word in ("two", "three", "four", "five", "six"):
            stream.write(word + "\n")
            stream.flush()  # no wait at all now
        assert stream.dropped == 2
        target.gate.set()
        assert stream.drain(WAIT_S)
        # The reader is back: a log call waits for its line again.
        stream.write("seven\n")
        stream.flush()
        assert target.getvalue() == (
            "one\n[2 log lines dropped: nobody read this stream]\ntwo\nthree\nfour\nseven\n"
        )

    def test_an_in_process_stream_is_used_as_it_is(self) -> None:
        target = io.StringIO()
        assert unblocked(target) is target

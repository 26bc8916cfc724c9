"""The simulators' console log stream never holds up the server when nobody reads it."""

from __future__ import annotations

import io
import os
import queue
import subprocess
import sys
import threading

from preform_pipeline.simulator.logsink import UnblockedStream, unblocked
from tests.children import end_child

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


def _finish_in_thread(stream: UnblockedStream) -> threading.Event:
    """``stream.finish()`` in a thread of its own: set once it has returned."""
    ended = threading.Event()

    def finish() -> None:
        stream.finish()
        ended.set()

    threading.Thread(target=finish, daemon=True).start()
    return ended


class TestUnblockedStream:
    """Lines get through in order while read, and are counted, not waited on, while not."""

    def test_a_line_is_out_when_its_log_call_returns(self) -> None:
        target = io.StringIO()
        stream = UnblockedStream(target, stall_s=WAIT_S)
        stream.write("first\n")
        stream.flush()
        assert target.getvalue() == "first\n"
        assert not stream.stalled

    def test_a_stalled_reader_costs_one_wait_then_lines_queue_and_overflow_is_counted(
        self,
    ) -> None:
        target = GatedText()
        stream = UnblockedStream(target, max_pending=3, stall_s=0.05)
        stream.write("one\n")
        assert target.entered.wait(WAIT_S)
        stream.flush()  # waits stall_s at most, then the stream counts as stalled
        assert stream.stalled
        for word in ("two", "three", "four", "five", "six"):
            stream.write(word + "\n")
            stream.flush()  # no wait at all now
        assert stream.dropped == 2
        target.gate.set()
        assert stream.drain(WAIT_S)
        assert not stream.stalled
        # The reader is back: a log call waits for its line again.
        stream.write("seven\n")
        stream.flush()
        assert target.getvalue() == (
            "one\n[2 log lines dropped: nobody read this stream]\ntwo\nthree\nfour\nseven\n"
        )

    def test_one_dropped_line_is_counted_in_the_singular(self) -> None:
        target = GatedText()
        stream = UnblockedStream(target, max_pending=1, stall_s=0.05)
        stream.write("one\n")
        assert target.entered.wait(WAIT_S)
        stream.write("two\n")
        stream.write("three\n")
        target.gate.set()
        assert stream.drain(WAIT_S)
        assert target.getvalue() == (
            "one\n[1 log line dropped: nobody read this stream]\ntwo\n"
        )

    def test_a_fresh_stream_is_idle_and_has_dropped_nothing(self) -> None:
        stream = UnblockedStream(io.StringIO())
        assert stream.drain(0.0)
        assert stream.dropped == 0

    def test_a_real_file_is_wrapped_and_gets_each_line_in_its_encoding(self) -> None:
        read_end, write_end = os.pipe()
        with os.fdopen(write_end, "w", encoding="latin-1") as target:
            stream = unblocked(target)
            assert isinstance(stream, UnblockedStream)
            stream.write("café\n")
            stream.flush()
            assert os.read(read_end, 100) == "café\n".encode("latin-1")
        os.close(read_end)

    def test_a_program_whose_stderr_nobody_reads_still_ends(self) -> None:
        # A full pipe holds the writer thread for ever: the program must end all the same,
        # neither waiting for that thread nor for a lock it holds.
        program = (
            "import sys\n"
            "from preform_pipeline.simulator.logsink import UnblockedStream\n"
            "stream = UnblockedStream(sys.stderr, stall_s=0.05)\n"
            "for n in range(20000):\n"
            "    stream.write(f'line {n:06d} ' + 'x' * 80 + '\\n')\n"
            "    stream.flush()\n"
            "print('done', stream.dropped > 0, flush=True)\n"
        )
        child = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        said: queue.Queue[str] = queue.Queue()
        stdout = child.stdout
        assert stdout is not None
        threading.Thread(target=lambda: said.put(stdout.readline()), daemon=True).start()
        try:
            assert said.get(timeout=WAIT_S) == "done True\n"
            assert child.wait(WAIT_S) == 0
        finally:
            end_child(child, wait_s=WAIT_S)

    def test_a_backlog_a_late_slow_reader_reads_gets_out_whole_before_the_program_ends(
        self,
    ) -> None:
        # The stream stalls while nobody reads (300 kB, over four pipes' worth, queued); a
        # reader turns up as the program ends and reads slowly (a loaded machine): every line
        # and the last words still reach it, in order.
        program = (
            "import sys\n"
            "from preform_pipeline.simulator.logsink import unblocked\n"
            "stream = unblocked(sys.stderr)\n"
            "for n in range(3000):\n"
            "    stream.write(f'line {n:06d} ' + 'x' * 80 + '\\n')\n"
            "    stream.flush()\n"
            "print('written', stream.stalled, flush=True)\n"
            "sys.stdin.readline()\n"
            "stream.write('last words\\n')\n"
            "stream.flush()\n"
        )
        child = subprocess.Popen([sys.executable, "-c", program], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert child.stdin is not None and child.stdout is not None
        stderr = child.stderr
        assert stderr is not None
        read = bytearray()

        def read_slowly() -> None:
            while chunk := os.read(stderr.fileno(), 2048):
                read.extend(chunk)
                threading.Event().wait(0.015)  # slow: the backlog takes several stall_s

        try:
            assert child.stdout.readline() == b"written True\n"
            reader = threading.Thread(target=read_slowly, daemon=True)
            reader.start()
            child.stdin.write(b"\n")
            child.stdin.close()
            assert child.wait(WAIT_S) == 0
            reader.join(WAIT_S)
            assert not reader.is_alive()
        finally:
            end_child(child, wait_s=WAIT_S)
        lines = bytes(read).decode().splitlines()
        assert lines == [f"line {n:06d} " + "x" * 80 for n in range(3000)] + ["last words"]

    def test_the_end_of_a_program_whose_lines_are_all_out_waits_for_nothing(self) -> None:
        target = io.StringIO()
        stream = UnblockedStream(target, stall_s=WAIT_S)
        stream.write("last words\n")
        stream.flush()
        ended = _finish_in_thread(stream)
        assert ended.wait(WAIT_S / 2)  # not a wait of stall_s: nothing is left to go out
        assert target.getvalue() == "last words\n"

    def test_the_end_of_a_program_whose_reader_is_away_waits_one_stall_not_the_limit(
        self,
    ) -> None:
        # A reader that reads nothing more: the end gives up after stall_s with no line
        # getting through, not after flush_limit_s (the lines are lost as in a log call).
        target = GatedText()
        stream = UnblockedStream(target, stall_s=0.05, flush_limit_s=WAIT_S * 6)
        stream.write("one\n")
        assert target.entered.wait(WAIT_S)
        stream.write("two\n")
        ended = _finish_in_thread(stream)
        try:
            assert ended.wait(WAIT_S)
        finally:
            target.gate.set()  # the pump's write returns, and the thread that waited ends
        assert stream.drain(WAIT_S)

    def test_the_end_of_a_program_waits_past_stall_s_for_a_slow_reader_still_reading(
        self,
    ) -> None:
        # In this process, on a real pipe: 300 kB queued while nobody read, then a reader
        # that takes about two seconds over it, each of its reads well inside stall_s. The
        # end waits while pieces get through, up to flush_limit_s, not one stall_s or a few.
        # The end is called once the reader has read (an event, not a hope that its thread
        # is scheduled within stall_s on a loaded machine): a reader not there yet is one
        # that is away, which the test above covers.
        read_end, write_end = os.pipe()
        read = bytearray()
        reading = threading.Event()

        def read_slowly() -> None:
            while chunk := os.read(read_end, 2048):
                read.extend(chunk)
                reading.set()
                threading.Event().wait(0.015)

        with os.fdopen(write_end, "w", encoding="utf-8") as target:
            stream = UnblockedStream(target, stall_s=0.2, flush_limit_s=WAIT_S * 2)
            for n in range(3000):
                stream.write(f"line {n:06d} " + "x" * 80 + "\n")
            stream.flush()
            assert stream.stalled
            reader = threading.Thread(target=read_slowly, daemon=True)
            reader.start()
            assert reading.wait(WAIT_S), "the reader never read"
            stream.finish()
            assert stream.drain(0.0), "the end gave up while lines were still getting through"
        reader.join(WAIT_S)
        os.close(read_end)
        lines = bytes(read).decode().splitlines()
        assert lines == [f"line {n:06d} " + "x" * 80 for n in range(3000)]

    def test_an_in_process_stream_is_used_as_it_is(self) -> None:
        target = io.StringIO()
        assert unblocked(target) is target

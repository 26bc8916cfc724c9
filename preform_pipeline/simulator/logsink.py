"""A console stream for the simulators' log that never stops the server when nobody reads it.

Formlabs' own launcher (``PreFormApi.start_preform_server`` in their Python library) starts the
server with stderr on a pipe that it never reads. Logging one line per request into that pipe
filled it after a few hundred requests, and then the next log call, made inside a request,
blocked that request and every later one for ever.

:class:`UnblockedStream` keeps the ordinary behaviour while someone reads: each line is written
before the log call returns, so the order and the last words before ``os._exit`` stay as they
were. When a write has not got through within ``stall_s``, the stream stops waiting: lines
queue up to ``max_pending`` and later ones are dropped and counted, until a reader drains the
pipe; then the count is written as one line before the next lines.
"""

from __future__ import annotations

import atexit
import math
import os
import threading
from collections import deque
from typing import TextIO, cast

__all__ = [
    "DEFAULT_FLUSH_LIMIT_S",
    "DEFAULT_MAX_PENDING_LINES",
    "DEFAULT_STALL_S",
    "UnblockedStream",
    "unblocked",
]

#: Lines kept while the reader is away (about 2.5 MB of log at most).
DEFAULT_MAX_PENDING_LINES = 10_000
#: How long a log call waits for its line to get through before the stream counts as stalled.
DEFAULT_STALL_S = 0.5
#: The longest a flush waits for a reader that is slow but there (lines still getting through).
DEFAULT_FLUSH_LIMIT_S = 30.0
#: Bytes written at a time (POSIX PIPE_BUF on Linux: a pipe takes each whole).
_PIECE = 4096


class UnblockedStream:
    """Writes lines to ``target`` from a daemon thread; a log call never waits for long."""

    def __init__(
        self,
        target: TextIO,
        *,
        max_pending: int = DEFAULT_MAX_PENDING_LINES,
        stall_s: float = DEFAULT_STALL_S,
        flush_limit_s: float = DEFAULT_FLUSH_LIMIT_S,
    ) -> None:
        self._target = target
        self._max_pending = max_pending
        self._stall_s = stall_s
        self._flush_limit_s = flush_limit_s
        self._progress = 0  # writes that got through, counted by the pump (flush's measure)
        self._pending: deque[str] = deque()
        self._cond = threading.Condition()
        self._writing = False
        self._stalled = False
        self._dropped = 0
        # Straight to the descriptor where there is one. A writer blocked on a full pipe inside
        # the text stream holds its buffer's lock; the interpreter's exit flushes that stream,
        # and on Debian's Python 3.11.2 it then hangs for ever (its error about the lock goes
        # to the same full pipe). Written past the buffer, the stream stays empty and free.
        try:
            self._fd: int | None = target.fileno()
            target.flush()  # what the stream holds goes first, in order
        except (AttributeError, OSError, ValueError):
            self._fd = None
        self._encoding = getattr(target, "encoding", None) or "utf-8"
        # A daemon: the writer may be blocked for good on a full pipe when the program ends.
        threading.Thread(target=self._pump, name="log-console", daemon=True).start()

    @property
    def dropped(self) -> int:
        """Lines dropped since the last notice was written."""
        with self._cond:
            return self._dropped

    @property
    def stalled(self) -> bool:
        """Whether the reader is known to be away: log calls do not wait until a line is out."""
        with self._cond:
            return self._stalled

    def write(self, text: str) -> int:
        with self._cond:
            if len(self._pending) >= self._max_pending:
                self._dropped += 1
            else:
                self._pending.append(text)
                self._cond.notify_all()
        return len(text)

    def flush(self) -> None:
        """Wait until the queued lines are out, unless the reader is known to be away."""
        with self._cond:
            if self._stalled:
                return
        if not self.drain(self._stall_s):
            with self._cond:
                self._stalled = True

    def finish(self) -> None:
        """At the program's end: wait for the queued lines as long as they keep getting
        through, up to ``flush_limit_s``; give up after ``stall_s`` with none getting through.

        A log call gives up after ``stall_s`` so that a slow reader cannot hold requests up;
        at the end that rule lost the backlog's tail and the last words (``server_stopped``)
        of a simulator whose reader had only just started to read on a loaded machine.
        """
        # Counted in waits of stall_s rather than read off a clock: each is at least that.
        for _ in range(max(1, math.ceil(self._flush_limit_s / self._stall_s))):
            with self._cond:
                progress = self._progress
                if self._cond.wait_for(self._idle, timeout=self._stall_s):
                    return
                if self._progress == progress:
                    return

    def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every queued line to be out; whether it is."""
        with self._cond:
            return self._cond.wait_for(self._idle, timeout=timeout)

    def _idle(self) -> bool:
        return not self._pending and not self._writing

    def _pump(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._pending))
                text = "".join(self._pending)
                self._pending.clear()
                dropped, self._dropped = self._dropped, 0
                self._writing = True
            if dropped:
                text = (
                    f"[{dropped} log line{'' if dropped == 1 else 's'} dropped: nobody read "
                    "this stream]\n" + text
                )
            self._put(text)
            with self._cond:
                self._writing = False
                self._stalled = False
                self._cond.notify_all()

    def _put(self, text: str) -> None:
        try:
            if self._fd is None:
                self._target.write(text)
                self._target.flush()
                with self._cond:
                    self._progress += 1
                return
            data = text.encode(self._encoding, errors="backslashreplace")
            while data:
                # A pipe's blocking write returns only once all of it is in: in pieces of a
                # pipe's atomic size, so that finish() sees a slow reader's progress.
                data = data[os.write(self._fd, data[:_PIECE]):]
                with self._cond:
                    self._progress += 1
        except (OSError, ValueError):
            # The reader went away for good (a closed pipe): nothing can be said any more.
            pass


def unblocked(stream: TextIO) -> TextIO:
    """``stream`` wrapped in an :class:`UnblockedStream` when it is an OS file or pipe."""
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return stream  # in-process streams (StringIO) never block
    wrapped = UnblockedStream(stream)
    # Before the interpreter stops its daemon threads (the pump among them): what a reader
    # that is there is still reading gets out (UnblockedStream.finish).
    atexit.register(wrapped.finish)
    # It has what a logging.StreamHandler uses of a text stream: write and flush.
    return cast(TextIO, wrapped)

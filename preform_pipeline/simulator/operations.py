"""Asynchronous operations: what ``?async=true`` starts and ``/operations/`` reports.

A request with ``?async=true`` is answered at once with an operation id; the work runs in a
worker thread that reports progress into an :class:`Operation`. ``GET /operations/{id}/``
reads a consistent snapshot: status ``IN_PROGRESS`` / ``SUCCEEDED`` / ``FAILED``, progress in
[0, 1] that never goes backwards, and on completion the operation's response body (or its
ErrorModel body on failure).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from preform_pipeline.simulator.protocol import Json

__all__ = [
    "DEFAULT_MAX_FINISHED_OPERATIONS",
    "FAILED",
    "IN_PROGRESS",
    "SUCCEEDED",
    "Operation",
    "OperationRegistry",
    "OperationSnapshot",
]

IN_PROGRESS: Final = "IN_PROGRESS"
SUCCEEDED: Final = "SUCCEEDED"
FAILED: Final = "FAILED"

#: Finished operations kept for polling; the oldest finished ones are forgotten beyond this, so
#: a simulator that runs for days does not grow without bound (running ones are always kept).
DEFAULT_MAX_FINISHED_OPERATIONS = 10_000


@dataclass(frozen=True)
class OperationSnapshot:
    """One consistent reading of an operation."""

    id: str
    operation_id: str
    status: str
    progress: float
    result: Any
    started_at: float
    finished_at: float | None

    def summary_json(self) -> Json:
        """An item of the ``/operations/`` listing."""
        return {"id": self.id, "status": self.status, "progress": self.progress}

    def detail_json(self) -> Json:
        """The ``/operations/{id}/`` answer; ``result`` only once the operation has ended."""
        body = self.summary_json()
        if self.result is not None:
            body["result"] = self.result
        return body


class Operation:
    """A running or finished asynchronous operation; safe to update from its worker thread."""

    def __init__(self, operation_id: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.id = str(uuid.uuid4())
        self.operation_id = operation_id
        self._clock = clock
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._status: str = IN_PROGRESS
        self._progress = 0.0
        self._result: Any = None
        self._started_at = clock()
        self._finished_at: float | None = None

    def report(self, fraction: float) -> None:
        """Record progress; clamped to [0, 1] and never lower than what was reported before."""
        value = min(1.0, max(0.0, float(fraction)))
        with self._lock:
            if self._status == IN_PROGRESS and value > self._progress:
                self._progress = value

    def succeed(self, result: Any) -> None:
        self._finish(SUCCEEDED, result, progress=1.0)

    def fail(self, error_body: Json) -> None:
        self._finish(FAILED, error_body, progress=None)

    def _finish(self, status: str, result: Any, progress: float | None) -> None:
        with self._lock:
            if self._status != IN_PROGRESS:
                return
            self._status = status
            self._result = result
            if progress is not None:
                self._progress = progress
            self._finished_at = self._clock()
        self._done.set()

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the operation ends; ``False`` if ``timeout`` passed first."""
        return self._done.wait(timeout)

    def snapshot(self) -> OperationSnapshot:
        with self._lock:
            return OperationSnapshot(
                id=self.id,
                operation_id=self.operation_id,
                status=self._status,
                progress=self._progress,
                result=self._result,
                started_at=self._started_at,
                finished_at=self._finished_at,
            )


Work = Callable[[Operation], Any]
ErrorBody = Callable[[BaseException], Json]


class OperationRegistry:
    """Every operation started since launch (bounded), and the worker threads that run them."""

    def __init__(self, *, max_finished: int = DEFAULT_MAX_FINISHED_OPERATIONS) -> None:
        self._max_finished = max_finished
        self._lock = threading.Lock()
        self._operations: OrderedDict[str, Operation] = OrderedDict()

    def start(self, operation_id: str, work: Work, error_body: ErrorBody) -> Operation:
        """Register an operation and run ``work(operation)`` in a daemon worker thread.

        ``work`` returns the success body; any exception it raises is turned into the failure
        body by ``error_body`` (which must not raise).
        """
        operation = Operation(operation_id)
        with self._lock:
            self._operations[operation.id] = operation
            self._forget_old_locked()

        def run() -> None:
            try:
                result = work(operation)
            except BaseException as exc:  # every failure, whatever its kind, ends the operation
                operation.fail(error_body(exc))
                if not isinstance(exc, Exception):
                    raise
            else:
                operation.succeed(result)

        # Daemon: a hung operation (fault injection) must not keep the process alive.
        thread = threading.Thread(
            target=run, name=f"sim-op-{operation_id}-{operation.id[:8]}", daemon=True
        )
        thread.start()
        return operation

    def get(self, id: str) -> Operation | None:
        with self._lock:
            return self._operations.get(id)

    def snapshots(self) -> list[OperationSnapshot]:
        with self._lock:
            operations = list(self._operations.values())
        return [op.snapshot() for op in operations]

    def listing_json(self) -> Json:
        """The ``/operations/`` answer."""
        items = [s.summary_json() for s in self.snapshots()]
        return {"count": len(items), "operations": items}

    def _forget_old_locked(self) -> None:
        finished = [op_id for op_id, op in self._operations.items() if op.finished]
        excess = len(finished) - self._max_finished
        for op_id in finished[: max(0, excess)]:
            del self._operations[op_id]

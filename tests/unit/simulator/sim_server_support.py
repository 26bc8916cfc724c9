"""A stand-in engine for the HTTP server's tests: records every call, answers as told.

The real engine (``simulator/engine.py``) is tested on its own; the server's tests only need
something that honours the :class:`SceneEngine` protocol and can be steered: answer a body,
raise, or report progress step by step under the test's control.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from preform_pipeline.simulator.protocol import ProgressCallback, WorkEstimate

__all__ = ["Call", "ProgressGate", "RecordingEngine", "WAIT_S"]

#: Upper bound of every wait in these tests; reached only when something is broken.
WAIT_S = 10.0


@dataclass(frozen=True)
class Call:
    operation_id: str
    params: dict[str, str]
    body: Any
    had_progress: bool


@dataclass
class ProgressGate:
    """Makes an operation report ``steps`` one at a time, each released by the test."""

    steps: tuple[float, ...]
    _released: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    reached: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self._released.release()

    def release_all(self) -> None:
        for _ in self.steps:
            self._released.release()

    def run(self, progress: ProgressCallback | None) -> None:
        for fraction in self.steps:
            if progress is not None:
                progress(fraction)
            self.reached.set()
            if not self._released.acquire(timeout=WAIT_S):
                raise TimeoutError("the test never released this progress step")


class RecordingEngine:
    """A :class:`SceneEngine` that records calls and answers from its tables."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.answers: dict[str, Any] = {}
        self.errors: dict[str, BaseException] = {}
        self.gates: dict[str, ProgressGate] = {}
        self.work: dict[str, WorkEstimate] = {}
        self._lock = threading.Lock()

    def estimate_work(self, operation_id: str, params: dict[str, str], body: Any) -> WorkEstimate:
        return self.work.get(operation_id, WorkEstimate())

    def call(
        self,
        operation_id: str,
        params: dict[str, str],
        body: Any,
        progress: ProgressCallback | None = None,
    ) -> Any:
        with self._lock:
            self.calls.append(Call(operation_id, dict(params), body, progress is not None))
        gate = self.gates.get(operation_id)
        if gate is not None:
            gate.run(progress)
        error = self.errors.get(operation_id)
        if error is not None:
            raise error
        if operation_id in self.answers:
            return self.answers[operation_id]
        return {"operation": operation_id, "params": params}

    def last_call(self) -> Call:
        with self._lock:
            return self.calls[-1]

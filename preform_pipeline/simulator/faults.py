"""Fault injection: the ways a real PreFormServer fails, on demand and reproducibly.

A :class:`FaultPlan` is what the command line asked for; a :class:`FaultInjector` applies it
to a running server:

- ``exit_after_requests=N`` serves N requests, then the process dies (``os._exit``, no answer)
  as request N+1 arrives;
- ``exit_during=OP`` kills the process while operation ``OP`` runs, after it reported some
  progress and before it answers;
- ``hang=OP`` makes ``OP`` never finish (the request blocks, an async operation stays
  ``IN_PROGRESS``) until the server shuts down;
- ``error_rate=F`` answers that fraction of requests 500 ``SIMULATED_FAULT``, drawn from a
  ``random.Random(seed)`` in arrival order, so a sequential client sees the same answers on
  every run with the same seed. ``GET /`` (the version probe a pool uses as health check) is
  spared, so a health check still tells a live-but-flaky server from a dead one;
- ``slow_start_s`` and ``fail_start`` act before the server binds (see ``cli.py``).
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, NoReturn

from preform_pipeline.logging import get_logger
from preform_pipeline.simulator.protocol import ProgressCallback, SimError
from preform_pipeline.simulator.routes import GET_API_VERSION

__all__ = [
    "DEFAULT_SEED",
    "EXIT_INJECTED_FAULT",
    "FAULT_PROGRESS",
    "SIMULATED_FAULT",
    "FaultInjector",
    "FaultPlan",
    "hard_exit",
]

#: Exit status of every injected crash, distinct from 1 (start-up failure) and 2 (usage), so
#: a test can tell an injected death from a real bug.
EXIT_INJECTED_FAULT: Final = 3

#: ErrorModel code of an injected 500 answer.
SIMULATED_FAULT: Final = "SIMULATED_FAULT"

DEFAULT_SEED = 0

#: Progress an operation has reported when ``exit_during`` kills it or ``hang`` freezes it.
FAULT_PROGRESS = 0.5

_log = get_logger(__name__)


@dataclass(frozen=True)
class FaultPlan:
    """The faults to inject (all off by default)."""

    exit_after_requests: int | None = None
    exit_during: str | None = None
    hang: str | None = None
    error_rate: float = 0.0
    seed: int = DEFAULT_SEED
    slow_start_s: float = 0.0
    fail_start: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError(f"error rate must be within 0..1, got {self.error_rate}")
        if self.exit_after_requests is not None and self.exit_after_requests < 0:
            raise ValueError(f"exit-after-requests must be >= 0, got {self.exit_after_requests}")
        if self.slow_start_s < 0:
            raise ValueError(f"slow start must be >= 0 seconds, got {self.slow_start_s}")

    def active(self) -> dict[str, object]:
        """The faults that are switched on, for the start-up log line."""
        found: dict[str, object] = {}
        if self.exit_after_requests is not None:
            found["exit_after_requests"] = self.exit_after_requests
        if self.exit_during:
            found["exit_during"] = self.exit_during
        if self.hang:
            found["hang"] = self.hang
        if self.error_rate:
            found["error_rate"] = self.error_rate
            found["seed"] = self.seed
        if self.slow_start_s:
            found["slow_start_s"] = self.slow_start_s
        if self.fail_start:
            found["fail_start"] = True
        return found


def hard_exit(code: int) -> NoReturn:
    """End the process at once: no cleanup, no flushing, open connections just drop."""
    os._exit(code)


class FaultInjector:
    """Applies a :class:`FaultPlan` to requests and operations; thread-safe."""

    def __init__(
        self,
        plan: FaultPlan,
        *,
        stop: threading.Event,
        exit: Callable[[int], NoReturn] = hard_exit,
    ) -> None:
        self.plan = plan
        self._stop = stop
        self._exit = exit
        self._lock = threading.Lock()
        self._requests = 0
        self._rng = random.Random(plan.seed)

    @property
    def requests_seen(self) -> int:
        with self._lock:
            return self._requests

    def on_request(self, method: str, path: str) -> None:
        """Count an arriving request; dies before answering the one past the limit."""
        limit = self.plan.exit_after_requests
        with self._lock:
            self._requests += 1
            number = self._requests
        if limit is not None and number > limit:
            _log.warning(
                "injected_fault",
                fault="exit_after_requests",
                limit=limit,
                request_number=number,
                method=method,
                path=path,
                exit_code=EXIT_INJECTED_FAULT,
            )
            self._exit(EXIT_INJECTED_FAULT)

    def simulated_error(self, operation_id: str) -> SimError | None:
        """The injected 500 for this request, or ``None`` to serve it normally."""
        rate = self.plan.error_rate
        if rate <= 0.0 or operation_id == GET_API_VERSION:
            return None
        with self._lock:
            hit = self._rng.random() < rate
        if not hit:
            return None
        return SimError(
            500,
            SIMULATED_FAULT,
            f"injected fault: --error-rate {rate} (seed {self.plan.seed}) failed {operation_id}",
        )

    def during_operation(self, operation_id: str, progress: ProgressCallback | None) -> None:
        """Called while ``operation_id`` runs: dies or hangs there if the plan says so."""
        if operation_id not in (self.plan.exit_during, self.plan.hang):
            return
        if progress is not None:
            progress(FAULT_PROGRESS)
        if operation_id == self.plan.exit_during:
            _log.warning(
                "injected_fault",
                fault="exit_during",
                operation=operation_id,
                exit_code=EXIT_INJECTED_FAULT,
            )
            self._exit(EXIT_INJECTED_FAULT)
        _log.warning("injected_fault", fault="hang", operation=operation_id)
        # Hang until the server stops; only then is the caller released, with an error.
        self._stop.wait()
        raise SimError(
            500, SIMULATED_FAULT, f"injected fault: --hang {operation_id} abandoned at shutdown"
        )

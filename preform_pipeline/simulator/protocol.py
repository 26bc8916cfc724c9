"""The seam between the simulator's HTTP server and its scene engine.

The server (``server.py``) owns HTTP: routing, body parsing, ``?async=true`` operations,
latency profiles and fault injection. The engine (``engine.py``) owns the state and the
geometry: scenes, models, layout, printing. The server calls one engine method per Local API
operation, named after the contract's ``operationId`` in snake_case, with path parameters as
keyword arguments and the parsed JSON body as ``body``; the method returns the JSON-ready
response body, or raises :class:`SimError` for a 4xx/5xx answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from preform_pipeline.errors import PipelineError

__all__ = ["Json", "ProgressCallback", "SceneEngine", "SimError", "WorkEstimate"]

Json = dict[str, Any]


class ProgressCallback(Protocol):
    def __call__(self, fraction: float) -> None: ...


class SimError(PipelineError):
    """An error answer of the simulated server: HTTP status plus an ErrorModel code/message."""

    def __init__(self, status: int, code: str, message: str, *, extra: Json | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.error_message = message
        #: Fields the operation's own error answer adds (hollow's ``failures``).
        self.extra: Json = dict(extra or {})

    def body(self) -> Json:
        return {"error": {"code": self.code, "message": self.error_message}, **self.extra}


@dataclass(frozen=True)
class WorkEstimate:
    """How much work a request is, so the realistic latency profile can price it."""

    triangles: int = 0
    models: int = 0


class SceneEngine(Protocol):
    """What the HTTP server needs from the engine (see module docstring for the convention).

    Unknown operation ids raise ``SimError(404, "NOT_FOUND", ...)``; malformed bodies raise
    ``SimError(400, ...)`` with a code that names the problem.
    """

    def estimate_work(self, operation_id: str, params: dict[str, str], body: Any) -> WorkEstimate:
        """Size of the work ``operation_id`` would do, read without changing any state."""
        ...

    def call(
        self,
        operation_id: str,
        params: dict[str, str],
        body: Any,
        progress: ProgressCallback | None = None,
    ) -> Any:
        """Run one operation; ``params`` are the path parameters (``scene_id``, ``id``).

        Long-running operations report ``progress`` in [0, 1] as they go; the server passes a
        callback for ``?async=true`` requests and ``None`` otherwise.
        """
        ...

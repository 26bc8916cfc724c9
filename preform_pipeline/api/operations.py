"""Waiting for ``?async=true`` operations: poll ``/operations/{id}/`` until done or the deadline.

Polling starts at once, then waits :data:`DEFAULT_POLL_INTERVAL_S` and grows the wait by
:data:`DEFAULT_POLL_BACKOFF` up to :data:`DEFAULT_POLL_MAX_INTERVAL_S`: quick operations
return within tens of milliseconds, long ones cost about one status request a second.

Progress values (0.0 to 1.0) go to the caller's callback in the order the server reports
them, each distinct value once, and 1.0 last when the operation succeeded.

An operation that ends FAILED raises :class:`~preform_pipeline.errors.OperationFailedError`,
a *permanent* error carrying the result's code and message: the server reached a verdict on
this input. The one exception is a result whose code says the server itself broke
(:data:`DEFAULT_TRANSIENT_FAILURE_CODES`, e.g. ``INTERNAL_ERROR``): that is what the same
request answers with HTTP 500 when sent without ``?async=true``, so it raises the same
transient ``ServerInternalError``. The operation record carries no HTTP status, so the code
is the only evidence; the set is configurable. A server that dies or hangs mid-operation shows
up while polling as ``ServerUnreachableError`` or ``ServerTimeoutError``, also transient.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Final

from preform_pipeline.api._http import code_hint, error_fields
from preform_pipeline.api.enums import OperationStatus
from preform_pipeline.api.models import Operation
from preform_pipeline.errors import (
    ApiError,
    OperationFailedError,
    RequestInfo,
    ServerInternalError,
    ServerTimeoutError,
)

__all__ = [
    "DEFAULT_FINAL_POLL_TIMEOUT_S",
    "DEFAULT_POLL_BACKOFF",
    "DEFAULT_POLL_INTERVAL_S",
    "DEFAULT_POLL_MAX_INTERVAL_S",
    "DEFAULT_POLL_POLICY",
    "DEFAULT_TRANSIENT_FAILURE_CODES",
    "OperationFetcher",
    "PollPolicy",
    "ProgressCallback",
    "operation_failed_error",
    "wait_for_operation",
]

DEFAULT_POLL_INTERVAL_S: Final = 0.05
DEFAULT_POLL_MAX_INTERVAL_S: Final = 1.0
DEFAULT_POLL_BACKOFF: Final = 1.5

#: The status read made when the deadline arrives gets this long, so an operation that
#: finished just in time is not reported as timed out.
DEFAULT_FINAL_POLL_TIMEOUT_S: Final = 1.0

#: Result codes of a FAILED operation that mean the server broke, not the input.
DEFAULT_TRANSIENT_FAILURE_CODES: Final = frozenset({"INTERNAL_ERROR", "INTERNAL_SERVER_ERROR"})

#: Receives an operation's progress, 0.0 to 1.0.
ProgressCallback = Callable[[float], None]

#: ``fetch(operation_id, timeout_s, deadline)`` reads one operation status; a Retry-After
#: its server (or proxy) answers may be waited until ``deadline``, the operation's.
OperationFetcher = Callable[[str, float, float], Operation]


@dataclass(frozen=True)
class PollPolicy:
    """How often to ask for an operation's status: ``initial_s`` growing by ``factor``."""

    initial_s: float = DEFAULT_POLL_INTERVAL_S
    max_s: float = DEFAULT_POLL_MAX_INTERVAL_S
    factor: float = DEFAULT_POLL_BACKOFF

    def __post_init__(self) -> None:
        if self.initial_s <= 0 or self.max_s < self.initial_s or self.factor < 1:
            raise ValueError(
                "PollPolicy needs 0 < initial_s <= max_s and factor >= 1, "
                f"got {self.initial_s}, {self.max_s}, {self.factor}"
            )

    def intervals(self) -> Iterator[float]:
        interval = self.initial_s
        while True:
            yield interval
            interval = min(interval * self.factor, self.max_s)


DEFAULT_POLL_POLICY: Final = PollPolicy()


def operation_failed_error(
    operation: Operation,
    request: RequestInfo,
    transient_codes: Collection[str] = DEFAULT_TRANSIENT_FAILURE_CODES,
) -> ApiError:
    """The error for an operation that ended FAILED, with the code and message of its result.

    ``OperationFailedError`` (permanent), or ``ServerInternalError`` (transient) when the
    result's code is one of ``transient_codes``.
    """
    code, message = error_fields(operation.result)
    detail = ": ".join(part for part in (code, message) if part) or "no reason given"
    if code is not None and code in transient_codes:
        return ServerInternalError(
            f"operation {operation.id} failed inside the server: {detail}",
            request=request,
            code=code,
            server_message=message,
            body=operation.result,
            hint="the server failed, not the input; retry on another server or restart this one",
        )
    return OperationFailedError(
        f"operation {operation.id} failed: {detail}",
        request=request,
        code=code,
        server_message=message,
        body=operation.result,
        hint=code_hint(code, "the server could not do this with this input; check the step's "
                       "options and files"),
    )


def wait_for_operation(
    fetch: OperationFetcher,
    operation_id: str,
    *,
    deadline: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    request: RequestInfo,
    request_timeout: float,
    policy: PollPolicy = DEFAULT_POLL_POLICY,
    progress: ProgressCallback | None = None,
    transient_codes: Collection[str] = DEFAULT_TRANSIENT_FAILURE_CODES,
) -> Operation:
    """Poll until the operation SUCCEEDED (returned) or FAILED / outlived ``deadline`` (raised).

    ``deadline`` is an absolute time on ``clock``; ``request`` is the request that started the
    operation, which every error carries.
    """
    started = clock()
    last_progress: float | None = None
    intervals = policy.intervals()
    while True:
        remaining = deadline - clock()
        op = fetch(
            operation_id,
            min(request_timeout, max(remaining, DEFAULT_FINAL_POLL_TIMEOUT_S)),
            deadline,
        )
        if progress is not None and op.progress is not None and op.progress != last_progress:
            last_progress = op.progress
            progress(op.progress)
        if op.status is OperationStatus.SUCCEEDED:
            if progress is not None and last_progress != 1.0:
                progress(1.0)
            return op
        if op.status is OperationStatus.FAILED:
            raise operation_failed_error(op, request, transient_codes)
        remaining = deadline - clock()
        if remaining <= 0:
            shown = f" at {op.progress:.0%}" if op.progress is not None else ""
            raise ServerTimeoutError(
                f"operation {operation_id} was still in progress{shown} when its deadline "
                f"passed after {clock() - started:.3g} s",
                request=request,
                hint="the server may be hung or overloaded; retry elsewhere or allow more time",
            )
        sleep(min(next(intervals), remaining))

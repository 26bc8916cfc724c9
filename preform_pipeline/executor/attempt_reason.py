"""The words for an attempt that failed on its server in a way another server may not: what
failed, on which server, and what went wrong there, as a person reads it in the run's
summary, its report, ``jobs``, the dashboard and the retry line (session 48: the reason of a
build that gave up read ``last: ServerInternalError: POST http://...``, a Python class's name
and an address in place of the step and the server's name).

The full error (its request's method and address) stays in the attempt's record and the
log's ``build_attempt_failed``, for whoever looks further.
"""

from __future__ import annotations

from preform_pipeline.errors import ApiError, ServerProcessError, TransientApiError

__all__ = ["request_named", "retryable_reason"]


def request_named(exc: ApiError) -> str:
    """The request an API error came from, as a person knows it: its operation (``autoOrient``,
    or the step a status poll waited for), else its method and address, else "a request"."""
    if exc.request is None:
        return "a request"
    return exc.request.named or f"{exc.request.method} {exc.request.url}"


def retryable_reason(exc: TransientApiError | ServerProcessError, server: str) -> str:
    """``exc``, which ended an attempt on ``server``, as a build's reason."""
    if isinstance(exc, ServerProcessError):
        return f"the server process of {server} failed: {exc}"
    hint = f" ({exc.hint})" if exc.hint else ""
    if exc.request is None:
        # Our own finding about an answer (a scene that lacks an import): it says what it is.
        return f"on {server}: {exc.said}{hint}"
    return f"{request_named(exc)} failed on {server}: {exc.said}{hint}"

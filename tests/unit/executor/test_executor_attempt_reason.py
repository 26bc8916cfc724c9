"""A retryable failure is said as a build's reason in words: the step, the server, and what
went wrong there; never the error's class name."""

from __future__ import annotations

from preform_pipeline.errors import (
    ImportNotAppliedError,
    RequestInfo,
    RequestRejectedError,
    ServerProcessError,
    ServerUnreachableError,
)
from preform_pipeline.executor.attempt_reason import retryable_reason
from preform_pipeline.executor.runner import _BuildWorker
from preform_pipeline.servers.pathmap import PathMapper


class TestRetryableReason:
    def test_an_api_error_names_its_operation_and_the_server(self) -> None:
        exc = ServerUnreachableError(
            "server unreachable: could not connect",
            request=RequestInfo("POST", "http://10.0.0.5:44388/scene/s/auto-support/",
                                "autoSupport"),
            hint="check that it runs")
        assert retryable_reason(exc, "lab-2") == (
            "autoSupport failed on lab-2: server unreachable: could not connect "
            "(check that it runs)")

    def test_a_request_of_no_operation_is_named_by_its_method_and_address(self) -> None:
        exc = ServerUnreachableError("server unreachable: could not connect",
                                     request=RequestInfo("GET", "http://h:1/x/"))
        assert retryable_reason(exc, "h") == (
            "GET http://h:1/x/ failed on h: server unreachable: could not connect")

    def test_a_finding_of_no_request_says_where_it_was_made(self) -> None:
        exc = ImportNotAppliedError("scene s lacks a.stl")
        assert retryable_reason(exc, "server-1") == "on server-1: scene s lacks a.stl"

    def test_a_server_process_that_failed_is_named_by_its_server(self) -> None:
        exc = ServerProcessError("PreFormServer exited", exit_code=3)
        assert retryable_reason(exc, "server-1") == (
            "the server process of server-1 failed: PreFormServer exited (exit code 3)")


class TestARefusalsReason:
    """A refusal of no words of the server's own is said as ours, without the request's
    method and address again (session 48's review: ``autoSupport refused: POST http://...
    (autoSupport): server answered 404``)."""

    def test_names_the_operation_once_and_no_address(self) -> None:
        exc = RequestRejectedError(
            "server answered 404",
            request=RequestInfo("POST", "http://10.0.0.5:44388/scene/s/auto-support/",
                                "autoSupport"),
            status_code=404)
        reason = _BuildWorker._reason(exc, PathMapper((), "lab-2"))
        assert reason == "autoSupport refused: server answered 404"

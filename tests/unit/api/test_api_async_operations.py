"""Long operations run with ?async=true, are polled with back-off, report progress, and end
at their deadline."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from preform_pipeline.api import (
    DEFAULT_OPERATION_TIMEOUT_S,
    AutoSupportOptions,
    OperationStatus,
    PollPolicy,
    PreFormClient,
)
from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import (
    OperationFailedError,
    PermanentApiError,
    ServerInternalError,
    ServerTimeoutError,
    TransientApiError,
)
from tests.unit.api.api_cases import CASES, LONG_OPERATIONS, Case, windows_mapper
from tests.unit.api.api_fakes import ScriptedServer, accepted, error, ok, op_status

SUPPORT = "/scene/scene-1/auto-support/"
OP = "/operations/op-1/"


class TestEveryLongOperation:
    """Every operation the contract allows to run asynchronously is sent with ?async=true."""

    @pytest.mark.parametrize(
        "case",
        [c for c in CASES if c.name in LONG_OPERATIONS],
        ids=[c.name for c in CASES if c.name in LONG_OPERATIONS],
    )
    def test_is_accepted_polled_and_parsed_from_the_operation_result(
        self, case: Case, server: ScriptedServer, make_client: Callable[..., PreFormClient]
    ) -> None:
        server.on(case.method, case.path, accepted("op-1"))
        server.on(
            "GET",
            OP,
            op_status("op-1", "IN_PROGRESS", 0.5),
            op_status("op-1", "SUCCEEDED", 1.0, case.answer if case.answer is not None else {}),
        )
        client = make_client(path_mapper=windows_mapper)

        result = case.call(client)

        [started] = server.calls(case.method, case.path)
        assert started.params == {**case.params, "async": "true"}
        assert started.body == case.body
        assert len(server.calls("GET", OP)) == 2
        case.check(result)

    def test_the_blocking_only_operations_are_never_sent_async(
        self, server: ScriptedServer, make_client: Callable[..., PreFormClient]
    ) -> None:
        blocking = [c for c in CASES if c.name not in LONG_OPERATIONS]
        client = make_client(path_mapper=windows_mapper)
        for case in blocking:
            server.on(case.method, case.path, ok(case.answer, case.status))
            case.call(client)

        assert all("async" not in s.params for s in server.sent)


class TestProgress:
    """Progress reaches the callback in order, once per distinct value, ending with 1.0."""

    def test_progress_values_arrive_in_order_without_repeats(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        server.on("POST", SUPPORT, accepted("op-1"))
        server.on(
            "GET",
            OP,
            op_status("op-1", "IN_PROGRESS", 0.0),
            op_status("op-1", "IN_PROGRESS", 0.25),
            op_status("op-1", "IN_PROGRESS", 0.25),
            op_status("op-1", "IN_PROGRESS", 0.8),
            op_status("op-1", "SUCCEEDED", 1.0, {}),
        )
        seen: list[float] = []

        client.auto_support("scene-1", progress=seen.append)

        assert seen == [0.0, 0.25, 0.8, 1.0]

    def test_success_without_progress_values_still_reports_completion(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        server.on("POST", SUPPORT, accepted("op-1"))
        server.on("GET", OP, op_status("op-1", "IN_PROGRESS"), op_status("op-1", "SUCCEEDED"))
        seen: list[float] = []

        client.auto_support("scene-1", progress=seen.append)

        assert seen == [1.0]

    def test_a_synchronous_answer_to_an_async_request_is_used_as_is(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        server.on("POST", "/scene/scene-1/estimate-print-time/", ok({"total_print_time_s": 60}))
        seen: list[float] = []

        estimate = client.estimate_print_time("scene-1", progress=seen.append)

        assert estimate.total_print_time_s == 60
        assert seen == [1.0]
        assert server.calls("GET") == []


class TestPolling:
    """The poll interval starts small and grows modestly to a ceiling; nothing really sleeps."""

    def test_intervals_grow_from_the_initial_value_to_the_ceiling(
        self, server: ScriptedServer, clock: ManualClock, client: PreFormClient
    ) -> None:
        server.on("POST", SUPPORT, accepted("op-1"))
        server.on(
            "GET", OP, *[op_status("op-1", "IN_PROGRESS", 0.1)] * 12, op_status("op-1", "SUCCEEDED")
        )

        client.auto_support("scene-1")

        assert clock.sleeps[0] == pytest.approx(0.05)
        assert clock.sleeps[1] == pytest.approx(0.075)
        assert all(b >= a for a, b in zip(clock.sleeps, clock.sleeps[1:], strict=False))
        assert max(clock.sleeps) == pytest.approx(1.0)
        assert len(clock.sleeps) == 12

    def test_a_custom_policy_is_honoured(
        self, server: ScriptedServer, clock: ManualClock, make_client: Callable[..., PreFormClient]
    ) -> None:
        server.on("POST", SUPPORT, accepted("op-1"))
        server.on(
            "GET", OP, *[op_status("op-1", "IN_PROGRESS")] * 3, op_status("op-1", "SUCCEEDED")
        )
        client = make_client(poll_policy=PollPolicy(initial_s=0.2, max_s=0.4, factor=2))

        client.auto_support("scene-1")

        assert clock.sleeps == pytest.approx([0.2, 0.4, 0.4])

    def test_an_inconsistent_policy_is_refused(self) -> None:
        with pytest.raises(ValueError, match="PollPolicy"):
            PollPolicy(initial_s=2, max_s=1)


class TestDeadline:
    """A deadline bounds the whole operation, including each request's own timeout."""

    def test_an_operation_still_running_at_its_deadline_raises_server_timeout(
        self, server: ScriptedServer, clock: ManualClock, client: PreFormClient
    ) -> None:
        server.on("POST", SUPPORT, accepted("op-1"))
        server.on("GET", OP, op_status("op-1", "IN_PROGRESS", 0.4))
        deadline = client.deadline_in(3.0)

        with pytest.raises(ServerTimeoutError) as caught:
            client.auto_support("scene-1", deadline=deadline)

        assert isinstance(caught.value, TransientApiError)
        assert "op-1" in str(caught.value) and "40%" in str(caught.value)
        assert caught.value.request is not None
        assert caught.value.request.operation == "autoSupport"
        assert clock.monotonic() == pytest.approx(deadline)

    def test_without_a_deadline_the_default_operation_timeout_applies(
        self, server: ScriptedServer, clock: ManualClock, client: PreFormClient
    ) -> None:
        server.on("POST", SUPPORT, accepted("op-1"))
        server.on("GET", OP, op_status("op-1", "IN_PROGRESS"))
        start = clock.monotonic()

        with pytest.raises(ServerTimeoutError):
            client.auto_support("scene-1")

        assert clock.monotonic() - start == pytest.approx(DEFAULT_OPERATION_TIMEOUT_S)

    def test_an_operation_that_finishes_exactly_at_the_deadline_succeeds(
        self, server: ScriptedServer, clock: ManualClock, client: PreFormClient
    ) -> None:
        deadline = client.deadline_in(0.05)
        server.on("POST", SUPPORT, accepted("op-1"))
        server.on("GET", OP, op_status("op-1", "IN_PROGRESS"), op_status("op-1", "SUCCEEDED"))

        client.auto_support("scene-1", deadline=deadline)

        assert clock.monotonic() == pytest.approx(deadline)

    def test_a_deadline_already_passed_sends_nothing(
        self, server: ScriptedServer, clock: ManualClock, client: PreFormClient
    ) -> None:
        client.check_version()

        with pytest.raises(ServerTimeoutError, match="deadline passed before the request"):
            client.auto_support("scene-1", deadline=clock.monotonic() - 1)

        assert server.calls() == []

    def test_each_request_timeout_ends_at_the_deadline(
        self, server: ScriptedServer, clock: ManualClock, client: PreFormClient
    ) -> None:
        timeouts: list[float] = []

        def record(answer: httpx.Response) -> Callable[[httpx.Request], httpx.Response]:
            def handler(request: httpx.Request) -> httpx.Response:
                timeouts.append(request.extensions["timeout"]["read"])
                return answer

            return handler

        server.on("POST", SUPPORT, record(accepted("op-1")))
        server.on(
            "GET",
            OP,
            record(op_status("op-1", "IN_PROGRESS")),
            record(op_status("op-1", "SUCCEEDED")),
        )

        client.auto_support("scene-1", deadline=clock.monotonic() + 30, timeout=60)

        assert timeouts[0] == pytest.approx(30)
        assert all(t <= 30 for t in timeouts)

    def test_in_blocking_mode_the_deadline_caps_the_request_timeout(
        self, server: ScriptedServer, clock: ManualClock, make_client: Callable[..., PreFormClient]
    ) -> None:
        def slow(request: httpx.Request) -> httpx.Response:
            assert request.extensions["timeout"]["read"] == pytest.approx(5)
            raise httpx.ReadTimeout("timed out", request=request)

        server.on("POST", SUPPORT, slow)
        client = make_client(async_operations=False)

        with pytest.raises(ServerTimeoutError):
            client.auto_support("scene-1", deadline=clock.monotonic() + 5)

        assert "async" not in server.calls("POST")[0].params


class TestFailedOperation:
    """An operation that ends FAILED raises a permanent OperationFailedError with its reason."""

    def test_failed_operation_carries_code_message_and_request(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        reason = {"error": {"code": "SUPPORT_FAILED", "message": "model m-1 is not manifold"}}
        server.on("POST", SUPPORT, accepted("op-1"))
        server.on(
            "GET",
            OP,
            op_status("op-1", "IN_PROGRESS", 0.3),
            op_status("op-1", "FAILED", 0.3, reason),
        )

        with pytest.raises(OperationFailedError) as caught:
            client.auto_support("scene-1", AutoSupportOptions(density=1.0))

        err = caught.value
        assert isinstance(err, PermanentApiError)
        assert err.code == "SUPPORT_FAILED"
        assert err.server_message == "model m-1 is not manifold"
        assert err.body == reason
        assert err.request is not None and err.request.operation == "autoSupport"
        assert "op-1" in str(err) and "SUPPORT_FAILED" in str(err)

    def test_an_internal_failure_is_transient_like_a_500(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        crash = {"error": {"code": "INTERNAL_ERROR", "message": "autoSupport crashed"}}
        server.on("POST", SUPPORT, accepted("op-1"))
        server.on("GET", OP, op_status("op-1", "FAILED", 0.6, crash))

        with pytest.raises(ServerInternalError) as caught:
            client.auto_support("scene-1")

        err = caught.value
        assert isinstance(err, TransientApiError)
        assert (err.code, err.server_message) == ("INTERNAL_ERROR", "autoSupport crashed")
        assert err.request is not None and err.request.operation == "autoSupport"

    def test_which_failure_codes_are_transient_is_configurable(
        self, server: ScriptedServer, make_client: Callable[..., PreFormClient]
    ) -> None:
        busy = {"error": {"code": "GPU_BUSY", "message": "try later"}}
        crash = {"error": {"code": "INTERNAL_ERROR", "message": "crashed"}}
        server.on("POST", SUPPORT, accepted("op-1"), accepted("op-2"))
        server.on("GET", OP, op_status("op-1", "FAILED", 0.1, busy))
        server.on("GET", "/operations/op-2/", op_status("op-2", "FAILED", 0.1, crash))
        client = make_client(transient_failure_codes={"GPU_BUSY"})

        with pytest.raises(ServerInternalError):
            client.auto_support("scene-1")
        with pytest.raises(OperationFailedError):
            client.auto_support("scene-1")

    def test_a_failed_hollow_names_the_models_it_failed_for(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        server.on("POST", "/scene/scene-1/hollow/", accepted("op-1"))
        server.on("GET", OP, op_status("op-1", "FAILED", 1.0, {"failures": ["m-1", "m-3"]}))

        with pytest.raises(OperationFailedError, match="m-1, m-3"):
            client.hollow("scene-1")

    def test_an_operation_the_server_forgot_is_a_transient_server_fault(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        server.on("POST", SUPPORT, accepted("op-1"))
        server.on("GET", OP, error(404, "NOT_FOUND", "no such operation"))

        with pytest.raises(ServerInternalError, match="no longer knows operation op-1"):
            client.auto_support("scene-1")

    def test_a_202_without_an_operation_id_is_a_server_fault(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        server.on("POST", SUPPORT, httpx.Response(202, json={}))

        with pytest.raises(ServerInternalError, match="operationId"):
            client.auto_support("scene-1")


class TestWaitForOperation:
    """An operation started elsewhere can be waited for by id."""

    def test_waits_and_returns_the_finished_operation(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        server.on(
            "GET",
            OP,
            op_status("op-1", "IN_PROGRESS", 0.5),
            op_status("op-1", "SUCCEEDED", 1.0, {"job_id": "j-1"}),
        )
        seen: list[float] = []

        op = client.wait_for_operation("op-1", progress=seen.append)

        assert op.status is OperationStatus.SUCCEEDED
        assert op.result == {"job_id": "j-1"}
        assert seen == [0.5, 1.0]

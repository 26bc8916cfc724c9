"""Fault injection decides deterministically when to die, hang or answer 500."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import NoReturn

import httpx
import pytest
from sim_server_support import WAIT_S

from preform_pipeline.simulator.faults import (
    EXIT_INJECTED_FAULT,
    FAULT_PROGRESS,
    SIMULATED_FAULT,
    FaultInjector,
    FaultPlan,
)
from preform_pipeline.simulator.protocol import SimError
from preform_pipeline.simulator.server import SimulatorServer
from tests.openapi_contract import local_api_contract


class Exited(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def fake_exit(code: int) -> NoReturn:
    raise Exited(code)


def injector(**plan: object) -> FaultInjector:
    return FaultInjector(FaultPlan(**plan), stop=threading.Event(), exit=fake_exit)  # type: ignore[arg-type]


def outcomes(faults: FaultInjector, count: int) -> list[bool]:
    return [faults.simulated_error("get_scene") is not None for _ in range(count)]


class TestExitAfterRequests:
    """N requests are served; the process dies as request N+1 arrives."""

    def test_dies_on_request_n_plus_one_with_the_fault_exit_code(self) -> None:
        faults = injector(exit_after_requests=3)
        for _ in range(3):
            faults.on_request("GET", "/")
        with pytest.raises(Exited) as caught:
            faults.on_request("GET", "/scene/s/")
        assert caught.value.code == EXIT_INJECTED_FAULT

    def test_zero_means_the_first_request_kills_it(self) -> None:
        with pytest.raises(Exited):
            injector(exit_after_requests=0).on_request("GET", "/")

    def test_without_the_fault_requests_are_only_counted(self) -> None:
        faults = injector()
        for _ in range(100):
            faults.on_request("GET", "/")
        assert faults.requests_seen == 100


class TestErrorRate:
    """The error rate draws from a seeded generator: same seed, same answers."""

    def test_the_same_seed_gives_the_same_sequence(self) -> None:
        first = outcomes(injector(error_rate=0.5, seed=7), 64)
        assert first == outcomes(injector(error_rate=0.5, seed=7), 64)
        assert first != outcomes(injector(error_rate=0.5, seed=8), 64)
        assert 10 < sum(first) < 54

    def test_rate_one_fails_everything_and_zero_nothing(self) -> None:
        assert all(outcomes(injector(error_rate=1.0), 20))
        assert not any(outcomes(injector(error_rate=0.0), 20))

    def test_the_version_probe_is_spared(self) -> None:
        assert injector(error_rate=1.0).simulated_error("get_api_version") is None

    def test_the_injected_error_is_a_500_simulated_fault(self) -> None:
        error = injector(error_rate=1.0).simulated_error("auto_layout")
        assert error is not None
        assert (error.status, error.code) == (500, SIMULATED_FAULT)


class TestDuringOperation:
    """Exit-during and hang strike only their operation, after reporting some progress."""

    def test_exit_during_reports_progress_then_dies(self) -> None:
        reported: list[float] = []
        faults = injector(exit_during="auto_support")
        faults.during_operation("auto_layout", reported.append)
        assert reported == []
        with pytest.raises(Exited):
            faults.during_operation("auto_support", reported.append)
        assert reported == [FAULT_PROGRESS]

    def test_hang_blocks_until_the_server_stops(self) -> None:
        stop = threading.Event()
        faults = FaultInjector(FaultPlan(hang="print"), stop=stop, exit=fake_exit)
        outcome: list[BaseException] = []
        reported: list[float] = []

        def run() -> None:
            try:
                faults.during_operation("print", reported.append)
            except SimError as exc:
                outcome.append(exc)

        worker = threading.Thread(target=run)
        worker.start()
        worker.join(0.05)
        assert worker.is_alive() and reported == [FAULT_PROGRESS]
        stop.set()
        worker.join(WAIT_S)
        assert not worker.is_alive() and isinstance(outcome[0], SimError)


class TestFaultPlan:
    """A plan refuses impossible values and names what is switched on."""

    @pytest.mark.parametrize(
        "plan",
        [{"error_rate": 1.5}, {"exit_after_requests": -1}, {"slow_start_s": -2.0}],
        ids=repr,
    )
    def test_impossible_values_are_refused(self, plan: dict[str, float]) -> None:
        with pytest.raises(ValueError):
            FaultPlan(**plan)  # type: ignore[arg-type]

    def test_active_lists_only_what_is_on(self) -> None:
        assert FaultPlan().active() == {}
        assert FaultPlan(hang="print", error_rate=0.1, seed=3).active() == {
            "hang": "print",
            "error_rate": 0.1,
            "seed": 3,
        }


class TestFaultsInTheServer:
    """The server applies the plan: 500 answers, hung operations, and nothing else changes."""

    def test_error_rate_one_answers_500_error_models_but_spares_get_root(
        self, sim_server_factory: Callable[..., SimulatorServer]
    ) -> None:
        server = sim_server_factory(faults=FaultPlan(error_rate=1.0))
        with httpx.Client(base_url=server.url, timeout=WAIT_S) as client:
            response = client.get("/scenes/")
            assert client.get("/").status_code == 200
        assert response.status_code == 500
        schema = local_api_contract().component("ErrorModel")
        local_api_contract().assert_valid(response.json(), schema, "injected 500")
        assert response.json()["error"]["code"] == SIMULATED_FAULT
        server.check()  # injected faults are not server bugs

    def test_a_hung_async_operation_stays_in_progress(
        self, sim_server_factory: Callable[..., SimulatorServer]
    ) -> None:
        server = sim_server_factory(faults=FaultPlan(hang="auto_support"))
        with httpx.Client(base_url=server.url, timeout=WAIT_S) as client:
            op = client.post("/scene/s/auto-support/?async=true", json={}).json()["operationId"]
            operation = server.operations.get(op)
            assert operation is not None
            assert not operation.wait(0.1)
            body = client.get(f"/operations/{op}/").json()
            assert (body["status"], body["progress"]) == ("IN_PROGRESS", FAULT_PROGRESS)
            assert client.post("/scene/s/auto-layout/", json={}).status_code == 200
        server.shutdown()
        assert operation.wait(WAIT_S)  # shutdown releases it

"""Each fault-injection flag of the simulator, on a real process over real HTTP."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from preform_pipeline.errors import ServerProcessError
from preform_pipeline.simulator.cli import EXIT_OK, READY_LINE
from preform_pipeline.simulator.faults import (
    EXIT_INJECTED_FAULT,
    FAULT_PROGRESS,
    SIMULATED_FAULT,
)
from preform_pipeline.simulator.testing import RunningSimulator, launch_simulator, start_simulator
from tests.openapi_contract import local_api_contract

#: Bound for every wait on a simulator process.
WAIT_S = 30.0
#: How long a client waits for an answer that a hung operation never sends.
HUNG_TIMEOUT_S = 0.5

FORM_4_SCENE = {
    "machine_type": "FORM-4-0",
    "material_code": "FLGPBK05",
    "print_setting": "DEFAULT",
    "layer_thickness_mm": 0.025,
}

# Connection closed without an answer, or refused once the process is gone.
DROPPED = (httpx.RemoteProtocolError, httpx.ConnectError, httpx.ReadError)


def new_scene(client: httpx.Client) -> str:
    response = client.post("/scene/", json=FORM_4_SCENE)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def statuses(sim: RunningSimulator, count: int) -> list[int]:
    with httpx.Client(base_url=sim.url, timeout=WAIT_S) as client:
        return [client.get("/scenes/").status_code for _ in range(count)]


def poll_operation(client: httpx.Client, op: str, until: Any) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    pause = threading.Event()
    while True:
        body: dict[str, Any] = client.get(f"/operations/{op}/").json()
        if until(body):
            return body
        assert time.monotonic() < deadline, body
        pause.wait(0.01)


class TestExitAfterRequests:
    """``--exit-after-requests N`` serves N requests and dies on the next without answering."""

    def test_request_n_plus_one_gets_no_answer_and_the_process_dies(self) -> None:
        with start_simulator("--exit-after-requests", "2", timeout=WAIT_S) as sim:
            with httpx.Client(base_url=sim.url, timeout=WAIT_S) as client:
                assert client.get("/").status_code == 200
                assert client.get("/operations/").status_code == 200
                with pytest.raises(DROPPED):
                    client.get("/")
            assert sim.wait_exit(WAIT_S) == EXIT_INJECTED_FAULT
        assert any("exit_after_requests" in line for line in sim.stderr_lines)


class TestExitDuring:
    """``--exit-during OP`` kills the process while that operation runs."""

    def test_a_synchronous_call_gets_no_answer(self) -> None:
        with start_simulator("--exit-during", "auto_support", timeout=WAIT_S) as sim:
            with httpx.Client(base_url=sim.url, timeout=WAIT_S) as client:
                scene = new_scene(client)
                assert client.get(f"/scene/{scene}/").status_code == 200
                with pytest.raises(DROPPED):
                    client.post(f"/scene/{scene}/auto-support/", json={"models": "ALL"})
            assert sim.wait_exit(WAIT_S) == EXIT_INJECTED_FAULT

    def test_an_async_operation_is_accepted_then_the_process_dies(self) -> None:
        with start_simulator("--exit-during", "auto_support", timeout=WAIT_S) as sim:
            with httpx.Client(base_url=sim.url, timeout=WAIT_S) as client:
                scene = new_scene(client)
                response = client.post(
                    f"/scene/{scene}/auto-support/?async=true", json={"models": "ALL"}
                )
                assert response.status_code == 202
            assert sim.wait_exit(WAIT_S) == EXIT_INJECTED_FAULT
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{sim.url}/operations/", timeout=WAIT_S)


class TestHang:
    """``--hang OP`` never completes that operation; everything else keeps working."""

    def test_sync_times_out_async_stays_in_progress_and_stop_still_works(self) -> None:
        with start_simulator("--hang", "auto_support", timeout=WAIT_S) as sim:
            with httpx.Client(base_url=sim.url, timeout=WAIT_S) as client:
                scene = new_scene(client)
                with pytest.raises(httpx.ReadTimeout):
                    client.post(
                        f"/scene/{scene}/auto-support/",
                        json={"models": "ALL"},
                        timeout=HUNG_TIMEOUT_S,
                    )
                accepted = client.post(
                    f"/scene/{scene}/auto-support/?async=true", json={"models": "ALL"}
                )
                op = accepted.json()["operationId"]
                body = poll_operation(client, op, lambda b: b["progress"] >= FAULT_PROGRESS)
                assert body["status"] == "IN_PROGRESS"
                assert client.get("/").status_code == 200
                assert client.get(f"/operations/{op}/").json()["status"] == "IN_PROGRESS"
            assert sim.stop() == EXIT_OK


class TestErrorRate:
    """``--error-rate F --seed S`` answers a reproducible fraction of requests 500."""

    def test_rate_one_answers_500_error_models_but_get_root_stays_healthy(self) -> None:
        with start_simulator("--error-rate", "1.0", timeout=WAIT_S) as sim:
            client = httpx.Client(base_url=sim.url, timeout=WAIT_S)
            failed = client.get("/scenes/")
            assert client.get("/").status_code == 200
            client.close()
        assert failed.status_code == 500
        schema = local_api_contract().component("ErrorModel")
        local_api_contract().assert_valid(failed.json(), schema, "injected 500")
        assert failed.json()["error"]["code"] == SIMULATED_FAULT

    def test_the_same_seed_fails_the_same_requests(self) -> None:
        args = ("--error-rate", "0.5")
        runs = []
        for seed in ("11", "11", "12"):
            with start_simulator(*args, "--seed", seed, timeout=WAIT_S) as sim:
                runs.append(statuses(sim, 24))
        assert runs[0] == runs[1]
        assert runs[0] != runs[2]
        assert set(runs[0]) == {200, 500}


class TestStartFaults:
    """``--fail-start`` dies before READY; ``--slow-start`` is covered with start-up."""

    def test_fail_start_exits_non_zero_with_an_error_line(self) -> None:
        sim = launch_simulator("--fail-start")
        try:
            with pytest.raises(ServerProcessError) as caught:
                sim.wait_ready(WAIT_S)
            assert caught.value.exit_code == EXIT_INJECTED_FAULT
            assert READY_LINE not in sim.stdout_lines
            assert any("--fail-start" in line for line in sim.stderr_lines)
        finally:
            sim.stop()

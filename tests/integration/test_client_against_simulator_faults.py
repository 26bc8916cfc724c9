"""Each injected simulator fault reaches the Local API client as the error the executor acts on.

Every test starts its own ``python -m preform_pipeline.simulator`` subprocess with one fault
flag (``docs/simulator.md``, "Fault injection") and drives it with :class:`PreFormClient`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.api import PreFormClient, SceneSettings
from preform_pipeline.errors import (
    PortInUseError,
    ServerInternalError,
    ServerProcessError,
    ServerStartTimeoutError,
    ServerTimeoutError,
    ServerUnreachableError,
    TransientApiError,
)
from preform_pipeline.simulator.cli import READY_LINE
from preform_pipeline.simulator.faults import EXIT_INJECTED_FAULT, SIMULATED_FAULT
from preform_pipeline.simulator.testing import RunningSimulator, start_simulator

#: Upper bound of every wait here; reached only when something is broken.
WAIT_S = 10.0

#: How long a hung operation may keep the client waiting before its deadline ends it.
HANG_DEADLINE_S = 0.5

#: ``--slow-start`` delay; a plain start takes about 0.25 s here, so the delay stands out.
SLOW_START_S = 1.0

#: Requests served before ``--exit-after-requests`` ends the process.
REQUESTS_BEFORE_EXIT = 3

FORM4_BLACK = SceneSettings("FORM-4-0", "FLGPBK05", 0.05, "DEFAULT")

# The two ways the client sends a long operation: ?async=true and polling, or one request.
CLIENT_MODES = [pytest.param(True, id="async"), pytest.param(False, id="sync")]


@pytest.fixture
def part(sample_models_dir: Path) -> Path:
    return (sample_models_dir / "parts" / "cube_with_hole.stl").resolve()


def _client(sim: RunningSimulator, *, async_operations: bool = True) -> PreFormClient:
    return PreFormClient(sim.url, timeout=WAIT_S, async_operations=async_operations)


def _scene_with(client: PreFormClient, part: Path) -> str:
    scene = client.create_scene(FORM4_BLACK)
    assert scene.id is not None
    client.import_model(scene.id, part)
    return scene.id


@pytest.fixture
def exit_during_support() -> Iterator[RunningSimulator]:
    with start_simulator("--exit-during", "auto_support") as sim:
        yield sim


class TestExitDuringAnOperation:
    """A simulator that dies during auto-support is an unreachable server, a transient error."""

    @pytest.mark.parametrize("async_operations", CLIENT_MODES)
    def test_the_client_raises_server_unreachable(
        self, exit_during_support: RunningSimulator, part: Path, async_operations: bool
    ) -> None:
        sim = exit_during_support
        with _client(sim, async_operations=async_operations) as client:
            scene_id = _scene_with(client, part)

            with pytest.raises(ServerUnreachableError) as caught:
                client.auto_support(scene_id)

        error = caught.value
        assert isinstance(error, TransientApiError)
        assert error.status_code is None and error.code is None
        assert error.request is not None and error.request.url.startswith(sim.url)
        # Whether the 202 came back and a status read found the server gone, or the request
        # itself did: the error names the step waited for.
        assert error.request.named == "autoSupport"
        assert sim.wait_exit(WAIT_S) == EXIT_INJECTED_FAULT


class TestExitAfterRequests:
    """A simulator told to serve N requests answers N and drops request N+1."""

    def test_request_n_plus_one_is_unreachable(self) -> None:
        with (
            start_simulator("--exit-after-requests", str(REQUESTS_BEFORE_EXIT)) as sim,
            _client(sim) as client,
        ):
            client.check_version()  # GET / counts like every other request
            for _ in range(REQUESTS_BEFORE_EXIT - 1):
                client.get_all_scenes()

            with pytest.raises(ServerUnreachableError) as caught:
                client.get_all_scenes()

            error = caught.value
            assert error.status_code is None
            assert error.request is not None
            assert (error.request.method, error.request.operation) == ("GET", "getAllScenes")
            assert sim.wait_exit(WAIT_S) == EXIT_INJECTED_FAULT


class TestHang:
    """An operation that never finishes ends at the client's deadline as a timeout."""

    @pytest.mark.parametrize("async_operations", CLIENT_MODES)
    def test_a_hung_auto_support_times_out_at_the_deadline(
        self, part: Path, async_operations: bool
    ) -> None:
        with (
            start_simulator("--hang", "auto_support") as sim,
            _client(sim, async_operations=async_operations) as client,
        ):
            scene_id = _scene_with(client, part)
            started = time.monotonic()

            with pytest.raises(ServerTimeoutError) as caught:
                client.auto_support(scene_id, deadline=client.deadline_in(HANG_DEADLINE_S))

            waited = time.monotonic() - started
            error = caught.value
            assert isinstance(error, TransientApiError)
            assert error.status_code is None
            assert error.request is not None and error.request.operation == "autoSupport"
            assert HANG_DEADLINE_S <= waited < WAIT_S
            # Hung, not dead: the same scene is still served.
            assert client.get_scene(scene_id).models[0].has_supports is False


class TestErrorRate:
    """A simulator answering every request 500 raises ServerInternalError on scene calls."""

    def test_every_scene_call_is_a_server_internal_error(self) -> None:
        with (
            start_simulator("--error-rate", "1.0") as sim,
            _client(sim) as client,
        ):
            # The version probe is spared, so a health check still sees a live server.
            assert client.check_version().version

            with pytest.raises(ServerInternalError) as caught:
                client.create_scene(FORM4_BLACK)

        error = caught.value
        assert isinstance(error, TransientApiError)
        assert (error.status_code, error.code) == (500, SIMULATED_FAULT)
        assert error.request is not None
        assert (error.request.method, error.request.operation) == ("POST", "createScene")


class TestStartUp:
    """start_simulator waits out a slow start and reports a failed one with its exit code."""

    def test_a_slow_start_is_waited_for_and_the_client_works_after(self) -> None:
        started = time.monotonic()
        with start_simulator("--slow-start", str(SLOW_START_S), timeout=WAIT_S) as sim:
            waited = time.monotonic() - started
            with _client(sim) as client:
                scene = client.create_scene(FORM4_BLACK)

        assert waited >= SLOW_START_S
        assert sim.stdout_lines[-1] == READY_LINE
        assert scene.id

    def test_a_failed_start_raises_server_process_error_with_exit_code_and_stderr(
        self,
    ) -> None:
        with (
            pytest.raises(ServerProcessError) as caught,
            start_simulator("--fail-start", timeout=WAIT_S),
        ):
            pytest.fail("start_simulator yielded a simulator that never started")

        error = caught.value
        assert not isinstance(error, (ServerStartTimeoutError, PortInUseError))
        assert error.exit_code == EXIT_INJECTED_FAULT
        assert "--fail-start" in error.output_tail
        assert "-m" in error.command and "--fail-start" in error.command

"""Fixtures for the simulator's unit tests: an in-process server on port 0 around a stand-in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sim_server_support import WAIT_S, RecordingEngine

from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.server import SimulatorServer


@pytest.fixture
def sim_engine() -> RecordingEngine:
    return RecordingEngine()


@pytest.fixture
def sim_server_factory(
    sim_engine: RecordingEngine,
) -> Iterator[Callable[..., SimulatorServer]]:
    """Start servers (``SimulatorServer`` keyword options) that are shut down after the test."""
    started: list[SimulatorServer] = []

    def make(**options: Any) -> SimulatorServer:
        options.setdefault("port", 0)
        options.setdefault("poll_interval", 0.005)  # quick shutdown between many small tests
        server = SimulatorServer(options.pop("engine", sim_engine), **options).start()
        started.append(server)
        return server

    yield make
    for server in started:
        # Release whatever a test left blocked before stopping.
        for gate in sim_engine.gates.values():
            gate.release_all()
        server.shutdown()


@pytest.fixture
def sim_server(sim_server_factory: Callable[..., SimulatorServer]) -> SimulatorServer:
    return sim_server_factory()


@pytest.fixture
def sim_client(sim_server: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim_server.url, timeout=WAIT_S) as client:
        yield client


@pytest.fixture
def engine_server(
    tmp_path: Path, sim_server_factory: Callable[..., SimulatorServer]
) -> Iterator[SimulatorServer]:
    """A server around a real :class:`SimEngine`, checked after the test for a failure inside
    it (a hostile request must never become one)."""
    engine = SimEngine(work_dir=tmp_path / "work", fleet_dir=tmp_path / "fleet")
    server = sim_server_factory(engine=engine)
    yield server
    server.check()

"""A Local API simulator served over real HTTP for the conformance tests, and a client to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.server import SimulatorServer

__all__ = ["simulator_client"]


@contextmanager
def simulator_client(
    folder: Path,
    *,
    timeout: float = 30.0,
    prepare: Callable[[SimEngine], object] | None = None,
) -> Iterator[httpx.Client]:
    """A client to a new engine (its files in ``folder``) served on a free loopback port.

    ``prepare`` changes the engine before it serves (an offline printer, say). On leaving,
    the server re-raises anything that failed inside it (``check``).
    """
    engine = SimEngine(work_dir=folder / "work", fleet_dir=folder / "fleet")
    if prepare is not None:
        prepare(engine)
    with SimulatorServer(engine, port=0) as server, httpx.Client(
        base_url=server.url, timeout=timeout
    ) as http:
        yield http
        server.check()

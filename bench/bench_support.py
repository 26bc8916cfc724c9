"""What the benchmarks share: the simulated pool they measure on, a PostgreSQL store of their
own, and the facts of a run their results record."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from preform_pipeline.settings import ServerSettings, Settings

if TYPE_CHECKING:
    from preform_pipeline.store.postgres import PostgresJobStore

__all__ = ["RESULTS", "bench_settings", "pg_store", "results_path", "run_facts"]

#: Where the benchmarks record their results.
RESULTS = Path(__file__).resolve().parent / "results"


def bench_settings(count: int, *, startup_timeout_s: float = 60.0) -> Settings:
    """``count`` simulated servers on free ports, with no health checks or recycling in the
    way of the timings."""
    return Settings(
        servers=replace(
            ServerSettings(), count=count, base_port=0, health_interval_s=0.0,
            recycle_after_builds=0, startup_timeout_s=startup_timeout_s, stop_timeout_s=5.0,
        )
    )


def results_path(output: str, suffix: str) -> Path:
    """The file ``--output`` names, with ``suffix``: a bare stem lands in ``bench/results/``,
    while a path (``bench/results/x`` or ``/tmp/x.json``) is taken as given, so that passing
    the folder the results live in does not nest it inside itself."""
    given = Path(output)
    if given.suffix in (".json", ".md"):
        given = given.with_suffix("")
    base = RESULTS / given if given.parent == Path(".") else given
    base.parent.mkdir(parents=True, exist_ok=True)
    return base.with_name(base.name + suffix)


@contextmanager
def pg_store(name: str, *, on_statement: Callable[[str], None] | None = None
             ) -> Iterator[PostgresJobStore]:
    """A job store in a PostgreSQL database ``name`` on a cluster of its own, as the tests run
    it (``tests/pg_cluster.py``), over loopback TCP; the cluster is removed after."""
    # Here, not above: the benchmarks without PostgreSQL do not load its driver.
    from preform_pipeline.store.postgres import PostgresJobStore
    from tests.pg_cluster import PG_PASSWORD, PgCluster

    cluster = PgCluster.create()
    try:
        url = cluster.create_database(name)
        with PostgresJobStore(url, password=PG_PASSWORD, on_statement=on_statement) as store:
            yield store
    finally:
        cluster.destroy()


def run_facts() -> dict[str, Any]:
    """What a result records of the run, taken at its start: when, the commit (``-dirty``
    with changes not committed), the machine, Python and the 1-minute load."""
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                            text=True, check=False, cwd=Path(__file__).parent).stdout.strip()
    return {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": commit,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "python": platform.python_version(), "load_before": round(os.getloadavg()[0], 2)}

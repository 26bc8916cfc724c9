"""What the benchmarks share: the simulated pool they measure on, a PostgreSQL store of their
own, and the facts of a run their results record."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from preform_pipeline.logging import configure_logging
from preform_pipeline.settings import ServerSettings, Settings

if TYPE_CHECKING:
    from preform_pipeline.store.postgres import PostgresJobStore

__all__ = ["RESULTS", "bench_settings", "pg_store", "results_path", "run_facts", "run_line",
           "timed_run_args", "write_results"]

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


def run_line(result: Mapping[str, Any], command: str) -> str:
    """The line under a result's title: when it ran, the commit, the machine, the load before
    and after (``finished``, ``load_after``: the caller's), Python, and ``command``."""
    return (f"{result['started']} to {result['finished']} UTC, `{result['commit']}`, "
            f"{result['machine']}, 1-minute load {result['load_before']} before, "
            f"{result['load_after']} after; Python {result['python']}. `{command}`.")


def write_results(output: str, result: Mapping[str, Any], lines: Sequence[str]) -> None:
    """``result`` as ``<output>.json`` and ``lines`` as ``<output>.md``
    (:func:`results_path`), and the lines printed."""
    results_path(output, ".json").write_text(json.dumps(result, indent=2) + "\n",
                                             encoding="utf-8")
    text = "\n".join([*lines, ""])
    results_path(output, ".md").write_text(text, encoding="utf-8")
    print(text)


def timed_run_args(argv: list[str] | None, doc: str, output: str,
                   repeat: int, *, files: int | None = None) -> argparse.Namespace:
    """``--repeat`` and ``--output`` (defaults ``repeat``, ``output``) from ``argv``, and
    ``--files`` if ``files`` gives its default; the script's description the first line of
    ``doc``; the package's logging at warnings."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=repeat)
    parser.add_argument("--output", default=output)
    if files is not None:
        parser.add_argument("--files", type=int, default=files)
    args = parser.parse_args(argv)
    configure_logging(level="WARNING")
    return args

"""What the benchmarks share: the simulated pool they measure on."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from preform_pipeline.settings import ServerSettings, Settings

__all__ = ["RESULTS", "bench_settings", "results_path"]

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

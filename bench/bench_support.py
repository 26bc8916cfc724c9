"""What the benchmarks share: the simulated pool they measure on."""

from __future__ import annotations

from dataclasses import replace

from preform_pipeline.settings import ServerSettings, Settings

__all__ = ["bench_settings"]


def bench_settings(count: int, *, startup_timeout_s: float = 60.0) -> Settings:
    """``count`` simulated servers on free ports, with no health checks or recycling in the
    way of the timings."""
    return Settings(
        servers=replace(
            ServerSettings(), count=count, base_port=0, health_interval_s=0.0,
            recycle_after_builds=0, startup_timeout_s=startup_timeout_s, stop_timeout_s=5.0,
        )
    )

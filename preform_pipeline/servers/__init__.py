"""PreFormServer processes and the pool that leases them to builds.

``ServerPool`` (pool.py) is the entry point; process.py starts and stops one server,
ports.py finds ports, health.py checks a server, pathmap.py translates paths for it.
"""

from __future__ import annotations

from preform_pipeline.servers.health import HealthResult, check_health
from preform_pipeline.servers.pathmap import PathMapper
from preform_pipeline.servers.pool import (
    Lease,
    PoolMode,
    PoolServer,
    ServerPool,
    ServerState,
    ServerStatus,
    refuse_unreached,
)
from preform_pipeline.servers.process import ServerProcess, server_command

__all__ = [
    "HealthResult",
    "Lease",
    "PathMapper",
    "PoolMode",
    "PoolServer",
    "ServerPool",
    "ServerProcess",
    "ServerState",
    "ServerStatus",
    "check_health",
    "refuse_unreached",
    "server_command",
]

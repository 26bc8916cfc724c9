"""A PostgreSQL test cluster that outlives pytest sessions, for mutation runs of the store.

mutmut runs every mutant in a fresh pytest session; starting a cluster in each (initdb,
start, stop) would cost more than the tests. Start one with
``python -m tests.unit.store.mutation_cluster`` (it prints ``PREFORM_PIPELINE_MUTATION_PG_PORT=N``
and runs until SIGTERM, SIGINT or SIGHUP, then removes the cluster; killed outright, its
watcher removes it), export that variable for the mutation run, and the store's conformance
fixtures open a database of their own on it per session instead
(tests/unit/store/conftest.py). Outside mutation runs nothing reads it.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Final

from tests.pg_cluster import PgCluster
from tests.reaper import say_goodbye, watch_this_process

__all__ = ["MUTATION_PG_ENV", "main", "running_cluster"]

MUTATION_PG_ENV: Final = "PREFORM_PIPELINE_MUTATION_PG_PORT"


def running_cluster() -> PgCluster | None:
    """The shared cluster named by :data:`MUTATION_PG_ENV`, or None when it is not set."""
    port = os.environ.get(MUTATION_PG_ENV)
    if not port:
        return None
    # Only its port is used (url, create_database): the process that started it owns it.
    return PgCluster(bin_dir=Path(), root=Path(), port=int(port))


def main() -> int:
    # SIGHUP too: started with `&` from a shell, it gets one when that shell ends, and died
    # of it without its finally, leaving the cluster running (found in session 41).
    stop = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    # Killed outright (SIGKILL, the OOM killer) no finally runs: its watcher stops and
    # removes the cluster then (tests/reaper.py), as for a test session killed so.
    watch_this_process()
    cluster = PgCluster.create()
    try:
        print(f"{MUTATION_PG_ENV}={cluster.port}", flush=True)
        signal.sigwait(stop)
    finally:
        cluster.destroy()
        say_goodbye()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A pool owner whose server is not tied to it: what a platform without a parent-death signal
(macOS) leaves behind when the owner is killed. Used by test_server_reaping.py.

Usage: ``python untied_owner_child.py STATE_DIR``; prints ``ready`` once its one simulated
server is up, then waits until its stdin closes (the test kills it before that).
"""

from __future__ import annotations

import sys
from pathlib import Path

from preform_pipeline.servers import ServerPool
from preform_pipeline.settings import ServerSettings, Settings

__all__ = ["main"]


def main(state_dir: Path) -> None:
    settings = Settings(servers=ServerSettings(
        count=1, base_port=0, startup_timeout_s=30, health_interval_s=0, stop_timeout_s=2,
    ))
    pool = ServerPool(settings.pool, state_dir=state_dir, die_with_parent=False)
    pool.start()
    print("ready", flush=True)
    sys.stdin.read()
    pool.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))

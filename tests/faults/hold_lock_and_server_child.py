"""A daemon-like process that holds a store's daemon lock and has a server recorded, until
told to end.

Run as ``python hold_lock_and_server_child.py STORE STATE_DIR PORT``: it takes the daemon lock
of ``STORE`` through the product's own :class:`DaemonLock`, starts a waiting child whose
command line asks for ``--port PORT`` and records it in ``STATE_DIR`` as its server, as a
pool does (``ServerRecords``), prints ``READY``, and waits for its standard input to close.
Then it ends at once (``os._exit``): nothing is released, as when a container goes away.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from preform_pipeline.liveness import ProcessIdentity
from preform_pipeline.servers.records import ServerRecord, ServerRecords
from preform_pipeline.store.daemon_lock import DaemonLock

if __name__ == "__main__":
    store, state_dir, port = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    DaemonLock(store).acquire()
    server = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()",
                               "--port", port], stdin=subprocess.PIPE)
    owner = ProcessIdentity.current()
    running = ProcessIdentity.of_running(server.pid)
    assert running is not None
    ServerRecords(state_dir).add(ServerRecord(
        server=running, owner=owner, name="server-1", port=int(port),
        command=("preformserver", "--port", port), started_at=datetime.now(timezone.utc)))
    print("READY", flush=True)
    sys.stdin.read()
    os._exit(0)

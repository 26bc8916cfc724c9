"""A daemon-like process that holds a store's daemon lock and has a server recorded, until
told to end.

Run as ``python hold_lock_and_server_child.py STORE STATE_DIR PORT``: it takes the daemon lock
of ``STORE`` through the product's own :class:`DaemonLock`, starts a waiting child whose
command line asks for ``--port PORT`` and records it in ``STATE_DIR`` as its server, as a
pool does (``ServerRecords``), prints ``READY``, and waits for its standard input to close.
Then it ends at once (``os._exit``): nothing is released, as when a container goes away.

With a fifth word (tests.instances.OURS: the command line then names our program), it writes
both as an earlier version did, before records named their instance.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from preform_pipeline.liveness import ProcessIdentity
from preform_pipeline.servers.records import ServerRecord, ServerRecords
from preform_pipeline.store.daemon_lock import DaemonLock, LockHolder

if __name__ == "__main__":
    store, state_dir, port = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    earlier = len(sys.argv) > 4
    lock = DaemonLock(store)
    lock.acquire()
    server = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()",
                               "--port", port], stdin=subprocess.PIPE)
    owner = ProcessIdentity.current()
    running = ProcessIdentity.of_running(server.pid)
    assert running is not None
    if earlier:
        owner = dataclasses.replace(owner, instance=None)
        running = dataclasses.replace(running, instance=None)
        held = LockHolder.from_text(lock.path.read_text(encoding="utf-8"))
        lock.path.write_text(LockHolder(owner, held.acquired_at).to_text(), encoding="utf-8")
    ServerRecords(state_dir).add(ServerRecord(
        server=running, owner=owner, name="server-1", port=int(port),
        command=("preformserver", "--port", port), started_at=datetime.now(timezone.utc)))
    print("READY", flush=True)
    sys.stdin.read()
    os._exit(0)

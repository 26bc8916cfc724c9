"""Session 21, seed 39: a pool closed while its server is being launched (a real stand-in
server process, ports on loopback, the clock faked at its seam)."""

from __future__ import annotations

import threading
from pathlib import Path

from structlog.testing import capture_logs

from preform_pipeline.servers import ServerState
from preform_pipeline.servers.process import process_tree_alive
from tests.unit.servers.test_servers_pool_local import WAIT_S, _events, _records, _standin_pool


class TestAPoolClosedWhileItsServerIsLaunched:
    """A server launched after ``close()`` began is refused and stopped, and its failed start
    says that the pool is closing; nothing is left running or recorded for reaping."""

    def test_the_late_server_is_stopped_and_its_start_says_the_pool_is_closing(
        self, tmp_path: Path
    ) -> None:
        probing, closed = threading.Event(), threading.Event()

        def probe(port: int) -> bool:
            # The free-port probe is the last step before the launch: hold the start there
            # until the pool is closed, as a Ctrl-C during start-up would.
            probing.set()
            closed.wait(WAIT_S)
            return True

        pool = _standin_pool(tmp_path, port_probe=probe)
        starter = threading.Thread(target=pool.start, name="test-starter")
        with capture_logs() as logs:
            starter.start()
            assert probing.wait(WAIT_S), "the pool never came to launch its server"
            pool.close()
            closed.set()
            starter.join(WAIT_S)
        assert not starter.is_alive()
        failed = _events(logs, "server_start_failed")
        assert [(e["server"], e["error"]) for e in failed] == [
            ("server-1", "server-1: the pool is closing")]
        (stopped,) = _events(logs, "server_stopped")
        assert (stopped["server"], stopped["survivors"]) == ("server-1", [])
        assert process_tree_alive([stopped["pid"]]) == []
        (status,) = pool.status()
        assert (status.state, status.pid, status.last_error) == (ServerState.STOPPED, None, None)
        assert _records(tmp_path / "records") == {}

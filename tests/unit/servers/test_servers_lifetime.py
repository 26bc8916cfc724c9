"""The tie between a server and its owner, and the launcher thread that makes it last.

The parent-death tests are Linux-specific: that is where PR_SET_PDEATHSIG exists.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from preform_pipeline.servers.lifetime import (
    EXIT_PARENT_GONE,
    LAUNCHER_THREAD_NAME,
    parent_death_tie,
    run_on_launcher,
)
from preform_pipeline.servers.ports import PortAllocator
from preform_pipeline.servers.process import ServerProcess, server_command
from preform_pipeline.settings import ServerSettings

WAIT_S = 30.0
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's"
)


class TestLauncher:
    """Every start runs on one long-lived thread; what it raises reaches the caller."""

    def test_work_runs_on_the_launcher_thread(self) -> None:
        names = {run_on_launcher(lambda: threading.current_thread().name) for _ in range(3)}
        assert names == {LAUNCHER_THREAD_NAME}

    def test_an_exception_is_raised_in_the_caller(self) -> None:
        def fail() -> None:
            raise OSError("no such program")

        with pytest.raises(OSError, match="no such program"):
            run_on_launcher(fail)


@linux_only
class TestParentDeathTie:
    """A tied server survives the thread that asked for it, and refuses a parent already gone."""

    def test_a_server_started_from_a_short_lived_thread_outlives_the_thread(self) -> None:
        port = PortAllocator(0).acquire()
        command = server_command(ServerSettings(), port, extra=("--latency", "instant"))
        started: list[ServerProcess] = []
        thread = threading.Thread(
            target=lambda: started.append(ServerProcess.launch(command, name="t", port=port))
        )
        thread.start()
        thread.join(WAIT_S)
        assert not thread.is_alive()
        (process,) = started
        try:
            # Had the short-lived thread forked it, the tie would have killed it by now.
            process.wait_ready(WAIT_S)
            assert process.is_running()
        finally:
            assert process.stop(2.0) in ("interrupt", "terminate", "kill")

    def test_a_child_whose_parent_is_already_gone_exits(self) -> None:
        tie = parent_death_tie(os.getpid() + 1_000_000)  # not our PID: "the parent died"
        assert tie is not None
        done = subprocess.run(
            [sys.executable, "-c", "print('ran')"], preexec_fn=tie, capture_output=True,
            text=True, timeout=WAIT_S, check=False,
        )
        assert (done.returncode, done.stdout) == (EXIT_PARENT_GONE, "")

    def test_a_child_of_a_live_parent_runs(self) -> None:
        tie = parent_death_tie(os.getpid())
        assert tie is not None
        done = subprocess.run(
            [sys.executable, "-c", "print('ran')"], preexec_fn=tie, capture_output=True,
            text=True, timeout=WAIT_S, check=False,
        )
        assert (done.returncode, done.stdout.strip()) == (0, "ran")

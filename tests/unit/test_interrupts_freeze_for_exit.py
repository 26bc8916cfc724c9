"""A program's process ends with the objects it made frozen (``freeze_for_exit``): the
interpreter's last collections do not walk them again, and its exit status is its command's.

Real processes: the command line and a simulator, each with a probe registered before the
program's own exit handlers, so that it runs after all of them and reads the collector then.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading

import pytest

from preform_pipeline.simulator.cli import READY_LINE

#: Bound for each wait on a process.
WAIT_S = 60.0

_PROBE = """\
import atexit, gc, sys
atexit.register(lambda: print(f"frozen {{gc.get_freeze_count()}}", file=sys.stderr))
sys.argv = ["{name}", *{argv!r}]
from {module} import main
main()
"""


def _probe(module: str, name: str, *argv: str) -> list[str]:
    """The command line of a Python running ``module``'s ``main`` with ``argv``, which says
    on stderr, after every exit handler, how many objects the collector holds frozen."""
    return [sys.executable, "-c", _PROBE.format(module=module, name=name, argv=list(argv))]


def _frozen(stderr: str) -> int:
    said = re.findall(r"^frozen (\d+)$", stderr, flags=re.MULTILINE)
    assert said, stderr
    return int(said[-1])


class TestTheCommandLine:
    """``preform-pipeline`` freezes its objects once its command has its status."""

    @pytest.mark.parametrize(("argv", "status"), [(["--version"], 0),
                                                  (["--no-such-option"], 2)],
                             ids=["ok", "usage"])
    def test_it_exits_with_its_commands_status_and_its_objects_frozen(
        self, argv: list[str], status: int
    ) -> None:
        done = subprocess.run(_probe("preform_pipeline.__main__", "preform-pipeline", *argv),
                              capture_output=True, text=True, encoding="utf-8",
                              timeout=WAIT_S, check=False)
        assert done.returncode == status, done.stderr
        assert _frozen(done.stderr) > 0


@pytest.mark.skipif(os.name != "posix", reason="stopped with SIGINT, as a pool stops it")
class TestASimulator:
    """A simulator stopped by its pool freezes its objects before it ends."""

    def test_it_stops_with_status_0_and_its_objects_frozen(self) -> None:
        process = subprocess.Popen(
            _probe("preform_pipeline.simulator.cli", "preform-simulator", "--port", "0",
                   "--log-level=WARNING"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
        # Bounds the read of its start-up lines: a simulator that never says it is ready
        # is killed, and the read below ends.
        timer = threading.Timer(WAIT_S, process.kill)
        timer.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                if READY_LINE in line:
                    break
            timer.cancel()
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=WAIT_S)
        finally:
            timer.cancel()
            if process.poll() is None:
                process.kill()
                process.communicate()
        assert process.returncode == 0, stderr
        assert _frozen(stderr) > 0

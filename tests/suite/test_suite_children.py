"""A test's child process is ended however the test ends (tests/children.py): the path a
failing test takes, a ``communicate`` that timed out, leaves no process running and no pipe
open (session 48: ``test_print_once``'s second child outlived such a timeout)."""

from __future__ import annotations

import subprocess
import sys
import threading

import psutil
import pytest

from tests.children import reaped

#: A child that would run for a minute unless ended.
_LINGERING = [sys.executable, "-c", "import sys, time; print('up', flush=True); time.sleep(60)"]


class TestAChildIsEndedOnEveryPath:
    def test_a_communicate_that_timed_out_leaves_no_child_running(self) -> None:
        child = subprocess.Popen(_LINGERING, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        with pytest.raises(subprocess.TimeoutExpired), reaped(child, wait_s=5.0):
            child.communicate(timeout=0.2)
        assert child.returncode is not None  # killed and reaped: no zombie left
        assert not psutil.pid_exists(child.pid) or psutil.Process(child.pid).status() != (
            psutil.STATUS_ZOMBIE)
        assert child.stdout is not None and child.stdout.closed
        assert child.stderr is not None and child.stderr.closed

    def test_a_reader_thread_reaches_the_end_before_the_pipe_is_closed(self) -> None:
        child = subprocess.Popen(_LINGERING, stdout=subprocess.PIPE, text=True)
        read: list[str] = []
        readers: list[threading.Thread] = []
        up = threading.Event()
        ended = threading.Event()

        def pump() -> None:
            assert child.stdout is not None
            for line in child.stdout:  # raises if the pipe is closed under it
                read.append(line)
                up.set()
                threading.Event().wait(0.3)  # a slow reader (a loaded machine)
            ended.set()

        with reaped(child, readers=readers, wait_s=5.0):
            reader = threading.Thread(target=pump, daemon=True)
            readers.append(reader)
            reader.start()
            assert up.wait(5.0)
        assert ended.is_set()  # the reader got to the end itself, before the pipe closed
        assert read == ["up\n"]
        assert child.returncode is not None

    def test_a_pipe_a_grandchild_holds_is_an_error_not_a_hang(self) -> None:
        # The child starts a grandchild that inherits its stdout, says its pid, and waits.
        child = subprocess.Popen(
            [sys.executable, "-c",
             "import subprocess, sys, time\n"
             "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
             "print(g.pid, flush=True)\n"
             "time.sleep(60)\n"],
            stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        grandchild = psutil.Process(int(child.stdout.readline()))
        read: list[str] = []
        reader = threading.Thread(target=lambda: read.extend(child.stdout or ()), daemon=True)
        try:
            with (pytest.raises(AssertionError, match="a process it started holds them"),
                  reaped(child, readers=[reader], wait_s=0.5)):
                reader.start()
            assert child.returncode is not None
            assert not child.stdout.closed  # closing it would wait for the grandchild
        finally:
            grandchild.kill()
            grandchild.wait(5.0)
            reader.join(5.0)
            child.stdout.close()
        assert not reader.is_alive() and read == []

"""A process is named by its start in clock ticks after boot as well as by its start time, so
a record still names its live process after the clock was set (the start time read back
moves with the boot's time, the ticks do not), and a pid reused by another process is not
taken for it; records written before the ticks were kept are still read (real child
processes; the clock itself is never set: a record whose start time is off by the step is
what a step leaves)."""

from __future__ import annotations

import ctypes
import dataclasses
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from preform_pipeline.liveness import (
    Liveness,
    ProcessIdentity,
    _may_be_ours,  # the reading of a command line, on its own
    _names_our_program,  # the reading of one word of it
    start_ticks_of,
    this_instance,
)
from preform_pipeline.printing.holder import SendHolder

LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"),
                           reason="start ticks are read from /proc on Linux")
#: An hour: what a clock set by a person, or a machine resumed with a stale clock, moves.
STEP_S = 3600.0


@contextmanager
def _child(argv: list[str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """A live child that runs until its input closes."""
    argv = argv or [sys.executable, "-c", "import sys; sys.stdin.read()"]
    child = subprocess.Popen(argv, stdin=subprocess.PIPE)
    # Judged once it runs its program: between fork and exec it shows its parent's command
    # line, and while exec replaces it, an empty one (which may be ours).
    deadline = time.monotonic() + 10.0
    while psutil.Process(child.pid).cmdline() != argv:
        assert time.monotonic() < deadline, f"{argv} did not start"
        time.sleep(0.005)
    try:
        yield child
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(30)


def _recorded(pid: int) -> ProcessIdentity:
    running = ProcessIdentity.of_running(pid)
    assert running is not None
    return running


@LINUX
class TestStartTicks:
    """The kernel's ``starttime``: the same moment as psutil's start time, in ticks."""

    def test_they_are_the_start_time_since_boot(self) -> None:
        with _child() as child:
            ticks = start_ticks_of(child.pid)
            assert ticks is not None
            since_boot = ticks / os.sysconf("SC_CLK_TCK")
            assert abs(psutil.boot_time() + since_boot
                       - psutil.Process(child.pid).create_time()) < 0.02
            assert ProcessIdentity.current().start_ticks == start_ticks_of(os.getpid())
        assert start_ticks_of(child.pid) is None  # gone

    def test_a_record_of_this_process_keeps_them(self) -> None:
        me = ProcessIdentity.current()
        assert me.start_ticks is not None
        assert me.to_json()["start_ticks"] == me.start_ticks


@LINUX
class TestAfterTheClockWasSet:
    """The record's start time is off by the step; its ticks are not: still that process."""

    def test_a_live_process_still_runs(self) -> None:
        with _child() as child:
            record = _recorded(child.pid)
            for step in (STEP_S, -STEP_S, 1.0):
                stepped = dataclasses.replace(record, create_time=record.create_time + step)
                assert stepped.is_running() and not stepped.has_ended()
                assert stepped.judged_on_this_machine() is Liveness.RUNNING

    def test_another_process_under_its_pid_is_not_it(self) -> None:
        # The same pid and start time (the clock set back by just the time between the two
        # starts), other ticks: another process that took the number.
        with _child() as child:
            record = _recorded(child.pid)
            assert record.start_ticks is not None
            other = dataclasses.replace(record, start_ticks=record.start_ticks + 1)
            assert not other.is_running() and other.has_ended()
            assert other.judged_on_this_machine() is Liveness.ENDED

    def test_a_record_without_ticks_is_compared_by_its_start_time_as_before(self) -> None:
        with _child() as child:
            written = {k: v for k, v in _recorded(child.pid).to_json().items()
                       if k != "start_ticks"}
            record = ProcessIdentity.from_json(written)
            assert record.start_ticks is None and record.is_running()
            stepped = dataclasses.replace(record, create_time=record.create_time + 1.0)
            assert not stepped.is_running()

    def test_ticks_of_another_instance_never_match(self) -> None:
        # Ticks count from a boot: equal ticks of another boot are another process.
        me = ProcessIdentity.current()
        other_boot = dataclasses.replace(me, instance=f"x{this_instance()}")
        assert not me.matches(other_boot) and not other_boot.matches(me)


class TestTicksInRecords:
    """Written when known, read back; a record without them is read; wrong ones refused."""

    def test_json_and_label_round_trip(self) -> None:
        record = ProcessIdentity(42, 1_700_000_000.25, "lab-pc", "boot/7", start_ticks=1234)
        assert ProcessIdentity.from_json(record.to_json()).start_ticks == 1234
        assert record.label() == "lab-pc:42:1700000000.250:boot/7:1234"
        again = ProcessIdentity.from_label(record.label())
        assert again is not None and again.start_ticks == 1234 and again == record

    def test_a_label_without_ticks_is_read_as_before(self) -> None:
        again = ProcessIdentity.from_label("lab-pc:42:1700000000.250:boot/7")
        assert again is not None and again.start_ticks is None and again.instance == "boot/7"
        assert ProcessIdentity(42, 1.0, "h", "b/1").label() == "h:42:1.000:b/1"

    @pytest.mark.parametrize("ticks", [-1, "12", True, 1.5])
    def test_wrong_ticks_are_refused(self, ticks: object) -> None:
        with pytest.raises(ValueError, match="not start ticks"):
            ProcessIdentity.from_json({"pid": 1, "create_time": 1.0, "host": "h",
                                       "start_ticks": ticks})

    @pytest.mark.parametrize("text", ["h:42:1.0:b/1:x", "h:42:1.0:b/1:-3", "h:42:1.0:b/1:1:2"])
    def test_a_label_with_wrong_ticks_names_no_process(self, text: str) -> None:
        assert ProcessIdentity.from_label(text) is None

    @LINUX
    def test_a_send_holder_keeps_them(self) -> None:
        with _child() as child:
            holder = SendHolder.local("server-1", child.pid, 30.0)
            assert holder.start_ticks == start_ticks_of(child.pid) is not None
            read = SendHolder.from_json(holder.to_json())
            assert read == holder and read is not None and read.process is not None
            assert read.process.start_ticks == holder.start_ticks
            stepped = dataclasses.replace(read, create_time=(holder.create_time or 0) + STEP_S)
            assert stepped.process is not None and stepped.process.is_running()
        old_row = {k: v for k, v in holder.to_json().items() if k != "start_ticks"}
        assert (read_old := SendHolder.from_json(old_row)) is not None
        assert read_old.start_ticks is None


def _exec_without_arguments(program: bytes, failed: int) -> None:
    """In a forked child: run ``program`` with no arguments at all (its command line empty),
    as a process that cleared its command line shows; says on ``failed`` when it cannot."""
    libc = ctypes.CDLL(None, use_errno=True)
    nothing = (ctypes.c_char_p * 1)(None)
    libc.execve(program, nothing, nothing)
    os.write(failed, b"x")  # not reached when the exec succeeds
    os._exit(127)


@LINUX
class TestMayBeOurs:
    """A command line that says nothing cannot rule a process out, unless it is a kernel
    thread's."""

    def test_a_process_with_an_empty_command_line_may_be_ours(self) -> None:
        read, write = os.pipe()
        # Closed on exec (Python's pipes are): its end reads nothing once cat runs.
        execed, failed = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: cat, reading the pipe until it closes
            os.dup2(read, 0)
            _exec_without_arguments(b"/bin/cat", failed)
        os.close(read)
        os.close(failed)
        try:
            assert os.read(execed, 1) == b"", "cat did not start"
            process = psutil.Process(pid)
            assert [w for w in process.cmdline() if w] == []
            assert _may_be_ours(process)
        finally:
            os.close(write)
            os.waitpid(pid, 0)

    def test_a_kernel_thread_is_not(self) -> None:
        threads = [p for p in psutil.process_iter(["name", "ppid"])
                   if p.info["ppid"] == 2 or p.pid == 2]
        if not threads:
            pytest.skip("no kernel thread is visible from this pid namespace")
        assert not any(_may_be_ours(p) for p in threads)

    def test_ours_and_others_by_their_words(self) -> None:
        with _child([sys.executable, "-c", "import sys; sys.stdin.read()",
                     "preform-pipeline"]) as ours, _child(["cat"]) as other:
            assert _may_be_ours(psutil.Process(ours.pid))
            assert not _may_be_ours(psutil.Process(other.pid))

    def test_a_program_run_from_a_folder_named_for_us_is_not(self, tmp_path: Path) -> None:
        # A newcomer's checkout and its virtual environment are called preform-pipeline: the
        # Python, pytest and cat run from there are not ours, and neither is a path argument.
        folder = tmp_path / "preform-pipeline" / ".venv" / "bin"
        folder.mkdir(parents=True)
        (folder / "cat").symlink_to(shutil.which("cat") or "/bin/cat")
        with _child([str(folder / "cat"), "-", str(folder / "notes.txt")]) as cat:
            assert not _may_be_ours(psutil.Process(cat.pid))
        (folder / "preform-pipeline").symlink_to(folder / "cat")
        with _child([str(folder / "preform-pipeline")]) as ours:
            assert _may_be_ours(psutil.Process(ours.pid))


class TestOurProgramsByName:
    """One word of a command line names our program by its last path component alone."""

    @pytest.mark.parametrize("word", [
        "preform-pipeline", "/opt/venv/bin/preform-pipeline", "preform_pipeline.daemon",
        "/Applications/PreFormServer.app/Contents/MacOS/PreFormServer",
        "C:\\Program Files\\Formlabs\\PreFormServer\\PreFormServer.exe",
        "Z:\\opt\\PREFORMSERVER.EXE",
    ])
    def test_our_programs_wherever_they_are(self, word: str) -> None:
        assert _names_our_program(word)

    @pytest.mark.parametrize("word", [
        "/home/me/preform-pipeline/.venv/bin/python", "python3", "-m", "pytest", "",
        "C:\\preform\\python.exe", "/srv/preform-data/", "cat",
    ])
    def test_other_programs_and_folders_named_for_us(self, word: str) -> None:
        assert not _names_our_program(word)

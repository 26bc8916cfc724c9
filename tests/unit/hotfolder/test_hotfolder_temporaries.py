"""Hidden temporaries a killed process left in the outcome folders are swept at the daemon's
start: a dead writer's of this host and instance go, a running writer's and another host's or
container's stay; those named before names said the instance are judged by their pid, as then.

Writers are real child processes: one killed (SIGKILL) in the middle of a move across two file
systems, others that wrote a temporary and then ended or still run.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
from daemon_support import Script, make_daemon, names, run_daemon_once
from structlog.testing import capture_logs

from preform_pipeline.atomicfile import host_tag
from preform_pipeline.hotfolder.files import sweep_temporaries, write_text_atomic
from preform_pipeline.store import SqliteJobStore
from tests.instances import other_instance
from tests.staging_support import Saver

WAIT_S = 20.0

#: Writes a temporary as the hot folder names it, says where, and runs until stdin closes.
WRITER = (
    "import sys\n"
    "from pathlib import Path\n"
    "from preform_pipeline.hotfolder.files import temporary_path\n"
    "path = temporary_path(Path(sys.argv[1]), sys.argv[2])\n"
    "path.write_bytes(b'half a file')\n"
    "print(path, flush=True)\n"
    "sys.stdin.read()\n"
)
#: The same, as a process of another container of this host name names it: its instance
#: (the seam: what liveness.this_instance says there) is another pid namespace of this boot.
WRITER_ELSEWHERE = (
    "import sys\n"
    "import preform_pipeline.atomicfile as atomicfile\n"
    "atomicfile.this_instance = lambda: sys.argv[3]\n"
) + WRITER
#: Moves a file with the hot folder's move, held in the middle of its copy: the copy's
#: loop (``shutil.copyfileobj``, in this child only) writes the first bytes, says so, and
#: waits on stdin, which stays open until the test kills the child.
MOVER = (
    "import shutil, sys\n"
    "from pathlib import Path\n"
    "from preform_pipeline.hotfolder.files import move_file\n"
    "def held(reader, writer, length=0):\n"
    "    writer.write(reader.read(12))\n"
    "    writer.flush()\n"
    "    print('copying', flush=True)\n"
    "    sys.stdin.read()\n"
    "shutil.copyfileobj = held\n"
    "move_file(Path(sys.argv[1]), Path(sys.argv[2]))\n"
)


@contextmanager
def _writer(python_exe: str, beside: Path, kind: str) -> Iterator[tuple[Path, int]]:
    """A running process that has written its temporary beside ``beside`` (path, pid)."""
    child = subprocess.Popen([python_exe, "-c", WRITER, str(beside), kind],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        yield Path(child.stdout.readline().strip()), child.pid
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=WAIT_S)


def _left_by_a_dead_writer(python_exe: str, beside: Path, kind: str) -> Path:
    with _writer(python_exe, beside, kind) as (path, _):
        pass
    return path


def _another_host_s(path: Path) -> Path:
    """The same temporary as a process of another host would name it."""
    stem, pid_and_tag, kind = path.name.rsplit(".", 2)
    pid = pid_and_tag.split("-")[0]
    tag = hashlib.sha256(b"another-pc").hexdigest()[:8]
    return path.with_name(f"{stem}.{pid}-{tag}.{kind}")


class TestACrashInTheMiddleOfAMoveAcrossDisks:
    """A move killed mid-copy leaves its .partial; the sweep removes it once its writer is
    gone, and not before."""

    def test_the_partial_copy_of_a_killed_mover_is_swept_and_a_running_one_s_is_kept(
        self, tmp_path: Path, python_exe: str
    ) -> None:
        # Linux-specific (unavoidably: a move across disks needs a second file system):
        # /dev/shm is a tmpfs.
        with tempfile.TemporaryDirectory(dir="/dev/shm") as other:
            assert os.stat(other).st_dev != os.stat(tmp_path).st_dev, "need two file systems"
            done = Path(other) / "done"
            source = tmp_path / "crown.stl"
            source.write_bytes(b"solid crown\n" * 1000)
            mover = subprocess.Popen([python_exe, "-c", MOVER, str(source),
                                      str(done / "crown.stl")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                assert mover.stdout is not None
                assert mover.stdout.readline().strip() == "copying"
                (partial,) = _listed(done)
                assert partial.suffix == ".partial"
                assert sweep_temporaries([Path(other)]) == ()  # its mover still runs
                assert partial.exists()
                mover.send_signal(signal.SIGKILL)
                mover.wait(timeout=WAIT_S)
            finally:
                if mover.poll() is None:
                    mover.kill()
                    mover.wait(timeout=WAIT_S)
                for pipe in (mover.stdin, mover.stdout):
                    if pipe is not None:
                        pipe.close()
            assert source.read_bytes() == b"solid crown\n" * 1000  # the user's file is whole
            with capture_logs() as logs:
                assert sweep_temporaries([Path(other)]) == (partial,)
            assert _listed(done) == []
            assert [(e["event"], e["pid"], e["kind"]) for e in logs] == [
                ("temporary_swept", mover.pid, "partial")]


def _listed(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.is_dir() else []


class TestTheDaemonSweepsAtStart:
    """Dead writers' temporaries below processing/, done/ and failed/ go; nothing else does."""

    def test_only_this_host_s_dead_writers_temporaries_are_removed(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path,
        python_exe: str,
    ) -> None:
        inbox = tmp_path / "inbox"
        done, failed, processing = inbox / "done", inbox / "failed", inbox / "processing"
        for folder in (done / "case-7", failed, processing):
            folder.mkdir(parents=True)
        gone = [
            _left_by_a_dead_writer(python_exe, done / "case-7" / "crown.stl", "partial"),
            _left_by_a_dead_writer(python_exe, done / "case-7" / "crown.stl.report.json",
                                   "tmp"),
            _left_by_a_dead_writer(python_exe, failed / "bridge.stl.error.txt", "tmp"),
            _left_by_a_dead_writer(python_exe, processing / "inlay.stl", "partial"),
        ]
        elsewhere = _another_host_s(gone[0])
        gone[0].rename(elsewhere)
        gone = gone[1:]
        (done / ".crown.stl.12345.partial").write_bytes(b"an earlier version's name")
        (done / ".DS_Store").write_bytes(b"a user's")
        with _writer(python_exe, failed / "molar.stl", "partial") as (running, _):
            with capture_logs() as logs:
                run_daemon_once(make_daemon(tmp_path, store, script, recipe))
            assert running.exists()
        assert not any(p.exists() for p in gone)
        assert elsewhere.exists()
        assert names(inbox) == sorted([
            "done/.DS_Store", "done/.crown.stl.12345.partial",
            elsewhere.relative_to(inbox).as_posix(), running.relative_to(inbox).as_posix()])
        swept = [e["path"] for e in logs if e["event"] == "temporary_swept"]
        assert sorted(swept) == sorted(str(p) for p in gone)


class TestTheDaemonSweepsStagingAtStart:
    """A daemon killed while its server saved left its staging folder below the output folder:
    the next daemon's start removes it before any batch runs; a live process's stays."""

    def test_a_killed_process_s_staging_goes_a_live_one_s_stays(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        out = tmp_path / "out"
        out.mkdir()
        killed, live = Saver(out), Saver(out, "2026-12-06/e2e-002.form")
        try:
            killed.kill()
            with capture_logs() as logs:
                run_daemon_once(make_daemon(tmp_path, store, script, recipe))
            assert not killed.folder.exists()
            assert live.temporary.is_file()
        finally:
            killed.stop()
            live.stop()
        assert [(e["path"], e["pid"]) for e in logs if e["event"] == "staging_swept"] == [
            (str(killed.folder), killed.process.pid)]


class TestAFailedNoteLeavesNoTemporary:
    """A note that cannot be written whole leaves neither the note nor its temporary."""

    def test_text_that_cannot_be_encoded_leaves_the_folder_as_it_was(
        self, tmp_path: Path
    ) -> None:
        with pytest.raises(UnicodeEncodeError):
            write_text_atomic(tmp_path / "part.stl.error.txt", "What failed: \ud800\n")
        assert list(tmp_path.iterdir()) == []


class TestAnotherContainersTemporaries:
    """Another container of this host name numbers its pids apart: a pid of its that is no
    process here says nothing of its writer, so its temporaries stay; this host's named the
    earlier way (the host name alone) still go once their pid is gone."""

    def test_another_container_s_dead_pid_keeps_its_temporary(
        self, tmp_path: Path, python_exe: str
    ) -> None:
        child = subprocess.run(
            [python_exe, "-c", WRITER_ELSEWHERE, str(tmp_path / "crown.stl"), "partial",
             other_instance()], input="", stdout=subprocess.PIPE, text=True, timeout=WAIT_S,
            check=True)
        theirs = Path(child.stdout.strip())
        assert not psutil.pid_exists(int(theirs.name.rsplit(".", 2)[1].split("-")[0]))
        with capture_logs() as logs:
            assert sweep_temporaries([tmp_path]) == ()
        assert theirs.exists() and logs == []

    def test_this_host_s_earlier_names_are_judged_by_their_pid(
        self, tmp_path: Path, python_exe: str
    ) -> None:
        dead = _left_by_a_dead_writer(python_exe, tmp_path / "crown.stl", "partial")
        earlier = _named_by_host_alone(dead)
        dead.rename(earlier)
        with _writer(python_exe, tmp_path / "molar.stl", "tmp") as (running, _):
            still = _named_by_host_alone(running)
            running.rename(still)
            assert sweep_temporaries([tmp_path]) == (earlier,)
            assert still.exists()


def _named_by_host_alone(path: Path) -> Path:
    """The same temporary as this host's processes named it before names said the instance."""
    stem, pid_and_tag, kind = path.name.rsplit(".", 2)
    pid = pid_and_tag.split("-")[0]
    return path.with_name(f"{stem}.{pid}-{host_tag()}.{kind}")

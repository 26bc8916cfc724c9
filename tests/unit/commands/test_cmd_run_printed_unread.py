"""A ``run`` repeated from cron does not read the files it will skip (their content is
another job's), and a case with one new file is still read whole.

The skipped files are PNG pictures named ``.stl``: read, each would be refused ("this is a
PNG image"), so a run that says it skipped one, and refuses nothing, did not read it. Real
files, a real SQLite store, the command line in the test's process (it starts no server:
every model is skipped).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Collection, Sequence
from datetime import datetime
from pathlib import Path

import pytest

from preform_pipeline.commands import run as run_command
from preform_pipeline.commands._sources import TakenSources, take_sources
from preform_pipeline.recipes import load_recipe
from preform_pipeline.settings.run import RunSettings
from preform_pipeline.store import Job, JobState, SqliteJobStore, content_hash
from tests.command_line import InProcess
from tests.conftest import RECIPES
from tests.e2e.run_e2e_support import write_box

RECIPE = RECIPES / "engineering-grey-form4.yaml"
AS_THEY_ARE = RunSettings(quiet_period_s=0.0, incomplete_timeout_s=0.0)
#: The start of a PNG file: no model reader takes it.
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def a_picture(path: Path) -> Path:
    """A PNG named ``path`` (its folders made), complete: written long ago."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(PNG)
    os.utime(path, (1e9, 1e9))
    return path


def a_model(path: Path) -> Path:
    """A 10 mm cube at ``path``, complete: written long ago."""
    write_box(path, 10.0)
    os.utime(path, (1e9, 1e9))
    return path


def taken(paths: Sequence[Path], skipped: Collection[Path]) -> TakenSources:
    """What ``run`` takes of ``paths`` when its claims would skip ``skipped``."""
    return take_sources(paths, load_recipe(RECIPE), rules=AS_THEY_ARE,
                        started_at=datetime(2026, 12, 8), unread=lambda found: skipped)


class TestFilesTheRunSkips:
    def test_a_loose_file_it_skips_is_not_read_and_the_new_one_is(self, tmp_path: Path) -> None:
        printed = a_picture(tmp_path / "inbox" / "printed.stl")
        new = a_model(tmp_path / "inbox" / "new.stl")
        sources = taken([tmp_path / "inbox"], {printed})
        assert sources.unread == (printed,)
        assert [m.path for m in sources.models] == [new]
        assert sources.rejected == ()  # the picture was not read, so not refused

    def test_a_case_with_a_new_file_is_read_whole(self, tmp_path: Path) -> None:
        """The case's rules see every member: its printed file, read, cannot be prepared
        (now a picture), so the new one is held with it, as before a repeat skipped any."""
        case = tmp_path / "inbox" / "C-1"
        printed = a_picture(case / "upper.stl")
        new = a_model(case / "lower.stl")
        sources = taken([tmp_path / "inbox"], {printed})
        assert sources.unread == ()
        assert sources.models == ()
        reasons = {r.path: r.reason for r in sources.rejected}
        assert "PNG image" in reasons[printed]
        assert "held with its case C-1" in reasons[new]

    def test_a_case_whose_every_file_it_skips_is_not_read(self, tmp_path: Path) -> None:
        case = tmp_path / "inbox" / "C-2"
        files = [a_picture(case / "upper.stl"), a_picture(case / "lower.stl")]
        sources = taken([tmp_path / "inbox"], set(files))
        assert sorted(sources.unread) == sorted(files)
        assert (sources.models, sources.rejected) == ((), ())


def a_job_holding(store_path: Path, path: Path) -> Job:
    """A hot folder's job of ``path``'s content, queued for the shipped recipe: ``run``
    skips that content as being prepared or printed."""
    with SqliteJobStore(store_path) as store:
        return store.create_job(recipe=RECIPE.stem, source_path=str(path),
                                content_hash=content_hash(path), state=JobState.QUEUED)


class TestARepeatFromCron:
    def test_it_says_what_it_skipped_without_reading_it(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        picture = a_picture(tmp_path / "inbox" / "part.stl")
        job = a_job_holding(tmp_path / "jobs.sqlite3", picture)
        done = in_process(tmp_path, "run", str(RECIPE), str(tmp_path / "inbox"), "--store",
                          str(tmp_path / "jobs.sqlite3"), "--output", str(tmp_path / "out"))
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.splitlines()[0] == (
            f"skipped part.stl: being prepared or printed as job {job.job_key} (queued); "
            "--reprint prints it again")
        assert "PNG" not in done.stdout + done.stderr  # not read, so not refused
        assert done.stdout.splitlines()[-1] == "exit 0: nothing to run, 0 of 0 builds succeeded"

    def test_reprint_reads_it(self, tmp_path: Path, in_process: InProcess) -> None:
        """``--reprint`` claims every file, so each is read (and this one refused)."""
        picture = a_picture(tmp_path / "inbox" / "part.stl")
        a_job_holding(tmp_path / "jobs.sqlite3", picture)
        done = in_process(tmp_path, "run", str(RECIPE), str(tmp_path / "inbox"), "--store",
                          str(tmp_path / "jobs.sqlite3"), "--output", str(tmp_path / "out"),
                          "--reprint")
        assert done.returncode == 1
        assert "this is a PNG image, not an STL" in done.stdout


class TestPathsTheReadersRefuse:
    """The store is asked about a file's content before any file is read: a path the readers
    refuse is not hashed for it, but read, and refused with its reason, as before."""

    def test_a_file_not_there_is_refused_not_hashed(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        a_job_holding(tmp_path / "jobs.sqlite3", a_picture(tmp_path / "printed.stl"))
        done = in_process(tmp_path, "run", str(RECIPE), str(tmp_path / "gone.stl"),
                          "--store", str(tmp_path / "jobs.sqlite3"),
                          "--output", str(tmp_path / "out"))
        assert done.returncode == 1, done.stdout + done.stderr  # was 70: FileNotFoundError
        assert "gone.stl: file not found" in done.stdout

    @pytest.mark.timeout(60)  # hashing the pipe blocked the run for ever
    @pytest.mark.skipif(not hasattr(os, "mkfifo"),
                        reason="named pipes, devices and modes are POSIX")
    def test_a_pipe_is_refused_not_hashed(self, tmp_path: Path, in_process: InProcess) -> None:
        os.mkfifo(a_picture(tmp_path / "inbox" / "part.stl").with_name("pipe.stl"))
        a_job_holding(tmp_path / "jobs.sqlite3", tmp_path / "inbox" / "part.stl")
        done = in_process(tmp_path, "run", str(RECIPE), str(tmp_path / "inbox"), "--store",
                          str(tmp_path / "jobs.sqlite3"), "--output", str(tmp_path / "out"))
        assert done.returncode == 1, done.stdout + done.stderr
        assert "pipe.stl: is not a regular file" in done.stdout
        assert "skipped part.stl: being prepared or printed" in done.stdout


#: In a fresh interpreter: ``run``'s start, then what it imports only to read a model or run
#: a build; prints the top-level modules outside the standard library those brought.
BROUGHT_LATE = """
import sys
import preform_pipeline.cli, preform_pipeline.commands.run
before = {name.partition(".")[0] for name in sys.modules}
import preform_pipeline.executor.feasibility, preform_pipeline.executor.runner
import preform_pipeline.plan.builds
after = {name.partition(".")[0] for name in sys.modules}
print(" ".join(sorted(after - before - set(sys.stdlib_module_names))))
"""


class TestADependencyMissing:
    """The planner (and numpy) come with the first model read: a broken install must still
    fail at ``run``'s start, before the store is opened or a file claimed."""

    def test_a_late_import_not_found_fails_the_start(
        self, tmp_path: Path, in_process: InProcess, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(run_command, "LATE_IMPORTS", ("numpy", "no_such_module_rv49"))
        (tmp_path / "inbox").mkdir()
        done = in_process(tmp_path, "run", str(RECIPE), str(tmp_path / "inbox"), "--store",
                          str(tmp_path / "jobs.sqlite3"), "--output", str(tmp_path / "out"))
        assert done.returncode == 1, done.stdout + done.stderr
        assert done.stderr.splitlines()[-1] == (
            "error: run needs no_such_module_rv49, which cannot be found: reinstall "
            "preform-pipeline (pip install preform-pipeline)")
        assert not (tmp_path / "jobs.sqlite3").exists()  # nothing opened, nothing claimed

    def test_every_late_import_is_listed(self) -> None:
        brought = subprocess.run([sys.executable, "-c", BROUGHT_LATE], capture_output=True,
                                 text=True, check=True, timeout=120).stdout.split()
        assert set(brought) <= set(run_command.LATE_IMPORTS)
        assert "numpy" in brought  # the child measured what it should

"""A case folder whose take a crash cut short between two of its files goes on as one case:
the next ``watch`` (a subprocess) prepares the files taken before the crash together with
the rest of the folder, in one build (session 26: with a batching window shorter than the
inbox's quiet period it went in two builds, the taken files first)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_hotfolder_watch_command import environment

from preform_pipeline.hotfolder.intake import Drop, Intake
from preform_pipeline.hotfolder.testing import (
    tetra_stl_bytes,
    wait_for,
    write_hotfolder_settings,
    write_recipe,
)
from preform_pipeline.settings.hotfolder import InboxSettings
from preform_pipeline.store import Job, JobState, SqliteJobStore

WAIT_S = 90.0
FILES = 4


class Killed(BaseException):
    """The process died here: nothing after this point of the take runs."""


class DiesAfter(Intake):
    """The intake, killed right after its ``files``-th file of a drop went into processing/."""

    def __init__(self, *args: object, files: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.left = files

    def _into_processing(self, job: Job, *, duplicate_of: Job | None = None) -> Job:
        taken = super()._into_processing(job, duplicate_of=duplicate_of)
        self.left -= 1
        if self.left == 0:
            raise Killed(taken.job_key)
        return taken


def cut_take(tmp_path: Path, recipe: Path, files: int) -> Path:
    """Drop case C-7 of FILES models and take it as a daemon would, dying after ``files``."""
    inbox = tmp_path / "inbox"
    case = inbox / "C-7"
    case.mkdir(parents=True)
    for index in range(FILES):
        (case / f"m{index}.stl").write_bytes(tetra_stl_bytes(index, size_mm=3))
    place = InboxSettings(path=inbox, recipe=recipe)
    with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
        intake = DiesAfter(store, [place], files=files)
        with pytest.raises(Killed):
            intake.take(Drop(place, case, "hot", True, models=tuple(sorted(case.glob("*.stl")))))
    return case


@contextmanager
def watching(settings: Path, cwd: Path, out: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A running ``watch`` writing to ``out``, stopped by SIGTERM at the end (killed only when
    that stop does not come: the test has failed then)."""
    with out.open("w") as stream:
        process = subprocess.Popen(
            [sys.executable, "-m", "preform_pipeline", "watch", str(settings),
             "--log-level", "INFO"],
            env=environment(), cwd=cwd, stdout=stream, stderr=subprocess.STDOUT)
    try:
        yield process
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=WAIT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


class TestACaseCutWhileTaken:
    """The files taken before the crash wait for the rest of their folder, then go with it."""

    @pytest.mark.parametrize("taken", [1, FILES - 1])
    def test_the_case_is_prepared_in_one_build(self, tmp_path: Path, taken: int) -> None:
        recipe = write_recipe(tmp_path, printer=None)
        # A window shorter than the quiet period: the taken files' batch would go before the
        # rest of the folder is taken, unless they wait for it.
        settings = write_hotfolder_settings(
            tmp_path, recipe, inbox={"quiet_period_s": 1.0}, hotfolders={
                "batching": {"window_s": 0.2}})
        case = cut_take(tmp_path, recipe, taken)
        assert len(list(case.glob("*.stl"))) == FILES - taken
        done = tmp_path / "inbox" / "done" / "C-7"
        out = tmp_path / "watch.out"
        with watching(settings, tmp_path, out) as process:
            wait_for(lambda: len(list(done.glob("*.stl"))) == FILES, WAIT_S,
                     what="the whole case in done/")
        said = out.read_text(encoding="utf-8")
        assert process.returncode == 0, said[-3000:]
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            jobs = store.list_jobs()
        assert len(jobs) == FILES and {j.state for j in jobs} == {JobState.DONE}
        assert len({j.build_id for j in jobs}) == 1, [(j.job_key, j.build_id) for j in jobs]
        assert {j.case_id for j in jobs} == {"C-7"}
        assert "case_take_resumes" in said
        assert not case.exists()
        assert os.listdir(tmp_path / "inbox" / "processing") == []

    def test_taken_files_go_alone_when_the_rest_is_removed(self, tmp_path: Path) -> None:
        recipe = write_recipe(tmp_path, printer=None)
        # A quiet period long enough for the user to take the rest back before it is taken.
        settings = write_hotfolder_settings(tmp_path, recipe, inbox={"quiet_period_s": 30})
        case = cut_take(tmp_path, recipe, 2)
        out = tmp_path / "watch.out"
        done = tmp_path / "inbox" / "done" / "C-7"
        with watching(settings, tmp_path, out) as process:
            wait_for(lambda: "case_take_resumes" in out.read_text(encoding="utf-8"), WAIT_S,
                     what="the taken files waiting for the rest")
            for rest in case.iterdir():  # a user takes the rest of the case back
                rest.unlink()
            case.rmdir()
            wait_for(lambda: len(list(done.glob("*.stl"))) == 2, WAIT_S,
                     what="the taken files in done/")
        assert process.returncode == 0, out.read_text(encoding="utf-8")[-3000:]
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            jobs = store.list_jobs()
        assert len(jobs) == 2 and {j.state for j in jobs} == {JobState.DONE}
        assert os.listdir(tmp_path / "inbox" / "processing") == []

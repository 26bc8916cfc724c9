"""A live daemon whose move of a file into processing/ fails with ``OSError`` (not a kill: a
folder turned read-only, a share answering EBUSY, a full disk; hotfolder/daemon.py
``HotFolderDaemon._take_cut_short``, hotfolder/intake.py ``Intake.give_up_take``; a real
SQLite store, real folders, the file system's refusal made at the intake's move seam).

Before, the take's error was logged and the drop looked at again: the retake finished the
failed move, but that file and the case's files taken before it stayed PROCESSING in no
batch until the next start, and the rest of the case went on as a batch of its own.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from daemon_support import Script, make_daemon, names
from structlog.testing import capture_logs

from preform_pipeline.hotfolder.files import move_file
from preform_pipeline.hotfolder.testing import running_daemon, tetra_stl_bytes, wait_for
from preform_pipeline.store import JobState, SqliteJobStore

WAIT_S = 30.0
FILES = ("a.stl", "b.stl", "c.stl")


class _Refusing:
    """Moves files, but refuses ``name``'s move into processing/ ``times`` times (EACCES)."""

    def __init__(self, name: str, times: int) -> None:
        self.name, self.left = name, times

    def __call__(self, source: Path, target: Path) -> None:
        if source.name == self.name and "processing" in target.parts and self.left > 0:
            self.left -= 1
            raise PermissionError(errno.EACCES, "Permission denied", str(target.parent))
        move_file(source, target)


def _dropped(tmp_path: Path, case: bool) -> Path:
    """Case folder C-11 (a.stl, b.stl, c.stl), or b.stl alone; the inbox."""
    inbox = tmp_path / "inbox"
    folder = inbox / "C-11" if case else inbox
    folder.mkdir(parents=True, exist_ok=True)
    for seed, name in enumerate(FILES if case else ("b.stl",)):
        (folder / name).write_bytes(tetra_stl_bytes(130 + seed))
    return inbox


class TestAMoveIntoProcessingThatFails:
    """Tried again on a later look, the daemon running on; then the drop goes on whole, or
    after its tries to failed/ whole."""

    @pytest.mark.parametrize("case", [True, False], ids=["case", "file"])
    def test_the_drop_is_printed_whole_once_the_move_succeeds(
        self, store: SqliteJobStore, recipe: Path, tmp_path: Path, case: bool
    ) -> None:
        daemon = make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"), recipe,
                             move=_Refusing("b.stl", 1))
        with capture_logs() as logs, running_daemon(daemon):
            inbox = _dropped(tmp_path, case)
            count = len(FILES) if case else 1
            wait_for(lambda: len(store.list_jobs(state=JobState.PRINT_SENT)) == count,
                     WAIT_S, what="the drop printed")

        jobs = store.list_jobs()
        assert len(jobs) == count and len({j.build_id for j in jobs}) == 1
        folder = "done/C-11/" if case else "done/"
        assert names(inbox) == sorted(f"{folder}{n}{s}" for n in (FILES if case else ("b.stl",))
                                      for s in ("", ".report.json"))
        assert [e["tries"] for e in logs if e["event"] == "take_postponed"] == [1]
        assert [Path(e["path"]).name for e in logs if e["event"] == "take_move_failed"] == [
            "b.stl"]

    @pytest.mark.parametrize("case", [True, False], ids=["case", "file"])
    def test_after_its_tries_the_drop_goes_to_failed_whole_with_a_note(
        self, store: SqliteJobStore, recipe: Path, tmp_path: Path, case: bool
    ) -> None:
        daemon = make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"), recipe,
                             move=_Refusing("b.stl", 1_000))
        daemon.take_move_tries = 2
        files = FILES if case else ("b.stl",)
        with capture_logs() as logs, running_daemon(daemon):
            inbox = _dropped(tmp_path, case)
            wait_for(lambda: len(store.list_jobs(state=JobState.FAILED)) == len(files)
                     and not any(inbox.glob("*.stl")) and not (inbox / "C-11").exists(),
                     WAIT_S, what="the drop failed")

        failed = inbox / "failed" / ("C-11" if case else "")
        assert names(inbox) == sorted((failed / f"{n}{s}").relative_to(inbox).as_posix()
                                      for n in files for s in ("", ".error.txt"))
        jobs = store.list_jobs()
        assert [(j.build_id, j.recipe) for j in jobs] == [(None, "hot")] * len(files)
        (b,) = [j for j in jobs if j.original_name == "b.stl"]
        note = (failed / "b.stl.error.txt").read_text(encoding="utf-8").splitlines()
        assert note[:3] == [
            "What failed: b.stl could not be moved into processing/ ([Errno 13] Permission "
            f"denied: '{inbox / 'processing' / b.job_key}'); tried on 2 looks",
            "Where: taking the file from the inbox",
            f"File: {inbox / 'C-11' / 'b.stl' if case else inbox / 'b.stl'}"]
        assert f"Job: {b.job_key} (see: {daemon.intake.jobs} show {b.job_key})" in note
        assert any(line.endswith(f"then move the {'case folder' if case else 'file'} from "
                                 "failed/ back into the inbox") for line in note)
        assert not (inbox / "processing" / b.job_key).exists()
        (given,) = [e for e in logs if e["event"] == "take_given_up"]
        assert (Path(given["path"]).name, given["tries"]) == ("b.stl", 2)
        assert [e["rejected"] for e in logs if e["event"] == "drop_given_up"] == [len(files)]

    def test_a_give_up_whose_moves_to_failed_are_refused_too_goes_on_whole_later(
        self, store: SqliteJobStore, recipe: Path, tmp_path: Path
    ) -> None:
        """The folder that refuses the move into processing/ (read-only) mostly refuses the
        move to failed/ too: the give-up is cut short, and is done again on a later look,
        not a take of the case's rest as a batch of its own (c.stl printed alone)."""
        refusing = _Refusing("b.stl", 1_000)

        def move(source: Path, target: Path) -> None:
            if source.name == "b.stl" and "failed" in target.parts and refused_to_failed:
                refused_to_failed.pop()
                raise PermissionError(errno.EACCES, "Permission denied", str(source.parent))
            refusing(source, target)

        refused_to_failed = [1, 1]
        daemon = make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"), recipe,
                             move=move)
        daemon.take_move_tries = 2
        with capture_logs() as logs, running_daemon(daemon):
            inbox = _dropped(tmp_path, True)
            wait_for(lambda: not refused_to_failed and not (inbox / "C-11").exists()
                     and all(j.state in (JobState.FAILED, JobState.PRINT_SENT)
                             for j in store.list_jobs()), WAIT_S, what="the case settled")

        assert sorted((j.original_name, j.state, j.build_id) for j in store.list_jobs()) == [
            (n, JobState.FAILED, None) for n in FILES]
        assert names(inbox) == sorted(f"failed/C-11/{n}{s}" for n in FILES
                                      for s in ("", ".error.txt"))
        assert len([e for e in logs if e["event"] == "take_given_up"]) == 1

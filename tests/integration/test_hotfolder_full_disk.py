"""``watch --once`` with its inbox or output on a real disk that is full (a small tmpfs), or
whose output disk fills during the build: what it says, where the files are, what the note
advises, and that the next run, once there is room, settles them without preparing anything
again."""

from __future__ import annotations

import json
import os
from pathlib import Path

from preform_pipeline.hotfolder.testing import (
    tetra_stl_bytes,
    write_hotfolder_settings,
    write_recipe,
)
from preform_pipeline.store import SqliteJobStore
from tests.command_line import InProcess, in_a_process
from tests.small_disk import SmallDisk, mounted_small_disk


class TestTheInboxDiskFull:
    """A build prepared while its inbox's disk is full: its files stay in processing/, said
    on stdout with the file, the cause and what helps; the next run settles them."""

    def test_said_kept_whole_and_settled_by_the_next_run(
        self, small_disk: SmallDisk, tmp_path: Path
    ) -> None:
        inbox = small_disk.root / "inbox"
        settings = write_hotfolder_settings(
            tmp_path, write_recipe(tmp_path, printer=None), inbox={"path": str(inbox)},
            hotfolders={"output_root": str(tmp_path / "out")})
        inbox.mkdir()
        (inbox / "part.stl").write_bytes(tetra_stl_bytes(0))
        os.utime(inbox / "part.stl", (1e9, 1e9))  # long since written: taken at once
        small_disk.fill()  # the move into processing/ is a rename: it needs no room

        first = in_a_process(tmp_path, "watch", str(settings), "--once")

        assert first.returncode == 0, first.stderr
        assert "Traceback" not in first.stderr
        (job,) = [p.name for p in (inbox / "processing").iterdir()]
        (said,) = [line for line in first.stdout.splitlines() if "stay in processing/" in line]
        assert said.startswith("build PP-")
        assert said.endswith(
            f"'s files stay in processing/: {inbox}/done/part.stl.report.json: writing failed: "
            "No space left on device (the disk is full: free some space on it, then try "
            "again); they are settled once that is fixed (the next run, or this daemon as "
            "soon as the disk has room)")
        # Nothing half-written under a name of its own, nor a temporary left.
        assert sorted(p.name for p in inbox.rglob("*")) == [
            job, "done", "failed", "part.stl", "processing"]

        small_disk.free()
        second = in_a_process(tmp_path, "watch", str(settings), "--once")

        assert second.returncode == 0, second.stderr
        assert "stay in processing/" not in second.stdout
        assert second.stdout.splitlines()[-1] == "stopped after 0 batches"  # none prepared again
        assert sorted(p.name for p in (inbox / "done").iterdir()) == [
            "part.stl", "part.stl.report.json"]
        assert json.loads((inbox / "done" / "part.stl.report.json").read_text("utf-8"))
        assert list((inbox / "processing").iterdir()) == []
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            assert len(store.list_builds()) == 1


class TestTheOutputDiskFull:
    """A build whose .form a full output disk refused goes to failed/ (a person frees space:
    the daemon cannot know when); its note says the disk is full, and the `jobs retry` it
    names, run once there is room, prepares it once, whole."""

    def test_the_notes_retry_works_once_there_is_room(
        self, small_disk: SmallDisk, tmp_path: Path, in_process: InProcess
    ) -> None:
        inbox, out = tmp_path / "inbox", small_disk.root / "out"
        settings = write_hotfolder_settings(
            tmp_path, write_recipe(tmp_path, printer=None, extra_steps=["save_form"]),
            inbox={"path": str(inbox)}, hotfolders={"output_root": str(out)})
        inbox.mkdir()
        (inbox / "part.stl").write_bytes(tetra_stl_bytes(0))
        os.utime(inbox / "part.stl", (1e9, 1e9))  # long since written: taken at once
        small_disk.fill()

        first = in_a_process(tmp_path, "watch", str(settings), "--once")

        assert first.returncode == 0, first.stderr
        assert "Traceback" not in first.stderr
        note = (inbox / "failed" / "part.stl.error.txt").read_text("utf-8")
        assert "the disk is full: free some space on it, then try again" in note
        (todo,) = [line for line in note.splitlines() if line.startswith("What to do: ")]
        # Told by the kind the run recorded (the output folder's disk full), naming it.
        assert todo.startswith(f"What to do: free some space on the disk holding {out}")
        assert ", then drop the file again or run: preform-pipeline jobs " in todo
        retry = todo.split(" or run: preform-pipeline ", 1)[1].split()
        assert retry[-2] == "retry"
        assert not [p for p in out.rglob("*") if p.is_file() and p.suffix == ".form"]

        small_disk.free()
        # The note's retry in the test's process: what it does to the store is tested here,
        # not a process's start (the watch runs on either side of it are real processes).
        retried = in_process(tmp_path, *retry)
        assert retried.returncode == 0, retried.stderr
        second = in_a_process(tmp_path, "watch", str(settings), "--once")

        assert second.returncode == 0, second.stderr
        assert "failed on" not in second.stdout and "Traceback" not in second.stderr
        assert sorted(p.name for p in (inbox / "done").iterdir()) == [
            "part.stl", "part.stl.report.json"]
        assert list((inbox / "failed").iterdir()) == []
        (form,) = [p for p in out.rglob("*.form")]  # one, whole, under its own name
        assert form.stat().st_size > 0 and ".preform-staging" not in form.parts
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            assert sorted(b.state.value for b in store.list_builds()) == ["done", "failed"]


class TestTheOutputDiskFillsDuringTheBuild:
    """The server saved the .form, and placing it (a write of the daemon's own runner) is
    refused for want of room: the note tells a full disk by that write's kind and names the
    folder it was refused in; the model is kept, whole, in failed/, nothing of the save left."""

    def test_the_note_names_the_folder_of_the_refused_write(self, tmp_path: Path) -> None:
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        data = tetra_stl_bytes(0)
        (inbox / "part.stl").write_bytes(data)
        os.utime(inbox / "part.stl", (1e9, 1e9))  # long since written: taken at once
        # A disk of 6 files: its root, the day's folder, the save's staging folders and
        # owner file and the server's .form use them all, so the .form's name in the day's
        # folder (a hard link: a file on tmpfs) is refused.
        with mounted_small_disk(tmp_path / "out", inodes=6) as disk:
            out = disk.root
            settings = write_hotfolder_settings(
                tmp_path, write_recipe(tmp_path, printer=None, extra_steps=["save_form"]),
                inbox={"path": str(inbox)}, hotfolders={"output_root": str(out)})
            done = in_a_process(tmp_path, "watch", str(settings), "--once")

            assert done.returncode == 0, done.stderr
            assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
            (failed,) = [line for line in done.stdout.splitlines() if " failed on " in line]
            assert ".form: cannot move the saved file into place: No space left on device (the " \
                   "disk is full: free some space on it, then try again)" in failed
            (day,) = [p for p in out.iterdir() if p.is_dir() and p.name != "reports"]
            note = (inbox / "failed" / "part.stl.error.txt").read_text("utf-8")
            (todo,) = [line for line in note.splitlines() if line.startswith("What to do: ")]
            assert todo.startswith(f"What to do: free some space on the disk holding {day}, ")
            assert (inbox / "failed" / "part.stl").read_bytes() == data
            assert not [p for p in out.rglob("*") if p.suffix == ".form"]
            assert not (out / ".preform-staging").exists()

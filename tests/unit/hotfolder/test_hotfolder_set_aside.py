"""A name that cannot be set aside stays where it was, with no note in failed/ naming it.

Names that are not UTF-8 go to failed/ beside a note (``set_aside_unstorable``). When the
move fails for real (the file removed meanwhile, a folder that cannot cross to another file
system), the note is withdrawn, a structured event names the file, the error and what helps,
and the other names, and the daemon's other files, go on.

Linux-specific where a second file system is needed (unavoidably): /dev/shm is a tmpfs, apart
from the disk that holds tmp_path.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_support import Script, drop, make_daemon, names, run_daemon_once
from structlog.testing import capture_logs

from preform_pipeline.errors import StoreError
from preform_pipeline.hotfolder.files import ERROR_SUFFIX, SetAside, set_aside_unstorable
from preform_pipeline.hotfolder.intake import Drop, TakeResult
from preform_pipeline.hotfolder.testing import tetra_stl_bytes
from preform_pipeline.settings.hotfolder import OutcomeFolders
from preform_pipeline.store import JobState, SqliteJobStore

#: Folder and file names that are not UTF-8 (possible on POSIX, where names are bytes).
BAD_FILE = os.fsdecode(b"caf\xe9.stl")
BAD_FOLDER = os.fsdecode(b"cas\xe9")


@pytest.fixture
def other_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on another file system than ``tmp_path``."""
    with tempfile.TemporaryDirectory(dir="/dev/shm") as other:
        assert os.stat(other).st_dev != os.stat(tmp_path).st_dev, "need two file systems"
        yield Path(other)


def _tree(folder: Path) -> list[str]:
    return sorted(os.fsencode(p.relative_to(folder)).decode("utf-8", "backslashreplace")
                  for p in folder.rglob("*"))


def _events(logs: list[dict[str, object]], prefix: str = "unstorable_") -> list[str]:
    return [str(e["event"]) for e in logs if str(e["event"]).startswith(prefix)]


class TestAFileRemovedMeanwhile:
    """A file gone before its move leaves no note behind, and says so quietly."""

    def test_no_note_names_the_file_that_is_gone(self, tmp_path: Path) -> None:
        inbox, failed = tmp_path / "inbox", tmp_path / "inbox" / "failed"
        failed.mkdir(parents=True)
        odd = inbox / BAD_FILE
        odd.write_bytes(b"data")
        odd.unlink()  # the user took it back between the daemon's sight of it and its move
        with capture_logs() as logs:
            assert set_aside_unstorable(odd, inbox, failed) is SetAside.LEFT
        assert _tree(failed) == []
        (gone,) = [e for e in logs if e["event"] == "unstorable_gone"]
        assert gone["path"] == str(inbox / "caf\\xe9.stl")
        assert gone["log_level"] == "info"
        assert "No such file" in str(gone["error"])


class TestAFolderThatCannotCrossDisks:
    """A folder with such a name cannot be copied to a failed/ on another disk: it stays."""

    def test_the_folder_stays_whole_and_no_note_is_left(
        self, tmp_path: Path, other_disk: Path
    ) -> None:
        inbox = tmp_path / "inbox"
        case = inbox / BAD_FOLDER
        case.mkdir(parents=True)
        (case / "upper.stl").write_bytes(b"model")
        failed = other_disk / "failed"
        with capture_logs() as logs:
            assert set_aside_unstorable(case, inbox, failed) is SetAside.LEFT
        assert (case / "upper.stl").read_bytes() == b"model"
        assert _tree(failed) == []  # not even the folder the note was written into
        (warning,) = [e for e in logs if e["event"] == "unstorable_not_set_aside"]
        assert warning["log_level"] == "warning"
        assert warning["path"] == str(inbox / "cas\\xe9")
        assert warning["target"] == str(failed / "cas\\xe9")
        assert "Is a directory" in str(warning["error"])
        assert "rename it" in str(warning["hint"]) and "next rescan" in str(warning["hint"])

    def test_the_other_names_in_a_case_folder_are_still_set_aside(
        self, tmp_path: Path, other_disk: Path
    ) -> None:
        inbox = tmp_path / "inbox"
        case = inbox / "case"
        (case / BAD_FOLDER).mkdir(parents=True)
        (case / BAD_FILE).write_bytes(b"model")
        (case / "good.stl").write_bytes(b"good")
        failed = other_disk / "failed"
        with capture_logs() as logs:
            assert set_aside_unstorable(case, inbox, failed) is SetAside.KEPT
        assert _tree(failed) == ["case", "case/caf\\xe9.stl", "case/caf\\xe9.stl" + ERROR_SUFFIX]
        assert (failed / "case" / BAD_FILE).read_bytes() == b"model"
        assert _tree(case) == ["cas\\xe9", "good.stl"]
        assert _events(logs) == ["unstorable_not_set_aside"]


class TestANoteLeftByASetAsideCutShort:
    """A note naming the same file in the same words is made true, not left beside a copy."""

    def test_the_file_goes_to_the_name_its_note_already_has(self, tmp_path: Path) -> None:
        inbox, failed = tmp_path / "inbox", tmp_path / "inbox" / "failed"
        failed.mkdir(parents=True)
        odd = inbox / BAD_FILE
        odd.write_bytes(b"data")
        assert set_aside_unstorable(odd, inbox, failed) is SetAside.MOVED
        note = (failed / (BAD_FILE + ERROR_SUFFIX)).read_text(encoding="utf-8")
        # What a crash between the note and the move leaves: the note, and the file still in
        # the inbox.
        os.replace(failed / BAD_FILE, odd)
        assert set_aside_unstorable(odd, inbox, failed) is SetAside.MOVED
        assert _tree(failed) == ["caf\\xe9.stl", "caf\\xe9.stl" + ERROR_SUFFIX]
        assert (failed / (BAD_FILE + ERROR_SUFFIX)).read_text(encoding="utf-8") == note

    def test_a_note_in_other_words_keeps_its_name(self, tmp_path: Path) -> None:
        inbox, failed = tmp_path / "inbox", tmp_path / "inbox" / "failed"
        failed.mkdir(parents=True)
        (failed / (BAD_FILE + ERROR_SUFFIX)).write_text("What failed: another file\n")
        odd = inbox / BAD_FILE
        odd.write_bytes(b"data")
        assert set_aside_unstorable(odd, inbox, failed) is SetAside.MOVED
        assert (failed / os.fsdecode(b"caf\xe9 (2).stl")).read_bytes() == b"data"


class TestTheDaemonGoesOn:
    """A drop left in the inbox does not hold up the others, and is not called set aside."""

    def test_a_good_file_is_printed_while_the_odd_folder_waits_in_the_inbox(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path,
        other_disk: Path,
    ) -> None:
        drop(tmp_path, "part.stl", tetra_stl_bytes(1))
        drop(tmp_path, f"{BAD_FOLDER}/upper.stl", tetra_stl_bytes(2))
        failed = other_disk / "failed"
        daemon = make_daemon(tmp_path, store, script, recipe,
                             inbox={"folders": OutcomeFolders(failed=str(failed))})
        with capture_logs() as logs:
            run_daemon_once(daemon)
        inbox = tmp_path / "inbox"
        assert names(inbox / "done") == ["part.stl", "part.stl.report.json"]
        assert (inbox / BAD_FOLDER / "upper.stl").read_bytes() == tetra_stl_bytes(2)
        assert names(failed) == []
        events = [str(e["event"]) for e in logs]
        assert "unstorable_not_set_aside" in events
        assert "drop_set_aside" not in events
        assert [j.source_path.name for j in store.list_jobs()] == ["part.stl"]


class TestACaseHeldByANameSetAside:
    """A case folder whose part was set aside (its name is not UTF-8) is held whole, even when
    its take is looked at again after the store was away (the daemon's next look finds
    nothing more to set aside: what it set aside before must still hold the case)."""

    def test_the_case_is_held_after_a_take_that_failed(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        drop(tmp_path, "C-1/upper.stl", tetra_stl_bytes(1))
        drop(tmp_path, f"C-1/{BAD_FILE}", tetra_stl_bytes(2))
        daemon = make_daemon(tmp_path, store, script, recipe)
        take = daemon.intake.take
        tries: list[Drop] = []

        def away_once(drop: Drop, **kwargs: Any) -> TakeResult:
            tries.append(drop)
            if len(tries) == 1:
                raise StoreError("database is locked")
            return take(drop, **kwargs)

        monkeypatch.setattr(daemon.intake, "take", away_once)
        run_daemon_once(daemon)  # the take fails: the case is looked at again
        run_daemon_once(daemon)
        failed = tmp_path / "inbox" / "failed"
        assert len(tries) == 2
        assert names(tmp_path / "inbox" / "done") == []
        assert (failed / "C-1" / "upper.stl.error.txt").read_text(encoding="utf-8").startswith(
            "What failed: held with its case C-1: caf\\xe9.stl cannot be prepared")
        assert [j.state for j in store.list_jobs()] == [JobState.FAILED]
        assert script.runs == []  # nothing of the case printed

    def test_the_case_sidecar_goes_to_failed_with_the_case(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path,
    ) -> None:
        drop(tmp_path, "C-1/upper.stl", tetra_stl_bytes(1))
        drop(tmp_path, f"C-1/{BAD_FILE}", tetra_stl_bytes(2))
        drop(tmp_path, "C-1/C-1.yaml", b"case_id: C-1\n")
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        inbox = tmp_path / "inbox"
        # Beside the held file, as beside a bad one: nothing of the case is left behind.
        assert (inbox / "failed" / "C-1" / "C-1.yaml").read_bytes() == b"case_id: C-1\n"
        assert not (inbox / "C-1").exists()
        assert script.runs == []

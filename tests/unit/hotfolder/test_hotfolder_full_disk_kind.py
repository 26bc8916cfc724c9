"""A full disk told by kind, not by words: a failed build's note says to free space only when
the run said its write was refused for want of room (whatever the reason's words), also when
the note is written by the next daemon after a restart (the kind is kept in the store), and a
build whose files a full inbox disk kept in processing/ is settled, with its run's outcome,
at the daemon's first pass that finds room (a real small tmpfs), not at the periodic sweep."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from daemon_support import Script, drop, make_daemon, names, run_daemon_once
from structlog.testing import capture_logs

from preform_pipeline.hotfolder.testing import running_daemon, tetra_stl_bytes, wait_for
from preform_pipeline.store import SqliteJobStore
from tests.small_disk import SmallDisk


def _todo(inbox: Path) -> str:
    """The "What to do" line of the one note in ``inbox``'s failed/."""
    note = (inbox / "failed" / "p.stl.error.txt").read_text("utf-8")
    (todo,) = [line for line in note.splitlines() if line.startswith("What to do: ")]
    return todo


class TestTheNoteTellsAFullDiskByKind:
    """What to do about a failed build follows the kind the run recorded, never the words."""

    def test_a_full_disk_in_other_words_is_told(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        # A server speaking another language: nothing in the reason says "full".
        script.fail = lambda _build: "saveFormFile refused: FILE_WRITE_FAILED: écriture " \
                                     "impossible"
        script.fail_full_disk = tmp_path / "out"
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        assert _todo(tmp_path / "inbox").startswith(
            f"What to do: free some space on the disk holding {tmp_path / 'out'}, then drop "
            "the file again or run: ")

    def test_a_reason_worded_like_a_full_disk_is_not_one(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes())
        # A folder named after the words (and the hint's words quoted): not a full disk.
        script.fail = lambda _build: (
            "import refused: /lab/No space left on device (the disk is full: free some space "
            "on it, then try again)/p.stl: not a mesh")
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        assert _todo(tmp_path / "inbox").startswith(
            "What to do: read the reason above: fix what it names (the model, the recipe or "
            "the settings), then drop the file again or run: ")


class TestTheAdviceKeptAcrossARestart:
    """A build failed by a full disk whose note that disk refused too: the daemon stops with
    its files in processing/; the next daemon, on the same store file, writes the note, and
    it still says to free space where the run said."""

    def test_the_next_daemon_writes_the_full_disk_advice(
        self, tmp_path: Path, small_disk: SmallDisk, script: Script, recipe: Path
    ) -> None:
        root = small_disk.root  # the inbox (with its failed/) on the small disk
        (root / "inbox").mkdir()
        drop(root, "p.stl", tetra_stl_bytes())
        # Its output shares the disk: the save and the note are both refused for want of room.
        script.fail = lambda _build: "saveFormFile refused: FILE_WRITE_FAILED"
        script.fail_full_disk = root / "out"
        hot = {"output_root": root / "out"}
        small_disk.fill()  # the take into processing/ is a rename: it needs no room
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as first:
            run_daemon_once(make_daemon(root, first, script, recipe, hot=hot))
        assert names(root / "inbox" / "failed") == []
        assert [p.split("/")[-1] for p in names(root / "inbox" / "processing")] == ["p.stl"]

        small_disk.free()
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as second:
            run_daemon_once(make_daemon(root, second, script, recipe, hot=hot))

        assert len(script.runs) == 1  # settled by the second daemon, not prepared again
        assert _todo(root / "inbox").startswith(
            f"What to do: free some space on the disk holding {root / 'out'}, then drop "
            "the file again or run: ")


class TestFilesKeptByAFullInboxDisk:
    """A build finished while its inbox's disk is full keeps its files in processing/; freed,
    the next pass settles them with the run's outcome, long before any periodic sweep."""

    def test_settled_at_the_first_pass_with_room(
        self, tmp_path: Path, small_disk: SmallDisk, store: SqliteJobStore, script: Script,
        recipe: Path,
    ) -> None:
        script.block = block = threading.Event()
        root = small_disk.root  # the inbox on the small disk; the store and output are not
        # No periodic sweep within the test: only the pass that finds room can settle them.
        daemon = make_daemon(root, store, script, recipe,
                             hot={"output_root": tmp_path / "out",
                                  "rescan_interval_s": 3600.0})
        (root / "inbox").mkdir()
        with capture_logs() as logs, running_daemon(daemon):
            drop(root, "p.stl", tetra_stl_bytes())
            wait_for(lambda: bool(script.runs), 10, what="the batch to run")
            small_disk.fill()
            block.set()
            wait_for(lambda: any(e["event"] == "build_finish_failed" for e in logs), 10,
                     what="the report refused")
            assert [p.split("/")[-1] for p in names(root / "inbox" / "processing")] == [
                "p.stl"]
            small_disk.free()
            wait_for(lambda: "p.stl.report.json" in names(root / "inbox" / "done"), 10,
                     what="the files settled")
        (settled,) = [e for e in logs if e["event"] == "build_files_settled"]
        (build,) = store.list_builds()
        assert (settled["build_id"], settled["folder"]) == (
            build.id, str(root / "inbox" / "done"))
        assert names(root / "inbox" / "done") == ["p.stl", "p.stl.report.json"]
        report = json.loads((root / "inbox" / "done" / "p.stl.report.json").read_text("utf-8"))
        # The run's own outcome, kept while the files waited (a sweep's report has none).
        assert report["outcome"]["status"] == "succeeded"

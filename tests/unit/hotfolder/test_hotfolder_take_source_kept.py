"""A take whose own removal of the inbox copy fails (hotfolder/intake.py ``_cut_short``,
``_finish_decided``, ``finish_move``): the file copied into a processing/ on another disk
(/dev/shm), renamed into place there, and its removal from the inbox refused by the disk: a
real read-only bind mount of the inbox (``EROFS``, as a share refuses with ``EACCES`` or
``EBUSY``); a running daemon, its real watcher, a real SQLite store.

Session 25 left it read in the code: the take raised out of ``take`` (``take_failed``) and
the job waited in processing/ unbatched until the next start. Session 43 found that no
longer so (the failed move is a cut take since the move refusals were mended: the next look
finishes it and the job goes on), and found what was: once the job left processing/, its
inbox copy was taken again at every other look as a new job, each a duplicate copied into
failed/ (``finish_move`` recorded the refused move of the duplicate as made, so the copy still
in the inbox looked like a user's put-back).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_support import Script, make_daemon, names
from structlog.testing import capture_logs

from preform_pipeline.hotfolder.testing import running_daemon, tetra_stl_bytes, wait_for
from preform_pipeline.settings.hotfolder import OutcomeFolders
from preform_pipeline.store import JobState, SqliteJobStore
from tests.share_mount import Share, mounted_share

WAIT_S = 15.0
RESCAN_S = 0.3
#: Looks at the inbox after the print that a copy taken again would show in.
LOOKS = 6


@pytest.fixture
def share(tmp_path: Path) -> Iterator[Share]:
    """The inbox: its own folder bind-mounted, a.stl dropped, then read-only."""
    with mounted_share(tmp_path / "share", tmp_path / "inbox") as mounted:
        (mounted.at / "a.stl").write_bytes(tetra_stl_bytes(3))
        mounted.read_only()
        yield mounted


def _printed(tmp_path: Path, store: SqliteJobStore, recipe: Path, other_disk: Path,
             logs: list[dict[str, Any]], *, looks: int = 0) -> None:
    """A daemon with its outcome folders on ``other_disk`` runs until a.stl is printed,
    then for ``looks`` more rescans."""
    folders = OutcomeFolders(**{kind: str(other_disk / kind)
                                for kind in ("processing", "done", "failed")})
    daemon = make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"),
                         recipe, inbox={"folders": folders},
                         hot={"rescan_interval_s": RESCAN_S})
    with running_daemon(daemon):
        wait_for(lambda: len(store.list_jobs(state=JobState.PRINT_SENT)) == 1, WAIT_S,
                 what="a.stl printed")
        since = len(logs)
        wait_for(lambda: sum(e["event"] == "hotfolder_rescanned"
                             for e in logs[since:]) >= looks, WAIT_S, what="the looks after")


class TestATakeWhoseInboxCopyTheDiskKeeps:
    """Its job goes on in the running daemon; the copy stays in the inbox, said, until a
    person removes it, and is not a new job at each look."""

    def test_its_job_prints_without_a_restart(
        self, tmp_path: Path, store: SqliteJobStore, other_disk: Path, share: Share,
        recipe: Path,
    ) -> None:
        with capture_logs() as logs:
            _printed(tmp_path, store, recipe, other_disk, logs)

        (job,) = store.list_jobs()
        assert job.state is JobState.PRINT_SENT
        assert names(other_disk / "done") == ["a.stl", "a.stl.report.json"]
        assert names(share.at) == ["a.stl"]  # kept by the disk, said:
        refused = [e for e in logs if e["event"] == "cut_short_source_not_removed"]
        assert refused and all(e["path"] == str(share.at / "a.stl") for e in refused)
        assert [e["event"] for e in logs if e["event"] in ("take_move_failed", "take_failed")
                ] == ["take_move_failed"]

    def test_its_job_prints_from_the_same_disk_across_the_mount(
        self, tmp_path: Path, store: SqliteJobStore, share: Share, recipe: Path,
    ) -> None:
        """processing/ on the inbox's own file system, outside its mount (a bind mount of a
        folder of the same disk, as a container's volume is): the rename into it crosses
        the mount (``EXDEV``), so the take copies as to another disk, though both have the
        same device number."""
        same_disk = tmp_path / "outcomes"
        assert os.stat(same_disk.parent).st_dev == os.stat(share.at).st_dev
        with capture_logs() as logs:
            _printed(tmp_path, store, recipe, same_disk, logs)

        (job,) = store.list_jobs()
        assert job.state is JobState.PRINT_SENT
        assert names(same_disk / "done") == ["a.stl", "a.stl.report.json"]
        assert names(share.at) == ["a.stl"]
        assert [e["event"] for e in logs if e["event"] in ("take_move_failed", "take_failed")
                ] == ["take_move_failed"]

    def test_its_inbox_copy_is_not_taken_again_at_each_look(
        self, tmp_path: Path, store: SqliteJobStore, other_disk: Path, share: Share,
        recipe: Path,
    ) -> None:
        with capture_logs() as logs:
            _printed(tmp_path, store, recipe, other_disk, logs, looks=LOOKS)

        skipped = store.list_jobs(state=JobState.DUPLICATE_SKIPPED)
        # (One is still made once the job has left processing/: the record says so.)
        assert len(skipped) <= 1
        assert len([n for n in names(other_disk / "failed") if n.endswith(".stl")]) <= 1
        assert len(store.list_jobs()) == 1 + len(skipped)
        assert os.path.exists(share.at / "a.stl")

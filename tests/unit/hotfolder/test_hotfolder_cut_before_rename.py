"""A case's take cut between a file's store row and its move, met by another farm node
(hotfolder/intake.py ``Intake._cut_before_rename``; real PostgreSQL, real folders).

Node ``pc-b`` claimed case ``C-11`` and took it file by file: ``a.stl`` went into
processing/, then the store named ``b.stl``'s place there, and ``pc-b`` was killed before
the rename. The case folder now holds only ``b.stl``: new content, so a new claim, which
node ``pc-a`` wins while ``pc-b`` is down. ``pc-a`` used to take ``b.stl`` as a new job, a
"duplicate" of ``pc-b``'s job for it, and moved it to failed/; ``pc-b``'s next life then
failed that job "its file is gone": a file of the case never printed (the farm kill loop
saw it). Now ``pc-a`` finishes the cut move, and ``pc-b``'s start batches the whole case.

(Since session 38 ``pc-a`` no longer wins that claim while ``pc-b``'s job waits unbatched:
test_hotfolder_case_claim_covers_rest.py. The intake's rule still holds for whoever takes the
rest of a cut case: the taker's own retake after a move that failed, a store written by an
older node.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from structlog.testing import capture_logs
from test_hotfolder_cut_moves_finished import Killed
from test_hotfolder_node_orphans import _node, _recovery

from preform_pipeline.hotfolder import Drop
from preform_pipeline.hotfolder.files import move_file
from preform_pipeline.hotfolder.intake import Intake
from preform_pipeline.hotfolder.nodes import NodeRole, drop_hash
from preform_pipeline.hotfolder.testing import tetra_stl_bytes
from preform_pipeline.settings.hotfolder import InboxSettings
from preform_pipeline.store import JobState, SqliteJobStore
from preform_pipeline.store.fenced import NodeJobStore


def _killed_before_moving(name: str) -> Callable[[Path, Path], None]:
    """A move that kills its process when it comes to a file named ``name``."""

    def move(source: Path, target: Path) -> None:
        if source.name == name:
            raise Killed(str(source))
        move_file(source, target)

    return move


class TestACaseCutBeforeARename:
    """The rest of the case folder, taken by another node, is no new job: the cut move is
    finished, and the case goes on whole under the node that took it."""

    def test_the_other_node_finishes_the_move_and_the_case_is_batched_whole(
        self, url: str, stores: list[NodeJobStore], tmp_path: Path
    ) -> None:
        inbox = InboxSettings(path=tmp_path / "inbox")
        for kind in ("processing", "done", "failed"):
            inbox.folder(kind).mkdir(parents=True)
        case = inbox.path / "C-11"
        case.mkdir()
        (case / "a.stl").write_bytes(tetra_stl_bytes(110))
        (case / "b.stl").write_bytes(tetra_stl_bytes(111))
        whole = Drop(inbox, case, "hot", True, models=(case / "a.stl", case / "b.stl"))
        b = _node(url, stores, "pc-b", inbox.path)
        claimed = drop_hash(whole)
        assert NodeRole(b).claim_drop(whole)
        with contextlib.suppress(Killed):
            Intake(b, [inbox], move=_killed_before_moving("b.stl")).take(whole)
        first, cut = b.list_jobs()
        assert (cut.state, cut.source_path.exists()) == (JobState.PROCESSING, False)

        a = _node(url, stores, "pc-a", inbox.path)
        rest = Drop(inbox, case, "hot", True, models=(case / "b.stl",))
        assert drop_hash(rest) != claimed  # new content, under a claim of its own
        with capture_logs() as logs:
            result = Intake(a, [inbox]).take(rest)

        assert (result.taken, result.rejected) == ((), ())
        assert [(j.id, j.state) for j in a.list_jobs()] == [
            (first.id, JobState.PROCESSING), (cut.id, JobState.PROCESSING)]
        assert cut.source_path.read_bytes() == tetra_stl_bytes(111)
        assert not case.exists() and not any(inbox.folder("failed").iterdir())
        assert [(e["job_key"], e["target"]) for e in logs
                if e["event"] == "cut_short_move_finished"] == [
            (cut.job_key, str(cut.source_path))]

        # pc-b's next life adopts its own jobs at its start and batches the case whole.
        again = _node(url, stores, "pc-b", inbox.path)
        resumed = _recovery(again, inbox.path).recover()
        assert sorted(j.id for j in resumed) == [first.id, cut.id]


class TestAFileDroppedAgainAfterItsCutJobFailed:
    """Only a job still waiting for its file is finished: one that failed "its file is gone"
    (the file was lost before anyone finished the move) leaves the same file, dropped again at
    the same place, to be a new drop."""

    def test_the_file_is_taken_as_a_new_job(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        dropped = inbox.path / "b.stl"
        dropped.write_bytes(tetra_stl_bytes(111))
        drop = Drop(inbox, dropped, "hot", False, models=(dropped,))
        with contextlib.suppress(Killed):
            Intake(store, [inbox], move=_killed_before_moving("b.stl")).take(drop)
        (cut,) = store.list_jobs()
        dropped.unlink()  # lost before any node finished the move
        store.transition(cut.id, JobState.FAILED, f"its file is gone (last known at "
                                                  f"{cut.source_path})")
        dropped.write_bytes(tetra_stl_bytes(111))

        (taken,) = Intake(store, [inbox]).take(drop).taken

        assert taken.id != cut.id and taken.source_path.read_bytes() == tetra_stl_bytes(111)
        assert store.get_job(cut.id).state is JobState.FAILED
        assert not cut.source_path.exists()

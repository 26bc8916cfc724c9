"""Two farm nodes taking two files of one content at the same moment (a real PostgreSQL store):
one of them is prepared, the other skipped as its duplicate (``duplicates: skip``).

A node writes a file's job (QUEUED) and then looks for an earlier job of its content; the two
are separate transactions. Two nodes taking twins from a shared inbox each wrote their job
before either looked, and each found the other's undecided job: both copies went to failed/
as duplicates of each other, and the content was never printed (seen in session 22 reading
what two nodes do with the farm kill loop's twin drops; the loop itself never hit these few
milliseconds). The window is played out without threads or timing: node A's duplicate check
runs inside node B's take, right before B's own check, so both jobs are written and neither
is decided when they look.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from preform_pipeline.hotfolder import Drop, Intake
from preform_pipeline.hotfolder.nodes import NodeRole
from preform_pipeline.hotfolder.testing import tetra_stl_bytes
from preform_pipeline.settings.hotfolder import InboxSettings
from preform_pipeline.store import Job, JobState, SqliteJobStore
from preform_pipeline.store.postgres import PostgresJobStore

_CONTENT = tetra_stl_bytes(11)


class ChecksAfterTheOther(Intake):
    """Node B's intake: right before its duplicate check, ``before_check`` runs (node A's
    check of its own twin)."""

    before_check: Callable[[], None] = staticmethod(lambda: None)

    def _duplicate_of(self, job: Job) -> Job | None:
        self.before_check()
        return super()._duplicate_of(job)


class LooksWhileTheTwinIsTaken(Intake):
    """Node A's intake: its job written, it lets node B take the twin, looks for duplicates
    when B is about to (inside B's take), and acts on what it saw once B's take is over."""

    def __init__(self, store: PostgresJobStore, inbox: InboxSettings,
                 other: ChecksAfterTheOther, twin: Drop) -> None:
        super().__init__(store, [inbox])
        self.other, self.twin = other, twin

    def _duplicate_of(self, job: Job) -> Job | None:
        seen: list[Job | None] = []
        look = super()._duplicate_of
        self.other.before_check = lambda: seen.append(look(job))
        self.other.take(self.twin)
        return seen[0]


def _dropped(inbox: InboxSettings, name: str) -> Drop:
    model = inbox.path / name
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(_CONTENT)
    return Drop(inbox, model, "hot", False, models=(model,))


class TestTwinsTakenByTwoNodesAtOnce:
    """Twin files taken by two nodes at the same moment: one goes on, one is skipped."""

    def test_one_twin_is_taken_and_the_other_skipped_as_its_duplicate(
        self, nodes: tuple[NodeRole, NodeRole], plain_store: PostgresJobStore, tmp_path: Path,
    ) -> None:
        inbox = InboxSettings(path=tmp_path / "inbox", recipe=tmp_path / "r.yaml")
        first, twin = _dropped(inbox, "bracket.stl"), _dropped(inbox, "bracket-copy.stl")
        node_a, node_b = nodes
        assert node_a.claim_drop(first) and node_b.claim_drop(twin)
        b = ChecksAfterTheOther(node_b.store, [inbox])

        taken = LooksWhileTheTwinIsTaken(node_a.store, inbox, b, twin).take(first).taken

        # The file whose job was written first goes on; its twin is the duplicate.
        failed = inbox.folder("failed")
        assert sorted(p.name for p in failed.glob("*.stl")) == ["bracket-copy.stl"]
        processing = sorted(p.name for p in inbox.folder("processing").rglob("*.stl"))
        assert processing == ["bracket.stl"]
        assert [j.original_name for j in taken] == ["bracket.stl"]
        note = (failed / "bracket-copy.stl.error.txt").read_text(encoding="utf-8")
        assert (f"the same content was already taken as job {taken[0].job_key} "
                "(bracket.stl, queued at that moment)") in note
        states = {j.original_name: j.state for j in plain_store.list_jobs()}
        assert states == {"bracket.stl": JobState.PROCESSING,
                          "bracket-copy.stl": JobState.DUPLICATE_SKIPPED}


class _KilledAfterWritingItsJob(Exception):
    pass


class KilledAfterWritingTheJob(Intake):
    """A daemon killed right after it wrote a file's job (QUEUED), before its duplicate check."""

    def _duplicate_of(self, job: Job) -> Job | None:
        raise _KilledAfterWritingItsJob


class TestAJobLeftQueuedAndARetryOfItsContent:
    """A file whose job a crash left queued, taken again while a retried job of the same
    content waits to be prepared: the retry is a user's decision, not a twin being taken,
    so the file is its duplicate and the content prints once."""

    def test_the_file_taken_again_is_skipped_as_the_retrys_duplicate(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        inbox = InboxSettings(path=tmp_path / "inbox", recipe=tmp_path / "r.yaml")
        first = _dropped(inbox, "bracket.stl")
        with pytest.raises(_KilledAfterWritingItsJob):
            KilledAfterWritingTheJob(store, [inbox]).take(first)
        intake = Intake(store, [inbox])
        (skipped,) = intake.take(_dropped(inbox, "bracket-copy.stl")).rejected
        retried = store.transition(skipped.id, JobState.QUEUED, "retried by user",
                                   expect=JobState.DUPLICATE_SKIPPED)

        # The daemon starts again and takes the first file up before it requeues the retry.
        result = intake.take(first)
        intake.requeue(retried)

        assert result.taken == ()
        failed = inbox.folder("failed")
        assert sorted(p.name for p in failed.glob("*.stl")) == ["bracket.stl"]
        note = (failed / "bracket.stl.error.txt").read_text(encoding="utf-8")
        assert f"the same content was already taken as job {retried.job_key}" in note
        processing = sorted(p.name for p in inbox.folder("processing").rglob("*.stl"))
        assert processing == ["bracket-copy.stl"]
        states = {j.original_name: j.state for j in store.list_jobs()}
        assert states == {"bracket.stl": JobState.DUPLICATE_SKIPPED,
                          "bracket-copy.stl": JobState.PROCESSING}

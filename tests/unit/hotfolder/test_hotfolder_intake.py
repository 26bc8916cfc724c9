"""Taking files: the store is written before every move; outcomes never overwrite."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from preform_pipeline.hotfolder.files import error_note
from preform_pipeline.hotfolder.intake import (
    HOTFOLDER_FIELD,
    Drop,
    Intake,
    JobPlace,
    place_of,
    template_fields,
)
from preform_pipeline.hotfolder.testing import tetra_stl_bytes
from preform_pipeline.settings.hotfolder import InboxSettings
from preform_pipeline.store import Job, JobState, SqliteJobStore


class WatchingStore:
    """The store seam, recording where the file was when each PROCESSING write happened."""

    def __init__(self, inner: SqliteJobStore) -> None:
        self.inner = inner
        self.seen: list[tuple[bool, bool]] = []

    def transition(self, job_id: int, to_state: JobState, reason: str, **kw: Any) -> Job:
        if to_state is JobState.PROCESSING:
            before = self.inner.get_job(job_id)
            target = Path(str(kw["source_path"]))
            self.seen.append((before.source_path.exists(), target.exists()))
        return self.inner.transition(job_id, to_state, reason, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def drop_file(inbox: InboxSettings, name: str, data: bytes, *, recipe: str = "r") -> Drop:
    path = inbox.path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return Drop(inbox, path, recipe, False, models=(path,), reasons={path: "test"})


def drop_case(inbox: InboxSettings, folder: str, files: dict[str, bytes]) -> Drop:
    root = inbox.path / folder
    root.mkdir(parents=True)
    models = []
    for name, data in files.items():
        (root / name).write_bytes(data)
        if name.endswith(".stl"):
            models.append(root / name)
    return Drop(inbox, root, "r", True, models=tuple(models))


class TestTakingAFile:
    """A complete file becomes a PROCESSING job in processing/<key>/, store first."""

    def test_the_file_moves_after_the_store_names_its_place(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        watching = WatchingStore(store)
        intake = Intake(watching, [inbox])
        result = intake.take(drop_file(inbox, "part.stl", tetra_stl_bytes()))
        (job,) = result.taken
        assert watching.seen == [(True, False)]  # written while the file was still in the inbox
        assert job.state is JobState.PROCESSING
        assert job.source_path == inbox.folder("processing") / job.job_key / "part.stl"
        assert job.source_path.read_bytes() == tetra_stl_bytes()
        assert not (inbox.path / "part.stl").exists()
        assert job.content_hash is not None and job.content_hash.startswith("sha256:")
        states = [t.to_state for t in store.history(job.id)]
        assert states == [JobState.QUEUED, JobState.PROCESSING]

    def test_bookkeeping_is_not_a_template_field(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        (job,) = Intake(store, [inbox]).take(drop_file(inbox, "p.stl", tetra_stl_bytes())).taken
        assert HOTFOLDER_FIELD in job.fields
        assert template_fields(job) == {}
        place = place_of(job)
        assert place is not None and place.rel == "p.stl"

    def test_a_job_left_by_a_crash_is_reused(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        drop = drop_file(inbox, "part.stl", tetra_stl_bytes())
        earlier = store.create_job(
            recipe="r", source_path=drop.root, state=JobState.QUEUED,
            fields={HOTFOLDER_FIELD: JobPlace(inbox.path, "part.stl").to_json()},
        )
        (job,) = Intake(store, [inbox]).take(drop).taken
        assert job.id == earlier.id
        assert len(store.list_jobs()) == 1


class TestCases:
    """A dropped folder is one case: sidecar values apply, sidecars travel along."""

    def test_a_case_is_taken_whole_with_its_values(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        drop = drop_case(inbox, "C-1042", {"upper.stl": tetra_stl_bytes(1),
                                           "lower.stl": tetra_stl_bytes(2),
                                           "lower.yaml": b"label_text: LOW\npriority: 4\n"})
        (inbox.path / "C-1042.json").write_text('{"printer": "Lab2"}', encoding="utf-8")
        result = Intake(store, [inbox]).take(drop)
        assert {j.original_name for j in result.taken} == {"upper.stl", "lower.stl"}
        assert result.case_id == "C-1042"
        assert result.priority == 4
        lower = next(j for j in result.taken if j.original_name == "lower.stl")
        assert template_fields(lower) == {"printer": "Lab2", "label_text": "LOW",
                                          "priority": "4"}
        assert (lower.source_path.parent / "lower.yaml").exists()
        assert not (inbox.path / "C-1042").exists()
        assert not (inbox.path / "C-1042.json").exists()

    def test_a_bad_sidecar_rejects_the_whole_case(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        drop = drop_case(inbox, "C-9", {"upper.stl": tetra_stl_bytes(1),
                                        "lower.stl": tetra_stl_bytes(2),
                                        "upper.yaml": b"priorty: 1\n"})
        result = Intake(store, [inbox]).take(drop)
        assert result.taken == ()
        assert {j.state for j in result.rejected} == {JobState.FAILED}
        failed = inbox.folder("failed") / "C-9"
        assert sorted(p.name for p in failed.iterdir()) == [
            "lower.stl", "lower.stl.error.txt", "upper.stl", "upper.stl.error.txt", "upper.yaml",
        ]
        note = (failed / "upper.stl.error.txt").read_text(encoding="utf-8")
        assert "unknown field 'priorty'" in note
        assert "did you mean 'priority'" in note
        assert "What to do:" in note


class TestDuplicates:
    """Content taken before is skipped (to failed/, saying why) or printed again."""

    def test_a_duplicate_is_skipped_with_a_note(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake = Intake(store, [inbox], duplicates="skip")
        (first,) = intake.take(drop_file(inbox, "a.stl", tetra_stl_bytes(5))).taken
        result = intake.take(drop_file(inbox, "b.stl", tetra_stl_bytes(5)))
        (skipped,) = result.rejected
        assert skipped.state is JobState.DUPLICATE_SKIPPED
        note = (inbox.folder("failed") / "b.stl.error.txt").read_text(encoding="utf-8")
        assert first.job_key in note and "jobs retry" in note

    def test_with_print_the_duplicate_is_taken_and_flagged(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake = Intake(store, [inbox], duplicates="print")
        (first,) = intake.take(drop_file(inbox, "a.stl", tetra_stl_bytes(5))).taken
        (again,) = intake.take(drop_file(inbox, "b.stl", tetra_stl_bytes(5))).taken
        place = place_of(again)
        assert place is not None and place.duplicate_of == first.job_key


class TestOthers:
    """Files that are not models go to failed/ with what to do."""

    def test_an_unsupported_file_fails_at_once(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        path = inbox.path / "scan.pdf"
        path.write_bytes(b"%PDF")
        result = Intake(store, [inbox]).take(Drop(inbox, path, "r", False, others=(path,)))
        (job,) = result.rejected
        assert job.state is JobState.FAILED
        note = (inbox.folder("failed") / "scan.pdf.error.txt").read_text(encoding="utf-8")
        # A PDF is no model in another format: nothing to convert, only to keep out.
        assert "not a model file" in note and "keep it out of folders of models" in note
        assert "convert" not in note

    def test_no_recipe_rejects_with_the_hint(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        drop = drop_file(inbox, "a.stl", tetra_stl_bytes())
        drop = Drop(inbox, drop.root, None, False, models=drop.models,
                    rejection="no recipe takes files dropped here",
                    rejection_hint="drop it into inbox/dental/")
        (job,) = Intake(store, [inbox]).take(drop).rejected
        note = (inbox.folder("failed") / "a.stl.error.txt").read_text(encoding="utf-8")
        assert "inbox/dental/" in note and job.state is JobState.FAILED


class TestSettling:
    """Outcomes move beside their report or note; clashes get suffixes; crashes are mended."""

    def take(self, store: SqliteJobStore, inbox: InboxSettings, seed: int = 0) -> tuple[
        Intake, Job
    ]:
        intake = Intake(store, [inbox])
        (job,) = intake.take(drop_file(inbox, "part.stl", tetra_stl_bytes(seed))).taken
        return intake, job

    def test_done_files_sit_beside_their_report_without_overwriting(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        (inbox.folder("done") / "part.stl").write_bytes(b"an older part")
        intake, job = self.take(store, inbox)
        job = store.transition(job.id, JobState.FAILED, "x")  # any outcome state will do
        job = intake.settle(job, ok=True, report='{"ok": true}\n')
        assert job.source_path == inbox.folder("done") / "part (2).stl"
        assert job.source_path.read_bytes() == tetra_stl_bytes(0)
        assert (inbox.folder("done") / "part.stl").read_bytes() == b"an older part"
        assert (inbox.folder("done") / "part (2).stl.report.json").exists()
        assert list(inbox.folder("processing").iterdir()) == []

    def test_settling_twice_moves_nothing(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake, job = self.take(store, inbox)
        job = intake.settle(job, ok=False, note="What failed: x\n")
        again = intake.settle(job, ok=False, note="What failed: x\n")
        assert again.source_path == job.source_path
        assert sorted(p.name for p in inbox.folder("failed").iterdir()) == [
            "part.stl", "part.stl.error.txt"]

    def test_a_move_cut_short_by_a_crash_is_finished(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake, job = self.take(store, inbox)
        processing_path = job.source_path
        place = place_of(job)
        assert place is not None
        target = inbox.folder("done") / "part.stl"
        # What settle() writes before it moves; then the "crash".
        fields = {HOTFOLDER_FIELD: JobPlace(place.inbox, place.rel, processing_path).to_json()}
        job = store.update_job(job.id, source_path=str(target), fields=fields)
        assert intake.finish_move(job)
        assert target.read_bytes() == tetra_stl_bytes(0)
        assert not processing_path.exists()

    def test_a_file_that_is_nowhere_is_reported_lost(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake, job = self.take(store, inbox)
        job.source_path.unlink()
        assert not intake.finish_move(job)

    def test_a_retried_job_goes_back_to_processing(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake, job = self.take(store, inbox)
        job = store.transition(job.id, JobState.FAILED, "bad")
        job = intake.settle(job, ok=False, note="What failed: bad\n")
        job = store.transition(job.id, JobState.QUEUED, "retried by a user")
        job = intake.requeue(job)
        assert job.state is JobState.PROCESSING
        assert job.source_path.read_bytes() == tetra_stl_bytes(0)
        assert not (inbox.folder("failed") / "part.stl").exists()

    def test_a_retry_removes_the_jobs_old_note_and_no_other(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        # Session 32: the old note stayed in failed/ with no file beside it, read as a
        # failure still to deal with while the file printed.
        intake, job = self.take(store, inbox)
        job = store.transition(job.id, JobState.FAILED, "bad")
        job = intake.settle(job, ok=False, note=error_note(
            what="bad", where="preparing", file=str(job.source_path), todo="fix it", job=job))
        note = inbox.folder("failed") / "part.stl.error.txt"
        assert note.exists()
        other = inbox.folder("failed") / "other.stl.error.txt"
        other.write_text(note.read_text(encoding="utf-8"), encoding="utf-8")
        with capture_logs() as logs:
            intake.requeue(store.transition(job.id, JobState.QUEUED, "retried by a user"))
        assert not note.exists()
        assert other.exists()  # beside no file this retry took back
        assert [e for e in logs if e["event"] == "old_note_removed"] == [{
            "event": "old_note_removed", "job_key": job.job_key, "path": str(note),
            "log_level": "info"}]

    def test_a_retried_cases_emptied_folder_in_failed_goes_with_its_notes(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake = Intake(store, [inbox])
        (job,) = intake.take(drop_file(inbox, "C-1/part.stl", tetra_stl_bytes(0))).taken
        job = store.transition(job.id, JobState.FAILED, "bad")
        job = intake.settle(job, ok=False, note=error_note(
            what="bad", where="preparing", file=str(job.source_path), todo="fix it", job=job))
        assert (inbox.folder("failed") / "C-1" / "part.stl.error.txt").exists()
        intake.requeue(store.transition(job.id, JobState.QUEUED, "retried by a user"))
        assert list(inbox.folder("failed").iterdir()) == []

    @pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("chattr") is None,
        reason="making a file no one may delete needs root and chattr",
    )
    def test_an_old_note_that_cannot_be_removed_is_logged_and_the_retry_goes_on(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        # Root deletes whatever a folder's mode says, so the branch had no test (session
        # 33): an immutable note is one even root may not unlink, in a folder it may write.
        intake = Intake(store, [inbox])
        (job,) = intake.take(drop_file(inbox, "C-1/part.stl", tetra_stl_bytes(0))).taken
        job = intake.settle(store.transition(job.id, JobState.FAILED, "bad"), ok=False,
                            note=error_note(what="bad", where="preparing",
                                            file=str(job.source_path), todo="fix it", job=job))
        note = inbox.folder("failed") / "C-1" / "part.stl.error.txt"
        made = subprocess.run(["chattr", "+i", str(note)], capture_output=True, text=True)
        if made.returncode != 0:  # a tmpfs, or a container without CAP_LINUX_IMMUTABLE
            pytest.skip("making a file no one may delete needs root and a file system that "
                        f"takes chattr +i: {made.stderr.strip()}")
        try:
            with capture_logs() as logs:
                job = intake.requeue(store.transition(job.id, JobState.QUEUED, "retried"))
            assert note.exists()
        finally:
            subprocess.run(["chattr", "-i", str(note)], check=True, capture_output=True)
        assert job.state is JobState.PROCESSING
        assert job.source_path.read_bytes() == tetra_stl_bytes(0)
        # The case's folder stays with the note it still holds.
        assert [p.name for p in (inbox.folder("failed") / "C-1").iterdir()] == [note.name]
        assert [e for e in logs if e["event"].startswith("old_note")] == [{
            "event": "old_note_not_removed", "job_key": job.job_key, "path": str(note),
            "error": f"[Errno 1] Operation not permitted: '{note}'", "log_level": "warning"}]

    def test_a_note_a_user_wrote_in_its_place_is_kept(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake, job = self.take(store, inbox)
        job = intake.settle(store.transition(job.id, JobState.FAILED, "bad"), ok=False,
                            note="What failed: bad\n")  # names no job: not this job's own
        note = inbox.folder("failed") / "part.stl.error.txt"
        # A report beside it naming the job does not make the note the job's own.
        report = inbox.folder("failed") / "part.stl.report.json"
        report.write_text(f'{{"job_key": "{job.job_key}"}}', encoding="utf-8")
        intake.requeue(store.transition(job.id, JobState.QUEUED, "retried by a user"))
        assert note.read_text(encoding="utf-8") == "What failed: bad\n"


class OvertakingStore:
    """The store seam: the first ``update_job`` (a settle's naming of the destination, its
    note already written) lets ``overtake`` run first, as another node's settle of the same
    job would in that gap (that node's sweep, while this one stalled)."""

    def __init__(self, inner: SqliteJobStore) -> None:
        self.inner = inner
        self.overtake: Any = None

    def update_job(self, job_id: int, **kw: Any) -> Job:
        overtake, self.overtake = self.overtake, None
        if overtake is not None:
            overtake()
        return self.inner.update_job(job_id, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class TestTwoSettlersOfOneJob:
    """Of two settles of one job at once, one moves its file, under its own name."""

    def test_the_overtaken_settle_moves_nothing_and_the_name_stays_free_of_suffixes(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        seam = OvertakingStore(store)
        stalled, other = Intake(seam, [inbox]), Intake(store, [inbox])  # type: ignore[arg-type]
        (job,) = stalled.take(drop_file(inbox, "part.stl", tetra_stl_bytes(0))).taken
        job = store.transition(job.id, JobState.FAILED, "x")  # any outcome state will do
        report = f'{{"job_key": "{job.job_key}"}}\n'
        settled: list[Job] = []
        seam.overtake = lambda: settled.append(
            other.settle(store.get_job(job.id), ok=True, report=report))
        late = stalled.settle(job, ok=True, report=report)
        done = inbox.folder("done")
        assert sorted(p.name for p in done.iterdir()) == ["part.stl", "part.stl.report.json"]
        assert (done / "part.stl").read_bytes() == tetra_stl_bytes(0)
        assert settled[0].source_path == late.source_path == done / "part.stl"
        assert store.get_job(job.id).source_path == done / "part.stl"
        assert list(inbox.folder("processing").iterdir()) == []

    def test_a_note_of_another_job_still_takes_its_name(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        (inbox.folder("done") / "part.stl.report.json").write_text('{"job_key": "PP-OTHER"}\n')
        intake = Intake(store, [inbox])
        (job,) = intake.take(drop_file(inbox, "part.stl", tetra_stl_bytes(0))).taken
        job = store.transition(job.id, JobState.FAILED, "x")
        job = intake.settle(job, ok=True, report=f'{{"job_key": "{job.job_key}"}}\n')
        assert job.source_path == inbox.folder("done") / "part (2).stl"


@pytest.mark.parametrize("path,expected", [("inbox/a.stl", True), ("inbox/done/a.stl", False),
                                           ("elsewhere/a.stl", False)])
def test_drop_area_is_the_inbox_without_outcome_folders(
    tmp_path: Path, store: SqliteJobStore, inbox: InboxSettings, path: str, expected: bool
) -> None:
    assert Intake(store, [inbox]).in_drop_area(tmp_path / path) is expected

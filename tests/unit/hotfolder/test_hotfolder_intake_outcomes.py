"""What taking, rejecting and settling leave behind: files, error notes, store rows, log events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from preform_pipeline.errors import StoreConflictError
from preform_pipeline.hotfolder import Drop, Intake
from preform_pipeline.hotfolder.files import HELD_TODO, MAX_NAME_BYTES, NAME_CUT_MARK, move_file
from preform_pipeline.hotfolder.intake import (
    HOTFOLDER_FIELD,
    JobPlace,
    place_of,
    template_fields,
)
from preform_pipeline.hotfolder.testing import tetra_stl_bytes
from preform_pipeline.settings.hotfolder import InboxSettings, OutcomeFolders
from preform_pipeline.store import Job, JobState, SqliteJobStore


def _file(inbox: InboxSettings, name: str, data: bytes = b"", *, seed: int = 0) -> Path:
    path = inbox.path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data or tetra_stl_bytes(seed))
    return path


def _single(inbox: InboxSettings, name: str, *, seed: int = 0, recipe: str | None = "r",
            reason: str | None = "stable for 2 s", **extra: Any) -> Drop:
    path = _file(inbox, name, seed=seed)
    reasons = {path: reason} if reason else {}
    return Drop(inbox, path, recipe, False, models=(path,), reasons=reasons, **extra)


def _case(inbox: InboxSettings, folder: str, files: dict[str, bytes | int],
          **extra: Any) -> Drop:
    root = inbox.path / folder
    root.mkdir(parents=True)
    models: list[Path] = []
    others: list[Path] = []
    for name, content in files.items():
        path = root / name
        path.write_bytes(tetra_stl_bytes(content) if isinstance(content, int) else content)
        if name.endswith(".stl"):
            models.append(path)
        elif not name.endswith((".yaml", ".json")) or name.startswith("stray"):
            others.append(path)
    return Drop(inbox, root, "r", True, models=tuple(models), others=tuple(others), **extra)


def _note(folder: Path, name: str) -> str:
    return (folder / f"{name}.error.txt").read_text(encoding="utf-8")


def _events(logs: Sequence[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


class _Told:
    """Records the jobs the daemon would be told about (``on_failed``)."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def __call__(self, job: Job) -> None:
        self.keys.append(job.job_key)


class TestRejectedDrops:
    """A drop that cannot be taken goes to failed/ whole, each file with a note that says why."""

    def test_a_folder_without_a_recipe_says_so_in_the_note_and_the_store(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        told = _Told()
        drop = _single(inbox, "a.stl", recipe=None)
        with capture_logs() as logs:
            (job,) = Intake(store, [inbox], on_failed=told).take(drop).rejected
        assert (job.state, job.recipe, job.case_id) == (JobState.FAILED, "(none)", None)
        failed = inbox.folder("failed")
        assert _note(failed, "a.stl") == (
            "What failed: no recipe for this folder\n"
            "Where: taking the file from the inbox\n"
            f"File: {inbox.path / 'a.stl'}\n"
            f"Job: {job.job_key} (see: preform-pipeline jobs show {job.job_key})\n"
            "What to do: drop the file into a folder that has a recipe\n")
        assert [t.reason for t in store.history(job.id)] == [
            "found in the inbox", "no recipe for this folder"]
        assert told.keys == [job.job_key]
        assert _events(logs, "drop_rejected") == [{
            "event": "drop_rejected", "root": str(inbox.path / "a.stl"),
            "reason": "no recipe for this folder", "files": 1, "log_level": "warning"}]

    def test_a_rejection_stands_even_when_a_recipe_is_known(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        drop = _single(inbox, "a.stl", rejection="the recipe cannot be read")
        result = Intake(store, [inbox]).take(drop)
        assert result.taken == () and result.rejected[0].recipe == "r"
        assert "What failed: the recipe cannot be read" in _note(inbox.folder("failed"), "a.stl")

    def test_a_bad_sidecar_of_a_single_file_says_to_drop_the_file_and_its_sidecar(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        drop = _single(inbox, "a.stl")
        (inbox.path / "a.yaml").write_text("priorty: 1\n", encoding="utf-8")
        (job,) = Intake(store, [inbox]).take(drop).rejected
        note = _note(inbox.folder("failed"), "a.stl")
        assert "What failed: bad sidecar: " in note
        assert "What to do: fix the sidecar (" in note
        assert note.endswith("), then drop the file and its sidecar into the inbox again\n")
        assert (inbox.folder("failed") / "a.yaml").exists()
        assert job.case_id is None

    def test_a_bad_case_goes_whole_with_both_folder_sidecars_and_its_other_files(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        told = _Told()
        drop = _case(inbox, "C-9", {"upper.stl": 1, "lower.stl": 2, "upper.yaml": b"priorty: 1\n",
                                    "C-9.yaml": b"case_id: C-9\n", "scan.pdf": b"%PDF"})
        (inbox.path / "C-9.json").write_text('{"case_id": "C-9"}', encoding="utf-8")
        result = Intake(store, [inbox], on_failed=told).take(drop)
        failed = inbox.folder("failed")
        assert sorted(p.relative_to(failed).as_posix() for p in failed.rglob("*")) == [
            "C-9", "C-9.json", "C-9/C-9.yaml", "C-9/lower.stl", "C-9/lower.stl.error.txt",
            "C-9/scan.pdf", "C-9/scan.pdf.error.txt", "C-9/upper.stl",
            "C-9/upper.stl.error.txt", "C-9/upper.yaml"]
        assert {j.case_id for j in result.rejected} == {"C-9"}
        assert {j.recipe for j in result.rejected} == {"r"}
        note = _note(failed / "C-9", "scan.pdf")
        assert "What failed: bad sidecar: " in note
        assert note.endswith("), then drop the whole case folder into the inbox again\n")
        assert len(told.keys) == 3
        assert not (inbox.path / "C-9").exists()


class TestARefusedSidecarIsNamedWhereItIsFound:
    """The note of a drop refused for its sidecar names the sidecar in failed/, where it went
    with the drop and where the person reading the note finds it, not its emptied inbox place."""

    def test_the_note_and_the_store_name_the_sidecar_in_failed(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        # Session 31 left it: the note named inbox/C-9/upper.yaml, gone from there.
        drop = _case(inbox, "C-9", {"upper.stl": 1, "lower.stl": 2,
                                    "upper.yaml": b"priorty: 1\n"})
        result = Intake(store, [inbox]).take(drop)
        moved = inbox.folder("failed") / "C-9" / "upper.yaml"
        why = f"bad sidecar: {moved}:1:1: $.priorty: unknown field 'priorty'"
        for name in ("upper.stl", "lower.stl"):
            assert _note(moved.parent, name).startswith(f"What failed: {why}; known fields: ")
        assert moved.read_text(encoding="utf-8") == "priorty: 1\n"
        assert {j.reason.split(";")[0] for j in result.rejected} == {why}

    def test_a_sidecar_under_a_free_name_is_named_by_it(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        first = _case(inbox, "C-9", {"upper.stl": 1, "C-9.yaml": b"priorty: 1\n"})
        Intake(store, [inbox]).take(first)
        again = _case(inbox, "C-9", {"upper.stl": 3, "C-9.yaml": b"priorty: 2\n"})
        Intake(store, [inbox]).take(again)
        folder = inbox.folder("failed") / "C-9"
        assert (folder / "C-9 (2).yaml").read_text(encoding="utf-8") == "priorty: 2\n"
        assert _note(folder, "upper (2).stl").startswith(
            f"What failed: bad sidecar: {folder / 'C-9 (2).yaml'}:1:1: ")

    def test_a_case_folder_with_two_sidecars_is_named_in_failed(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        drop = _case(inbox, "C-9", {"upper.stl": 1, "C-9.yaml": b"case_id: C-9\n"})
        (inbox.path / "C-9.json").write_text('{"case_id": "C-9"}', encoding="utf-8")
        Intake(store, [inbox]).take(drop)
        # Named by the folder the first was found in (the inbox), now the failed/ folder.
        failed = inbox.folder("failed")
        assert _note(failed / "C-9", "upper.stl").startswith(
            f"What failed: bad sidecar: {failed}: case folder C-9 has 2 sidecars ")


class TestFilesThatAreNotModels:
    """A stray sidecar or an unknown file type fails alone, saying what to do."""

    def test_a_sidecar_without_a_model_says_to_drop_them_together(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        drop = _case(inbox, "C-3", {"upper.stl": 1, "stray.yaml": b"priority: 1\n"})
        result = Intake(store, [inbox]).take(drop)
        assert len(result.taken) == 1
        note = _note(inbox.folder("failed") / "C-3", "stray.yaml")
        assert "What failed: sidecar stray.yaml has no model file or case folder of the same " \
            "name\n" in note
        assert ("What to do: drop the sidecar together with its model (write the sidecar "
                "first, or drop both in a case folder)\n") in note
        assert result.rejected[0].case_id == "C-3"

    def test_a_part_in_another_format_holds_its_case_whole(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        # A .step is a part that cannot be prepared: taken without it, the case printed
        # split (session 38). Nothing is taken; each file is in failed/ with its own note.
        drop = _case(inbox, "C-4", {"upper.stl": 1, "lower.step": b"ISO-10303-21;\n",
                                    "rx.pdf": b"%PDF", "C-4.yaml": b"case_id: P-4\n"})
        with capture_logs() as logs:
            result = Intake(store, [inbox]).take(drop)
        assert result.taken == ()
        failed = inbox.folder("failed") / "C-4"
        assert _note(failed, "lower.step").startswith(
            "What failed: .step is a CAD file, not a mesh (preform-pipeline prepares .stl, "
            ".obj and .3mf)\n")
        held = _note(failed, "upper.stl")
        # Named by the case id its sidecar gives.
        assert held.startswith("What failed: held with its case P-4: lower.step cannot be "
                               "prepared, and a case prints whole or not at all\n")
        assert f"What to do: {HELD_TODO}\n" in held
        assert _note(failed, "rx.pdf").startswith("What failed: .pdf is not a model file")
        assert sorted(p.name for p in failed.iterdir() if not p.name.endswith(".txt")) == [
            "C-4.yaml", "lower.step", "rx.pdf", "upper.stl"]  # its sidecar with it
        assert not (inbox.path / "C-4").exists()
        assert [j.original_name for j in result.rejected] == ["lower.step", "upper.stl",
                                                              "rx.pdf"]
        for job in result.rejected:  # each knows its case folder (Failed cases, retries)
            place = place_of(job)
            assert place is not None and place.case is not None and place.case.rel == "C-4"
        [event] = _events(logs, "case_held")
        assert {k: event[k] for k in ("root", "case_id", "bad", "held")} == {
            "root": str(inbox.path / "C-4"), "case_id": "P-4", "bad": ["lower.step"],
            "held": ["upper.stl"]}

    def test_a_file_without_an_extension_is_named_as_such(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        path = _file(inbox, "README", b"hello")
        Intake(store, [inbox]).take(Drop(inbox, path, "r", False, others=(path,)))
        note = _note(inbox.folder("failed"), "README")
        assert ("What failed: a file without extension is not a model file "
                "(preform-pipeline prepares .stl, .obj and .3mf)\n") in note
        assert ("What to do: it is not a model to print: keep it out of folders of models "
                "(only model files and their sidecars belong there)\n") in note

    def test_an_unknown_type_is_named_by_its_extension(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        path = _file(inbox, "part.step", b"ISO-10303")
        Intake(store, [inbox]).take(Drop(inbox, path, "r", False, others=(path,)))
        note = _note(inbox.folder("failed"), "part.step")
        assert "What failed: .step is a CAD file, not a mesh" in note
        assert ("What to do: export the part from the CAD software as STL, OBJ or 3MF, and "
                "give that file instead\n") in note


class TestTakenJobs:
    """A taken job carries its case, priority, values and why it counted as complete."""

    def test_a_case_job_carries_the_folder_as_case_and_no_priority_by_default(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        result = Intake(store, [inbox]).take(_case(inbox, "C-5", {"a.stl": 1, "b.stl": 2}))
        assert {(j.case_id, j.priority) for j in result.taken} == {("C-5", 0)}
        assert (result.case_id, result.priority) == ("C-5", 0)

    def test_a_single_file_has_no_case(self, store: SqliteJobStore, inbox: InboxSettings) -> None:
        result = Intake(store, [inbox]).take(_single(inbox, "a.stl"))
        assert (result.case_id, result.taken[0].case_id, result.priority) == (None, None, 0)

    def test_the_audit_trail_says_why_the_file_counted_as_complete(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake = Intake(store, [inbox])
        (job,) = intake.take(_single(inbox, "a.stl")).taken
        (other,) = intake.take(_single(inbox, "b.stl", seed=1, reason=None)).taken
        assert [t.reason for t in store.history(job.id)] == [
            "complete (stable for 2 s)", "taken into processing/"]
        assert store.history(other.id)[0].reason == "complete (taken)"

    def test_a_job_a_crash_left_discovered_is_queued_and_taken(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        drop = _single(inbox, "a.stl")
        left = store.create_job(
            recipe="r", source_path=drop.models[0], state=JobState.DISCOVERED,
            fields={HOTFOLDER_FIELD: JobPlace(inbox.path, "a.stl").to_json()})
        (job,) = Intake(store, [inbox]).take(drop).taken
        assert job.id == left.id
        assert [(t.to_state, t.reason) for t in store.history(job.id)][1:] == [
            (JobState.QUEUED, "complete (stable for 2 s)"),
            (JobState.PROCESSING, "taken into processing/")]

    def test_a_model_that_cannot_be_read_is_left_for_the_next_look(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        root = inbox.path / "C-7"
        (root / "odd.stl").mkdir(parents=True)  # a folder named like a model: reading fails
        good = _file(inbox, "C-7/good.stl")
        drop = Drop(inbox, root, "r", True, models=(root / "odd.stl", good))
        with capture_logs() as logs:
            result = Intake(store, [inbox]).take(drop)
        assert [j.original_name for j in result.taken] == ["good.stl"]
        (event,) = _events(logs, "file_unreadable")
        assert event["path"] == str(root / "odd.stl")
        assert "Is a directory" in event["error"]

    def test_a_recipes_own_sidecar_fields_are_read_from_case_and_model_sidecars(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        drop = _case(inbox, "C-8", {"upper.stl": 1, "lower.stl": 2,
                                    "C-8.yaml": b"shade: A2\n", "lower.yaml": b"shade: B1\n"})
        intake = Intake(store, [inbox],
                        extra_fields=lambda recipe: ("shade",) if recipe == "r" else ())
        result = intake.take(drop)
        shades = {j.original_name: template_fields(j)["shade"] for j in result.taken}
        assert shades == {"upper.stl": "A2", "lower.stl": "B1"}

    def test_the_case_sidecar_travels_with_the_first_model(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        drop = _case(inbox, "C-6", {"upper.stl": 1, "lower.stl": 2})
        (inbox.path / "C-6.json").write_text('{"priority": 2}', encoding="utf-8")
        first, second = Intake(store, [inbox]).take(drop).taken
        assert first.original_name == drop.models[0].name
        assert sorted(p.name for p in first.source_path.parent.iterdir()) == [
            "C-6.json", first.original_name]
        assert [p.name for p in second.source_path.parent.iterdir()] == [second.original_name]


class TestDuplicatesAtIntake:
    """A skipped copy is told about and noted; each copy in one case is judged on its own."""

    def test_a_skipped_copy_names_the_first_job_and_the_setting(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        told = _Told()
        intake = Intake(store, [inbox], on_failed=told)
        (first,) = intake.take(_single(inbox, "a.stl", seed=5)).taken
        (copy,) = intake.take(_single(inbox, "b.stl", seed=5)).rejected
        assert store.history(copy.id)[-1].reason == (
            f"same content as job {first.job_key} (processing when this copy was skipped)")
        assert _note(inbox.folder("failed"), "b.stl") == (
            f"What failed: the same content was already taken as job {first.job_key} (a.stl, "
            "processing at that moment); this copy was skipped (settings: hotfolders.duplicates: "
            "skip)\n"
            "Where: taking the file from the inbox\n"
            "File: b.stl\n"
            f"Job: {copy.job_key} (see: preform-pipeline jobs show {copy.job_key})\n"
            "What to do: nothing, if it was dropped twice by mistake. To print it again: "
            f"preform-pipeline jobs retry {copy.job_key}, or set hotfolders.duplicates: print\n")
        assert told.keys == [copy.job_key]

    def test_skipping_is_the_default(self, store: SqliteJobStore, inbox: InboxSettings) -> None:
        intake = Intake(store, [inbox])
        intake.take(_single(inbox, "a.stl", seed=5))
        assert intake.take(_single(inbox, "b.stl", seed=5)).rejected

    def test_a_case_with_a_copy_first_still_takes_its_new_model(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake = Intake(store, [inbox])
        intake.take(_single(inbox, "a.stl", seed=5))
        result = intake.take(_case(inbox, "C-2", {"copy.stl": 5, "new.stl": 6}))
        assert [j.original_name for j in result.taken] == ["new.stl"]
        assert [j.original_name for j in result.rejected] == ["copy.stl"]

    def test_a_copy_printed_again_is_logged_and_keeps_its_mark_when_settled(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake = Intake(store, [inbox], duplicates="print")
        (first,) = intake.take(_single(inbox, "a.stl", seed=5)).taken
        with capture_logs() as logs:
            (again,) = intake.take(_single(inbox, "b.stl", seed=5)).taken
        assert _events(logs, "duplicate_printed_again") == [{
            "event": "duplicate_printed_again", "job_key": again.job_key,
            "duplicate_of": first.job_key, "path": str(inbox.path / "b.stl"),
            "log_level": "warning"}]
        settled = intake.settle(store.transition(again.id, JobState.FAILED, "x"), ok=False)
        place = place_of(settled)
        assert place is not None and place.duplicate_of == first.job_key


class TestSettlingOutcomes:
    """Settling moves the file and its sidecars, logs where to, and survives a retry cycle."""

    def _taken_case(self, store: SqliteJobStore, inbox: InboxSettings) -> tuple[Intake, Job]:
        drop = _case(inbox, "C-1", {"upper.stl": 1, "upper.yaml": b"label_text: U\n"})
        (inbox.path / "C-1.json").write_text('{"priority": 1}', encoding="utf-8")
        intake = Intake(store, [inbox])
        (job,) = intake.take(drop).taken
        return intake, job

    def test_a_case_settles_with_its_sidecars_where_they_were_dropped(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake, job = self._taken_case(store, inbox)
        with capture_logs() as logs:
            job = intake.settle(job, ok=True, report="{}\n")
        done = inbox.folder("done")
        assert sorted(p.relative_to(done).as_posix() for p in done.rglob("*")) == [
            "C-1", "C-1.json", "C-1/upper.stl", "C-1/upper.stl.report.json", "C-1/upper.yaml"]
        assert list(inbox.folder("processing").iterdir()) == []
        assert _events(logs, "file_settled") == [{
            "event": "file_settled", "job_key": job.job_key, "state": "processing",
            "outcome": "done", "path": str(done / "C-1" / "upper.stl"), "log_level": "info"}]
        assert not _events(logs, "attachment_not_moved")
        (moved,) = _events(logs, "file_moved")
        assert moved == {"event": "file_moved", "job_key": job.job_key,
                         "source": str(inbox.folder("processing") / job.job_key / "upper.stl"),
                         "target": str(done / "C-1" / "upper.stl"), "log_level": "debug"}

    def test_a_sidecar_removed_meanwhile_does_not_stop_the_others(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake, job = self._taken_case(store, inbox)
        (job.source_path.parent / "C-1.json").unlink()
        with capture_logs() as logs:
            intake.settle(job, ok=False, note="What failed: x\n")
        failed = inbox.folder("failed")
        assert (failed / "C-1" / "upper.yaml").exists()
        assert not (failed / "C-1.json").exists()
        assert not _events(logs, "attachment_not_moved")
        assert _events(logs, "file_settled")[0]["outcome"] == "failed"

    def test_what_a_failure_owes_is_written_with_the_move_to_failed_and_only_then(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        drop = _case(inbox, "C-2", {"upper.stl": 1, "lower.stl": 2})
        owed: list[str] = []

        def failed_fields(job: Job) -> dict[str, Any]:
            owed.append(job.job_key)
            return {"_owed": job.reason}

        intake = Intake(store, [inbox], failed_fields=failed_fields)
        upper, lower = intake.take(drop).taken
        failed = intake.settle(store.transition(upper.id, JobState.FAILED, "x"), ok=False)
        done = intake.settle(lower, ok=True)
        assert owed == [upper.job_key]
        assert failed.fields["_owed"] == "x" and HOTFOLDER_FIELD in failed.fields
        assert store.get_job(upper.id).fields["_owed"] == "x"  # durable, with its place
        assert place_of(store.get_job(upper.id)) is not None
        assert "_owed" not in done.fields

    def test_a_job_another_settle_placed_meanwhile_is_left_to_it_without_a_note(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake, job = self._taken_case(store, inbox)
        elsewhere = inbox.folder("done") / "C-1" / "upper.stl"
        # Another node's settle named its place first; its move has not happened yet.
        store.update_job(job.id, expect_source=job.source_path, source_path=str(elsewhere))
        with capture_logs() as logs:
            settled = intake.settle(job, ok=False, note="What failed: x\n")
        assert settled.source_path == elsewhere
        assert job.source_path.exists()  # not moved by this settle
        # Nor its note left behind, nor the folder made for the note.
        assert list(inbox.folder("failed").rglob("*")) == []
        assert _events(logs, "file_settled_elsewhere") == [{
            "event": "file_settled_elsewhere", "job_key": job.job_key,
            "path": str(job.source_path), "log_level": "info"}]

    def test_a_failed_retried_and_redone_job_ends_in_done_with_its_sidecars(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake, job = self._taken_case(store, inbox)
        job = intake.settle(store.transition(job.id, JobState.FAILED, "x"), ok=False)
        job = intake.requeue(store.transition(job.id, JobState.QUEUED, "retry"))
        assert sorted(p.name for p in job.source_path.parent.iterdir()) == [
            "C-1.json", "upper.stl", "upper.yaml"]
        job = intake.settle(job, ok=True)
        done = inbox.folder("done")
        assert sorted(p.relative_to(done).as_posix() for p in done.rglob("*")) == [
            "C-1", "C-1.json", "C-1/upper.stl", "C-1/upper.yaml"]

    def test_a_settle_cut_short_by_a_crash_is_finished_by_settling_again(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake, job = self._taken_case(store, inbox)
        processing_file = job.source_path
        job = intake.settle(job, ok=True)
        # The crash: the store names done/ but the file never left processing/.
        processing_file.parent.mkdir(parents=True)
        job.source_path.rename(processing_file)
        sidecar = inbox.folder("done") / "C-1" / "upper.yaml"
        sidecar.rename(processing_file.parent / "upper.yaml")
        with capture_logs() as logs:
            again = intake.settle(job, ok=True)
        assert again.source_path.read_bytes() == tetra_stl_bytes(1)
        assert not processing_file.exists()
        assert sidecar.read_text(encoding="utf-8") == "label_text: U\n"
        (event,) = _events(logs, "move_completed")
        assert (event["job_key"], event["source"], event["target"]) == (
            job.job_key, str(processing_file), str(job.source_path))

    def test_finishing_a_move_that_is_done_changes_nothing(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake, job = self._taken_case(store, inbox)
        assert intake.finish_move(job) is True
        assert job.source_path.exists()

    def test_a_job_without_hot_folder_bookkeeping_is_reported_lost(
        self, store: SqliteJobStore, inbox: InboxSettings, tmp_path: Path
    ) -> None:
        job = store.create_job(recipe="r", source_path=tmp_path / "gone.stl",
                               state=JobState.QUEUED)
        with capture_logs() as logs:
            assert Intake(store, [inbox]).finish_move(job) is False
        assert _events(logs, "file_lost") == [{
            "event": "file_lost", "job_key": job.job_key, "path": str(tmp_path / "gone.stl"),
            "previous": None, "log_level": "error"}]

    def test_a_lost_file_names_where_it_was_last(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake, job = self._taken_case(store, inbox)
        place = place_of(job)
        assert place is not None and place.previous is not None
        job.source_path.unlink()
        with capture_logs() as logs:
            assert intake.finish_move(job) is False
        # Both places a user would look: where the store says it is, and where it was.
        assert _events(logs, "file_lost") == [{
            "event": "file_lost", "job_key": job.job_key, "path": str(job.source_path),
            "previous": str(place.previous), "log_level": "error"}]

    def test_a_retried_job_whose_file_is_gone_fails_saying_so(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake, job = self._taken_case(store, inbox)
        job = intake.settle(store.transition(job.id, JobState.FAILED, "x"), ok=False)
        job.source_path.unlink()
        job = intake.requeue(store.transition(job.id, JobState.QUEUED, "retry"))
        assert job.state is JobState.FAILED
        assert store.history(job.id)[-1].reason == "its file is gone; cannot retry"

    def test_a_job_in_another_inbox_no_longer_configured_uses_default_folders(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        _, job = self._taken_case(store, inbox)
        job = Intake(store, []).settle(job, ok=True)
        assert job.source_path == inbox.folder("done") / "C-1" / "upper.stl"
        assert job.source_path.exists()


class TestRetriesAndRaces:
    """A retry moves the right files, and one that lost a race with another change moves
    nothing."""

    def test_retrying_the_second_model_of_a_rejected_case_leaves_the_sidecars_alone(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        drop = _case(inbox, "C-4", {"upper.stl": 1, "lower.stl": 2, "upper.yaml": b"priorty: 1\n"})
        intake = Intake(store, [inbox])
        rejected = intake.take(drop).rejected
        second = next(j for j in rejected if j.original_name == drop.models[1].name)
        again = intake.requeue(store.transition(second.id, JobState.QUEUED, "retry"))
        assert [p.name for p in again.source_path.parent.iterdir()] == [second.original_name]
        assert (inbox.folder("failed") / "C-4" / "upper.yaml").exists()

    def test_a_retry_that_lost_a_race_with_cancel_moves_nothing(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake = Intake(store, [inbox])
        (job,) = intake.take(_single(inbox, "a.stl")).taken
        job = intake.settle(store.transition(job.id, JobState.FAILED, "x"), ok=False)
        stale = store.transition(job.id, JobState.QUEUED, "retry")
        store.transition(job.id, JobState.CANCELLED, "the user cancelled it meanwhile")
        with pytest.raises(StoreConflictError):
            intake.requeue(stale)
        assert stale.source_path.exists()
        assert store.get_job(job.id).state is JobState.CANCELLED

    def test_a_retry_of_a_lost_file_that_lost_a_race_changes_nothing(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake = Intake(store, [inbox])
        (job,) = intake.take(_single(inbox, "a.stl")).taken
        job = intake.settle(store.transition(job.id, JobState.FAILED, "x"), ok=False)
        job.source_path.unlink()
        stale = store.transition(job.id, JobState.QUEUED, "retry")
        store.transition(job.id, JobState.CANCELLED, "the user cancelled it meanwhile")
        with pytest.raises(StoreConflictError):
            intake.requeue(stale)
        assert store.get_job(job.id).state is JobState.CANCELLED

    def test_a_rejected_file_a_crash_left_queued_keeps_its_job(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        path = _file(inbox, "scan.pdf", b"%PDF")
        left = store.create_job(
            recipe="r", source_path=path, state=JobState.QUEUED,
            fields={HOTFOLDER_FIELD: JobPlace(inbox.path, "scan.pdf").to_json()})
        (job,) = Intake(store, [inbox]).take(Drop(inbox, path, "r", False, others=(path,))).rejected
        assert job.id == left.id and len(store.list_jobs()) == 1

    def test_a_rejected_file_is_recorded_as_queued_then_failed(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        path = _file(inbox, "scan.pdf", b"%PDF")
        (job,) = Intake(store, [inbox]).take(Drop(inbox, path, "r", False, others=(path,))).rejected
        assert [t.to_state for t in store.history(job.id)] == [JobState.QUEUED, JobState.FAILED]


class TestPlacesAndNames:
    """Where files go follows the inbox's folder names, and only true sidecars are read."""

    def test_custom_outcome_folders_are_used(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        inbox = InboxSettings(path=tmp_path / "in", recipe=tmp_path / "r.yaml",
                              folders=OutcomeFolders(processing="work", done="ok", failed="no"))
        intake = Intake(store, [inbox])
        (job,) = intake.take(_single(inbox, "a.stl")).taken
        assert job.source_path == tmp_path / "in" / "work" / job.job_key / "a.stl"
        assert intake.processing_path(job) == job.source_path
        assert intake.settle(job, ok=True).source_path == tmp_path / "in" / "ok" / "a.stl"

    def test_a_job_outside_the_hot_folder_is_prepared_beside_its_file(
        self, store: SqliteJobStore, inbox: InboxSettings, tmp_path: Path
    ) -> None:
        job = store.create_job(recipe="r", source_path=tmp_path / "run" / "m.stl",
                               state=JobState.PROCESSING)
        assert Intake(store, [inbox]).processing_path(job) == (
            tmp_path / "run" / job.job_key / "m.stl")

    def test_a_single_files_priority_comes_from_its_sidecar(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        drop = _single(inbox, "a.stl")
        (inbox.path / "a.yaml").write_text("priority: 3\n", encoding="utf-8")
        result = Intake(store, [inbox]).take(drop)
        assert (result.taken[0].priority, result.priority) == (3, 3)

    def test_a_file_named_after_the_models_full_name_is_not_its_sidecar(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        (inbox.path / "a.stl.yaml").write_text("priority: 3\n", encoding="utf-8")
        (taken,) = Intake(store, [inbox]).take(_single(inbox, "a.stl")).taken
        assert taken.priority == 0
        (inbox.path / "b.yaml").write_text("priorty: 1\n", encoding="utf-8")
        (inbox.path / "b.stl.json").write_text("{}", encoding="utf-8")
        Intake(store, [inbox]).take(_single(inbox, "b.stl", seed=2))
        assert (inbox.path / "a.stl.yaml").exists() and (inbox.path / "b.stl.json").exists()
        assert (inbox.folder("failed") / "b.yaml").exists()

    def test_a_queued_job_has_no_previous_place(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        job = store.create_job(
            recipe="r", source_path=inbox.path / "a.stl", state=JobState.QUEUED,
            fields={HOTFOLDER_FIELD: JobPlace(inbox.path, "a.stl").to_json()})
        place = place_of(job)
        assert place is not None and place.previous is None


class TestNothingToSettle:
    """Settling a job the hot folder does not know moves nothing and says so."""

    def test_a_job_without_bookkeeping_is_left_as_it_is(
        self, store: SqliteJobStore, inbox: InboxSettings, tmp_path: Path
    ) -> None:
        job = store.create_job(recipe="r", source_path=tmp_path / "m.stl",
                               state=JobState.PROCESSING)
        with capture_logs() as logs:
            assert Intake(store, [inbox]).settle(job, ok=True) == job
        assert _events(logs, "job_without_place") == [{
            "event": "job_without_place", "job_key": job.job_key,
            "path": str(tmp_path / "m.stl"), "log_level": "warning"}]


def _removed(intake: Intake, drop: Drop) -> Job:
    """The job of ``drop``'s one file, taken, its file removed from processing/ by a person
    and the job failed for it (as the batch that met it does)."""
    (job,) = intake.take(drop).taken
    job.source_path.unlink()
    return intake.store.transition(job.id, JobState.FAILED, "the file was removed")


class TestAFileRemovedFromProcessing:
    """A file a person removed from processing/ (before its plan, or between the plan and the
    import: ``model_gone``) settles as what is left of it: its sidecars go to the outcome
    folder, its processing/ folder goes, and it is said once (session 48's soak)."""

    def test_its_processing_folder_goes_and_the_removal_is_said(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake = Intake(store, [inbox])
        job = _removed(intake, _single(inbox, "a.stl"))
        with capture_logs() as logs:
            settled = intake.settle(job, ok=False, note="removed")
        assert list(inbox.folder("processing").iterdir()) == []
        assert list(inbox.folder("failed").iterdir()) == []  # no note beside no file
        assert settled.source_path == job.source_path  # its last place: `jobs show` says gone
        assert _events(logs, "file_missing") == []
        assert _events(logs, "file_removed") == [{
            "event": "file_removed", "job_key": job.job_key, "path": str(job.source_path),
            "state": "failed", "sidecars": 0, "log_level": "warning"}]

    def test_its_sidecars_go_to_the_outcome_folder_as_with_the_file(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        drop = _case(inbox, "C-1", {"upper.stl": 1, "upper.yaml": b"label_text: U\n"})
        intake = Intake(store, [inbox])
        (job,) = intake.take(drop).taken
        job.source_path.unlink()
        job = intake.settle(store.transition(job.id, JobState.FAILED, "removed"), ok=False)
        sidecar = inbox.folder("failed") / "C-1" / "upper.yaml"
        assert sidecar.read_text(encoding="utf-8") == "label_text: U\n"
        assert list(inbox.folder("processing").iterdir()) == []
        place = place_of(store.get_job(job.id))
        assert place is not None
        assert [a.at for a in place.attachments] == [str(sidecar)]

    def test_of_two_nodes_settling_it_at_once_one_moves_its_sidecars_and_says_so(
        self, store: SqliteJobStore, inbox: InboxSettings, tmp_path: Path
    ) -> None:
        """Two nodes on one store, each having read the job before the other settled it:
        the settling is a claim, so the second finds it settled elsewhere (before, both
        wrote, and ``file_removed`` was said twice)."""
        drop = _case(inbox, "C-1", {"upper.stl": 1, "upper.yaml": b"label_text: U\n"})
        job = _removed(Intake(store, [inbox]), drop)
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as other:
            seen_by_other = other.get_job(job.id)
            with capture_logs() as logs:
                Intake(store, [inbox]).settle(job, ok=False)
                Intake(other, [inbox]).settle(seen_by_other, ok=False)
        assert [e["event"] for e in logs if e["event"].startswith("file_")] == [
            "file_removed", "file_settled_elsewhere"]
        sidecar = inbox.folder("failed") / "C-1" / "upper.yaml"
        assert sidecar.read_text(encoding="utf-8") == "label_text: U\n"
        place = place_of(store.get_job(job.id))
        assert place is not None and [a.at for a in place.attachments] == [str(sidecar)]

    def test_a_settle_killed_after_its_claim_has_its_sidecars_moved_by_the_next(
        self, store: SqliteJobStore, inbox: InboxSettings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The claim (``moved``) is recorded before the sidecars move: a kill between the two
        left them in processing/, and every later settle returned at the claim, so they
        stayed there while the store named them in failed/ (review rv49-loose)."""
        drop = _case(inbox, "C-1", {"upper.stl": 1, "upper.yaml": b"label_text: U\n"})
        job = _removed(Intake(store, [inbox]), drop)

        class Killed(BaseException):
            pass

        def killed(*_: object) -> None:
            raise Killed

        with monkeypatch.context() as patch:
            patch.setattr(Intake, "_move_attachments", killed)
            with pytest.raises(Killed):
                Intake(store, [inbox]).settle(job, ok=False)
        claimed = store.get_job(job.id)
        Intake(store, [inbox]).settle(claimed, ok=False)
        sidecar = inbox.folder("failed") / "C-1" / "upper.yaml"
        assert sidecar.read_text(encoding="utf-8") == "label_text: U\n"
        assert list(inbox.folder("processing").iterdir()) == []

    def test_settled_once_it_is_not_settled_again(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake = Intake(store, [inbox])
        job = intake.settle(_removed(intake, _single(inbox, "a.stl")), ok=False)
        with capture_logs() as logs:
            assert intake.settle(job, ok=False) == job
        assert logs == []

    def test_a_file_renamed_in_its_processing_folder_stays_where_it_was_put(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        # Review rv48-regress: renamed, not removed, it is settled as removed, and its
        # processing/ folder goes only as far as it is empty: the renamed file is kept.
        # (A case's members each have a processing/<key>/ of their own.)
        intake = Intake(store, [inbox])
        (job,) = intake.take(_single(inbox, "a.stl")).taken
        renamed = job.source_path.with_name("a-old.stl")
        job.source_path.rename(renamed)
        with capture_logs() as logs:
            intake.settle(store.transition(job.id, JobState.FAILED, "renamed"), ok=False)
        assert renamed.read_bytes() == tetra_stl_bytes(0)
        assert [e["event"] for e in logs if e["event"].startswith("file_")] == ["file_removed"]

    def test_a_take_cut_short_is_left_for_the_recovery_to_finish(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake = Intake(store, [inbox])
        (job,) = intake.take(_single(inbox, "a.stl")).taken
        place = place_of(job)
        assert place is not None and place.previous is not None
        job.source_path.rename(place.previous)  # the store names processing/, the file never went
        with capture_logs() as logs:
            assert intake.settle(job, ok=True) == job
        assert place.previous.read_bytes() == tetra_stl_bytes(0)
        assert job.source_path.parent.is_dir()
        assert _events(logs, "file_missing") == [{
            "event": "file_missing", "job_key": job.job_key, "path": str(job.source_path),
            "log_level": "error"}]


class _Refusing:
    """A mover that refuses files of one name (as a locked file or a share would), else moves."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, source: Path, target: Path) -> None:
        if source.name == self.name:
            raise PermissionError(13, "Permission denied", str(source))
        move_file(source, target)


class TestASidecarThatCannotBeMoved:
    """A sidecar the file system refuses to move stays where it is, with a warning naming it;
    the model and the other sidecars settle all the same."""

    def test_the_warning_names_the_job_the_file_and_the_error(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        drop = _case(inbox, "C-1", {"upper.stl": 1, "upper.yaml": b"label_text: U\n"})
        (inbox.path / "C-1.json").write_text('{"priority": 1}', encoding="utf-8")
        (job,) = Intake(store, [inbox]).take(drop).taken
        stuck = job.source_path.parent / "upper.yaml"
        refusing = Intake(store, [inbox], move=_Refusing("upper.yaml"))
        with capture_logs() as logs:
            settled = refusing.settle(job, ok=True)
        done = inbox.folder("done")
        assert settled.source_path == done / "C-1" / "upper.stl"
        assert settled.source_path.exists() and (done / "C-1.json").exists()
        assert stuck.exists() and not (done / "C-1" / "upper.yaml").exists()
        assert _events(logs, "attachment_not_moved") == [{
            "event": "attachment_not_moved", "job_key": job.job_key, "path": str(stuck),
            "error": f"[Errno 13] Permission denied: '{stuck}'", "log_level": "warning"}]
        assert _events(logs, "file_settled")[0]["outcome"] == "done"


class TestNotesNameTheStoresJobsCommand:
    """An intake told how ``jobs`` reaches its store (``--store``) writes that into its notes."""

    JOBS = "preform-pipeline jobs --store /srv/pp/jobs.sqlite3"

    def test_a_refused_drop_names_it_in_the_job_line(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        drop = _single(inbox, "a.stl", recipe=None)
        (job,) = Intake(store, [inbox], jobs=self.JOBS).take(drop).rejected
        assert (f"Job: {job.job_key} (see: {self.JOBS} show {job.job_key})\n"
                in _note(inbox.folder("failed"), "a.stl"))

    def test_a_skipped_copy_names_it_in_the_job_line_and_the_retry(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        intake = Intake(store, [inbox], jobs=self.JOBS)
        intake.take(_single(inbox, "a.stl", seed=5))
        (copy,) = intake.take(_single(inbox, "b.stl", seed=5)).rejected
        note = _note(inbox.folder("failed"), "b.stl")
        assert f"Job: {copy.job_key} (see: {self.JOBS} show {copy.job_key})\n" in note
        assert f"To print it again: {self.JOBS} retry {copy.job_key}, or set" in note


class TestNamesTakenBeforeTheLimit:
    """A job for a name over MAX_NAME_BYTES (taken before such drops were left in the inbox)
    settles under a shorter name, its sidecar beside it, said once in the log."""

    def test_the_file_and_its_sidecar_settle_under_names_that_fit(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        long = "l" * 230
        (inbox.path / f"{long}.yaml").write_text("priority: 2\n", encoding="utf-8")
        (job,) = Intake(store, [inbox]).take(_single(inbox, f"{long}.stl")).taken
        job = store.transition(job.id, JobState.FAILED, "its batch crashed")
        with capture_logs() as logs:
            settled = Intake(store, [inbox]).settle(job, ok=False, note="note\n")
        short = "l" * (MAX_NAME_BYTES - 5) + NAME_CUT_MARK
        failed = inbox.folder("failed")
        assert settled.source_path == failed / f"{short}.stl"
        assert sorted(p.name for p in failed.iterdir()) == [
            f"{short}.stl", f"{short}.stl.error.txt", "l" * (MAX_NAME_BYTES - 6) + "~.yaml"]
        assert (failed / f"{short}.stl.error.txt").read_text(encoding="utf-8") == "note\n"
        (said,) = _events(logs, "file_settled_under_shorter_name")
        assert (said["job_key"], said["name"], said["path"], said["limit"]) == (
            job.job_key, f"{long}.stl", str(failed / f"{short}.stl"), MAX_NAME_BYTES)
        assert said["hint"] == "its report or note gives the name it had"

    def test_a_name_that_fits_keeps_its_name_and_says_nothing(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        name = "f" * (MAX_NAME_BYTES - 4) + ".stl"
        (job,) = Intake(store, [inbox]).take(_single(inbox, name)).taken
        job = store.transition(job.id, JobState.FAILED, "its batch crashed")
        with capture_logs() as logs:
            settled = Intake(store, [inbox]).settle(job, ok=False, note="note\n")
        assert settled.source_path == inbox.folder("failed") / name
        assert _events(logs, "file_settled_under_shorter_name") == []

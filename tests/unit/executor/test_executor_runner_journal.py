"""A build's journal of checkpoints: what it writes, where, and which files it keeps."""

from __future__ import annotations

import json
from pathlib import Path

from preform_pipeline.atomicfile import default_temporary
from preform_pipeline.executor.runner import BuildJournal


class TestBuildJournal:
    """The journal names the last checkpoint and the steps it holds; older checkpoint
    files go as newer ones are saved, and discarding leaves only the journal."""

    def test_a_new_journal_holds_no_checkpoint_and_writes_nothing(self, tmp_path: Path) -> None:
        journal = BuildJournal(tmp_path / "run-1" / "unit-001", "unit-001", "run-1")
        assert (journal.checkpoint, journal.checkpoint_step, journal.completed) == (
            None, None, frozenset())
        assert journal.path == tmp_path / "run-1" / "unit-001" / "journal.json"
        assert not (tmp_path / "run-1").exists()

    def test_a_saved_checkpoint_is_written_below_folders_that_did_not_exist(
        self, tmp_path: Path
    ) -> None:
        folder = tmp_path / ".checkpoints" / "run-1" / "unit-001"
        journal = BuildJournal(folder, "unit-001", "run-1")
        form = tmp_path / "after-auto_support.form"
        journal.checkpoint_saved(form, "auto_support", ["import_models", "create_scene"],
                                 ["box0", "bøx1"])
        assert (journal.checkpoint, journal.checkpoint_step) == (form, "auto_support")
        assert journal.completed == {"create_scene", "import_models"}
        written = journal.path.read_text(encoding="utf-8")
        assert json.loads(written) == {
            "build": "unit-001",
            "run_id": "run-1",
            "checkpoint": str(form),
            "checkpoint_step": "auto_support",
            "completed": ["create_scene", "import_models"],
            "model_names": ["box0", "bøx1"],
        }
        # indented, and no temporary file left beside it
        assert written.startswith('{\n  "build": "unit-001"')
        assert [p.name for p in folder.iterdir()] == ["journal.json"]

    def test_a_newer_checkpoint_replaces_the_older_file(self, tmp_path: Path) -> None:
        folder = tmp_path / "unit-001"
        journal = BuildJournal(folder, "unit-001", "run-1")
        first, second = folder / "after-auto_support.form", folder / "after-hollow.form"
        folder.mkdir()
        first.write_bytes(b"one")
        journal.checkpoint_saved(first, "auto_support", ["auto_support"], ["box0"])
        # the same file saved again is kept
        journal.checkpoint_saved(first, "auto_support", ["auto_support"], ["box0"])
        assert first.is_file()
        second.write_bytes(b"two")
        journal.checkpoint_saved(second, "hollow", ["auto_support", "hollow"], ["box0"])
        assert not first.exists() and second.is_file()
        assert json.loads(journal.path.read_text(encoding="utf-8"))["checkpoint"] == str(second)

    def test_discarding_removes_the_checkpoints_and_keeps_the_journal(
        self, tmp_path: Path
    ) -> None:
        folder = tmp_path / "unit-001"
        journal = BuildJournal(folder, "unit-001", "run-1")
        folder.mkdir()
        form = folder / "after-auto_support.form"
        form.write_bytes(b"scene")
        journal.checkpoint_saved(form, "auto_support", ["auto_support"], ["box0"])
        journal.discard_checkpoints()
        assert [p.name for p in folder.iterdir()] == ["journal.json"]
        # the journal still says which checkpoint was last (its file is gone)
        assert journal.checkpoint == form

    def test_a_temporary_file_left_by_a_crash_is_overwritten_whole(
        self, tmp_path: Path
    ) -> None:
        folder = tmp_path / "unit-001"
        folder.mkdir()
        journal = BuildJournal(folder, "unit-001", "run-1")
        left = default_temporary(folder / "journal.json")
        left.write_text("#" * 4096, encoding="utf-8")

        journal.checkpoint_saved(folder / "a.form", "auto_support", ["auto_support"], ["box0"])

        written = journal.path.read_bytes()
        assert json.loads(written)["checkpoint_step"] == "auto_support"
        # the journal's own text, none of the leftover's bytes after it
        assert b"#" not in written and written.rstrip().endswith(b"}")
        assert [p.name for p in folder.iterdir()] == ["journal.json"]

"""A build's checkpoint bookkeeping (paths, journal text, files removed) and step context."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from executor_support import (
    STEP_LIMIT_S,
    FakePool,
    SimFarm,
    capture_bound_logs,
    iter_events,
    plan_for,
    write_box,
    write_recipe,
)
from structlog.contextvars import bound_contextvars, get_contextvars

from preform_pipeline.executor import BuildStatus, NullReporter, RunOptions, run_plan
from preform_pipeline.executor.runner import BuildJournal, _Bound, _indented_json

STEPS = "steps:\n  - auto_support\n  - auto_layout\n  - save_form\n"


class TestJournalText:
    """The journal is written as json.dumps(indent=2) writes it, whatever it holds."""

    @pytest.mark.parametrize(
        "data",
        [
            {"build": "unit-001", "run_id": "run-1", "checkpoint": None,
             "checkpoint_step": None, "completed": [], "model_names": []},
            {"build": "unit-001", "run_id": "run-1", "checkpoint": "/out/a b/after.form",
             "checkpoint_step": "auto_support", "completed": ["create_scene", "import_models"],
             "model_names": ["box0", "bøx1", 'C-1 "upper"\\lower\n', "漢"]},
            {},
            {"completed": [1, 2]},
            {"build": "b", "nested": {"a": [None]}},
            {"flag": True, "count": 3, "ratio": 0.5},
        ],
        ids=["new", "saved", "empty", "numbers in a list", "nested", "other values"],
    )
    def test_the_text_is_json_dumps_with_an_indent_of_two(self, data: dict[str, Any]) -> None:
        assert _indented_json(data) == json.dumps(data, indent=2, default=str)

    def test_a_value_json_cannot_encode_is_written_as_its_text(self, tmp_path: Path) -> None:
        assert _indented_json({"where": tmp_path}) == json.dumps({"where": str(tmp_path)},
                                                                  indent=2)


class TestCheckpointFiles:
    """A checkpoint goes in the build's folder, made once; discarding removes every .form
    there, named by the journal or not, and nothing else."""

    def test_the_checkpoint_path_is_in_the_folder_made_for_it(self, tmp_path: Path) -> None:
        folder = tmp_path / ".checkpoints" / "run-1" / "unit-001"
        journal = BuildJournal(folder, "unit-001", "run-1")

        path = journal.checkpoint_path("auto support/1")

        assert path == folder / "after-auto support_1.form"
        assert folder.is_dir() and list(folder.iterdir()) == []

    def test_a_folder_that_exists_already_is_used(self, tmp_path: Path) -> None:
        folder = tmp_path / "unit-001"
        folder.mkdir()
        (folder / "note.txt").write_text("kept", encoding="utf-8")
        journal = BuildJournal(folder, "unit-001", "run-1")

        path = journal.checkpoint_path("hollow")
        journal.checkpoint_saved(path, "hollow", ["hollow"], ["box0"])

        assert sorted(p.name for p in folder.iterdir()) == ["journal.json", "note.txt"]

    def test_discarding_removes_every_form_file_and_keeps_the_rest(self, tmp_path: Path) -> None:
        folder = tmp_path / "unit-001"
        journal = BuildJournal(folder, "unit-001", "run-1")
        saved = journal.checkpoint_path("auto_support")
        saved.write_bytes(b"scene")
        journal.checkpoint_saved(saved, "auto_support", ["auto_support"], ["box0"])
        # A save that failed after the server wrote its file, and a hidden one.
        for name in ("after-hollow.form", ".after-x.form", "after.form.txt", "form"):
            (folder / name).write_bytes(b"x")

        journal.discard_checkpoints()

        assert sorted(p.name for p in folder.iterdir()) == [
            "after.form.txt", "form", "journal.json"]

    def test_discarding_without_a_folder_does_nothing(self, tmp_path: Path) -> None:
        journal = BuildJournal(tmp_path / "never-made", "unit-001", "run-1")

        journal.discard_checkpoints()

        assert not (tmp_path / "never-made").exists()


class TestCheckpointBelowALink:
    """An output folder reached through a link: the server is sent the checkpoint's real
    path, as when every checkpoint path was resolved whole."""

    def test_the_checkpoint_saved_is_the_resolved_path(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        real = tmp_path / "real-out"
        real.mkdir()
        (tmp_path / "out").symlink_to(real, target_is_directory=True)
        farm.add()
        plan = plan_for(write_recipe(tmp_path, STEPS),
                        [write_box(tmp_path / "m", f"box{i}", 10, 10, 10) for i in range(2)])
        with capture_bound_logs() as logs:
            result = run_plan(
                plan, FakePool([s.url for s in farm.servers]),
                options=RunOptions(output_root=tmp_path / "out", run_id="run-1",
                                   step_timeout_s=STEP_LIMIT_S, keep_checkpoints=True),
                reporter=NullReporter(),
            )

        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        (saved,) = iter_events(logs, "checkpoint_saved")
        expected = real / ".checkpoints" / "run-1" / "unit-001" / "after-auto_support.form"
        assert saved["checkpoint"] == str(expected)
        assert expected.is_file()


class TestStepContext:
    """A step's name is in its events' context while it runs and gone after, as
    ``bound_contextvars`` leaves it: on an error too, and an outer value comes back."""

    def test_the_step_is_bound_inside_and_the_outer_context_restored_after(self) -> None:
        with bound_contextvars(build="unit-001", step="outer"):
            with _Bound(step="auto_support"):
                inside = get_contextvars()
            after = get_contextvars()
        assert inside == {"build": "unit-001", "step": "auto_support"}
        assert after == {"build": "unit-001", "step": "outer"}
        assert get_contextvars() == {}

    def test_an_error_inside_unbinds_the_step(self) -> None:
        with pytest.raises(KeyError), _Bound(step="auto_layout"):
            assert get_contextvars() == {"step": "auto_layout"}
            raise KeyError("x")
        assert get_contextvars() == {}

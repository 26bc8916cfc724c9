"""A checkpoint that is gone when the next one replaces it does not fail the build: removing
the older file is housekeeping, and a file someone (or a cleanup) already removed is the
state the journal wanted anyway."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from test_executor_steps_requests import ReceivingEngine, _serve

from preform_pipeline.executor import BuildStatus
from tests.unit.executor.executor_support import (
    FakePool,
    SimFarm,
    capture_bound_logs,
    iter_events,
    plan_for,
    run,
    write_box,
    write_recipe,
)

__all__: list[str] = []

STEPS = "steps:\n  - auto_support\n  - auto_layout\n  - save_form\n"


class FirstCheckpointRemovedEngine(ReceivingEngine):
    """A receiving engine that removes the first checkpoint it writes as soon as it has
    written it: the file is gone by the time the runner saves the next one."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.removed: list[Path] = []

    def after(self, operation_id: str, params: dict[str, str], body: Any, answer: Any) -> None:
        if operation_id != "save_form_file" or self.removed:
            return
        written = Path(body["file"])
        if written.name.startswith("after-"):
            written.unlink()
            self.removed.append(written)


class TestCheckpointGoneBeforeTheNext:
    """The build goes on when its older checkpoint is already gone, and the journal names
    the newer one."""

    def test_the_build_succeeds_and_the_journal_names_the_newer_checkpoint(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        engine = FirstCheckpointRemovedEngine(scene_cache_size=100, fleet_dir=farm.fleet_dir,
                                              work_dir=farm.folder / "work-removing")
        _serve(farm, engine)
        boxes = [write_box(tmp_path / "m", f"box{i}", 10, 10, 10) for i in range(2)]
        with capture_bound_logs() as logs:
            result = run(plan_for(write_recipe(tmp_path, STEPS), boxes),
                         FakePool([s.url for s in farm.servers]), tmp_path / "out",
                         run_id="run-1", keep_checkpoints=True,
                         checkpoint_kinds=frozenset({"auto_support", "auto_layout"}))
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert [a.server for a in outcome.attempts] == ["server-1"]
        folder = tmp_path / "out" / ".checkpoints" / "run-1" / "unit-001"
        assert [p.name for p in engine.removed] == ["after-auto_support.form"]
        assert [e["after_step"] for e in iter_events(logs, "checkpoint_saved")] == [
            "auto_support", "auto_layout"]
        journal = json.loads((folder / "journal.json").read_text(encoding="utf-8"))
        assert Path(journal["checkpoint"]).name == "after-auto_layout.form"
        assert journal["checkpoint_step"] == "auto_layout"
        assert sorted(p.name for p in folder.glob("*.form")) == ["after-auto_layout.form"]
        assert [p.name for p in outcome.outputs] == ["unit-001.form"]

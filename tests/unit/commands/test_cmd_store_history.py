"""A store that has forgotten an output folder's prints: which earlier reports prove it."""

from __future__ import annotations

import json
from pathlib import Path

from preform_pipeline.commands._store_history import earlier_prints
from preform_pipeline.store import SqliteJobStore


def _report(root: Path, run_id: str, *, simulated: bool, dry_run: bool = False,
            recipe: str = "nightly") -> None:
    path = root / "reports" / f"{run_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "run_id": run_id, "recipe": recipe, "simulated": simulated, "dry_run": dry_run,
        "builds": [{"job_key": f"PP-{run_id[-6:].upper()}"}],
    }), encoding="utf-8")


class TestEarlierPrints:
    """Only a report of the same recipe and kind, not a dry run, proves earlier prints."""

    def test_the_newest_report_of_real_prints_is_found(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        _report(tmp_path, "20261201-020000-aaaaaa", simulated=False)
        _report(tmp_path, "20261202-020000-bbbbbb", simulated=False)
        found = earlier_prints(tmp_path, store, recipe="nightly", simulated=False)
        assert found is not None
        assert (found.run_id, found.job_keys) == ("20261202-020000-bbbbbb", ("PP-BBBBBB",))

    def test_a_rehearsal_does_not_hold_up_the_first_real_run(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        _report(tmp_path, "20261201-020000-aaaaaa", simulated=True)
        assert earlier_prints(tmp_path, store, recipe="nightly", simulated=False) is None

    def test_a_dry_run_or_another_recipe_proves_nothing(
        self, tmp_path: Path, store: SqliteJobStore
    ) -> None:
        _report(tmp_path, "20261201-020000-aaaaaa", simulated=False, dry_run=True)
        _report(tmp_path, "20261202-020000-bbbbbb", simulated=False, recipe="other")
        assert earlier_prints(tmp_path, store, recipe="nightly", simulated=False) is None

"""Warnings the server gives by model id reach the report naming the model file instead."""

from __future__ import annotations

import re
from pathlib import Path

from executor_support import FakePool, SimFarm, plan_for, run, write_box, write_recipe

STEPS = """\
steps:
  - hollow:
      wall_thickness_mm: 2
"""
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class TestHollowWarning:
    """A model too thin to hollow is named by its file, not by the server's id."""

    def test_the_warning_names_the_file(self, tmp_path: Path, farm: SimFarm) -> None:
        thin = write_box(tmp_path / "models", "thin_plate", 40, 40, 3)
        thick = write_box(tmp_path / "models", "block", 30, 30, 30)
        plan = plan_for(write_recipe(tmp_path, STEPS), [thin, thick])
        farm.add()
        result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out",
                     dry_run=True)
        (outcome,) = result.outcomes
        assert outcome.ok, outcome.reason
        hollow = [w for w in outcome.warnings if "hollow" in w.lower()]
        assert len(hollow) == 1, outcome.warnings
        assert "thin_plate.stl" in hollow[0]
        assert not _UUID.search(hollow[0]), hollow[0]

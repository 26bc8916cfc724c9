"""A model file removed after the run planned it (a person tidying a shared folder while
cron's run works) leaves its build with its case; the build's other cases still print.

Session 48's trial: one such file failed a build of six with the server's
``importModel refused: FILE_NOT_FOUND``, and the other five printed a cron minute later.
"""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from preform_pipeline.executor import BuildStatus
from preform_pipeline.executor.steps import GONE_REASON
from preform_pipeline.simulator.formfile import load_form
from tests.unit.executor.executor_support import (
    FakePool,
    SimFarm,
    plan_for,
    run,
    write_box,
    write_recipe,
)

STEPS = """\
on_model_failure: {policy}
steps:
  - auto_layout
  - save_form
"""


def _planned(tmp_path: Path, names: list[str], policy: str = "drop_case"):  # type: ignore[no-untyped-def]
    models = [write_box(tmp_path / "share", name, 20, 15, 10) for name in names]
    return plan_for(write_recipe(tmp_path, STEPS.format(policy=policy)), models)


class TestAFileRemovedAfterThePlan:
    """Its case leaves the build, said with what happened; the rest is prepared."""

    def test_the_other_models_are_prepared_without_it(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        plan = _planned(tmp_path, ["bracket", "knob", "spacer"])
        (tmp_path / "share" / "knob.stl").unlink()
        farm.add()
        told: list[tuple[Path, str]] = []
        with capture_logs() as events:
            result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out",
                         on_model_dropped=lambda _build, path, why: told.append((path, why)))
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        reason = f"model knob.stl: step import_models: {GONE_REASON}"
        assert [(Path(p).name, why) for p, why in outcome.dropped] == [("knob.stl", reason)]
        assert [(p.name, why) for p, why in told] == [("knob.stl", reason)]
        (form,) = [p for p in outcome.outputs if p.suffix == ".form"]
        assert sorted(m.name for m in load_form(form, "check").models.values()) == [
            "bracket", "spacer"]
        gone = [e for e in events if e["event"] == "model_gone"]
        assert [(Path(e["model"]).name, e["models"], e["left"]) for e in gone] == [
            ("knob.stl", 1, 2)]

    def test_a_build_of_that_file_alone_fails_as_before(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        plan = _planned(tmp_path, ["knob"])
        (tmp_path / "share" / "knob.stl").unlink()
        farm.add()
        result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out",
                     max_build_attempts=1)
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.FAILED
        assert "FILE_NOT_FOUND" in (outcome.reason or "")

    def test_fail_build_fails_the_build(self, tmp_path: Path, farm: SimFarm) -> None:
        plan = _planned(tmp_path, ["bracket", "knob"], policy="fail_build")
        (tmp_path / "share" / "knob.stl").unlink()
        farm.add()
        result = run(plan, FakePool([s.url for s in farm.servers]), tmp_path / "out",
                     max_build_attempts=1)
        (outcome,) = result.outcomes
        assert outcome.status is BuildStatus.FAILED
        assert outcome.dropped == ()

"""Preflight over builds of several models, the estimate's limits and figures, and the verify
step's status: what the user reads in the outcome (status, reason, figures) and what the
server was asked."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from test_executor_blocking_steps import _polled
from test_executor_steps_preflight import FUSE_HEAD
from test_executor_steps_requests import ReceivingEngine
from test_executor_steps_requests import engine as engine  # the fixture

from preform_pipeline.executor import BuildOutcome, BuildStatus, RunResult
from preform_pipeline.verify.tracking import PrintTracking
from tests.unit.executor.executor_support import (
    HANG_LIMIT_S,
    FakePool,
    ScriptedFaults,
    SimFarm,
    plan_for,
    run,
    write_box,
    write_recipe,
)


def _run(
    tmp_path: Path, farm: SimFarm, body: str, models: list[Path], head: str | None = None,
    **options: Any,
) -> BuildOutcome:
    """Run ``models`` as one build of the recipe ``body`` on the farm's servers."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    recipe = write_recipe(tmp_path, body, **({"head": head} if head else {}))
    if not farm.servers:
        farm.add()
    result: RunResult = run(plan_for(recipe, models), FakePool([s.url for s in farm.servers]),
                            tmp_path / "out", **options)
    (outcome,) = result.outcomes
    return outcome


def _boxes(tmp_path: Path, *names: str) -> list[Path]:
    return [write_box(tmp_path / "m", name, 20, 20, 10) for name in names]


class TestPreflightPerModel:
    """Label text is checked with each model's own fields, and the form's output path like
    the screenshot's: a field that only some models fill, or no model, fails the build
    before any request."""

    def test_label_text_of_fields_that_differ_between_models_passes(
        self, tmp_path: Path, farm: SimFarm, engine: ReceivingEngine
    ) -> None:
        outcome = _run(
            tmp_path, farm,
            "steps:\n  - auto_layout\n  - label:\n      text: \"{stem}\"\n      font_size_mm: 3\n"
            "      depth_mm: 0.5\n      placement:\n        face: front\n",
            _boxes(tmp_path, "left", "right"),
        )
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert sorted(body["label"] for body in engine.bodies("label_part")) == [
            "left", "right"
        ]

    def test_label_text_one_model_cannot_fill_fails_before_any_request(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        case = tmp_path / "cases" / "C-7"
        inside = write_box(case, "crown", 20, 20, 10)
        alone = write_box(tmp_path / "m", "alone", 20, 20, 10)
        outcome = _run(
            tmp_path, farm,
            "steps:\n  - auto_layout\n  - label:\n      text: \"{case_id}\"\n"
            "      font_size_mm: 3\n      depth_mm: 0.5\n      placement:\n        face: front\n",
            [case, alone],
        )
        assert (inside.name, outcome.status, outcome.attempts) == (
            "crown.stl", BuildStatus.FAILED, ()
        )
        assert "no value for field {case_id}" in (outcome.reason or "")
        assert farm.faults[0].seen == []

    def test_an_unfillable_form_path_fails_before_any_request(
        self, tmp_path: Path, farm: SimFarm
    ) -> None:
        outcome = _run(
            tmp_path, farm,
            "steps:\n  - save_form\noutputs:\n  form: \"{case_id}.form\"\n"
            "batching:\n  max_models_per_build: 1\n",
            _boxes(tmp_path, "box"),
        )
        assert (outcome.status, outcome.attempts) == (BuildStatus.FAILED, ())
        assert "no value for field {case_id}" in (outcome.reason or "")
        assert farm.faults[0].seen == []


class TestEstimateLimits:
    """The estimate's figures reach the outcome as the server gave them; a limit is exceeded
    only above it, and every exceeded limit is named in the reason."""

    def test_figures_and_limits_at_and_over_the_estimate(
        self, tmp_path: Path, farm: SimFarm, engine: ReceivingEngine
    ) -> None:
        models = _boxes(tmp_path, "box")
        first = _run(tmp_path, farm, "steps:\n  - estimate\n", models)
        assert first.status is BuildStatus.SUCCEEDED, first.reason
        (answer,) = engine.answers("estimate_print_time")
        time_s = answer["total_print_time_s"]
        volume = engine.answers("get_scene")[-1]["material_usage"]["volume_ml"]
        assert (first.print_time_s, first.material_ml, first.sls) == (time_s, volume, None)

        # Limits equal to the estimate pass.
        at = _run(tmp_path / "at", farm,
                  f"steps:\n  - estimate:\n      max_print_time_s: {time_s!r}\n"
                  f"      max_material_ml: {volume!r}\n", models)
        assert at.status is BuildStatus.SUCCEEDED, at.reason

        # Limits just below it fail the build, both named.
        time_limit, volume_limit = time_s - 0.5, round(volume * 0.5, 3)
        over = _run(tmp_path / "over", farm,
                    f"steps:\n  - estimate:\n      max_print_time_s: {time_limit!r}\n"
                    f"      max_material_ml: {volume_limit!r}\n", models)
        assert over.status is BuildStatus.FAILED
        assert over.reason == (
            f"estimated print time {time_s:.0f} s exceeds {time_limit:g} s; "
            f"material {volume:.1f} ml exceeds {volume_limit:g} ml"
        )

    @pytest.mark.parametrize("which", ["max_print_time_s", "max_material_ml"])
    def test_one_limit_exceeded_is_named_alone(
        self, tmp_path: Path, farm: SimFarm, which: str
    ) -> None:
        outcome = _run(tmp_path, farm, f"steps:\n  - estimate:\n      {which}: 0.001\n",
                       _boxes(tmp_path, "box"))
        assert outcome.status is BuildStatus.FAILED
        reason = outcome.reason or ""
        assert ";" not in reason
        start = "estimated print time " if which == "max_print_time_s" else "material "
        assert reason.startswith(start) and reason.endswith(" exceeds 0.001 " + (
            "s" if which == "max_print_time_s" else "ml"))


class TestSlsFigures:
    """A powder build's figures are the server's, with the packing density by volume worked
    out from them and the material counted as the sintered powder."""

    def test_the_outcome_carries_the_servers_powder_and_cooling_figures(
        self, tmp_path: Path, farm: SimFarm, engine: ReceivingEngine
    ) -> None:
        outcome = _run(tmp_path, farm, "steps:\n  - auto_pack\n  - estimate\n",
                       _boxes(tmp_path, "a", "b"), head=FUSE_HEAD)
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        (times,) = engine.answers("estimate_print_time")
        usage = engine.answers("get_scene")[-1]["material_usage"]
        assert outcome.sls == {
            "packing_density": usage["total_sintered_powder_ml"] / usage["total_powder_ml"],
            "mass_packing_density": usage["mass_packing_density"],
            "total_powder_ml": usage["total_powder_ml"],
            "total_powder_kg": usage["total_powder_kg"],
            "sintered_powder_ml": usage["total_sintered_powder_ml"],
            "sintered_powder_kg": usage["total_sintered_powder_kg"],
            "print_time_s": times["total_print_time_s"],
            "cool_to_removal_s": times["cool_to_removal_time_s"],
            "cool_to_room_temperature_s": times["additional_cool_to_room_temp_time_s"],
        }
        assert 0 < outcome.sls["packing_density"] < 1
        assert outcome.material_ml == usage["total_sintered_powder_ml"]
        assert outcome.print_time_s == times["total_print_time_s"]


class LaterVerified(PrintTracking):
    """Print tracking whose prints are verified later, by another poller (the hot folder's):
    this run leaves them pending."""

    @property
    def verifies(self) -> bool:
        return True

    def after_run(self, result: RunResult, stop: threading.Event) -> RunResult:
        return result


class TestVerifyStatus:
    """The verify step says whether the print will be verified, and why not."""

    @pytest.mark.parametrize(
        ("options", "expected"),
        [
            pytest.param({}, "skipped (no Web API credentials)", id="no-tracking"),
            pytest.param({"print_tracking": PrintTracking()},
                         "skipped (no Web API credentials)", id="tracking-without-poller"),
            pytest.param({"print_tracking": LaterVerified()}, "pending", id="verified-later"),
            pytest.param({"print_tracking": LaterVerified(), "dry_run": True}, "skipped",
                         id="dry-run"),
        ],
    )
    def test_the_outcome_says_what_becomes_of_verification(
        self, tmp_path: Path, farm: SimFarm, options: dict[str, Any], expected: str
    ) -> None:
        outcome = _run(
            tmp_path, farm,
            "steps:\n  - print:\n      printer: SimulatedForm4-1\n  - verify\n",
            _boxes(tmp_path, "box"), **options,
        )
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert outcome.verify == expected


class TestPolledAfterTheRequestLimit:
    """An estimate or a screenshot the request limit cut short is polled on the retry, on
    the next server, instead of being awaited in one request again."""

    @pytest.mark.parametrize(
        ("step", "operation"),
        [("estimate", "estimate_print_time"), ("screenshot", "save_screenshot")],
    )
    def test_the_retry_polls_the_step_that_outlived_the_request_limit(
        self, tmp_path: Path, farm: SimFarm, step: str, operation: str
    ) -> None:
        farm.add(ScriptedFaults(hang=frozenset({operation})))
        farm.add()
        outcome = _run(tmp_path, farm, f"steps:\n  - {step}\n", _boxes(tmp_path, "box"),
                       request_timeout_s=HANG_LIMIT_S)
        assert outcome.status is BuildStatus.SUCCEEDED, outcome.reason
        assert [a.server for a in outcome.attempts] == ["server-1", "server-2"]
        assert outcome.attempts[0].error_type == "ServerTimeoutError"
        assert _polled(farm.faults[1].seen) == {operation}

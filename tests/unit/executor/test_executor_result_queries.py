"""A run's result answers for its builds: by name, by status, and what counts as ok."""

from __future__ import annotations

import pytest

from preform_pipeline.executor import AttemptRecord, BuildOutcome, BuildStatus, RunResult


def _outcome(name: str, status: BuildStatus, *busy: float, layouts: int = 0) -> BuildOutcome:
    return BuildOutcome(
        name=name, index=1, status=status, models=("a.stl",), source_files=(),
        attempts=tuple(AttemptRecord(i + 1, f"server-{i + 1}", s) for i, s in enumerate(busy)),
        layout_calls=layouts,
    )


RESULT = RunResult("run-1", "r", True, False, (
    _outcome("b-001", BuildStatus.SPLIT, 2.0, layouts=3),
    _outcome("b-001.1", BuildStatus.SUCCEEDED, 1.0, 0.5, layouts=1),
    _outcome("b-001.2", BuildStatus.FAILED, 4.0, layouts=2),
))


class TestRunResultQueries:
    """Each build is found by its name; statuses and totals cover every build."""

    def test_a_build_is_found_by_its_own_name(self) -> None:
        assert RESULT.outcome("b-001.2").status is BuildStatus.FAILED
        assert RESULT.outcome("b-001").status is BuildStatus.SPLIT

    def test_an_unknown_name_is_a_key_error_naming_it(self) -> None:
        with pytest.raises(KeyError) as caught:
            RESULT.outcome("b-009")
        assert caught.value.args == ("b-009",)

    def test_by_status_lists_only_that_status(self) -> None:
        assert [o.name for o in RESULT.by_status(BuildStatus.SUCCEEDED)] == ["b-001.1"]
        assert [o.name for o in RESULT.by_status(BuildStatus.CANCELLED)] == []

    def test_counted_leaves_the_split_build_out(self) -> None:
        assert [o.name for o in RESULT.counted] == ["b-001.1", "b-001.2"]

    def test_totals_add_every_attempt_and_layout(self) -> None:
        assert RESULT.busy_s == pytest.approx(7.5)
        assert RESULT.outcome("b-001.1").busy_s == pytest.approx(1.5)
        assert RESULT.layout_calls == 6

    def test_a_run_is_ok_only_when_every_build_is(self) -> None:
        assert not RESULT.ok
        good = RunResult("run-2", "r", True, False, RESULT.outcomes[:2])
        assert good.ok
        assert not RunResult("run-3", "r", True, False, ()).ok
        cancelled = RunResult("run-4", "r", True, False, RESULT.outcomes[:2], cancelled=True)
        assert not cancelled.ok

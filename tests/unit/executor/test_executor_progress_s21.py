"""The run's bar on a terminal when the run started with no build and one was added later:
the build added is the run's only one, so its end is the whole run."""

from __future__ import annotations

import re

import pytest
from test_executor_progress_lines import _frame, _outcome, _plan, _Terminal

from preform_pipeline.executor import BuildStatus, RichReporter

__all__: list[str] = []


class TestRunBarFromNothing:
    """A build added to a run of none makes the run's total one, not two."""

    def test_the_one_build_added_ending_fills_the_run_bar(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("COLUMNS", "200")  # wide enough for every status in full
        terminal = _Terminal()
        with RichReporter(terminal) as reporter:
            reporter.run_started("run-1", (), servers=1, simulated=False)
            reporter.build_added(_plan("b1+1", 1), parent="b1")
            reporter.build_finished(_outcome("b1+1", BuildStatus.SUCCEEDED))
        assert re.fullmatch(r"run run-1 \S* 100% \d:\d\d:\d\d", _frame(terminal)[0])

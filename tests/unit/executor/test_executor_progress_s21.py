"""Three things the run's bars show that the other progress tests do not pin down: a run that
started with no build and was given one, the verify wait drawn as a pulse, and how often the
bars are drawn while nothing changes."""

from __future__ import annotations

import re
import time

import pytest
from test_executor_progress_lines import _ANSI, _frame, _outcome, _plan, _poll, _Terminal

from preform_pipeline.executor import BuildStatus, RichReporter

__all__: list[str] = []

#: A bar cell and the colour it is drawn in: ``ESC[<style>m━``.
_CELL = re.compile(r"\x1b\[([0-9;]+)m━")


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> _Terminal:
    """A colour terminal wide enough for every status in full."""
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("TERM", "xterm")
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    return _Terminal()


def _raw_rows(terminal: _Terminal) -> dict[str, str]:
    """The last drawing's rows with their colours, by their text's first word."""
    drawing = terminal.getvalue().rsplit("\r\x1b[2K", 1)[-1]
    rows = (row for row in drawing.split("\n") if _ANSI.sub("", row).strip())
    return {_ANSI.sub("", row).split()[0]: row for row in rows}


class TestRunBarFromNothing:
    """A build added to a run of none makes the run's total one, not two."""

    def test_the_one_build_added_ending_fills_the_run_bar(self, terminal: _Terminal) -> None:
        with RichReporter(terminal) as reporter:
            reporter.run_started("run-1", (), servers=1, simulated=False)
            reporter.build_added(_plan("b1+1", 1), parent="b1")
            reporter.build_finished(_outcome("b1+1", BuildStatus.SUCCEEDED))
        assert re.fullmatch(r"run run-1 \S* 100% \d:\d\d:\d\d", _frame(terminal)[0])


class TestVerifyWaitPulses:
    """The verify wait has no known end: its bar pulses, unlike a bar standing at 0%."""

    def test_the_verify_bar_pulses_beside_the_empty_run_bar(self, terminal: _Terminal) -> None:
        with RichReporter(terminal) as reporter:
            reporter.run_started("run-1", (_plan("b1", 1),), servers=1, simulated=False)
            reporter.verify_waiting(_poll(0), 2)
        rows = _raw_rows(terminal)
        # The run's bar at 0% is one colour end to end (the empty bar's).
        assert len(set(_CELL.findall(rows["run"]))) == 1
        # The verify bar runs through the pulse's colours as well as the empty bar's.
        assert len(set(_CELL.findall(rows["verify:"]))) > 1


class TestRedrawRate:
    """The bars are drawn again a couple of times a second, not ten: each drawing costs the
    run's process CPU, and a build's bar moves in seconds."""

    def test_a_quiet_second_and_a_half_is_drawn_a_few_times(self, terminal: _Terminal) -> None:
        with RichReporter(terminal) as reporter:
            reporter.run_started("run-1", (_plan("b1", 1),), servers=1, simulated=False)
            # The time is what is measured here: nothing happens in it but the redraws.
            time.sleep(1.5)
            drawn = terminal.getvalue().count("run run-1")
        # Two a second: three in the wait, one at the start and one at the close, give or
        # take one (rich's ten a second drew about sixteen).
        assert 2 <= drawn <= 6

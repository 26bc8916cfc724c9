"""What a person reads while a run goes: the plain lines of a log, and the bars of a
terminal as they are drawn last."""

from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path

import pytest

from preform_pipeline.cloud import BudgetSnapshot
from preform_pipeline.executor import (
    AttemptRecord,
    BuildOutcome,
    BuildStatus,
    NullReporter,
    PlainReporter,
    RichReporter,
    RunResult,
    make_reporter,
)
from preform_pipeline.executor.progress import rejection_lines, run_line, verify_line
from preform_pipeline.plan.builds import BuildPlan, Rejection
from preform_pipeline.plan.graph import compile_graph
from preform_pipeline.verify.poller import PollOutcome
from tests.unit.plan.planning_factories import make_model, make_recipe

RECIPE = make_recipe()
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _plan(name: str, count: int) -> BuildPlan:
    models = tuple(make_model(f"{name}-{i}") for i in range(count))
    return BuildPlan(index=1, name=name, models=models, placements=(), fill_ratio=0.5,
                     estimated_volume_ml=1.0, graph=compile_graph(RECIPE, models))


def _outcome(name: str, status: BuildStatus, *, servers: tuple[str, ...] = ("server-1",),
             reason: str | None = None, children: tuple[str, ...] = (),
             duration_s: float = 1.25) -> BuildOutcome:
    return BuildOutcome(
        name=name, index=1, status=status, models=(), source_files=(), reason=reason,
        server=servers[-1] if servers else None, children=children, duration_s=duration_s,
        attempts=tuple(AttemptRecord(i + 1, s, 1.0) for i, s in enumerate(servers)),
    )


def _result(*outcomes: BuildOutcome, cancelled: bool = False) -> RunResult:
    return RunResult("run-1", "r", True, False, outcomes, cancelled=cancelled, wall_s=2.46)


def _poll(printing: int, error: str | None = None) -> PollOutcome:
    in_progress = tuple(object() for _ in range(printing))  # only counted
    return PollOutcome((), in_progress, (), 1, 1, 30.0,  # type: ignore[arg-type]
                       BudgetSnapshot(4, 1496, 1500, 3600.0), error=error)


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


class TestPlainLines:
    """Each event is one line, with the build's name in brackets and the counts so far."""

    def test_the_run_start_counts_builds_models_and_servers(self) -> None:
        stream = io.StringIO()
        reporter = PlainReporter(stream)
        reporter.run_started("run-1", (_plan("b1", 2), _plan("b2", 1)), servers=1,
                             simulated=True)
        reporter.run_started("run-2", (_plan("b1", 1),), servers=2, simulated=False)
        assert _lines(stream) == [
            "run run-1: 2 builds, 3 models on 1 simulated server",
            "run run-2: 1 build, 1 model on 2 servers",
        ]

    def test_a_builds_start_steps_and_retries(self) -> None:
        stream = io.StringIO()
        reporter = PlainReporter(stream)
        reporter.build_started("b1", server="server-1", attempt=1, steps=5)
        reporter.step_started("b1", "auto_layout", index=2, total=5)
        reporter.step_progress("b1", "auto_layout", 0.5)
        reporter.build_retry("b1", attempt=2, reason="server error 500")
        reporter.build_retry("b1", attempt=3, reason="a fault", where="from its checkpoint")
        reporter.build_started("b1", server="server-2", attempt=2, steps=5)
        assert _lines(stream) == [
            "[b1] started on server-1: 5 steps",
            "[b1] step 2/5 auto_layout",
            "[b1] retrying (attempt 2) on another server: server error 500",
            "[b1] retrying (attempt 3) from its checkpoint: a fault",
            "[b1] started on server-2 (attempt 2): 5 steps",
        ]

    def test_finished_builds_say_how_they_ended_and_how_many_are_done(self) -> None:
        stream = io.StringIO()
        reporter = PlainReporter(stream)
        reporter.run_started("run-1", (_plan("b1", 2), _plan("b2", 1), _plan("b3", 1)),
                             servers=1, simulated=False)
        reporter.build_added(_plan("b1.1", 1), parent="b1")
        reporter.build_added(_plan("b1.2", 1), parent="b1")
        reporter.build_finished(_outcome("b1", BuildStatus.SPLIT, children=("b1.1", "b1.2")))
        reporter.build_finished(_outcome("b2", BuildStatus.SUCCEEDED,
                                         servers=("server-1", "server-2")))
        reporter.build_finished(_outcome("b3", BuildStatus.FAILED, servers=(),
                                         reason="layout does not fit", duration_s=0.04))
        assert _lines(stream)[1:] == [
            "[b1.1] split from b1: 1 model",
            "[b1.2] split from b1: 1 model",
            "[b1] split on server-1 in 1.2 s into b1.1, b1.2 (0/4 builds done)",
            "[b2] succeeded on server-2, 2 attempts in 1.2 s (1/4 builds done)",
            "[b3] failed in 0.0 s: layout does not fit (2/4 builds done)",
        ]

    def test_a_run_of_one_build_counts_it_in_the_singular(self) -> None:
        stream = io.StringIO()
        reporter = PlainReporter(stream)
        reporter.run_started("run-1", (_plan("b1", 1),), servers=1, simulated=True)
        reporter.build_finished(_outcome("b1", BuildStatus.SUCCEEDED))
        assert _lines(stream)[0] == "run run-1: 1 build, 1 model on 1 simulated server"
        assert _lines(stream)[1].endswith(" (1/1 build done)")

    def test_a_run_with_nothing_to_prepare_claims_no_server(self) -> None:
        # A repeat whose every model was skipped said "0 builds, 0 models on 1 simulated
        # server" though none was started (session 32).
        stream = io.StringIO()
        PlainReporter(stream).run_started("run-1", (), servers=0, simulated=True)
        assert _lines(stream) == ["run run-1: nothing to prepare, no server started"]

    def test_a_run_whose_server_was_started_for_other_work_does_not_deny_it(self) -> None:
        # A run whose only work was sending a build an earlier run left waiting started a
        # server for it, and said "no server started" (session 35).
        stream = io.StringIO()
        PlainReporter(stream).run_started("run-1", (), servers=1, simulated=True)
        assert _lines(stream) == ["run run-1: nothing new to prepare"]

    def test_a_daemons_second_batch_counts_its_own_builds(self) -> None:
        # The hot folder gives every batch one reporter: its second batch said "(2/1 build
        # done)" (session 30, a newcomer's `watch`).
        stream = io.StringIO()
        reporter = PlainReporter(stream)
        reporter.run_started("run-1", (_plan("b1", 9),), servers=2, simulated=True)
        reporter.build_finished(_outcome("b1", BuildStatus.SUCCEEDED))
        reporter.run_finished(RunResult("run-1", "r", True, False, ()))
        reporter.run_started("run-2", (_plan("c1", 2),), servers=2, simulated=True)
        reporter.build_finished(_outcome("c1", BuildStatus.SUCCEEDED))
        assert _lines(stream)[-1].endswith("[c1] succeeded on server-1 in 1.2 s "
                                           "(1/1 build done)")

    def test_batches_running_at_once_count_apart(self) -> None:
        stream = io.StringIO()
        reporter = PlainReporter(stream)
        reporter.run_started("run-1", (_plan("b1", 1), _plan("b2", 1)), servers=3,
                             simulated=True)
        reporter.run_started("run-2", (_plan("c1", 1),), servers=3, simulated=True)
        reporter.build_added(_plan("c1.1", 1), parent="c1")
        reporter.build_added(_plan("c1.2", 1), parent="c1")
        reporter.build_finished(_outcome("c1", BuildStatus.SPLIT, children=("c1.1", "c1.2")))
        reporter.build_finished(_outcome("b1", BuildStatus.SUCCEEDED))
        reporter.build_finished(_outcome("c1.1", BuildStatus.SUCCEEDED))
        assert [line.rsplit("(", 1)[1] for line in _lines(stream) if "done)" in line] == [
            "0/2 builds done)", "1/2 builds done)", "1/2 builds done)",
        ]

    def test_an_earlier_batch_goes_on_counting_after_a_later_one_ended(self) -> None:
        stream = io.StringIO()
        reporter = PlainReporter(stream)
        reporter.run_started("run-1", (_plan("a1", 2), _plan("a2", 1)), servers=3,
                             simulated=True)
        reporter.run_started("run-2", (_plan("b1", 1),), servers=3, simulated=True)
        reporter.build_added(_plan("a1.1", 1), parent="a1")  # the split of run-1's build
        reporter.build_added(_plan("a1.2", 1), parent="a1")
        reporter.build_finished(_outcome("a1", BuildStatus.SPLIT, children=("a1.1", "a1.2")))
        reporter.build_finished(_outcome("b1", BuildStatus.SUCCEEDED))
        reporter.run_finished(RunResult("run-2", "r", True, False, ()))
        reporter.build_finished(_outcome("a1.1", BuildStatus.SUCCEEDED))
        assert [line.rsplit("(", 1)[1] for line in _lines(stream) if "done)" in line] == [
            "0/3 builds done)", "1/1 build done)", "1/3 builds done)",
        ]

    def test_the_verify_wait_and_the_runs_end(self) -> None:
        stream = io.StringIO()
        reporter = PlainReporter(stream)
        reporter.verify_waiting(_poll(1, error="timed out"), 1)
        reporter.run_finished(_result(_outcome("b1", BuildStatus.SUCCEEDED)))
        reporter.close()
        assert _lines(stream) == [
            "verify: 1 print pending (1 printing), next poll in 30 s, 4/1500 requests this "
            "hour (last poll failed: timed out)",
            "run run-1 finished in 2.5 s: 1 of 1 build succeeded",
        ]


class TestRunLine:
    """The closing line counts the builds a person can act on."""

    def test_splits_failures_and_an_interruption_are_all_said(self) -> None:
        result = _result(_outcome("b1", BuildStatus.SPLIT),
                         _outcome("b1.1", BuildStatus.SUCCEEDED),
                         _outcome("b1.2", BuildStatus.FAILED),
                         _outcome("b2", BuildStatus.SPLIT), cancelled=True)
        assert run_line(result) == (
            "run run-1 finished in 2.5 s: 1 of 2 builds succeeded "
            "(2 split into smaller builds) (interrupted)")

    @pytest.mark.parametrize(("handed", "line", "counted"), [
        pytest.param({"held": True, "job_key": "PP-HELD00001"},
                     "held for approval (dashboard or `jobs approve PP-HELD00001`)",
                     "held for approval", id="held-for-approval"),
        pytest.param({"waiting": True, "printer": "auto"},
                     "waiting for a free printer (auto), sent when one is free (`jobs waiting`)",
                     "waiting for a free printer", id="left-waiting-for-a-printer"),
    ])
    def test_a_build_handed_to_dispatch_is_said_so_not_succeeded(
        self, handed: dict[str, object], line: str, counted: str
    ) -> None:
        """Prepared and held for an operator, or left waiting in the job store for a free
        printer (nothing sent): "succeeded" said it printed; the line says what it waits for
        and what lets it go or shows it, and the run's line counts it apart."""
        outcome = dataclasses.replace(_outcome("b1", BuildStatus.SUCCEEDED), **handed)
        stream = io.StringIO()
        reporter = PlainReporter(stream)
        reporter.run_started("run-1", [_plan("b1", 1), _plan("b2", 1)], servers=1,
                             simulated=True)
        reporter.build_finished(outcome)
        assert stream.getvalue().splitlines()[-1] == (
            f"[b1] {line}: prepared on server-1 in 1.2 s (1/2 builds done)")
        result = _result(outcome, _outcome("b2", BuildStatus.SUCCEEDED))
        assert run_line(result) == (
            f"run run-1 finished in 2.5 s: 1 of 2 builds succeeded, 1 {counted}")

    def test_a_verify_line_without_prints_in_progress(self) -> None:
        assert verify_line(_poll(0), 2) == (
            "verify: 2 prints pending, next poll in 30 s, 4/1500 requests this hour")


class TestMakeReporter:
    """Bars on a terminal, lines anywhere else, nothing when quiet."""

    def test_the_stream_decides(self) -> None:
        assert isinstance(make_reporter(_Terminal()), RichReporter)
        assert isinstance(make_reporter(io.StringIO()), PlainReporter)
        assert isinstance(make_reporter(_Terminal(), quiet=True), NullReporter)

    def test_a_stream_without_isatty_gets_lines(self) -> None:
        class Sink:
            def write(self, text: str) -> int:
                return len(text)

            def flush(self) -> None:
                return None

        assert isinstance(make_reporter(Sink()), PlainReporter)  # type: ignore[arg-type]


def _visible(text: str) -> list[str]:
    return [" ".join(_ANSI.sub("", line).split()) for line in text.splitlines()
            if _ANSI.sub("", line).strip()]


def _frame(stream: io.StringIO) -> list[str]:
    """The bars as the terminal last drew them (the drawing after the last erase)."""
    return _visible(stream.getvalue().rsplit("\r\x1b[2K", 1)[-1])


def _printed(stream: io.StringIO) -> list[str]:
    """The lines printed above the bars (a finished build's line), in order."""
    lines = _visible(stream.getvalue().replace("\r", "\n"))
    return list(dict.fromkeys(line for line in lines if ": " in line and "━" not in line
                              and not line.startswith("verify:")))


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> _Terminal:
    """A terminal wide enough for every status in full."""
    monkeypatch.setenv("COLUMNS", "200")
    return _Terminal()


class TestBars:
    """One bar per running build and one for the run, as the last drawing shows them."""

    def test_bars_follow_the_steps_and_the_run_counts_finished_builds(
        self, terminal: _Terminal
    ) -> None:
        with RichReporter(terminal) as reporter:
            reporter.run_started("run-1", (_plan("b1", 1), _plan("b2", 1)), servers=2,
                                 simulated=True)
            reporter.build_started("b1", server="server-1", attempt=1, steps=4)
            reporter.step_started("b1", "auto_layout", index=2, total=4)
            reporter.step_progress("b1", "auto_layout", 0.5)
            reporter.build_started("b2", server="server-2", attempt=1, steps=4)
            reporter.build_finished(_outcome("b2", BuildStatus.SUCCEEDED,
                                             servers=("server-2",)))
        assert _printed(terminal) == ["b2: succeeded on server-2 in 1.2 s"]
        frame = _frame(terminal)
        assert re.fullmatch(r"run run-1 \(SIMULATED\) \S* 50% \d:\d\d:\d\d", frame[0])
        assert re.fullmatch(r"b1 \S* 38% auto_layout \d:\d\d:\d\d", frame[1])
        assert len(frame) == 2  # the finished build's bar is gone

    def test_progress_within_a_step_never_reaches_the_next_step(
        self, terminal: _Terminal
    ) -> None:
        with RichReporter(terminal) as reporter:
            reporter.run_started("run-1", (_plan("b1", 1),), servers=1, simulated=False)
            reporter.build_started("b1", server="server-1", attempt=1, steps=2)
            reporter.step_started("b1", "import", index=1, total=2)
            reporter.step_progress("b1", "import", 0.25)
            reporter.step_progress("b1", "import", 7.0)
        frame = _frame(terminal)
        assert re.fullmatch(r"run run-1 \S* 0% \d:\d\d:\d\d", frame[0])
        assert re.fullmatch(r"b1 \S* 50% import \d:\d\d:\d\d", frame[1])

    def test_a_retry_shows_on_the_builds_bar_with_the_start_of_its_reason(
        self, terminal: _Terminal
    ) -> None:
        reason = "server error 500 " * 6
        with RichReporter(terminal) as reporter:
            reporter.run_started("run-1", (_plan("b1", 1),), servers=2, simulated=False)
            reporter.build_started("b1", server="server-1", attempt=1, steps=4)
            reporter.step_started("b1", "auto_layout", index=3, total=4)
            reporter.build_retry("b1", attempt=2, reason=reason)
            reporter.build_retry("b9", attempt=2, reason="a build without a bar")
        assert re.fullmatch(r"b1 \S* 50% retrying on another server: "
                            + re.escape(" ".join(reason[:60].split())) + r" \d:\d\d:\d\d",
                            _frame(terminal)[-1])

    def test_a_new_attempt_starts_the_bar_again_on_its_server(
        self, terminal: _Terminal
    ) -> None:
        with RichReporter(terminal) as reporter:
            reporter.run_started("run-1", (_plan("b1", 1),), servers=2, simulated=False)
            reporter.build_started("b1", server="server-1", attempt=1, steps=4)
            reporter.step_started("b1", "auto_layout", index=3, total=4)
            reporter.build_started("b1", server="server-2", attempt=2, steps=5)
            reporter.step_started("b9", "auto_layout", index=3, total=4)
            reporter.step_progress("b9", "auto_layout", 0.5)
        frame = _frame(terminal)
        assert re.fullmatch(r"b1 \S* 0% server-2 attempt 2 \d:\d\d:\d\d", frame[-1])
        assert len(frame) == 2

    def test_a_split_build_leaves_the_total_and_its_halves_join_it(
        self, terminal: _Terminal
    ) -> None:
        with RichReporter(terminal) as reporter:
            reporter.run_started("run-1", (_plan("b1", 2), _plan("b2", 1)), servers=1,
                                 simulated=False)
            reporter.build_added(_plan("b1.1", 1), parent="b1")
            reporter.build_added(_plan("b1.2", 1), parent="b1")
            reporter.build_finished(_outcome("b1", BuildStatus.SPLIT,
                                             children=("b1.1", "b1.2")))
            reporter.build_finished(_outcome("b2", BuildStatus.FAILED, reason="no fit"))
            reporter.run_finished(_result(cancelled=True))
        assert _printed(terminal) == ["b1: split on server-1 in 1.2 s into b1.1, b1.2",
                                      "b2: failed on server-1 in 1.2 s: no fit"]
        # 1 of 3 counted builds (b2, b1.1, b1.2) has ended: 33%, and the run was stopped.
        assert re.fullmatch(r"run run-1 \S* 33% interrupted \d:\d\d:\d\d",
                            _frame(terminal)[0])

    def test_a_finished_run_says_done_and_the_verify_line_goes(
        self, terminal: _Terminal
    ) -> None:
        with RichReporter(terminal) as reporter:
            reporter.run_started("run-1", (_plan("b1", 1),), servers=1, simulated=False)
            reporter.verify_waiting(_poll(0), 2)
            waiting = _frame(terminal)
            reporter.run_finished(_result())
        assert any(line.startswith("verify: 2 prints pending, next poll in 30 s")
                   for line in waiting)
        frame = _frame(terminal)
        assert re.fullmatch(r"run run-1 \S* 0% done \d:\d\d:\d\d", frame[0])
        assert not any(line.startswith("verify:") for line in frame)


class TestBarsInDetail:
    """What each bar shows at each event, text shown as written, bars left on screen."""

    def test_a_first_attempt_shows_its_server_and_moves_within_the_build(
        self, terminal: _Terminal
    ) -> None:
        with RichReporter(terminal) as reporter:
            reporter.run_started("run-1", (_plan("b1", 1),), servers=1, simulated=False)
            reporter.build_started("b1", server="server-1", attempt=1, steps=4)
            reporter.step_progress("b1", "import", 0.6)
        assert re.fullmatch(r"b1 \S* 15% server-1 \d:\d\d:\d\d", _frame(terminal)[-1])

    def test_a_new_attempt_counts_its_own_steps(self, terminal: _Terminal) -> None:
        with RichReporter(terminal) as reporter:
            reporter.run_started("run-1", (_plan("b1", 1),), servers=2, simulated=False)
            reporter.build_started("b1", server="server-1", attempt=1, steps=4)
            reporter.build_started("b1", server="server-2", attempt=2, steps=5)
            reporter.step_progress("b1", "import", 0.5)
        assert re.fullmatch(r"b1 \S* 10% server-2 attempt 2 \d:\d\d:\d\d", _frame(terminal)[-1])

    def test_a_step_brings_its_own_total(self, terminal: _Terminal) -> None:
        with RichReporter(terminal) as reporter:
            reporter.run_started("run-1", (_plan("b1", 1),), servers=1, simulated=False)
            reporter.build_started("b1", server="server-1", attempt=1, steps=4)
            reporter.step_started("b1", "auto_layout", index=2, total=5)
        assert re.fullmatch(r"b1 \S* 20% auto_layout \d:\d\d:\d\d", _frame(terminal)[-1])

    def test_a_split_while_another_build_runs_counts_the_run_right(
        self, terminal: _Terminal
    ) -> None:
        with RichReporter(terminal) as reporter:
            reporter.run_started("run-1", (_plan("b1", 2), _plan("b2", 1)), servers=2,
                                 simulated=False)
            reporter.build_started("b2", server="server-2", attempt=1, steps=9)
            reporter.build_started("b1", server="server-1", attempt=1, steps=4)
            reporter.build_added(_plan("b1.1", 1), parent="b1")
            reporter.build_added(_plan("b1.2", 1), parent="b1")
            reporter.build_finished(_outcome("b1", BuildStatus.SPLIT,
                                             children=("b1.1", "b1.2")))
            reporter.build_finished(_outcome("b2", BuildStatus.SUCCEEDED))
        assert re.fullmatch(r"run run-1 \S* 33% \d:\d\d:\d\d", _frame(terminal)[0])

    def test_names_and_reasons_are_shown_as_written(self, terminal: _Terminal) -> None:
        with RichReporter(terminal) as reporter:
            reporter.run_started("run-1", (_plan("b1", 1),), servers=1, simulated=False)
            reporter.build_started("[bold]b1", server="server-1", attempt=1, steps=4)
            reporter.build_retry("[bold]b1", attempt=2, reason="[red]refused[/red]")
            reporter.build_finished(_outcome("b2", BuildStatus.FAILED,
                                             reason="[bold]no[/bold] fit at 1.5 mm"))
        assert re.fullmatch(r"\[bold\]b1 \S* 0% retrying on another server: "
                            r"\[red\]refused\[/red\] \d:\d\d:\d\d", _frame(terminal)[-1])
        # printed plainly: no markup read, no colours added to its numbers
        assert ("b2: failed on server-1 in 1.2 s: [bold]no[/bold] fit at 1.5 mm\n"
                in terminal.getvalue())

    def test_the_bars_stay_on_screen_after_the_run(self, terminal: _Terminal) -> None:
        with RichReporter(terminal) as reporter:
            reporter.run_started("run-1", (_plan("b1", 1),), servers=1, simulated=False)
            reporter.build_started("b1", server="server-1", attempt=1, steps=4)
        after_last_bar = terminal.getvalue().rsplit("━", 1)[-1]
        assert "\x1b[1A" not in after_last_bar  # nothing goes back up to erase them

    def test_the_verify_line_has_no_status_of_its_own(self, terminal: _Terminal) -> None:
        with RichReporter(terminal) as reporter:
            reporter.run_started("run-1", (_plan("b1", 1),), servers=1, simulated=False)
            reporter.verify_waiting(_poll(0), 2)
            waiting = _frame(terminal)
            reporter.verify_waiting(_poll(1), 1)
            again = _frame(terminal)
        line = "verify: 2 prints pending, next poll in 30 s, 4/1500 requests this hour"
        assert any(re.fullmatch(re.escape(line) + r" \S* 0% \d:\d\d:\d\d", text)
                   for text in waiting)
        assert any(text.startswith("verify: 1 print pending (1 printing)") for text in again)


class TestReportersWriteToTheirStream:
    """The reporter make_reporter picks writes where it was asked to, not to stdout."""

    def test_lines_and_bars_go_to_the_given_stream(
        self, terminal: _Terminal, capsys: pytest.CaptureFixture[str]
    ) -> None:
        plain = io.StringIO()
        make_reporter(plain).run_started("run-1", (_plan("b1", 1),), servers=1,
                                         simulated=False)
        bars = make_reporter(terminal)
        bars.run_started("run-1", (_plan("b1", 1),), servers=1, simulated=False)
        bars.close()
        assert plain.getvalue().startswith("run run-1: 1 build")
        assert "run run-1" in terminal.getvalue()
        assert capsys.readouterr().out == ""


class TestRejectedModels:
    """A batch's rejected models: a counted header, then each path, its size when read, why."""

    REJECTED = (
        Rejection(Path("/in/failed/big.stl"), "/in/failed/big.stl: larger than the platform",
                  size_mm=(400.0, 12.34, 3.0)),
        Rejection(Path("/in/failed/odd\x1b[2J.stl"), "line 2: malformed facet"),
    )

    def test_the_lines_say_each_once_and_escape_names(self) -> None:
        assert rejection_lines(self.REJECTED) == [
            "rejected 2 models:",
            "  /in/failed/big.stl (400.0 x 12.3 x 3.0 mm): larger than the platform",
            "  /in/failed/odd\\x1b[2J.stl: line 2: malformed facet",
        ]
        assert rejection_lines(self.REJECTED[:1])[0] == "rejected 1 model:"
        assert rejection_lines(()) == []

    def test_a_file_that_is_no_model_is_counted_as_a_file(self) -> None:
        notes = Rejection(Path("/in/notes.txt"), ".txt: not a model file")
        step = Rejection(Path("/in/part.step"), ".step: export as STL, OBJ or 3MF")
        assert rejection_lines((notes,))[0] == "rejected 1 file:"
        assert rejection_lines((self.REJECTED[0], notes))[0] == "rejected 2 files:"
        assert rejection_lines((step,))[0] == "rejected 1 model:"  # a part, once exported

    def test_plain_says_them_in_one_write_and_nothing_for_none(self) -> None:
        writes: list[str] = []

        class _Stream(io.StringIO):
            def write(self, text: str) -> int:
                writes.append(text)
                return len(text)

        reporter = PlainReporter(_Stream())
        reporter.models_rejected(())
        assert writes == []
        reporter.models_rejected(self.REJECTED)
        assert writes == ["\n".join(rejection_lines(self.REJECTED)) + "\n"]

    def test_a_terminal_prints_them_and_quiet_says_nothing(self) -> None:
        # Drawn as they are: no markup read in a name, no colours added to its numbers.
        rejected = (*self.REJECTED, Rejection(Path("/in/[b]x[/b] 12.stl"), "no facets"))
        terminal = _Terminal()
        with RichReporter(terminal) as reporter:
            reporter.models_rejected(rejected)
        assert terminal.getvalue().splitlines() == rejection_lines(rejected)
        quiet = io.StringIO()
        make_reporter(quiet, quiet=True).models_rejected(self.REJECTED)
        assert quiet.getvalue() == ""


class TestNamesWithTerminalEscapes:
    """A build's name and a reason are drawn as escapes: on a bar, its status, its line."""

    NAME = "C\x1b]0;owned\x07\x1b[2J\u202e-001"
    SHOWN = "C\\x1b]0;owned\\x07\\x1b[2J\\u202e-001"

    def test_the_bars_and_the_finished_line(self, terminal: _Terminal) -> None:
        with RichReporter(terminal) as reporter:
            reporter.run_started("run-1", (_plan(self.NAME, 1),), servers=1, simulated=False)
            reporter.build_started(self.NAME, server="server-1", attempt=1, steps=4)
            reporter.build_retry(self.NAME, attempt=2, reason=f"{self.NAME}: timed out")
        assert _frame(terminal)[-1].startswith(
            f"{self.SHOWN} ")  # the bar's name, then its status:
        assert f"retrying on another server: {self.SHOWN}: timed out" in _frame(terminal)[-1]
        finished = _Terminal()
        with RichReporter(finished) as reporter:
            reporter.run_started("run-1", (_plan(self.NAME, 1),), servers=1, simulated=False)
            reporter.build_finished(_outcome(self.NAME, BuildStatus.FAILED,
                                             reason=f"{self.NAME} \x9b1m failed"))
        assert _printed(finished)[-1] == (
            f"{self.SHOWN}: failed on server-1 in 1.2 s: {self.SHOWN} \\x9b1m failed")
        drawn = terminal.getvalue() + finished.getvalue()
        # rich's own codes start with ESC [ and a digit (or ESC [ ?): nothing else may.
        assert not {"\x07", "\u202e", "\x9b"} & set(drawn)
        assert "\x1b]" not in drawn and "\x1b[2J" not in drawn

    def test_plain_lines(self) -> None:
        stream = io.StringIO()
        reporter = PlainReporter(stream)
        reporter.build_started(self.NAME, server="server-1", attempt=1, steps=4)
        reporter.build_retry(self.NAME, attempt=2, reason="line\nbreak kept")
        assert _lines(stream) == [f"[{self.SHOWN}] started on server-1: 4 steps",
                                  f"[{self.SHOWN}] retrying (attempt 2) on another server: line",
                                  "break kept"]

"""The run's closing console output at 60 to 200 columns, on a terminal and in a log."""

from __future__ import annotations

import io
import logging
from dataclasses import replace

import pytest
import structlog
from rich.console import Console

from preform_pipeline.commands._console import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    exit_code,
    exit_line,
    group_warnings,
    make_console,
    print_summary,
    quiet_build_warnings,
    refusal_lines,
    servers_line,
)
from preform_pipeline.executor import AttemptRecord, BuildOutcome, BuildStatus, RunResult
from preform_pipeline.executor.progress import run_line
from preform_pipeline.logging import configure_logging, get_logger
from preform_pipeline.plan.builds import Rejection
from preform_pipeline.servers.pool import ServerState, ServerStatus

WIDTHS = (60, 80, 120, 200)
JOB_ID = "c258e1ae-8bfe-41e5-b8fb-8f4263f68187"
LONG_REASON = (
    "24 models do not fit after 3 layout attempts (last spacing 0.75 mm): 2 of 24 models do "
    "not fit on the build platform (part_21_left_bracket, part_24_right_bracket)"
)


def _outcome(name: str, status: BuildStatus, **extra: object) -> BuildOutcome:
    values: dict[str, object] = {
        "name": name,
        "index": 1,
        "status": status,
        "models": tuple(f"part_{i:02d}.stl" for i in range(12)),
        "source_files": (),
        "attempts": (AttemptRecord(1, "server-1", 1.5),),
        "server": "server-1",
    }
    values.update(extra)
    return BuildOutcome(**values)  # type: ignore[arg-type]


def _result(cancelled: bool = False) -> RunResult:
    skipped = tuple(
        f"part_{i:02d}.stl left unlabelled: label 'part_{i:02d}' does not fit the front face"
        for i in range(14)
    )
    return RunResult(
        run_id="20261203-063700-767419",
        recipe="engineering-grey-form4",
        simulated=True,
        dry_run=False,
        outcomes=(
            _outcome("engineering-grey-form4-001", BuildStatus.SPLIT, reason=LONG_REASON,
                     children=("engineering-grey-form4-001.1", "engineering-grey-form4-001.2")),
            _outcome("engineering-grey-form4-001.1", BuildStatus.SUCCEEDED, job_id=JOB_ID,
                     material_ml=125.0, print_time_s=3600.0, warnings=skipped),
            _outcome("engineering-grey-form4-001.2", BuildStatus.FAILED, reason=LONG_REASON),
        ),
        rejected=(Rejection(__import__("pathlib").Path("/m/huge.stl"), "too large"),),
        cancelled=cancelled,
        wall_s=61.5,
    )


def _render(result: RunResult, width: int, *, terminal: bool = True) -> str:
    console = Console(
        file=io.StringIO(), width=width, record=True, force_terminal=terminal, color_system=None
    )
    print_summary(result, console, code=exit_code(result), extra=["report: r.json and r.csv"])
    return console.export_text()


class TestWidths:
    """Every width from 60 to 200 columns keeps the names, counts, reasons and closing lines."""

    @pytest.mark.parametrize("width", WIDTHS)
    def test_nothing_that_matters_is_lost(self, width: int) -> None:
        text = _render(_result(), width)
        lines = text.rstrip("\n").splitlines()
        assert max(len(line) for line in lines) <= width
        flat = " ".join(text.split())  # lines wrapped at narrow widths, joined again
        assert flat.endswith(
            "1 of 2 builds succeeded (1 split into smaller builds) "
            "exit 1: 1 build failed, 1 model rejected, 1 of 2 builds succeeded"
        )
        for name in ("engineering-grey-form4-001.1", "engineering-grey-form4-001.2", JOB_ID):
            assert name in flat, f"{name} is missing at {width} columns"
        # The reason is wrapped, never cut: both model names survive.
        compact = "".join(text.split())
        assert "part_21_left_bracket,part_24_right_bracket" in compact

    @pytest.mark.parametrize("width", WIDTHS)
    def test_model_counts_stay_visible(self, width: int) -> None:
        text = _render(_result(), width)
        assert "12 models" in text or " 12 " in text

    def test_a_wide_terminal_gets_a_table_and_a_narrow_one_blocks(self) -> None:
        assert "┃ build" in _render(_result(), 200)
        narrow = _render(_result(), 80)
        assert "┃" not in narrow
        assert "engineering-grey-form4-001.2  failed" in narrow

    def test_a_log_gets_plain_unwrapped_lines(self) -> None:
        stream = io.StringIO()
        result = _result()
        print_summary(result, make_console(stream), code=exit_code(result))
        text = stream.getvalue()
        assert "\x1b[" not in text and "┃" not in text
        assert f"    reason: {LONG_REASON}\n" in text
        assert text.endswith(
            "exit 1: 1 build failed, 1 model rejected, 1 of 2 builds succeeded\n"
        )


class TestEachFactOnce:
    """The summary says nothing the progress lines already said (session 34: a repeat run's
    closing line came twice, after an empty summary block)."""

    def test_the_closing_line_is_left_to_progress_lines_that_said_it(self) -> None:
        stream = io.StringIO()
        result = _result()
        print_summary(result, make_console(stream), code=exit_code(result),
                      finished_said=True)
        assert " finished in " not in stream.getvalue()
        assert stream.getvalue().endswith(
            "exit 1: 1 build failed, 1 model rejected, 1 of 2 builds succeeded\n")

    def test_a_run_without_builds_has_no_summary_block(self) -> None:
        stream = io.StringIO()
        result = RunResult(run_id="r-1", recipe="grey", simulated=True, dry_run=False,
                           outcomes=(), rejected=(), cancelled=False, wall_s=0.0)
        print_summary(result, make_console(stream), code=EXIT_OK, extra=["output: out"])
        assert stream.getvalue().splitlines() == [
            "output: out", "run r-1 finished in 0.0 s: 0 of 0 builds succeeded",
            "exit 0: nothing to run, 0 of 0 builds succeeded"]


class TestWarnings:
    """A build's warnings are grouped by kind and name a few models."""

    def test_skipped_labels_are_one_line_per_build(self) -> None:
        text = _render(_result(), 200)
        assert (
            "engineering-grey-form4-001.1: 14 labels skipped: part_00, part_01, part_02, "
            "part_03, part_04, … (+9, see report)"
        ) in text
        assert "left unlabelled" not in text

    def test_validation_findings_and_other_warnings_are_grouped_apart(self) -> None:
        groups = group_warnings([
            "validation: undersupported: a, b",
            "validation: undersupported: c",
            "print skipped (--dry-run)",
            "print skipped (--dry-run)",
        ])
        assert [g.text() for g in groups] == [
            "3 validation undersupported: a, b, c",
            "print skipped (--dry-run)",
        ]

    def test_a_builds_warning_events_stay_off_the_console_but_reach_the_file(
        self, tmp_path: object
    ) -> None:
        from pathlib import Path

        stream = io.StringIO()
        log_file = Path(str(tmp_path)) / "run.jsonl"
        configure_logging(level="INFO", json_file=log_file, console=stream)
        try:
            quiet_build_warnings()
            log = get_logger("preform_pipeline.test")
            with structlog.contextvars.bound_contextvars(build="b-1"):
                log.warning("label_skipped", model="a.stl")
            log.warning("pool_degraded", servers=1)
        finally:
            configure_logging(level="WARNING", console=io.StringIO())
            logging.getLogger("preform_pipeline").handlers.clear()
        assert "label_skipped" not in stream.getvalue()
        assert "pool_degraded" in stream.getvalue()
        assert "label_skipped" in log_file.read_text(encoding="utf-8")


class TestExitLine:
    """The last line names the exit status and what made it."""

    def test_a_clean_run_exits_0(self) -> None:
        run = RunResult("r", "x", True, False, (_outcome("b", BuildStatus.SUCCEEDED),))
        assert exit_code(run) == EXIT_OK
        assert exit_line(run, EXIT_OK) == "exit 0: 1 of 1 build succeeded"

    def test_a_build_left_waiting_is_counted_apart_and_exits_0(self) -> None:
        """Nothing was sent: not "succeeded", as the run's line says; no failure either."""
        run = RunResult("r", "x", True, False, (
            _outcome("b", BuildStatus.SUCCEEDED, waiting=True),
            _outcome("c", BuildStatus.SUCCEEDED)))
        assert exit_code(run) == EXIT_OK
        assert exit_line(run, EXIT_OK) == (
            "exit 0: 1 of 2 builds succeeded, 1 waiting for a free printer")

    def test_a_rejected_model_explains_exit_1(self) -> None:
        run = RunResult(
            "r", "x", True, False,
            (_outcome("b", BuildStatus.SUCCEEDED), _outcome("c", BuildStatus.SUCCEEDED)),
            rejected=(Rejection(__import__("pathlib").Path("/m/x.stl"), "too large"),),
        )
        assert exit_code(run) == EXIT_FAILURE
        assert exit_line(run, EXIT_FAILURE) == (
            "exit 1: 1 model rejected, 2 of 2 builds succeeded"
        )

    def test_a_rejected_file_that_is_no_model_is_called_a_file(self) -> None:
        run = RunResult(
            "r", "x", True, False, (_outcome("b", BuildStatus.SUCCEEDED),),
            rejected=(Rejection(__import__("pathlib").Path("/m/notes.txt"), "not a model"),),
        )
        assert exit_line(run, EXIT_FAILURE) == "exit 1: 1 file rejected, 1 of 1 build succeeded"

    def test_sigint_and_sigterm_have_their_own_status(self) -> None:
        run = _result(cancelled=True)
        assert exit_code(run) == EXIT_INTERRUPTED
        assert exit_code(run, terminated=True) == EXIT_TERMINATED
        assert exit_line(run, EXIT_TERMINATED).startswith("exit 143: stopped by SIGTERM, ")


class TestAPrintThatDidNotFinish:
    """A build that was sent and whose print then failed is not summed up as succeeded: its
    status in the summary is how the print ended, and the counts leave it out (review of
    session 43: "verified-002  succeeded" and "2 of 2 builds succeeded" above "verify
    verified-002: print_error: Resin level too low")."""

    RUN = RunResult("r-43", "x", True, False, (
        _outcome("b-ok", BuildStatus.SUCCEEDED, verify="finished"),
        _outcome("b-erred", BuildStatus.SUCCEEDED, verify="print_error",
                 verify_message="Resin level too low"),
        _outcome("b-stopped", BuildStatus.SUCCEEDED, verify="aborted"),
        _outcome("b-held", BuildStatus.SUCCEEDED, held=True)), wall_s=4.0)

    def test_the_table_and_the_blocks_show_how_the_print_ended(self) -> None:
        table = _render(self.RUN, 200).splitlines()
        blocks = _render(self.RUN, 200, terminal=False).splitlines()

        assert [row.split("│")[1:3] for row in table if "│ b-" in row] == [
            [" b-ok      ", " succeeded   "], [" b-erred   ", " print_error "],
            [" b-stopped ", " aborted     "], [" b-held    ", " succeeded   "]]
        assert [line for line in blocks if line.startswith("b-")] == [
            "b-ok  succeeded", "b-erred  print_error", "b-stopped  aborted", "b-held  succeeded"]

    def test_the_counts_leave_it_out_of_succeeded(self) -> None:
        assert self.RUN.tally.to_dict() == {
            "builds": 4, "succeeded": 1, "held": 1, "waiting": 0, "failed": 0,
            "print_unconfirmed": 0, "cancelled": 0, "split": 0, "print_failed": 2}
        assert run_line(self.RUN) == (
            "run r-43 finished in 4.0 s: 1 of 4 builds succeeded, 1 held for approval, "
            "2 prints did not finish well")
        assert exit_code(self.RUN) == EXIT_FAILURE
        assert exit_line(self.RUN, EXIT_FAILURE) == (
            "exit 1: 2 prints did not finish well, 1 of 4 builds succeeded, 1 held for approval")


def _status(name: str, *, url: str | None, pid: int | None, remote: bool,
            error: str | None = None, state: ServerState = ServerState.IDLE) -> ServerStatus:
    return ServerStatus(
        name=name, state=state, url=url, port=None, pid=pid, remote=remote,
        builds=0, total_builds=0, restarts=0, generation=0, retired_reason=None,
        last_error=error,
    )


class TestServersLine:
    """The servers line names remote servers and never prints ``None``."""

    def test_local_remote_and_unstarted_servers(self) -> None:
        line = servers_line([
            _status("server-1", url="http://127.0.0.1:44388", pid=41, remote=False),
            _status("prep-1", url="http://prep:44388", pid=None, remote=True),
            _status("server-2", url=None, pid=None, remote=False, error="port in use"),
        ])
        assert line == (
            "servers started: server-1 (pid 41, http://127.0.0.1:44388), "
            "prep-1 (REMOTE, http://prep:44388), server-2 (not started: port in use)"
        )
        assert "None" not in line

    def test_a_remote_that_did_not_answer_its_first_check_is_said_waited_for(self) -> None:
        line = servers_line([
            _status("printhost", url="http://printhost.invalid:44388", pid=None, remote=True,
                    state=ServerState.RESTARTING,
                    error="health check failed: unreachable: [Errno -2] Name or service not "
                    "known"),
        ])
        assert line == (
            "servers started: printhost (REMOTE, http://printhost.invalid:44388, not "
            "answering: health check failed: unreachable: [Errno -2] Name or service not "
            "known; waited for up to servers.remote_wait_s)")

    def test_a_remotes_password_is_neither_on_its_line_nor_its_refusal(self) -> None:
        # Session 45: both printed the url as the settings wrote it, password and all.
        printhost = replace(
            _status("printhost", url="http://olivia:hunter2@nas:80", pid=None, remote=True,
                    state=ServerState.RETIRED, error="it answers, but cannot be used"),
            refused=True)
        assert servers_line([printhost]) == (
            "servers started: printhost (REMOTE, http://olivia:[redacted]@nas:80, refused, "
            "said on stderr)")
        assert refusal_lines([printhost]) == [
            "error: server printhost (REMOTE, http://olivia:[redacted]@nas:80): it answers, "
            "but cannot be used"]


class TestNamesWithTerminalEscapes:
    """A build's name, reason and warnings that hold a file's odd name show it escaped."""

    @staticmethod
    def _odd() -> RunResult:
        return RunResult(
            run_id="20261206-100000-000001", recipe="r", simulated=True, dry_run=False,
            outcomes=(_outcome(
                "C-\x1b[2J-001", BuildStatus.FAILED,
                reason="a\x1b]0;owned\x07.stl does not fit on the build platform",
                warnings=("b\x9b1m.stl left unlabelled: label 'b' does not fit the front face",
                          "c\x1b[31m.stl: a warning of its own")),),
            rejected=(), cancelled=False, wall_s=1.0,
        )

    @pytest.mark.parametrize("width", (80, 200))  # blocks, then the table
    def test_on_a_terminal(self, width: int) -> None:
        text = _render(self._odd(), width)
        compact = "".join(text.split())
        for shown in ("C-\\x1b[2J-001", "a\\x1b]0;owned\\x07.stl", "b\\x9b1m",
                      "c\\x1b[31m.stl"):
            assert shown in compact, text
        assert not {"\x1b", "\x07", "\x9b"} & set(text), text

    def test_in_a_log(self) -> None:
        stream = io.StringIO()
        result = self._odd()
        print_summary(result, make_console(stream), code=exit_code(result))
        assert "    reason: a\\x1b]0;owned\\x07.stl does not fit" in stream.getvalue()
        assert not {"\x1b", "\x07", "\x9b"} & set(stream.getvalue()), stream.getvalue()

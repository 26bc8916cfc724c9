"""``run`` ending in an exception with its own log file still empty (session 42: the full
disk's refused report left one empty log per try), or having done nothing yet (session 43:
a refusal's log held only what its ``error:`` line said): the ``error:`` line's run takes the
file back; a run that had begun its work keeps it; a crash keeps it, for the log records the
crash report; a ``--log-file`` stays."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline import cli
from preform_pipeline.commands import run as run_command
from preform_pipeline.commands._run_deeds import Deed, RunDeeds
from preform_pipeline.errors import PipelineError
from preform_pipeline.hotfolder.testing import tetra_stl_bytes, write_recipe
from preform_pipeline.logging import configure_logging


@pytest.fixture(autouse=True)
def _logging_put_back() -> Iterator[None]:
    """``run`` in this process set the package's logging to its log file: closed after."""
    yield
    configure_logging(level="WARNING", console=io.StringIO())
    logging.getLogger("preform_pipeline").handlers.clear()


def _run_failing_with(
    exc: BaseException, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *extra: str,
    logged: bool = False, begun: Deed | None = None,
) -> tuple[int, str, Path]:
    """A dry ``run`` whose work raises ``exc`` (its log set up; a line written to it first
    when ``logged``, and ``begun`` counted as done): its status, its stderr and its output
    folder."""
    def fail(*args: object, **_kwargs: object) -> None:
        if logged:
            run_command.log.error("work_refused", reason="for the test")
        if begun is not None:
            deeds = args[-1]
            assert isinstance(deeds, RunDeeds)
            deeds.add(begun)
        raise exc

    monkeypatch.setattr(run_command, "_run_recorded", fail)
    monkeypatch.setenv("PREFORM_PIPELINE_CRASH_DIR", str(tmp_path / "crashes"))
    model = tmp_path / "part.stl"
    model.write_bytes(tetra_stl_bytes(0))
    recipe = write_recipe(tmp_path, printer=None, extra_steps=["save_form"])
    out, err = io.StringIO(), io.StringIO()
    code = cli.run(["run", str(recipe), str(model), "--output", str(tmp_path / "out"),
                    "--dry-run", *extra], out, err)
    return code, err.getvalue(), tmp_path / "out"


class TestTheEmptyLog:
    def test_an_error_line_takes_the_empty_log_and_its_folder_back(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        code, err, out = _run_failing_with(PipelineError("refused"), tmp_path, monkeypatch)
        assert (code, err.splitlines()[-1]) == (1, "error: refused")
        assert not (out / "logs").exists()

    def test_an_error_line_before_any_work_takes_a_log_with_lines_back(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Session 43: a refused run (a store that forgot its prints, a recipe error) kept
        # a log saying only what its error line said, one more file on every try from cron.
        code, err, out = _run_failing_with(PipelineError("refused"), tmp_path, monkeypatch,
                                           logged=True)
        assert (code, err.splitlines()[-1]) == (1, "error: refused")
        assert not out.exists()

    def test_an_error_line_after_work_began_keeps_the_log(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        code, err, out = _run_failing_with(PipelineError("report refused"), tmp_path,
                                           monkeypatch, logged=True, begun=Deed.PREPARED)
        assert (code, err.splitlines()[-1]) == (1, "error: report refused")
        (log_file,) = (out / "logs").iterdir()
        events = [json.loads(line) for line in log_file.read_text().splitlines()]
        assert [e["event"] for e in events] == ["work_refused"]

    def test_an_interrupt_before_any_work_takes_the_log_back(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        code, err, out = _run_failing_with(KeyboardInterrupt(), tmp_path, monkeypatch,
                                           logged=True)
        assert (code, err.splitlines()[-1]) == (run_command.EXIT_INTERRUPTED, "interrupted")
        assert not out.exists()

    def test_an_interrupt_during_a_send_keeps_the_log(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # A print may have gone out: the record of what the run began stays.
        code, _, out = _run_failing_with(KeyboardInterrupt(), tmp_path, monkeypatch,
                                         logged=True, begun=Deed.SENT)
        assert code == run_command.EXIT_INTERRUPTED
        (log_file,) = (out / "logs").iterdir()
        assert [json.loads(line)["event"] for line in log_file.read_text().splitlines()] == [
            "work_refused"]

    def test_a_crash_keeps_the_log_that_names_its_crash_report(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Review rv42-litter: the take-back ran on every exception, and the crash's
        # `command_crashed` event (written after it) had no log file left to go to.
        code, err, out = _run_failing_with(RuntimeError("boom"), tmp_path, monkeypatch)
        assert code == cli.EXIT_CRASH and "unexpected failure" in err
        (log_file,) = (out / "logs").iterdir()
        events = [json.loads(line) for line in log_file.read_text().splitlines()]
        (crashed,) = [e for e in events if e["event"] == "command_crashed"]
        assert crashed["error_type"] == "RuntimeError"

    def test_a_log_file_asked_for_stays_though_empty(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        log_file = tmp_path / "mine.jsonl"
        code, _, _ = _run_failing_with(PipelineError("refused"), tmp_path, monkeypatch,
                                       "--log-file", str(log_file))
        assert code == 1
        assert log_file.read_bytes() == b""

"""The JSON log's short ways: the processors run inline and the file handler writes the
line itself, with the same lines, levels, filters and failures as the stdlib's way."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import structlog
from structlog.contextvars import bound_contextvars, unbind_contextvars

from preform_pipeline.clock import ManualClock
from preform_pipeline.diskspace import ROOM_RETRY_MAX_S
from preform_pipeline.logging import configure_logging, get_logger
from tests.small_disk import SmallDisk, looks_at_disks

LOGGER = "preform_pipeline.executor.runner"


def _json_handler() -> logging.FileHandler:
    (handler,) = [h for h in logging.getLogger("preform_pipeline").handlers
                  if isinstance(h, logging.FileHandler)]
    return handler


def _lines(path: Path) -> list[dict[str, Any]]:
    _json_handler().flush()
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


class _BrokenStream(io.StringIO):
    """A stream whose writes fail as a full disk's do."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    def write(self, _text: str) -> int:
        raise self.error


class _Recorder(logging.Handler):
    """The events the package's logger hands its handlers, as the console gets them."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        assert isinstance(record.msg, dict)
        self.events.append(dict(record.msg))

    @property
    def said(self) -> list[dict[str, Any]]:
        """The log file handler's own warnings."""
        return [e for e in self.events if e["event"].startswith("log_file_")]

    @classmethod
    @contextlib.contextmanager
    def on_package(cls) -> Iterator[_Recorder]:
        recorder = cls()
        logger = logging.getLogger("preform_pipeline")
        logger.addHandler(recorder)
        try:
            yield recorder
        finally:
            logger.removeHandler(recorder)


class TestSameBytes:
    """The short way writes the bytes a plain FileHandler with the same formatter writes."""

    def test_the_file_holds_what_a_plain_file_handler_writes_for_the_same_records(
        self, log_file: Path, tmp_path: Path
    ) -> None:
        plain_file = tmp_path / "plain.jsonl"
        plain = logging.FileHandler(plain_file, encoding="utf-8")
        plain.setFormatter(_json_handler().formatter)
        logging.getLogger(LOGGER).addHandler(plain)
        try:
            with bound_contextvars(run_id="r-1", build="b-7"):
                log = get_logger(LOGGER)
                log.info("step_started", kind="auto_orient", index=1, of=6)
                log.warning("build_failed", reason="käse \u2603 \"quoted\"",
                            where=Path("/parts/a b.stl"), models=[1, 2.5, None],
                            nested={"token": "t", "n": 1}, api_key="k")
        finally:
            logging.getLogger(LOGGER).removeHandler(plain)
            plain.close()

        _json_handler().flush()
        assert log_file.read_bytes() == plain_file.read_bytes()
        assert len(log_file.read_bytes().splitlines()) == 2

    def test_the_handlers_terminator_ends_each_line(self, log_file: Path) -> None:
        _json_handler().terminator = "\r\n"

        get_logger(LOGGER).info("step_started", kind="auto_orient")

        _json_handler().flush()
        written = log_file.read_bytes()
        assert written.endswith(b'"}\r\n') and written.count(b"\n") == 1
        assert json.loads(written)["event"] == "step_started"


class TestFlushed:
    """Each line is in the file when the call that logged it returns: a crash right after
    loses nothing already logged."""

    def test_the_line_is_on_disk_before_anything_flushes_the_handler(
        self, log_file: Path
    ) -> None:
        get_logger(LOGGER).info("checkpoint_saved", after_step="auto_support")

        (line,) = log_file.read_text(encoding="utf-8").splitlines()
        assert json.loads(line)["event"] == "checkpoint_saved"


class TestShortWayTaken:
    """A plain event is written without the stdlib's emit, format and flush calls."""

    def test_a_plain_event_does_not_go_through_emit(
        self, log_file: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        handler = _json_handler()
        emitted: list[logging.LogRecord] = []
        monkeypatch.setattr(handler, "emit", emitted.append)

        get_logger(LOGGER).info("step_started", kind="auto_orient")

        assert emitted == []
        assert [line["event"] for line in _lines(log_file)] == ["step_started"]

    def test_no_shared_processor_and_no_logger_handle_is_called_one_by_one(
        self, log_file: Path
    ) -> None:
        called: list[str] = []

        def watch(frame: FrameType, event: str, _arg: Any) -> None:
            if event == "call":
                code = frame.f_code
                owner = frame.f_locals.get("self")
                called.append(f"Logger.{code.co_name}" if isinstance(owner, logging.Logger)
                              else code.co_name)

        log = get_logger(LOGGER)
        log.info("warm")  # the logger's first event builds what it keeps
        sys.setprofile(watch)
        try:
            log.info("step_started", kind="auto_orient")
        finally:
            sys.setprofile(None)

        assert not {"merge_contextvars", "add_log_level", "_stamp"} & set(called)
        assert "redact_secrets" in called
        # The logger's own handle and filter are not called; its handlers are walked.
        assert not {"Logger.handle", "Logger.filter"} & set(called)
        assert "Logger.callHandlers" in called
        assert [line["event"] for line in _lines(log_file)] == ["warm", "step_started"]


class TestInlineProcessors:
    """The context, level and time an event gets inline are what the processors give it."""

    def test_an_unbound_key_is_left_out_and_an_events_own_key_wins_as_in_structlog(
        self, log_file: Path
    ) -> None:
        ours = get_logger(LOGGER)
        theirs = structlog.get_logger(LOGGER)

        with bound_contextvars(run_id="r-1", build="b-7", server="s-1"):
            unbind_contextvars("server")
            ours.warning("build_failed", build="own", reason="r")
            theirs.warning("build_failed", build="own", reason="r")

        short, whole = _lines(log_file)
        for line in (short, whole):
            assert line.pop("timestamp").endswith("Z")
        assert list(short.items()) == list(whole.items())
        assert short["build"] == "own" and short["run_id"] == "r-1"
        assert "server" not in short

    @pytest.mark.parametrize(("method", "level"), [
        ("debug", "debug"), ("info", "info"), ("warning", "warning"), ("error", "error"),
    ])
    def test_each_method_writes_its_level(
        self, log_file: Path, method: str, level: str
    ) -> None:
        configure_logging(level="DEBUG", json_file=log_file, console=io.StringIO())

        getattr(get_logger(LOGGER), method)("checked")

        (line,) = _lines(log_file)
        assert line["level"] == level


class TestStdlibRules:
    """Filters, formatters, a closed file and a failing write are handled as the stdlib
    handles them."""

    def test_a_filter_on_the_file_handler_decides_what_is_written(self, log_file: Path) -> None:
        def keep(record: logging.LogRecord) -> bool:
            return isinstance(record.msg, dict) and record.msg.get("build") != "quiet"

        _json_handler().addFilter(keep)
        get_logger(LOGGER).info("build_started", build="quiet")
        get_logger(LOGGER).info("build_started", build="loud")

        assert [line["build"] for line in _lines(log_file)] == ["loud"]

    def test_a_formatter_set_on_the_handler_writes_the_line(self, log_file: Path) -> None:
        _json_handler().setFormatter(logging.Formatter("%(levelname)s %(name)s"))

        get_logger(LOGGER).info("build_started")

        _json_handler().flush()
        assert log_file.read_text(encoding="utf-8") == f"INFO {LOGGER}\n"

    def test_a_closed_handler_opens_its_file_again_for_the_next_event(
        self, log_file: Path
    ) -> None:
        get_logger(LOGGER).info("before")
        _json_handler().close()

        get_logger(LOGGER).info("after")

        assert [line["event"] for line in _lines(log_file)] == ["before", "after"]

    def test_a_failing_write_is_said_once_as_a_warning_and_the_run_goes_on(
        self, log_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        handler = _json_handler()
        handler.setStream(_BrokenStream(OSError(28, "No space left on device")))

        with _Recorder.on_package() as recorder:
            get_logger(LOGGER).info("step_started", kind="auto_orient")

        assert "--- Logging error ---" not in capsys.readouterr().err
        (said,) = recorder.said
        assert said["event"] == "log_file_unwritable"
        assert said["hint"] == "the disk is full: free some space on it, then try again"

    def test_a_value_json_cannot_encode_is_reported_and_the_next_event_is_written(
        self, log_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        get_logger(LOGGER).info("odd", counts={("a", 1): 2})  # a key that is not a text
        get_logger(LOGGER).info("next")

        assert "--- Logging error ---" in capsys.readouterr().err
        assert [line["event"] for line in _lines(log_file)] == ["next"]

    def test_a_recursion_error_in_a_write_is_not_swallowed(self, log_file: Path) -> None:
        _json_handler().setStream(_BrokenStream(RecursionError("deep")))

        with pytest.raises(RecursionError):
            get_logger(LOGGER).info("step_started", kind="auto_orient")


class TestLoggerRules:
    """A logger's own filters and its disabled flag apply before any handler."""

    def test_a_filter_on_the_logger_drops_its_events(self, log_file: Path) -> None:
        logger = logging.getLogger(LOGGER)

        def quiet(record: logging.LogRecord) -> bool:
            return isinstance(record.msg, dict) and record.msg.get("event") != "quiet"

        logger.addFilter(quiet)
        try:
            get_logger(LOGGER).info("quiet")
            get_logger(LOGGER).info("loud")
        finally:
            logger.removeFilter(quiet)

        assert [line["event"] for line in _lines(log_file)] == ["loud"]

    def test_a_disabled_logger_writes_nothing(self, log_file: Path) -> None:
        logger = logging.getLogger(LOGGER)
        logger.disabled = True
        try:
            get_logger(LOGGER).info("hidden")
        finally:
            logger.disabled = False
        get_logger(LOGGER).info("shown")

        assert [line["event"] for line in _lines(log_file)] == ["shown"]


class TestAFullDisk:
    """A log file on a real disk that fills: said once, the program goes on, the file keeps
    whole JSON lines, and the gap is said where it can be written again."""

    def test_said_once_whole_lines_kept_and_the_gap_said_once_there_is_room(
        self, small_disk: SmallDisk, log_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = small_disk.root / "run.jsonl"
        clock = ManualClock()
        configure_logging(level="INFO", json_file=path, console=io.StringIO(), clock=clock)
        log = get_logger(LOGGER)
        pad = "x" * 1000  # lines longer than what is left of the file's last page
        log.info("before")
        small_disk.fill()

        with _Recorder.on_package() as recorder:
            # Inside a build: the warning is still no build's (a build's warnings are kept
            # off the console for its summary), so it carries none of the build's context.
            with bound_contextvars(build="b-7", run_id="r-1"):
                for n in range(10):
                    log.info("while_full", n=n, pad=pad)  # none of them raises
            written = [line["n"] for line in _lines(path) if line["event"] == "while_full"]
            small_disk.free()
            clock.advance(ROOM_RETRY_MAX_S)  # the wait before the file is tried again
            log.info("after")

        assert "Logging error" not in capsys.readouterr().err
        said = recorder.said
        left_out = 10 - len(written)
        assert left_out > 0 and written == list(range(len(written)))
        assert said == [
            {"event": "log_file_unwritable", "path": str(path), "level": "warning",
             "error": "No space left on device",
             "hint": "the disk is full: free some space on it, then try again",
             "effect": "its events are left out until it can be written again",
             "timestamp": said[0]["timestamp"]},
            {"event": "log_file_resumed", "path": str(path), "events_left_out": left_out,
             "level": "warning", "timestamp": said[1]["timestamp"]},
        ]
        # Every line is whole JSON (_lines parses each), the gap marked where it is.
        events = [(line["event"], line.get("events_left_out")) for line in _lines(path)]
        assert events == [("before", None), *[("while_full", None)] * len(written),
                          ("log_file_resumed", left_out), ("after", None)]


class TestARefusedFileWaits:
    """A refused file is looked at 2 s later, then once a second while its disk stays full,
    and a try refused again waits 4, 8 ... s, on the process's clock, not at every event;
    the console gets every event meanwhile."""

    @pytest.fixture
    def clock(self, small_disk: SmallDisk, log_file: Path) -> ManualClock:
        """The package's logging with its JSON file on the small disk, on a manual clock."""
        clock = ManualClock()
        configure_logging(level="INFO", json_file=small_disk.root / "run.jsonl",
                          console=io.StringIO(), clock=clock)
        return clock

    @staticmethod
    def _each_second(recorder: _Recorder, clock: ManualClock, seconds: int, **values: Any,
                     ) -> None:
        for n in range(seconds):
            get_logger(LOGGER).info("step_done", n=n, **values)
            clock.advance(1.0)
        assert [e["n"] for e in recorder.events if e["event"] == "step_done"] == list(
            range(seconds))  # every event still reaches the console

    def test_lines_larger_than_the_room_left_are_tried_once_per_wait(
        self, small_disk: SmallDisk, clock: ManualClock
    ) -> None:
        # 80 KiB left: the look sees room (over 64 KiB), and a line of 96 KiB does not fit.
        small_disk.filler.write_bytes(b"\0" * (small_disk.free_bytes() - 80 * 1024))

        with _Recorder.on_package() as recorder:
            self._each_second(recorder, clock, 20, pad="x" * 96 * 1024)

        # Refused at 0 s; tried at 2, 6 and 14 s: the line saying the gap goes in, the event
        # after it is refused again.
        assert [e["event"] for e in recorder.said] == [
            "log_file_unwritable", *["log_file_resumed", "log_file_unwritable"] * 3]

    def test_a_disk_that_stays_full_is_looked_at_once_a_second_and_taken_at_the_next_look(
        self, small_disk: SmallDisk, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        small_disk.fill()
        looks = looks_at_disks(monkeypatch)

        with _Recorder.on_package() as recorder:
            for n in range(40 * 4):  # four events a second for 40 s
                get_logger(LOGGER).info("step_done", n=n)
                clock.advance(0.25)
            # Refused at 0 s, the first look 2 s on; then one a second: at 2, 3 ... 39 s.
            assert looks == [small_disk.root] * 38
            small_disk.free()
            get_logger(LOGGER).info("after")  # at 40 s, a second after the last look

        assert [e["n"] for e in recorder.events if e["event"] == "step_done"] == list(
            range(160))  # every event still reaches the console
        assert [(e["event"], e.get("events_left_out")) for e in recorder.said] == [
            ("log_file_unwritable", None), ("log_file_resumed", 160)]
        assert [line["event"] for line in _lines(small_disk.root / "run.jsonl")] == [
            "log_file_resumed", "after"]

    def test_a_quota_refusal_is_tried_again_after_the_wait_and_again_later_when_refused(
        self, tmp_path: Path, clock: ManualClock
    ) -> None:
        folder = tmp_path / "share"
        configure_logging(level="INFO", json_file=folder / "run.jsonl",
                          console=io.StringIO(), clock=clock)
        # A used-up quota refuses the first line; then the share is gone a while (its
        # folder unmounted): the try at 2 s is refused, and the next waits 4 s more.
        _json_handler().setStream(
            _BrokenStream(OSError(errno.EDQUOT, "Disk quota exceeded"))).close()

        with _Recorder.on_package() as recorder:
            get_logger(LOGGER).info("step_done", n=0)
            shutil.rmtree(folder)
            clock.advance(1.0)
            for n in range(1, 10):
                if n == 3:
                    folder.mkdir()  # back at 3 s: taken at the try at 6 s, not before
                get_logger(LOGGER).info("step_done", n=n)
                clock.advance(1.0)

        assert [(e["event"], e.get("events_left_out")) for e in recorder.said] == [
            ("log_file_unwritable", None), ("log_file_resumed", 6)]
        assert [line.get("n") for line in _lines(folder / "run.jsonl")] == [None, 6, 7, 8, 9]


class TestARotatedFile:
    """A log file moved away or removed while the process runs (logrotate's way) is
    followed: within a second on the process's clock its path is opened again, and every
    event is in one file or the other."""

    @pytest.fixture
    def clock(self, log_file: Path) -> ManualClock:
        """The package's logging with its JSON file at ``log_file``, on a manual clock."""
        clock = ManualClock()
        configure_logging(level="INFO", json_file=log_file, console=io.StringIO(), clock=clock)
        return clock

    @staticmethod
    def _events(path: Path) -> list[str]:
        return [line["event"] for line in _lines(path)]

    def test_a_renamed_file_keeps_that_seconds_events_and_the_path_gets_the_rest(
        self, log_file: Path, clock: ManualClock
    ) -> None:
        get_logger(LOGGER).info("before")
        rotated = log_file.rename(log_file.with_name("run.jsonl.1"))
        log_file.touch()  # logrotate's `create`
        clock.advance(0.5)
        get_logger(LOGGER).info("within_the_second")
        clock.advance(0.5)

        get_logger(LOGGER).info("after")

        assert self._events(rotated) == ["before", "within_the_second"]
        assert self._events(log_file) == ["after"]

    def test_a_removed_file_is_made_again_at_its_path(
        self, log_file: Path, clock: ManualClock
    ) -> None:
        get_logger(LOGGER).info("before")
        log_file.unlink()
        clock.advance(1.0)

        get_logger(LOGGER).info("after")

        assert self._events(log_file) == ["after"]

    def test_a_file_left_where_it_is_is_looked_at_once_a_second_not_at_every_event(
        self, log_file: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        looks: list[str] = []
        real_stat = os.stat

        def stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
            if str(path) == str(log_file):
                looks.append(str(path))
            return real_stat(path, *args, **kwargs)

        monkeypatch.setattr(os, "stat", stat)
        for n in range(40):  # four events a second for 10 s
            get_logger(LOGGER).info("step_done", n=n)
            clock.advance(0.25)

        assert len(looks) == 10
        assert [line["n"] for line in _lines(log_file)] == list(range(40))

    def test_a_path_that_cannot_be_made_again_is_said_once_and_its_events_counted(
        self, log_file: Path, tmp_path: Path
    ) -> None:
        # Review rv48: the rotated file let go, the next event's open raised at the line that
        # logged (FileNotFoundError out of `log.info`, a service's thread ended by its log).
        log_file = tmp_path / "logs" / "run.jsonl"
        log_file.parent.mkdir()
        clock = ManualClock()
        configure_logging(level="INFO", json_file=log_file, console=io.StringIO(), clock=clock)
        get_logger(LOGGER).info("before")
        shutil.rmtree(log_file.parent)  # the log's folder removed with the rotated file
        clock.advance(1.0)

        with _Recorder.on_package() as recorder:
            for n in range(3):
                get_logger(LOGGER).info("step_done", n=n)
            log_file.parent.mkdir()
            clock.advance(2.0)
            get_logger(LOGGER).info("step_done", n=3)

        assert [(e["event"], e.get("error"), e.get("events_left_out")) for e in recorder.said] == [
            ("log_file_unwritable", "No such file or directory", None),
            ("log_file_resumed", None, 3)]
        assert [(line["event"], line.get("n")) for line in _lines(log_file)] == [
            ("log_file_resumed", None), ("step_done", 3)]

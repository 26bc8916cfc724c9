"""A module logger's short way to the handlers: the same lines and records as structlog's."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import types
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.contextvars import bound_contextvars

from preform_pipeline.logging import configure_logging, get_logger

LOGGER = "preform_pipeline.executor.runner"

#: How long a test waits for a thread it started.
WAIT_S = 10.0


class _Keep(logging.Handler):
    """A stdlib handler that keeps the records it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _lines(path: Path) -> list[dict[str, Any]]:
    for handler in logging.getLogger("preform_pipeline").handlers:
        handler.flush()
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


class TestSameLines:
    """An event written the short way is the line structlog's bound logger writes."""

    @pytest.mark.parametrize("method", ["debug", "info", "warning", "error"])
    def test_fields_context_and_their_order_match_structlogs_own_way(
        self, log_file: Path, method: str
    ) -> None:
        configure_logging(level="DEBUG", json_file=log_file, console=io.StringIO())
        ours = get_logger(LOGGER, component="runner")
        theirs = structlog.get_logger(LOGGER, component="runner")

        with bound_contextvars(run_id="r-1", build="b-7", step="auto_support"):
            getattr(ours, method)("step_finished", kind="auto_support", elapsed_s=0.25,
                                  where=Path("/parts/a b.stl"), token="s3cret")
            getattr(theirs, method)("step_finished", kind="auto_support", elapsed_s=0.25,
                                    where=Path("/parts/a b.stl"), token="s3cret")

        short, whole = _lines(log_file)
        for line in (short, whole):
            assert line.pop("timestamp").endswith("Z")
        assert list(short.items()) == list(whole.items())
        assert short["component"] == "runner" and short["level"] == method
        assert short["token"] == "[redacted]"

    def test_an_event_below_a_loggers_level_is_dropped_as_before(self, log_file: Path) -> None:
        logging.getLogger("preform_pipeline.executor").setLevel(logging.WARNING)
        try:
            get_logger(LOGGER).info("step_started", kind="auto_orient")
            get_logger(LOGGER).warning("build_failed", reason="r")
        finally:
            logging.getLogger("preform_pipeline.executor").setLevel(logging.NOTSET)

        assert [line["event"] for line in _lines(log_file)] == ["build_failed"]

    def test_positional_arguments_take_structlogs_way_and_are_kept(self, log_file: Path) -> None:
        get_logger(LOGGER).info("checkpoint %s", "after-auto_support.form")

        (line,) = _lines(log_file)
        assert line["event"] == "checkpoint %s"
        assert line["positional_args"] == ["after-auto_support.form"]


class TestRecords:
    """The record a handler is given has every LogRecord attribute, with LogRecord's values
    for a record that has no caller."""

    def test_every_attribute_of_a_stdlib_record_is_there_with_its_value(
        self, log_file: Path
    ) -> None:
        keep = _Keep()
        logging.getLogger("preform_pipeline").addHandler(keep)
        got: list[logging.LogRecord] = []

        def log_in_a_build_thread() -> None:
            get_logger(LOGGER).warning("build_failed", reason="r")
            got.append(logging.LogRecord(LOGGER, logging.WARNING, "(unknown file)", 0,
                                         {}, (), None, "(unknown function)"))

        thread = threading.Thread(target=log_in_a_build_thread, name="build-7")
        thread.start()
        thread.join(WAIT_S)
        (record,) = keep.records
        (reference,) = got

        assert set(vars(reference)) <= set(vars(record))
        for name in ("name", "levelno", "levelname", "pathname", "filename", "module",
                     "lineno", "funcName", "args", "exc_info", "exc_text", "stack_info",
                     "thread", "threadName", "processName", "process"):
            assert getattr(record, name) == getattr(reference, name), name
        assert record.threadName == "build-7"
        assert record.msg["event"] == "build_failed"  # type: ignore[index]
        # The same clock: created, msecs and relativeCreated agree with LogRecord's.
        assert 0 <= reference.created - record.created < WAIT_S
        assert record.msecs == int((record.created - int(record.created)) * 1000)
        assert abs((reference.relativeCreated - record.relativeCreated)
                   - (reference.created - record.created) * 1000) < 1.0
        assert keep.format(record)  # a stdlib formatter reads it without error

    def test_while_multiprocessing_is_still_loading_the_process_name_is_the_default(
        self, log_file: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # What another thread sees while the module is being imported: it is in sys.modules
        # before its names are.
        monkeypatch.setitem(sys.modules, "multiprocessing", types.ModuleType("multiprocessing"))
        keep = _Keep()
        logging.getLogger("preform_pipeline").addHandler(keep)

        get_logger(LOGGER).info("step_started", kind="auto_orient")

        (record,) = keep.records
        assert record.processName == "MainProcess"
        assert [line["event"] for line in _lines(log_file)] == ["step_started"]

"""The configured log pipeline: what reaches the JSON file and the console, and how."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.contextvars import bound_contextvars

from preform_pipeline.logging import REDACTED, capture_logs, configure_logging, get_logger

LOGGER = "preform_pipeline.executor.runner"


@pytest.fixture
def console() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    yield stream
    configure_logging(level="WARNING", console=io.StringIO())
    logging.getLogger("preform_pipeline").handlers.clear()


def _lines(path: Path) -> list[dict[str, Any]]:
    for handler in logging.getLogger("preform_pipeline").handlers:
        handler.flush()
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


class TestJsonLines:
    """Each event is one JSON line: its fields, the bound context, level and UTC time."""

    def test_an_event_carries_its_fields_and_the_bound_context(
        self, tmp_path: Path, console: io.StringIO
    ) -> None:
        log_file = tmp_path / "run.jsonl"
        configure_logging(level="INFO", json_file=log_file, console=console)

        with bound_contextvars(run_id="r-1", build="b-7"):
            get_logger(LOGGER).info("step_started", kind="auto_orient", index=3, of=6,
                                    where=Path("/parts/a b.stl"))

        (line,) = _lines(log_file)
        timestamp = line.pop("timestamp")
        assert line == {
            "kind": "auto_orient", "index": 3, "of": 6, "where": "/parts/a b.stl",
            "event": "step_started", "run_id": "r-1", "build": "b-7", "level": "info",
        }
        assert timestamp.endswith("Z") and "T" in timestamp

    def test_secrets_are_redacted_every_time_the_same_text_comes_by(
        self, tmp_path: Path, console: io.StringIO
    ) -> None:
        log_file = tmp_path / "run.jsonl"
        configure_logging(level="INFO", json_file=log_file, console=console)
        log = get_logger(LOGGER)

        for _ in range(2):
            log.info("called", url="http://user:pa55@host/x", api_key="k-1",
                     header="Bearer abc.def")

        for line in _lines(log_file):
            assert line["url"] == f"http://user:{REDACTED}@host/x"
            assert line["api_key"] == REDACTED
            assert line["header"] == f"Bearer {REDACTED}"

    def test_an_exception_event_keeps_its_traceback(
        self, tmp_path: Path, console: io.StringIO
    ) -> None:
        log_file = tmp_path / "run.jsonl"
        configure_logging(level="INFO", json_file=log_file, console=console)

        try:
            raise KeyError("lost")
        except KeyError:
            get_logger(LOGGER).exception("build_internal_error")

        (line,) = _lines(log_file)
        assert line["event"] == "build_internal_error"
        assert line["level"] == "error"
        assert line["exception"][0]["exc_type"] == "KeyError"
        assert "KeyError" in console.getvalue()

    def test_an_exception_shows_no_local_variable_and_no_credential_anywhere(
        self, tmp_path: Path, console: io.StringIO
    ) -> None:
        log_file = tmp_path / "run.jsonl"
        configure_logging(level="INFO", json_file=log_file, console=console)

        def send(client_secret: str) -> None:
            header = f"Bearer {client_secret}"
            raise RuntimeError(f"the cloud refused {header}")

        try:
            send("s3cr3t-from-the-settings")
        except RuntimeError:
            get_logger(LOGGER).exception("build_internal_error")

        (line,) = _lines(log_file)
        frames = line["exception"][0]["frames"]
        assert [f["name"] for f in frames][-1] == "send"  # where it happened is kept
        assert line["exception"][0]["exc_value"] == f"the cloud refused Bearer {REDACTED}"
        shown = console.getvalue()
        assert f"RuntimeError: the cloud refused Bearer {REDACTED}" in shown
        assert "Traceback" not in shown and "test_logging_records.py" not in shown
        assert "s3cr3t" not in shown and "s3cr3t" not in log_file.read_text(encoding="utf-8")

    def test_events_below_the_level_do_not_reach_the_file(
        self, tmp_path: Path, console: io.StringIO
    ) -> None:
        log_file = tmp_path / "run.jsonl"
        configure_logging(level="INFO", json_file=log_file, console=console)

        get_logger(LOGGER).debug("api_request", path="/scene/")
        get_logger(LOGGER).warning("build_failed", reason="r")

        assert [line["event"] for line in _lines(log_file)] == ["build_failed"]


class TestHandlers:
    """The stdlib handlers keep their levels and filters and see the event dict."""

    def test_a_handler_filter_sees_the_event_dict_and_can_drop_the_event(
        self, tmp_path: Path, console: io.StringIO
    ) -> None:
        configure_logging(level="INFO", json_file=tmp_path / "run.jsonl", console=console)
        seen: list[Any] = []

        def keep(record: logging.LogRecord) -> bool:
            seen.append(record.msg)
            return isinstance(record.msg, dict) and record.msg.get("build") != "quiet"

        for handler in logging.getLogger("preform_pipeline").handlers:
            if not isinstance(handler, logging.FileHandler):
                handler.addFilter(keep)
        get_logger(LOGGER).info("build_started", build="quiet")
        get_logger(LOGGER).info("build_started", build="loud")

        assert [event["build"] for event in seen] == ["quiet", "loud"]
        assert "build=loud" in console.getvalue()
        assert "quiet" not in console.getvalue()

    def test_a_console_at_warning_shows_no_info_event_while_the_file_has_it(
        self, tmp_path: Path, console: io.StringIO
    ) -> None:
        log_file = tmp_path / "run.jsonl"
        configure_logging(level="INFO", json_file=log_file, console=console)
        for handler in logging.getLogger("preform_pipeline").handlers:
            if not isinstance(handler, logging.FileHandler):
                handler.setLevel(logging.WARNING)

        get_logger(LOGGER).info("step_finished", elapsed_s=0.5)

        assert console.getvalue() == ""
        assert [line["event"] for line in _lines(log_file)] == ["step_finished"]

    def test_a_plain_stdlib_record_passes_the_same_processors(
        self, tmp_path: Path, console: io.StringIO
    ) -> None:
        log_file = tmp_path / "run.jsonl"
        configure_logging(level="INFO", json_file=log_file, console=console)

        with bound_contextvars(run_id="r-2"):
            logging.getLogger("preform_pipeline.somewhere").warning(
                "token=%s at %s", "x", "http://u:secret@h/"
            )

        (line,) = _lines(log_file)
        assert line["event"] == f"token=x at http://u:{REDACTED}@h/"
        assert line["run_id"] == "r-2"
        assert line["level"] == "warning"
        assert "r-2" in console.getvalue()


class TestModuleLoggers:
    """A logger made once at import follows every later configuration."""

    def test_a_logger_made_before_capture_logs_is_captured_and_then_writes_again(
        self, tmp_path: Path, console: io.StringIO
    ) -> None:
        log_file = tmp_path / "run.jsonl"
        configure_logging(level="INFO", json_file=log_file, console=console)
        log = get_logger(LOGGER)
        log.info("before")

        with capture_logs() as events:
            log.info("during", n=1)
        log.info("after")

        assert events == [{"event": "during", "n": 1, "log_level": "info"}]
        assert [line["event"] for line in _lines(log_file)] == ["before", "after"]

    def test_a_logger_follows_a_new_processor_list(
        self, tmp_path: Path, console: io.StringIO
    ) -> None:
        configure_logging(level="INFO", json_file=tmp_path / "run.jsonl", console=console)
        log = get_logger(LOGGER)
        log.info("configured")
        seen: list[dict[str, Any]] = []

        def keep(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
            seen.append(dict(event))
            raise structlog.DropEvent

        old = structlog.get_config()
        structlog.configure(processors=[keep])
        try:
            log.warning("rerouted", n=2)
        finally:
            structlog.configure(**old)

        assert seen == [{"event": "rerouted", "n": 2}]

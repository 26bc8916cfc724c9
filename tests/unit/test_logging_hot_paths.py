"""Logging on hot paths: events below the level are never built, and redaction stays whole."""

from __future__ import annotations

import enum
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from preform_pipeline.api import PreFormClient
from preform_pipeline.logging import (
    REDACTED,
    capture_logs,
    configure_logging,
    dropped,
    redact_secrets,
)

API_LOGGER = "preform_pipeline.api._http"


class Word(enum.StrEnum):
    NOTE = "see https://user:pa55word@host/x"


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "run.jsonl"
    yield path
    configure_logging(level="WARNING", console=io.StringIO())
    logging.getLogger("preform_pipeline").handlers.clear()


def _client() -> PreFormClient:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "scene-1", "models": []})

    return PreFormClient(
        "http://127.0.0.1:44388", transport=httpx.MockTransport(answer),
        check_version_on_first_use=False,
    )


def _events(path: Path) -> list[str]:
    return [json.loads(line)["event"] for line in path.read_text(encoding="utf-8").splitlines()]


class TestDropped:
    """A debug event on a hot path is skipped exactly when the level filter would drop it."""

    def test_below_the_configured_level_an_event_counts_as_dropped(self, log_file: Path) -> None:
        configure_logging(level="INFO", json_file=log_file, console=io.StringIO())

        assert dropped(API_LOGGER, logging.DEBUG)
        assert not dropped(API_LOGGER, logging.INFO)

    def test_under_capture_logs_nothing_counts_as_dropped(self, log_file: Path) -> None:
        configure_logging(level="INFO", json_file=log_file, console=io.StringIO())

        with capture_logs() as events:
            assert not dropped(API_LOGGER, logging.DEBUG)
            _client().get_scene("scene-1")

        assert [e["event"] for e in events] == ["api_request"]

    def test_request_events_reach_the_file_at_debug_and_only_then(self, log_file: Path) -> None:
        configure_logging(level="INFO", json_file=log_file, console=io.StringIO())
        _client().get_scene("scene-1")
        configure_logging(level="DEBUG", json_file=log_file, console=io.StringIO())
        _client().get_scene("scene-1")

        assert _events(log_file) == ["api_request"]


class TestRedaction:
    """Secret keys at any depth and inline credentials are replaced; plain values pass."""

    def test_values_of_every_type_are_redacted_or_kept(self) -> None:
        event = redact_secrets(None, "info", {
            "event": "x",
            "count": 3,
            "ratio": 0.5,
            "ok": True,
            "none": None,
            "api_key": "k-123",
            "nested": {"password": "p", "items": ["Bearer abc.def", 7]},
            "word": Word.NOTE,
            "pair": ("https://a:b@c/d", 1.5),
        })

        assert event == {
            "event": "x",
            "count": 3,
            "ratio": 0.5,
            "ok": True,
            "none": None,
            "api_key": REDACTED,
            "nested": {"password": REDACTED, "items": [f"Bearer {REDACTED}", 7]},
            "word": f"see https://user:{REDACTED}@host/x",
            "pair": (f"https://a:{REDACTED}@c/d", 1.5),
        }

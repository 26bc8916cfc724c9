"""What a command keeps off the console: only the events it says itself, the log file keeps
them all."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from preform_pipeline.commands._console import keep_off_console


@pytest.fixture
def console() -> Iterator[logging.StreamHandler[io.StringIO]]:
    """A console handler of the package's logger, removed after the test."""
    handler = logging.StreamHandler(io.StringIO())
    logger = logging.getLogger("preform_pipeline")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def _shown(handler: logging.Handler, event: dict[str, object]) -> bool:
    record = logging.LogRecord("preform_pipeline.servers.pool", logging.WARNING, __file__, 1,
                               event, None, None)
    return bool(handler.filter(record))


class TestKeepOffConsole:
    """An event is kept off only when its name and every field asked for match."""

    def test_only_the_refused_retirements_are_kept_off(
        self, console: logging.StreamHandler[io.StringIO]
    ) -> None:
        keep_off_console("server_retired", where={"refused": True})
        assert not _shown(console, {"event": "server_retired", "refused": True})
        # A server given up on after its crashes is not said by the command: still shown.
        assert _shown(console, {"event": "server_retired", "failures": 4})
        assert _shown(console, {"event": "server_retired", "refused": False})
        assert _shown(console, {"event": "server_unhealthy", "refused": True})

    def test_without_fields_every_event_of_the_name_is_kept_off(
        self, console: logging.StreamHandler[io.StringIO]
    ) -> None:
        keep_off_console("units_guessed")
        assert not _shown(console, {"event": "units_guessed", "model": "a.stl"})
        assert _shown(console, {"event": "model_unreadable"})

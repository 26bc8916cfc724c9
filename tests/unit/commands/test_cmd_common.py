"""What every command shares: exit codes, console log level, loading settings."""

from __future__ import annotations

import importlib
import io
import logging
from pathlib import Path

import pytest

from preform_pipeline.cli import COMMAND_MODULES
from preform_pipeline.commands._common import (
    configure_command_logging,
    load_command_settings,
)
from preform_pipeline.logging import get_logger
from preform_pipeline.settings import load_settings


class TestLoadCommandSettings:
    """Settings a command cannot read are explained on stderr, not raised."""

    def test_a_readable_file_gives_its_settings(self, tmp_path: Path) -> None:
        path = tmp_path / "settings.yaml"
        path.write_text("servers:\n  count: 3\n", encoding="utf-8")
        settings = load_command_settings(path, io.StringIO())
        assert settings is not None
        assert settings.servers.count == 3

    def test_a_broken_file_is_explained_and_gives_none(self, tmp_path: Path) -> None:
        path = tmp_path / "settings.yaml"
        path.write_text("servers:\n  count: many\n", encoding="utf-8")
        err = io.StringIO()
        assert load_command_settings(path, err) is None
        assert err.getvalue().startswith("error: ")
        assert "count" in err.getvalue()


class TestConsoleLevel:
    """The console shows events from --log-level up while the file keeps the settings' level."""

    def test_the_console_handler_takes_the_console_level(self, tmp_path: Path) -> None:
        settings = load_settings(None, env={})
        log_file = tmp_path / "log.jsonl"
        configure_command_logging(settings, "ERROR", io.StringIO(), json_file=log_file)
        handlers = logging.getLogger("preform_pipeline").handlers
        # By kind, as the command code tells them apart: the JSON log's handler is a
        # FileHandler (of its own class), the console's a plain StreamHandler.
        files = [h.level for h in handlers if isinstance(h, logging.FileHandler)]
        consoles = [h.level for h in handlers if not isinstance(h, logging.FileHandler)]
        assert consoles == [logging.ERROR]
        assert len(files) == 1 and files[0] != logging.ERROR
        for handler in handlers:
            handler.close()

    def test_a_console_level_below_the_settings_shows_its_events_on_the_console_only(
        self, tmp_path: Path
    ) -> None:
        """``--log-level DEBUG`` with the settings' INFO: the debug events reach the console
        (before, the logger dropped them at INFO), and the file still gets INFO up."""
        settings = load_settings(None, env={})
        log_file, console = tmp_path / "log.jsonl", io.StringIO()
        configure_command_logging(settings, "DEBUG", console, json_file=log_file)
        log = get_logger("preform_pipeline.hotfolder.worker")
        log.debug("probe_debug")
        log.info("probe_info")
        for handler in logging.getLogger("preform_pipeline").handlers:
            handler.close()
        assert "probe_debug" in console.getvalue() and "probe_info" in console.getvalue()
        written = log_file.read_text(encoding="utf-8")
        assert "probe_info" in written and "probe_debug" not in written


class TestCommandModules:
    """Every command the CLI lists exists (a missing one is no longer skipped quietly)."""

    @pytest.mark.parametrize("name", COMMAND_MODULES)
    def test_each_listed_command_module_imports(self, name: str) -> None:
        module = importlib.import_module(name)
        assert module.NAME and callable(module.run)

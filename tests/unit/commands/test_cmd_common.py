"""What every command shares: exit codes, console log level, loading settings."""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import io
import logging
from pathlib import Path

import pytest

from preform_pipeline.cli import COMMAND_MODULES
from preform_pipeline.commands._common import (
    configure_command_logging,
    load_command_settings,
)
from preform_pipeline.commands.arguments import COMMANDS, arguments_module, command_module
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


def _dests(parser: argparse.ArgumentParser) -> set[str]:
    """What parsing a line can set on ``args``: each option's and subcommand's ``dest``."""
    found: set[str] = set()
    for action in parser._actions:
        found.add(action.dest)
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found |= _dests(child)
    return found


def _args_attributes(source: str) -> tuple[set[str], set[str]]:
    """The attributes of ``args`` a module reads (``args.x``, ``getattr(args, "x", ...)``)
    and those it sets itself (``args.x = ...``)."""
    read: set[str] = set()
    set_: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "args":
            (set_ if isinstance(node.ctx, ast.Store) else read).add(node.attr)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "hasattr") and node.args
              and isinstance(node.args[0], ast.Name) and node.args[0].id == "args"
              and isinstance(node.args[1], ast.Constant)):
            read.add(str(node.args[1].value))
    return read, set_


@pytest.mark.parametrize("name", list(COMMANDS))
class TestArgumentsAndCommandAgree:
    """Review (rv45-spawn): a command is two modules since session 45, its arguments
    (``commands/arguments/<name>.py``, all the CLI imports to parse) and what it does
    (``commands/<name>.py``); an option declared in one and not read in the other, or read
    and never declared (an AttributeError at run time, a crash report), is drift."""

    def test_the_command_hands_out_its_arguments_modules_names(self, name: str) -> None:
        arguments = importlib.import_module(arguments_module(name))
        command = importlib.import_module(command_module(name))
        assert (name, COMMANDS[name]) == (arguments.NAME, arguments.HELP)
        assert (command.NAME, command.HELP, command.add_arguments) == (
            arguments.NAME, arguments.HELP, arguments.add_arguments)

    def test_what_the_command_reads_of_args_its_arguments_declare(self, name: str) -> None:
        parser = argparse.ArgumentParser()
        importlib.import_module(arguments_module(name)).add_arguments(parser)
        declared = _dests(parser)
        spec = importlib.util.find_spec(command_module(name))
        assert spec is not None and spec.origin is not None
        read, set_ = _args_attributes(Path(spec.origin).read_text(encoding="utf-8"))
        assert read, "the command reads no option: the scan found nothing to check"
        assert read - set_ - declared == set()
        # Every option declared is read (the subcommands' dests aside: argparse reads them
        # to require a subcommand), so none is left offered and ignored.
        subcommands = {action.dest for action in parser._actions
                       if isinstance(action, argparse._SubParsersAction)}
        assert declared - read - subcommands - {"help"} == set()

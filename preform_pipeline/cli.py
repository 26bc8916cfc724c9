"""Command line: ``preform-pipeline COMMAND ...``.

Each command lives in its own module under :mod:`preform_pipeline.commands` and exposes
``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args, stdout, stderr) -> int``; this
module only parses and dispatches, so commands stay independent and testable with injected
streams.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, TextIO

from preform_pipeline import __version__
from preform_pipeline.commands._common import (
    DEFAULT_CONSOLE_LOG_LEVEL,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
)
from preform_pipeline.errors import PipelineError
from preform_pipeline.logging import configure_logging

__all__ = ["COMMAND_MODULES", "Command", "main", "parse_args", "run"]

#: Command modules in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "preform_pipeline.commands.validate",
    "preform_pipeline.commands.plan",
    "preform_pipeline.commands.run",
    "preform_pipeline.commands.jobs",
    "preform_pipeline.commands.watch",
    "preform_pipeline.commands.verify",
    "preform_pipeline.commands.service",
)

class Command(Protocol):
    NAME: str
    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int: ...


def _commands() -> list[Command]:
    # Every listed command exists: a missing module is a packaging bug and fails loudly.
    return [importlib.import_module(name) for name in COMMAND_MODULES]


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, Command]:
    parser = argparse.ArgumentParser(
        prog="preform-pipeline",
        description="Batch job preparation for Formlabs printers.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    by_name: dict[str, Command] = {}
    for command in _commands():
        sp = sub.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        command.add_arguments(sp)
        by_name[command.NAME] = command
    args = parser.parse_args(list(argv))
    return args, by_name[args.command]


def run(argv: Sequence[str], stdout: TextIO, stderr: TextIO) -> int:
    """Run one command line; returns the exit status instead of exiting."""
    try:
        args, command = parse_args(argv)
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    # Log events go to stderr unless a command (run, watch) sets up its own log file; structlog's
    # default would print them on stdout, mixed into JSON output meant for tools.
    configure_logging(level=DEFAULT_CONSOLE_LOG_LEVEL, console=stderr)
    try:
        return command.run(args, stdout, stderr)
    except PipelineError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted", file=stderr)
        return EXIT_INTERRUPTED


def main() -> None:
    sys.exit(run(sys.argv[1:], sys.stdout, sys.stderr))


if __name__ == "__main__":
    main()

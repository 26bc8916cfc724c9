"""Command line: ``preform-pipeline COMMAND ...``.

Each command lives in its own module under :mod:`preform_pipeline.commands` and exposes
``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args, stdout, stderr) -> int``; this
module only parses and dispatches, so commands stay independent and testable with injected
streams.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn, Protocol, TextIO, cast

from preform_pipeline import __version__
from preform_pipeline.cloud.credentials import ENV_CLIENT_SECRET, ENV_CLIENT_SECRET_FILE
from preform_pipeline.commands._common import (
    DEFAULT_CONSOLE_LOG_LEVEL,
    EXIT_BROKEN_PIPE,
    EXIT_CRASH,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
)
from preform_pipeline.crash import crash_dir, shorten, write_crash_report, write_full_message
from preform_pipeline.errors import ConfigError, PipelineError
from preform_pipeline.interrupts import EARLY_STOP
from preform_pipeline.logging import configure_logging, get_logger
from preform_pipeline.recipes.settings_check import position_settings_error
from preform_pipeline.secretargs import command_letters, refuse_secret_option
from preform_pipeline.settings import default_store_path
from preform_pipeline.wording import quoted, visible_lines

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
    "preform_pipeline.commands.fleet",
    "preform_pipeline.commands.nodes",
    "preform_pipeline.commands.store",
    "preform_pipeline.commands.serve",
)

_log = get_logger(__name__)


class Command(Protocol):
    NAME: str
    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int: ...


#: A command's module is named as the command (``commands/jobs.py`` is ``jobs``).
_MODULE_OF: dict[str, str] = {name.rpartition(".")[2]: name for name in COMMAND_MODULES}


def _commands(argv: Sequence[str]) -> list[Command]:
    # A line that starts with a command's name is parsed by that command alone, so only its
    # module is imported: each pulls in its own stack (numpy, httpx, Starlette), a large part
    # of every start. The top-level parser takes no part in such a line (its usage line names
    # no command), so what it says is the same. Anything else (--help, a typo) lists them all.
    # Every listed command exists: a missing module is a packaging bug and fails loudly.
    chosen = _MODULE_OF.get(argv[0]) if argv else None
    return [importlib.import_module(name) for name in ((chosen,) if chosen else COMMAND_MODULES)]


#: Where the one secret the commands use is read from instead (docs/settings.md, "cloud").
_SECRETS_GO = (f"give the Web API client secret as ${ENV_CLIENT_SECRET}, or in a file named "
               f"by ${ENV_CLIENT_SECRET_FILE} or the settings' cloud.client_secret_file "
               "(docs/settings.md)")


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage error also says when a file's name was read as an
    option: ``run recipe.yaml -rf.stl`` said only "the following arguments are required:
    MODELS", of a line that names one. ``typed``: the command line (:func:`_parser_for`)."""

    typed: tuple[str, ...] = ()

    def error(self, message: str) -> NoReturn:
        dashed = next((word for word in self.typed
                       if word.startswith("-") and word != "-" and os.path.lexists(word)), None)
        if dashed is not None:
            message += (f" ({quoted(dashed)} is a file here, but was read as an option: to "
                        f"name it, write ./{dashed}, or put -- before the file names)")
        super().error(message)


def _parser_for(argv: Sequence[str]) -> type[_Parser]:
    """A :class:`_Parser` class that knows ``argv``: argparse makes the subcommands' parsers
    (and theirs) of its parser's class."""
    return type("_TypedParser", (_Parser,), {"typed": tuple(argv)})


def _parser(argv: Sequence[str]) -> tuple[_Parser, dict[str, Command]]:
    """The parser for ``argv`` (its command's alone when it names one), and its commands."""
    parser = _parser_for(argv)(
        prog="preform-pipeline",
        description="Batch job preparation for Formlabs printers.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    by_name: dict[str, Command] = {}
    for command in _commands(argv):
        sp = sub.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        command.add_arguments(sp)
        by_name[command.NAME] = command
    return parser, by_name


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, Command]:
    parser, by_name = _parser(argv)
    return _parsed(parser, by_name, argv)


def _parsed(parser: _Parser, by_name: Mapping[str, Command], argv: Sequence[str]
            ) -> tuple[argparse.Namespace, Command]:
    args, extra = parser.parse_known_args(list(argv))
    if extra:
        # argparse leaves what a subcommand did not take to the top-level parser, whose
        # usage line says nothing about the subcommand typed: the innermost one says it.
        _innermost(parser, args).error(f"unrecognized arguments: {' '.join(extra)}")
    return args, by_name[args.command]


def _innermost(parser: argparse.ArgumentParser, args: argparse.Namespace
               ) -> argparse.ArgumentParser:
    """The (sub)parser of the deepest subcommand ``args`` chose (``jobs retry``)."""
    while True:
        chosen = next(
            (action.choices[name] for action in parser._actions
             if isinstance(action, argparse._SubParsersAction)
             and isinstance(name := getattr(args, action.dest, None), str)
             and name in action.choices),
            None,
        )
        if chosen is None:
            return parser
        parser = chosen


def run(argv: Sequence[str], stdout: TextIO, stderr: TextIO) -> int:
    """Run one command line; returns the exit status instead of exiting.

    This is the one place errors meet the user: a :class:`PipelineError` prints its message
    (cut to a readable length, the full text kept in a file); anything else prints one line
    naming a crash report that holds the traceback; a closed output pipe (``| head``) ends
    quietly. Only ``SystemExit`` from argparse and ``KeyboardInterrupt`` pass as themselves.
    """
    stderr = _VisibleLines.over(stderr)
    parser, by_name = _parser(argv)
    # The letters of the command typed, not of every command: ``jobs list -v hunter2`` was
    # echoed by argparse while ``-v`` counted as the program's (it is run's alone).
    if refuse_secret_option(argv, stderr, instead=_SECRETS_GO,
                            letters=command_letters(parser, argv)):
        return EXIT_USAGE
    try:
        # argparse writes to sys.stdout (--help, --version) and sys.stderr (its usage errors,
        # which echo what was typed: an unknown option holding ESC[2J cleared the terminal):
        # pointed at this call's streams, its errors pass through the same escapes as ours.
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            args, command = _parsed(parser, by_name, argv)
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    # Log events go to stderr unless a command (run, watch) sets up its own log file; structlog's
    # default would print them on stdout, mixed into JSON output meant for tools.
    configure_logging(level=DEFAULT_CONSOLE_LOG_LEVEL, console=stderr)
    if not getattr(command, "TAKES_EARLY_STOP", False):
        # Its own signal handling (or the default) from here, with a stop that came early.
        EARLY_STOP.release()
    try:
        return command.run(args, stdout, stderr)
    except PipelineError as exc:
        return _report_known(exc, stderr)
    except KeyboardInterrupt:
        _print_safely("interrupted", stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_BROKEN_PIPE
    except Exception as exc:  # the one top-level handler: no traceback reaches the screen
        return _report_crash(exc, argv, stderr)


class _VisibleLines(io.TextIOBase):
    """The commands' stderr: each hidden character a line carries written as its escape,
    line breaks kept (:func:`visible_lines`). Errors and warnings there quote paths typed on the
    command line and names from files (``error: models/x<ESC>[2J.stl: no such file``): done
    here, where every such line reaches the console, rather than at each ``print``."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream

    @classmethod
    def over(cls, stream: TextIO) -> TextIO:
        # A TextIO in every way the commands use one (write, flush, isatty, fileno).
        return cast(TextIO, stream if isinstance(stream, cls) else cls(stream))

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._stream.write(visible_lines(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()


def _print_safely(text: str, stream: TextIO) -> None:
    try:
        print(text, file=stream)
        stream.flush()
    except (BrokenPipeError, OSError, ValueError):
        pass  # nowhere left to say it


def _crash_folder(stderr: TextIO) -> Path:
    try:
        data_dir: Path | None = default_store_path().parent
    except (ConfigError, RuntimeError, OSError):  # no home folder: the temporary folder then
        data_dir = None
    try:
        return crash_dir(data_dir)
    except ConfigError as exc:  # a bad PREFORM_PIPELINE_CRASH_DIR must not hide the report
        _print_safely(f"warning: {exc}; writing to the default folder instead", stderr)
        return crash_dir(data_dir, env={})


def _report_known(exc: PipelineError, stderr: TextIO) -> int:
    if isinstance(exc, ConfigError):
        # Settings problems name their line and column, as `validate --settings` does.
        with contextlib.suppress(PipelineError, OSError):
            exc = position_settings_error(exc)
    # Escaped before it is cut: shortening splits at any line break, a typed path's \r too.
    text = visible_lines(str(exc))
    short = shorten(text)
    if short != text:
        with contextlib.suppress(OSError):
            short += f"\n(full message in {write_full_message(text, _crash_folder(stderr))})"
    _print_safely(f"error: {short}", stderr)
    return EXIT_FAILURE


def _report_crash(exc: Exception, argv: Sequence[str], stderr: TextIO) -> int:
    what = shorten(f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else
                   type(exc).__name__, 200)
    try:
        where = f"; details in {write_crash_report(exc, argv, _crash_folder(stderr))}"
    except OSError:
        where = "; no crash report could be written"
    # Info, not error: the console (WARNING) shows only the line below; log files keep it.
    _log.info("command_crashed", error_type=type(exc).__name__, crash_report=where)
    _print_safely(f"error: unexpected failure ({what}){where}; please report it", stderr)
    return EXIT_CRASH


def main() -> None:
    EARLY_STOP.install()  # already, when started through __main__
    status = run(sys.argv[1:], sys.stdout, sys.stderr)
    try:
        sys.stdout.flush()  # here, not at exit, so a reader that went away is noticed now
    except BrokenPipeError:
        status = EXIT_BROKEN_PIPE
    if status == EXIT_BROKEN_PIPE:
        # Python flushes stdout once more at exit; with the reader gone that flush would print
        # "Exception ignored ... BrokenPipeError". Point stdout at nothing first.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
    sys.exit(status)

if __name__ == "__main__":
    main()

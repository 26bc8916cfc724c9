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
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, Protocol, TextIO, cast

from preform_pipeline import __version__
from preform_pipeline.cloud.credentials import ENV_CLIENT_SECRET, ENV_CLIENT_SECRET_FILE
from preform_pipeline.commands.arguments import COMMANDS, arguments_module, command_module
from preform_pipeline.commands.arguments.common import DEFAULT_CONSOLE_LOG_LEVEL
from preform_pipeline.commands.exits import (
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
from preform_pipeline.secretargs import command_letters, refuse_secret_option
from preform_pipeline.wording import quoted, visible_lines

__all__ = ["COMMAND_MODULES", "Command", "main", "parse_args", "run"]

#: Command modules in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = tuple(command_module(name) for name in COMMANDS)

_log = get_logger(__name__)


class Command(Protocol):
    NAME: str
    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int: ...


class _Arguments(Protocol):
    """A command's arguments alone (``commands/arguments/``), cheap to import."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...


def _arguments_of(argv: Sequence[str]) -> dict[str, _Arguments]:
    # argparse hands a line to the subcommand one of its words names, so only the commands
    # named in it need their arguments; the others are listed by name and help (--help, a
    # typo) and their modules left unimported: each imports its own stack when it runs
    # (numpy, httpx, Starlette), a large part of every start. Every listed command has its
    # module: a missing one is a packaging bug and fails loudly.
    named = dict.fromkeys(word for word in argv if word in COMMANDS)
    return {name: importlib.import_module(arguments_module(name)) for name in named}


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


def _parser(argv: Sequence[str]) -> _Parser:
    """The parser for ``argv``: every command listed, the arguments of those it names."""
    parser = _parser_for(argv)(
        prog="preform-pipeline",
        description="Batch job preparation for Formlabs printers.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    arguments = _arguments_of(argv)
    for name, text in COMMANDS.items():
        sp = sub.add_parser(name, help=text, description=text)
        if name in arguments:
            arguments[name].add_arguments(sp)
    return parser


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, Command]:
    return _parsed(_parser(argv), argv)


def _parsed(parser: _Parser, argv: Sequence[str]) -> tuple[argparse.Namespace, Command]:
    args, extra = parser.parse_known_args(list(argv))
    if extra:
        # argparse leaves what a subcommand did not take to the top-level parser, whose
        # usage line says nothing about the subcommand typed: the innermost one says it.
        _innermost(parser, args).error(f"unrecognized arguments: {' '.join(extra)}")
    # What the command does is imported now that its line is known to be good.
    command: Command = importlib.import_module(command_module(args.command))
    return args, command


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
    parser = _parser(argv)
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
            args, command = _parsed(parser, argv)
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
    # Imported here: the settings (and PyYAML) are no part of a start that fails before
    # any command read them, nor of --help and --version.
    from preform_pipeline.settings import default_store_path

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
        # Imported here, as the settings are (_crash_folder).
        from preform_pipeline.recipes.settings_check import position_settings_error

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

"""Start-up and serving loop shared by the simulators' command lines (PreFormServer, Dashboard).

Both talk like PreFormServer on stdout: a banner, ``Listening on <host>...``, ``HTTP server
listening on port <port>``, their own extra lines, then ``READY FOR INPUT``; a taken port prints
a line containing ``address is already in use`` and exits 1. Both log to stderr or a JSON-lines
file, and stop cleanly with status 0 on SIGINT / SIGTERM (SIGBREAK on Windows). Each command
line keeps its own flags, banner and extra lines.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TextIO

from preform_pipeline.errors import ConfigError
from preform_pipeline.interrupts import stop_on_signals
from preform_pipeline.logging import configure_logging, get_logger
from preform_pipeline.serverlines import PORT_IN_USE_TEXT, READY_LINE
from preform_pipeline.simulator.http import ThreadedHTTPApp
from preform_pipeline.simulator.logsink import unblocked
from preform_pipeline.userpath import expand_user

__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "LISTENING_PATTERN",
    "LOG_LEVELS",
    "PORT_IN_USE_TEXT",
    "READY_LINE",
    "add_logging_arguments",
    "configure_cli_logging",
    "report_bind_failure",
    "say",
    "serve_until_stopped",
    "stop_on_signals",
]

EXIT_OK: Final = 0
#: Start-up failed: port taken, engine cannot be loaded, host cannot be bound.
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2

#: Matches the stdout line that names the bound port (useful with ``--port 0``).
LISTENING_PATTERN: Final = re.compile(r"listening on port (\d+)")

LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")

# How often the main thread wakes while waiting for a stop signal. A plain Event.wait()
# without timeout cannot be interrupted by Ctrl+C on Windows.
_SIGNAL_POLL_S: Final = 0.25

# errno of a taken port: EADDRINUSE on POSIX, WSAEADDRINUSE on Windows. Windows also answers
# WSAEACCES for ports held exclusively by another process or reserved (Hyper-V ranges); a pool
# must react to both by choosing another port, so both are reported as "in use" there.
_ADDRESS_IN_USE: Final = frozenset(
    {errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", 10048)}
    | ({getattr(errno, "WSAEACCES", 10013)} if sys.platform == "win32" else set())
)


_log = get_logger(__name__)


def say(stdout: TextIO, line: str) -> None:
    """Print one start-up line."""
    # Whoever started us reads these lines through a pipe: flush each at once.
    stdout.write(line + "\n")
    stdout.flush()


def path_option(option: str, *, secret: bool = False) -> Callable[[str], Path]:
    """An argparse ``type`` for a path option: ``~`` and ``~name`` expanded as the pipeline
    expands them (:func:`~preform_pipeline.userpath.expand_user`). Its servers start us
    without a shell (``servers.extra_args``): a ``--fleet-dir ~/lab`` taken as written was a
    folder named ``~`` below our working folder, not the one the pipeline reads."""

    def parse(text: str) -> Path:
        try:
            return expand_user(text, source=option, secret=secret)
        except ConfigError as exc:  # argparse's usage error names the option and the value
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def add_logging_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--log-file`` and ``--log-level``."""
    parser.add_argument(
        "--log-file", type=path_option("--log-file"), default=None,
        help="write the structured log as JSON lines here; stderr then shows warnings only",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=LOG_LEVELS,
        help="log level (default INFO: one line per request)",
    )


def configure_cli_logging(level: str, log_file: Path | None, stderr: TextIO) -> None:
    """Log to ``stderr``; with ``log_file``, everything there and only warnings on ``stderr``.

    A full ``stderr`` pipe that nobody reads (Formlabs' own launcher never reads it) must not
    stop the server, so the console is an :func:`~preform_pipeline.simulator.logsink.unblocked`
    stream.
    """
    configure_logging(level=level, json_file=log_file, console=unblocked(stderr))
    if log_file is not None:
        # The file gets everything; stderr only what a person must see.
        for handler in logging.getLogger("preform_pipeline").handlers:
            if not isinstance(handler, logging.FileHandler):
                handler.setLevel(logging.WARNING)


def report_bind_failure(stdout: TextIO, host: str, port: int, exc: OSError) -> int:
    """Say why the server could not bind (a taken port in words a pool looks for); the status."""
    where = f"{host}:{port}"
    if exc.errno in _ADDRESS_IN_USE:
        say(stdout, f"HTTP server failed to start on {where}: {PORT_IN_USE_TEXT}")
        _log.error("start_failed", reason="port in use", host=host, port=port)
    else:
        say(stdout, f"HTTP server failed to start on {where}: {exc}")
        _log.error("start_failed", reason="cannot bind", address=where, error=str(exc))
    return EXIT_FAILURE


def serve_until_stopped(
    server: ThreadedHTTPApp,
    stdout: TextIO,
    stop: threading.Event,
    received: Sequence[int],
    *,
    extra_lines: Sequence[str] = (),
    started: Mapping[str, Any],
) -> int:
    """Announce the bound server, serve until ``stop`` is set, shut it down; the exit status.

    ``extra_lines`` follow the port line on stdout; ``started`` are further fields of the
    ``server_started`` event.
    """
    try:
        say(stdout, f"Listening on {server.host}...")
        say(stdout, f"HTTP server listening on port {server.port}")
        for line in extra_lines:
            say(stdout, line)
        _log.info("server_started", url=server.url, pid=os.getpid(), **started)
        server.start()
        say(stdout, READY_LINE)
        while not stop.wait(_SIGNAL_POLL_S):
            pass
        _log.info("server_stopping", signal=received[0] if received else None)
    finally:
        server.shutdown()
    _log.info("server_stopped", port=server.port)
    return EXIT_OK

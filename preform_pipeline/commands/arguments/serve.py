"""``serve``'s command line: its arguments, cheap to import (arguments/__init__.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Final

from preform_pipeline.commands.arguments import COMMANDS
from preform_pipeline.commands.arguments.common import add_console_level_argument

__all__ = ["HELP", "MAX_PORT", "NAME", "add_arguments"]

NAME: Final = "serve"
HELP: Final = COMMANDS[NAME]

#: The highest TCP port (web.port's schema allows 0 to this).
MAX_PORT = 65535


def _port(text: str) -> int:
    """An argparse type: a TCP port, as web.port takes it (0: any free port). Out of range, the
    server thread died with a traceback and the error asked whether the port was taken."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= MAX_PORT:
        raise argparse.ArgumentTypeError(
            f"{port} is not a port: ports go from 1 to {MAX_PORT} (0: any free port)")
    return port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("settings", type=Path, metavar="SETTINGS", nargs="?",
                        help="settings YAML file (its `web:` section names the users)")
    parser.add_argument("--host", help="address to bind (default: web.host, else 127.0.0.1)")
    parser.add_argument("--port", type=_port,
                        help="port (default: web.port, else 8765; 0: any free port)")
    parser.add_argument("--hash-secret", action="store_true",
                        help="read a password or token from stdin and print its secret_hash")
    add_console_level_argument(parser, "the settings' logging.file gets the settings' level")

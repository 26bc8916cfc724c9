"""``service``'s command line: its arguments, cheap to import (arguments/__init__.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Final

from preform_pipeline.commands.arguments import COMMANDS

__all__ = ["DEFAULT_SERVICE_NAME", "HELP", "METHODS", "NAME", "add_arguments"]

NAME: Final = "service"
HELP: Final = COMMANDS[NAME]

METHODS: Final[dict[str, tuple[str, ...]]] = {
    "linux": ("systemd",),
    "macos": ("launchd",),
    "windows": ("nssm", "schtasks"),
}

DEFAULT_SERVICE_NAME: Final = "preform-pipeline"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (
        ("install", "write the service definition and, once confirmed, register and start it"),
        ("uninstall", "stop the service and remove its definition"),
        ("status", "ask the service manager how the service is"),
    ):
        sub = actions.add_parser(action, help=text, description=text)
        if action == "status":
            # Status asks only the service manager, by the service's name: a settings file
            # would be read for nothing. One is still accepted, so older scripts keep working.
            sub.add_argument("settings", type=Path, metavar="SETTINGS", nargs="?",
                             help="not needed (ignored): status asks only the service manager")
        else:
            sub.add_argument("settings", type=Path, metavar="SETTINGS",
                             help="settings YAML file")
        sub.add_argument(
            "--method", choices=sorted({m for ms in METHODS.values() for m in ms}),
            help="service manager (default: systemd on Linux, launchd on macOS, nssm on "
            "Windows when installed, else schtasks)",
        )
        sub.add_argument("--name", default=DEFAULT_SERVICE_NAME,
                         help=f"service name (default {DEFAULT_SERVICE_NAME})")
        sub.add_argument("--platform", choices=sorted(METHODS),
                         help="the platform to write for (default: this one)")
        sub.add_argument("--scope", choices=("system", "user"),
                         help="systemd only: a system unit (default as root) or a user unit")
        sub.add_argument("--env-file", type=Path, metavar="PATH",
                         help="systemd only: the environment file the unit references")
        if action != "status":
            sub.add_argument("--dry-run", action="store_true",
                             help="show what would be written and run; change nothing")
            sub.add_argument("--yes", action="store_true", help="do not ask for confirmation")

"""``fleet``'s command line: its arguments, cheap to import (arguments/__init__.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Final

from preform_pipeline.commands.arguments import COMMANDS

__all__ = ["HELP", "NAME", "add_arguments"]

NAME: Final = "fleet"
HELP: Final = COMMANDS[NAME]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="fleet_action", required=True, metavar="ACTION")
    sync = actions.add_parser(
        "sync",
        help="make the Dashboard's groups match the settings' fleet section, plan first",
        description="Show the changes that make the Dashboard's printer groups match the "
        "settings' fleet section, then apply them (unless --dry-run).",
    )
    sync.add_argument("settings", type=Path, metavar="SETTINGS", help="settings YAML file")
    sync.add_argument(
        "--dry-run", action="store_true", help="show the plan and change nothing"
    )

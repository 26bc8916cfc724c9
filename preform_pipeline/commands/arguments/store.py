"""``store``'s command line: its arguments, cheap to import (arguments/__init__.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Final

from preform_pipeline.commands.arguments import COMMANDS

__all__ = ["HELP", "NAME", "add_arguments"]

NAME: Final = "store"
HELP: Final = COMMANDS[NAME]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="store_action", metavar="ACTION", required=True)
    what = "copy the SQLite store, with its history, into an empty PostgreSQL one"
    migrate = actions.add_parser("migrate", help=what, description=what)
    migrate.add_argument("--to", required=True, metavar="URL",
                         help="postgresql://user@host:5432/database (no password in it)")
    migrate.add_argument("--store", type=Path, metavar="PATH",
                         help="the SQLite store to copy (default: store.path of the settings)")
    migrate.add_argument("--settings", type=Path, metavar="FILE",
                         help="settings YAML file (for store.path)")

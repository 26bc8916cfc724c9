"""``watch``'s command line: its arguments, cheap to import (arguments/__init__.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Final

from preform_pipeline.commands.arguments import COMMANDS
from preform_pipeline.commands.arguments.common import add_console_level_argument

__all__ = ["HELP", "NAME", "add_arguments"]

NAME: Final = "watch"
HELP: Final = COMMANDS[NAME]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("settings", type=Path, metavar="SETTINGS",
                        help="settings YAML file with a `hotfolders:` section")
    parser.add_argument("--once", action="store_true",
                        help="process what is in the inboxes now, then exit")
    parser.add_argument("--dry-run", action="store_true",
                        help="prepare builds (save .form files) but do not print")
    add_console_level_argument(parser, "the settings' logging.file gets the settings' level")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--serve", action="store_true",
                        help="also serve the web dashboard (the settings' web: section; "
                        "docs/web.md)")

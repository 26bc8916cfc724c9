"""``nodes``'s command line: its arguments, cheap to import (arguments/__init__.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Final

from preform_pipeline.commands.arguments import COMMANDS

__all__ = ["HELP", "NAME", "add_arguments"]

NAME: Final = "nodes"
HELP: Final = COMMANDS[NAME]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("settings", type=Path, nargs="?", metavar="SETTINGS",
                        help="settings YAML file naming the store (store.url)")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text (default): a table; json: for tools")

"""``verify``'s command line: its arguments, cheap to import (arguments/__init__.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Final

from preform_pipeline.commands.arguments import COMMANDS
from preform_pipeline.commands.arguments.common import store_argument

__all__ = ["FORMATS", "HELP", "NAME", "add_arguments"]

NAME: Final = "verify"
HELP: Final = COMMANDS[NAME]

FORMATS = ("text", "json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--settings", type=Path, metavar="FILE", help="settings YAML file")
    parser.add_argument(
        # A text, not a Path: a Path would fold a URL's "//" and look for a file named after it.
        "--store", metavar="PATH|URL", type=store_argument,
        help="job store file or postgresql:// URL (default: the settings' store.url or "
        "store.path)",
    )
    parser.add_argument(
        "--wait", action="store_true",
        help="poll until every pending print ended or passed its deadline (default: poll once)",
    )
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format")
    parser.add_argument(
        "--quiet", action="store_true",
        help="print nothing when all is well; on stderr, each print that ended badly (once, "
        "as this verify learnt it), the errors, and a wait for the rate limits once, when it "
        "starts (for cron)",
    )

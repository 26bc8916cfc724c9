"""``plan``'s command line: its arguments, cheap to import (arguments/__init__.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Final

from preform_pipeline.commands.arguments import COMMANDS
from preform_pipeline.commands.arguments.common import add_recipe_and_models

__all__ = ["FORMATS", "HELP", "NAME", "add_arguments"]

NAME: Final = "plan"
HELP: Final = COMMANDS[NAME]

FORMATS = ("text", "mermaid", "json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_recipe_and_models(parser)
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text (default): builds, models and steps; mermaid: one flowchart per build; "
        "json: the whole plan",
    )
    parser.add_argument(
        "--servers", type=int, metavar="N", default=None,
        help="balance the builds' work over N servers, as `run` on N servers does (default: "
        "the settings' pool size; 1: as few builds, not balanced)",
    )
    parser.add_argument(
        "--settings", type=Path, metavar="FILE",
        help="settings YAML file (its pool size is the default of --servers)",
    )
    parser.add_argument(
        "--server", metavar="URL", default=None,
        help="check print targets against this PreFormServer's devices (default: the "
        "simulated fleet, when no PreFormServer is configured)",
    )

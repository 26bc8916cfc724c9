"""``validate``'s command line: its arguments, cheap to import (arguments/__init__.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Final

from preform_pipeline.commands.arguments import COMMANDS
from preform_pipeline.commands.arguments.common import positive_seconds
from preform_pipeline.recipes.defaults import DEFAULT_SERVER_TIMEOUT_S

__all__ = ["FORMATS", "HELP", "NAME", "add_arguments"]

NAME: Final = "validate"
HELP: Final = COMMANDS[NAME]

FORMATS = ("text", "json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipes", type=Path, nargs="*", metavar="RECIPE", help="recipe YAML files")
    parser.add_argument(
        "--settings",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="check this settings file (repeatable); the PREFORM_PIPELINE_* variables that "
        "override settings are not applied (a web user's secret_env, which the file names, "
        "is read)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text (default): one line per problem and a summary per file; json: for tools",
    )
    parser.add_argument(
        "--server",
        metavar="URL",
        help="check machines and materials against this PreFormServer's /list-materials/ "
        "(e.g. http://localhost:44388); the shipped catalogue is used if it is unreachable",
    )
    parser.add_argument(
        "--server-timeout",
        type=positive_seconds,
        default=DEFAULT_SERVER_TIMEOUT_S,
        metavar="SECONDS",
        help=f"how long to wait for --server (default {DEFAULT_SERVER_TIMEOUT_S:g} s)",
    )
    parser.add_argument(
        "--require-server",
        action="store_true",
        help="fail (exit 1) when --server cannot be used, instead of falling back to the "
        "shipped catalogue",
    )

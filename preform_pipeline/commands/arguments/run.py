"""``run``'s command line: its arguments, cheap to import (arguments/__init__.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Final

from preform_pipeline.commands.arguments import COMMANDS
from preform_pipeline.commands.arguments.common import (
    add_console_level_argument,
    add_recipe_and_models,
    positive_seconds,
    store_argument,
)
from preform_pipeline.executor.defaults import DEFAULT_MAX_BUILD_ATTEMPTS, DEFAULT_STEP_TIMEOUT_S

__all__ = ["HELP", "NAME", "add_arguments"]

NAME: Final = "run"
HELP: Final = COMMANDS[NAME]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_recipe_and_models(parser)
    parser.add_argument("--settings", type=Path, metavar="FILE", help="settings YAML file")
    parser.add_argument(
        "--output", type=Path, metavar="DIR",
        help="output folder (default: the settings' output_root, else the recipe's "
        "outputs.root, relative to the recipe)",
    )
    parser.add_argument(
        "--servers", type=int, metavar="N", help="number of local servers (overrides settings)"
    )
    parser.add_argument(
        "--dry-run", action="store_true",
        help="prepare every build (save .form files, screenshots) but do not print",
    )
    parser.add_argument(
        "--log-file", type=Path, metavar="PATH",
        help="JSON-lines log (default: <output>/logs/<run id>.jsonl)",
    )
    add_console_level_argument(parser, "the file gets the settings' level")
    parser.add_argument(
        "--simulator-arg", action="append", default=[], metavar="[SERVER:]ARG",
        help="flag for simulated servers, e.g. --simulator-arg=--latency=realistic or "
        "--simulator-arg=server-1:--exit-during=auto_support (repeatable)",
    )
    parser.add_argument(
        "--step-timeout", type=positive_seconds, default=DEFAULT_STEP_TIMEOUT_S,
        metavar="SECONDS",
        help=f"longest one step may take before its server counts as hung "
        f"(default {DEFAULT_STEP_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--max-attempts", type=int, default=DEFAULT_MAX_BUILD_ATTEMPTS, metavar="N",
        help=f"attempts per build, on different servers (default {DEFAULT_MAX_BUILD_ATTEMPTS})",
    )
    parser.add_argument(
        "--keep-checkpoints", action="store_true",
        help="keep the checkpoint .form files and journals of successful builds",
    )
    parser.add_argument(
        "--quiet", action="store_true",
        help="print nothing when all is well, only the errors when not (for cron)",
    )
    parser.add_argument(
        # A text, not a Path: a Path would fold a URL's "//" and open a file named after it.
        "--store", metavar="PATH|URL", type=store_argument,
        help="job store file or postgresql:// URL to record the run in (default: the "
        "settings' store.url or store.path; "
        "a simulated run with neither set records into rehearsal-jobs.sqlite3 beside the "
        "default store)",
    )
    parser.add_argument(
        "--reprint", action="store_true",
        help="take models even when the same content was already printed or is in flight",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true",
        help="list each model skipped as already printed or in flight, and each whose "
        "units were guessed (default: one line for each kind; the log and report have each)",
    )

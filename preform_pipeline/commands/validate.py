"""``preform-pipeline validate RECIPE...``: check recipes without preparing anything.

Every problem in every file is reported at once, one per line, as
``file:line:col: $.json.path: message (did you mean 'x'?)``, followed by a summary line per
file saying which catalogue of machines and materials it was checked against. ``--format json``
prints the same as a list of objects for tools (editor plugins, CI annotations).

``--server URL`` checks machine types, materials and layer thicknesses against what a running
PreFormServer (or the simulator) offers at ``URL/list-materials/``; when the server cannot be
reached, the shipped catalogue is used and the summary says so.

Exit status: 0 when every recipe is valid, 1 otherwise, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TextIO

from preform_pipeline.catalogue import DEFAULT_CATALOGUE, Catalogue
from preform_pipeline.commands._common import EXIT_FAILURE, EXIT_OK
from preform_pipeline.recipes.validate import (
    DEFAULT_SERVER_TIMEOUT_S,
    ValidationReport,
    catalogue_from_server,
    validate_recipe,
)

__all__ = ["FORMATS", "HELP", "NAME", "add_arguments", "format_text", "run"]

NAME = "validate"
HELP = "Check recipe files and report every problem with its file, line and column."
FORMATS = ("text", "json")



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipes", type=Path, nargs="+", metavar="RECIPE", help="recipe YAML files")
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
        type=float,
        default=DEFAULT_SERVER_TIMEOUT_S,
        metavar="SECONDS",
        help=f"how long to wait for --server (default {DEFAULT_SERVER_TIMEOUT_S:g} s)",
    )


def format_text(report: ValidationReport) -> list[str]:
    """The problem lines and the summary line of one report."""
    lines = [str(problem) for problem in report.problems]
    count = len(report.problems)
    verdict = "OK" if report.valid else f"{count} problem{'s' if count != 1 else ''}"
    lines.append(f"{report.file}: {verdict} (checked against {report.catalogue_source})")
    return lines


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    catalogue: Catalogue = DEFAULT_CATALOGUE
    if args.server:
        catalogue = catalogue_from_server(args.server, timeout=args.server_timeout)
        if catalogue.source.startswith(DEFAULT_CATALOGUE.source):
            print(f"note: using the {catalogue.source}", file=stderr)
    reports = [validate_recipe(path, catalogue=catalogue) for path in args.recipes]
    if args.format == "json":
        json.dump([r.to_json() for r in reports], stdout, indent=2)
        stdout.write("\n")
    else:
        for report in reports:
            for line in format_text(report):
                print(line, file=stdout)
    return EXIT_OK if all(r.valid for r in reports) else EXIT_FAILURE

"""``preform-pipeline validate RECIPE... [--settings FILE]``: check recipes and settings.

Every problem in every file is reported at once, one per line, as
``file:line:col: $.json.path: message (did you mean 'x'?)``, followed by a summary line per
file saying which catalogue of machines and materials it was checked against. ``--format json``
prints the same as a list of objects for tools (editor plugins, CI annotations).

``--server URL`` checks machine types, materials and layer thicknesses against what a running
PreFormServer (or the simulator) offers at ``URL/list-materials/``; when the server cannot be
reached, the shipped catalogue is used: a note on stderr says so once, with the reason, each
file's summary line says "not on a server", and ``--require-server`` turns that fallback into
a failure (exit 1), said as an error, with no file called OK (``--format json``: none
``valid``). ``--format json`` keeps the reason in each file's ``catalogue_source``.

Print targets (``printer``, ``printer_ip``, ``fleet_group``) are checked against the devices of
``--server``, else, when the settings run simulated, against the declared simulated fleet: an
unknown name is a problem with a "did you mean" (docs/dispatch.md). A server lists Fleet
Control queues only once it is logged in to the Dashboard: a ``fleet_group`` is not checked
against one that lists none (the server checks it when the print is sent).

``--settings FILE`` checks a settings file the same way (every problem at once, positioned);
the ``PREFORM_PIPELINE_*`` variables that override settings are not applied to it (a
``secret_env`` it names is read).

Exit status: 0 when every file is valid, 1 otherwise, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
from typing import TextIO

from preform_pipeline.catalogue import DEFAULT_CATALOGUE, Catalogue
from preform_pipeline.commands._common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
)
from preform_pipeline.commands._printers import known_printers
from preform_pipeline.commands.arguments.validate import (
    FORMATS,
    HELP,
    NAME,
    add_arguments,
)
from preform_pipeline.recipes.settings_check import validate_settings
from preform_pipeline.recipes.validate import (
    ValidationReport,
    catalogue_from_server,
    validate_recipe,
)
from preform_pipeline.wording import counted, visible

__all__ = ["FORMATS", "HELP", "NAME", "add_arguments", "format_text", "run"]


def format_text(
    report: ValidationReport, *, against: str | None = None, unchecked: bool = False
) -> list[str]:
    """The problem lines and the summary line of one report; ``against`` names the catalogue
    in place of the report's own source (whose reason the caller said once already).
    ``unchecked``: the server ``--require-server`` asks for was not used, so a file the
    shipped catalogue finds no problem in is not called OK (the exit status is 1).

    Each line shown :func:`visible`: a file's name, and a value a problem quotes from it, may
    hold a terminal's escape sequences (a line break in one is shown as ``\\n``, so each
    problem stays one line for the tools that read them so)."""
    lines = [str(problem) for problem in report.problems]
    count = len(report.problems)
    verdict = "OK" if report.valid else counted(count, "problem")
    source = report.catalogue_source if against is None else against
    if unchecked and report.valid:
        lines.append(f"{report.file}: FAILED: not checked on a server (--require-server); "
                     f"the {DEFAULT_CATALOGUE.source} finds no problem")
    else:
        lines.append(f"{report.file}: {verdict} (checked against {source})")
    return [visible(line) for line in lines]


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    if not args.recipes and not args.settings:
        print("error: name at least one RECIPE or --settings FILE", file=stderr)
        return EXIT_USAGE
    catalogue: Catalogue = DEFAULT_CATALOGUE
    fell_back = False
    if args.server:
        catalogue = catalogue_from_server(args.server, timeout=args.server_timeout)
        fell_back = catalogue.source.startswith(DEFAULT_CATALOGUE.source)
        if fell_back and args.require_server:
            # An error, not a note: the exit status is 1, and the words say so.
            reason = catalogue.source.removeprefix(f"{DEFAULT_CATALOGUE.source} (")[:-1]
            print(f"error: --require-server: {reason}; check that PreFormServer or the "
                  "simulator runs at that address, or leave out --require-server to check "
                  "against the shipped catalogue", file=stderr)
        elif fell_back:
            # The one place the fallback is said (the summary lines name the catalogue).
            print(f"note: using the {catalogue.source}; machines and materials were not "
                  "checked against that server (check that PreFormServer or the simulator "
                  "runs at that address, or leave out --server)", file=stderr)
    # The first --settings file (else the usual settings) says whether the fleet is simulated;
    # a server that did not answer for its materials is not asked for its devices.
    printers = known_printers(
        args.settings[0] if args.settings else None,
        None if fell_back else args.server, timeout_s=args.server_timeout,
    ) if args.recipes else None
    reports = [
        validate_recipe(path, catalogue=catalogue, printers=printers) for path in args.recipes
    ]
    reports += [validate_settings(path) for path in args.settings]

    def unchecked(report: ValidationReport) -> bool:
        """Whether ``--require-server`` asked for the server this file was not checked on:
        not valid, in the text and the JSON alike (the exit status is 1)."""
        return (fell_back and args.require_server
                and report.catalogue_source == catalogue.source)

    if args.format == "json":
        # (Session 41's review: a tool reading `valid: true` beside exit 1 was told two things.)
        json.dump([r.to_json() | ({"valid": False} if unchecked(r) else {}) for r in reports],
                  stdout, indent=2)
        stdout.write("\n")
    else:
        # The note said why the server was not used; each file's line says only that.
        against = f"{DEFAULT_CATALOGUE.source}, not on a server"
        for report in reports:
            fallback = fell_back and report.catalogue_source == catalogue.source
            for line in format_text(report, against=against if fallback else None,
                                    unchecked=unchecked(report)):
                print(line, file=stdout)
    if fell_back and args.require_server:
        return EXIT_FAILURE
    return EXIT_OK if all(r.valid for r in reports) else EXIT_FAILURE

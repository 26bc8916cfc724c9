"""``preform-pipeline plan RECIPE MODELS...``: group models into builds, show each build's steps.

No server is needed: the models' geometry is read locally, models larger than the build volume
are rejected up front with their sizes, the rest are grouped into builds that fit the platform,
and for every build the step graph, the models it holds and the estimated resin (or sintered
powder) volume are printed.

MODELS are files or folders; a folder expands recursively to its ``.stl``/``.obj``/``.3mf``
files and each folder directly below it is one case, subfolders and all (see
:func:`preform_pipeline.plan.builds.case_folder`).

``--servers N`` (default: the settings' pool size, as ``run`` starts it) balances the builds'
work over N servers (:mod:`preform_pipeline.plan.balance`), so the plan shown is the one
``run`` runs; ``--servers 1`` shows the plan unbalanced.

Exit status: 0 when every model was planned, 1 when any model was rejected or unreadable, the
recipe is invalid, or the batch cannot be planned (``on_overflow: fail``), 2 for usage errors.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from datetime import datetime
from typing import Any, TextIO

from preform_pipeline.commands._common import EXIT_FAILURE, EXIT_OK, load_command_settings
from preform_pipeline.commands._printers import (
    DEFAULT_DEVICES_TIMEOUT_S,
    known_printers,
    printers_of_server,
)
from preform_pipeline.commands._sources import take_sources
from preform_pipeline.commands.arguments.plan import (
    FORMATS,
    HELP,
    NAME,
    add_arguments,
)
from preform_pipeline.errors import PipelineError, RecipeError
from preform_pipeline.logging import configure_logging
from preform_pipeline.plan.builds import (
    BuildPlan,
    Plan,
    Rejection,
    expand_model_paths,
    plan_builds,
)
from preform_pipeline.plan.powder import PowderEstimate
from preform_pipeline.recipes import load_recipe
from preform_pipeline.settings.run import RunSettings
from preform_pipeline.wording import counted, millimetres, visible, visible_lines

__all__ = ["FORMATS", "HELP", "NAME", "add_arguments", "plan_to_dict", "run"]

#: `plan` reads every file as it is now: a file just exported is planned (or refused with
#: the reader's reason), where `run` would leave one still changing for its next run.
_AS_THEY_ARE = RunSettings(quiet_period_s=0.0, incomplete_timeout_s=0.0)


def _size(size: tuple[float, float, float] | None) -> str:
    return "-" if size is None else millimetres(size)


def _what(plan: Plan) -> str:
    technology = plan.machine.technology if plan.machine else plan.recipe.technology
    return "sintered powder" if technology == "SLS" else "resin"


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The whole plan as JSON-compatible data (what ``--format json`` prints)."""
    recipe = plan.recipe
    machine = plan.machine
    return {
        "recipe": {"name": recipe.name, "source": str(recipe.source)},
        "machine": {
            "type": recipe.scene.machine_type,
            "label": machine.label if machine else None,
            "technology": machine.technology if machine else recipe.technology,
            "build_volume_mm": list(machine.build_volume_mm) if machine else None,
        },
        "material": recipe.scene.material_code,
        "ok": plan.ok,
        "servers": plan.servers,
        "builds": [_build_to_dict(b) for b in plan.builds],
        "rejected": [_rejection_to_dict(r) for r in plan.rejected],
        "warnings": list(plan.warnings),
        "total_volume_ml": round(plan.total_volume_ml, 3),
        "volume_kind": _what(plan),
    }


def _build_to_dict(build: BuildPlan) -> dict[str, Any]:
    return {
        "index": build.index,
        "name": build.name,
        "fill_ratio": round(build.fill_ratio, 4),
        "estimated_volume_ml": round(build.estimated_volume_ml, 3),
        "models": [
            {
                "path": str(m.path),
                "name": m.name,
                "case_id": m.case_id,
                "size_mm": [round(v, 3) for v in m.size_mm],
                "volume_ml": round(m.volume_mm3 / 1000.0, 3),
                "support_estimate_ml": round(m.support_estimate_mm3 / 1000.0, 3),
                "units": m.units,
                "units_source": m.units_source,
            }
            for m in build.models
        ],
        "placements": [
            {
                "path": str(p.path),
                "x_mm": round(p.x_mm, 3),
                "y_mm": round(p.y_mm, 3),
                "rotated": p.rotated,
            }
            for p in build.placements
        ],
        "graph": build.graph.to_dict(),
        "powder": dataclasses.asdict(build.powder) if build.powder is not None else None,
    }


def _rejection_to_dict(rejection: Rejection) -> dict[str, Any]:
    return {
        "path": str(rejection.path),
        "reason": rejection.reason,
        "size_mm": list(rejection.size_mm) if rejection.size_mm else None,
        "build_volume_mm": list(rejection.build_volume_mm) if rejection.build_volume_mm else None,
    }


def _powder_text(p: PowderEstimate) -> str:
    """One line of an SLS build's planned figures."""
    return (
        f"powder: packing density {p.packing_density:.0%}, bed {p.bed_height_mm:.0f} mm, "
        f"total {p.total_powder_ml:.0f} ml ({p.total_powder_kg:.2f} kg), sintered "
        f"{p.sintered_powder_ml:.0f} ml ({p.sintered_powder_kg:.2f} kg), print "
        f"{p.print_time_s / 3600:.1f} h, cooling {p.cool_to_removal_s / 3600:.1f} h to "
        f"removal + {p.cool_to_room_temperature_s / 3600:.1f} h to room temperature"
    )


def _summary(plan: Plan) -> str:
    recipe = plan.recipe
    machine = plan.machine
    where = f"{machine.label} ({machine.type_id}, {machine.technology})" if machine else "?"
    planned = plan.model_count
    builds = len(plan.builds)
    balanced = (
        f"\nwork balanced over {plan.servers} servers (--servers 1: unbalanced)"
        if plan.servers > 1 and builds > 1 else ""
    )
    return (
        f"recipe {recipe.name} ({recipe.source}) on {where}, material "
        f"{recipe.scene.material_code}: {counted(planned, 'model')} in "
        f"{counted(builds, 'build')}, {len(plan.rejected)} rejected{balanced}"
    )


def _write_text(plan: Plan, out: TextIO) -> None:
    def say(line: str = "") -> None:
        # Every line shown as escapes where it holds hidden characters: a model's path, its
        # case, a build's name, a warning or a reason may hold a terminal's escape sequences.
        print(visible_lines(line), file=out)

    what = _what(plan)
    say(_summary(plan))
    for build in plan.builds:
        say()
        say(f"build {build.index}: {build.name}: {counted(len(build.models), 'model')}, fill "
            f"{build.fill_ratio:.0%}, estimated {what} {build.estimated_volume_ml:.1f} ml")
        if build.powder is not None:
            say(f"  {_powder_text(build.powder)}")
        say("  models:")
        for m in build.models:
            case = f"  case {m.case_id}" if m.case_id is not None else ""
            say(f"    {m.path}  {_size(m.size_mm)}  {m.units} ({m.units_source}){case}")
        say("  steps:")
        # At "\n" alone, as visible_lines splits: splitlines would split at \x1c in a name.
        for line in build.graph.to_text().split("\n"):
            say(f"  {line}")
    if plan.warnings:
        say()
        say("warnings:")
        for warning in plan.warnings:
            say(f"  {warning}")
    if plan.rejected:
        say()
        say("rejected:")
        for r in plan.rejected:
            # Every reason starts with the file's path (and its size when known).
            say(f"  {r.reason}")
    say()
    say(f"total estimated {what}: {plan.total_volume_ml:.1f} ml")


def _write_rich(plan: Plan, out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    # No markup: a name holding "[b]" is shown as it is, not read as a style.
    console = Console(file=out, markup=False)
    what = _what(plan)
    # The recipe's name and file, a build's name, a model's path, a case, a warning, a
    # reason: each may hold a terminal's escape sequences, so each is shown as escapes.
    console.print(visible_lines(_summary(plan)), highlight=False, markup=False)
    for build in plan.builds:
        table = Table(
            title=visible(
                f"build {build.index}: {build.name} - fill {build.fill_ratio:.0%}, "
                f"estimated {what} {build.estimated_volume_ml:.1f} ml"
            ),
            title_justify="left",
        )
        table.add_column("model", overflow="fold")
        for column in ("case", "size (mm)", "units", f"{what} (ml)"):
            table.add_column(column)
        for m in build.models:
            table.add_row(
                visible(str(m.path)),
                visible(m.case_id or ""),
                _size(m.size_mm).removesuffix(" mm"),
                f"{m.units} ({m.units_source})",
                f"{m.volume_mm3 / 1000.0:.1f}",
            )
        console.print(table)
        if build.powder is not None:
            console.print(_powder_text(build.powder), markup=False, highlight=False)
        console.print(visible_lines(build.graph.to_text()), markup=False, highlight=False)
    for warning in plan.warnings:
        console.print(f"warning: {visible(warning)}", markup=False)
    if plan.rejected:
        table = Table(title="rejected", title_justify="left")
        table.add_column("model", overflow="fold")
        table.add_column("size (mm)")
        table.add_column("reason")
        for r in plan.rejected:
            reason = r.reason.removeprefix(f"{r.path}: ")
            table.add_row(visible(str(r.path)), _size(r.size_mm).removesuffix(" mm"),
                          visible(reason))
        console.print(table)
    console.print(f"total estimated {what}: {plan.total_volume_ml:.1f} ml", highlight=False)


def _write_mermaid(plan: Plan, out: TextIO, err: TextIO) -> None:
    for number, build in enumerate(plan.builds):
        if number:
            print(file=out)
        models = counted(len(build.models), "model")
        # A build's name and the steps' files may hold a terminal's escape sequences.
        print(visible(f"%% build {build.index}: {build.name} ({models})"), file=out)
        print(visible_lines(build.graph.to_mermaid()), file=out)
    # Mermaid output stays parseable: warnings and rejections go to stderr.
    for warning in plan.warnings:
        print(f"warning: {warning}", file=err)
    for r in plan.rejected:
        print(f"rejected: {r.reason}", file=err)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    # Everything worth saying is in the report on stdout; log lines (which structlog would
    # otherwise print to stdout, breaking --format json) go to stderr and only for errors.
    configure_logging(level="ERROR", console=stderr)
    printers = (printers_of_server(args.server, timeout_s=DEFAULT_DEVICES_TIMEOUT_S)
                if args.server else None)
    if printers is None:
        # The --settings file says which fleet a simulated print goes to, as `validate
        # --settings` and `run` read it (before session 47 `plan` read only the usual
        # settings: a recipe aimed at a declared fleet was "invalid, nothing planned").
        printers = known_printers(args.settings)
        if args.server:
            # Asked for, not done: said once here (the log's warning is below this console's
            # level), with what the print targets were checked against instead.
            instead = f"checked against {printers.source}" if printers else "not checked"
            print(f"note: {args.server} did not answer with its devices; print targets were "
                  f"{instead} (check that PreFormServer or the simulator runs at that "
                  "address, or leave out --server)", file=stderr)
    try:
        recipe = load_recipe(args.recipe, printers=printers)
    except RecipeError as exc:
        for problem in exc.problems:
            print(str(problem), file=stderr)
        print(f"{args.recipe}: recipe is invalid, nothing planned", file=stderr)
        return EXIT_FAILURE

    servers = args.servers
    if servers is None:
        settings = load_command_settings(args.settings, stderr)
        if settings is None:
            return EXIT_FAILURE
        servers = max(1, settings.pool.size)  # what `run` balances over
    elif servers < 1:
        print("error: --servers must be 1 or more", file=stderr)
        return EXIT_FAILURE
    if not expand_model_paths(args.models):
        print("error: no model files (.stl, .obj, .3mf) found in the given folders", file=stderr)
        return EXIT_FAILURE
    # As `run` reads them: case ids from folders and sidecars, the sidecars' fields, the
    # hot folder's case checks; a folder named on its own is an inbox (its loose files no
    # case's) unless its case's sidecar marks it as one case.
    sources = take_sources(args.models, recipe, rules=_AS_THEY_ARE, started_at=datetime.now())
    try:
        plan = plan_builds(recipe, list(sources.models), rejected=list(sources.rejected),
                           servers=servers)
    except PipelineError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_FAILURE

    if args.format == "json":
        print(json.dumps(plan_to_dict(plan), indent=2), file=stdout)
    elif args.format == "mermaid":
        _write_mermaid(plan, stdout, stderr)
    elif stdout.isatty():
        _write_rich(plan, stdout)
    else:
        _write_text(plan, stdout)
    return EXIT_OK if plan.ok else EXIT_FAILURE

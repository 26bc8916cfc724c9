"""``preform-pipeline run RECIPE MODELS...``: prepare (and print) model files in builds.

The recipe is validated (every problem listed, as ``validate`` does), the models are read and
planned into builds (models too large for the machine are listed with their sizes and
rejected; the others still run), the server pool starts (PreFormServer, remote servers, or,
with nothing configured, the built-in simulator, which every run then announces with a
``SIMULATED`` line and ``"simulated": true`` in the report), the builds run in parallel, and
a run report (JSON and CSV) plus a summary table close the run.

Outputs (.form files, screenshots, per-build reports) go below the output folder: ``--output``,
or the recipe's ``outputs.root`` (relative to the recipe's folder). The run report is
``<output>/reports/<run id>.json`` and ``.csv``; the JSON-lines log is
``<output>/logs/<run id>.jsonl`` unless ``--log-file`` or the settings name another.

``--simulator-arg`` passes flags to simulated servers (ignored for real ones): ``ARG`` goes
to every server, ``SERVER:ARG`` to one (``server-1:--exit-during=auto_support``); write
flags with their value joined by ``=``.

Exit status: 0 only when every build succeeded and no model was rejected; 1 otherwise (or
when nothing could run); 2 for usage errors; 130 when interrupted (Ctrl-C), after the servers
were stopped.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TextIO

from preform_pipeline.commands.validate import format_text
from preform_pipeline.config import Settings, load_settings
from preform_pipeline.errors import ConfigError, PipelineError, RecipeError
from preform_pipeline.executor import (
    DEFAULT_MAX_BUILD_ATTEMPTS,
    DEFAULT_STEP_TIMEOUT_S,
    BuildStatus,
    Runner,
    RunOptions,
    RunResult,
    make_reporter,
    new_run_id,
)
from preform_pipeline.executor.runner import run_values
from preform_pipeline.logging import configure_logging, get_logger
from preform_pipeline.plan.builds import (
    Plan,
    Rejection,
    expand_model_paths,
    plan_builds,
    read_models,
)
from preform_pipeline.recipes import load_recipe, render_template, validate_recipe
from preform_pipeline.recipes.model import Recipe
from preform_pipeline.report import write_run_report
from preform_pipeline.servers import ServerPool
from preform_pipeline.verify.tracking import (
    tracking_for_run,
    verification_failed,
    verification_lines,
)

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "DEFAULT_SIMULATOR_ARGS",
    "EXIT_OK",
    "HELP",
    "NAME",
    "SIMULATED_LINE",
    "add_arguments",
    "output_root",
    "parse_simulator_args",
    "run",
]

NAME = "run"
HELP = "Prepare model files in builds on a pool of PreFormServers (or the simulator) and print."

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130

#: Printed first on every run that uses the built-in simulator.
SIMULATED_LINE = "SIMULATED: no PreFormServer configured, running on the built-in simulator"

#: The console shows warnings and errors; everything at the settings' level goes to the file.
DEFAULT_CONSOLE_LOG_LEVEL = "WARNING"

#: Given to simulated servers before the user's ``--simulator-arg``s (which may override it):
#: their per-request log lines would only cost the runner CPU (the pool reads every line) and
#: push the warnings out of the output tail kept for a crashed server.
DEFAULT_SIMULATOR_ARGS: tuple[str, ...] = ("--log-level=WARNING",)

log = get_logger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", type=Path, metavar="RECIPE", help="recipe YAML file")
    parser.add_argument(
        "models",
        type=Path,
        nargs="+",
        metavar="MODELS",
        help="model files (.stl, .obj, .3mf) or folders of them; each folder is a case",
    )
    parser.add_argument("--settings", type=Path, metavar="FILE", help="settings YAML file")
    parser.add_argument(
        "--output", type=Path, metavar="DIR",
        help="output folder (default: the recipe's outputs.root, relative to the recipe)",
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
    parser.add_argument(
        "--log-level", default=DEFAULT_CONSOLE_LOG_LEVEL,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help=f"log level on the console (default {DEFAULT_CONSOLE_LOG_LEVEL}); the file "
        "gets the settings' level",
    )
    parser.add_argument(
        "--simulator-arg", action="append", default=[], metavar="[SERVER:]ARG",
        help="flag for simulated servers, e.g. --simulator-arg=--latency=realistic or "
        "--simulator-arg=server-1:--exit-during=auto_support (repeatable)",
    )
    parser.add_argument(
        "--step-timeout", type=float, default=DEFAULT_STEP_TIMEOUT_S, metavar="SECONDS",
        help=f"longest one step may take before its server counts as hung "
        f"(default {DEFAULT_STEP_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--max-attempts", type=int, default=DEFAULT_MAX_BUILD_ATTEMPTS, metavar="N",
        help=f"attempts per build, on different servers (default {DEFAULT_MAX_BUILD_ATTEMPTS})",
    )
    parser.add_argument(
        "--keep-checkpoints", action="store_true",
        help="keep the checkpoint .form files of successful builds",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def parse_simulator_args(
    values: Sequence[str], defaults: Sequence[str] = ()
) -> Callable[[str], tuple[str, ...]]:
    """``[SERVER:]ARG`` items → the extra simulator arguments of each server name, after
    ``defaults`` (argparse lets a later flag win, so the user's override the defaults)."""
    common: list[str] = list(defaults)
    per_server: dict[str, list[str]] = {}
    for value in values:
        head, sep, tail = value.partition(":")
        if sep and head and not head.startswith("-") and tail:
            per_server.setdefault(head, []).append(tail)
        else:
            common.append(value)

    def for_server(name: str) -> tuple[str, ...]:
        return (*common, *per_server.get(name, ()))

    return for_server


def output_root(recipe: Recipe, override: Path | None, started_at: datetime) -> Path:
    """``--output``, or the recipe's ``outputs.root`` rendered with the run's fields."""
    if override is not None:
        return override.expanduser().resolve()
    rendered = Path(render_template(recipe.outputs.root, run_values(recipe, started_at)))
    if not rendered.is_absolute():
        rendered = recipe.base_dir / rendered
    return rendered.resolve()


def _configure_logging(
    settings: Settings, log_file: Path, console_level: str, err: TextIO
) -> None:
    configure_logging(level=settings.logging.level, json_file=log_file, console=err)
    level = logging.getLevelName(console_level)
    for handler in logging.getLogger("preform_pipeline").handlers:
        if not isinstance(handler, logging.FileHandler) and isinstance(level, int):
            handler.setLevel(level)


def _size(size: tuple[float, float, float] | None) -> str:
    return "?" if size is None else " x ".join(f"{v:.1f}" for v in size) + " mm"


def _print_rejections(rejected: Sequence[Rejection], out: TextIO) -> None:
    if not rejected:
        return
    print(f"rejected {len(rejected)} model{'s' if len(rejected) != 1 else ''}:", file=out)
    for rejection in rejected:
        print(f"  {rejection.path} ({_size(rejection.size_mm)}): {rejection.reason}", file=out)


def _plan(args: argparse.Namespace, recipe: Recipe, err: TextIO) -> Plan | None:
    if not expand_model_paths(args.models):
        print("error: no model files (.stl, .obj, .3mf) found", file=err)
        return None
    unreadable: list[Rejection] = []
    models = read_models(args.models, import_spec=recipe.import_options, rejected=unreadable)
    try:
        return plan_builds(recipe, models, rejected=unreadable)
    except PipelineError as exc:
        print(f"error: {exc}", file=err)
        return None


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes = round(seconds / 60)
    return f"{minutes // 60}:{minutes % 60:02d}"


def _summary_rows(result: RunResult) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for o in result.outcomes:
        rows.append(
            (
                o.name,
                o.status.value,
                str(len(o.models)),
                "-" if o.material_ml is None else f"{o.material_ml:.1f}",
                _hours(o.print_time_s),
                o.job_id or "-",
                o.server or "-",
                str(len(o.attempts)),
                (o.reason or "")[:80] if o.status is not BuildStatus.SUCCEEDED else "",
            )
        )
    return rows


_SUMMARY_HEADERS = (
    "build", "status", "models", "material ml", "print h:mm", "job id", "server", "attempts",
    "reason",
)


def _print_summary(result: RunResult, out: TextIO) -> None:
    rows = _summary_rows(result)
    isatty = getattr(out, "isatty", None)
    if callable(isatty) and isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"run {result.run_id}", title_justify="left")
        for header in _SUMMARY_HEADERS:
            # Names, statuses and job ids are what people copy: never wrap those.
            table.add_column(header, no_wrap=header in ("build", "status", "job id", "server"))
        for row in rows:
            table.add_row(*row)
        Console(file=out).print(table)
        return
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
        for i, h in enumerate(_SUMMARY_HEADERS)
    ]
    print("  ".join(h.ljust(w) for h, w in zip(_SUMMARY_HEADERS, widths, strict=True)), file=out)
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    try:
        return _run(args, stdout, stderr)
    except KeyboardInterrupt:
        # Interrupted outside the build loop (planning, start-up): the pool, if any, was
        # closed on the way out.
        print("interrupted", file=stderr)
        return EXIT_INTERRUPTED


def _run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    try:
        settings = load_settings(args.settings)
    except ConfigError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_FAILURE
    if args.servers is not None:
        if args.servers < 1:
            print("error: --servers must be 1 or more", file=stderr)
            return EXIT_FAILURE
        settings = replace(settings, servers=replace(settings.servers, count=args.servers))

    report = validate_recipe(args.recipe)
    if not report.valid:
        for line in format_text(report):  # exactly what `preform-pipeline validate` prints
            print(line, file=stderr)
        print(f"{args.recipe}: recipe is invalid, nothing was run", file=stderr)
        return EXIT_FAILURE
    try:
        recipe = load_recipe(args.recipe)
    except RecipeError as exc:
        for problem in exc.problems:
            print(str(problem), file=stderr)
        return EXIT_FAILURE

    started_at = datetime.now()
    run_id = new_run_id(started_at)
    root = output_root(recipe, args.output, started_at)
    log_file = args.log_file or settings.logging.file or root / "logs" / f"{run_id}.jsonl"
    _configure_logging(settings, log_file.resolve(), args.log_level, stderr)

    # Web API credentials are checked before anything else: refused ones print nothing.
    try:
        tracking = tracking_for_run(
            recipe, settings.cloud, settings.verify, run_id=run_id, dry_run=args.dry_run
        )
    except PipelineError as exc:
        print(f"error: {exc}", file=stderr)
        print(f"{args.recipe}: nothing was run", file=stderr)
        return EXIT_FAILURE
    plan = _plan(args, recipe, stderr)
    if plan is None:
        if tracking is not None:
            tracking.close()
        return EXIT_FAILURE
    _print_rejections(plan.rejected, stdout)
    for warning in plan.warnings:
        print(f"warning: {warning}", file=stdout)

    pool = ServerPool(
        settings,
        simulator_args=parse_simulator_args(args.simulator_arg, DEFAULT_SIMULATOR_ARGS),
        count=len(plan.builds),  # right-sized: no idle servers for a small batch
    )
    if pool.simulated:
        print(SIMULATED_LINE, file=stdout, flush=True)
    options = RunOptions(
        output_root=root,
        run_id=run_id,
        dry_run=args.dry_run,
        max_build_attempts=max(1, args.max_attempts),
        step_timeout_s=args.step_timeout,
        keep_checkpoints=args.keep_checkpoints,
        started_at=started_at,
        print_tracking=tracking,
    )
    log.info(
        "run_configured",
        run_id=run_id,
        recipe=str(recipe.source),
        output_root=str(root),
        log_file=str(log_file),
        simulated=pool.simulated,
        pool_mode=pool.mode.value,
        servers=settings.servers.count,
        dry_run=args.dry_run,
    )
    print(f"run {run_id}: {len(plan.builds)} builds, output in {root}", file=stdout, flush=True)
    reporter = make_reporter(stdout, quiet=args.quiet)
    try:
        if plan.builds:
            pool.start()
            servers = ", ".join(
                f"{s.name} (pid {s.pid}, {s.url})" if s.pid else f"{s.name} ({s.url})"
                for s in pool.status()
            )
            print(f"servers started: {servers}", file=stdout, flush=True)
        runner = Runner(plan, pool, options=options, reporter=reporter)
        result = runner.run()
    finally:
        reporter.close()
        pool.close()
        if tracking is not None:
            tracking.close()

    json_path, csv_path = write_run_report(result, root / "reports")
    _print_summary(result, stdout)
    for line in verification_lines(result):
        print(line, file=stdout)
    if result.simulated:
        print(SIMULATED_LINE, file=stdout)
    print(f"report: {json_path} and {csv_path.name}; log: {log_file}", file=stdout)
    if result.cancelled:
        print("interrupted: servers stopped, unfinished builds are marked cancelled", file=stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK if result.ok and not verification_failed(result) else EXIT_FAILURE

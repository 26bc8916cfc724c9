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
``<output>/logs/<run id>.jsonl`` unless ``--log-file`` or the settings name another. A run
that did nothing (:mod:`~preform_pipeline.commands._run_deeds`: an empty inbox, one of
models already printed, a refusal said on stderr) writes no report and takes its own log
back, with the folders it made for it. A run's start removes the hidden temporaries of
reports and journals that a killed run of this host left there (``files.sweep_temporaries``,
the hot folder's rule).

``--simulator-arg`` passes flags to simulated servers (ignored for real ones): ``ARG`` goes
to every server, ``SERVER:ARG`` to one (``server-1:--exit-during=auto_support``; a server
the pool does not have is a usage error); write flags with their value joined by ``=``.

Every run that is not a dry run records its jobs, builds and prints in the job store
(``--store``, else the settings' ``store.url`` or ``store.path``, by default under the user's
data folder), so ``jobs`` and ``verify`` see them. It is safe to repeat from cron: a model
whose content was already printed, or is being prepared or printed (by another run or the hot
folder), is skipped and listed, under the hot folder's duplicates rule; ``--reprint`` takes it
anyway. Sends a dead earlier run left are settled first through the print owner
(docs/printing.md).

Exit status: 0 only when every build succeeded and no model was rejected; 1 otherwise (or
when nothing could run); 2 for usage errors; 130 when interrupted (Ctrl-C), 143 when stopped
by SIGTERM, both after the servers were stopped and the report written. The summary is
:mod:`preform_pipeline.commands._console`'s; its last line explains the exit status.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
from collections.abc import Callable, Collection, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Final, TextIO

from preform_pipeline.commands._common import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    LOG_SETTING_HINT,
    configure_command_logging,
    load_command_settings,
    output_line,
    queue_login_warnings,
    store_location,
)
from preform_pipeline.commands._console import (
    error_lines,
    exit_code,
    keep_off_console,
    make_console,
    plan_warnings,
    print_summary,
    quiet_build_warnings,
    route_logs,
    servers_line,
    start_saying_refusals,
    units_line,
)
from preform_pipeline.commands._printers import fleet_dir_of, printers_of_settings
from preform_pipeline.commands._run_deeds import Deed, RunDeeds
from preform_pipeline.commands._sources import take_sources, waiting_lines
from preform_pipeline.commands._store_history import earlier_prints, forgotten_prints_error
from preform_pipeline.commands.arguments.run import (
    HELP,
    NAME,
    add_arguments,
)
from preform_pipeline.commands.validate import format_text
from preform_pipeline.dispatch.leftover import LeftWaiting, send_left_waiting
from preform_pipeline.errors import (
    ConfigError,
    PipelineError,
    RecipeError,
    UnusablePathError,
)
from preform_pipeline.executor.ledger import RunLedger, is_run_build, summarize_skipped
from preform_pipeline.executor.leftover_outputs import (
    describe_empty_outputs,
    empty_outputs,
    unsaid_empty_outputs,
)
from preform_pipeline.executor.progress import (
    PlainReporter,
    RichReporter,
    make_reporter,
    rejection_lines,
    warning_lines,
)
from preform_pipeline.executor.runids import new_run_id
from preform_pipeline.executor.runroot import output_root
from preform_pipeline.executor.said_rejections import (
    SAID_ONCE,
    pass_over_said,
    passed_over_lines,
    split_said,
)
from preform_pipeline.hotfolder.files import jobs_command, sweep_temporaries
from preform_pipeline.interrupts import Termination, sigterm_as_interrupt
from preform_pipeline.logging import get_logger
from preform_pipeline.outputfolders import LOGS_FOLDER, REPORTS_FOLDER
from preform_pipeline.plan.planned import Plan
from preform_pipeline.plan.rejection import Rejection
from preform_pipeline.preflight import PathCheck, check_paths, make_folders
from preform_pipeline.printing import FleetFolderLocator, PrintLocator, PrintOwner, SendHolder
from preform_pipeline.recipes import load_recipe, validate_recipe
from preform_pipeline.recipes.model import Recipe
from preform_pipeline.report import write_build_report, write_run_report
from preform_pipeline.retention import prune_outputs
from preform_pipeline.servers import ServerPool, refuse_unreached
from preform_pipeline.servers.pool import local_server_names
from preform_pipeline.servers.reaper import describe_reaped
from preform_pipeline.settings import RunSettings, Settings
from preform_pipeline.settings.store import (
    JOBS_COMMAND,
    REHEARSAL_STORE_FILENAME,
    rehearsal_store_path,
)
from preform_pipeline.store import Job, JobState, JobStore, SqliteJobStore
from preform_pipeline.store.opening import check_store, describe_store, open_store
from preform_pipeline.userpath import expand_user
from preform_pipeline.verify.tracking import tracking_for_run
from preform_pipeline.wording import noun, visible

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_TERMINATED",
    "DEFAULT_SIMULATOR_ARGS",
    "EXIT_OK",
    "HELP",
    "LATE_IMPORTS",
    "NAME",
    "SIMULATED_LINE",
    "add_arguments",
    "parse_simulator_args",
    "run",
]


#: Printed first on every run that uses the built-in simulator.
SIMULATED_LINE = "SIMULATED: no PreFormServer configured, running on the built-in simulator"

#: Given to simulated servers before the user's ``--simulator-arg``s (which may override it):
#: their per-request log lines would only cost the runner CPU (the pool reads every line) and
#: push the warnings out of the output tail kept for a crashed server.
DEFAULT_SIMULATOR_ARGS: tuple[str, ...] = ("--log-level=WARNING",)

log = get_logger(__name__)


def parse_simulator_args(
    values: Sequence[str], defaults: Sequence[str] = ()
) -> Callable[[str], tuple[str, ...]]:
    """``[SERVER:]ARG`` items → the extra simulator arguments of each server name, after
    ``defaults`` (argparse lets a later flag win, so the user's override the defaults)."""
    common: list[str] = list(defaults)
    per_server: dict[str, list[str]] = {}
    for value in values:
        server, arg = _split_simulator_arg(value)
        if server is not None:
            per_server.setdefault(server, []).append(arg)
        else:
            common.append(value)

    def for_server(name: str) -> tuple[str, ...]:
        return (*common, *per_server.get(name, ()))

    return for_server


def _split_simulator_arg(value: str) -> tuple[str | None, str]:
    """``SERVER:ARG`` → (SERVER, ARG); an ``ARG`` for every server → (None, ARG)."""
    head, sep, tail = value.partition(":")
    if sep and head and not head.startswith("-") and tail:
        return head, tail
    return None, value


def _unknown_server_arg(values: Sequence[str], settings: Settings) -> str | None:
    """Why a ``SERVER:ARG`` of ``values`` names no server of the pool, or None.

    Left alone, such a flag reaches no server and the fault it was to inject never comes.
    """
    there = local_server_names(settings.pool.local_count)
    for value in values:
        server, _ = _split_simulator_arg(value)
        if server is not None and server not in there:
            has = (f"its {noun(len(there), 'server is', 'servers are')} {', '.join(there)}"
                   if there else "it has no local servers")
            return (f"--simulator-arg {value}: this run has no {server}: {has} "
                    f"(servers.count, or --servers)")
    return None


def _unstarted_server_args(
    values: Sequence[str], settings: Settings, count: int
) -> list[tuple[str, str, list[str]]]:
    """The ``SERVER:ARG`` items of ``values`` naming a server of the settings that this run
    does not start (its pool is right-sized: ``count`` builds start that many local servers
    at most), as (item, server, the servers started). Such a flag reaches no server.

    None when the run starts no server (no build, every model already printed): the progress
    says "no server started", which was contradicted by "this run starts only server-1"."""
    if count < 1:
        return []
    started = local_server_names(min(settings.pool.local_count, count))
    unstarted = []
    for value in values:
        server, _ = _split_simulator_arg(value)
        if server is not None and server not in started:
            unstarted.append((value, server, started))
    return unstarted


def _unstarted_server_warning(value: str, server: str, started: Sequence[str]) -> str:
    return (f"--simulator-arg {value} reaches no server: this run starts only "
            f"{', '.join(started)} (one per build), not {server}")


def _output_hint(given: Path | None, settings: Settings,
                 fix: str = "fix the folder itself") -> str:
    """What to fix when the output folder cannot be used, where that folder was chosen."""
    if given is not None:
        return f"choose another --output (or {fix})"
    if settings.output_root is not None:
        return f"fix output_root in the settings, or give --output (or {fix})"
    return f"fix outputs.root in the recipe, or give --output (or {fix})"


def _print_rejections(rejected: Sequence[Rejection], out: TextIO) -> None:
    for line in rejection_lines(rejected):
        print(line, file=out)


def _rehearsal_line(path: Path, jobs: str, ledger: RunLedger | None) -> str:
    """What this run wrote into the rehearsal store: a run whose every model was rejected
    before it became a job (a missing folder) was said to have recorded jobs there."""
    shows = f"(`{jobs}` shows them)"
    if ledger is not None and ledger.claimed:
        return f"jobs recorded in the rehearsal store {path} {shows}"
    if ledger is not None and ledger.skipped:
        return (f"no new job recorded: these models' earlier jobs are in the rehearsal store "
                f"{path} {shows}")
    return ("no job recorded in the rehearsal store: every model was rejected before it "
            "became a job")


def _plan(
    args: argparse.Namespace,
    recipe: Recipe,
    err: TextIO,
    ledger: RunLedger | None = None,
    out: TextIO | None = None,
    settings: RunSettings | None = None,
    servers: int = 1,
    output: Path | None = None,
    started_at: datetime | None = None,
) -> Plan | None:
    """The plan of the complete model files (:func:`~preform_pipeline.commands._sources.
    take_sources`, as ``plan`` reads them), its builds' work balanced over ``servers``;
    an empty plan (no builds, nothing rejected) when there is nothing to do; None after an
    error was printed. ``output``, the run's output folder, is not searched for models;
    ``started_at`` names the run (now when not given)."""
    rules = settings or RunSettings()
    # Files the claims would skip (already printed) are not read: asked of the store first.
    printed: dict[Path, Job] = {}

    def unread(paths: Sequence[Path]) -> Collection[Path]:
        assert ledger is not None
        printed.update(ledger.printed_before(paths))
        return printed.keys()

    sources = take_sources(args.models, recipe, rules=rules,
                           started_at=started_at or datetime.now(),
                           skip=() if output is None else (output,),
                           unread=unread if ledger is not None else None)
    for line in waiting_lines(sources):
        print(visible(line), file=out or err)
    unreadable = list(sources.rejected)
    models = list(sources.models)
    if not models and not sources.unread:  # nothing to claim or plan: the rejections alone
        return Plan(recipe=recipe, builds=(), rejected=tuple(unreadable))
    if ledger is not None:
        found = len(models) + len(sources.unread)
        early = ledger.skip({path: printed[path] for path in sources.unread})
        # A model refused before, unchanged and for the same reason, makes no new job (a
        # failed one a night): its rejection is passed over with the readers' below.
        models, passed = pass_over_said(ledger.store, recipe, models)
        unreadable.extend(passed)
        models, skipped = ledger.claim(models)
        skipped = early + skipped
        if skipped and not args.verbose:
            print(visible(summarize_skipped(skipped, found)), file=out or err)
        for skip in skipped if args.verbose else ():
            print(visible(skip.describe()), file=out or err)
        if skipped and not models:
            # A repeat from cron with nothing new: not an error.
            return Plan(recipe=recipe, builds=(), rejected=tuple(unreadable))
    # The planner's work (and numpy's) only for models to plan: not a repeat's skip path.
    from preform_pipeline.plan.builds import plan_builds

    try:
        return plan_builds(recipe, models, rejected=unreadable, servers=servers)
    except PipelineError as exc:
        print(f"error: {exc}", file=err)
        if ledger is not None:  # the refusal is the run's end: its claims end with it
            ledger.refused(str(exc))
        return None


#: The modules outside the standard library that ``run`` imports only once it reads a model
#: or has a build to run (the planner's numpy, session 49). Found, not imported, at its start
#: (:func:`_unfound_late_imports`): a broken install still fails there, before the store is
#: opened or a file claimed, as when the planner was imported at the top (the simulator's
#: rule: :data:`preform_pipeline.simulator.engine.LATE_IMPORTS`). A hand list, kept whole by
#: tests/unit/commands/test_cmd_run_printed_unread.py.
LATE_IMPORTS: Final = ("numpy",)


def _unfound_late_imports() -> str | None:
    """What to say when one of :data:`LATE_IMPORTS` cannot be found, or None."""
    missing = [name for name in LATE_IMPORTS if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return (f"run needs {', '.join(missing)}, which cannot be found: reinstall "
            "preform-pipeline (pip install preform-pipeline)")


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    if args.quiet:
        # Cron mails whatever a job prints: nothing when all is well; errors go to stderr
        # as they happen, and the failed builds and rejected models once at the end.
        stdout = io.StringIO()
        args.log_level = "ERROR"
    with sigterm_as_interrupt() as termination:
        try:
            return _run(args, stdout, stderr, termination)
        except KeyboardInterrupt:
            # Interrupted outside the build loop (planning, start-up): the pool, if any, was
            # closed on the way out.
            print("interrupted", file=stderr)
            return EXIT_TERMINATED if termination.received else EXIT_INTERRUPTED


def _run(
    args: argparse.Namespace, stdout: TextIO, stderr: TextIO, termination: Termination
) -> int:
    unfound = _unfound_late_imports()
    if unfound is not None:
        print(f"error: {unfound}", file=stderr)
        return EXIT_FAILURE
    settings = load_command_settings(args.settings, stderr)
    if settings is None:
        return EXIT_FAILURE
    if args.servers is not None:
        if args.servers < 1:
            print("error: --servers must be 1 or more", file=stderr)
            return EXIT_FAILURE
        settings = replace(settings, servers=replace(settings.servers, count=args.servers))
    if args.max_attempts < 1:
        # Not quietly read as 1: the user asked for something that cannot be.
        print("error: --max-attempts must be 1 or more", file=stderr)
        return EXIT_FAILURE
    unknown = _unknown_server_arg(args.simulator_arg, settings)
    if unknown is not None:
        print(f"error: {unknown}", file=stderr)
        return EXIT_USAGE

    # Simulated: print targets outside the declared fleet fail now, not after preparing.
    printers = printers_of_settings(settings)
    report = validate_recipe(args.recipe, printers=printers)
    if not report.valid:
        for line in format_text(report):  # exactly what `preform-pipeline validate` prints
            print(line, file=stderr)
        print(f"{args.recipe}: recipe is invalid, nothing was run", file=stderr)
        return EXIT_FAILURE
    try:
        recipe = load_recipe(args.recipe, printers=printers)
    except RecipeError as exc:
        for problem in exc.problems:
            print(str(problem), file=stderr)
        return EXIT_FAILURE

    started_at = datetime.now()
    run_id = new_run_id(started_at)
    root = output_root(recipe, args.output, started_at, settings.output_root)
    try:  # before anything is written or claimed: a refused run leaves no job in flight
        refuse_unreached(settings.pool, root, what="output folder", hint=_output_hint(
            args.output, settings, fix="add a path_map entry for it"))
    except ConfigError as exc:
        print(f"error: {exc}", file=stderr)
        print(f"{args.recipe}: nothing was run", file=stderr)
        return EXIT_FAILURE
    output_checks = [PathCheck(root, "folder", "output folder")]
    own_log = _own_log(args, settings)
    log_file = ((expand_user(args.log_file, source="--log-file") if args.log_file else None)
                or settings.logging.file or root / LOGS_FOLDER / f"{run_id}.jsonl")
    try:
        check_paths(output_checks)  # before anything is written
        # Taken back if the run does nothing (_take_back): made now, so a folder that cannot
        # be used is refused and every event of the run is in its log from the start.
        # Read after the check: a name too long for the file system fails even `exists`.
        made = _Made(folders=_missing_folders(root / LOGS_FOLDER),
                     log_file=log_file if own_log else None)
        make_folders(output_checks)
    except UnusablePathError as exc:  # say where the folder came from, not "the settings"
        raise UnusablePathError(exc.problems, hint=_output_hint(args.output, settings)) from None
    try:
        configure_command_logging(settings, args.log_level, stderr,
                                  json_file=log_file.resolve(), hint=_log_hint(args, settings))
    except UnusablePathError:  # refused, said on stderr: the output folder made for it goes
        _take_back(made, settings, args.log_level, stderr)
        raise
    # Each guess is a `warning:` line below, with why and what to do; the log file keeps
    # the event (the hot folder, which prints no such line, shows it on its console).
    # Likewise each unreadable model: its `rejected` line says it (once: a repeat passes
    # over it), so the reader's warning would say it again, on every repeat from cron.
    # So is a store that forgot the folder's prints: its `error:` line says it.
    keep_off_console("units_guessed", "model_unreadable", "store_forgot_prints")
    deeds = RunDeeds()
    store: JobStore | None = None
    try:
        _tidy_output(root, settings, log_file, stdout, deeds)
        opened = _checked_store(args, settings, recipe, root, stderr)
        if opened is None:
            code = EXIT_FAILURE
        else:
            store, jobs = opened
            code = _run_recorded(args, settings, recipe, store, started_at, run_id, root,
                                 log_file, stdout, stderr, termination, jobs, deeds)
    except (PipelineError, KeyboardInterrupt):
        # The run ends in its error line (or `interrupted`), which names no log and writes
        # none. A log it could not write a line to (the disk full) is no record either, only
        # an empty file more for each try. Not a crash: the log records its crash report
        # (`command_crashed`, written after this), so the file is kept for it.
        if deeds.nothing or _nothing_in(made.log_file):
            _take_back(made, settings, args.log_level, stderr)
        raise
    finally:
        if store is not None:
            store.close()
    if deeds.nothing:  # refused, or nothing new: a run that did nothing leaves nothing
        _take_back(made, settings, args.log_level, stderr)
    return code


def _tidy_output(
    root: Path, settings: Settings, log_file: Path, stdout: TextIO, deeds: RunDeeds
) -> None:
    """What a run does first below its output folder; each file removed is added to
    ``deeds`` (its log names it)."""
    # Reports and journals a killed run of this host left half-written go, by the hot
    # folder's rule: never a live writer's (another run at work in the same folder), nor
    # another host's on a shared output folder.
    deeds.add(Deed.REMOVED, len(sweep_temporaries([root])))
    if settings.run.retention_days is not None:
        # First, so a night with nothing new still prunes; this run's log is kept.
        pruned = prune_outputs(root, settings.run.retention_days, keep=(log_file,))
        print(visible(pruned.describe(root)), file=stdout)
        deeds.add(Deed.REMOVED, len(pruned.files))


def _checked_store(
    args: argparse.Namespace, settings: Settings, recipe: Recipe, root: Path, stderr: TextIO
) -> tuple[JobStore | None, str] | None:
    """The run's job store (None for a dry run) and the `jobs` command that reaches it; None
    when it cannot be opened, or has forgotten the prints the output folder's reports name
    (each said on stderr; the store closed)."""
    location: Path | str
    if args.store is not None:
        location = store_location(args.store, stderr)
    elif settings.store.url:
        location = settings.store.url  # a shared store is chosen on purpose: kept
    else:
        # A rehearsal's prints go to the rehearsal store (named in the closing lines).
        location = rehearsal_store_path(settings.store.path, simulated=settings.simulated)
    try:
        if args.dry_run:
            # Records nothing, so opens nothing; but a store its real run could not open is
            # refused, by the open's own rule, before a server starts (session 46: a dry
            # run's servers started and nothing said the store).
            check_store(location)
            return None, JOBS_COMMAND
        store = open_store(location)
    except PipelineError as exc:
        print(f"error: {exc}", file=stderr)
        print(f"{args.recipe}: nothing was run", file=stderr)
        return None
    with ExitStack() as refused:  # closes the store unless it is handed over
        refused.callback(store.close)
        if not (args.reprint or settings.hotfolders.duplicates == "print"):
            found = earlier_prints(root, store, recipe=recipe.name,
                                   simulated=settings.simulated, models=args.models)
            if found is not None:
                # A deleted store would have every model printed again, silently from cron.
                log.error("store_forgot_prints", store=describe_store(location),
                          report=str(found.report), run_id=found.run_id,
                          job_keys=list(found.job_keys))
                print(f"error: {forgotten_prints_error(found, location, root)}", file=stderr)
                print(f"{args.recipe}: nothing was run", file=stderr)
                return None
        refused.pop_all()
    # What the reasons and hints of this run's prints name: `jobs` reaching this store.
    return store, jobs_command(settings, location)


@dataclass(frozen=True)
class _Made:
    """What a run wrote before it knew whether it had anything to do: the folders it made for
    its output (deepest first) and its own log file (None for ``--log-file`` or the settings'
    ``logging.file``: a file the user asked for stays)."""

    folders: tuple[Path, ...]
    log_file: Path | None


def _own_log(args: argparse.Namespace, settings: Settings) -> bool:
    """Whether the run's log is its own (``logs/<run id>.jsonl``), not one the user asked
    for (``--log-file``, the settings' ``logging.file``), which is written however it ends."""
    return args.log_file is None and settings.logging.file is None


def _log_hint(args: argparse.Namespace, settings: Settings) -> str:
    """What to fix when the log file's folder cannot be used, where that log was chosen: a
    file named ``logs`` in the output folder was said as "fix --log-file", which no one gave."""
    if args.log_file is not None:
        return "fix --log-file (or the folder itself)"
    if settings.logging.file is not None:
        return LOG_SETTING_HINT
    return (f"the run keeps its log in the output folder's {LOGS_FOLDER} folder: move away "
            "what stands at that name or let this user write there, or give --log-file")


def _missing_folders(folder: Path) -> tuple[Path, ...]:
    """``folder`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    for path in (folder.absolute(), *folder.absolute().parents):
        if path.exists():
            break
        missing.append(path)
    return tuple(missing)


def _nothing_in(log_file: Path | None) -> bool:
    """The run's own log file exists and holds not a byte."""
    try:
        return log_file is not None and log_file.stat().st_size == 0
    except OSError:
        return False


def _take_back(made: _Made, settings: Settings, log_level: str, stderr: TextIO) -> None:
    """Remove what a run that did nothing wrote (:mod:`~preform_pipeline.commands._run_deeds`):
    a cron job over an empty inbox, or one of printed models every 5 minutes, left a log
    file (and the folders for it) below the output folder each time (docs/running.md: such a
    run leaves nothing). A folder that is no longer empty (another run's output meanwhile)
    stays, and so does every folder above it."""
    if made.log_file is not None:
        # The log is closed first: Windows removes no open file.
        configure_command_logging(settings, log_level, stderr, json_file=None)
        # Not there, or never could be (a file named `logs` where its folder goes).
        with suppress(FileNotFoundError, NotADirectoryError):
            made.log_file.unlink()
    for folder in made.folders:
        try:
            folder.rmdir()
        except FileNotFoundError:
            continue  # not made after all (the log went elsewhere: no logs/ folder)
        except OSError:
            break  # something else is in it now: it and the folders above it stay


def _nothing_kept_line(asked_log: Path | None) -> str:
    """The closing line of a run that did nothing, where others name their report and log:
    ``asked_log`` is a log file the user asked for (written all the same), or None."""
    if asked_log is None:
        return "nothing new: no report or log kept (a run that does nothing leaves nothing)"
    return f"nothing new: no report kept; log: {asked_log}"


def _with_fleet_args(settings: Settings, simulator_args: Sequence[str]) -> Settings:
    """The settings as the simulated servers will see them: ``--simulator-arg`` flags that
    apply to every server (``--fleet-dir`` above all) appended to ``servers.extra_args``."""
    common = [a for a in simulator_args if a.startswith("-")]
    if not common:
        return settings
    extra = (*settings.servers.extra_args, *common)
    return replace(settings, servers=replace(settings.servers, extra_args=extra))


def _run_recorded(
    args: argparse.Namespace,
    settings: Settings,
    recipe: Recipe,
    store: JobStore | None,
    started_at: datetime,
    run_id: str,
    root: Path,
    log_file: Path,
    stdout: TextIO,
    stderr: TextIO,
    termination: Termination,
    jobs: str,
    deeds: RunDeeds,
) -> int:
    """The run's exit status; what it does is added to ``deeds`` as it goes."""
    # Where an interrupted send is found: the simulators' fleet folder here; the Web API
    # locator comes with the print tracking (its client is the run's).
    as_served = _with_fleet_args(settings, args.simulator_arg)
    locators: tuple[PrintLocator, ...] = (
        (FleetFolderLocator(fleet_dir_of(as_served)),) if as_served.simulated else ()
    )
    # Web API credentials are checked before anything else: refused ones print nothing.
    try:
        tracking = tracking_for_run(
            recipe, settings.cloud, settings.verify, run_id=run_id, dry_run=args.dry_run,
            store=store, locators=locators, dispatch=settings.dispatch,
            # A build's name is its recipe's (perhaps its file's) and its target a printer's.
            on_waiting=lambda line: print(visible(line), file=stdout, flush=True), jobs=jobs,
            on_warning=lambda line: print(f"warning: {line}", file=stdout, flush=True),
        )
    except PipelineError as exc:
        print(f"error: {exc}", file=stderr)
        print(f"{args.recipe}: nothing was run", file=stderr)
        return EXIT_FAILURE
    ledger: RunLedger | None = None
    recovered: list[str] = []
    if store is not None:
        owner = tracking.owner if tracking is not None else None
        ledger = RunLedger(
            store,
            owner or PrintOwner(store, locators, jobs=jobs),
            recipe.name,
            run_id,
            SendHolder.local("run", os.getpid(), 0.0),
            reprint=args.reprint or settings.hotfolders.duplicates == "print",
            build_ids=tracking.build_ids if tracking is not None else None,
        )
        # The ledger's lines name model files: shown as escapes.
        recovered = ledger.recover()
        deeds.add(Deed.RELEASED, len(recovered))
        for line in recovered:
            print(visible(line), file=stdout)
    # Balanced for the pool this run starts (right-sized below: never more servers than
    # builds, so a pool larger than the builds evens the builds out one by one).
    plan = _plan(args, recipe, stderr, ledger, stdout, settings.run, max(1, settings.pool.size),
                 output=root, started_at=started_at)
    said_once = False  # whether this run's rejections are recorded as said
    said: tuple[Rejection, ...] = ()  # rejected by an earlier run, passed over
    if plan is not None and ledger is not None and store is not None:
        # Before the rejections are filtered: a model the planner refused fails its job.
        ledger.record(plan)
        # A file an earlier run rejected, unchanged, is passed over: cron mails it once.
        fresh, said = split_said(store, recipe.name, plan.rejected)
        plan, said_once = replace(plan, rejected=fresh), True
        for line in passed_over_lines(said, verbose=args.verbose):
            print(line, file=stdout)
    if plan is not None:
        deeds.add(Deed.REJECTED, len(plan.rejected))
    nothing = plan is not None and not plan.builds and not plan.rejected
    # Builds an earlier run left waiting for a printer go out first (docs/dispatch.md).
    left = store is not None and not args.dry_run and any(
        is_run_build(store, b) for b in store.list_builds(state=JobState.WAITING_FOR_PRINTER))
    if plan is None or (nothing and not left and not (ledger is not None and ledger.skipped)):
        if tracking is not None:
            tracking.close()
        if plan is None:
            return EXIT_FAILURE
        # An empty folder from cron is not an error. A file passed over (an .stl too big,
        # said by the line above) is no reason to say the folder holds no model file.
        print(visible(f"nothing to do: no complete model files (.stl, .obj, .3mf) in "
                      f"{', '.join(str(p) for p in args.models)}"
                      f"{' but those passed over' if said else ''}"), file=stdout)
        return EXIT_OK
    _print_rejections(plan.rejected, stdout)
    if plan.rejected and said_once:
        print(SAID_ONCE, file=stdout)
    for line in warning_lines([*plan_warnings(plan, whole=args.verbose),
                               *queue_login_warnings([recipe], settings)]):
        print(visible(line), file=stdout)
    count = max(len(plan.builds), int(left))  # right-sized: no idle servers
    for value, server, started in _unstarted_server_args(args.simulator_arg, settings, count):
        # A server of the settings, so not refused; but the fault it was to inject never comes.
        log.warning("simulator_arg_unused", arg=value, server=server, started=started)
        print(visible(f"warning: {_unstarted_server_warning(value, server, started)}"),
              file=stdout)

    # The runner (its steps, the planner, numpy) only for a run with something to run or
    # say: a cron run over an empty inbox, or one refused, ends above without it.
    from preform_pipeline.executor.runner import Runner, RunOptions

    pool = ServerPool(
        settings.pool,
        simulator_args=parse_simulator_args(args.simulator_arg, DEFAULT_SIMULATOR_ARGS),
        count=count,
    )
    # No build and none left waiting: no server starts, so none is said to be simulated.
    prepares = bool(plan.builds or left)
    if pool.simulated and prepares:
        print(SIMULATED_LINE, file=stdout, flush=True)
    options = RunOptions(
        output_root=root,
        run_id=run_id,
        dry_run=args.dry_run,
        max_build_attempts=args.max_attempts,
        step_timeout_s=args.step_timeout,
        keep_checkpoints=args.keep_checkpoints,
        started_at=started_at,
        print_tracking=tracking,
        build_report=write_build_report,
        request_timeout_s=settings.servers.request_timeout_s,
        on_split=ledger.on_split if ledger is not None else None,
        on_model_dropped=ledger.on_dropped if ledger is not None else None,
    )
    log.info(
        "run_configured",
        run_id=run_id,
        recipe=str(recipe.source),
        output_root=str(root),
        log_file=str(log_file),
        simulated=pool.simulated,
        pool_mode=pool.mode.value,
        servers=settings.pool.size,
        dry_run=args.dry_run,
    )
    if prepares:  # otherwise the progress says "nothing to prepare", and the end the output
        # The count is the reporter's to say (its run line, or the overall bar): said here
        # too, a run's first two lines both counted its builds.
        print(visible(f"run {run_id}: output in {root}"), file=stdout, flush=True)
    if plan.builds:
        print(units_line(plan), file=stdout)
    reporter = make_reporter(stdout, quiet=args.quiet)
    quiet_build_warnings()
    unroute = route_logs(reporter.console) if isinstance(reporter, RichReporter) else None
    passed = LeftWaiting((), ())  # what became of the builds earlier runs left waiting
    if tracking is not None:
        tracking.on_poll = reporter.verify_waiting
        if tracking.poller is not None:
            # The progress says each failed poll ("last poll failed: ..."): the poller's
            # warning said it again on the console. Quiet, the reporter says nothing, but
            # its log level (ERROR) dropped the warning all the same.
            tracking.poller.reports_failures = True
    # Counted as begun: a run stopped midway keeps the record of what it started.
    deeds.add(Deed.PREPARED, len(plan.builds))
    try:
        if prepares:
            statuses = start_saying_refusals(pool, stderr)
            # A remote server's name and URL are the settings'.
            print(visible(servers_line(statuses)), file=stdout, flush=True)
            if pool.reaped:
                print(describe_reaped(pool.reaped), file=stdout, flush=True)
        if left and store is not None:
            owner = tracking.owner if tracking is not None else None
            deeds.add(Deed.SENT)  # a send may go out: counted until the pass says what it did
            passed = send_left_waiting(
                store, pool, owner or PrintOwner(store, locators, jobs=jobs),
                wait_s=settings.dispatch.run_wait_s,
                poll_interval_s=settings.dispatch.poll_interval_s,
                request_timeout_s=settings.servers.request_timeout_s,
                say=lambda line: print(visible(line), file=stdout, flush=True),  # printers
            )
            # A build that still waits is no news: the store holds it, the next run tries.
            deeds.settle(Deed.SENT, len(passed.sent) + len(passed.unsent))
        runner = Runner(plan, pool, options=options, reporter=reporter)
        result = runner.run()
        if ledger is not None:
            ledger.finish(result)
    finally:
        termination.settle()
        reporter.close()
        pool.close()
        if tracking is not None:
            tracking.close()
        if unroute is not None:
            unroute()

    # A repeat from cron whose every model was skipped did its job: nothing was due; so did
    # a run whose only work was sending what earlier runs left waiting (session 35: it
    # exited 1 having sent it). A send that failed fails the run, with or without builds.
    nothing_due = not result.outcomes and not result.rejected and (
        (ledger is not None and bool(ledger.skipped)) or bool(left)
    )
    code = exit_code(result, terminated=termination.received, nothing_due=nothing_due)
    if code == EXIT_OK and passed.failed:
        code = EXIT_FAILURE
    earlier = passed.reasons()
    # The report's verdict is the exit status's: a script reading "ok" from a night with
    # nothing due (exit 0) or a print that ended in error (exit 1) must not read otherwise.
    # A run that did nothing writes none (nor keeps its log: `_run`), as an empty folder's.
    written = None if deeds.nothing else write_run_report(result, root / REPORTS_FOLDER,
                                                          ok=code == EXIT_OK)
    if result.cancelled:
        print("interrupted: servers stopped, unfinished builds are marked cancelled", file=stderr)
    extra = [SIMULATED_LINE] if result.simulated and prepares else []
    if isinstance(store, SqliteJobStore) and store.path.name == REHEARSAL_STORE_FILENAME:
        extra.append(_rehearsal_line(store.path, jobs, ledger))
    if written is not None:
        json_path, csv_path = written
        extra.append(output_line([(root, recipe)], chosen=args.output or settings.output_root,
                                 elsewhere="--output DIR"))
        extra.append(f"report: {json_path} and {csv_path.name}; log: {log_file}")
    else:
        extra.append(_nothing_kept_line(None if _own_log(args, settings) else log_file))
    if store is not None:
        saved = {Path(t).suffix.lower() for t in (recipe.outputs.form, recipe.outputs.screenshot)}
        empty = unsaid_empty_outputs(store, empty_outputs(root, saved - {""},
                                                          before=started_at.timestamp()))
        if empty:
            # Something for a person to act on, once: cron mails stderr (--quiet).
            line = describe_empty_outputs(empty, root)
            if args.quiet:
                print(line, file=stderr)
            else:
                extra.append(line)
    print_summary(result, make_console(stdout), code=code, extra=extra,
                  finished_said=isinstance(reporter, PlainReporter), earlier=earlier)
    if args.quiet and code != EXIT_OK:
        lines = error_lines(result, code, earlier)
        if result.rejected and said_once:  # before the exit line, which stays the last
            lines.insert(-1, SAID_ONCE)
        for line in lines:
            print(line, file=stderr)
    return code

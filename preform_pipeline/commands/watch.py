"""``preform-pipeline watch SETTINGS``: the hot-folder daemon.

Watches the inboxes of the settings' ``hotfolders`` section and prepares (and prints) what
is dropped there; see docs/hotfolder.md. ``--once`` takes what is there now (after the
inbox's quiet period), prepares it, settles every file in done/ or failed/, and exits: for
cron jobs and tests. ``--dry-run`` prepares without printing.

SIGTERM or Ctrl-C stops it gracefully: no new file is taken, the running batch gets
``hotfolders.stop_deadline_s`` to finish (then it is stopped and resumed on the next start),
the servers are stopped, and the exit status is 0. A second signal skips the wait. A signal
while starting (caught from the program's first line: ``interrupts.EarlyStop``) stops it
before the hot folder starts, with exit status 0 too.

On a PostgreSQL store (``store.url``) the daemon registers as a node and beats
(``preform-pipeline nodes`` lists it); for now it refuses to start while another node is
alive on that store (docs/multi-node.md).

One daemon per store: the daemon holds the store's lock file while it runs (a second one is
refused, naming the holder's host and PID), and on start it stops the servers a killed
predecessor left running.

Exit status: 0 after a graceful stop (or ``--once`` done); 1 when the settings, a recipe or
the store cannot be used (another daemon holds it included); 2 for usage errors.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import TextIO

from preform_pipeline.cloud import (
    WEB_API_MAX_WAIT_S,
    credentials_configured,
    load_cloud_credentials,
    make_web_client,
)
from preform_pipeline.cloud.client import WebApiClient
from preform_pipeline.commands._common import (
    EXIT_FAILURE,
    EXIT_OK,
    configure_command_logging,
    load_command_settings,
    output_line,
    queue_login_warnings,
)
from preform_pipeline.commands._console import keep_off_console, start_saying_refusals
from preform_pipeline.commands._printers import fleet_dir_of, printers_of_settings
from preform_pipeline.commands.arguments.watch import (
    HELP,
    NAME,
    add_arguments,
)
from preform_pipeline.errors import ConfigError, PipelineError, RecipeError, StoreError
from preform_pipeline.executor import NullReporter, PlainReporter, Reporter
from preform_pipeline.hotfolder.daemon import HotFolderDaemon
from preform_pipeline.hotfolder.nodes import FarmMembership, join_farm
from preform_pipeline.interrupts import EARLY_STOP, outside_the_handler
from preform_pipeline.preflight import check_paths, make_folders, watch_paths
from preform_pipeline.printing import FleetFolderFeed, FleetFolderLocator, PrintLocator
from preform_pipeline.servers import ServerPool, refuse_unreached
from preform_pipeline.servers.reaper import describe_reaped, reap_orphans
from preform_pipeline.servers.records import ServerRecords, state_dir_of
from preform_pipeline.settings import Settings
from preform_pipeline.store import JobStore
from preform_pipeline.store.daemon_lock import DaemonLock
from preform_pipeline.store.opening import is_shared_store, open_store
from preform_pipeline.verify.notify import make_notifier
from preform_pipeline.verify.poller import PrintsFeed
from preform_pipeline.verify.tracking import web_locators
from preform_pipeline.wording import counted, visible, visible_lines

__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "HELP",
    "NAME",
    "SIMULATED_LINE",
    "TAKES_EARLY_STOP",
    "add_arguments",
    "print_lookup_for",
    "prints_feed_for",
    "run",
]

#: A stop signal from the program's first line on is a graceful stop (interrupts.EarlyStop).
TAKES_EARLY_STOP = True


SIMULATED_LINE = "SIMULATED: no PreFormServer configured, the hot folder runs on the simulator"


def print_lookup_for(
    settings: Settings, env: Mapping[str, str] = os.environ, *, store: JobStore | None = None
) -> tuple[PrintLocator, ...]:
    """Where interrupted prints are looked for: the simulator's fleet folder when simulated;
    the Web API (prints feed, queues, the printer's runs) when credentials are configured;
    otherwise nowhere (such builds become UNVERIFIED)."""
    if settings.simulated:
        return (FleetFolderLocator(fleet_dir_of(settings)),)
    if credentials_configured(settings.cloud, env):
        client = make_web_client(settings.cloud, load_cloud_credentials(settings.cloud, env),
                                 ledger=store, max_wait_s=WEB_API_MAX_WAIT_S)
        return web_locators(client, settings.verify)
    return ()


def prints_feed_for(
    settings: Settings, env: Mapping[str, str] = os.environ, *, store: JobStore | None = None
) -> PrintsFeed | None:
    """What the daemon verifies its prints by: the Web API prints feed when credentials are
    configured; in a rehearsal without them, the simulated fleet folder (its job files record
    how each print ends on the simulator's clock); otherwise nothing."""
    if credentials_configured(settings.cloud, env):
        return make_web_client(settings.cloud, load_cloud_credentials(settings.cloud, env),
                               ledger=store, max_wait_s=WEB_API_MAX_WAIT_S)
    if settings.simulated:
        return FleetFolderFeed(fleet_dir_of(settings))
    return None


def _pool_factory(settings: Settings, err: TextIO, said: set[str]) -> ServerPool:
    """A started pool; each server it refuses said on ``err`` (a service's journal) as
    ``run`` says it, once for the daemon's life (``said``: a pool whose every server refused
    is started again later, and would say the same again)."""
    pool = ServerPool(settings.pool, handle_signals=False)
    try:
        start_saying_refusals(pool, err, said)
    except BaseException:
        pool.close()
        raise
    return pool


def _dashboard(serve: bool, daemon: HotFolderDaemon, web_client: WebApiClient | None,
               out: TextIO) -> contextlib.AbstractContextManager[object]:
    """``--serve``'s dashboard for the daemon's run, or nothing."""
    if not serve:
        return contextlib.nullcontext()
    # Imported only here: the dashboard's Starlette, uvicorn and Jinja weigh on every start.
    from preform_pipeline.web.server import serving

    return serving(daemon, web_client, out)


def _install_signals(daemon: HotFolderDaemon, err: TextIO) -> None:
    received = {"count": 0}

    def handler(signum: int, frame: FrameType | None) -> None:
        received["count"] += 1
        now = received["count"] > 1

        def stop() -> None:
            print(
                "stopping now" if now else "stopping: finishing what is in flight "
                f"(up to {daemon.hot.stop_deadline_s:g} s; signal again to stop at once)",
                file=err, flush=True,
            )
            daemon.stop(now=now)

        outside_the_handler(stop)

    names: Sequence[str] = ("SIGINT", "SIGTERM", "SIGBREAK", "SIGHUP")
    for name in names:
        number = getattr(signal, name, None)
        if number is not None:
            # Not the main thread (tests), or not allowed here: the caller stops the daemon.
            with contextlib.suppress(ValueError, OSError):
                signal.signal(number, handler)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    settings = load_command_settings(args.settings, stderr)
    if settings is None:
        return EXIT_FAILURE
    # Unusable inboxes, outcome folders, store or output folder stop us here, named.
    checks = watch_paths(
        [(i.path, [i.folder("processing"), i.folder("done"), i.folder("failed")])
         for i in settings.hotfolders.inboxes],
        store=settings.store.path, output_root=settings.hotfolders.output_root,
    )
    check_paths(checks)
    if settings.hotfolders.output_root is not None:
        # Otherwise every batch fails at its first save and takes its cases to failed/.
        try:
            refuse_unreached(
                settings.pool, settings.hotfolders.output_root,
                what="output folder (hotfolders.output_root)",
                hint="set hotfolders.output_root below a mapped folder, or add a path_map "
                "entry for it")
        except ConfigError as exc:  # whole, as run says it: the paths are the point
            print(f"error: {exc}", file=stderr)
            return EXIT_FAILURE
    # Permissions are all the check can read (root may write in /proc, a read-only mount
    # grants them too): a folder the system refuses to make stops us here as well, named,
    # instead of a daemon (or a cron run) that watches nothing and exits 0.
    make_folders(checks)
    configure_command_logging(settings, args.log_level, stderr, json_file=settings.logging.file)
    reporter: Reporter = NullReporter() if args.quiet else PlainReporter(stdout)
    if not args.quiet:
        # Each batch's reporter says a guess as `run` does (`warning: ...`, the file named
        # where it was dropped); the event (naming processing/) stays in the log file.
        keep_off_console("units_guessed")
    if is_shared_store(settings.store.location):
        # Several nodes share it: each claims its own work (docs/multi-node.md).
        return _run_locked(args, settings, reporter, stdout, stderr)
    lock = DaemonLock(settings.store.path)
    try:
        lock.acquire()
    except PipelineError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_FAILURE
    try:
        return _run_locked(args, settings, reporter, stdout, stderr)
    finally:
        lock.release()


def _join_saying_waits(settings: Settings, console: TextIO) -> FarmMembership:
    """Join the farm; while its database is away, ``console`` says so once (the event of each
    try stays in the log file), so nothing the user reads says it watches before it can.
    With ``--quiet`` that is stderr: a quiet daemon (or cron) still learns why it has not
    started, as it learns of warnings."""

    def say(error: StoreError, wait_s: float) -> None:
        print(visible_lines(f"waiting for the job store (trying again for up to {wait_s:g} s): "
                            f"{error.message}"), file=console, flush=True)

    undo = keep_off_console("store_unreachable_waiting")
    try:
        return join_farm(settings, on_wait=say)
    finally:
        undo()


def _run_locked(
    args: argparse.Namespace, settings: Settings, reporter: Reporter, stdout: TextIO,
    stderr: TextIO,
) -> int:
    reaped = describe_reaped(reap_orphans(ServerRecords(state_dir_of(settings.servers))))
    if reaped:
        print(reaped, file=stdout, flush=True)
    farm: FarmMembership | None = None
    try:
        if is_shared_store(settings.store.location):
            farm = _join_saying_waits(settings, stderr if args.quiet else stdout)
            store: JobStore = farm.store
        else:
            store = open_store(settings.store.location, running=True)
    except PipelineError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_FAILURE
    with contextlib.closing(farm) if farm is not None else store:
        try:
            # The store keeps the Web API's hourly budget with every other process using it.
            lookup = print_lookup_for(settings, store=store)
            web_client = prints_feed_for(settings, store=store)
            notifier = make_notifier(settings.verify.notifications)
            refusals_said: set[str] = set()
            daemon = HotFolderDaemon(
                settings,
                store,
                lambda: _pool_factory(settings, stderr, refusals_said),
                print_lookup=lookup,
                reporter=reporter,
                dry_run=args.dry_run,
                web_client=web_client,
                notifier=notifier,
                known_printers=printers_of_settings(settings),
                node=farm.role if farm is not None else None,
            )
        except RecipeError as exc:
            for problem in exc.problems:
                print(str(problem), file=stderr)
            print("error: a recipe of the hot folders is invalid; nothing was taken",
                  file=stderr)
            return EXIT_FAILURE
        except PipelineError as exc:
            print(f"error: {exc}", file=stderr)
            return EXIT_FAILURE
        # Notices, the inboxes and the output folders name folders and files of the settings
        # and of the inbox: each shown as escapes.
        daemon.notice = lambda line: print(visible_lines(line), file=stdout, flush=True)
        if settings.simulated:
            print(SIMULATED_LINE, file=stdout, flush=True)
        for warning in queue_login_warnings(daemon.recipes.values(), settings):
            print(f"warning: {warning}", file=stderr, flush=True)
        inboxes = ", ".join(str(i.path) for i in settings.hotfolders.inboxes)
        print(visible(f"watching {inboxes}" + (" (once)" if args.once else "")), file=stdout,
              flush=True)
        # Where the results go: a recipe's relative outputs.root is beside the recipe, a
        # folder nobody looks in who points an inbox at a shipped recipe.
        print(visible_lines(output_line(
            daemon.output_folders(),
            chosen=settings.hotfolders.output_root or settings.output_root,
            elsewhere="hotfolders.output_root in the settings")), file=stdout, flush=True)
        _install_signals(daemon, stderr)
        if EARLY_STOP.received:
            # Asked to stop while starting: nothing was taken yet, so nothing is started.
            print("stopping: asked to stop before the hot folder started", file=stderr,
                  flush=True)
            daemon.stop()
        try:
            # The dashboard's printers and budget come from the Web API only; a rehearsal's
            # fleet-folder feed has neither, so the dashboard reads the simulated devices.
            cloud = web_client if isinstance(web_client, WebApiClient) else None
            if daemon.stopping:
                status = EXIT_OK
            else:
                with _dashboard(args.serve, daemon, cloud, stdout):
                    status = daemon.run(once=args.once)
        except PipelineError as exc:
            print(f"error: {exc}", file=stderr)
            return EXIT_FAILURE
        finally:
            if notifier is not None:
                notifier.close()
    print(f"stopped after {counted(daemon.batches_run, 'batch', 'batches')}", file=stdout,
          flush=True)
    return status


"""``preform-pipeline watch SETTINGS``: the hot-folder daemon.

Watches the inboxes of the settings' ``hotfolders`` section and prepares (and prints) what
is dropped there; see docs/hotfolder.md. ``--once`` takes what is there now (after the
inbox's quiet period), prepares it, settles every file in done/ or failed/, and exits: for
cron jobs and tests. ``--dry-run`` prepares without printing.

SIGTERM or Ctrl-C stops it gracefully: no new file is taken, the running batch gets
``hotfolders.stop_deadline_s`` to finish (then it is stopped and resumed on the next start),
the servers are stopped, and the exit status is 0. A second signal skips the wait.

Exit status: 0 after a graceful stop (or ``--once`` done); 1 when the settings, a recipe or
the store cannot be used; 2 for usage errors.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import TextIO

from preform_pipeline.config import Settings, load_settings
from preform_pipeline.errors import PipelineError, RecipeError
from preform_pipeline.executor import NullReporter, PlainReporter, Reporter
from preform_pipeline.hotfolder.daemon import HotFolderDaemon
from preform_pipeline.hotfolder.lookup import FleetDirLookup, NoLookup, PrintLookup
from preform_pipeline.logging import configure_logging
from preform_pipeline.preflight import check_paths, watch_paths
from preform_pipeline.servers import ServerPool
from preform_pipeline.store import SqliteJobStore
from preform_pipeline.verify.lookup import PrintLookup as WebLookup
from preform_pipeline.verify.lookup import WebApiBuildLookup
from preform_pipeline.verify.settings import (
    credentials_configured,
    load_cloud_credentials,
    make_web_client,
)

__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "HELP",
    "NAME",
    "SIMULATED_LINE",
    "add_arguments",
    "fleet_dir_of",
    "print_lookup_for",
    "run",
]

NAME = "watch"
HELP = "Watch hot folders: prepare (and print) model files dropped into them."

EXIT_OK = 0
EXIT_FAILURE = 1

SIMULATED_LINE = "SIMULATED: no PreFormServer configured, the hot folder runs on the simulator"
DEFAULT_CONSOLE_LOG_LEVEL = "WARNING"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("settings", type=Path, metavar="SETTINGS",
                        help="settings YAML file with a `hotfolders:` section")
    parser.add_argument("--once", action="store_true",
                        help="process what is in the inboxes now, then exit")
    parser.add_argument("--dry-run", action="store_true",
                        help="prepare builds (save .form files) but do not print")
    parser.add_argument(
        "--log-level", default=DEFAULT_CONSOLE_LOG_LEVEL,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help=f"log level on the console (default {DEFAULT_CONSOLE_LOG_LEVEL}); the settings' "
        "logging.file gets the settings' level",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def fleet_dir_of(settings: Settings) -> Path:
    """The simulator's fleet folder: ``--fleet-dir`` in ``servers.extra_args``, else its
    per-user default."""
    args = list(settings.servers.extra_args)
    for index, arg in enumerate(args):
        if arg == "--fleet-dir" and index + 1 < len(args):
            return Path(args[index + 1]).expanduser().absolute()
        if arg.startswith("--fleet-dir="):
            return Path(arg.split("=", 1)[1]).expanduser().absolute()
    from preform_pipeline.simulator.cli import default_fleet_dir

    return default_fleet_dir()


def print_lookup_for(settings: Settings, env: Mapping[str, str] = os.environ) -> PrintLookup:
    """How interrupted prints are looked up: in the simulator's fleet folder when simulated;
    through the Web API (prints feed, queues, printer status) when credentials are
    configured; otherwise not at all (such builds become UNVERIFIED)."""
    if settings.simulated:
        return FleetDirLookup(fleet_dir_of(settings))
    if credentials_configured(settings.cloud, env):
        client = make_web_client(settings.cloud, load_cloud_credentials(settings.cloud, env))
        return WebApiBuildLookup(WebLookup(client, grace_s=settings.verify.lookup_grace_s))
    return NoLookup()


def _pool_factory(settings: Settings) -> ServerPool:
    pool = ServerPool(settings, handle_signals=False)
    try:
        pool.start()
    except BaseException:
        pool.close()
        raise
    return pool


def _install_signals(daemon: HotFolderDaemon, err: TextIO) -> None:
    received = {"count": 0}

    def handler(signum: int, frame: FrameType | None) -> None:
        received["count"] += 1
        now = received["count"] > 1
        print(
            "stopping now" if now else "stopping: finishing what is in flight "
            f"(up to {daemon.hot.stop_deadline_s:g} s; signal again to stop at once)",
            file=err, flush=True,
        )
        daemon.stop(now=now)

    names: Sequence[str] = ("SIGINT", "SIGTERM", "SIGBREAK", "SIGHUP")
    for name in names:
        number = getattr(signal, name, None)
        if number is not None:
            # Not the main thread (tests), or not allowed here: the caller stops the daemon.
            with contextlib.suppress(ValueError, OSError):
                signal.signal(number, handler)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    # A ConfigError goes to the cli's handler, which adds each problem's line and column.
    settings = load_settings(args.settings)
    # Unusable inboxes, outcome folders, store or output folder stop us here, named.
    check_paths(watch_paths(
        [(i.path, [i.folder("processing"), i.folder("done"), i.folder("failed")])
         for i in settings.hotfolders.inboxes],
        store=settings.store.path, output_root=settings.hotfolders.output_root,
    ))
    configure_logging(level=settings.logging.level, json_file=settings.logging.file,
                      console=stderr)
    level = logging.getLevelName(args.log_level)
    for handler in logging.getLogger("preform_pipeline").handlers:
        if not isinstance(handler, logging.FileHandler) and isinstance(level, int):
            handler.setLevel(level)
    reporter: Reporter = NullReporter() if args.quiet else PlainReporter(stdout)
    try:
        store = SqliteJobStore(settings.store.path)
    except PipelineError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_FAILURE
    with store:
        try:
            lookup = print_lookup_for(settings)
            daemon = HotFolderDaemon(
                settings,
                store,
                lambda: _pool_factory(settings),
                print_lookup=lookup,
                reporter=reporter,
                dry_run=args.dry_run,
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
        if settings.simulated:
            print(SIMULATED_LINE, file=stdout, flush=True)
        inboxes = ", ".join(str(i.path) for i in settings.hotfolders.inboxes)
        print(f"watching {inboxes}" + (" (once)" if args.once else ""), file=stdout,
              flush=True)
        _install_signals(daemon, stderr)
        status = daemon.run(once=args.once)
    print(f"stopped after {daemon.batches_run} batches", file=stdout, flush=True)
    return status


"""``python -m preform_pipeline.simulator``: start a simulated PreFormServer.

Start-up talks like PreFormServer on stdout, a few lines and then ``READY FOR INPUT``::

    PreForm simulator (preform-pipeline 0.1.0): starting HTTP server
    Listening on 127.0.0.1...
    HTTP server listening on port 44388
    READY FOR INPUT

and a taken port prints a line containing ``address is already in use`` and exits 1; a start
that will not succeed however often it is tried (its fleet folder in use by a simulator with
another fleet) prints ``error: refused to start: <why> (<what helps>)`` last and exits 1. Only
these lines go to stdout; the structured log (one event per request) goes to stderr, or to
``--log-file`` (then stderr only gets warnings and errors). SIGINT and SIGTERM (Ctrl+C and
Ctrl+Break on Windows) stop the server cleanly with exit status 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NoReturn, TextIO

import psutil

from preform_pipeline import __version__
from preform_pipeline.errors import REFUSAL_PREFIX, write_hint
from preform_pipeline.logging import get_logger
from preform_pipeline.secretargs import refuse_secret_option
from preform_pipeline.simulator.drives import mount_drives
from preform_pipeline.simulator.faults import DEFAULT_SEED, EXIT_INJECTED_FAULT, FaultPlan
from preform_pipeline.simulator.fleet import default_fleet_dir
from preform_pipeline.simulator.fleetusers import FleetInUseError
from preform_pipeline.simulator.latency import (
    DEFAULT_TIME_SCALE,
    INSTANT,
    LATENCY_PROFILES,
    latency_profile,
)
from preform_pipeline.simulator.routes import ENGINE_OPERATION_IDS, snake_case
from preform_pipeline.simulator.server import DEFAULT_HOST, SimulatorServer, load_engine
from preform_pipeline.simulator.startup import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    LISTENING_PATTERN,
    PORT_IN_USE_TEXT,
    READY_LINE,
    add_logging_arguments,
    configure_cli_logging,
    path_option,
    report_bind_failure,
    say,
    serve_until_stopped,
    stop_on_signals,
)

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_SCENE_CACHE_SIZE",
    "EXIT_FAILURE",
    "EXIT_INJECTED_FAULT",
    "EXIT_OK",
    "EXIT_USAGE",
    "LISTENING_PATTERN",
    "PORT_IN_USE_TEXT",
    "READY_LINE",
    "SimulatorConfig",
    "build_parser",
    "default_fleet_dir",
    "main",
    "parse_args",
    "run",
]

#: PreFormServer's own port (the contract's server URL); pools pass ``--port`` anyway.
DEFAULT_PORT = 44388
#: Scenes PreFormServer keeps in memory unless told otherwise.
DEFAULT_SCENE_CACHE_SIZE = 100

_log = get_logger(__name__)


def _user_temp_root() -> Path:
    """``<temp>/preform-pipeline-<uid>/simulator``, made by and for this user only.

    Named by the user id, not ``$USER``: a cron job or ``env -i`` has no ``USER``, and two
    users both named "user" by a missing variable shared one folder, which the first one's
    owned, so the second one's simulators could not start. Windows has a temporary folder
    per user already. A folder of that name that another user owns is refused, never used: a
    simulator's files would go where someone else can read or replace them.
    """
    if not hasattr(os, "getuid"):
        user = os.environ.get("USERNAME") or "user"
        return Path(tempfile.gettempdir()) / f"preform-pipeline-{user}" / "simulator"
    mine = Path(tempfile.gettempdir()) / f"preform-pipeline-{os.getuid()}"
    mine.mkdir(mode=0o700, exist_ok=True)
    found = mine.lstat()
    if mine.is_symlink() or found.st_uid != os.getuid():
        what = "is a link" if mine.is_symlink() else f"belongs to user id {found.st_uid}"
        raise PermissionError(
            f"{mine} {what}, not a folder of this user (id {os.getuid()}): the simulator "
            "keeps its files only in a folder of its own; remove it, or set TMPDIR to a "
            "folder of yours"
        )
    return mine / "simulator"


def _fallback_fleet_dir() -> Path:
    """Used when the per-user data directory cannot be created (read-only home, CI)."""
    return _user_temp_root() / "fleet"


def _default_work_dir() -> Path:
    """A fresh ``<temp>/preform-pipeline-<uid>/simulator/work/<pid>-*`` directory.

    A simulator that is killed cannot remove its work directory, so each start removes those
    of processes that no longer exist (the pid prefixes the name).
    """
    root = _user_temp_root() / "work"
    root.mkdir(parents=True, exist_ok=True)
    for child in root.iterdir():
        pid_text = child.name.split("-", 1)[0]
        if pid_text.isdigit() and not psutil.pid_exists(int(pid_text)):
            shutil.rmtree(child, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=root))


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything the command line says, checked."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    scene_cache_size: int = DEFAULT_SCENE_CACHE_SIZE
    fleet_dir: Path | None = None
    work_dir: Path | None = None
    latency: str = INSTANT
    time_scale: float = DEFAULT_TIME_SCALE
    log_file: Path | None = None
    log_level: str = "INFO"
    faults: FaultPlan = field(default_factory=FaultPlan)
    engine: str | None = None
    #: Raft reach beyond a full raft's model (None: the engine's default, 2 mm).
    raft_border_mm: float | None = None
    #: Drives this "machine" has mounted (``Z:`` → a local folder): Windows paths sent by a
    #: pipeline with a path map are read and written there.
    drives: tuple[tuple[str, Path], ...] = ()
    #: ``--fleet-printers``: the declared fleet (None: the fleet folder's, or the default).
    fleet_printers: tuple[dict[str, Any], ...] | None = None
    print_time_scale: float = 0.0


def _fleet_printers(text: str) -> tuple[dict[str, Any], ...]:
    try:
        items = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise argparse.ArgumentTypeError("not a non-empty JSON array of printer objects")
    return tuple(items)


def _engine_options(config: SimulatorConfig) -> dict[str, Any] | None:
    """Engine keywords beyond the common three; None when every one is the default."""
    # Off unless asked: a hot folder rehearsal would otherwise wait hours for busy printers.
    scale = config.print_time_scale or 0.0
    options: dict[str, Any] = {}
    if config.fleet_printers is not None:
        options["declared_printers"] = config.fleet_printers
    if scale:
        options["print_time_scale"] = scale
    if config.raft_border_mm is not None:
        options["raft_border_mm"] = config.raft_border_mm
    return options or None


def _operation_id(text: str) -> str:
    name = snake_case(text.strip())
    if name not in ENGINE_OPERATION_IDS:
        raise argparse.ArgumentTypeError(
            f"unknown operation id {text!r}; use a snake_case Local API operation id such as "
            f"auto_support, import_model, estimate_print_time"
        )
    return name


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is outside 0..1")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def _port(text: str) -> int:
    value = _non_negative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a TCP port (0..65535)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m preform_pipeline.simulator",
        description=(
            "A simulated PreFormServer: serves the Formlabs Local API on HTTP and prints "
            f"{READY_LINE!r} when it can take requests."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    server = parser.add_argument_group("server")
    server.add_argument(
        "--port", type=_port, default=DEFAULT_PORT,
        help=f"TCP port to listen on; 0 picks a free one (default {DEFAULT_PORT})",
    )
    server.add_argument(
        "--host", default=DEFAULT_HOST,
        help=f"address to bind (default {DEFAULT_HOST}: this machine only)",
    )
    server.add_argument(
        "--scene-cache-size", type=_non_negative_int, default=DEFAULT_SCENE_CACHE_SIZE,
        help=f"scenes kept in memory (default {DEFAULT_SCENE_CACHE_SIZE})",
    )
    server.add_argument(
        "--fleet-dir", type=path_option("--fleet-dir"), default=None,
        help="directory of fleet state shared by simulators (default: per-user data dir)",
    )
    server.add_argument(
        "--fleet-printers", type=_fleet_printers, default=None, metavar="JSON",
        help="the declared fleet: a JSON array of printers (serial, machine_type_id, "
        "product_name, ip_address, material_code); replaces the fleet folder's printers",
    )
    server.add_argument(
        "--print-time-scale", type=_non_negative_float, default=None, metavar="F",
        help="a printer is busy for a print's estimated time times F (default 0: free again "
        "at once; 1: as long as the print would take)",
    )
    server.add_argument(
        "--raft-border-mm", type=float, default=None, metavar="MM",
        help="how far a full raft reaches beyond its model in layouts (default 2; another "
        "value models a server that disagrees with the planner)",
    )
    server.add_argument(
        "--drive", action="append", type=_drive, default=[], metavar="LETTER:=FOLDER",
        help="play a Windows machine with this drive mounted: Z:=/srv/share reads and writes "
        "Z:\\... paths in /srv/share (repeatable; rehearses a remote server's path map)",
    )
    server.add_argument(
        "--work-dir", type=path_option("--work-dir"), default=None,
        help="directory for the engine's files (default: a fresh temporary one, removed at exit)",
    )
    add_logging_arguments(server)
    server.add_argument(
        "--engine", default=None, metavar="MODULE:CLASS",
        help="engine class to use instead of the built-in one (tests, experiments)",
    )
    latency = parser.add_argument_group("latency")
    latency.add_argument(
        "--latency", choices=LATENCY_PROFILES, default=INSTANT,
        help="instant: no added delay; realistic: each operation costs time by its size",
    )
    latency.add_argument(
        "--time-scale", type=_non_negative_float, default=DEFAULT_TIME_SCALE,
        help="multiply every realistic delay by this (0.01 = 100x faster; default 1.0)",
    )
    faults = parser.add_argument_group("fault injection")
    faults.add_argument(
        "--exit-after-requests", type=_non_negative_int, default=None, metavar="N",
        help=f"serve N requests, then exit abruptly (status {EXIT_INJECTED_FAULT}) on the next",
    )
    faults.add_argument(
        "--exit-during", type=_operation_id, default=None, metavar="OPERATION_ID",
        help="exit abruptly while this operation runs (e.g. auto_support)",
    )
    faults.add_argument(
        "--hang", type=_operation_id, default=None, metavar="OPERATION_ID",
        help="this operation never completes",
    )
    faults.add_argument(
        "--error-rate", type=_fraction, default=0.0, metavar="F",
        help="answer this fraction (0..1) of requests 500 SIMULATED_FAULT (GET / is spared)",
    )
    faults.add_argument(
        "--seed", type=int, default=DEFAULT_SEED,
        help=f"random seed for --error-rate (default {DEFAULT_SEED})",
    )
    faults.add_argument(
        "--slow-start", type=_non_negative_float, default=0.0, metavar="SECONDS",
        help=f"wait this long before binding the port and printing {READY_LINE!r}",
    )
    faults.add_argument(
        "--fail-start", action="store_true",
        help=f"print an error to stderr and exit {EXIT_INJECTED_FAULT} at once",
    )
    return parser


def parse_args(argv: Sequence[str]) -> SimulatorConfig:
    """Parse a command line (argparse exits with status 2 on a usage error)."""
    args = build_parser().parse_args(list(argv))
    return SimulatorConfig(
        host=args.host,
        port=args.port,
        scene_cache_size=args.scene_cache_size,
        raft_border_mm=args.raft_border_mm,
        fleet_printers=args.fleet_printers,
        print_time_scale=args.print_time_scale or 0.0,
        fleet_dir=args.fleet_dir,
        work_dir=args.work_dir,
        latency=args.latency,
        time_scale=args.time_scale,
        log_file=args.log_file,
        log_level=args.log_level,
        faults=FaultPlan(
            exit_after_requests=args.exit_after_requests,
            exit_during=args.exit_during,
            hang=args.hang,
            error_rate=args.error_rate,
            seed=args.seed,
            slow_start_s=args.slow_start,
            fail_start=args.fail_start,
        ),
        engine=args.engine,
        drives=tuple(args.drive),
    )


def _drive(text: str) -> tuple[str, Path]:
    letter, sep, folder = text.partition("=")
    letter = letter.rstrip("\\/").upper()
    if not sep or len(letter) != 2 or not letter[0].isalpha() or letter[1] != ":" or not folder:
        raise argparse.ArgumentTypeError(f"expected LETTER:=FOLDER (Z:=/srv/share), got {text!r}")
    return letter, path_option("--drive")(folder).resolve()


def _resolve_dirs(config: SimulatorConfig) -> tuple[Path, Path, Path | None]:
    """(fleet dir, work dir, temporary dir to remove at exit)."""
    fleet_dir = config.fleet_dir
    if fleet_dir is None:
        fleet_dir = default_fleet_dir()
        try:
            fleet_dir.mkdir(parents=True, exist_ok=True)
        except OSError:
            fleet_dir = _fallback_fleet_dir()
    fleet_dir.mkdir(parents=True, exist_ok=True)
    remove: Path | None = None
    work_dir = config.work_dir
    if work_dir is None:
        work_dir = remove = _default_work_dir()
    else:
        work_dir.mkdir(parents=True, exist_ok=True)
    return fleet_dir.resolve(), work_dir.resolve(), remove


#: What the refusal of a secret on its command line says instead: it has none to take.
_NO_SECRET: Final = "the simulated PreFormServer takes no secret (the Local API has no login)"


def run(argv: Sequence[str], stdout: TextIO, stderr: TextIO) -> int:
    """Run the simulator until a stop signal; returns the exit status."""
    if refuse_secret_option(argv, stderr, instead=_NO_SECRET):
        return EXIT_USAGE
    try:
        config = parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    if config.faults.fail_start:
        # Before anything else, logging included: a crash-looping server says one line.
        stderr.write(f"error: simulated start-up failure (--fail-start), exit status "
                     f"{EXIT_INJECTED_FAULT}\n")
        stderr.flush()
        return EXIT_INJECTED_FAULT
    configure_cli_logging(config.log_level, config.log_file, stderr)
    mount_drives(dict(config.drives))
    stop = threading.Event()
    with stop_on_signals(stop) as received:
        return _serve(config, stdout, stop, received)


def _serve(
    config: SimulatorConfig, stdout: TextIO, stop: threading.Event, received: list[int]
) -> int:
    plan = config.faults
    say(stdout, f"PreForm simulator (preform-pipeline {__version__}): starting HTTP server")
    if plan.slow_start_s and stop.wait(plan.slow_start_s):
        _log.info("server_stopped", reason="signal during slow start", signal=received[:1])
        return EXIT_OK
    try:
        fleet_dir, work_dir, temporary = _resolve_dirs(config)
    except OSError as exc:
        # Not only "cannot create": a folder of another user's is refused (_user_temp_root).
        _log.error("start_failed", reason="cannot make or use its folders", error=str(exc))
        return EXIT_FAILURE
    try:
        return _serve_in(config, stdout, stop, received, fleet_dir, work_dir)
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


def _serve_in(
    config: SimulatorConfig,
    stdout: TextIO,
    stop: threading.Event,
    received: list[int],
    fleet_dir: Path,
    work_dir: Path,
) -> int:
    try:
        engine = load_engine(
            scene_cache_size=config.scene_cache_size,
            fleet_dir=fleet_dir,
            work_dir=work_dir,
            factory=config.engine,
            options=_engine_options(config),
        )
    except FleetInUseError as exc:
        # Said once, as the last line, marked as a refusal for good: a pool does not start
        # this server again, it says the line (errors.REFUSAL_PREFIX).
        _log.error("start_failed", reason="fleet folder in use")
        say(stdout, f"{REFUSAL_PREFIX}{exc}")
        return EXIT_FAILURE
    except OSError as exc:
        # Its fleet or work folder refused a file (a full disk, a folder it may not write):
        # the file and what helps, not a traceback.
        _log.error("start_failed", reason="cannot write its files", error=str(exc),
                   hint=write_hint(exc))
        return EXIT_FAILURE
    except Exception as exc:
        _log.exception("start_failed", reason="cannot load the simulator engine", error=str(exc))
        return EXIT_FAILURE
    try:
        server = SimulatorServer(
            engine,
            host=config.host,
            port=config.port,
            latency=latency_profile(config.latency, config.time_scale),
            faults=config.faults,
        )
    except OSError as exc:
        return report_bind_failure(stdout, config.host, config.port, exc)
    started = {
        "latency": config.latency,
        "time_scale": config.time_scale,
        "scene_cache_size": config.scene_cache_size,
        "fleet_dir": str(fleet_dir),
        "work_dir": str(work_dir),
        "faults": config.faults.active(),
    }
    return serve_until_stopped(server, stdout, stop, received, started=started)


def main() -> NoReturn:
    sys.exit(run(sys.argv[1:], sys.stdout, sys.stderr))

"""``python -m preform_pipeline.simulator.cloud``: start a simulated Formlabs Dashboard (Web API).

Start-up talks like the PreFormServer simulator on stdout, a few lines and then
``READY FOR INPUT``::

    Dashboard simulator (preform-pipeline 0.1.0): starting HTTP server
    Listening on 127.0.0.1...
    HTTP server listening on port 44389
    Web API base URL: http://127.0.0.1:44389
    Fleet directory: /home/me/.local/share/preform-pipeline/simulator/fleet
    Client id: preform-pipeline-simulator
    READY FOR INPUT

A taken port prints a line containing ``address is already in use`` and exits 1; a usage
error (bad flag, unreadable secret file, invalid outcomes file) exits 2. The structured log
goes to stderr, or to ``--log-file``. SIGINT and SIGTERM stop the server with status 0.

The application's credentials come from ``--client-id`` / ``--client-secret-file``, else
from ``PREFORM_PIPELINE_SIM_CLIENT_ID`` / ``PREFORM_PIPELINE_SIM_CLIENT_SECRET``, else the
well-known defaults below (a warning says so). The secret is never taken from the command
line, where every user of the machine can read it.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Final, NoReturn, TextIO

from preform_pipeline import __version__
from preform_pipeline.errors import ConfigError
from preform_pipeline.logging import get_logger
from preform_pipeline.secretargs import refuse_secret_option
from preform_pipeline.simulator.fleet import default_fleet_dir
from preform_pipeline.simulator.startup import (
    EXIT_FAILURE,
    EXIT_USAGE,
    READY_LINE,
    add_logging_arguments,
    configure_cli_logging,
    path_option,
    report_bind_failure,
    say,
    serve_until_stopped,
    stop_on_signals,
)
from preform_pipeline.userpath import secret_file_named

from .auth import DEFAULT_TOKEN_LIFETIME_S, TokenStore
from .fleet_view import DEFAULT_TIME_SCALE, FleetView, OutcomeSource
from .limits import DEFAULT_HOURLY_LIMIT, DEFAULT_PER_SECOND_LIMIT, RateLimits
from .outcomes import OutcomesFile
from .server import DEFAULT_HOST, DashboardServer

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_PORT",
    "ENV_SIM_CLIENT_ID",
    "ENV_SIM_CLIENT_SECRET",
    "DashboardConfig",
    "build_parser",
    "main",
    "parse_args",
    "resolve_credentials",
    "run",
]

#: Beside the PreFormServer simulator's 44388.
DEFAULT_PORT: Final = 44389
ENV_SIM_CLIENT_ID: Final = "PREFORM_PIPELINE_SIM_CLIENT_ID"
ENV_SIM_CLIENT_SECRET: Final = "PREFORM_PIPELINE_SIM_CLIENT_SECRET"
#: Used when neither flags nor environment name the application: fine on 127.0.0.1 only.
DEFAULT_CLIENT_ID: Final = "preform-pipeline-simulator"
DEFAULT_CLIENT_SECRET: Final = "preform-pipeline-simulator-secret"

_log = get_logger(__name__)

_SECRET_GOES = (f"give it in a file with --client-secret-file FILE, or as "
                f"${ENV_SIM_CLIENT_SECRET}")


@dataclass(frozen=True)
class DashboardConfig:
    """Everything the command line says, checked (the secret is read later, from its file)."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    fleet_dir: Path | None = None
    time_scale: float = DEFAULT_TIME_SCALE
    client_id: str | None = None
    client_secret_file: Path | None = None
    token_lifetime_s: float = DEFAULT_TOKEN_LIFETIME_S
    hourly_limit: int = DEFAULT_HOURLY_LIMIT
    per_second_limit: int = DEFAULT_PER_SECOND_LIMIT
    outcomes: Path | None = None
    #: Each printer starts with one finished past print (False: never-printed printers).
    print_history: bool = True
    log_file: Path | None = None
    log_level: str = "INFO"


def _number(text: str, *, whole: bool, positive: bool = False) -> float:
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
    if value < 0 or (positive and value == 0):
        raise argparse.ArgumentTypeError(f"{text} must be {'> 0' if positive else '>= 0'}")
    return value


def _port(text: str) -> int:
    value = int(_number(text, whole=True))
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a TCP port (0..65535)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m preform_pipeline.simulator.cloud",
        description=(
            "A simulated Formlabs Dashboard: serves the Web API from the fleet directory the "
            f"PreFormServer simulator prints into, and prints {READY_LINE!r} when ready."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--port", type=_port, default=DEFAULT_PORT,
        help=f"TCP port; 0 picks a free one and prints it (default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--fleet-dir", type=path_option("--fleet-dir"), default=None,
        help="fleet state shared with the PreFormServer simulator (default: per-user data dir)",
    )
    parser.add_argument(
        "--time-scale", type=lambda t: _number(t, whole=False), default=DEFAULT_TIME_SCALE,
        help="real seconds per simulated second of printing (0.001 = 1000x faster; default 1)",
    )
    parser.add_argument(
        "--client-id", default=None,
        help=f"the application's client id (else ${ENV_SIM_CLIENT_ID}, else a default)",
    )
    parser.add_argument(
        "--client-secret-file", type=path_option("--client-secret-file", secret=True), default=None,
        help=f"file holding the client secret (else ${ENV_SIM_CLIENT_SECRET}, else a default)",
    )
    parser.add_argument(
        "--token-lifetime", type=lambda t: _number(t, whole=False, positive=True),
        default=DEFAULT_TOKEN_LIFETIME_S, metavar="SECONDS",
        help=f"access token lifetime (default {DEFAULT_TOKEN_LIFETIME_S:.0f})",
    )
    parser.add_argument(
        "--hourly-limit", type=lambda t: int(_number(t, whole=True)),
        default=DEFAULT_HOURLY_LIMIT, metavar="N",
        help=f"requests per hour per user before 429 (default {DEFAULT_HOURLY_LIMIT}; 0: none)",
    )
    parser.add_argument(
        "--per-second-limit", type=lambda t: int(_number(t, whole=True)),
        default=DEFAULT_PER_SECOND_LIMIT, metavar="N",
        help=f"requests per second per IP before 429 (default {DEFAULT_PER_SECOND_LIMIT}; "
        "0: none)",
    )
    parser.add_argument(
        "--outcomes", type=path_option("--outcomes"), default=None, metavar="FILE",
        help="JSON/YAML file forcing print errors, aborts and offline printers (re-read on change)",
    )
    parser.add_argument(
        "--no-print-history", dest="print_history", action="store_false",
        help="start with printers that never printed (current_print_run null, as for a "
        "brand-new printer); by default each has one finished print from before the start",
    )
    add_logging_arguments(parser)
    return parser


def parse_args(argv: Sequence[str]) -> DashboardConfig:
    """Parse a command line (argparse exits with status 2 on a usage error)."""
    args = build_parser().parse_args(list(argv))
    return DashboardConfig(
        host=args.host,
        port=args.port,
        fleet_dir=args.fleet_dir,
        time_scale=args.time_scale,
        client_id=args.client_id,
        client_secret_file=args.client_secret_file,
        token_lifetime_s=args.token_lifetime,
        hourly_limit=args.hourly_limit,
        per_second_limit=args.per_second_limit,
        outcomes=args.outcomes,
        print_history=args.print_history,
        log_file=args.log_file,
        log_level=args.log_level,
    )


def resolve_credentials(
    config: DashboardConfig, environ: Mapping[str, str]
) -> tuple[str, str, bool]:
    """(client id, secret, whether a default was used); each value on its own: flag, then
    environment, then default. :class:`ConfigError` when the secret file cannot be read."""
    client_id = config.client_id or environ.get(ENV_SIM_CLIENT_ID) or ""
    secret = ""
    if config.client_secret_file is not None:
        try:
            secret = config.client_secret_file.read_text(encoding="utf-8").removesuffix("\n")
        except (OSError, UnicodeDecodeError) as exc:
            # Neither the OSError's text (it quotes the name) nor the decoder's (it quotes a
            # byte of the secret): the name only as the one rule shows it.
            why = (exc.strerror or "it cannot be opened") if isinstance(exc, OSError) else (
                "it is not UTF-8 text")
            named = secret_file_named(str(config.client_secret_file), config.client_secret_file)
            raise ConfigError(
                f"cannot read the client secret from {named}: {why}", source="--client-secret-file",
                hint="pass a readable file holding only the secret",
            ) from None
        if not secret:
            raise ConfigError(
                "the client secret file is empty", source=str(config.client_secret_file)
            )
    secret = secret or environ.get(ENV_SIM_CLIENT_SECRET) or ""
    defaulted = not client_id or not secret
    return client_id or DEFAULT_CLIENT_ID, secret or DEFAULT_CLIENT_SECRET, defaulted


def run(
    argv: Sequence[str],
    stdout: TextIO,
    stderr: TextIO,
    *,
    environ: Mapping[str, str] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run the Dashboard simulator until a stop signal (or ``stop`` is set); the exit status."""
    if refuse_secret_option(argv, stderr, instead=_SECRET_GOES):
        return EXIT_USAGE
    try:
        config = parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    configure_cli_logging(config.log_level, config.log_file, stderr)
    try:
        client_id, secret, defaulted = resolve_credentials(
            config, os.environ if environ is None else environ
        )
        outcomes = OutcomesFile(config.outcomes) if config.outcomes is not None else None
    except ConfigError as exc:
        stderr.write(f"error: {exc}\n")
        stderr.flush()
        return EXIT_USAGE
    if defaulted:
        _log.warning(
            "dashboard_default_credentials",
            client_id=client_id,
            hint=f"set {ENV_SIM_CLIENT_ID} and {ENV_SIM_CLIENT_SECRET} (or --client-id and "
            "--client-secret-file) to require your own",
        )
    stopping = stop if stop is not None else threading.Event()
    with stop_on_signals(stopping) as received:
        return _serve(config, stdout, stopping, received, client_id, secret, outcomes)


def _serve(
    config: DashboardConfig,
    stdout: TextIO,
    stop: threading.Event,
    received: list[int],
    client_id: str,
    secret: str,
    outcomes: OutcomeSource | None,
) -> int:
    say(stdout, f"Dashboard simulator (preform-pipeline {__version__}): starting HTTP server")
    fleet_dir = config.fleet_dir if config.fleet_dir is not None else default_fleet_dir()
    try:
        fleet_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        say(stdout, f"cannot create the fleet directory {fleet_dir}: {exc}")
        _log.error("start_failed", reason="cannot create fleet directory", error=str(exc))
        return EXIT_FAILURE
    fleet_dir = fleet_dir.resolve()
    view = FleetView(
        fleet_dir,
        started_at=datetime.now(timezone.utc),
        time_scale=config.time_scale,
        outcomes=outcomes,
        print_history=config.print_history,
    )
    tokens = TokenStore(client_id, secret, lifetime_s=config.token_lifetime_s)
    limits = RateLimits(per_second=config.per_second_limit, hourly=config.hourly_limit)
    try:
        server = DashboardServer(view, tokens, limits=limits, host=config.host, port=config.port)
    except OSError as exc:
        return report_bind_failure(stdout, config.host, config.port, exc)
    lines = (
        f"Web API base URL: {server.url}",
        f"Fleet directory: {fleet_dir}",
        f"Client id: {client_id}",
    )
    started = {
        "fleet_dir": str(fleet_dir),
        "time_scale": config.time_scale,
        "access_lifetime_s": config.token_lifetime_s,
        "hourly_limit": config.hourly_limit,
        "per_second_limit": config.per_second_limit,
        "outcomes": None if config.outcomes is None else str(config.outcomes),
        "print_history": config.print_history,
    }
    return serve_until_stopped(server, stdout, stop, received, extra_lines=lines, started=started)


def main() -> NoReturn:
    sys.exit(run(sys.argv[1:], sys.stdout, sys.stderr))

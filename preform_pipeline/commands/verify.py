"""``preform-pipeline verify``: did the prints of earlier runs finish? Ask the Web API.

::

    preform-pipeline verify [--settings FILE] [--store PATH] [--wait] [--format text|json]
                            [--quiet]

Reads the job store's prints that are still pending (``print_sent``, ``verifying``; and
``unverified`` ones of the last week, which a late final status may still settle), looks up
builds whose send was interrupted (``print_sending``: found → ``print_sent``, proven not sent →
``prepared``), then polls the Formlabs prints feed once, or with ``--wait`` until every print
ended or passed its deadline (``verify.deadline_s``). Results go into the store (``finished``,
``aborted``, ``print_error``, ``unverified``, with the printer's message) and the summary.
One poll costs a few requests however many prints wait (docs/verification.md).

Credentials come from ``PREFORM_PIPELINE_CLIENT_ID`` / ``_SECRET`` (or their ``_FILE`` forms)
or the settings' ``cloud`` section. Cron runs this every few minutes, each a new process with
no access token, so one poll costs its token request and its pages, and nothing else: refused
credentials stop it at the token request, with where each value came from, before a print's
state changes. ``--wait`` first proves the credentials and the base URL with a one-record read
(a wrong one stops it at once, not after hours of backing off). With nothing pending it sends
no request at all.

A single poll (no ``--wait``, as cron runs it) waits at most ``ONCE_MAX_WAIT_S`` for the Web
API's rate limits: past that it stops, says when to try again ("cannot verify now"), and leaves
the prints pending for the next run, rather than stalling for up to the hour a spent budget
can take.

``--quiet`` (cron) prints nothing when all is well; on stderr it says each print this verify
saw end badly (an error, an abort, no final status by its deadline), once, and the errors; a
wait for the rate limits ("cannot verify now", which ends by itself at the time it names) once,
when it starts, not on every verify until that time (exit status 1 on each, as without it).

Exit status: 0 checked (whatever the prints' outcomes: see the summary or ``--format json``);
1 no credentials, refused credentials, an unusable store or an unreachable Web API; 2 usage
errors; 130 interrupted (Ctrl-C; what was learnt so far is stored).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Final, TextIO

from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.cloud import (
    budget_account,
    check_credentials,
    credentials_configured,
    load_cloud_credentials,
    make_web_client,
)
from preform_pipeline.commands._common import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    load_command_settings,
    rehearsal_aside,
    store_location,
)
from preform_pipeline.commands.arguments.verify import (
    FORMATS,
    HELP,
    NAME,
    add_arguments,
)
from preform_pipeline.errors import (
    CloudAuthError,
    CloudError,
    CloudRateLimitError,
    ConfigError,
    StoreError,
)
from preform_pipeline.settings import Settings
from preform_pipeline.settings.cloud import DEFAULT_WEB_API_URL
from preform_pipeline.settings.servers import DEFAULT_BASE_PORT
from preform_pipeline.store import JobState, JobStore
from preform_pipeline.store.opening import describe_store, open_store, store_exists
from preform_pipeline.verify.notify import make_notifier
from preform_pipeline.verify.service import (
    VerifyReport,
    first_to_say_ended,
    first_to_say_held,
    pending_prints,
    verify_pending,
)
from preform_pipeline.verify.tracking import web_locators
from preform_pipeline.wording import aligned, counted, visible

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "FORMATS",
    "HELP",
    "NAME",
    "ONCE_MAX_WAIT_S",
    "add_arguments",
    "ended_badly",
    "format_report",
    "run",
]

#: This command as a hint names it (a store to try: ``verify --store``, not ``jobs``).
_COMMAND: Final = "preform-pipeline verify"
#: Longest wait for the Web API's rate limits a single poll takes: enough for the per-second
#: limit's Retry-After, far less than a spent hourly budget (or a cron interval).
ONCE_MAX_WAIT_S: Final = 60.0


_STILL_PENDING: Final = "the prints still pending are checked on the next verify"
#: A verify the rate limits hold back (the error says until when).
_NOT_NOW: Final = "cannot verify now"
#: ``--quiet``'s word that it says such a wait once.
_QUIET_UNTIL: Final = "verify --quiet says nothing more of this wait until it ends"
_HEADERS: Final = ("KEY", "STATE", "STATUS", "PRINTER", "NAME", "MESSAGE")
#: The states ``--quiet`` says.
_ENDED_BADLY: Final = frozenset({JobState.PRINT_ERROR, JobState.ABORTED, JobState.UNVERIFIED})


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO, *,
        clock: Clock = SYSTEM_CLOCK) -> int:
    """The command; ``clock`` is the seam tests move a minute (or an hour) between verifies."""
    settings = load_command_settings(args.settings, stderr)
    if settings is None:
        return EXIT_FAILURE
    path: Path | str = settings.store.location
    if args.store is not None:
        path = store_location(args.store, stderr)
    if not store_exists(path):
        _nothing(args, path, f"no job store at {path}: nothing to verify"
                 f"{rehearsal_aside(path, command=_COMMAND, does='verifies them')}",
                 stdout)
        return EXIT_OK
    try:
        store = open_store(path, create=False)
    except StoreError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_FAILURE
    with store:
        now = clock.now()
        sending = [b for b in store.interrupted_builds() if b.state is JobState.PRINT_SENDING]
        if not pending_prints(store, now=now) and not sending:
            _nothing(args, path, "no pending prints: nothing to verify", stdout)
            return EXIT_OK
        return _verify(args, settings, store, path, stdout, stderr, clock)


def _no_credentials(base_url: str) -> str:
    """The refusal without credentials, and what helps where ``cloud.base_url`` points: a
    newcomer rehearsing on the simulators was sent only to the Developer Tools page of a
    Dashboard they may not have, while the Dashboard simulator's defaults would do."""
    # Only this refusal needs the simulator's names; a verify that runs never imports it.
    # The simulator is named with this very interpreter, which has the package: a bare
    # `python` is not on every PATH (Debian has only python3), nor the one of the venv.
    from preform_pipeline.simulator.cloud.cli import (
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        DEFAULT_PORT,
    )

    ways = ("set PREFORM_PIPELINE_CLIENT_ID and PREFORM_PIPELINE_CLIENT_SECRET (or their "
            "_FILE forms, or the settings' cloud section)")
    defaults = (f"PREFORM_PIPELINE_CLIENT_ID={DEFAULT_CLIENT_ID} and "
                f"PREFORM_PIPELINE_CLIENT_SECRET={DEFAULT_CLIENT_SECRET}")
    if base_url.rstrip("/") == DEFAULT_WEB_API_URL:
        return (
            f"error: no Web API credentials: {ways}; create them on the Dashboard's Developer "
            f"Tools page\nto rehearse on the simulators instead: start the Dashboard simulator "
            f"(`{shlex.quote(sys.executable)} -m preform_pipeline.simulator.cloud`, it listens "
            # A simulated watch or run holds that port (its second server; session 47's
            # trial followed these words beside a watch: "address is already in use").
            f"on port {DEFAULT_PORT}; beside a simulated `watch` or `run`, whose servers take "
            f"the ports from {DEFAULT_BASE_PORT} up, give it `--port` with a free port and use "
            f"that port below), "
            f"give `--settings` a file holding `cloud: {{base_url: "
            f"\"http://127.0.0.1:{DEFAULT_PORT}\"}}`, and set its default credentials, "
            f"{defaults} (docs/dashboard-simulator.md)"
        )
    return (
        f"error: no Web API credentials for {base_url}: {ways}; if that is the Dashboard "
        f"simulator, its default credentials are {defaults} (unless it was started with "
        f"--client-id or --client-secret-file); if not, create them on the Dashboard's "
        f"Developer Tools page"
    )


def _verify(
    args: argparse.Namespace,
    settings: Settings,
    store: JobStore,
    path: Path | str,
    stdout: TextIO,
    stderr: TextIO,
    clock: Clock,
) -> int:
    cloud = settings.cloud
    if not credentials_configured(cloud, os.environ):
        print(_no_credentials(cloud.base_url), file=stderr)
        return EXIT_FAILURE
    try:
        credentials = load_cloud_credentials(cloud, os.environ)
    except ConfigError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_FAILURE
    notifier = make_notifier(settings.verify.notifications)
    stop = threading.Event()
    try:
        max_wait_s = None if args.wait else ONCE_MAX_WAIT_S
        # The store keeps the hourly budget with every other process that spends it.
        with make_web_client(cloud, credentials, max_wait_s=max_wait_s, ledger=store,
                             clock=clock, sleep=clock.sleep) as client:
            if args.wait:
                # A long wait first proves the credentials and the base URL (a token and a
                # one-record read), so a wrong one stops it at once, not after hours of
                # backing off. One poll (cron's, every few minutes) skips that: 2 of its 3
                # requests; its token request refuses wrong credentials as clearly, before
                # any print's state changes, and a failed read is said as the poll's error.
                check_credentials(client)
            report = verify_pending(
                store,
                client,
                wait=args.wait,
                interval_s=settings.verify.interval_s,
                deadline_s=settings.verify.deadline_s,
                requests_per_hour=settings.verify.requests_per_hour,
                locators=web_locators(client, settings.verify),
                clock=clock,
                notifier=notifier,
                stop=stop,
            )
    except CloudAuthError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_FAILURE
    except CloudRateLimitError as exc:
        _not_now(args, store, budget_account(cloud, credentials), exc.retry_after_s,
                 [str(exc)], clock, stderr, held=True)
        return EXIT_FAILURE
    except CloudError as exc:
        print(f"error: cannot verify: {exc}", file=stderr)
        print(_STILL_PENDING, file=stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted", file=stderr)
        return EXIT_INTERRUPTED
    finally:
        if notifier is not None:
            notifier.close()
    if args.format == "json":
        data = {"store": describe_store(path), **report.as_dict()}
        print(json.dumps(data, indent=2), file=stdout)
    elif args.quiet:
        for line in ended_badly(report, store):
            print(line, file=stderr)
    else:
        for line in format_report(report):
            print(line, file=stdout)
    if report.interrupted:
        print(f"interrupted: {_STILL_PENDING}", file=stderr)
        return EXIT_INTERRUPTED
    if report.errors and report.retry_after_s is not None:
        # A poll held back by the rate limits, or by a 503 that said when the Web API is back
        # (the error says until when), could not start: said as a refused start, not as a
        # feed that failed while it was read.
        _not_now(args, store, budget_account(cloud, credentials), report.retry_after_s,
                 report.errors, clock, stderr, held=report.held)
        return EXIT_FAILURE
    if report.errors:
        for error in report.errors:
            print(f"error: the prints feed could not be read: {error}", file=stderr)
        print(_STILL_PENDING, file=stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _not_now(
    args: argparse.Namespace,
    store: JobStore,
    account: str,
    wait_s: float | None,
    errors: Sequence[str],
    clock: Clock,
    stderr: TextIO,
    *,
    held: bool,
) -> None:
    """A verify held back ``wait_s``: said, unless ``--quiet``, the hold is the rate limits'
    (``held``) and a verify of this store said this wait already (:func:`first_to_say_held`).
    Cron mails whatever a job prints, and the wait ends by itself at the time the first mail
    named. A 503's wait is the Web API failing, not the account's budget: said every time."""
    once = args.quiet and held and wait_s is not None
    if once and wait_s is not None and not first_to_say_held(
            store, account, wait_s, now=clock.now()):
        return
    for error in errors:
        print(f"error: {_NOT_NOW}: {error}", file=stderr)
    print(_STILL_PENDING, file=stderr)
    if once:
        print(_QUIET_UNTIL, file=stderr)


def _nothing(
    args: argparse.Namespace, path: Path | str, text: str, stdout: TextIO
) -> None:
    if args.format == "json":
        empty = {"store": describe_store(path), "builds": [], "interrupted_sends": []}
        print(json.dumps(empty, indent=2), file=stdout)
    elif not args.quiet:
        # The store's path as typed (--store) may hold a terminal's escape sequences.
        print(visible(text), file=stdout)


def ended_badly(report: VerifyReport, store: JobStore | None = None) -> list[str]:
    """``--quiet``'s lines: each print this verify saw end badly (an error, an abort, no final
    status by its deadline), and nothing else. Cron mails whatever a job prints, so the table
    of a verify every few minutes buried the one print that failed among a day of mails; a
    print settled earlier is not said again (an unverified one is looked at for a week), and
    one that another verify of ``store`` saw end at the same time is said by one of them
    (``first_to_say_ended``: cron on each node of a shared store)."""
    lines = []
    for b in report.builds:
        if not b.changed or b.state not in _ENDED_BADLY or not first_to_say_ended(store, b):
            continue
        # Job names, printers and messages come from the store and the Dashboard.
        on = f" on {b.printer}" if b.printer else ""
        if b.state is JobState.UNVERIFIED:
            what = "unverified"
            helps = (f" (see whether it printed, then settle it: preform-pipeline jobs resolve "
                     f"{b.job_key} --printed or --not-printed)")
        else:
            what, helps = f"print {b.status}", ""
        lines.append(visible(
            f"{b.job_key}: {what}{on} ({b.job_name or 'no job name'}): "
            f"{b.message or 'no message'}{helps}"
        ))
    return lines


def format_report(report: VerifyReport) -> list[str]:
    """The text summary: interrupted sends, one line per print, then the totals and budget."""
    # A reason names where a print was looked for and who held its send (a host's name),
    # or quotes what a place answered: shown as escapes.
    lines = [
        visible(f"interrupted send {settled.build.job_key}: "
                f"{settled.decision.replace('_', ' ')} ({settled.reason}); "
                f"now {settled.build.state.value}")
        for settled in report.settled
    ]
    # Job names, printers and messages come from the store and the Dashboard: shown as
    # escapes (aligned measures them so).
    rows = [
        (
            b.job_key,
            b.state.value,
            b.status,
            b.printer or "-",
            b.job_name or "-",
            (b.message or "")[:80],
        )
        for b in report.builds
    ]
    if rows:
        lines.extend(aligned([_HEADERS, *rows]))
    counts = Counter(b.state.value for b in report.builds)
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none"
    budget = report.budget
    lines.append(
        f"{counted(len(report.builds), 'print')} checked: {summary}; "
        f"{counted(report.requests, 'Web API request')} in {counted(report.polls, 'poll')} "
        f"({budget.remaining} of {budget.limit} left this hour)"
    )
    return lines

"""What ``run`` prints when it ends: a summary that reads well from 60 to 200 columns.

On a terminal the summary is a table when the table fits the width, and one block per build
otherwise (a narrow window never squeezes a column to nothing, and nothing is cut: reasons
wrap). In a log (not a terminal) it is the block form, one line per fact, never wrapped. Both
end the same way: the warnings grouped per build (``6 labels skipped: part_10, part_13, …
(see report)``), the verification lines, the closing line (``3 of 3 builds succeeded``, from
:func:`~preform_pipeline.executor.progress.run_line`, so progress and summary count alike),
and last the exit status with its reasons (``exit 1: 1 model rejected, 2 builds
succeeded``).

It also owns the run's other console lines that had faults: the servers started (a server
that never started says so instead of ``(None)``; a remote one says ``REMOTE``), and the
log lines on a terminal, which go through the progress display's console so they appear
above the bars instead of inside them (:func:`route_logs`). A build's warnings are not logged
to the console at all while it runs: they are collected in its outcome and shown grouped here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final, TextIO

from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from preform_pipeline.commands._common import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
)
from preform_pipeline.executor.progress import counted_rejections, run_line
from preform_pipeline.executor.state import BuildOutcome, BuildStatus, RunResult
from preform_pipeline.logging import hide_secrets
from preform_pipeline.plan.warnings import MAX_NAMES_PER_WARNING, WarningGroup, plan_warnings
from preform_pipeline.servers.pool import ServerPool, ServerState, ServerStatus
from preform_pipeline.verify.tracking import verification_failed, verification_lines
from preform_pipeline.wording import counted, visible

if TYPE_CHECKING:
    # For annotations only: the planner brings numpy (see ``executor.progress``).
    from preform_pipeline.plan.builds import Plan

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "MAX_NAMES_PER_WARNING",
    "REFUSED_SAID_ON_STDERR",
    "WarningGroup",
    "exit_code",
    "exit_line",
    "group_warnings",
    "plan_warnings",
    "keep_off_console",
    "make_console",
    "print_summary",
    "quiet_build_warnings",
    "refusal_lines",
    "route_logs",
    "start_saying_refusals",
    "error_lines",
    "servers_line",
    "units_line",
]

#: Width of the block layout's indent under a build's name.
_INDENT: Final = 4
#: The reason column never gets narrower than this; below it the block layout is used.
_MIN_REASON_WIDTH: Final = 24

_HEADERS: Final = (
    "build", "status", "models", "material ml", "print h:mm", "job id", "server", "attempts",
    "reason",
)
_LABEL_SKIPPED: Final = re.compile(r"^(?P<name>.+?) left unlabelled: ")
_VALIDATION: Final = re.compile(r"^validation: (?P<kind>[^:]+): (?P<items>.*)$")


# -- consoles -----------------------------------------------------------------------------------


def make_console(stream: TextIO) -> Console:
    """A rich console on ``stream``: its terminal's width there, and plain, never-wrapped
    lines without colour or markup anywhere else (a log, a pipe, CI)."""
    isatty = getattr(stream, "isatty", None)
    if callable(isatty) and isatty():
        return Console(file=stream, highlight=False)
    return Console(
        file=stream, force_terminal=False, no_color=True, highlight=False, soft_wrap=True,
        width=10_000,
    )


class _BuildWarningFilter(logging.Filter):
    """Drops warning events logged inside a build: the build collects them and the summary
    shows them grouped, so they need not interrupt the progress display one by one."""

    def filter(self, record: logging.LogRecord) -> bool:
        event = record.msg
        return not (
            record.levelno == logging.WARNING and isinstance(event, dict) and "build" in event
        )


def _console_handlers() -> list[logging.StreamHandler[TextIO]]:
    return [
        h for h in logging.getLogger("preform_pipeline").handlers
        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
    ]


class _EventFilter(logging.Filter):
    """Drops the events of the given names that carry every field of ``where`` (the command
    says the same in its own lines)."""

    def __init__(self, events: frozenset[str], where: Mapping[str, object]) -> None:
        super().__init__()
        self.events = events
        self.where = dict(where)

    def filter(self, record: logging.LogRecord) -> bool:
        event = record.msg
        return not (
            isinstance(event, dict) and event.get("event") in self.events
            and all(event.get(key) == value for key, value in self.where.items())
        )


def keep_off_console(
    *events: str, where: Mapping[str, object] | None = None
) -> Callable[[], None]:
    """Keep the events named (those with every field of ``where``) off the console handlers
    (the log file keeps them), for a command that prints what they say itself: once on the
    console is enough. Returns what undoes it, for a command that says them only for a
    while (those after are the events' to say)."""
    kept = _EventFilter(frozenset(events), where or {})
    handlers = _console_handlers()
    for handler in handlers:
        handler.addFilter(kept)

    def undo() -> None:
        for handler in handlers:
            handler.removeFilter(kept)

    return undo


def quiet_build_warnings() -> None:
    """Keep the builds' own warnings off the console handlers (the log file keeps them)."""
    for handler in _console_handlers():
        if not any(isinstance(f, _BuildWarningFilter) for f in handler.filters):
            handler.addFilter(_BuildWarningFilter())


class _ConsoleStream:
    """A text stream that prints through a rich console, so a live display stays intact."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def write(self, text: str) -> int:
        self._console.print(text.rstrip("\n"), markup=False, highlight=False, soft_wrap=True)
        return len(text)

    def flush(self) -> None:
        return None


def route_logs(console: Console) -> Callable[[], None]:
    """Send the console log lines through ``console`` (the progress display's): rich then
    prints them above its bars instead of into their lines. Returns what undoes it (call it
    once the display has stopped)."""
    previous = [(h, h.setStream(_ConsoleStream(console))) for h in _console_handlers()]  # type: ignore[arg-type]

    def undo() -> None:
        for handler, stream in previous:
            if stream is not None:
                handler.setStream(stream)

    return undo


# -- servers ------------------------------------------------------------------------------------


#: What the servers line says of a refused server: the refusal itself is said once, on
#: stderr (:func:`refusal_lines`), where ``--quiet`` (cron) still says it.
REFUSED_SAID_ON_STDERR: Final = "refused, said on stderr"


def servers_line(statuses: Iterable[ServerStatus]) -> str:
    """``servers started: server-1 (pid 41, http://127.0.0.1:44388), prep-1 (REMOTE,
    http://prep:44388)``; a server that did not start says why instead of ``(None)``; a
    refused one says so (:func:`refusal_lines` says why); a remote that did not answer its
    first check says what it answered and that it is waited for."""
    parts: list[str] = []
    for s in statuses:
        if s.remote:
            # A remote's url as its settings wrote it, but never its password (as in the log).
            where = f"REMOTE, {hide_secrets(s.url)}" if s.url else "REMOTE, unreachable"
            if s.refused:
                where += f", {REFUSED_SAID_ON_STDERR}"
            elif s.state is ServerState.RESTARTING and s.last_error:
                # Not started: it did not answer its first check (session 44's trial: a
                # host name that does not resolve was listed as started, and the run then
                # waited servers.remote_wait_s with nothing on stdout saying why).
                where += (f", not answering: {s.last_error}; waited for up to "
                          "servers.remote_wait_s")
        elif s.refused:
            where = REFUSED_SAID_ON_STDERR
        elif s.url is None:
            where = "not started" + (f": {s.last_error}" if s.last_error else "")
        else:
            where = f"pid {s.pid}, {s.url}" if s.pid else s.url
        parts.append(f"{s.name} ({where})")
    return "servers started: " + (", ".join(parts) if parts else "none")


def refusal_lines(statuses: Iterable[ServerStatus]) -> list[str]:
    """``error: server printhost (REMOTE, http://nas:80): it answers, but cannot be used
    ...``, one line for each server the pool refused (why, with what helps): for stderr, the
    stream a cron mail shows, in place of the pool's ``server_retired`` event (kept off the
    console, in the log)."""
    return [
        f"error: server {s.name}" + (f" (REMOTE, {hide_secrets(s.url or '')})"
                                     if s.remote else "")
        # A refused start's error names its server first (``server-1 refused to start``).
        + f": {(s.last_error or 'refused').removeprefix(f'{s.name} ')}"
        for s in statuses if s.refused
    ]


def start_saying_refusals(
    pool: ServerPool, err: TextIO, said: set[str] | None = None
) -> tuple[ServerStatus, ...]:
    """Start ``pool`` and say each server it refuses as it starts on ``err``
    (:func:`refusal_lines`), once: its ``server_retired`` event is kept off the console
    meanwhile (the log keeps it). One refused later (a local server's restart or recycle, a
    remote's later check) is said only by that event, which then reaches the console.
    ``said``: the lines said already, not said again (a daemon starts a new pool when every
    server of its last one refused); the lines said now are added. Returns the servers'
    statuses after the start."""
    said_below = keep_off_console("server_retired", where={"refused": True})
    try:
        pool.start()
    finally:
        said_below()
    statuses = pool.status()
    said = set() if said is None else said
    for line in refusal_lines(statuses):  # also with --quiet: a person must act
        if line not in said:
            said.add(line)
            # A remote server's name and URL are the settings', its error a server's words.
            print(visible(line), file=err, flush=True)
    return statuses


# -- warnings -----------------------------------------------------------------------------------


def group_warnings(warnings: Sequence[str]) -> list[WarningGroup]:
    """A build's warnings grouped by kind, in the order each kind first appeared."""
    labels: list[str] = []
    validation: dict[str, list[str]] = {}
    other: list[str] = []
    for warning in warnings:
        if (match := _LABEL_SKIPPED.match(warning)) is not None:
            labels.append(match["name"].rsplit(".", 1)[0])
        elif (match := _VALIDATION.match(warning)) is not None:
            items = [i.strip() for i in match["items"].split(",") if i.strip()]
            validation.setdefault(match["kind"], []).extend(items)
        else:
            other.append(warning)
    groups: list[WarningGroup] = []
    if labels:
        groups.append(WarningGroup("labels skipped" if len(labels) != 1 else "label skipped",
                                   tuple(labels)))
    for kind, items in validation.items():
        groups.append(WarningGroup(f"validation {kind.replace('_', ' ')}", tuple(items)))
    groups.extend(WarningGroup(text, ()) for text in dict.fromkeys(other))
    return groups


# -- exit status --------------------------------------------------------------------------------


def exit_code(result: RunResult, *, terminated: bool = False, nothing_due: bool = False) -> int:
    """0 only when every build succeeded, nothing was rejected and every verified print
    ended well (or, ``nothing_due``, every model had already been printed); 130 (SIGINT) or
    143 (SIGTERM) when interrupted; 1 otherwise."""
    if result.cancelled:
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    ok = result.ok or nothing_due
    return EXIT_OK if ok and not verification_failed(result) else EXIT_FAILURE


def exit_line(result: RunResult, code: int, earlier: Sequence[str] = ()) -> str:
    """``exit 1: 1 model rejected, 2 builds succeeded``: the status and what made it.
    ``earlier``: what became of the builds earlier runs left waiting
    (``LeftWaiting.reasons``), said instead of "nothing to run" when they were all the run
    had to do, and before the builds' count otherwise."""
    settled = result.counted
    tally = result.tally
    reasons: list[str] = []
    if code == EXIT_TERMINATED:
        reasons.append("stopped by SIGTERM")
    elif code == EXIT_INTERRUPTED:
        reasons.append("interrupted")
    if tally.failed:
        reasons.append(counted(tally.failed, "build") + " failed")
    if tally.print_unconfirmed:
        reasons.append(counted(tally.print_unconfirmed, "print") + " unconfirmed")
    if tally.cancelled:
        reasons.append(counted(tally.cancelled, "build") + " cancelled")
    if result.rejected:
        reasons.append(counted_rejections(result.rejected) + " rejected")
    if tally.print_failed:
        reasons.append(counted(tally.print_failed, "print") + " did not finish well")
    if not settled and not result.cancelled:
        if earlier:
            return f"exit {code}: " + ", ".join([*reasons, *earlier, "no new builds"])
        reasons.append("nothing to run")
    reasons.extend(earlier)  # a leftover not sent fails a run with builds too: said why
    # Held or left waiting: prepared, not sent; counted apart from the tally run_line says.
    reasons.append(
        f"{tally.succeeded} of {counted(tally.builds, 'build')} succeeded"
        + (f", {tally.held} held for approval" if tally.held else "")
        + (f", {tally.waiting} waiting for a free printer" if tally.waiting else "")
    )
    return f"exit {code}: " + ", ".join(reasons)


def error_lines(result: RunResult, code: int, earlier: Sequence[str] = ()) -> list[str]:
    """What ``run --quiet`` prints when something went wrong: each rejected model, each
    build that did not succeed (with its reason and models), each print that did not finish
    well, and the exit line."""
    lines = [f"rejected: {r.reason}" for r in result.rejected]
    for outcome in result.counted:
        if not outcome.ok:
            lines.append(
                f"{outcome.name} {outcome.status.value}: {outcome.reason or '-'} "
                f"(models: {', '.join(outcome.models)})"
            )
        if outcome.print_failed:
            message = f": {outcome.verify_message}" if outcome.verify_message else ""
            lines.append(f"verify {outcome.name}: {outcome.verify}{message}")
    lines.append(exit_line(result, code, earlier))
    # A model's name (in a reason, a build's name) may hold a terminal's escape sequences.
    return [visible(line) for line in lines]


def units_line(plan: Plan) -> str:
    """``units: 3 MILLIMETERS (recipe), 1 INCHES (sidecar)``: how the planned models were
    read (each model's units are in the plan and the reports)."""
    counts: dict[str, int] = {}
    for build in plan.builds:
        for model in build.models:
            key = f"{model.units} ({model.units_source})"
            counts[key] = counts.get(key, 0) + 1
    return "units: " + ", ".join(f"{n} {key}" for key, n in sorted(counts.items()))


# -- the summary --------------------------------------------------------------------------------


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes = round(seconds / 60)
    return f"{minutes // 60}:{minutes % 60:02d}"


def _status(o: BuildOutcome) -> str:
    """The build's status as the summary shows it: a build whose print did not finish shows
    how it ended (``print_error``), not ``succeeded`` (review of session 43: "succeeded"
    above "verify ...: print_error: Resin level too low" was read as the print's)."""
    return o.verify if o.print_failed and o.verify else o.status.value


def _cells(o: BuildOutcome) -> tuple[str, ...]:
    # A build's name (from a job name template) and its reason may hold a file's name, and
    # with it a terminal's escape sequences: shown as escapes, as in every other line.
    return (
        visible(o.name),
        _status(o),
        str(len(o.models)),
        "-" if o.material_ml is None else f"{o.material_ml:.1f}",
        _hours(o.print_time_s),
        o.job_id or "-",
        o.server or "-",
        str(len(o.attempts)),
        "" if o.status is BuildStatus.SUCCEEDED else visible(o.reason or ""),
    )


def _table_width(result: RunResult) -> int:
    """Columns the table needs with every column but the reason at its full width."""
    rows = [_cells(o) for o in result.outcomes]
    fixed = sum(
        max(len(header), *(len(row[i]) for row in rows)) if rows else len(header)
        for i, header in enumerate(_HEADERS[:-1])
    )
    # Each column has a space of padding either side and a rule after it, plus the first rule.
    return fixed + _MIN_REASON_WIDTH + 3 * len(_HEADERS) + 1


def _table(result: RunResult) -> Table:
    table = Table(title=f"run {result.run_id}", title_justify="left", expand=False)
    for header in _HEADERS:
        if header == "reason":
            table.add_column(header, min_width=_MIN_REASON_WIDTH, overflow="fold", ratio=1)
        else:
            # Names, statuses and ids are what people copy: they never wrap or shrink.
            table.add_column(header, no_wrap=True, min_width=len(header))
    for outcome in result.outcomes:
        table.add_row(*_cells(outcome))
    return table


def _blocks(result: RunResult) -> Group:
    """One block per build: name and status, then the figures it has, then the full reason."""
    parts: list[RenderableType] = [Text(f"run {result.run_id}")]
    for o in result.outcomes:
        parts.append(Text(f"{visible(o.name)}  {_status(o)}"))
        figures = [counted(len(o.models), "model")]
        if o.material_ml is not None:
            figures.append(f"{o.material_ml:.1f} ml")
        if o.print_time_s is not None:
            figures.append(f"print {_hours(o.print_time_s)}")
        if o.server:
            figures.append(f"on {o.server}")
        figures.append(counted(len(o.attempts), "attempt"))
        if o.job_id:
            figures.append(f"job {o.job_id}")
        parts.append(_indented(", ".join(figures)))
        if o.status is BuildStatus.SPLIT:
            parts.append(_indented("split into " + ", ".join(o.children)))
        if o.status is not BuildStatus.SUCCEEDED and o.reason:
            parts.append(_indented(f"reason: {o.reason}"))
    return Group(*parts)


def _indented(text: str) -> Padding:
    # A reason or a split build's halves name a build or a file: shown as escapes.
    return Padding(Text(visible(text)), (0, 0, 0, _INDENT), expand=False)


def _summary(result: RunResult, console: Console) -> RenderableType:
    if not console.is_terminal:
        return _blocks(result)
    # A table squeezed below its columns' widths would cut names and ids: stack instead.
    if _table_width(result) > console.width:
        return _blocks(result)
    return _table(result)


def print_summary(
    result: RunResult, console: Console, *, code: int, extra: Sequence[str] = (),
    finished_said: bool = False, earlier: Sequence[str] = (),
) -> None:
    """The run's summary, its grouped warnings, verification, ``extra`` lines (where the
    report is), the closing line and, last, the exit line. Each fact once: no table for a
    run without builds (the progress said "nothing to prepare"), and no closing line when
    ``finished_said`` (the plain progress lines already ended with it)."""
    if result.outcomes:
        console.print(_summary(result, console), markup=False, highlight=False)
    # A split build's warnings come again from its halves, which redo its steps.
    warnings = [f"{outcome.name}: {group.text()}" for outcome in result.counted
                for group in group_warnings(outcome.warnings)]
    closing = [] if finished_said else [run_line(result)]
    # Each line shown as escapes where it holds hidden characters: a warning, and a verify
    # line, names a build (and so perhaps a file's name).
    for line in [*warnings, *verification_lines(result), *extra, *closing,
                 exit_line(result, code, earlier)]:
        console.print(visible(line), markup=False, highlight=False)

"""Telling a person how a run goes: progress bars on a terminal, plain lines anywhere else.

The runner calls a :class:`Reporter` from its worker threads; every implementation here is
thread-safe. :func:`make_reporter` picks :class:`RichReporter` (one bar per running build plus
an overall bar) when the stream is a terminal and :class:`PlainReporter` (one line per event,
good for logs and CI) otherwise. :class:`NullReporter` says nothing (tests, benchmarks).

Counts are the summary's (:attr:`RunResult.counted`): a build that is split is replaced by
its halves, so it leaves the total instead of counting as done. While the run waits for its
prints to be verified, :meth:`VerifyingReporter.verify_waiting` keeps a status line: what is
pending, when the next poll is, how much of the hourly request budget is spent.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence, Sized
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Protocol, TextIO

from preform_pipeline.executor.state import BuildOutcome, BuildStatus, RunResult
from preform_pipeline.plan.rejection import Rejection
from preform_pipeline.wording import counted, millimetres, noun, visible, visible_lines

if TYPE_CHECKING:
    from rich.console import Console

    # For annotations only: the planner brings numpy, which a watch with nothing to do, or
    # any line that only prints progress, never needs.
    from preform_pipeline.plan.builds import BuildPlan

__all__ = [
    "BudgetStatus",
    "PollStatus",
    "NullReporter",
    "REDRAWS_PER_SECOND",
    "PlainReporter",
    "Reporter",
    "RichReporter",
    "VerifyingReporter",
    "make_reporter",
    "counted_rejections",
    "rejection_lines",
    "run_line",
    "verify_line",
    "warning_lines",
]

#: How often the bars are drawn again on a terminal. Builds take minutes and their steps
#: seconds, so two drawings a second show every change in time; rich's ten cost the run's
#: process about 18 ms of CPU a second, three times the runner's own work per model on
#: dental arches (session 48, rv48-cpu's measurement: 6.0-6.7 ms a model on a terminal
#: against 2.3-2.7 with the output to a file).
REDRAWS_PER_SECOND: Final = 2


class Reporter(Protocol):
    """Receives the events of a run; called from several threads at once."""

    def run_started(
        self, run_id: str, builds: Sequence[BuildPlan], *, servers: int, simulated: bool
    ) -> None: ...

    def models_rejected(self, rejected: Sequence[Rejection]) -> None: ...

    def models_warned(self, warnings: Sequence[str]) -> None:
        """A batch's plan warnings (``plan.warnings.plan_warnings``), each said as
        ``warning: ...``: the hot folder's console, as ``run`` says them."""
        ...

    def build_added(self, build: BuildPlan, *, parent: str) -> None: ...

    def build_started(self, build: str, *, server: str, attempt: int, steps: int) -> None: ...

    def step_started(self, build: str, step: str, *, index: int, total: int) -> None: ...

    def step_progress(self, build: str, step: str, fraction: float) -> None: ...

    def build_retry(
        self, build: str, *, attempt: int, reason: str, where: str = "on another server"
    ) -> None: ...

    def build_finished(self, outcome: BuildOutcome) -> None: ...

    def run_finished(self, result: RunResult) -> None: ...

    def close(self) -> None: ...


class VerifyingReporter(Reporter, Protocol):
    """A reporter that also shows a run waiting for its prints to be verified."""

    def verify_waiting(self, outcome: PollStatus, pending: int) -> None: ...


class NullReporter:
    """Says nothing; for tests and benchmarks."""

    def run_started(
        self, run_id: str, builds: Sequence[BuildPlan], *, servers: int, simulated: bool
    ) -> None:
        return None

    def models_rejected(self, rejected: Sequence[Rejection]) -> None:
        return None

    def models_warned(self, warnings: Sequence[str]) -> None:
        return None

    def build_added(self, build: BuildPlan, *, parent: str) -> None:
        return None

    def build_started(self, build: str, *, server: str, attempt: int, steps: int) -> None:
        return None

    def step_started(self, build: str, step: str, *, index: int, total: int) -> None:
        return None

    def step_progress(self, build: str, step: str, fraction: float) -> None:
        return None

    def build_retry(
        self, build: str, *, attempt: int, reason: str, where: str = "on another server"
    ) -> None:
        return None

    def build_finished(self, outcome: BuildOutcome) -> None:
        return None

    def verify_waiting(self, outcome: PollStatus, pending: int) -> None:
        return None

    def run_finished(self, result: RunResult) -> None:
        return None

    def close(self) -> None:
        return None


def counted_rejections(rejected: Sequence[Rejection]) -> str:
    """``2 models``, or ``2 files`` when one of them is no part (a text, a photo, a path not
    found, a PNG named ``.stl``): a notes file is not called a model."""
    kind = "model" if all(r.of_a_model for r in rejected) else "file"
    return counted(len(rejected), kind)


def rejection_lines(rejected: Sequence[Rejection]) -> list[str]:
    """``rejected 2 models:`` (:func:`counted_rejections`), then a line per file: its path,
    its size when it was read, and why. What ``run`` prints before it starts, and the hot
    folder's console for a batch."""
    if not rejected:
        return []
    lines = [f"rejected {counted_rejections(rejected)}:"]
    for rejection in rejected:
        # What is known, once: no "(?)" for a size never read (a missing file, a refused
        # sidecar), and the path not again when the reason begins with it.
        size = rejection.size_mm
        shown = f" ({millimetres(size)})" if size is not None else ""
        reason = rejection.reason.removeprefix(f"{rejection.path}: ")
        # A name may hold a terminal's escape sequences: shown as escapes.
        lines.append(visible(f"  {rejection.path}{shown}: {reason}"))
    return lines


def warning_lines(warnings: Sequence[str]) -> list[str]:
    """``warning: ...`` for each: how ``run`` and the hot folder's console say a warning."""
    return [f"warning: {warning}" for warning in warnings]


def run_line(result: RunResult) -> str:
    """The run's closing line: how long it took and how many of its builds succeeded."""
    # A build held for approval, or left waiting for a free printer, was prepared, not sent:
    # counted apart, not "succeeded" (the tally the exit line and the JSON report say too).
    tally = result.tally
    return (
        f"run {result.run_id} finished in {result.wall_s:.1f} s: {tally.succeeded} of "
        f"{tally.builds} {noun(tally.builds, 'build')} succeeded"
        + (f", {tally.held} held for approval" if tally.held else "")
        + (f", {tally.waiting} waiting for a free printer" if tally.waiting else "")
        + (f", {tally.print_failed} {noun(tally.print_failed, 'print')} did not finish well"
           if tally.print_failed else "")
        + (f" ({tally.split} split into smaller builds)" if tally.split else "")
        + (" (interrupted)" if result.cancelled else "")
    )


class BudgetStatus(Protocol):
    """How much of the Web API's hourly request budget is spent."""

    @property
    def spent(self) -> int: ...

    @property
    def limit(self) -> int: ...


class PollStatus(Protocol):
    """What a verify poll reports to the progress display (the poller's ``PollOutcome``);
    a protocol, so the executor's display needs nothing from verify."""

    @property
    def in_progress(self) -> Sized: ...

    @property
    def next_interval_s(self) -> float: ...

    @property
    def budget(self) -> BudgetStatus: ...

    @property
    def error(self) -> str | None: ...


def verify_line(outcome: PollStatus, pending: int) -> str:
    """``verify: 2 prints pending (1 printing), next poll in 30 s, 4/1500 requests this
    hour``: what a run waiting for its prints is doing."""
    printing = len(outcome.in_progress)
    seen = f" ({printing} printing)" if printing else ""
    budget = outcome.budget
    text = (
        f"verify: {counted(pending, 'print')} pending{seen}, next poll in "
        f"{outcome.next_interval_s:.0f} s, {budget.spent}/{budget.limit} requests this hour"
    )
    return text + (f" (last poll failed: {outcome.error})" if outcome.error else "")


def _finished_text(outcome: BuildOutcome) -> str:
    where = f" on {outcome.server}" if outcome.server else ""
    tries = len(outcome.attempts)
    attempts = f", {tries} attempts" if tries > 1 else ""
    text = f"{outcome.status.value}{where}{attempts} in {outcome.duration_s:.1f} s"
    if outcome.held and outcome.status is BuildStatus.SUCCEEDED:
        # Prepared, and waiting for a person, not for a printer: "succeeded" said it printed.
        return (f"held for approval (dashboard or `jobs approve {outcome.job_key}`): "
                f"prepared{where}{attempts} in {outcome.duration_s:.1f} s")
    if outcome.waiting and outcome.status is BuildStatus.SUCCEEDED:
        # Prepared, not sent: "succeeded" said it printed; dispatch sends it when one is free.
        target = f" ({outcome.printer})" if outcome.printer else ""
        return (f"waiting for a free printer{target}, sent when one is free (`jobs waiting`): "
                f"prepared{where}{attempts} in {outcome.duration_s:.1f} s")
    if outcome.status is BuildStatus.SPLIT:
        text += f" into {', '.join(outcome.children)}"
    elif outcome.reason:
        text += f": {outcome.reason}"
    return text


class PlainReporter:
    """One line per event, for output that is not a terminal (a log file, CI, a pipe).

    The hot folder gives one reporter to every batch, and its workers run batches at once: a
    build's "(done/total builds done)" counts the builds of its own run, never the runs before
    it or beside it.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._counts: dict[str, list[int]] = {}  # run id: [done, total]
        self._run_of: dict[str, str] = {}  # build name: its run's id
        self._latest = ""  # the run a build of no known run counts in (the only one, mostly)

    def _say(self, line: str) -> None:
        # A build's name, a reason, a server's answer may name a model file: every line is
        # shown as escapes here, where each reaches the stream.
        with self._lock:
            self._stream.write(visible_lines(line) + "\n")
            self._stream.flush()

    def run_started(
        self, run_id: str, builds: Sequence[BuildPlan], *, servers: int, simulated: bool
    ) -> None:
        with self._lock:
            self._counts[run_id] = [0, len(builds)]
            self._run_of.update((b.name, run_id) for b in builds)
            self._latest = run_id
        if not builds:
            # A repeat whose every model was skipped (or rejected) uses no server: "0 models
            # on 1 simulated server" said one ran when none was started. One started for
            # other work (``servers``: sending builds earlier runs left waiting) was said
            # by that work.
            self._say(f"run {run_id}: nothing new to prepare" if servers else
                      f"run {run_id}: nothing to prepare, no server started")
            return
        models = sum(len(b.models) for b in builds)
        self._say(
            f"run {run_id}: {counted(len(builds), 'build')}, {counted(models, 'model')} on "
            f"{servers} {'simulated ' if simulated else ''}{noun(servers, 'server')}"
        )

    def models_rejected(self, rejected: Sequence[Rejection]) -> None:
        lines = rejection_lines(rejected)
        if lines:  # one write: another batch's lines never come between them
            self._say("\n".join(lines))

    def models_warned(self, warnings: Sequence[str]) -> None:
        if warnings:  # one write, as the rejections
            self._say("\n".join(warning_lines(warnings)))

    def build_added(self, build: BuildPlan, *, parent: str) -> None:
        with self._lock:
            run_id = self._run_of.get(parent, self._latest)
            self._run_of[build.name] = run_id
            self._counts.setdefault(run_id, [0, 0])[1] += 1
        self._say(f"[{build.name}] split from {parent}: {counted(len(build.models), 'model')}")

    def build_started(self, build: str, *, server: str, attempt: int, steps: int) -> None:
        again = f" (attempt {attempt})" if attempt > 1 else ""
        self._say(f"[{build}] started on {server}{again}: {counted(steps, 'step')}")

    def step_started(self, build: str, step: str, *, index: int, total: int) -> None:
        self._say(f"[{build}] step {index}/{total} {step}")

    def step_progress(self, build: str, step: str, fraction: float) -> None:
        return None  # too chatty for a log; the terminal reporter draws it

    def build_retry(
        self, build: str, *, attempt: int, reason: str, where: str = "on another server"
    ) -> None:
        self._say(f"[{build}] retrying (attempt {attempt}) {where}: {reason}")

    def build_finished(self, outcome: BuildOutcome) -> None:
        with self._lock:
            run_id = self._run_of.get(outcome.name, self._latest)
            counts = self._counts.setdefault(run_id, [0, 0])
            if outcome.status is BuildStatus.SPLIT:
                counts[1] -= 1  # its halves were added in its place
            else:
                counts[0] += 1
            done, total = counts
        self._say(
            f"[{outcome.name}] {_finished_text(outcome)} "
            f"({done}/{total} {noun(total, 'build')} done)"
        )

    def verify_waiting(self, outcome: PollStatus, pending: int) -> None:
        self._say(verify_line(outcome, pending))

    def run_finished(self, result: RunResult) -> None:
        with self._lock:  # a daemon's reporter lives for months: its finished runs go
            self._counts.pop(result.run_id, None)
            for build in [b for b, run in self._run_of.items() if run == result.run_id]:
                del self._run_of[build]
        self._say(run_line(result))

    def close(self) -> None:
        return None


class RichReporter:
    """A bar per running build and one for the whole run, drawn with rich on a terminal."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TaskID,
            TextColumn,
            TimeElapsedColumn,
        )

        self._console = Console(file=stream)
        self._progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[status]}", markup=False),
            TimeElapsedColumn(),
            console=self._console,
            transient=False,
            refresh_per_second=REDRAWS_PER_SECOND,
        )
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskID] = {}
        self._overall: TaskID | None = None
        self._verify: TaskID | None = None
        self._started = False

    @property
    def console(self) -> Console:
        """The console the bars are drawn on: print through it (or log into it, see
        :func:`preform_pipeline.commands._console.route_logs`) and lines appear above the bars."""
        return self._console

    def __enter__(self) -> RichReporter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _start(self) -> None:
        if not self._started:
            self._progress.start()
            self._started = True

    def run_started(
        self, run_id: str, builds: Sequence[BuildPlan], *, servers: int, simulated: bool
    ) -> None:
        with self._lock:
            self._start()
            label = f"run {run_id}" + (" (SIMULATED)" if simulated else "")
            self._overall = self._progress.add_task(label, total=len(builds), status="")

    def models_rejected(self, rejected: Sequence[Rejection]) -> None:
        with self._lock:
            for line in rejection_lines(rejected):
                self._console.print(line, markup=False, highlight=False)

    def models_warned(self, warnings: Sequence[str]) -> None:
        with self._lock:
            for line in warning_lines(warnings):
                self._console.print(visible(line), markup=False, highlight=False)

    def build_added(self, build: BuildPlan, *, parent: str) -> None:
        with self._lock:
            if self._overall is not None:
                total = self._progress.tasks[self._overall_index()].total or 0
                self._progress.update(self._overall, total=total + 1)

    def _overall_index(self) -> int:
        for i, task in enumerate(self._progress.tasks):
            if task.id == self._overall:
                return i
        return 0

    def build_started(self, build: str, *, server: str, attempt: int, steps: int) -> None:
        with self._lock:
            status = f"{server}" + (f" attempt {attempt}" if attempt > 1 else "")
            task = self._tasks.get(build)
            if task is None:
                # Its name may hold a terminal's escape sequences (a model's, by a template).
                self._tasks[build] = self._progress.add_task(visible(build), total=steps,
                                                             status=status)
            else:
                self._progress.update(task, completed=0, total=steps, status=status)

    def step_started(self, build: str, step: str, *, index: int, total: int) -> None:
        with self._lock:
            task = self._tasks.get(build)
            if task is not None:
                self._progress.update(task, completed=index - 1, total=total, status=step)

    def step_progress(self, build: str, step: str, fraction: float) -> None:
        with self._lock:
            task = self._tasks.get(build)
            if task is None:
                return
            current = self._progress.tasks[self._index(task)]
            done = int(current.completed)
            self._progress.update(task, completed=done + min(max(fraction, 0.0), 0.999))

    def _index(self, task: Any) -> int:
        for i, item in enumerate(self._progress.tasks):
            if item.id == task:
                return i
        return 0

    def build_retry(
        self, build: str, *, attempt: int, reason: str, where: str = "on another server"
    ) -> None:
        with self._lock:
            task = self._tasks.get(build)
            if task is not None:
                self._progress.update(task,
                                      status=visible(f"retrying {where}: {reason[:60]}"))

    def build_finished(self, outcome: BuildOutcome) -> None:
        with self._lock:
            task = self._tasks.pop(outcome.name, None)
            if task is not None:
                self._progress.update(task, visible=False)
            if self._overall is not None:
                if outcome.status is BuildStatus.SPLIT:
                    total = self._progress.tasks[self._overall_index()].total or 1
                    self._progress.update(self._overall, total=total - 1)
                else:
                    self._progress.advance(self._overall)
            self._progress.console.print(
                visible_lines(f"{outcome.name}: {_finished_text(outcome)}"), markup=False,
                highlight=False,
            )

    def verify_waiting(self, outcome: PollStatus, pending: int) -> None:
        with self._lock:
            line = verify_line(outcome, pending)
            if self._verify is None:
                self._verify = self._progress.add_task(line, total=None, status="")
            else:
                self._progress.update(self._verify, description=line)
            self._progress.refresh()  # a wait is long: show it now, not at the next tick

    def run_finished(self, result: RunResult) -> None:
        with self._lock:
            if self._verify is not None:
                self._progress.update(self._verify, visible=False)
            if self._overall is not None:
                self._progress.update(
                    self._overall, status="interrupted" if result.cancelled else "done"
                )

    def close(self) -> None:
        with self._lock:
            if self._started:
                self._progress.stop()
                self._started = False


def make_reporter(stream: TextIO, *, quiet: bool = False) -> VerifyingReporter:
    """Bars on a terminal, plain lines otherwise; nothing when ``quiet``."""
    if quiet:
        return NullReporter()
    isatty = getattr(stream, "isatty", None)
    if callable(isatty) and isatty():
        return RichReporter(stream)
    return PlainReporter(stream)

"""The seam between the executor and printing/verification: what a print step may ask.

Defined here, by the executor that calls it, so that the executor never imports ``verify``.

The executor stays ignorant of job keys, the job store, printer policies and the Web API; it
calls these hooks at four points of the ``print`` step (choose the printer, name the job,
before sending, after the answer), reads :attr:`BuildPrintHooks.verifies` in the ``verify``
step, and hands the run's result to :meth:`PrintHooks.after_run` once every build is done.
:class:`preform_pipeline.verify.tracking.PrintTracking` is the implementation; tests may
pass their own.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    from preform_pipeline.api import PreFormClient
    from preform_pipeline.executor.state import RunResult
    from preform_pipeline.plan.builds import BuildPlan
    from preform_pipeline.printing.holder import SendHolder
    from preform_pipeline.recipes.model import Recipe

__all__ = [
    "PRINT_HELD",
    "PRINT_WAITING",
    "VERIFY_PENDING",
    "VERIFY_SKIPPED_DRY_RUN",
    "VERIFY_SKIPPED_NO_CREDENTIALS",
    "BuildPrintHooks",
    "PrintHooks",
]

#: ``verify`` in a build's outcome while its print waits for the shared poller.
VERIFY_PENDING: Final = "pending"
#: ``before_send``'s answer when the build was handed to dispatch: it waits for a free printer.
PRINT_WAITING: Final = "waiting for a free printer"
#: ``before_send``'s answer when the build was held for an operator's approval (the hot
#: folder, ``print: {approval: required}``): dispatch sends it only once it is approved.
PRINT_HELD: Final = "held for approval"
#: ``verify`` when no Web API credentials are configured: nothing can be verified.
VERIFY_SKIPPED_NO_CREDENTIALS: Final = "skipped (no Web API credentials)"
#: ``verify`` of a dry run: nothing was printed.
VERIFY_SKIPPED_DRY_RUN: Final = "skipped"


class BuildPrintHooks(Protocol):
    """One build's print, as the executor's ``print`` and ``verify`` steps see it."""

    @property
    def job_key(self) -> str:
        """The build's job key (``PP-...``), stable across the build's attempts."""
        ...

    @property
    def verifies(self) -> bool:
        """True when the print will be followed through the Web API after the run."""
        ...

    def resolve_printer(self, printer: str, recipe: Recipe, client: PreFormClient) -> str:
        """The target to send to: ``printer`` itself, or for ``auto`` the chosen printer.

        Raises :class:`~preform_pipeline.errors.PrinterSelectionError` when none fits.
        """
        ...

    def job_name(self, name: str) -> str:
        """``name`` with the job key embedded (``embed_key``)."""
        ...

    def before_send(
        self,
        job_name: str,
        printer: str,
        *,
        holder: SendHolder | None = None,
        form_path: Path | None = None,
    ) -> str | None:
        """Called right before the print request, after which it must be durable that a send
        is under way, held by ``holder`` (the server the request goes to). Returns None to
        send, or the job id of a print that already exists (an earlier, interrupted send that
        was found): then nothing is sent; or :data:`PRINT_WAITING`: the build (saved as
        ``form_path``) waits in the job store for a free printer and dispatch sends it; or
        :data:`PRINT_HELD`: it waits for an operator's approval first."""
        ...

    def sent(self, job_id: str | None, printer: str) -> None:
        """The server accepted the print (``job_id`` from its answer)."""
        ...

    def refused(self, reason: str) -> None:
        """The server refused the print: nothing was queued."""
        ...

    def unconfirmed(self, reason: str) -> None:
        """The print request got no answer: the job may or may not exist."""
        ...


class PrintHooks(Protocol):
    """Printing and verification for a whole run (``RunOptions.print_tracking``)."""

    def for_build(self, build: BuildPlan) -> BuildPrintHooks:
        """The hooks of one build (called once per build, before its first attempt)."""
        ...

    def after_run(self, result: RunResult, stop: threading.Event) -> RunResult:
        """Verify the prints the run sent (until they end, their deadline, or ``stop``) and
        return the result with each build's ``verify`` status and message filled in."""
        ...

"""Sending a waiting build: its saved .form is loaded onto a leased server, then printed.

A waiting build is prepared: its .form was saved before it began waiting. Sending it, now or
after a restart, loads that file onto any server of the pool (never prepares the models again)
and hands the send to the print owner, which writes PRINT_SENDING (with the server that holds
the send) before the request and PRINT_SENT, FAILED (refused) or nothing (no answer: resolved
later, never resent blindly) after it.

On several nodes (a :class:`LeaseFencedStore`) the sender first asks the database whether this
node still holds the build's lease, before it takes a server and again before it loads the
.form: a node waking from a stall must not load a build another node now holds. A lease lost
while the .form loads stops the send at the fenced move to PRINT_SENDING; the loaded scene is
deleted whatever stops the send.

The printer claim the dispatch pass took for the build (``claims``) is renewed before each
phase of the send: the wait for a free server, the load, the print request (each bounded on
its own, together longer than a claim's lease). A claim found lost to another holder (it ran
out before the send began: an earlier send of the pass took that long) stops the send before
the print is begun; the build keeps waiting and a later pass chooses again.

Once sent, the build's own report beside its .form (written when it was prepared, before it
waited; of any suffix the recipe gives it) is brought up to date: the printer it went to, the
print's job id, and ``print`` among its steps, as a build printed at once has them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

from preform_pipeline.api import PreFormClient, PrintOptions
from preform_pipeline.atomicfile import write_text_atomically
from preform_pipeline.errors import (
    ApiError,
    FileWriteError,
    PermanentApiError,
    PipelineError,
    SceneLostError,
)
from preform_pipeline.executor.ledger import is_run_build
from preform_pipeline.executor.report_beside import report_beside
from preform_pipeline.logging import get_logger
from preform_pipeline.printing import PrintOwner, SendHolder
from preform_pipeline.store import Build
from preform_pipeline.verify.targets import PrinterCandidate
from preform_pipeline.verify.tracking import PrinterClaims
from preform_pipeline.wording import error_text, noun

if TYPE_CHECKING:
    from preform_pipeline.executor.runner import ServerSource


__all__ = [
    "DEFAULT_LEASE_TIMEOUT_S",
    "FormSender",
    "LeaseFencedStore",
    "PoolDevices",
]

log = get_logger(__name__)

#: How long a send waits for a free server (all may be busy preparing).
DEFAULT_LEASE_TIMEOUT_S: Final = 600.0


@runtime_checkable
class LeaseFencedStore(Protocol):
    """A store whose build moves are fenced by a node's lease
    (:class:`~preform_pipeline.store.fenced.NodeJobStore`); a single node's store has none."""

    def confirm_held(self, build_id: int) -> object:
        """Whether this node holds ``build_id`` now, asked of the database (LeaseLostError)."""
        ...


class FormSender:
    """:class:`~.waiting.Send` for a pool: load the build's .form, print it (module docstring).

    ``after_send`` is told about every build whose state the send changed (the hot folder
    settles its files then). ``claims``: the claims the dispatch pass chose under, renewed
    before each phase (module docstring).
    """

    def __init__(
        self,
        pool: ServerSource,
        owner: PrintOwner,
        *,
        request_timeout_s: float,
        lease_timeout_s: float = DEFAULT_LEASE_TIMEOUT_S,
        after_send: Callable[[Build], None] | None = None,
        claims: PrinterClaims | None = None,
    ) -> None:
        self.claims = claims
        self.pool = pool
        self.owner = owner
        self.request_timeout_s = request_timeout_s
        self.lease_timeout_s = lease_timeout_s
        self.after_send = after_send

    def __call__(self, build: Build, printer: str) -> None:
        if build.form_path is None:
            raise PipelineError(
                f"build {build.job_key} waits for a printer but has no saved .form",
                hint=self._prepare_again(build),
            )
        job_name = build.job_name or build.job_key
        # A node that wakes from a stall with a dispatch pass read before it must not take
        # a server, nor load the .form, for a build another node holds now.
        self._confirm_held(build)
        self._keep_claim(build, printer, self.lease_timeout_s)
        lease = self.pool.lease(timeout=self.lease_timeout_s)
        try:
            server = lease.server
            with PreFormClient(
                server.url, path_mapper=server.path_mapper.to_server,
                timeout=self.request_timeout_s, check_version_on_first_use=False,
            ) as client:
                # Again: the wait for a free server may have outlasted the lease.
                self._confirm_held(build)
                self._keep_claim(build, printer, self.request_timeout_s)
                scene_id = client.load_form(build.form_path).id
                if scene_id is None:
                    raise PipelineError(f"{server.name} loaded {build.form_path} without a "
                                        "scene id", hint="dispatch tries again")
                try:
                    # The move to PRINT_SENDING is fenced too: a lease lost while the .form
                    # loaded stops here, and the loaded scene is deleted all the same.
                    holder = SendHolder.of_server(server, self.request_timeout_s)
                    self._keep_claim(build, printer, self.request_timeout_s)
                    self.owner.begin(build.id, job_name, printer, holder)
                    try:
                        result = client.print_scene(
                            scene_id, PrintOptions(printer=printer, job_name=job_name)
                        )
                    except PermanentApiError as exc:
                        self._told(self.owner.refused(build.id, str(exc)))
                        raise
                    except SceneLostError as exc:
                        # An answer: the server has no scene to print, so nothing was queued
                        # (as at a run's print step). Its message, without the hint that
                        # speaks of a build starting again.
                        self._told(self.owner.refused(build.id, exc.message))
                        raise
                    except (ApiError, OSError) as exc:
                        # May exist: stays PRINT_SENDING, resolved later, never resent blindly.
                        self.owner.unconfirmed(build.id, error_text(exc))
                        return
                finally:
                    _forget_scene(client, scene_id)
        finally:
            lease.release()
        sent = self.owner.sent(build.id, result.job_id, printer)
        _note_print_in_report(sent, printer, result.job_id)
        self._told(sent)

    def _prepare_again(self, build: Build) -> str:
        """What prepares a build that can never be sent again, by whose it is. Its jobs
        wait (``waiting_for_printer``), which ``jobs retry`` refuses; ``jobs cancel`` takes
        each out of the build (the store then never sends it as it is). A run's cancelled
        jobs free their files for the next run over them; a queued run job would only be
        skipped by it, so only the hot folder's are queued again."""
        store = self.owner.store
        keys = [job.job_key for job in store.build_members(build.id)]
        n, them = len(keys), noun(len(keys), "it", "them")
        cancel = ", ".join(f"`{self.owner.jobs} cancel {key}`" for key in keys)
        if is_run_build(store, build):
            return (f"cancel its {noun(n, 'job')} ({cancel}): the next run over "
                    f"{noun(n, 'its file', 'their files')} prepares {them} again")
        retry = ", ".join(f"`{self.owner.jobs} retry {key}`" for key in keys)
        return (f"cancel its {noun(n, 'job')}, then queue {them} again ({cancel}; then "
                f"{retry}): the hot folder prepares {them} again")

    def _confirm_held(self, build: Build) -> None:
        store = self.owner.store
        if isinstance(store, LeaseFencedStore):
            store.confirm_held(build.id)

    def _keep_claim(self, build: Build, printer: str, phase_s: float) -> None:
        if self.claims is not None and not self.claims.renew(build.job_key, phase_s=phase_s):
            raise PipelineError(
                f"{printer} was chosen for another build while {build.job_key} waited to be "
                "sent (its claim on the printer ran out); it was not sent",
                hint="it keeps waiting: the next dispatch pass chooses a printer for it",
            )

    def _told(self, build: Build) -> None:
        if self.after_send is not None:
            self.after_send(build)


def _note_print_in_report(build: Build, printer: str, job_id: str | None) -> None:
    """The build's report beside its .form (:func:`~preform_pipeline.executor.report_beside.
    report_beside`: the recipe's ``outputs.report`` of any suffix, the one the dashboard
    reads) names the print now; a report elsewhere, or none, is left as it is. A report that
    cannot be read or written is logged: the print is out whatever it says."""
    if build.form_path is None:
        return

    def unreadable(path: Path, error: str) -> None:
        log.warning("build_report_not_updated", build=build.job_key, path=str(path),
                    error=error)

    found = report_beside(build.form_path, build.job_key, unreadable)
    if found is None:
        return
    path, data = found
    steps = data.get("steps_done")
    data["printer"] = printer
    data["job_id"] = job_id
    if isinstance(steps, list) and "print" not in steps:
        data["steps_done"] = [*steps, "print"]
    try:
        write_text_atomically(path, json.dumps(data, indent=2) + "\n")
    except FileWriteError as exc:
        log.warning("build_report_not_updated", build=build.job_key, path=str(path),
                    error=str(exc))


def _forget_scene(client: PreFormClient, scene_id: str) -> None:
    try:
        client.delete_scene(scene_id)
    except ApiError as exc:  # the server drops it on restart anyway
        log.info("scene_not_deleted", scene_id=scene_id, error=str(exc))


class PoolDevices:
    """Printer readiness from the Local API of any running server of the pool (``/devices/``).

    Reading devices is not a scene operation, so it needs no lease and never waits for a build.
    """

    description = "Local API devices"

    def __init__(self, pool: ServerSource, *, request_timeout_s: float,
                 offline_too: bool = False) -> None:
        self.pool = pool
        self.request_timeout_s = request_timeout_s
        self.offline_too = offline_too  # see LocalApiDevices

    def printer_candidates(self) -> tuple[PrinterCandidate, ...]:
        from preform_pipeline.verify.targets import LocalApiDevices

        urls = [s.url for s in self.pool.status() if s.url and s.retired_reason is None]
        if not urls:
            raise PipelineError("no server is running to read printer status from",
                                hint="the pool restarts its servers; dispatch tries again")
        with PreFormClient(urls[0], timeout=self.request_timeout_s,
                           check_version_on_first_use=False) as client:
            return tuple(LocalApiDevices(client, offline_too=self.offline_too)
                         .printer_candidates())

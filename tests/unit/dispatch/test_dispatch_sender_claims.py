"""A waiting build's send keeps its printer claim alive through every phase: the wait for a
free server, loading its .form, the print request, each bounded on its own and together longer
than a claim's lease (a real SQLite store on a manual clock, the real sender, an in-process
simulator serving the Local API; each phase's time passes on the clock at a seam inside it).

At each seam another holder (a ``run`` beside the ``watch``, another node) tries to claim the
printer being sent to: it must be refused until the print is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.api import ImportOptions, PreFormClient, SceneSettings
from preform_pipeline.clock import ManualClock
from preform_pipeline.dispatch.leftover import send_left_waiting
from preform_pipeline.dispatch.sender import FormSender
from preform_pipeline.dispatch.waiting import Dispatcher
from preform_pipeline.executor.ledger import RUN_FIELD
from preform_pipeline.printing import PrintOwner
from preform_pipeline.printing.target import PrintTarget
from preform_pipeline.simulator.protocol import ProgressCallback
from preform_pipeline.store import Build, JobState, SqliteJobStore
from preform_pipeline.verify.tracking import PRINTER_CLAIM_LEASE_S, PrinterClaims
from tests.unit.dispatch.test_dispatch_waiting import FORM4, GREY, Printers
from tests.unit.executor.executor_support import (
    WAIT_S,
    FakeLease,
    FakePool,
    ScriptedFaults,
    SimFarm,
    write_box,
)

#: Each phase's bound (``servers.request_timeout_s``'s default) and the wait for a server:
#: together far longer than a claim's lease.
PHASE_S = 610.0
SERVER_WAIT_S = 600.0
PRINTERS = ("SimulatedForm4-1", "SimulatedForm4-2")
#: Another process's claims (a holder that names no process: only its lease ends it).
RIVAL = "pc-9:rival"


class _Rival:
    """Another holder trying to claim the printer being sent to, at each seam; what it got."""

    def __init__(self, store: SqliteJobStore) -> None:
        self.store = store
        self.printer: str | None = None
        self.tries: list[tuple[str, str, bool]] = []

    def tries_now(self, phase: str) -> None:
        assert self.printer is not None
        taken = self.store.claim_printer(self.printer, holder=RIVAL, build=f"rival-{phase}",
                                         lease_s=PRINTER_CLAIM_LEASE_S)
        self.tries.append((phase, self.printer, taken))
        if taken:  # give it back: the next seam's try tells about the claim there
            self.store.release_printers(holder=RIVAL, builds=[f"rival-{phase}"])


class _PhasesTakeTime(ScriptedFaults):
    """The server's load and print each take ``PHASE_S`` on the clock; the rival tries then."""

    def __init__(self, clock: ManualClock, rival: _Rival) -> None:
        super().__init__()
        self.clock = clock
        self.rival = rival

    def during_operation(self, operation_id: str, progress: ProgressCallback | None) -> None:
        if operation_id in ("load_form_file", "print"):
            self.clock.advance(PHASE_S)
            self.rival.tries_now(operation_id)


class _SlowPool(FakePool):
    """Every server is busy for ``SERVER_WAIT_S`` before one is leased; the rival tries then."""

    def __init__(self, urls: list[str], clock: ManualClock, rival: _Rival) -> None:
        super().__init__(urls)
        self.clock = clock
        self.rival = rival

    def lease(self, timeout: float | None = None) -> FakeLease:
        self.clock.advance(SERVER_WAIT_S)
        self.rival.tries_now("server_wait")
        return super().lease(timeout)


@pytest.fixture
def rival(store: SqliteJobStore) -> _Rival:
    return _Rival(store)


@pytest.fixture
def farm(tmp_path: Path, clock: ManualClock, rival: _Rival) -> Iterator[SimFarm]:
    farm = SimFarm(tmp_path)
    farm.add(_PhasesTakeTime(clock, rival))
    yield farm
    farm.close()


@pytest.fixture
def pool(farm: SimFarm, clock: ManualClock, rival: _Rival) -> Iterator[FakePool]:
    pool = _SlowPool([s.url for s in farm.servers], clock, rival)
    yield pool
    pool.close()


def _saved_form(url: str, folder: Path, name: str) -> Path:
    """A prepared build's .form, saved by the server as the runner saves it."""
    form = folder / f"{name}.form"
    with PreFormClient(url, timeout=WAIT_S) as client:
        scene = client.create_scene(SceneSettings(FORM4, GREY, 0.1, print_setting="DEFAULT"))
        assert scene.id is not None
        client.import_model(scene.id, write_box(folder, name, 10, 10, 5),
                            ImportOptions(name=name))
        client.save_form(scene.id, form)
        client.delete_scene(scene.id)
    return form


def _waiting(store: SqliteJobStore, form: Path, name: str, *, by_run: bool = False) -> Build:
    """A prepared build waiting for any free Form 4 with Grey resin (``by_run``: a ``run``'s)."""
    fields = {RUN_FIELD: {"pid": 1}} if by_run else None
    job = store.create_job(recipe="hot", source_path=f"/in/processing/{name}.stl",
                           fields=fields, state=JobState.PROCESSING)
    build = store.create_build(recipe="hot", job_ids=[job.id])
    store.transition_build(build.id, JobState.PREPARING, "preparing")
    store.transition_build(build.id, JobState.PREPARED, "prepared", form_path=form)
    target = PrintTarget(auto=True, machine_type=FORM4, material=GREY)
    return PrintOwner(store).wait_for_printer(build.id, target.to_json(), job_name=build.job_key,
                                              priority=0, describe=target.describe())


def _dispatcher(store: SqliteJobStore, pool: FakePool, clock: ManualClock,
                claims: PrinterClaims, rival: _Rival) -> Dispatcher:
    owner = PrintOwner(store, clock=clock)
    sender = FormSender(pool, owner, request_timeout_s=PHASE_S, lease_timeout_s=SERVER_WAIT_S,
                        claims=claims)

    def send(build: Build, printer: str) -> None:
        rival.printer = printer
        sender(build, printer)

    return Dispatcher(store, Printers(*PRINTERS), send, clock=clock, claims=claims)


def _printed(farm: SimFarm) -> dict[str, str]:
    return {str(j["job_name"]): str(j["printer"]) for j in farm.jobs()}


class TestASendInPhases:
    """Two builds go out in one pass: the second's send begins when the first's ended, long
    after its claim was taken; no other holder gets either printer before its print."""

    def test_no_other_holder_claims_a_printer_while_its_build_is_being_sent(
        self, store: SqliteJobStore, clock: ManualClock, farm: SimFarm, pool: FakePool,
        rival: _Rival, tmp_path: Path,
    ) -> None:
        url = farm.servers[0].url
        first = _waiting(store, _saved_form(url, tmp_path, "first"), "first")
        second = _waiting(store, _saved_form(url, tmp_path, "second"), "second")
        claims = PrinterClaims(store)
        done = _dispatcher(store, pool, clock, claims, rival).dispatch_once()

        assert [(d.job_key, d.printer, d.error) for d in done] == [
            (first.job_key, PRINTERS[0], None), (second.job_key, PRINTERS[1], None)]
        assert _printed(farm) == {first.job_key: PRINTERS[0], second.job_key: PRINTERS[1]}
        # 1820 s per send: the second send began 1820 s after its claim was taken.
        assert rival.tries == [(phase, printer, False) for printer in PRINTERS
                               for phase in ("server_wait", "load_form_file", "print")]
        # Sent: both printers are free for a choice again.
        assert store.printers_claimed(other_than=RIVAL) == frozenset()

    def test_a_claim_taken_by_another_holder_after_it_ran_out_stops_the_send(
        self, store: SqliteJobStore, clock: ManualClock, farm: SimFarm, pool: FakePool,
        rival: _Rival, tmp_path: Path,
    ) -> None:
        url = farm.servers[0].url
        build = _waiting(store, _saved_form(url, tmp_path, "late"), "late")
        claims = PrinterClaims(store)
        dispatcher = _dispatcher(store, pool, clock, claims, rival)
        chosen = _ClaimThenStall(claims, clock, store)
        dispatcher.send = chosen.wrap(dispatcher.send)

        with capture_logs() as logs:
            done = dispatcher.dispatch_once()

        assert [(d.job_key, d.printer) for d in done] == [(build.job_key, PRINTERS[0])]
        assert done[0].error is not None
        assert done[0].error.startswith(f"{PRINTERS[0]} was chosen for another build while "
                                        f"{build.job_key} waited to be sent")
        assert ("printer_claim_lost", PRINTERS[0], build.job_key) in [
            (e["event"], e.get("printer"), e.get("build")) for e in logs]
        assert _printed(farm) == {}
        assert pool.leases == []  # stopped before it took a server
        assert store.get_build(build.id).state is JobState.WAITING_FOR_PRINTER
        # The other holder's claim stands: this build's end did not release it.
        assert store.printers_claimed(other_than="anyone else") == {PRINTERS[0]}


class TestARunsPassOverWhatEarlierRunsLeftWaiting:
    """A ``run`` sending a build an earlier run left waiting keeps its claim the same way."""

    def test_no_other_holder_claims_the_printer_while_the_build_is_being_sent(
        self, store: SqliteJobStore, clock: ManualClock, farm: SimFarm, pool: FakePool,
        rival: _Rival, tmp_path: Path,
    ) -> None:
        url = farm.servers[0].url
        build = _waiting(store, _saved_form(url, tmp_path, "left"), "left", by_run=True)
        rival.printer = PRINTERS[0]  # the one the simulator says is free with Grey resin
        said: list[str] = []
        done = send_left_waiting(store, pool, PrintOwner(store, clock=clock), wait_s=0.0,
                                 poll_interval_s=0.1, request_timeout_s=PHASE_S,
                                 say=said.append, clock=clock)

        assert [key for key, _ in done.sent] == [build.job_key], said
        assert _printed(farm) == {build.job_key: PRINTERS[0]}
        assert rival.tries == [(phase, PRINTERS[0], False)
                               for phase in ("server_wait", "load_form_file", "print")]


class _ClaimThenStall:
    """Between the pass's choice and the send, the claim runs out and another holder takes
    the printer (as an earlier, long send of the same pass would let happen)."""

    def __init__(self, claims: PrinterClaims, clock: ManualClock,
                 store: SqliteJobStore) -> None:
        self.claims, self.clock, self.store = claims, clock, store

    def wrap(self, send: Callable[[Build, str], None]) -> Callable[[Build, str], None]:
        def stalled(build: Build, printer: str) -> None:
            self.clock.advance(PRINTER_CLAIM_LEASE_S)
            assert self.store.claim_printer(printer, holder=RIVAL, build="rival",
                                            lease_s=PRINTER_CLAIM_LEASE_S)
            send(build, printer)

        return stalled

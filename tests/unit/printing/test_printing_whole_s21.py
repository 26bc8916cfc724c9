"""Session 21's whole run of ``printing/``: the survivors that were not equivalent.

A pool server's process can end between the lease and the send (a crash, an operator's kill).
The send is still recorded, with the server and its pid but no start time, and such a holder
can never be proven over: the print is left for a person, never concluded "not printed".

The fleet folder's prints feed reads an empty printer or material filter as the Web API does:
no filter at all (a survivor of ``_record`` showed the feed keeping only printer-less jobs).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import Credentials, PrintFilter, WebApiClient
from preform_pipeline.printing import (
    Evidence,
    FleetFolderFeed,
    FleetFolderLocator,
    PrintOwner,
    SendHolder,
    SendRecord,
)
from preform_pipeline.servers import PoolServer
from preform_pipeline.servers.pathmap import PathMapper
from preform_pipeline.simulator.cloud.fake import FakeWebApi, sample_print_run
from preform_pipeline.simulator.cloud.testing import write_job
from preform_pipeline.store import JobState, SqliteJobStore
from tests.unit.store.conftest import build_in_state

TIMEOUT_S = 30.0
REPORT_S = 2.0
T0 = datetime(2021, 3, 2, 9, 0, tzinfo=timezone.utc)
#: Two prints on two printers, in the fleet folder and in the Web API alike.
PRINTS = (("case A-1", "Form4-A", "FLGPGR05"), ("case B-1", "Form4-B", "FLGPBK05"))


def _ended_server() -> PoolServer:
    """A local pool server whose process really ran and was killed and reaped before the send.

    Its pid is free again; Linux hands pids out in order, so it is not reused within a test.
    """
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    child.kill()
    child.wait(timeout=10)
    return PoolServer(name="server-1", url="http://127.0.0.1:9", path_mapper=PathMapper(),
                      simulated=True, remote=False, port=9, pid=child.pid, generation=1)


class TestAServerThatEndedBeforeTheSend:
    """A send held by a server already gone has no start time and is never proven absent."""

    def test_the_holder_names_the_server_and_its_pid_without_a_start_time(self) -> None:
        server = _ended_server()
        holder = SendHolder.of_server(server, TIMEOUT_S)
        assert holder is not None
        assert (holder.server, holder.pid, holder.create_time, holder.remote) == (
            "server-1", server.pid, None, False)
        assert holder.describe() == f"server server-1 (pid {server.pid})"

    def test_the_print_is_left_for_a_person_and_never_sent_again(
        self, store: SqliteJobStore, fleet: Path, clock: ManualClock
    ) -> None:
        server = _ended_server()
        prepared = build_in_state(store, JobState.PREPARED)
        owner = PrintOwner(store, [FleetFolderLocator(fleet, report_delay_s=REPORT_S)],
                           clock=clock)
        owner.begin(prepared.id, f"crowns {prepared.job_key}", "Form4-1",
                    SendHolder.of_server(server, TIMEOUT_S))
        recorded = SendRecord.of(store.get_build(prepared.id)).holder
        assert recorded is not None
        assert (recorded.server, recorded.pid, recorded.create_time) == (
            "server-1", server.pid, None)

        clock.advance(TIMEOUT_S + REPORT_S + 1)  # long past the grace period, nothing seen
        with capture_logs() as logs:
            answer = owner.resolve(store.get_build(prepared.id))

        assert answer.evidence is Evidence.UNKNOWN and not answer.pending
        settled = store.get_build(prepared.id)
        assert settled.state is JobState.UNVERIFIED
        assert settled.reason.startswith(
            f"an interrupted send cannot be settled (server server-1 (pid {server.pid}) may "
            "still be sending it); it is not sent again: check Form4-1")
        assert f"jobs resolve {prepared.job_key} --printed" in settled.reason
        (resolved,) = [e for e in logs if e["event"] == "print_resolved"]
        assert (resolved["build_id"], resolved["evidence"], resolved["pending"]) == (
            prepared.id, "unknown", False)


@pytest.fixture
def web_api(clock: ManualClock) -> Iterator[WebApiClient]:
    """A client of the Web API's fake (the httpx transport seam) that lists ``PRINTS``."""
    api = FakeWebApi(default_per_page=100)
    api.prints = [sample_print_run(guid=name, name=name, printer=printer, material=material,
                                   created=T0 + timedelta(minutes=i))
                  for i, (name, printer, material) in enumerate(PRINTS)]
    with WebApiClient(Credentials(api.client_id, api.client_secret), base_url=api.base_url,
                      transport=api.transport(), clock=clock, sleep=clock.sleep) as client:
        yield client


@pytest.fixture
def feed(fleet: Path) -> FleetFolderFeed:
    """The fleet folder's feed of the same ``PRINTS``, as simulated servers wrote them."""
    for i, (name, printer, material) in enumerate(PRINTS):
        write_job(fleet, name=name, printer=printer, material_code=material,
                  created_at=T0 + timedelta(minutes=i), job_id=name)
    return FleetFolderFeed(fleet, clock=ManualClock(wall=T0 + timedelta(hours=1)))


class TestAnEmptyFilterValue:
    """An empty printer or material filters nothing in the fleet folder, as in the Web API."""

    @pytest.mark.parametrize("where", [PrintFilter(printer=""), PrintFilter(material=""),
                                       PrintFilter(printer="", material="")],
                             ids=["printer", "material", "both"])
    def test_every_print_is_listed_by_both(
        self, where: PrintFilter, feed: FleetFolderFeed, web_api: WebApiClient
    ) -> None:
        from_api = web_api.list_prints_page(1, where=where).items
        from_folder = feed.list_prints_page(1, where=where).items
        assert sorted(run.name for run in from_api) == ["case A-1", "case B-1"]
        assert sorted(run.name for run in from_folder) == ["case A-1", "case B-1"]

    def test_a_printer_named_still_narrows_both_alike(
        self, feed: FleetFolderFeed, web_api: WebApiClient
    ) -> None:
        where = PrintFilter(printer="Form4-B", material="")
        assert [run.name for run in web_api.list_prints_page(1, where=where).items] == [
            "case B-1"]
        assert [run.name for run in feed.list_prints_page(1, where=where).items] == [
            "case B-1"]

"""The Web API client against a real ``python -m preform_pipeline.simulator.cloud`` subprocess.

Also the one end-to-end proof that the fleet directory is shared: a scene printed through the
Local API client on a real PreFormServer simulator shows up in the Dashboard's prints feed and
finishes there.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from preform_pipeline.api import ImportOptions, PreFormClient, PrintOptions
from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import Credentials, PrintRun, WebApiClient
from preform_pipeline.errors import CloudAuthError, CloudRateLimitError, PortInUseError
from preform_pipeline.simulator.cloud.testing import (
    RunningDashboard,
    launch_dashboard,
    start_dashboard,
    write_job,
)
from preform_pipeline.simulator.fleet import DEFAULT_GROUPS, DEFAULT_PRINTERS, FleetState
from preform_pipeline.simulator.testing import start_simulator

#: Upper bound of every wait below; reached only when something is broken.
WAIT_S = 15.0
#: Between polls of a condition that changes on the server's own clock.
POLL_S = 0.05


@pytest.fixture(scope="module")
def sent_at() -> datetime:
    """When the feed's recent jobs were sent."""
    return datetime.now(timezone.utc)


@pytest.fixture(scope="module")
def feed_fleet(tmp_path_factory: pytest.TempPathFactory, sent_at: datetime) -> Path:
    """Five finished prints from an hour ago and two still printing, on three printers.

    Each of the six printers also shows its past print: one finished before the oldest job.
    """
    fleet = tmp_path_factory.mktemp("dashboard-feed") / "fleet"
    # The six Simulated* printers and their one group (the default fleet holds more).
    FleetState(fleet).declare(
        tuple(p for p in DEFAULT_PRINTERS if p.serial.startswith("Simulated")),
        (DEFAULT_GROUPS[0],),
    )
    hour_ago = sent_at - timedelta(hours=1)
    for index in range(5):
        write_job(
            fleet, name=f"batch-7/job-{index}", printer="SimulatedForm4-2",
            created_at=hour_ago + timedelta(seconds=index), estimated_print_time_s=60,
        )
    write_job(fleet, name="batch-8/job-0", created_at=sent_at, estimated_print_time_s=36_000)
    write_job(
        fleet, name="batch-8/job-1", printer="SimulatedForm3-1", machine_type="FORM-3-1",
        material_code="FLGPGR04", created_at=sent_at, estimated_print_time_s=36_000,
    )
    return fleet


@pytest.fixture(scope="module")
def dashboard(feed_fleet: Path) -> Iterator[RunningDashboard]:
    with start_dashboard(fleet_dir=feed_fleet) as running:
        yield running


@pytest.fixture
def cloud(dashboard: RunningDashboard) -> Iterator[WebApiClient]:
    with dashboard.client() as client:
        yield client


class TestFeed:
    """Token, printers and the prints feed, filtered and paged, over real HTTP."""

    def test_a_token_opens_the_printer_list(
        self, dashboard: RunningDashboard, cloud: WebApiClient
    ) -> None:
        printers = {p.serial: p for p in cloud.list_printers()}

        assert len(printers) == 6
        assert printers["SimulatedForm4-1"].status == "PRINTING"
        assert printers["SimulatedForm4-2"].status == "IDLE"
        assert printers["SimulatedForm4-2"].ready_to_print == "READY_TO_PRINT_READY"
        assert printers["SimulatedForm4-1"].current_print is not None
        assert cloud.get_printer("SimulatedForm3-1").machine_type_id == "FORM-3-1"
        assert cloud.auth.tokens_fetched == 1

    def test_the_feed_filters_and_pages(self, cloud: WebApiClient, sent_at: datetime) -> None:
        batch = list(cloud.iter_prints(name="batch-7/", per_page=2))
        page = cloud.list_prints_page(2, 2, name="batch-7/")
        finished = list(cloud.iter_prints(status="FINISHED"))
        form3 = list(cloud.iter_prints(machine_type_id=["FORM-3-1"]))
        recent = list(cloud.iter_prints(date__gt=sent_at - timedelta(minutes=1)))
        on_printer = list(cloud.iter_printer_prints("SimulatedForm4-2", per_page=3))

        batch_names = [f"batch-7/job-{i}" for i in reversed(range(5))]
        past = {r.printer: r for r in finished if not r.name.startswith("batch-")}
        assert [r.name for r in batch] == batch_names
        assert all(r.status == "FINISHED" and r.print_finished_at is not None for r in batch)
        assert (page.count, page.previous_page, page.next_page, len(page.items)) == (5, 1, 3, 2)
        # The five of batch 7, then each printer's one past print, sent before all of them.
        assert [r.name for r in finished[:5]] == batch_names
        assert sorted(past) == sorted(
            p.serial for p in DEFAULT_PRINTERS if p.serial.startswith("Simulated")
        )
        assert len(finished) == 5 + len(past)
        assert all(r.created_at and r.created_at < sent_at - timedelta(hours=1)
                   for r in past.values())
        assert [(r.name, r.material) for r in form3] == [
            ("batch-8/job-1", "FLGPGR04"),
            (past["SimulatedForm3-1"].name, "FLGPGR04"),
        ]
        assert {r.name for r in recent} == {"batch-8/job-0", "batch-8/job-1"}
        assert all(r.status in ("PREPRINT", "PRINTING") for r in recent)
        assert [r.name for r in on_printer] == [*batch_names, past["SimulatedForm4-2"].name]

    def test_the_other_lists_answer_too(self, cloud: WebApiClient) -> None:
        events = list(cloud.iter_events(type="PRINT_FINISHED"))
        groups = cloud.list_groups()

        assert len(events) == 5 + 6  # batch 7 and the six printers' past prints
        assert len(list(cloud.iter_tanks())) == 5
        assert len(list(cloud.iter_cartridges())) == 5
        assert [g.name for g in groups] == ["SimulatedGroup-Form4", "Simulated printers"]
        assert cloud.list_group_queue(groups[0].id) == ()

    def test_wrong_credentials_are_an_auth_error(self, dashboard: RunningDashboard) -> None:
        wrong = Credentials(dashboard.credentials.client_id, "not-the-secret")
        with WebApiClient(wrong, base_url=dashboard.url) as client, pytest.raises(
            CloudAuthError
        ) as caught:
            client.list_printers()

        assert caught.value.status_code == 400
        assert "not-the-secret" not in str(caught.value)


class TestLimits:
    """The documented limits, made small, answer 429 with Retry-After."""

    def test_past_the_per_second_limit_the_client_waits_and_succeeds(self) -> None:
        with start_dashboard("--per-second-limit", "2") as dash, dash.client() as client:
            started = time.monotonic()
            printers = [client.list_printers() for _ in range(3)]
            took = time.monotonic() - started

        assert all(len(p) == len(DEFAULT_PRINTERS) for p in printers)
        assert took >= 1.0  # the server's Retry-After: 1 was waited out
        assert any("status=429" in line for line in dash.stderr_lines)

    def test_past_the_hourly_limit_the_client_says_when_to_retry(self) -> None:
        with start_dashboard("--hourly-limit", "3") as dash, dash.client(
            wait_for_budget=False
        ) as client:
            client.list_printers()
            client.list_groups()
            with pytest.raises(CloudRateLimitError) as caught:
                client.list_groups()

        assert caught.value.status_code == 429
        assert caught.value.retry_after_s is not None
        assert 3000 < caught.value.retry_after_s <= 3600


class TestTokenExpiry:
    """A token the server expires mid-run is replaced by the client without failing a call."""

    def test_the_client_refreshes_after_the_server_expired_its_token(self) -> None:
        frozen = ManualClock()  # the client never thinks its token is old: the server decides
        with start_dashboard("--token-lifetime", "1") as dash, dash.client(
            clock=frozen, sleep=frozen.sleep
        ) as client:
            client.list_printers()
            token = client.auth.token
            assert token is not None
            headers = {"Authorization": f"Bearer {token.value}"}
            deadline = time.monotonic() + WAIT_S
            pause = threading.Event()  # never set: a paced poll of the server's answer
            while httpx.get(dash.url + "/developer/v1/groups/", headers=headers).status_code != 401:
                assert time.monotonic() < deadline, "the server never expired the token"
                pause.wait(POLL_S)
            printers = client.list_printers()

        assert len(printers) == len(DEFAULT_PRINTERS)
        assert client.auth.tokens_fetched == 2
        assert any("dashboard_token_expired" in line for line in dash.stderr_lines)


class TestStartUp:
    """The process starts like the PreFormServer simulator and refuses a taken port."""

    def test_it_prints_the_handshake(self, dashboard: RunningDashboard) -> None:
        lines = dashboard.stdout_lines

        assert lines[-1] == "READY FOR INPUT"
        assert f"Fleet directory: {dashboard.fleet_dir.resolve()}" in lines
        assert f"Client id: {dashboard.credentials.client_id}" in lines

    def test_a_taken_port_is_reported(self) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            dash = launch_dashboard(port=port)
            try:
                with pytest.raises(PortInUseError):
                    dash.wait_ready(WAIT_S)
                assert dash.wait_exit(WAIT_S) == 1
            finally:
                dash.stop()


class TestSharedFleet:
    """A job printed through the PreFormServer simulator becomes a Dashboard print run."""

    def test_a_printed_scene_runs_and_finishes_in_the_feed(
        self, tmp_path: Path, sample_models_dir: Path
    ) -> None:
        fleet = tmp_path / "fleet"
        key = uuid.uuid4().hex[:12]
        job_name = f"crowns [job {key}]"
        with start_simulator(fleet_dir=fleet) as sim, start_dashboard(
            "--time-scale", "0.0001", fleet_dir=fleet
        ) as dash, PreFormClient(sim.url, timeout=30.0) as local, dash.client() as cloud:
            settings = local.list_materials().scene_settings_for("FORM-4-0", "FLGPGR05")[0]
            scene = local.create_scene(settings)
            assert scene.id is not None
            local.import_model(
                scene.id,
                (sample_models_dir / "parts" / "cylinder_ascii.stl").resolve(),
                ImportOptions(name="cylinder"),
            )
            job_id = local.print_scene(scene.id, PrintOptions("SimulatedForm4-1", job_name)).job_id
            first = self.only_run(cloud, key)
            final = first
            deadline = time.monotonic() + WAIT_S
            while not final.is_terminal:
                assert time.monotonic() < deadline, f"still {final.status} after {WAIT_S} s"
                final = self.only_run(cloud, key)
            events = {e.type for e in cloud.iter_events(print_run=final.guid)}

        job = json.loads((fleet / "jobs" / f"{job_id}.json").read_text(encoding="utf-8"))
        assert first.status in ("PREPRINT", "PRINTING", "FINISHED")
        assert final.status == "FINISHED"
        assert final.name == job_name
        assert final.guid == final.print_job == job_id
        assert final.printer == "SimulatedForm4-1"
        assert final.material == "FLGPGR05"
        assert final.layer_count == job["layer_count"] > 0
        assert final.volume_ml == pytest.approx(job["volume_ml"])
        assert [p.name for p in final.parts] == ["cylinder"]
        assert events == {"PRINT_STARTED", "PRINT_FINISHED"}

    @staticmethod
    def only_run(cloud: WebApiClient, key: str) -> PrintRun:
        runs = list(cloud.iter_prints(name=key))
        assert len(runs) == 1, f"expected one run for {key}, got {[r.name for r in runs]}"
        return runs[0]

"""Fleet Control login and the declared simulated fleet, through a real pool of simulators."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import MappingProxyType

import psutil
import pytest
from structlog.testing import capture_logs

from preform_pipeline.api import PreFormClient, PrintOptions, SceneSettings
from preform_pipeline.cloud import Credentials
from preform_pipeline.cloud.factory import make_web_client
from preform_pipeline.cloud.login import ENV_DASHBOARD_PASSWORD, ENV_DASHBOARD_USERNAME
from preform_pipeline.errors import ApiError, ConfigError
from preform_pipeline.geometry import write_stl
from preform_pipeline.servers import ServerPool, ServerState
from preform_pipeline.settings import (
    CloudSettings,
    ServerSettings,
    Settings,
    SimulatedPrinterSettings,
)
from preform_pipeline.simulator.cloud.testing import TEST_CLIENT_ID, dashboard_server
from preform_pipeline.simulator.fleet import DEFAULT_GROUPS, DEFAULT_PRINTERS
from preform_pipeline.simulator.meshops import box_triangles

WAIT_S = 20.0
PASSWORD = "correct-horse-battery-staple"
LOGIN_ENV = {ENV_DASHBOARD_USERNAME: "lab@example.com", ENV_DASHBOARD_PASSWORD: PASSWORD}
QUEUE = DEFAULT_GROUPS[0].queue_id


def _settings(**fields: object) -> Settings:
    servers = ServerSettings(
        count=1, base_port=0, startup_timeout_s=WAIT_S, stop_timeout_s=2.0,
        health_interval_s=0.0, recycle_after_builds=0, max_restarts=2,
        restart_backoff_s=0.05, restart_backoff_max_s=0.2,
    )
    return Settings(servers=servers, **fields)  # type: ignore[arg-type]


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "cube.stl"
    write_stl(path, box_triangles((0, 0, 0), (10, 10, 10)))
    return path


@pytest.fixture
def start_pool(tmp_path: Path) -> Iterator[Callable[..., ServerPool]]:
    """Starts pools whose simulators keep their fleet in this test's folder; closes them."""
    pools: list[ServerPool] = []

    def start(settings: Settings, env: dict[str, str]) -> ServerPool:
        pool = ServerPool(
            settings.pool, env=env, simulator_args=("--fleet-dir", str(tmp_path / "fleet"))
        )
        pools.append(pool)
        pool.start()
        return pool

    yield start
    for pool in pools:
        pool.close()


def _print(url: str, model: Path, target: str, job_name: str = "j") -> str:
    with PreFormClient(url) as client:
        scene = client.create_scene(
            SceneSettings("FORM-4-0", "FLGPGR05", 0.1, print_setting="DEFAULT")
        )
        client.import_model(scene.id, model)
        return client.print_scene(scene.id, PrintOptions(printer=target, job_name=job_name)).job_id


class TestFleetControlLogin:
    """The pool logs every server in to the Dashboard, so queue prints are accepted."""

    def test_a_queue_print_is_refused_until_the_pool_logs_the_server_in(
        self, start_pool: Callable[..., ServerPool], model: Path
    ) -> None:
        anonymous = start_pool(_settings(), {})
        with anonymous.lease(timeout=10) as lease, pytest.raises(ApiError) as refused:
            _print(lease.server.url, model, QUEUE)
        assert refused.value.code == "NOT_LOGGED_IN"
        with capture_logs() as logs:
            logged_in = start_pool(_settings(), LOGIN_ENV)
        with logged_in.lease(timeout=10) as lease:
            assert _print(lease.server.url, model, QUEUE)
        assert [e["server"] for e in logs if e["event"] == "server_logged_in"] == ["server-1"]
        assert PASSWORD not in json.dumps(logs, default=str)

    def test_a_restarted_server_is_logged_in_again(
        self, start_pool: Callable[..., ServerPool], model: Path
    ) -> None:
        pool = start_pool(_settings(), LOGIN_ENV)
        (before,) = pool.status()
        assert before.pid is not None
        with capture_logs() as logs:
            psutil.Process(before.pid).kill()
            pool.wait_for(
                lambda s: s[0].state is ServerState.IDLE and s[0].generation == 2, WAIT_S
            )
        assert [e["event"] for e in logs if e["event"] == "server_logged_in"] == [
            "server_logged_in"
        ]
        with pool.lease(timeout=10) as lease:
            with PreFormClient(lease.server.url) as client:
                user = client.get_user()
            assert user is not None
            assert _print(lease.server.url, model, QUEUE)

    def test_a_password_without_a_username_fails_before_any_server_starts(self) -> None:
        with pytest.raises(ConfigError, match="username"):
            ServerPool(_settings().pool, env={ENV_DASHBOARD_PASSWORD: PASSWORD})

    def test_a_password_file_named_in_the_settings_is_read(
        self, start_pool: Callable[..., ServerPool], model: Path, tmp_path: Path
    ) -> None:
        (tmp_path / "password").write_text(PASSWORD + "\n", encoding="utf-8")
        login = MappingProxyType({"username": "lab", "password_file": "password"})
        pool = start_pool(_settings(dashboard_login=login, dashboard_login_base=tmp_path), {})
        with pool.lease(timeout=10) as lease:
            assert _print(lease.server.url, model, QUEUE)


class TestDeclaredFleet:
    """Simulated servers print to the declared fleet only; other names are refused."""

    def test_the_servers_have_exactly_the_declared_printers(
        self, start_pool: Callable[..., ServerPool], model: Path, tmp_path: Path
    ) -> None:
        fleet = (
            SimulatedPrinterSettings("Bench-A", "FORM-4-0", "FLGPGR05", tank="T-1"),
            SimulatedPrinterSettings("Bench-B", "FORM-4-0", "FLGPGR05"),
        )
        pool = start_pool(_settings(simulated_fleet=fleet), {})
        with pool.lease(timeout=10) as lease:
            assert _print(lease.server.url, model, "Bench-B")
            with pytest.raises(ApiError) as refused:
                _print(lease.server.url, model, "Bench-C")
        assert refused.value.code == "PRINTER_NOT_FOUND"
        assert "did you mean 'Bench-" in str(refused.value)
        stored = json.loads((tmp_path / "fleet" / "printers.json").read_text(encoding="utf-8"))
        assert [(p["serial"], p["tank_id"]) for p in stored["printers"]] == [
            ("Bench-A", "T-1"), ("Bench-B", "")
        ]

    def test_the_dashboard_shows_the_declared_printers_once_the_servers_are_ready(
        self, start_pool: Callable[..., ServerPool], tmp_path: Path
    ) -> None:
        """A Dashboard simulator on the same (still empty) fleet folder, asked before any
        Local API request, shows the declared printers: a run choosing by the Web API's
        printer status never picks a default printer the servers then refuse."""
        fleet = (SimulatedPrinterSettings("Bench-A", "FORM-4-0", "FLGPGR05"),)
        credentials = Credentials(TEST_CLIENT_ID, "declared-fleet-secret")
        with dashboard_server(tmp_path / "fleet", credentials=credentials) as dashboard:
            pool = start_pool(_settings(simulated_fleet=fleet), {})
            # Started and READY FOR INPUT; nothing asked of them yet.
            assert [s.state for s in pool.status()] == [ServerState.IDLE]
            client = make_web_client(CloudSettings(base_url=dashboard.url), credentials)
            try:
                assert [p.serial for p in client.list_printers()] == ["Bench-A"]
            finally:
                client.close()
            dashboard.check()

    def test_a_default_run_after_a_rehearsal_prints_to_the_default_fleet(
        self, start_pool: Callable[..., ServerPool], model: Path, tmp_path: Path
    ) -> None:
        """A rehearsal's declared printers do not outlive it: the next pool without a declared
        fleet prints to the default fleet's Form4-CapableClam (the README's recipe), and the
        Dashboard simulator on the shared folder sees the default printers (from the servers'
        READY on, before any request) and both prints."""
        fleet = (SimulatedPrinterSettings("Bench-A", "FORM-4-0", "FLGPGR05"),)
        rehearsal = start_pool(_settings(simulated_fleet=fleet), {})
        with rehearsal.lease(timeout=10) as lease:
            _print(lease.server.url, model, "Bench-A", job_name="rehearsed")
        rehearsal.close()
        credentials = Credentials(TEST_CLIENT_ID, "default-after-rehearsal-secret")
        with dashboard_server(
            tmp_path / "fleet", credentials=credentials, print_history=False
        ) as dashboard:
            client = make_web_client(CloudSettings(base_url=dashboard.url), credentials)
            try:
                default = start_pool(_settings(), {})
                printers = [p.serial for p in client.list_printers()]
                with default.lease(timeout=10) as lease:
                    _print(lease.server.url, model, "Form4-CapableClam", job_name="default-run")
                prints = {(r.name, r.printer) for r in client.iter_prints()}
            finally:
                client.close()
            dashboard.check()
        assert printers == [p.serial for p in DEFAULT_PRINTERS]
        assert {("rehearsed", "Bench-A"), ("default-run", "Form4-CapableClam")} <= prints

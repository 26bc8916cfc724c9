"""Test helpers for the Dashboard simulator, shipped in the package like the simulator's own.

:func:`start_dashboard` runs ``python -m preform_pipeline.simulator.cloud`` as a real
subprocess and yields a :class:`RunningDashboard` once it printed ``READY FOR INPUT``; it knows
the application's credentials and makes Web API clients for it. Share a fleet directory with
:func:`~preform_pipeline.simulator.testing.start_simulator` to see printed jobs as print runs::

    with start_simulator(fleet_dir=fleet) as sim, start_dashboard(
        "--time-scale", "0.001", fleet_dir=fleet
    ) as dash, dash.client() as cloud:
        ...  # print through PreFormClient(sim.url), then
        runs = list(cloud.iter_prints(name=job_key))

:func:`dashboard_server` is the same server in-process, on a clock the test controls, and
:func:`write_job` puts a job file into a fleet directory without printing a scene.

:class:`FakeWebApi` (from :mod:`.fake`) is a lighter fake still: the Web API in-process behind
``httpx.MockTransport``, filled with ``sample_*`` records, for unit tests of the client.
"""

from __future__ import annotations

import secrets
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.cloud import Credentials, WebApiClient
from preform_pipeline.simulator.fleet import FleetState
from preform_pipeline.simulator.testing import (
    DEFAULT_START_TIMEOUT_S,
    DEFAULT_STOP_TIMEOUT_S,
    RunningSimulator,
    launch_module,
)

from .auth import DEFAULT_TOKEN_LIFETIME_S, TokenStore
from .cli import ENV_SIM_CLIENT_ID, ENV_SIM_CLIENT_SECRET
from .fake import (
    DEFAULT_FAKE_BASE_URL,
    DEFAULT_FAKE_PER_PAGE,
    FakeWebApi,
    ScriptedAnswer,
    sample_cartridge,
    sample_event,
    sample_group,
    sample_print_run,
    sample_printer,
    sample_queue_item,
    sample_tank,
)
from .fleet_view import DEFAULT_TIME_SCALE, FleetView, OutcomeSource
from .limits import DEFAULT_HOURLY_LIMIT, DEFAULT_PER_SECOND_LIMIT, RateLimits
from .outcomes import OutcomePlan
from .records import iso
from .server import DashboardServer

__all__ = [
    "DASHBOARD_MODULE",
    "DEFAULT_FAKE_BASE_URL",
    "DEFAULT_FAKE_PER_PAGE",
    "TEST_CLIENT_ID",
    "FakeWebApi",
    "RunningDashboard",
    "ScriptedAnswer",
    "dashboard_server",
    "launch_dashboard",
    "sample_cartridge",
    "sample_event",
    "sample_group",
    "sample_print_run",
    "sample_printer",
    "sample_queue_item",
    "sample_tank",
    "start_dashboard",
    "write_job",
]

DASHBOARD_MODULE: Final = "preform_pipeline.simulator.cloud"
#: Client id the helpers give a test dashboard unless told otherwise (the secret is random).
TEST_CLIENT_ID: Final = "test-dashboard-client"


class RunningDashboard:
    """A Dashboard simulator subprocess, its credentials and its fleet directory."""

    def __init__(self, handle: RunningSimulator, credentials: Credentials, fleet_dir: Path):
        #: The process and its output (the simulator's helper: waiting, stopping, lines).
        self.handle = handle
        self.credentials = credentials
        self.fleet_dir = fleet_dir

    @property
    def process(self) -> Any:
        return self.handle.process

    @property
    def pid(self) -> int:
        return self.handle.pid

    @property
    def port(self) -> int | None:
        return self.handle.port

    @property
    def url(self) -> str:
        """The base URL for a Web API client (``WebApiClient(base_url=...)``)."""
        return self.handle.url

    @property
    def stdout_lines(self) -> list[str]:
        return self.handle.stdout_lines

    @property
    def stderr_lines(self) -> list[str]:
        return self.handle.stderr_lines

    def output_tail(self, lines: int = 20) -> str:
        return self.handle.output_tail(lines)

    def wait_for_line(self, wanted: str | Callable[[str], bool], timeout: float) -> str:
        return self.handle.wait_for_line(wanted, timeout)

    def wait_ready(self, timeout: float = DEFAULT_START_TIMEOUT_S) -> RunningDashboard:
        self.handle.wait_ready(timeout)
        return self

    def wait_exit(self, timeout: float) -> int | None:
        return self.handle.wait_exit(timeout)

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT_S) -> int:
        return self.handle.stop(timeout)

    def kill(self) -> None:
        self.handle.kill()

    def client(self, **options: Any) -> WebApiClient:
        """A Web API client with this dashboard's credentials (``WebApiClient`` options)."""
        return WebApiClient(self.credentials, base_url=self.url, **options)

    def __enter__(self) -> RunningDashboard:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _flag_value(arguments: Sequence[str], flag: str) -> str | None:
    for index, argument in enumerate(arguments):
        if argument == flag and index + 1 < len(arguments):
            return arguments[index + 1]
        if argument.startswith(flag + "="):
            return argument.partition("=")[2]
    return None


def launch_dashboard(
    *args: str,
    port: int = 0,
    python: str | None = None,
    fleet_dir: Path | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> RunningDashboard:
    """Start ``python -m preform_pipeline.simulator.cloud ARGS`` without waiting for it.

    ``--port`` is added unless ``args`` name one; ``--fleet-dir`` is ``fleet_dir`` or a fresh
    temporary directory (removed when stopped). Unless ``args`` name ``--client-id`` /
    ``--client-secret-file``, the credentials go through the environment: ``client_id``
    (default :data:`TEST_CLIENT_ID`) and ``client_secret`` (default: random).
    """
    arguments = list(args)
    cleanup: list[Path] = []
    if _flag_value(arguments, "--port") is None:
        arguments += ["--port", str(port)]
    named_fleet = _flag_value(arguments, "--fleet-dir")
    if named_fleet is not None:
        fleet = Path(named_fleet)
    else:
        if fleet_dir is None:
            base = Path(tempfile.mkdtemp(prefix="preform-dashboard-test-"))
            cleanup.append(base)
            fleet_dir = base / "fleet"
        fleet = fleet_dir
        arguments += ["--fleet-dir", str(fleet)]
    environment = dict(env or {})
    named_id = _flag_value(arguments, "--client-id")
    named_secret = _flag_value(arguments, "--client-secret-file")
    identity = named_id or client_id or TEST_CLIENT_ID
    if named_secret is not None:
        secret = Path(named_secret).read_text(encoding="utf-8").removesuffix("\n")
    else:
        secret = client_secret or secrets.token_urlsafe(24)
        environment[ENV_SIM_CLIENT_SECRET] = secret
    if named_id is None:
        environment[ENV_SIM_CLIENT_ID] = identity
    handle = launch_module(
        DASHBOARD_MODULE, arguments, python=python, env=environment, cwd=cwd, cleanup=cleanup
    )
    return RunningDashboard(handle, Credentials(identity, secret), fleet)


@contextmanager
def start_dashboard(
    *args: str, timeout: float = DEFAULT_START_TIMEOUT_S, **options: Any
) -> Iterator[RunningDashboard]:
    """A Dashboard simulator that printed READY FOR INPUT; stopped (and cleaned up) on leaving.

    ``options`` are those of :func:`launch_dashboard`; start-up failures raise the
    simulator's errors (:class:`~preform_pipeline.errors.PortInUseError`, ...).
    """
    dashboard = launch_dashboard(*args, **options)
    try:
        dashboard.wait_ready(timeout)
        yield dashboard
    finally:
        dashboard.stop()


@contextmanager
def dashboard_server(
    fleet_dir: Path,
    *,
    clock: Clock = SYSTEM_CLOCK,
    started_at: datetime | None = None,
    time_scale: float = DEFAULT_TIME_SCALE,
    outcomes: OutcomePlan | OutcomeSource | None = None,
    credentials: Credentials | None = None,
    token_lifetime_s: float = DEFAULT_TOKEN_LIFETIME_S,
    hourly_limit: int = DEFAULT_HOURLY_LIMIT,
    per_second_limit: int = DEFAULT_PER_SECOND_LIMIT,
    print_history: bool = True,
    **server_options: Any,
) -> Iterator[DashboardServer]:
    """The Dashboard simulator in-process on port 0, every clock read from ``clock``.

    With a :class:`~preform_pipeline.clock.ManualClock` a test moves prints, token
    expiry and rate-limit windows forward by advancing it. ``credentials`` default to
    :data:`TEST_CLIENT_ID` and a fixed test secret. ``print_history=False`` starts with
    printers that never printed (:mod:`.history`).
    """
    application = credentials or Credentials(TEST_CLIENT_ID, "test-dashboard-secret")
    view = FleetView(
        fleet_dir,
        started_at=started_at or clock.now(),
        time_scale=time_scale,
        outcomes=outcomes,
        print_history=print_history,
    )
    tokens = TokenStore(
        application.client_id,
        application.client_secret,
        lifetime_s=token_lifetime_s,
        clock=clock.monotonic,
    )
    limits = RateLimits(per_second=per_second_limit, hourly=hourly_limit, clock=clock.monotonic)
    server = DashboardServer(view, tokens, limits=limits, clock=clock, **server_options)
    with server:
        yield server


def write_job(
    fleet_dir: Path,
    *,
    name: str,
    printer: str = "SimulatedForm4-1",
    created_at: datetime | None = None,
    job_id: str | None = None,
    target_kind: str = "printer",
    machine_type: str = "FORM-4-0",
    material_code: str = "FLGPGR05",
    layer_thickness_mm: float | str = 0.1,
    layer_count: int = 100,
    volume_ml: float = 10.0,
    estimated_print_time_s: float = 1000.0,
    models: Sequence[tuple[str, str]] = (("model-1", "part"),),
) -> str:
    """Write a job file as the PreFormServer simulator does when it prints; its job id.

    For tests that need print runs without preparing a scene. ``printer`` is a serial, or a
    group id with ``target_kind="group"``.
    """
    job = job_id or str(uuid.uuid4())
    created = created_at or datetime.now(timezone.utc)
    FleetState(fleet_dir).record_job(
        {
            "job_id": job,
            "job_name": name,
            "printer": printer,
            "target_kind": target_kind,
            "print_now": True,
            "status": "PRINTING" if target_kind == "printer" else "QUEUED",
            "scene_id": f"scene-{job[:8]}",
            "scene_settings": {
                "machine_type": machine_type,
                "material_code": material_code,
                "print_setting": "DEFAULT",
                "layer_thickness_mm": layer_thickness_mm,
            },
            "layer_count": layer_count,
            "volume_ml": volume_ml,
            "estimated_print_time_s": estimated_print_time_s,
            "material_usage": {"volume_ml": volume_ml},
            "models": [
                {"id": model_id, "name": model_name, "raw_mesh_hash": None}
                for model_id, model_name in models
            ],
            "scene_hash": "0" * 64,
            "created_at": iso(created),
        }
    )
    return job

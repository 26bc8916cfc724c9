"""A build of a printer list or ``auto`` with no free printer: it waits (run), is handed to
dispatch (watch), or is held for approval; what the store and the user see each time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs
from verify_support import prepared_build

from preform_pipeline.api import PreFormClient
from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import WebApiClient
from preform_pipeline.errors import PipelineError, PrinterSelectionError
from preform_pipeline.executor.hooks import PRINT_HELD, PRINT_WAITING
from preform_pipeline.recipes import Recipe
from preform_pipeline.recipes.model import SceneSpec
from preform_pipeline.simulator.cloud.testing import FakeWebApi, sample_printer
from preform_pipeline.simulator.devices import printer_status
from preform_pipeline.simulator.fleet import DEFAULT_PRINTERS
from preform_pipeline.store import JobState, SqliteJobStore
from preform_pipeline.verify import PrintTracking
from preform_pipeline.verify.tracking import BuildTracker
from tests.unit.recipes.recipe_cases import SLA_RECIPE, validate_text

LOCAL: Any = None  # the Local API is not asked when the Web API is configured


class _Plan:
    """The part of a BuildPlan the tracking reads."""

    def __init__(self, name: str) -> None:
        self.name = name


class _Clock(ManualClock):
    """A manual clock that runs ``on_sleep`` after each sleep (printers change meanwhile)."""

    def __init__(self) -> None:
        super().__init__()
        self.on_sleep: Callable[[int], None] = lambda count: None

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        self.on_sleep(len(self.sleeps))


def _printers(fake_api: FakeWebApi, *free: str, busy: tuple[str, ...] = (),
              machine: str = "FORM-4-0", tank: str = "FLGPGR05") -> None:
    records = []
    for serial in (*free, *busy):
        record = sample_printer(serial=serial)
        record["machine_type_id"] = machine
        record["tank_status"]["tank"]["material"] = tank
        if serial in free:
            record["printer_status"]["current_print_run"] = None
        else:
            record["printer_status"]["current_print_run"]["status"] = "PRINTING"
        records.append(record)
    fake_api.printers = records


def _recipe(tmp_path: Path, print_step: str, before: str = "  - save_form\n") -> Recipe:
    report = validate_text(tmp_path, SLA_RECIPE + before + print_step)
    assert report.recipe is not None, [str(p) for p in report.problems]
    return report.recipe



def _tracker(tracking: PrintTracking, name: str = "b-1") -> BuildTracker:
    return tracking.for_build(_Plan(name))  # type: ignore[arg-type]


@pytest.fixture
def wait_clock() -> _Clock:
    return _Clock()


@pytest.fixture
def web(client: WebApiClient) -> WebApiClient:
    """The Web API on its own clock: only the tracking sleeps on ``wait_clock``."""
    return client


@pytest.fixture
def wait_store(tmp_path: Path, wait_clock: _Clock) -> Any:
    with SqliteJobStore(tmp_path / "jobs.sqlite3", clock=wait_clock) as opened:
        yield opened


LIST = "  - print: {printer: 'Form4-A, Form4-B'}\n"


class TestRunWaitsForAFreePrinter:
    """``run`` reads readiness every interval until a printer of the list is free."""

    def test_the_first_printer_freed_meanwhile_is_chosen(
        self, tmp_path: Path, fake_api: FakeWebApi, web: WebApiClient, wait_clock: _Clock,
        wait_store: SqliteJobStore,
    ) -> None:
        # Form4-C is free all along, but not one of the list.
        _printers(fake_api, "Form4-C", busy=("Form4-A", "Form4-B"))
        wait_clock.on_sleep = lambda n: _printers(
            fake_api, "Form4-C", "Form4-B", busy=("Form4-A",)) if n == 2 else None
        told: list[str] = []
        tracking = PrintTracking(client=web, store=wait_store, clock=wait_clock,
                                 build_ids={"b-1": prepared_build(wait_store)}, wait_s=300.0,
                                 wait_interval_s=30.0, on_waiting=told.append)
        with capture_logs() as logs:
            chosen = _tracker(tracking).resolve_printer("Form4-A, Form4-B",
                                                        _recipe(tmp_path, LIST), LOCAL)
        assert chosen == "Form4-B"
        assert wait_clock.slept == 60.0
        assert told == ["b-1: no free printer; waiting up to 5 min for Form4-A or Form4-B"]
        key = tracking.for_build(_Plan("b-1")).job_key
        assert [{k: v for k, v in e.items() if k not in ("log_level", "timestamp")}
                for e in logs if e["event"].startswith("printer_wait")] == [
            {"event": "printer_wait_started", "job_key": key, "target": "Form4-A or Form4-B",
             "wait_s": 300.0},
            {"event": "printer_wait_ended", "job_key": key, "printer": "Form4-B"},
        ]

    def test_after_the_bound_the_build_waits_in_the_store(
        self, tmp_path: Path, fake_api: FakeWebApi, web: WebApiClient, wait_clock: _Clock,
        wait_store: SqliteJobStore,
    ) -> None:
        _printers(fake_api, busy=("Form4-A", "Form4-B"))
        build_id = prepared_build(wait_store, priority=3)
        key = wait_store.get_build(build_id).job_key
        told: list[str] = []
        tracking = PrintTracking(client=web, store=wait_store, clock=wait_clock,
                                 build_ids={"b-1": build_id}, wait_s=100.0,
                                 wait_interval_s=30.0, on_waiting=told.append)
        tracker = _tracker(tracking)
        with capture_logs() as logs:
            chosen = tracker.resolve_printer("Form4-A, Form4-B", _recipe(tmp_path, LIST), LOCAL)
        assert chosen == "Form4-A, Form4-B"
        assert wait_clock.slept == 100.0  # 30 + 30 + 30 + the last 10 up to the bound
        assert told[-1] == (
            f"b-1: still no free printer after 2 min; its saved .form waits in the job store "
            f"({key}) and the next run or watch sends it")
        [passed] = [e for e in logs if e["event"] == "printer_wait_bound_passed"]
        assert (passed["log_level"], passed["job_key"], passed["target"], passed["wait_s"]) == (
            "warning", key, "Form4-A or Form4-B", 100.0)
        form = tmp_path / "b-1.form"
        result = tracker.before_send(tracker.job_name("b-1"), chosen, form_path=form)
        assert result == PRINT_WAITING
        build = wait_store.get_build(build_id)
        assert build.state is JobState.WAITING_FOR_PRINTER
        assert (build.form_path, build.priority, build.job_name) == (
            form, 3, tracker.job_name("b-1"))
        assert build.print_target == {"names": ["Form4-A", "Form4-B"], "auto": False,
                                      "machine_type": "FORM-4-0", "material": "FLGPGR05"}
        assert wait_store.build_history(build_id)[-1].reason == (
            "waiting for a free printer: Form4-A or Form4-B")

    def test_a_bound_under_a_second_is_waited_out_exactly(
        self, tmp_path: Path, fake_api: FakeWebApi, web: WebApiClient, wait_clock: _Clock,
        wait_store: SqliteJobStore,
    ) -> None:
        _printers(fake_api, busy=("Form4-A",))
        told: list[str] = []
        tracking = PrintTracking(client=web, store=wait_store, clock=wait_clock,
                                 build_ids={"b-1": prepared_build(wait_store)}, wait_s=0.5,
                                 wait_interval_s=30.0, on_waiting=told.append)
        recipe = _recipe(tmp_path, "  - print: {printer: auto}\n")
        assert _tracker(tracking).resolve_printer("auto", recipe, LOCAL) == "auto"
        assert wait_clock.sleeps == [0.5]
        assert told[0] == (
            "b-1: no free printer; waiting up to 0.5 s for any ready FORM-4-0 FLGPGR05 "
            "printer (auto)")

    def test_a_build_without_a_saved_form_cannot_wait(
        self, tmp_path: Path, fake_api: FakeWebApi, web: WebApiClient, wait_clock: _Clock,
        wait_store: SqliteJobStore,
    ) -> None:
        _printers(fake_api, busy=("Form4-A", "Form4-B"))
        build_id = prepared_build(wait_store)
        tracking = PrintTracking(client=web, store=wait_store, clock=wait_clock,
                                 build_ids={"b-1": build_id}, wait_s=10.0, wait_interval_s=30.0)
        tracker = _tracker(tracking)
        printer = tracker.resolve_printer("Form4-A, Form4-B", _recipe(tmp_path, LIST), LOCAL)
        with pytest.raises(PipelineError) as caught:
            tracker.before_send("n", printer)
        assert str(caught.value) == (
            f"build {tracker.job_key} cannot wait for a printer: no .form was saved before the "
            "print step (add a save_form step before print (the saved .form is what is sent))")
        assert wait_store.get_build(build_id).state is JobState.PREPARED

    @pytest.mark.parametrize("why", ["another machine type", "another resin in every tank",
                                     "only a printer outside the list fits"])
    def test_when_no_printer_could_ever_take_it_the_refusal_stands_at_once(
        self, tmp_path: Path, fake_api: FakeWebApi, web: WebApiClient, wait_clock: _Clock,
        wait_store: SqliteJobStore, why: str,
    ) -> None:
        if why == "another machine type":
            _printers(fake_api, busy=("Form4-A", "Form4-B"), machine="FORM-3-0")
        else:
            _printers(fake_api, busy=("Form4-A", "Form4-B", "Form4-C"), tank="FLGPCL05")
            if why == "only a printer outside the list fits":
                fake_api.printers[2]["tank_status"]["tank"]["material"] = "FLGPGR05"
        tracking = PrintTracking(client=web, store=wait_store, clock=wait_clock,
                                 build_ids={"b-1": prepared_build(wait_store)}, wait_s=300.0)
        with pytest.raises(PrinterSelectionError) as caught:
            _tracker(tracking).resolve_printer("Form4-A, Form4-B", _recipe(tmp_path, LIST),
                                               LOCAL)
        assert wait_clock.slept == 0.0
        # Only the printers of the list are named, with where their status came from.
        said = "FLGPGR05 now (Web API printer status, else Local API devices): Form4-A: "
        assert said in str(caught.value)
        assert "Form4-C" not in str(caught.value)

    @pytest.mark.parametrize("where", ["no bound", "no store", "no store build"])
    def test_without_a_bound_or_a_place_to_wait_the_refusal_stands(
        self, tmp_path: Path, fake_api: FakeWebApi, web: WebApiClient, wait_clock: _Clock,
        wait_store: SqliteJobStore, where: str,
    ) -> None:
        _printers(fake_api, busy=("Form4-A", "Form4-B"))
        options: dict[str, Any] = {"wait_s": 300.0, "store": wait_store,
                                   "build_ids": {"b-1": prepared_build(wait_store)}}
        if where == "no bound":
            options["wait_s"] = 0.0
        elif where == "no store":
            del options["store"]
        else:
            options["build_ids"] = {}
        tracking = PrintTracking(client=web, clock=wait_clock, **options)
        with pytest.raises(PrinterSelectionError):
            _tracker(tracking).resolve_printer("Form4-A, Form4-B", _recipe(tmp_path, LIST),
                                               LOCAL)
        assert wait_clock.slept == 0.0

    def test_a_free_printer_of_the_list_is_taken_without_waiting(
        self, tmp_path: Path, fake_api: FakeWebApi, web: WebApiClient, wait_clock: _Clock,
    ) -> None:
        _printers(fake_api, "Form4-C", "Form4-B", busy=("Form4-A",))
        tracking = PrintTracking(client=web, clock=wait_clock, wait_s=300.0)
        chosen = _tracker(tracking).resolve_printer(" Form4-A ,Form4-B,", _recipe(
            tmp_path, LIST), LOCAL)
        assert chosen == "Form4-B"  # Form4-C is free but not in the list
        assert wait_clock.slept == 0.0


class TestDispatchWaits:
    """With dispatch (the hot folder), a build of a list or auto waits in the store for it."""

    def test_no_free_printer_hands_the_build_to_dispatch(
        self, tmp_path: Path, fake_api: FakeWebApi, web: WebApiClient, wait_clock: _Clock,
        wait_store: SqliteJobStore,
    ) -> None:
        _printers(fake_api, busy=("Form4-A",))
        build_id = prepared_build(wait_store)
        began: list[bool] = []
        tracking = PrintTracking(client=web, store=wait_store, clock=wait_clock, dispatch=True,
                                 build_ids={"b-1": build_id}, wait_s=300.0,
                                 on_wait=lambda: began.append(True))
        tracker = _tracker(tracking)
        recipe = _recipe(tmp_path, "  - print: {printer: auto}\n")
        assert tracker.resolve_printer("auto", recipe, LOCAL) == "auto"
        assert wait_clock.slept == 0.0
        assert tracker.before_send("n", "auto", form_path=tmp_path / "b.form") == PRINT_WAITING
        build = wait_store.get_build(build_id)
        assert build.state is JobState.WAITING_FOR_PRINTER
        assert build.print_target == {"names": [], "auto": True, "machine_type": "FORM-4-0",
                                      "material": "FLGPGR05"}
        assert began == [True]

    def test_a_free_printer_is_chosen_when_no_build_waits(
        self, tmp_path: Path, fake_api: FakeWebApi, web: WebApiClient, wait_clock: _Clock,
        wait_store: SqliteJobStore,
    ) -> None:
        _printers(fake_api, "Form4-B", busy=("Form4-A",))
        prepared_build(wait_store)  # another build, prepared, not waiting
        tracking = PrintTracking(client=web, store=wait_store, clock=wait_clock, dispatch=True,
                                 build_ids={"b-1": prepared_build(wait_store)})
        assert not tracking.others_waiting()
        recipe = _recipe(tmp_path, "  - print: {printer: auto}\n")
        assert _tracker(tracking).resolve_printer("auto", recipe, LOCAL) == "Form4-B"

    def test_a_build_queues_behind_builds_already_waiting(
        self, tmp_path: Path, fake_api: FakeWebApi, web: WebApiClient, wait_clock: _Clock,
        wait_store: SqliteJobStore,
    ) -> None:
        _printers(fake_api, "Form4-A")
        earlier = prepared_build(wait_store)
        wait_store.transition_build(earlier, JobState.WAITING_FOR_PRINTER, "waits",
                                    print_target={"names": ["Form4-A"], "auto": False})
        tracking = PrintTracking(client=web, store=wait_store, clock=wait_clock, dispatch=True,
                                 build_ids={"b-1": prepared_build(wait_store)})
        assert tracking.others_waiting()
        recipe = _recipe(tmp_path, "  - print: {printer: auto}\n")
        assert _tracker(tracking).resolve_printer("auto", recipe, LOCAL) == "auto"

    def test_a_named_printer_is_sent_to_at_once(
        self, tmp_path: Path, fake_api: FakeWebApi, web: WebApiClient, wait_clock: _Clock,
        wait_store: SqliteJobStore,
    ) -> None:
        build_id = prepared_build(wait_store)
        tracking = PrintTracking(client=web, store=wait_store, clock=wait_clock, dispatch=True,
                                 build_ids={"b-1": build_id})
        tracker = _tracker(tracking)
        recipe = _recipe(tmp_path, "  - print: {printer: Form4-A}\n")
        assert tracker.resolve_printer("Form4-A", recipe, LOCAL) == "Form4-A"
        assert tracker.before_send("n", "Form4-A", form_path=tmp_path / "b.form") is None
        assert wait_store.get_build(build_id).state is JobState.PRINT_SENDING

    def test_a_build_without_jobs_waits_at_priority_zero(
        self, tmp_path: Path, fake_api: FakeWebApi, web: WebApiClient, wait_clock: _Clock,
        wait_store: SqliteJobStore,
    ) -> None:
        _printers(fake_api, busy=("Form4-A",))
        build = wait_store.create_build(recipe="r", job_ids=[])
        for step in (JobState.PREPARING, JobState.PREPARED):
            wait_store.transition_build(build.id, step, "test")
        tracking = PrintTracking(client=web, store=wait_store, clock=wait_clock, dispatch=True,
                                 build_ids={"b-1": build.id})
        tracker = _tracker(tracking)
        recipe = _recipe(tmp_path, "  - print: {printer: auto}\n")
        printer = tracker.resolve_printer("auto", recipe, LOCAL)
        assert tracker.before_send("n", printer, form_path=tmp_path / "b.form") == PRINT_WAITING
        assert wait_store.get_build(build.id).priority == 0

    def test_without_a_store_nothing_waits(self) -> None:
        assert not PrintTracking(dispatch=True).others_waiting()


class TestApproval:
    """A build whose recipe requires approval is held, then dispatched, from the hot folder."""

    HELD = ("  - print:\n      printer: 'Form4-A, Form4-B'\n      approval: required\n")

    def test_it_is_held_with_where_it_will_print(
        self, tmp_path: Path, fake_api: FakeWebApi, web: WebApiClient, wait_clock: _Clock,
        wait_store: SqliteJobStore,
    ) -> None:
        _printers(fake_api, "Form4-A", "Form4-B")
        build_id = prepared_build(wait_store, priority=2)
        began: list[bool] = []
        tracking = PrintTracking(client=web, store=wait_store, clock=wait_clock, dispatch=True,
                                 build_ids={"b-1": build_id}, on_wait=lambda: began.append(True))
        tracker = _tracker(tracking)
        recipe = _recipe(tmp_path, self.HELD, before="  - save_form\n  - screenshot\n")
        printer = tracker.resolve_printer("Form4-A, Form4-B", recipe, LOCAL)
        assert printer == "Form4-A, Form4-B"  # dispatch chooses once it is approved
        assert tracker.before_send("n", printer, form_path=tmp_path / "b.form") == PRINT_HELD
        build = wait_store.get_build(build_id)
        assert (build.state, build.priority, build.job_name) == (
            JobState.AWAITING_APPROVAL, 2, "n")
        assert wait_store.build_history(build_id)[-1].reason == (
            "prepared; waits for an operator's approval, then for Form4-A or Form4-B")
        assert build.print_target is not None
        assert build.print_target["names"] == ["Form4-A", "Form4-B"]
        # The dispatch loop is woken to read the build held: a rejection made before its
        # next pass was otherwise learnt only at the sweep of processing/ (session 36).
        assert began == [True]

    def test_run_prints_at_once_without_asking(
        self, tmp_path: Path, fake_api: FakeWebApi, web: WebApiClient, wait_clock: _Clock,
        wait_store: SqliteJobStore,
    ) -> None:
        _printers(fake_api, "Form4-A", "Form4-B")
        build_id = prepared_build(wait_store)
        tracking = PrintTracking(client=web, store=wait_store, clock=wait_clock,
                                 build_ids={"b-1": build_id})
        tracker = _tracker(tracking)
        recipe = _recipe(tmp_path, self.HELD, before="  - save_form\n  - screenshot\n")
        printer = tracker.resolve_printer("Form4-A, Form4-B", recipe, LOCAL)
        assert printer == "Form4-A"
        assert tracker.before_send("n", printer, form_path=tmp_path / "b.form") is None
        assert wait_store.get_build(build_id).state is JobState.PRINT_SENDING


class TestChoosing:
    """Choosing needs the scene's machine and material; a build keeps what it chose."""

    @pytest.mark.parametrize("scene", [SceneSpec(None, None, None, fps_file="grey.fps"),
                                       SceneSpec("FORM-4-0", None, 0.1)])
    def test_a_scene_without_machine_type_or_material_cannot_choose(
        self, web: WebApiClient, scene: SceneSpec
    ) -> None:
        recipe: Any = SimpleNamespace(scene=scene)
        with pytest.raises(PipelineError) as caught:
            _tracker(PrintTracking(client=web)).resolve_printer("Form4-A, Form4-B", recipe,
                                                                LOCAL)
        assert str(caught.value) == (
            "printer: auto needs the scene's machine_type and material_code (name both in the "
            "recipe's scene, or name a printer)")

    def test_a_build_choosing_again_keeps_its_printer_and_a_sent_one_frees_it(
        self, tmp_path: Path, fake_api: FakeWebApi, web: WebApiClient
    ) -> None:
        _printers(fake_api, "Form4-A")
        tracking = PrintTracking(client=web)
        recipe = _recipe(tmp_path, "  - print: {printer: auto}\n")
        first = _tracker(tracking, "b-1")
        assert first.resolve_printer("auto", recipe, LOCAL) == "Form4-A"
        assert first.resolve_printer("auto", recipe, LOCAL) == "Form4-A"  # a retry
        with pytest.raises(PrinterSelectionError):
            _tracker(tracking, "b-2").resolve_printer("auto", recipe, LOCAL)
        first.before_send(first.job_name("b-1"), "Form4-A")
        first.sent("job-1", "Form4-A")
        # Sent: the printer's own status says when it is free again (here: at once).
        assert _tracker(tracking, "b-3").resolve_printer("auto", recipe, LOCAL) == "Form4-A"


def _local_client(devices: list[dict[str, Any]]) -> PreFormClient:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/devices/"
        return httpx.Response(200, json={"count": len(devices), "devices": devices})

    return PreFormClient("http://127.0.0.1:44388", transport=httpx.MockTransport(answer),
                         check_version_on_first_use=False)


class TestWithoutTheWebApi:
    """Without Web API credentials, auto reads the PreFormServer's device list."""

    def test_auto_chooses_among_the_servers_devices(self, tmp_path: Path) -> None:
        devices = [printer_status(p) for p in DEFAULT_PRINTERS]
        recipe = _recipe(tmp_path, "  - print: {printer: auto}\n")
        with _local_client(devices) as local:
            chosen = _tracker(PrintTracking()).resolve_printer("auto", recipe, local)
        assert chosen == next(p.serial for p in DEFAULT_PRINTERS if p.machine_type_id == "FORM-4-0"
                              and p.material_code == "FLGPGR05" and p.status == "IDLE")

"""Latency profiles price operations by their size and spend the price waiting."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType

import httpx
import pytest
from sim_server_support import WAIT_S, RecordingEngine

from preform_pipeline.geometry import write_stl
from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.latency import (
    FALLBACK_COST,
    REALISTIC_COSTS,
    LatencyProfile,
    OperationCost,
    latency_profile,
    spend,
)
from preform_pipeline.simulator.meshops import box_triangles
from preform_pipeline.simulator.protocol import WorkEstimate
from preform_pipeline.simulator.routes import ENGINE_OPERATION_IDS
from preform_pipeline.simulator.server import LATENCY_PROGRESS_SHARE, SimulatorServer

BIG = WorkEstimate(triangles=2_000_000, models=10)
SMALL = WorkEstimate(triangles=10_000, models=1)


class FakeTime:
    """A clock that moves only when ``wait`` is called."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return False


class TestProfiles:
    """``instant`` costs nothing; ``realistic`` grows with models and triangles."""

    def test_instant_costs_nothing_whatever_the_size(self) -> None:
        profile = latency_profile("instant")
        assert all(profile.cost_seconds(op, BIG) == 0 for op in ENGINE_OPERATION_IDS)

    def test_realistic_prices_every_engine_operation_explicitly(self) -> None:
        assert set(ENGINE_OPERATION_IDS) <= set(REALISTIC_COSTS)

    def test_realistic_cost_grows_with_the_work(self) -> None:
        profile = latency_profile("realistic")
        assert profile.cost_seconds("auto_support", BIG) > profile.cost_seconds(
            "auto_support", SMALL
        )

    def test_the_formula_is_base_plus_per_model_plus_per_mtri(self) -> None:
        cost = OperationCost(base_s=1.0, per_model_s=0.5, per_mtri_s=2.0)
        assert cost.seconds(WorkEstimate(triangles=3_000_000, models=4)) == pytest.approx(9.0)

    def test_support_and_layout_are_expensive_and_reading_a_scene_cheap(self) -> None:
        profile = latency_profile("realistic")
        cheap = profile.cost_seconds("get_scene", BIG)
        assert profile.cost_seconds("auto_support", BIG) > 20 * cheap
        assert profile.cost_seconds("auto_layout", BIG) > 20 * cheap

    def test_time_scale_multiplies_every_cost(self) -> None:
        normal = latency_profile("realistic").cost_seconds("auto_layout", BIG)
        fast = latency_profile("realistic", time_scale=0.01).cost_seconds("auto_layout", BIG)
        assert fast == pytest.approx(normal / 100)

    def test_an_unpriced_operation_costs_the_fallback(self) -> None:
        profile = latency_profile("realistic")
        assert profile.cost_seconds("brand_new_op", SMALL) == FALLBACK_COST.seconds(SMALL)

    def test_the_user_documentation_shows_this_cost_table(self, repo_root: Path) -> None:
        text = (repo_root / "docs" / "simulator.md").read_text(encoding="utf-8")
        rows = re.findall(r"^\| `(\w+)` \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$", text, re.M)
        documented = {op: OperationCost(*map(float, costs)) for op, *costs in rows}
        assert documented == dict(REALISTIC_COSTS)

    def test_unknown_profiles_and_negative_scales_are_refused(self) -> None:
        with pytest.raises(ValueError, match="unknown latency profile"):
            latency_profile("sluggish")
        with pytest.raises(ValueError, match="time scale"):
            latency_profile("realistic", time_scale=-1)


class TestSpend:
    """Spending waits in slices and reports the elapsed fraction after each."""

    def test_progress_rises_to_one_in_slices(self) -> None:
        fake = FakeTime()
        reported: list[float] = []
        stopped = spend(1.0, reported.append, fake.wait, slice_s=0.25, clock=fake.clock)
        assert not stopped
        assert reported == [0.25, 0.5, 0.75, 1.0, 1.0]
        assert sum(fake.waits) == pytest.approx(1.0)

    def test_nothing_to_spend_reports_nothing(self) -> None:
        fake = FakeTime()
        reported: list[float] = []
        assert not spend(0.0, reported.append, fake.wait, clock=fake.clock)
        assert reported == [] and fake.waits == []

    def test_a_stop_abandons_the_wait(self) -> None:
        stop = threading.Event()
        stop.set()
        assert spend(60.0, None, stop.wait, clock=time.monotonic)


class TestServerLatency:
    """The server spends the price before the engine runs, reporting progress meanwhile."""

    def profile(self, seconds: float) -> LatencyProfile:
        costs = MappingProxyType({"get_scene": OperationCost(seconds)})
        return LatencyProfile("realistic", costs, OperationCost(seconds))

    def test_a_synchronous_call_takes_at_least_its_price(
        self, sim_server_factory: Callable[..., SimulatorServer]
    ) -> None:
        server = sim_server_factory(latency=self.profile(0.15))
        with httpx.Client(base_url=server.url, timeout=WAIT_S) as client:
            started = time.monotonic()
            assert client.get("/scene/s/").status_code == 200
            assert time.monotonic() - started >= 0.15
        assert server.exchanges[-1].elapsed_s >= 0.15

    def test_async_progress_moves_during_the_wait(
        self, sim_server_factory: Callable[..., SimulatorServer], sim_engine: RecordingEngine
    ) -> None:
        server = sim_server_factory(latency=self.profile(0.6))
        with httpx.Client(base_url=server.url, timeout=WAIT_S) as client:
            op = client.post("/scene/s/auto-support/?async=true", json={}).json()["operationId"]
            deadline = time.monotonic() + WAIT_S
            pause = threading.Event()
            while True:
                body = client.get(f"/operations/{op}/").json()
                if 0 < body["progress"] < LATENCY_PROGRESS_SHARE:
                    break
                assert body["status"] == "IN_PROGRESS", "finished before progress was seen"
                assert time.monotonic() < deadline
                pause.wait(0.01)
            assert sim_engine.calls == []  # the engine runs after the wait


FORM4 = {"machine_type": "FORM-4-0", "material_code": "FLGPGR05", "print_setting": "DEFAULT",
         "layer_thickness_mm": 0.1}


def _cube(folder: Path) -> Path:
    """A 10 mm cube's STL file (12 triangles)."""
    cube = folder / "cube.stl"
    write_stl(cube, box_triangles((0.0, 0.0, 0.0), (10.0, 10.0, 10.0)))
    return cube


@contextmanager
def _priced_server(folder: Path) -> Iterator[tuple[SimulatorServer, httpx.Client]]:
    """A simulator with realistic latency spent on a fake clock (no real waiting), and a
    client for it."""
    fake = FakeTime()
    engine = SimEngine(work_dir=folder / "work", fleet_dir=folder / "fleet")
    with SimulatorServer(
        engine, port=0, latency=latency_profile("realistic"), clock=fake.clock,
        wait=fake.wait, poll_interval=0.005,
    ) as server, httpx.Client(base_url=server.url, timeout=WAIT_S) as client:
        yield server, client


def _two_cubes(client: httpx.Client, cube: Path) -> tuple[str, list[str]]:
    """A new Form 4 scene holding ``cube`` twice: its id and the models' ids."""
    scene = client.post("/scene/", json=FORM4).json()["id"]
    ids = [client.post(f"/scene/{scene}/import-model/", json={"file": str(cube)}).json()["id"]
           for _ in range(2)]
    return scene, ids


class TestDeprecatedRoutesCost:
    """A deprecated route (no scene id: the newest scene) costs what its current route costs."""

    @pytest.mark.parametrize(
        ("method", "current", "deprecated", "body", "operation", "models"),
        [
            ("GET", "/scene/{scene}/", "/scene/", None, "get_scene", 2),
            ("POST", "/scene/{scene}/auto-support/", "/scene/auto-support/", {"models": "ALL"},
             "auto_support", 2),
            ("POST", "/scene/{scene}/auto-layout/", "/scene/auto-layout/", {}, "auto_layout", 2),
            ("GET", "/scene/{scene}/print-validation/", "/scene/print-validation/", None,
             "get_print_validation", 2),
            ("POST", "/scene/{scene}/estimate-print-time/", "/scene/estimate-print-time/", None,
             "estimate_print_time", 2),
            ("POST", "/scene/{scene}/models/{model}/duplicate/",
             "/scene/models/{model}/duplicate/", {"count": 1}, "duplicate_model", 1),
        ],
    )
    def test_the_newest_scenes_models_are_priced_on_both_routes(
        self, tmp_path: Path, method: str, current: str, deprecated: str,
        body: dict[str, object] | None, operation: str, models: int,
    ) -> None:
        cube = _cube(tmp_path)
        with _priced_server(tmp_path) as (server, client):
            scene, ids = _two_cubes(client, cube)
            paths = (current.format(scene=scene, model=ids[0]), deprecated.format(model=ids[0]))
            for path in paths:
                answer = client.request(method, path, json=body)
                assert answer.status_code == 200, answer.text
            server.check()
        priced = REALISTIC_COSTS[operation].seconds(WorkEstimate(triangles=12 * models,
                                                                 models=models))
        assert priced > REALISTIC_COSTS[operation].base_s
        spent = {e.path: e.elapsed_s for e in server.exchanges if e.path in paths}
        assert spent == {paths[0]: pytest.approx(priced), paths[1]: pytest.approx(priced)}


class TestFilePricing:
    """An operation that reads model files is priced by their sizes as one model, whatever
    the scene holds."""

    def test_import_replace_scan_and_load_cost_the_files_they_read(
        self, tmp_path: Path
    ) -> None:
        cube = _cube(tmp_path)  # 684 bytes: estimated at 12 triangles, as it holds
        saved = tmp_path / "two.form"
        with _priced_server(tmp_path) as (server, client):
            scene, ids = _two_cubes(client, cube)  # a scene's 24 triangles, not 12 or 36
            assert client.post(f"/scene/{scene}/save-form/",
                               json={"file": str(saved)}).status_code == 200
            sent = {
                "replace_model": (f"/scene/{scene}/models/{ids[0]}/replace/",
                                  {"file": str(cube)}),
                "scan_to_model": (f"/scene/{scene}/scan-to-model/",
                                  {"file": str(cube), "files": [str(cube), str(cube)]}),
                "load_form_file": ("/load-form/", {"file": str(saved)}),
            }
            for path, body in sent.values():
                client.post(path, json=body)  # priced before the engine answers, 200 or 400
        spent = {e.path: e.elapsed_s for e in server.exchanges}
        form_triangles = (saved.stat().st_size - 84) // 50  # the estimate's bytes per triangle

        def price(operation: str, triangles: int) -> float:
            return REALISTIC_COSTS[operation].seconds(WorkEstimate(triangles, models=1))

        assert {op: spent[path] for op, (path, _) in sent.items()} == {
            "replace_model": pytest.approx(price("replace_model", 12)),
            "scan_to_model": pytest.approx(price("scan_to_model", 36)),
            "load_form_file": pytest.approx(price("load_form_file", form_triangles)),
        }


class TestDefaultScenePricing:
    """Making or deleting the default scene costs the models it held, as deleting a scene
    costs its models; whichever scene was created last does not count."""

    def test_the_default_scenes_models_are_priced_when_it_is_replaced(
        self, tmp_path: Path
    ) -> None:
        cube = _cube(tmp_path)
        with _priced_server(tmp_path) as (server, client):
            _two_cubes(client, cube)  # the newest scene, which these routes do not touch
            sent: list[tuple[str, str, int]] = []

            def send(method: str, models_held: int) -> None:
                answer = client.request(method, "/scene/default/", json=FORM4)
                assert answer.status_code == 200, answer.text
                sent.append((method, answer.json()["id"], models_held))

            send("POST", 0)  # made for the first time: nothing held
            for _ in range(3):
                imported = client.post(
                    "/scene/default/import-model/", json={"file": str(cube)}
                )
                assert imported.status_code == 200, imported.text
            send("POST", 3)  # made again: its three cubes discarded
            client.post("/scene/default/import-model/", json={"file": str(cube)})
            send("DELETE", 1)
            send("DELETE", 0)
            server.check()
        operations = {"POST": "create_default_scene", "DELETE": "delete_default_scene"}
        spent = [e.elapsed_s for e in server.exchanges if e.path == "/scene/default/"]
        assert spent == [
            pytest.approx(REALISTIC_COSTS[operations[method]].seconds(
                WorkEstimate(triangles=12 * held, models=held)
            ))
            for method, _, held in sent
        ]
        assert {scene for _, scene, _ in sent} == {"default"}
        assert spent[1] > REALISTIC_COSTS["create_default_scene"].base_s
        assert spent[2] > REALISTIC_COSTS["delete_default_scene"].base_s

"""The Local API client drives a real simulator subprocess over HTTP on 127.0.0.1.

Fault injection (a simulator that dies, hangs, errs or fails to start) is in
``test_client_against_simulator_faults.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from preform_pipeline.api import (
    AutoSupportOptions,
    ImportOptions,
    PreFormClient,
    PrintOptions,
    SceneSettings,
)
from preform_pipeline.errors import (
    OperationFailedError,
    PermanentApiError,
    RequestRejectedError,
    ServerInternalError,
    ServerUnreachableError,
)
from preform_pipeline.simulator.testing import RunningSimulator, start_simulator

#: Upper bound of every wait here; reached only when something is broken.
WAIT_S = 30.0

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: One model of each format the simulator reads, all fitting a Form 4 platform together.
FLOW_MODELS = (
    "parts/cube_with_hole.stl",
    "parts/l_bracket.stl",
    "parts/gear.obj",
    "parts/washer.3mf",
)

#: Copies of the 60 x 25 mm L bracket: far more footprint than a 200 x 125 mm platform has.
OVERFLOW_COPIES = 30

#: Simulated latency scale under which auto-support of one small part takes about 0.8 s
#: ((1 s base + 3 s per model + 20 s per million triangles) x 0.2), long enough for several
#: progress polls (the client polls at 0, 0.05, 0.125, 0.24, 0.41, 0.66 s, ...).
PROGRESS_TIME_SCALE = "0.2"

# Binary STL: an 80-byte header, a 4-byte triangle count, then 50 bytes per triangle.
_STL_HEADER_BYTES = 84
_STL_RECORD_BYTES = 50


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fleet")


@pytest.fixture(scope="module")
def simulator(fleet_dir: Path) -> Iterator[RunningSimulator]:
    with start_simulator(fleet_dir=fleet_dir) as sim:
        yield sim


@pytest.fixture
def client(simulator: RunningSimulator) -> Iterator[PreFormClient]:
    with PreFormClient(simulator.url, timeout=WAIT_S) as client:
        yield client


def _form4_settings(client: PreFormClient) -> SceneSettings:
    settings = client.list_materials().scene_settings_for("FORM-4-0", "FLGPBK05")
    assert settings, "the simulator lists no Form 4 Black setting"
    return settings[0]


def _new_scene(client: PreFormClient) -> str:
    scene = client.create_scene(_form4_settings(client))
    assert scene.id is not None
    return scene.id


@dataclass(frozen=True)
class Refusal:
    """How the client reports a long operation the server refused, in one client mode."""

    async_operations: bool
    error: type[PermanentApiError]
    status_code: int | None


# With ?async=true the refusal arrives as a FAILED operation, which carries no HTTP status;
# sent as one blocking request it is the server's 400. Both are permanent errors.
REFUSALS = [
    pytest.param(Refusal(True, OperationFailedError, None), id="async"),
    pytest.param(Refusal(False, RequestRejectedError, 400), id="sync"),
]


@pytest.fixture(params=REFUSALS)
def refusal(request: pytest.FixtureRequest) -> Refusal:
    param: Refusal = request.param
    return param


@pytest.fixture
def mode_client(simulator: RunningSimulator, refusal: Refusal) -> Iterator[PreFormClient]:
    with PreFormClient(
        simulator.url, timeout=WAIT_S, async_operations=refusal.async_operations
    ) as client:
        yield client


def assert_refused(
    error: PermanentApiError, refusal: Refusal, code: str, operation: str
) -> None:
    assert type(error) is refusal.error
    assert error.code == code
    assert error.status_code == refusal.status_code
    assert error.request is not None and error.request.operation == operation
    assert error.server_message


class TestPreparingABuild:
    """A whole preparation sequence runs through the client against the simulator."""

    def test_several_models_are_prepared_saved_reloaded_pictured_and_printed(
        self,
        client: PreFormClient,
        sample_models_dir: Path,
        fleet_dir: Path,
        tmp_path: Path,
    ) -> None:
        assert client.check_version().version.startswith("0.9.")
        deadline = client.deadline_in(WAIT_S)
        scene_id = _new_scene(client)
        progress: list[float] = []

        models = [
            client.import_model(
                scene_id,
                (sample_models_dir / relative).resolve(),
                ImportOptions(name=Path(relative).stem),
                deadline=deadline,
            )
            for relative in FLOW_MODELS
        ]
        client.auto_orient(scene_id, deadline=deadline, progress=progress.append)
        client.auto_support(
            scene_id, AutoSupportOptions(density=1.0), deadline=deadline, progress=progress.append
        )
        laid_out = client.auto_layout(scene_id, deadline=deadline, progress=progress.append)
        validation = client.get_print_validation(scene_id, deadline=deadline)
        estimate = client.estimate_print_time(scene_id, deadline=deadline)
        saved = tmp_path / "build.form"
        client.save_form(scene_id, saved, deadline=deadline)
        reloaded = client.load_form(saved, deadline=deadline)
        assert reloaded.id is not None
        picture = tmp_path / "build.png"
        client.save_screenshot(reloaded.id, picture, deadline=deadline)
        printers = [d for d in client.get_devices(can_print=True) if d.product_name == "Form 4"]
        assert printers, "the simulator offers no Form 4"
        job = client.print_scene(
            reloaded.id, PrintOptions(printers[0].id, "several models"), deadline=deadline
        )

        ids = {m.id for m in models}
        assert [m.name for m in models] == [Path(r).stem for r in FLOW_MODELS]
        assert len(ids) == len(FLOW_MODELS)
        assert set(laid_out.model_ids) == ids
        assert all(m.in_bounds and m.has_supports for m in laid_out.models)
        assert progress and progress[-1] == 1.0
        assert all(0.0 <= p <= 1.0 for p in progress)
        assert set(validation.per_model_results) == ids
        assert validation.undersupported_model_ids == ()
        assert estimate.total_print_time_s is not None and estimate.total_print_time_s > 0
        assert saved.is_file()
        assert reloaded.id != scene_id
        assert {m.id: m.raw_mesh_hash for m in reloaded.models} == {
            m.id: m.raw_mesh_hash for m in laid_out.models
        }
        assert picture.read_bytes()[: len(PNG_SIGNATURE)] == PNG_SIGNATURE
        assert job.job_id
        record = json.loads((fleet_dir / "jobs" / f"{job.job_id}.json").read_text("utf-8"))
        assert record["job_id"] == job.job_id
        assert record["job_name"] == "several models"
        assert record["printer"] == printers[0].id
        assert record["scene_id"] == reloaded.id
        assert {m["id"] for m in record["models"]} == ids

    def test_a_prepared_scene_prints_to_a_simulated_printer(
        self, client: PreFormClient, sample_models_dir: Path
    ) -> None:
        scene = client.create_scene(_form4_settings(client))
        assert scene.id is not None
        client.import_model(
            scene.id, (sample_models_dir / "parts" / "cylinder_ascii.stl").resolve()
        )
        printers = [d for d in client.get_devices(can_print=True) if d.product_name == "Form 4"]
        assert printers, "the simulator offers no Form 4"

        result = client.print_scene(scene.id, PrintOptions(printers[0].id, "client integration"))

        assert result.job_id


class TestLayoutOverflow:
    """Models that cannot all fit the platform are refused and the scene is left as it was."""

    def test_too_many_copies_are_refused_with_models_do_not_fit(
        self,
        mode_client: PreFormClient,
        refusal: Refusal,
        sample_models_dir: Path,
    ) -> None:
        scene_id = _new_scene(mode_client)
        bracket = mode_client.import_model(
            scene_id, (sample_models_dir / "parts" / "l_bracket.stl").resolve()
        )
        mode_client.duplicate_model(scene_id, bracket.id, OVERFLOW_COPIES - 1)
        before = mode_client.get_scene(scene_id)

        with pytest.raises(PermanentApiError) as caught:
            mode_client.auto_layout(scene_id)

        assert_refused(caught.value, refusal, "MODELS_DO_NOT_FIT", "autoLayout")
        after = mode_client.get_scene(scene_id)
        assert len(before.models) == OVERFLOW_COPIES
        assert {m.id: m.position for m in after.models} == {
            m.id: m.position for m in before.models
        }
        assert {m.id: m.orientation for m in after.models} == {
            m.id: m.orientation for m in before.models
        }


class TestUnknownMaterial:
    """Scene settings the catalogue does not offer are a rejected request."""

    def test_an_unknown_material_is_rejected_400_and_creates_no_scene(
        self, client: PreFormClient
    ) -> None:
        scenes_before = len(client.get_all_scenes())

        with pytest.raises(RequestRejectedError) as caught:
            client.create_scene(SceneSettings("FORM-4-0", "NO-SUCH-RESIN", 0.05, "DEFAULT"))

        error = caught.value
        assert error.status_code == 400
        assert error.code == "UNKNOWN_MATERIAL"
        assert error.request is not None
        assert (error.request.method, error.request.operation) == ("POST", "createScene")
        assert len(client.get_all_scenes()) == scenes_before


class TestMissingFile:
    """An absolute path to nothing is refused by the server; a relative one by the client."""

    def test_an_absolute_path_that_does_not_exist_is_file_not_found(
        self, mode_client: PreFormClient, refusal: Refusal, tmp_path: Path
    ) -> None:
        scene_id = _new_scene(mode_client)
        missing = tmp_path / "no-such-part.stl"

        with pytest.raises(PermanentApiError) as caught:
            mode_client.import_model(scene_id, missing)

        assert_refused(caught.value, refusal, "FILE_NOT_FOUND", "importModel")
        assert str(missing) in (caught.value.server_message or "")
        assert mode_client.get_scene(scene_id).models == ()

    def test_a_relative_path_is_refused_before_anything_is_sent(
        self, client: PreFormClient
    ) -> None:
        scene_id = _new_scene(client)

        with pytest.raises(ValueError, match="absolute"):
            client.import_model(scene_id, Path("parts") / "cube_with_hole.stl")

        assert client.get_scene(scene_id).models == ()


class TestMalformedModel:
    """A truncated binary STL is an invalid model file whose message says it is truncated."""

    def test_a_truncated_binary_stl_is_invalid_model_file(
        self,
        mode_client: PreFormClient,
        refusal: Refusal,
        sample_models_dir: Path,
        tmp_path: Path,
    ) -> None:
        whole = (sample_models_dir / "parts" / "cube_with_hole.stl").read_bytes()
        # Cut in the middle of a triangle record, as an interrupted copy would.
        cut = _STL_HEADER_BYTES + _STL_RECORD_BYTES * 100 + _STL_RECORD_BYTES // 2
        assert len(whole) > cut
        truncated = tmp_path / "truncated.stl"
        truncated.write_bytes(whole[:cut])
        scene_id = _new_scene(mode_client)

        with pytest.raises(PermanentApiError) as caught:
            mode_client.import_model(scene_id, truncated)

        assert_refused(caught.value, refusal, "INVALID_MODEL_FILE", "importModel")
        message = caught.value.server_message or ""
        assert truncated.name in message
        assert "truncated" in message
        assert f"{cut} bytes" in message
        assert mode_client.get_scene(scene_id).models == ()


class TestProgress:
    """A long async operation reports rising progress through the client's callback."""

    def test_auto_support_reports_several_rising_values_ending_at_one(
        self, sample_models_dir: Path
    ) -> None:
        with (
            start_simulator("--latency", "realistic", "--time-scale", PROGRESS_TIME_SCALE) as sim,
            PreFormClient(sim.url, timeout=WAIT_S) as client,
        ):
            scene_id = _new_scene(client)
            client.import_model(
                scene_id, (sample_models_dir / "parts" / "cube_with_hole.stl").resolve()
            )
            progress: list[float] = []

            client.auto_support(scene_id, progress=progress.append)

            assert client.get_scene(scene_id).models[0].has_supports is True
        assert progress[-1] == 1.0
        assert progress == sorted(set(progress)), f"not strictly rising: {progress}"
        assert len([p for p in progress if 0.0 < p < 1.0]) >= 2, progress


class TestFailures:
    """The simulator's error answers and its absence map onto the error tree."""

    def test_an_unknown_scene_is_a_scene_the_server_lost(self, client: PreFormClient) -> None:
        # The client names only scenes the server made: a restart lost it; the build retries.
        with pytest.raises(ServerInternalError) as caught:
            client.get_scene("no-such-scene")

        assert caught.value.status_code == 400
        assert caught.value.code == "SCENE_NOT_FOUND"

    def test_a_stopped_server_is_unreachable(self) -> None:
        with start_simulator() as sim:
            url = sim.url
        with PreFormClient(url, timeout=5.0) as client, pytest.raises(ServerUnreachableError):
            client.get_api_version()

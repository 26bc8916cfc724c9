"""The Local API client drives a real simulator subprocess over HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.api import (
    AutoSupportOptions,
    ImportOptions,
    PreFormClient,
    PrintOptions,
    SceneSettings,
)
from preform_pipeline.errors import RequestRejectedError, ServerUnreachableError
from preform_pipeline.simulator.testing import RunningSimulator, start_simulator


@pytest.fixture(scope="module")
def simulator() -> Iterator[RunningSimulator]:
    with start_simulator() as sim:
        yield sim


@pytest.fixture
def client(simulator: RunningSimulator) -> Iterator[PreFormClient]:
    with PreFormClient(simulator.url, timeout=30.0) as client:
        yield client


def _form4_settings(client: PreFormClient) -> SceneSettings:
    settings = client.list_materials().scene_settings_for("FORM-4-0", "FLGPBK05")
    assert settings, "the simulator lists no Form 4 Black setting"
    return settings[0]


class TestPreparingABuild:
    """A whole preparation sequence runs through the client against the simulator."""

    def test_import_orient_support_layout_validate_estimate_save_and_reload(
        self, client: PreFormClient, sample_models_dir: Path, tmp_path: Path
    ) -> None:
        assert client.check_version().version.startswith("0.9.")
        scene = client.create_scene(_form4_settings(client))
        assert scene.id is not None
        part = (sample_models_dir / "parts" / "cube_with_hole.stl").resolve()
        progress: list[float] = []

        model = client.import_model(scene.id, part, ImportOptions(name="cube"))
        client.auto_orient(scene.id, progress=progress.append)
        client.auto_support(scene.id, AutoSupportOptions(density=1.0), progress=progress.append)
        laid_out = client.auto_layout(scene.id, progress=progress.append)
        validation = client.get_print_validation(scene.id)
        estimate = client.estimate_print_time(scene.id)
        saved = tmp_path / "build.form"
        client.save_form(scene.id, saved)
        reloaded = client.load_form(saved)

        assert model.name == "cube"
        assert laid_out.model_ids == (model.id,)
        assert client.get_model(scene.id, model.id).has_supports is True
        assert progress and progress[-1] == 1.0
        assert all(0.0 <= p <= 1.0 for p in progress)
        assert set(validation.per_model_results) == {model.id}
        assert estimate.total_print_time_s is not None and estimate.total_print_time_s > 0
        assert saved.is_file()
        assert reloaded.id != scene.id and len(reloaded.models) == 1

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


class TestFailures:
    """The simulator's error answers and its absence map onto the error tree."""

    def test_an_unknown_scene_is_a_rejected_request(self, client: PreFormClient) -> None:
        with pytest.raises(RequestRejectedError) as caught:
            client.get_scene("no-such-scene")

        assert caught.value.status_code == 404
        assert caught.value.code

    def test_a_stopped_server_is_unreachable(self) -> None:
        with start_simulator() as sim:
            url = sim.url
        with PreFormClient(url, timeout=5.0) as client, pytest.raises(ServerUnreachableError):
            client.get_api_version()

"""An import that answers success but adds no model is caught and reported as transient."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from preform_pipeline.api import PreFormClient
from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import (
    ImportNotAppliedError,
    RequestInfo,
    ServerTimeoutError,
    TransientApiError,
)
from tests.unit.api.api_fakes import (
    BASE_URL,
    ScriptedServer,
    accepted,
    ok,
    op_status,
    scene_json,
)

SCENE = "/scene/scene-1/"
IMPORT = "/scene/scene-1/import-model/"


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "crown.stl"
    path.write_bytes(b"solid crown\nendsolid crown\n")
    return path


class TestImportVerification:
    """The scene is read before and after an import; it must have gained the returned model."""

    def test_a_real_import_passes(
        self, server: ScriptedServer, client: PreFormClient, model_file: Path
    ) -> None:
        server.on(
            "GET",
            SCENE,
            ok(scene_json(model_ids=("m-0",))),
            ok(scene_json(model_ids=("m-0", "m-1"))),
        )
        server.on("POST", IMPORT, ok({"id": "m-1"}))

        model = client.import_model("scene-1", model_file)

        assert model.id == "m-1"
        assert [(s.method, s.path) for s in server.calls()] == [
            ("GET", SCENE),
            ("POST", IMPORT),
            ("GET", SCENE),
        ]

    def test_success_with_no_model_added_raises_import_not_applied(
        self, server: ScriptedServer, client: PreFormClient, model_file: Path
    ) -> None:
        server.on("GET", SCENE, ok(scene_json(model_ids=("m-0",))))
        server.on("POST", IMPORT, ok({"id": "m-1"}))

        with pytest.raises(ImportNotAppliedError) as caught:
            client.import_model("scene-1", model_file)

        err = caught.value
        assert isinstance(err, TransientApiError)
        assert err.request == RequestInfo("POST", BASE_URL + IMPORT, "importModel")
        assert "crown.stl" in str(err) and "'m-1'" in str(err)
        assert "1 model before, 1 after" in str(err)

    def test_a_returned_id_missing_from_the_scene_raises_import_not_applied(
        self, server: ScriptedServer, client: PreFormClient, model_file: Path
    ) -> None:
        server.on("GET", SCENE, ok(scene_json()), ok(scene_json(model_ids=("m-other",))))
        server.on("POST", IMPORT, ok({"id": "m-1"}))

        with pytest.raises(ImportNotAppliedError):
            client.import_model("scene-1", model_file)

    def test_an_async_import_is_verified_too(
        self, server: ScriptedServer, client: PreFormClient, model_file: Path
    ) -> None:
        server.on("GET", SCENE, ok(scene_json()))
        server.on("POST", IMPORT, accepted("op-1"))
        server.on("GET", "/operations/op-1/", op_status("op-1", "SUCCEEDED", 1.0, {"id": "m-1"}))

        with pytest.raises(ImportNotAppliedError):
            client.import_model("scene-1", model_file)

    def test_a_deadline_already_passed_times_out_before_anything_is_sent(
        self,
        server: ScriptedServer,
        clock: ManualClock,
        client: PreFormClient,
        model_file: Path,
    ) -> None:
        client.check_version()

        with pytest.raises(ServerTimeoutError):
            client.import_model("scene-1", model_file, deadline=clock.monotonic())

        assert server.calls() == []

    def test_verification_can_be_turned_off(
        self,
        server: ScriptedServer,
        make_client: Callable[..., PreFormClient],
        model_file: Path,
    ) -> None:
        server.on("POST", IMPORT, ok({"id": "m-1"}))
        client = make_client(verify_imports=False, async_operations=False)

        assert client.import_model("scene-1", model_file).id == "m-1"
        assert [s.method for s in server.calls()] == ["POST"]

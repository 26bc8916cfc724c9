"""Every client operation sends the contract's method, path and body and parses the answer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from preform_pipeline.api import (
    EulerAngles,
    ImportOptions,
    Position,
    PreFormClient,
)
from preform_pipeline.errors import FileWriteError
from tests.unit.api.api_cases import CASES, MODEL, MODEL_JSON, SERVER_MODEL, Case, windows_mapper
from tests.unit.api.api_fakes import ScriptedServer, ok, scene_json


class TestEveryOperation:
    """Each operation sends its contract request and returns the parsed, typed answer."""

    @pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
    def test_sends_the_contract_request_and_parses_the_answer(
        self, case: Case, server: ScriptedServer, make_client: Callable[..., PreFormClient]
    ) -> None:
        server.on(case.method, case.path, ok(case.answer, case.status))
        client = make_client(path_mapper=windows_mapper, async_operations=False)

        result = case.call(client)

        sent = [s for s in server.sent if (s.method, s.path) == (case.method, case.path)]
        assert len(sent) == 1, server.sent
        assert sent[0].body == case.body
        assert sent[0].params == case.params
        case.check(result)


class TestImportModel:
    """Import sends the file and every option, and returns the new model's properties."""

    def test_import_sends_file_then_options_and_returns_the_model(
        self, server: ScriptedServer, make_client: Callable[..., PreFormClient]
    ) -> None:
        server.on("GET", "/scene/scene-1/", ok(scene_json()), ok(scene_json(model_ids=("m-1",))))
        server.on("POST", "/scene/scene-1/import-model/", ok(MODEL_JSON))
        client = make_client(path_mapper=windows_mapper, async_operations=False)

        model = client.import_model(
            "scene-1",
            MODEL,
            ImportOptions(
                repair_behavior="REPAIR",
                name="part",
                position=Position(10, 1, 2),
                orientation=EulerAngles(50, 2, 39),
                scale=0.5,
                units="MILLIMETERS",
                lock="FULLY_LOCKED",
            ),
        )

        [sent] = server.calls("POST")
        assert sent.body == {
            "file": SERVER_MODEL,
            "repair_behavior": "REPAIR",
            "name": "part",
            "position": {"x": 10, "y": 1, "z": 2},
            "orientation": {"x": 50, "y": 2, "z": 39},
            "scale": 0.5,
            "units": "MILLIMETERS",
            "lock": "FULLY_LOCKED",
        }
        assert model.id == "m-1"
        assert model.raw == MODEL_JSON


class TestIds:
    """Ids go into paths quoted, so an odd id cannot address another resource."""

    def test_an_id_with_a_slash_stays_one_path_segment(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        server.on("GET", "/scene/a%2F..%2Fb/", ok(scene_json("a/../b")))

        scene = client.get_scene("a/../b")

        assert [s.path for s in server.calls()] == ["/scene/a%2F..%2Fb/"]
        assert scene.id == "a/../b"

    def test_an_empty_id_is_refused_before_sending(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        with pytest.raises(ValueError, match="must not be empty"):
            client.get_scene("")
        assert server.calls() == []


class TestGetUser:
    """get_user says "nobody is logged in" with None rather than an error."""

    def test_a_404_means_no_user(self, server: ScriptedServer, client: PreFormClient) -> None:
        server.on("GET", "/user/", httpx.Response(404))

        assert client.get_user() is None


class TestASaveTooLongForAWindowsServer:
    """A save's path over 259 characters on a Windows server (a drive or a share) is refused
    before anything is sent, naming the file and the length; 259 is sent, and so is a longer
    POSIX path (no such limit there)."""

    SAVES: ClassVar[dict[str, Callable[[PreFormClient, Path], None]]] = {
        "save_form": lambda client, path: client.save_form("scene-1", path),
        "save_screenshot": lambda client, path: client.save_screenshot("scene-1", path),
        "save_fps_file": lambda client, path: client.save_fps_file("scene-1", path),
    }

    @staticmethod
    def _mapped_to(length: int, root: str) -> Callable[[Path], str]:
        def mapper(path: Path) -> str:
            stem = root + "d" * (length - len(root) - len(path.suffix))
            return stem + path.suffix
        return mapper

    @pytest.mark.parametrize("save", SAVES)
    @pytest.mark.parametrize("root", ["C:\\jobs\\", "\\\\nas\\share\\jobs\\"])
    def test_260_characters_are_refused_before_sending(
        self, save: str, root: str, server: ScriptedServer,
        make_client: Callable[..., PreFormClient],
    ) -> None:
        client = make_client(path_mapper=self._mapped_to(260, root), async_operations=False)
        local = Path("/out/.preform-staging/0123abcd/e2e-001.png")
        with pytest.raises(FileWriteError) as caught:
            self.SAVES[save](client, local)
        assert caught.value.path == local
        assert caught.value.reason.startswith("the server would save the ")
        assert "a path of 260 characters" in caught.value.reason
        assert caught.value.reason.endswith("; a server on Windows takes at most 259")
        assert caught.value.hint is not None and "shorter output folder" in caught.value.hint
        assert server.calls("POST") == []

    @pytest.mark.parametrize(("length", "root"), [(259, "C:\\jobs\\"), (4000, "/srv/jobs/")])
    def test_a_path_the_server_can_take_is_sent(
        self, length: int, root: str, server: ScriptedServer,
        make_client: Callable[..., PreFormClient],
    ) -> None:
        server.on("POST", "/scene/scene-1/save-form/", ok({}))
        client = make_client(path_mapper=self._mapped_to(length, root), async_operations=False)
        client.save_form("scene-1", Path("/out/e2e-001.form"))
        [sent] = server.calls("POST")
        assert len(sent.body["file"]) == length

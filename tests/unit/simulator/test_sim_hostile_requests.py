"""Hostile requests over real HTTP to the real engine: every answer a clear 4xx ErrorModel.

Session 27's sweep of the simulator's HTTP surface found these: saves that replaced a folder,
a named pipe or a device with a file (an atomic rename does that), a NUL in a save path
answered 500, a scale or position of 1e308 accepted (and every later read of the scene
failing), a layout whose spacing or model was huge enough to take seconds and gigabytes, and
unknown HTTP methods answered with the code of a server failure.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sim_server_support import WAIT_S
from structlog.testing import capture_logs

from preform_pipeline.geometry import write_stl
from preform_pipeline.simulator.meshops import box_triangles
from preform_pipeline.simulator.server import SimulatorServer
from tests.openapi_contract import local_api_contract

FORM4 = {"machine_type": "FORM-4-0", "material_code": "FLGPGR05", "print_setting": "DEFAULT",
         "layer_thickness_mm": 0.1}
SAVES = [("save-form", "job.form"), ("save-fps-file", "job.fps"),
         ("save-screenshot", "job.png")]


class Scene:
    """A real engine behind a real server, one Form 4 scene with ``models`` 10 mm cubes."""

    def __init__(self, client: httpx.Client, folder: Path, models: int) -> None:
        self.client = client
        self.cube = folder / "cube.stl"
        write_stl(self.cube, box_triangles((0.0, 0.0, 0.0), (10.0, 10.0, 10.0)))
        self.id = client.post("/scene/", json=FORM4).json()["id"]
        self.models = [self.post("import-model/", {"file": str(self.cube)}).json()["id"]
                       for _ in range(models)]

    def post(self, operation: str, body: dict[str, Any]) -> httpx.Response:
        return self.client.post(f"/scene/{self.id}/{operation}", json=body)

    def read(self) -> dict[str, Any]:
        answer = self.client.get(f"/scene/{self.id}/")
        assert answer.status_code == 200, answer.text
        scene: dict[str, Any] = answer.json()
        return scene


@pytest.fixture
def scene(engine_server: SimulatorServer, tmp_path: Path) -> Iterator[Scene]:
    with httpx.Client(base_url=engine_server.url, timeout=WAIT_S) as client:
        yield Scene(client, tmp_path, models=1)


def refused(response: httpx.Response, code: str) -> str:
    """The message of a 400 ErrorModel answer with ``code``."""
    assert response.status_code == 400, response.text
    body = response.json()
    local_api_contract().assert_valid(body, local_api_contract().component("ErrorModel"), "400")
    assert body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    return message


class TestSaveTargets:
    """A save replaces only a regular file, writes through a link, and refuses a NUL."""

    @pytest.mark.parametrize(("operation", "name"), SAVES)
    def test_a_save_onto_a_folder_is_refused_and_the_folder_kept(
        self, scene: Scene, tmp_path: Path, operation: str, name: str
    ) -> None:
        folder = tmp_path / name
        folder.mkdir()
        message = refused(scene.post(f"{operation}/", {"file": str(folder)}), "INVALID_PATH")
        assert message == (f"$.file: {str(folder)!r} is a folder, not a file; give the path of a "
                           "file to create or replace")
        assert folder.is_dir()

    def test_a_save_onto_a_socket_is_refused_and_the_socket_kept(  # POSIX: AF_UNIX
        self, scene: Scene, tmp_path: Path
    ) -> None:
        path = tmp_path / "job.form"
        with socket.socket(socket.AF_UNIX) as listening:
            listening.bind(str(path))
            message = refused(scene.post("save-form/", {"file": str(path)}), "INVALID_PATH")
            assert "is not a regular file, not a file" in message
            assert stat.S_ISSOCK(path.lstat().st_mode)

    @pytest.mark.parametrize(
        ("path", "hint"),
        [("job.form", ""), ("C:\\jobs\\job.form", " (a Windows path on a non-Windows simulator)")],
        ids=["relative", "Windows"],
    )
    def test_a_path_that_is_not_absolute_here_is_refused_by_its_field(  # POSIX simulator
        self, scene: Scene, path: str, hint: str
    ) -> None:
        message = refused(scene.post("save-form/", {"file": path}), "INVALID_PATH")
        assert message == (f"$.file: {path!r} is not an absolute path on the server{hint}; "
                           "send a full operating-system path")

    def test_an_import_into_an_unknown_scene_names_it(self, scene: Scene) -> None:
        answer = scene.client.post("/scene/no-such-scene/import-model/",
                                   json={"file": str(scene.cube)})
        assert refused(answer, "SCENE_NOT_FOUND") == "no scene with id 'no-such-scene'"

    def test_a_save_into_a_missing_folder_names_that_folder(
        self, scene: Scene, tmp_path: Path
    ) -> None:
        link = tmp_path / "latest.form"
        link.symlink_to(tmp_path / "gone" / "job.form")
        message = refused(scene.post("save-form/", {"file": str(link)}), "INVALID_PATH")
        assert message == (f"$.file: the folder {str(tmp_path / 'gone')!r} does not exist; "
                           "create it first")
        assert link.is_symlink()

    @pytest.mark.parametrize(("operation", "name"), SAVES)
    def test_a_save_onto_a_named_pipe_is_refused_and_the_pipe_kept(  # POSIX: os.mkfifo
        self, scene: Scene, tmp_path: Path, operation: str, name: str
    ) -> None:
        pipe = tmp_path / name
        os.mkfifo(pipe)
        before = sorted(tmp_path.iterdir())
        message = refused(scene.post(f"{operation}/", {"file": str(pipe)}), "INVALID_PATH")
        assert "is a named pipe, not a file" in message
        assert stat.S_ISFIFO(pipe.lstat().st_mode)
        assert sorted(tmp_path.iterdir()) == before  # no temporary file left beside it

    def test_a_save_through_a_link_writes_the_file_it_names(
        self, scene: Scene, tmp_path: Path
    ) -> None:
        target = tmp_path / "kept" / "job.form"
        target.parent.mkdir()
        target.write_bytes(b"an older job")
        link = tmp_path / "latest.form"
        link.symlink_to(target)
        assert scene.post("save-form/", {"file": str(link)}).status_code == 200
        assert link.is_symlink() and link.resolve() == target
        assert zipfile.is_zipfile(target)

    @pytest.mark.parametrize(("operation", "name"), SAVES)
    @pytest.mark.parametrize("letter", ["j", "é"], ids=["ASCII", "two-byte"])
    def test_a_name_of_250_bytes_is_saved_whole(
        self, scene: Scene, tmp_path: Path, operation: str, name: str, letter: str
    ) -> None:
        # The temporary beside it adds 38 bytes; the file system takes 255 for a name.
        suffix = name.split(".")[1]
        room = 250 - len(f".{suffix}")
        long_name = letter * (room // len(letter.encode())) + "x" * (room % len(letter.encode()))
        path = tmp_path / "saves" / f"{long_name}.{suffix}"
        assert len(os.fsencode(path.name)) == 250
        path.parent.mkdir()

        answer = scene.post(f"{operation}/", {"file": str(path)})

        assert answer.status_code == 200, answer.text
        assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left
        assert path.stat().st_size > 0

    def test_a_nul_in_a_save_path_is_an_invalid_path(
        self, scene: Scene, tmp_path: Path
    ) -> None:
        message = refused(
            scene.post("save-form/", {"file": str(tmp_path / "a\0b.form")}), "INVALID_PATH"
        )
        assert "holds a NUL character" in message


class TestModelsBeyondReach:
    """A scale or position past a kilometre is refused, and the scene reads as before."""

    @pytest.mark.parametrize(
        "change",
        [{"scale": 1e308}, {"position": {"x": 0, "y": 0, "z": 1e308}},
         {"position": {"x": 1_000_001, "y": 0, "z": 0}}],
        ids=["scale", "height", "a kilometre away"],
    )
    @pytest.mark.filterwarnings("error::RuntimeWarning")  # nothing printed on the console
    def test_an_update_that_would_place_the_model_there_is_400(
        self, scene: Scene, change: dict[str, Any]
    ) -> None:
        before = scene.read()
        message = refused(
            scene.client.post(f"/scene/{scene.id}/models/{scene.models[0]}/", json=change),
            "INVALID_BODY",
        )
        assert message.startswith("$: the model would reach ")
        assert message.endswith(" mm from the platform's centre; keep its scale and position "
                                "within 1,000,000 mm")
        assert scene.read() == before

    def test_an_import_that_would_place_the_model_there_is_400(self, scene: Scene) -> None:
        before = scene.read()
        refused(scene.post("import-model/", {"file": str(scene.cube), "scale": 1e308}),
                "INVALID_BODY")
        assert scene.read() == before

    def test_an_import_of_a_missing_file_names_the_field(
        self, scene: Scene, tmp_path: Path
    ) -> None:
        missing = str(tmp_path / "gone.stl")
        message = refused(scene.post("import-model/", {"file": missing}), "FILE_NOT_FOUND")
        assert message == f"$.file: no file at {missing!r}"

    def test_a_model_just_inside_the_reach_is_placed(self, scene: Scene) -> None:
        answer = scene.client.post(f"/scene/{scene.id}/models/{scene.models[0]}/",
                                   json={"position": {"x": 999_990, "y": 0, "z": 0}})
        assert answer.status_code == 200, answer.text
        assert scene.read()["models"][0]["position"]["x"] == 999_990

    @pytest.mark.parametrize(
        "change", [{"orientation": {"x": 0, "y": 0, "z": 45}}, {"units": "INCHES"}],
        ids=["turned", "in inches"],
    )
    def test_turning_or_resizing_a_model_at_the_edge_past_it_is_400(
        self, scene: Scene, change: dict[str, Any]
    ) -> None:
        one = f"/scene/{scene.id}/models/{scene.models[0]}/"
        edge = scene.client.post(one, json={"position": {"x": 999_995, "y": 0, "z": 0}})
        assert edge.status_code == 200, edge.text  # its 10 mm reach 1,000,000 mm: inside
        before = scene.read()
        refused(scene.client.post(one, json=change), "INVALID_BODY")
        assert scene.read() == before

    @pytest.mark.parametrize("scale", [0, -1])
    def test_a_scale_that_is_not_positive_is_400(self, scene: Scene, scale: int) -> None:
        message = refused(scene.client.post(f"/scene/{scene.id}/models/{scene.models[0]}/",
                                            json={"scale": scale}), "INVALID_BODY")
        assert message == f"$.scale: {scale} must be greater than 0"

    def test_a_rename_keeps_the_supports_and_a_rescale_drops_them(self, scene: Scene) -> None:
        one = f"/scene/{scene.id}/models/{scene.models[0]}/"
        assert scene.post("auto-support/", {}).status_code == 200
        scene.client.post(one, json={"name": "renamed"})
        kept = scene.read()["models"][0]["has_supports"]
        scene.client.post(one, json={"scale": 1.5})
        assert (kept, scene.read()["models"][0]["has_supports"]) == (True, False)


class TestLayoutOfHugeThings:
    """A huge spacing or a huge model is laid out (or refused) without gigabytes."""

    @pytest.mark.parametrize(("models", "status"), [(1, 200), (2, 400)])
    def test_a_spacing_of_1e308_lays_out_one_model_and_refuses_two(
        self, engine_server: SimulatorServer, tmp_path: Path, models: int, status: int
    ) -> None:
        with httpx.Client(base_url=engine_server.url, timeout=WAIT_S) as client:
            scene = Scene(client, tmp_path, models)
            answer = scene.post("auto-layout/", {"model_spacing_mm": 1e308})
        assert answer.status_code == status, answer.text
        if status == 400:
            assert "1 of 2 models does not fit" in refused(answer, "MODELS_DO_NOT_FIT")

    def test_a_model_that_fills_the_platform_to_the_millimetre_is_laid_out(
        self, engine_server: SimulatorServer, tmp_path: Path
    ) -> None:
        # Form 4: 200 x 125 mm; with the default 2 mm spacing the box's shadow fills it.
        box = tmp_path / "plate.stl"
        write_stl(box, box_triangles((0.0, 0.0, 0.0), (198.0, 123.0, 5.0)))
        with httpx.Client(base_url=engine_server.url, timeout=WAIT_S) as client:
            scene = Scene(client, tmp_path, models=0)
            scene.post("import-model/", {"file": str(box)})
            answer = scene.post("auto-layout/", {})
        assert answer.status_code == 200, answer.text

    def test_a_model_a_kilometre_long_is_refused_in_little_memory(
        self, scene: Scene
    ) -> None:
        scene.client.post(f"/scene/{scene.id}/models/{scene.models[0]}/",
                          json={"scale": 100_000})  # 1,000 m: inside the reach
        tracemalloc.start()
        try:
            answer = scene.post("auto-layout/", {})
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        refused(answer, "MODELS_DO_NOT_FIT")
        assert peak < 64 * 1024 * 1024


class TestRefusedBeforeDispatch:
    """What http.server refuses itself gets an ErrorModel whose code says why, and a log line."""

    @pytest.mark.parametrize(
        ("line", "status", "code", "message", "logged"),
        [
            (b"TRACE /x/ HTTP/1.1", 501, "NOT_IMPLEMENTED", "Unsupported method ('TRACE')",
             ("TRACE", "/x/")),
            (b"get / HTTP/1.1", 501, "NOT_IMPLEMENTED", "Unsupported method ('get')",
             ("get", "/")),
            (b"GET / HTTP/2.0", 505, "NOT_IMPLEMENTED", "Invalid HTTP version (2.0)",
             (None, None)),  # http.server never parsed the line
            (b"GET / nonsense HTTP/1.1", 400, "BAD_REQUEST",
             "Bad request syntax ('GET / nonsense HTTP/1.1')", (None, None)),
        ],
        ids=["TRACE", "lower-case get", "HTTP/2.0", "a malformed line"],
    )
    def test_the_answer_and_the_logged_exchange(
        self, engine_server: SimulatorServer, line: bytes, status: int, code: str, message: str,
        logged: tuple[str | None, str | None],
    ) -> None:
        with capture_logs() as logs, socket.create_connection(
            (engine_server.host, engine_server.port), timeout=WAIT_S
        ) as sock:
            sock.sendall(line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        if data.startswith(b"HTTP/1.1 "):
            head, _, body = data.partition(b"\r\n\r\n")
            assert int(head.split(b" ", 2)[1]) == status
        else:  # http.server answers a version it cannot speak with the body alone
            body = data
        assert json.loads(body) == {"error": {"code": code, "message": message}}
        exchanges = [e for e in logs if e["event"] == "http_exchange"]
        assert [(e["method"], e["path"], e["status"]) for e in exchanges] == [
            (*logged, status)
        ]


class TestSelectionsOfNoModelIds:
    """A ``models`` selection that lists no model ids is refused where it is read, and a
    request that reads none is answered as ever (session 44's fuzzing: a 500 before)."""

    WRONG = [{"model_id": "x"}], [["x"]], [1], "some", {"ids": ["x"]}

    @pytest.mark.parametrize("models", WRONG, ids=["objects", "lists", "numbers", "a word",
                                                   "an object"])
    def test_a_scene_read_with_such_a_body_is_answered(
        self, scene: Scene, models: object
    ) -> None:
        answer = scene.client.request("GET", f"/scene/{scene.id}/", json={"models": models})
        assert answer.status_code == 200, answer.text
        assert [m["id"] for m in answer.json()["models"]] == scene.models

    @pytest.mark.parametrize("models", WRONG, ids=["objects", "lists", "numbers", "a word",
                                                   "an object"])
    def test_an_orientation_of_such_a_selection_is_refused_at_models(
        self, scene: Scene, models: object
    ) -> None:
        message = refused(scene.post("auto-orient/", {"models": models}), "INVALID_BODY")
        assert message == '$.models: expected "ALL" or an array of model id strings'

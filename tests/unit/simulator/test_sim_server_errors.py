"""Malformed requests and failing operations get ErrorModel answers; the server keeps going."""

from __future__ import annotations

import json
import socket
import sys
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sim_server_support import WAIT_S, RecordingEngine
from structlog.testing import capture_logs

from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.formfile import FORM_FORMAT, FORM_VERSION
from preform_pipeline.simulator.protocol import SimError
from preform_pipeline.simulator.server import SimulatorServer
from tests.hostile_corpus import zip_bomb
from tests.openapi_contract import local_api_contract


def assert_error_model(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    local_api_contract().assert_valid(
        body, local_api_contract().component("ErrorModel"), f"{status} answer"
    )
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body


def raw_exchange(server: SimulatorServer, request: bytes) -> tuple[int, dict[str, Any]]:
    """Send bytes as they are; return the status and the JSON body of the answer."""
    with socket.create_connection((server.host, server.port), timeout=WAIT_S) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


class TestMalformedRequests:
    """A request the server cannot understand is answered 400 with an ErrorModel body."""

    def test_invalid_json_is_400(self, sim_client: httpx.Client) -> None:
        response = sim_client.post(
            "/scene/", content=b'{"machine_type": ', headers={"Content-Type": "application/json"}
        )
        assert_error_model(response, 400, "INVALID_JSON")

    def test_bytes_that_are_not_utf8_are_400(self, sim_client: httpx.Client) -> None:
        response = sim_client.post("/scene/", content=b'{"a": "\xff"}')
        assert_error_model(response, 400, "INVALID_JSON")

    @pytest.mark.parametrize("body", [[1, 2], "text", 3, None], ids=repr)
    def test_a_body_that_is_not_an_object_is_400(
        self, body: object, sim_client: httpx.Client, sim_engine: RecordingEngine
    ) -> None:
        response = sim_client.post("/scene/", content=json.dumps(body).encode())
        assert_error_model(response, 400, "INVALID_BODY")
        assert sim_engine.calls == []

    def test_a_number_of_more_digits_than_python_converts_is_400(
        self, sim_client: httpx.Client, sim_engine: RecordingEngine
    ) -> None:
        digits = "9" * (sys.get_int_max_str_digits() + 1)
        response = sim_client.post("/scene/", content=f'{{"layer_thickness_mm": {digits}}}')
        body = assert_error_model(response, 400, "INVALID_JSON")
        assert "digits" in body["error"]["message"]
        assert sim_engine.calls == []

    def test_a_missing_required_body_is_400(
        self, sim_client: httpx.Client, sim_engine: RecordingEngine
    ) -> None:
        assert_error_model(sim_client.post("/scene/s/import-model/"), 400, "MISSING_BODY")
        assert sim_engine.calls == []

    def test_an_async_flag_that_is_not_a_boolean_is_400(self, sim_client: httpx.Client) -> None:
        response = sim_client.post("/scene/s/auto-support/?async=maybe", json={"models": "ALL"})
        assert_error_model(response, 400, "INVALID_QUERY_PARAMETER")

    def test_a_content_length_that_is_not_a_number_is_400_and_closes(
        self, sim_server: SimulatorServer
    ) -> None:
        status, body = raw_exchange(
            sim_server, b"POST /scene/ HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n{}"
        )
        assert (status, body["error"]["code"]) == (400, "BAD_REQUEST")

    def test_a_malformed_request_line_gets_json_not_html(self, sim_server: SimulatorServer) -> None:
        status, body = raw_exchange(sim_server, b"GET / too many words HTTP/1.1\r\n\r\n")
        assert status == 400
        assert set(body["error"]) == {"code", "message"}

    def test_a_chunked_body_is_read(
        self, sim_server: SimulatorServer, sim_engine: RecordingEngine
    ) -> None:
        payload = b'{"machine_type": "FORM-4-0"}'
        request = (
            b"POST /scene/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            + f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\n\r\n"
        )
        status, _ = raw_exchange(sim_server, request)
        assert status == 200
        assert sim_engine.last_call().body == {"machine_type": "FORM-4-0"}


class TestPathsTheEngineRefuses:
    """A model path with a NUL byte is refused as a path, by the real engine, not a 500."""

    @pytest.mark.parametrize("path", ["x\0y.stl", "/tmp/x\0y.stl"], ids=["relative", "absolute"])
    def test_an_import_of_such_a_path_is_400(
        self, path: str, tmp_path: Path, sim_server_factory: Callable[..., SimulatorServer]
    ) -> None:
        engine = SimEngine(work_dir=tmp_path / "work", fleet_dir=tmp_path / "fleet")
        server = sim_server_factory(engine=engine)
        with httpx.Client(base_url=server.url, timeout=WAIT_S) as client:
            scene = client.post("/scene/", json={
                "machine_type": "FORM-4-0", "material_code": "FLGPGR05",
                "layer_thickness_mm": 0.1, "print_setting": "DEFAULT"}).json()["id"]
            response = client.post(f"/scene/{scene}/import-model/", json={"file": path})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] in ("INVALID_PATH", "FILE_NOT_FOUND")
        server.check()


class TestFormFilesTheEngineRefuses:
    """A .form that is a zip bomb is refused before it is inflated, with little memory."""

    @pytest.mark.parametrize("member", ["manifest.json", "meshes/0.stl"])
    def test_a_bomb_in_a_form_file_is_400(
        self, member: str, tmp_path: Path, sim_server_factory: Callable[..., SimulatorServer]
    ) -> None:
        form = tmp_path / "bomb.form"
        form.write_bytes(zip_bomb(member))
        if member != "manifest.json":  # a simulator manifest naming the bomb as a mesh
            with zipfile.ZipFile(form, "a") as archive:
                archive.writestr("manifest.json", json.dumps({
                    "format": FORM_FORMAT, "version": FORM_VERSION,
                    "scene": {"scene_settings": {"machine_type": "FORM-4-0",
                              "material_code": "FLGPGR05", "layer_thickness_mm": 0.1}},
                    "models": [{"id": "m", "mesh": member}]}))
        engine = SimEngine(work_dir=tmp_path / "work", fleet_dir=tmp_path / "fleet")
        server = sim_server_factory(engine=engine)
        tracemalloc.start()
        try:
            with httpx.Client(base_url=server.url, timeout=WAIT_S) as client:
                response = client.post("/load-form/", json={"file": str(form)})
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        body = assert_error_model(response, 400, "INVALID_FORM_FILE")
        assert f"{member} would inflate to 1536.0 MiB" in body["error"]["message"]
        assert peak < 64 * 1024 * 1024
        server.check()


class TestUnknownRoutes:
    """Unknown paths are 404 and wrong methods 405, both as ErrorModel bodies."""

    def test_an_unknown_path_is_404(self, sim_client: httpx.Client) -> None:
        assert_error_model(sim_client.get("/no/such/thing/"), 404, "NOT_FOUND")

    def test_a_deprecated_path_with_another_method_is_405(self, sim_client: httpx.Client) -> None:
        response = sim_client.get("/scene/import-model/")
        assert_error_model(response, 405, "METHOD_NOT_ALLOWED")
        assert response.headers["allow"] == "POST"

    def test_a_wrong_method_is_405_with_allow_header(self, sim_client: httpx.Client) -> None:
        response = sim_client.patch("/scene/s1/")
        assert_error_model(response, 405, "METHOD_NOT_ALLOWED")
        assert response.headers["allow"] == "DELETE, GET, PUT"

    def test_the_connection_stays_usable_after_an_error(self, sim_client: httpx.Client) -> None:
        sim_client.post("/scene/", content=b"{oops", headers={"Connection": "keep-alive"})
        assert sim_client.get("/").status_code == 200


class TestEngineFailures:
    """Engine errors keep their status; anything unexpected is 500 and the server survives."""

    def test_a_sim_error_keeps_its_status_and_code(
        self, sim_client: httpx.Client, sim_engine: RecordingEngine
    ) -> None:
        sim_engine.errors["get_scene"] = SimError(404, "SCENE_NOT_FOUND", "no scene s9")
        body = assert_error_model(sim_client.get("/scene/s9/"), 404, "SCENE_NOT_FOUND")
        assert body["error"]["message"] == "no scene s9"

    def test_an_unexpected_exception_is_500_internal_error_and_the_server_lives(
        self, sim_server: SimulatorServer, sim_client: httpx.Client, sim_engine: RecordingEngine
    ) -> None:
        sim_engine.errors["auto_layout"] = ZeroDivisionError("layout divided by zero")
        with capture_logs() as logs:
            response = sim_client.post("/scene/s/auto-layout/", json={"models": "ALL"})
        body = assert_error_model(response, 500, "INTERNAL_ERROR")
        assert "ZeroDivisionError" in body["error"]["message"]
        assert "Traceback" not in response.text
        assert sim_client.get("/").status_code == 200
        logged = [e for e in logs if e["event"] == "internal_error"]
        assert logged and logged[0]["operation"] == "auto_layout"
        assert logged[0]["exc_info"][0] is ZeroDivisionError

    def test_check_reraises_the_server_side_failure(
        self, sim_server: SimulatorServer, sim_client: httpx.Client, sim_engine: RecordingEngine
    ) -> None:
        sim_engine.errors["get_scene"] = KeyError("lost")
        sim_client.get("/scene/s/")
        with pytest.raises(KeyError, match="lost"):
            sim_server.check()

    def test_check_passes_when_nothing_went_wrong(
        self, sim_server: SimulatorServer, sim_client: httpx.Client
    ) -> None:
        sim_client.get("/")
        sim_client.get("/missing/")
        sim_server.check()

    def test_an_answer_json_cannot_express_is_500(
        self, sim_client: httpx.Client, sim_engine: RecordingEngine
    ) -> None:
        sim_engine.answers["get_scene"] = {"when": object()}
        assert_error_model(sim_client.get("/scene/s/"), 500, "INTERNAL_ERROR")


class TestExchangeLog:
    """Every exchange is one structured log event with method, path, status and time."""

    def test_each_request_logs_one_http_exchange_event(self, sim_client: httpx.Client) -> None:
        with capture_logs() as logs:
            sim_client.get("/")
            sim_client.get("/missing/")
        events = [e for e in logs if e["event"] == "http_exchange"]
        assert [(e["method"], e["path"], e["status"]) for e in events] == [
            ("GET", "/", 200),
            ("GET", "/missing/", 404),
        ]
        assert all(e["elapsed_ms"] >= 0 for e in events)

    def test_the_event_and_the_record_exist_before_the_answer_is_sent(
        self, sim_server: SimulatorServer, sim_client: httpx.Client, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # A client may stop listening for logs the moment its answer arrives; whatever the
        # server logs or records after sending can be missed. Look at the moment of sending.
        seen_at_send: list[tuple[int, int]] = []
        send = sim_server._send

        def observing_send(*args: Any) -> None:
            logged = sum(1 for e in logs if e["event"] == "http_exchange")
            seen_at_send.append((logged, len(sim_server.exchanges)))
            send(*args)

        monkeypatch.setattr(sim_server, "_send", observing_send)
        with capture_logs() as logs:
            sim_client.get("/")
            sim_client.get("/missing/")

        assert seen_at_send == [(1, 1), (2, 2)]

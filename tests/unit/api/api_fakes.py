"""Test doubles for the API client tests: a scripted Local API behind MockTransport, a clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = [
    "BASE_URL",
    "ScriptedServer",
    "Sent",
    "accepted",
    "error",
    "ok",
    "op_status",
    "scene_json",
]

BASE_URL = "http://preform.test:44388"

Answer = httpx.Response | Callable[[httpx.Request], httpx.Response] | BaseException


@dataclass(frozen=True)
class Sent:
    """One request the client sent, decoded."""

    method: str
    path: str
    params: dict[str, str]
    body: Any


class ScriptedServer:
    """Answers each (method, path) from a queue of scripted answers; the last one repeats.

    ``GET /`` answers the configured API version unless a test scripts it. A request nobody
    scripted is answered 404 with an ErrorModel naming it, so a wrong path fails loudly.
    """

    def __init__(self, version: str = "0.9.12") -> None:
        self.version = version
        self.sent: list[Sent] = []
        self._answers: dict[tuple[str, str], list[Answer]] = {}

    def on(self, method: str, path: str, *answers: Answer) -> ScriptedServer:
        self._answers[(method.upper(), path)] = list(answers)
        return self

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        # The raw path, as sent: ids must arrive quoted exactly as the client encoded them.
        raw_path = request.url.raw_path.decode().split("?", 1)[0]
        sent = Sent(request.method, raw_path, dict(request.url.params), body)
        self.sent.append(sent)
        queue = self._answers.get((sent.method, sent.path))
        if queue is None:
            if (sent.method, sent.path) == ("GET", "/"):
                return httpx.Response(200, json={"version": self.version})
            return httpx.Response(
                404,
                json={"error": {"code": "NOT_SCRIPTED", "message": f"{sent.method} {sent.path}"}},
            )
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            return answer(request)
        return answer

    def calls(self, method: str | None = None, path: str | None = None) -> list[Sent]:
        """Requests sent, without the version check, optionally filtered."""
        return [
            s
            for s in self.sent
            if s.path != "/"
            and (method is None or s.method == method)
            and (path is None or s.path == path)
        ]

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


def ok(body: Any = None, status: int = 200) -> httpx.Response:
    return httpx.Response(status) if body is None else httpx.Response(status, json=body)


def accepted(operation_id: str) -> httpx.Response:
    return httpx.Response(202, json={"operationId": operation_id})


def op_status(
    operation_id: str, status: str, progress: float | None = None, result: Any = None
) -> httpx.Response:
    body: dict[str, Any] = {"id": operation_id, "status": status}
    if progress is not None:
        body["progress"] = progress
    if result is not None:
        body["result"] = result
    return httpx.Response(200, json=body)


def error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}})


def scene_json(scene_id: str = "scene-1", model_ids: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "id": scene_id,
        "models": [{"id": mid, "name": f"part-{mid}"} for mid in model_ids],
        "scene_settings": {
            "machine_type": "FORM-4-0",
            "material_code": "FLGPBK05",
            "print_setting": "DEFAULT",
            "layer_thickness_mm": 0.05,
        },
        "material_usage": {"volume_ml": 12.5, "unsupported_volume_ml": 10.0},
        "layer_count": 400,
    }

"""The simulator's route table: HTTP method + Local API path template -> operation id.

Every operation of the contract is served. The deprecated ones without a scene id
(``/scene/auto-layout/`` and friends) act, as the contract says, on the most recently created
scene: they reach the engine as the current operation without a ``scene_id``, which the engine
reads that way. Formlabs' own example scripts still call them; the pipeline never does, since a
pool of servers must name its scene. Operation ids are the contract's ``operationId`` in
snake_case (``importModel`` -> ``import_model``), the names the engine dispatches on.

Paths match with or without their trailing slash. Where a literal segment and a ``{param}``
segment could both match (``DELETE /scene/default/`` versus ``DELETE /scene/{scene_id}/``), the
route with more literal segments wins, so ``default`` reaches the operations made for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

__all__ = [
    "DEPRECATED_ROUTES",
    "ENGINE_OPERATION_IDS",
    "GET_ALL_OPERATIONS",
    "GET_API_VERSION",
    "GET_OPERATION",
    "OPERATION_IDS",
    "ROUTES",
    "Route",
    "RouteMatch",
    "Router",
    "RoutingError",
    "SERVER_OPERATION_IDS",
    "snake_case",
]

#: Answered by the server itself from its operation registry, never by the engine.
GET_ALL_OPERATIONS = "get_all_operations"
GET_OPERATION = "get_operation"
SERVER_OPERATION_IDS = frozenset({GET_ALL_OPERATIONS, GET_OPERATION})

#: The version probe; fault injection spares it so a health check can tell "alive" apart.
GET_API_VERSION = "get_api_version"

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake_case(operation_id: str) -> str:
    """``getPrintValidation`` -> ``get_print_validation`` (the contract's ids are camelCase)."""
    return _CAMEL_BOUNDARY.sub("_", operation_id).lower()


@dataclass(frozen=True)
class Route:
    """One served operation: where it lives and what the server must check before dispatch."""

    method: str
    template: str
    operation_id: str
    #: The contract requires a JSON body; a request without one is answered 400 up front.
    body_required: bool = False
    #: Boolean query parameters (besides ``async``), passed on to the engine in ``params`` as
    #: ``"true"`` or ``"false"``; the server refuses any other value, as it does for ``async``.
    flags: tuple[str, ...] = ()
    #: The contract gives this operation an asynchronous answer (an ``async`` parameter or a
    #: 202). Only then does ``?async=true`` run it in the background; elsewhere ``async`` is a
    #: parameter the operation does not take and is ignored, so no answer is a 202 the
    #: contract does not list (``POST /scene/?async=true`` still creates the scene, 200).
    runs_async: bool = False
    #: A request without a body is read as ``{}``: the deprecated operations take no body in
    #: the contract, and where every option of the current operation is optional, that is a
    #: request for the defaults (Formlabs' generated client sends them bodiless).
    empty_body: bool = False
    segments: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", _split(self.template))

    @property
    def literal_count(self) -> int:
        return sum(1 for s in self.segments if not _is_param(s))

    def match(self, segments: tuple[str, ...]) -> dict[str, str] | None:
        """Path parameters if ``segments`` fit this template, else ``None``."""
        if len(segments) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for pattern, actual in zip(self.segments, segments, strict=True):
            if _is_param(pattern):
                if not actual:
                    return None
                params[pattern[1:-1]] = unquote(actual)
            elif pattern != actual:
                return None
        return params


def _split(path: str) -> tuple[str, ...]:
    stripped = path.strip("/")
    return tuple(stripped.split("/")) if stripped else ()


def _is_param(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


# Facts from the Local API contract (0.9.12): method, path, operationId, required body.
ROUTES: tuple[Route, ...] = (
    Route("GET", "/", "get_api_version"),
    Route("POST", "/login/", "login", body_required=True),
    Route("POST", "/logout/", "logout"),
    Route("GET", "/user/", "get_user"),
    Route("POST", "/scene/", "create_scene", body_required=True),
    Route("POST", "/scene/default/", "create_default_scene", body_required=True),
    Route("DELETE", "/scene/default/", "delete_default_scene"),
    Route("GET", "/scenes/", "get_all_scenes"),
    Route("GET", "/scene/{scene_id}/", "get_scene"),
    Route("PUT", "/scene/{scene_id}/", "update_scene", body_required=True),
    Route("DELETE", "/scene/{scene_id}/", "delete_scene"),
    Route("POST", "/load-form/", "load_form_file", body_required=True, runs_async=True),
    Route(
        "POST", "/scene/{scene_id}/save-form/", "save_form_file",
        body_required=True, runs_async=True,
    ),
    Route(
        "POST", "/scene/{scene_id}/save-screenshot/", "save_screenshot",
        body_required=True, runs_async=True,
    ),
    Route("POST", "/scene/{scene_id}/save-fps-file/", "save_fps_file", body_required=True),
    Route("GET", "/scene/{scene_id}/models/{id}/", "get_model"),
    Route("POST", "/scene/{scene_id}/models/{id}/", "update_model", body_required=True),
    Route("DELETE", "/scene/{scene_id}/models/{id}/", "delete_model"),
    Route(
        "POST", "/scene/{scene_id}/models/{id}/duplicate/", "duplicate_model", body_required=True
    ),
    Route("POST", "/scene/{scene_id}/models/{id}/replace/", "replace_model", body_required=True),
    Route(
        "POST", "/scene/{scene_id}/import-model/", "import_model",
        body_required=True, runs_async=True,
    ),
    Route(
        "POST", "/scene/{scene_id}/scan-to-model/", "scan_to_model",
        body_required=True, runs_async=True,
    ),
    Route("POST", "/scene/{scene_id}/print/", "print", body_required=True, runs_async=True),
    Route(
        "POST", "/scene/{scene_id}/auto-orient/", "auto_orient",
        body_required=True, runs_async=True,
    ),
    Route(
        "POST", "/scene/{scene_id}/auto-support/", "auto_support",
        body_required=True, runs_async=True,
    ),
    Route(
        "POST", "/scene/{scene_id}/auto-layout/", "auto_layout",
        body_required=True, runs_async=True,
    ),
    Route("POST", "/scene/{scene_id}/auto-pack/", "auto_pack", body_required=True, runs_async=True),
    Route("POST", "/scene/pack-and-cage/", "pack_and_cage", body_required=True),
    Route("GET", "/scene/{scene_id}/print-validation/", "get_print_validation", runs_async=True),
    Route("POST", "/scene/{scene_id}/hollow/", "hollow_model", body_required=True, runs_async=True),
    Route("POST", "/scene/{scene_id}/label/", "label_part", body_required=True, runs_async=True),
    Route("POST", "/scene/{scene_id}/estimate-print-time/", "estimate_print_time", runs_async=True),
    Route(
        "POST", "/scene/{scene_id}/add-drain-holes/", "add_drain_holes",
        body_required=True, runs_async=True,
    ),
    Route("POST", "/scene/{scene_id}/interferences/", "get_scene_interferences"),
    Route("GET", "/devices/", "get_devices", flags=("can_print",)),
    Route("GET", "/devices/{id}/", "get_device"),
    Route("POST", "/discover-devices/", "discover_devices", body_required=True, runs_async=True),
    Route("POST", "/upload-firmware/", "upload_firmware", body_required=True, runs_async=True),
    Route("GET", "/list-materials/", "list_materials"),
    Route("GET", "/operations/", GET_ALL_OPERATIONS),
    Route("GET", "/operations/{id}/", GET_OPERATION),
)

#: The contract's deprecated operations: its current operations without a scene id, which act
#: on the most recently created scene (the engine's reading of a missing ``scene_id``). Their
#: bodies are the current operations' bodies: required where the current operation needs a
#: field (a file, a printer), read as ``{}`` when absent where every option is optional.
DEPRECATED_ROUTES: tuple[Route, ...] = (
    Route("GET", "/scene/", "get_scene"),
    Route("PUT", "/scene/", "update_scene", body_required=True),
    Route("POST", "/scene/save-form/", "save_form_file", body_required=True, runs_async=True),
    Route(
        "POST", "/scene/save-screenshot/", "save_screenshot",
        body_required=True, runs_async=True,
    ),
    Route("POST", "/scene/save-fps-file/", "save_fps_file", body_required=True),
    Route("GET", "/scene/models/{id}/", "get_model"),
    Route("POST", "/scene/models/{id}/", "update_model", empty_body=True),
    Route("DELETE", "/scene/models/{id}/", "delete_model"),
    Route("POST", "/scene/models/{id}/duplicate/", "duplicate_model", empty_body=True),
    Route("POST", "/scene/models/{id}/replace/", "replace_model", body_required=True),
    Route("POST", "/scene/import-model/", "import_model", body_required=True, runs_async=True),
    Route("POST", "/scene/scan-to-model/", "scan_to_model", body_required=True, runs_async=True),
    Route("POST", "/scene/print/", "print", body_required=True, runs_async=True),
    Route("POST", "/scene/auto-orient/", "auto_orient", empty_body=True, runs_async=True),
    Route("POST", "/scene/auto-support/", "auto_support", empty_body=True, runs_async=True),
    Route("POST", "/scene/auto-layout/", "auto_layout", empty_body=True, runs_async=True),
    Route("POST", "/scene/auto-pack/", "auto_pack", empty_body=True, runs_async=True),
    Route("GET", "/scene/print-validation/", "get_print_validation", runs_async=True),
    Route("POST", "/scene/hollow/", "hollow_model", empty_body=True, runs_async=True),
    Route("POST", "/scene/label/", "label_part", body_required=True, runs_async=True),
    Route("POST", "/scene/estimate-print-time/", "estimate_print_time", runs_async=True),
    Route("POST", "/scene/add-drain-holes/", "add_drain_holes", body_required=True),
    Route("POST", "/scene/interferences/", "get_scene_interferences"),
)

#: Every operation id the simulator serves, in route-table order.
OPERATION_IDS: tuple[str, ...] = tuple(dict.fromkeys(r.operation_id for r in ROUTES))

#: The operation ids the engine answers (everything but the operations endpoints).
ENGINE_OPERATION_IDS: tuple[str, ...] = tuple(
    op for op in OPERATION_IDS if op not in SERVER_OPERATION_IDS
)


class RoutingError(Exception):
    """No route for a request: ``status`` is 404 (unknown path) or 405 (wrong method)."""

    def __init__(self, status: int, message: str, allowed: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.allowed = allowed


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    params: dict[str, str]

    @property
    def operation_id(self) -> str:
        return self.route.operation_id


class Router:
    """Finds the route for a method and a path (no query string)."""

    def __init__(
        self,
        routes: tuple[Route, ...] = ROUTES,
        deprecated: tuple[Route, ...] = DEPRECATED_ROUTES,
    ) -> None:
        # Most literal segments first: literal routes shadow templates that also match.
        self._routes = tuple(sorted(routes, key=lambda r: -r.literal_count))
        self._deprecated = deprecated

    def resolve(self, method: str, path: str) -> RouteMatch:
        segments = _split(path)
        allowed: set[str] = set()
        # A deprecated path shadows the scene-id templates it would also fit: GET
        # /scene/print-validation/ is that operation, never get_scene of a scene so named.
        shadowed = 0
        for old in self._deprecated:
            params = old.match(segments)
            if params is None:
                continue
            if old.method == method.upper():
                return RouteMatch(old, params)
            allowed.add(old.method)
            shadowed = max(shadowed, old.literal_count)
        for route in self._routes:
            params = route.match(segments)
            if params is None or route.literal_count < shadowed:
                continue
            if route.method == method.upper():
                return RouteMatch(route, params)
            allowed.add(route.method)
        if allowed:
            methods = tuple(sorted(allowed))
            raise RoutingError(
                405,
                f"{method.upper()} is not allowed on {path} (allowed: {', '.join(methods)})",
                methods,
            )
        raise RoutingError(
            404,
            f"no operation at {path}; the simulator serves the Local API operations",
        )

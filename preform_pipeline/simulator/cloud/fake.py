"""An in-process fake of the Web API, for code that uses the Web API client.

:class:`FakeWebApi` answers through ``httpx.MockTransport``: it issues and checks tokens,
paginates lists, applies the list filters exactly as the Dashboard simulator does (both read
them through :mod:`.filtering`), records every request, and answers with scripted failures
(429, 401, 5xx) on demand. Group changes (create, update, delete, members, bulk-add printers)
apply the Dashboard simulator's own rules (:mod:`.groups`) to ``groups``. The ``sample_*``
functions build records shaped as the Web API's answers (through :mod:`.records`, like the
simulator), overridable per field.

This is not the Dashboard simulator (a real HTTP server); it exercises the client in-process.
Tests import it from :mod:`preform_pipeline.simulator.cloud.testing`.
"""

from __future__ import annotations

import itertools
import urllib.parse
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from . import groups as group_rules
from . import records
from .auth import AuthFailure, check_revocation
from .filtering import BadFilter, Query, filter_events, filter_prints
from .server import API_PREFIX

__all__ = [
    "DEFAULT_FAKE_BASE_URL",
    "DEFAULT_FAKE_PER_PAGE",
    "FakeWebApi",
    "ScriptedAnswer",
    "sample_cartridge",
    "sample_event",
    "sample_group",
    "sample_print_run",
    "sample_printer",
    "sample_queue_item",
    "sample_tank",
]

DEFAULT_FAKE_BASE_URL = "https://api.formlabs.test"
#: Page size the fake uses when a request names none (the real default is not documented).
DEFAULT_FAKE_PER_PAGE = 20
_TOKEN_PATH = API_PREFIX + "/o/token/"
_REVOKE_PATH = API_PREFIX + "/o/revoke_token/"
_EPOCH = datetime(2025, 1, 6, 8, 0, tzinfo=timezone.utc)
_UNAUTHENTICATED = {"detail": "Authentication credentials were not provided."}
_INVALID_GRANT = {"error": "invalid_grant", "error_description": "Invalid credentials given."}


@dataclass
class ScriptedAnswer:
    """An answer the fake gives instead of the real one, to the next matching request."""

    status: int
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    #: Only requests to this path match (any path when None).
    path: str | None = None


class FakeWebApi:
    """An in-memory Web API account answering through ``httpx.MockTransport``.

    Fill ``printers``, ``prints``, ``tanks``, ``cartridges``, ``events``, ``groups`` and
    ``queues`` (group id -> items) with records (see the ``sample_*`` functions), pass
    :meth:`transport` to the client, and inspect ``requests`` afterwards.
    """

    def __init__(
        self,
        *,
        client_id: str = "test-client-id",
        client_secret: str = "test-client-secret",
        expires_in: int = 86_400,
        base_url: str = DEFAULT_FAKE_BASE_URL,
        default_per_page: int = DEFAULT_FAKE_PER_PAGE,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in
        self.base_url = base_url.rstrip("/")
        self.default_per_page = default_per_page
        self.printers: list[dict[str, Any]] = []
        self.prints: list[dict[str, Any]] = []
        self.tanks: list[dict[str, Any]] = []
        self.cartridges: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.groups: list[dict[str, Any]] = []
        self.queues: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[httpx.Request] = []
        self.issued_tokens: list[str] = []
        self.revoked_tokens: set[str] = set()
        self._scripted: deque[ScriptedAnswer] = deque()
        self._serial = itertools.count(1)

    # -- set-up -------------------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def script(self, *answers: ScriptedAnswer) -> None:
        """Answer the next matching requests with these, in order, before behaving normally."""
        self._scripted.extend(answers)

    def invalidate_tokens(self) -> None:
        """Forget every issued token (as a server restart or a revocation elsewhere would)."""
        self.revoked_tokens.update(self.issued_tokens)

    # -- inspection ---------------------------------------------------------------------------

    def token_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == _TOKEN_PATH]

    def api_requests(self) -> list[httpx.Request]:
        """Requests other than token fetches and revocations."""
        return [r for r in self.requests if r.url.path not in (_TOKEN_PATH, _REVOKE_PATH)]

    # -- answering ----------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        # A copy: an auth flow re-sends the same Request object with a new header, which would
        # rewrite the record of the first attempt.
        self.requests.append(
            httpx.Request(
                request.method, request.url, headers=request.headers.copy(), content=request.content
            )
        )
        path = request.url.path
        for index, answer in enumerate(self._scripted):
            if answer.path is None or answer.path == path:
                del self._scripted[index]
                return httpx.Response(answer.status, json=answer.json, headers=answer.headers)
        if path == _TOKEN_PATH and request.method == "POST":
            return self._token(request)
        if path == _REVOKE_PATH and request.method == "POST":
            return self._revoke(request)
        if not self._authorised(request):
            return httpx.Response(401, json=_UNAUTHENTICATED)
        if request.method != "GET":
            return self._change(request, path)
        return self._route(request, path)

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = _form(request)
        if form.get("grant_type") != "client_credentials":
            return httpx.Response(400, json={"error": "unsupported_grant_type"})
        if form.get("client_id") != self.client_id or form.get("client_secret") != (
            self.client_secret
        ):
            return httpx.Response(400, json=_INVALID_GRANT)
        token = f"fake-access-token-{next(self._serial)}"
        self.issued_tokens.append(token)
        return httpx.Response(
            200,
            json={
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": self.expires_in,
                "scope": "developer-api",
            },
        )

    def _revoke(self, request: httpx.Request) -> httpx.Response:
        form = _form(request)
        try:
            check_revocation(form)
        except AuthFailure as refused:
            return httpx.Response(refused.status, json=refused.body)
        if form.get("client_id") != self.client_id or form.get("client_secret") != (
            self.client_secret
        ):
            return httpx.Response(401, json={"error": "invalid_client"})
        self.revoked_tokens.add(form.get("token", ""))
        return httpx.Response(200)

    def _authorised(self, request: httpx.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return (
            scheme.lower() == "bearer"
            and token in self.issued_tokens
            and token not in self.revoked_tokens
        )

    def _route(self, request: httpx.Request, path: str) -> httpx.Response:
        if not path.startswith(API_PREFIX + "/"):
            return _not_found()
        # Split the raw path: a serial holding an encoded "/" is one segment, not two.
        raw = request.url.raw_path.decode("ascii").partition("?")[0]
        inner = raw[len(API_PREFIX) + 1 :].strip("/")
        parts = [urllib.parse.unquote(part) for part in inner.split("/")]
        match parts:
            case ["printers"]:
                return httpx.Response(200, json=self.printers)
            case ["printers", serial]:
                found = [p for p in self.printers if p.get("serial") == serial]
                return httpx.Response(200, json=found[0]) if found else _not_found()
            case ["printers", serial, "prints"]:
                runs = [r for r in self.prints if r.get("printer") == serial]
                return self._filtered(request, lambda query: self._filter_prints(runs, query))
            case ["prints"]:
                every = self.prints
                return self._filtered(request, lambda query: self._filter_prints(every, query))
            case ["tanks"]:
                return self._paginate(request, self.tanks)
            case ["cartridges"]:
                return self._paginate(request, self.cartridges)
            case ["events"]:
                return self._filtered(request, lambda query: filter_events(self.events, query))
            case ["groups"]:
                return httpx.Response(200, json=self.groups)
            case ["groups", group_id, "queue"]:
                if not any(g.get("id") == group_id for g in self.groups):
                    return _not_found()
                return httpx.Response(200, json=self.queues.get(group_id, []))
        return _not_found()

    def _change(self, request: httpx.Request, path: str) -> httpx.Response:
        """A group change, by the rules the Dashboard simulator applies."""
        parts = path[len(API_PREFIX) + 1 :].strip("/").split("/")
        method = request.method
        try:
            body = group_rules.parse_body(request.headers.get("Content-Type"), request.content)
            match parts, method:
                case ["groups"], "POST":
                    creator = {k: v for k, v in _MEMBER.items() if k != "is_admin"}
                    made = group_rules.create_group(
                        self.groups, body, now=records.iso(_EPOCH), creator=creator
                    )
                    return httpx.Response(201, json=made)
                case ["groups", "bulk-add-printers"], "POST":
                    serials = {p.get("serial") for p in self.printers}
                    moved = group_rules.move_printers(self.groups, body, serials.__contains__)
                    target = group_rules.find_group(self.groups, str(body["target_group"]))
                    for printer in self.printers:
                        if printer.get("serial") in moved:
                            printer["group"] = records.group_ref(target["id"], target["name"])
                    return httpx.Response(200)
                case ["groups", group_id], "PATCH":
                    return httpx.Response(
                        200, json=group_rules.update_group(self.groups, group_id, body)
                    )
                case ["groups", group_id], "DELETE":
                    group_rules.delete_group(self.groups, group_id)
                    return httpx.Response(204)
                case ["groups", group_id, "members"], "POST":
                    return httpx.Response(
                        201, json=group_rules.add_member(self.groups, group_id, body)
                    )
                case ["groups", group_id, "members"], "PUT":
                    return httpx.Response(
                        200, json=group_rules.update_member(self.groups, group_id, body)
                    )
                case ["groups", group_id, "members"], "DELETE":
                    group_rules.remove_member(self.groups, group_id, body)
                    return httpx.Response(204)
        except group_rules.GroupRefusal as refused:
            return httpx.Response(refused.status, json=refused.body)
        return httpx.Response(405, json={"detail": f'Method "{method}" not allowed.'})

    def _filtered(
        self, request: httpx.Request, select: Callable[[Query], list[dict[str, Any]]]
    ) -> httpx.Response:
        params = request.url.params
        try:
            items = select({key: params.get_list(key) for key in params})
        except BadFilter as refused:
            return httpx.Response(400, json=refused.body)
        return self._paginate(request, items)

    def _filter_prints(self, runs: list[dict[str, Any]], query: Query) -> list[dict[str, Any]]:
        # Print records carry no machine type; the fake reads it from the printer's record.
        machine_type_of = {p.get("serial"): p.get("machine_type_id") for p in self.printers}
        return filter_prints(runs, query, lambda run: machine_type_of.get(run.get("printer")))

    def _paginate(self, request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        params = request.url.params
        try:
            page = int(params.get("page", "1"))
            per_page = int(params.get("per_page", str(self.default_per_page)))
        except ValueError:
            return httpx.Response(404, json={"detail": "Invalid page."})
        pages = max(1, -(-len(items) // per_page))
        if page < 1 or per_page < 1 or page > pages:
            return httpx.Response(404, json={"detail": "Invalid page."})
        chunk = items[(page - 1) * per_page : page * per_page]

        def link(number: int) -> str:
            query = [(k, v) for k, v in params.multi_items() if k != "page"]
            if number > 1:  # like Django REST framework, the link to page 1 names no page
                query.append(("page", str(number)))
            url = httpx.URL(self.base_url + request.url.path, params=query)
            return str(url)

        return httpx.Response(
            200,
            json={
                "count": len(items),
                "next": link(page + 1) if page < pages else None,
                "previous": link(page - 1) if page > 1 else None,
                "results": chunk,
            },
        )


def _not_found() -> httpx.Response:
    return httpx.Response(404, json={"detail": "Not found."})


def _form(request: httpx.Request) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(request.content.decode("utf-8")))


# -- sample records ----------------------------------------------------------------------------
# The shapes come from .records, shared with the Dashboard simulator; only the values below
# are this fake's own.

_GROUP = records.group_ref("5b1f6c1e-8f0a-4c5e-9d57-2f4d2a3c9e01", "Production")
_USER = records.basic_user(7, "lab-bot", "Lab", "Bot", "lab-bot@example.com")
_MEMBER = records.group_membership(
    is_admin=True, user="lab-bot", email="lab-bot@example.com", first_name="Lab", last_name="Bot"
)


def sample_print_run(**overrides: Any) -> dict[str, Any]:
    """A finished Form 4 print run as the prints feed lists it."""
    guid = overrides.get("guid", "0c7a0a57-5d5a-4f0b-9f38-5b8f8f0f6a11")
    created = overrides.pop("created", _EPOCH)
    record = records.print_run_record(
        guid=guid,
        name="crowns-batch-0001",
        printer="Form4-SweetMatcha",
        status="FINISHED",
        created_at=records.iso(created),
        print_started_at=records.iso(created + timedelta(minutes=2)),
        print_finished_at=records.iso(created + timedelta(hours=1)),
        layer_count=400,
        volume_ml=12.5,
        material="FLGPGR05",
        material_name="Grey V5",
        layer_thickness_mm=0.05,
        currently_printing_layer=400,
        estimated_duration_ms=3_480_000,
        elapsed_duration_ms=3_500_000,
        estimated_time_remaining_ms=0,
        success=records.print_run_success(
            guid, "SUCCESS", records.iso(created + timedelta(hours=2))
        ),
        firmware_version="1.9.1",
        cartridge=None,
        front_cartridge="CartFront-1",
        back_cartridge=None,
        tank="Tank-Blue-1",
        cylinder=None,
        note=records.print_note(guid, "", _USER, records.iso(created)),
        thumbnail_url="https://thumbnails.example.com/print.png",
        user=_USER,
        group=dict(_GROUP),
        message=None,
        print_job="a1b2c3d4-0000-4000-8000-000000000001",
        print_settings_name="Default",
        print_settings_code="DEFAULT",
        parts=[
            records.print_part(
                id=1,
                guid="7e57aa00-1111-4222-8333-444455556666",
                display_name="crown_11",
                end_layer=380,
                name="crown_11.stl",
                raw_mesh_hash=None,
                start_layer=0,
                volume_ml=1.2,
                prepared_scene="scene-1",
            )
        ],
    )
    record.update(overrides)
    return record


def _current_run(**overrides: Any) -> dict[str, Any]:
    """A print run as nested in a printer's status (no queue item, no parts)."""
    return records.nested_print_run(sample_print_run(**overrides))


def sample_tank(**overrides: Any) -> dict[str, Any]:
    """A resin tank as the tanks list shows it."""
    record = records.tank_record(
        serial="Tank-Blue-1",
        material="FLGPGR05",
        layers_printed=12_000,
        print_time_ms=36_000_000,
        mechanical_version="3",
        manufacture_date=records.iso(_EPOCH - timedelta(days=90)),
        manufacturer="Formlabs",
        display_name="Grey tank",
        lot_number="L-0001",
        layer_count=12_000,
        last_modified=records.iso(_EPOCH),
        inside_printer="Form4-SweetMatcha",
        write_count=40,
        tank_type="FORM4_LT",
        connected_group=_GROUP["id"],
        first_fill_date=records.iso(_EPOCH - timedelta(days=60)),
        created_at=records.iso(_EPOCH - timedelta(days=60)),
        last_print_date=records.iso(_EPOCH),
    )
    record.update(overrides)
    return record


def sample_cartridge(**overrides: Any) -> dict[str, Any]:
    """A resin cartridge as the cartridges list shows it."""
    record = records.cartridge_record(
        serial="CartFront-1",
        consumable_type="RESIN_CARTRIDGE",
        machine_type_id="FORM-4-0",
        material="FLGPGR05",
        initial_volume_ml=1000.0,
        volume_dispensed_ml=250.0,
        dispense_count=120,
        write_count=30,
        mechanical_version="2",
        manufacture_date=records.iso(_EPOCH - timedelta(days=120)),
        manufacturer="Formlabs",
        display_name="Grey V5",
        lot_number="C-0001",
        last_modified=records.iso(_EPOCH),
        is_empty=False,
        inside_printer="Form4-SweetMatcha",
        connected_group=_GROUP["id"],
        created_at=records.iso(_EPOCH - timedelta(days=30)),
        last_print_date=records.iso(_EPOCH),
    )
    record.update(overrides)
    return record


def sample_printer(**overrides: Any) -> dict[str, Any]:
    """A Form 4 on the account, idle after a finished print."""
    serial = overrides.get("serial", "Form4-SweetMatcha")
    record = records.printer_record(
        serial=serial,
        alias="Sweet Matcha",
        machine_type_id="FORM-4-0",
        status=records.printer_status(
            status="IDLE",
            last_pinged_at=records.iso(_EPOCH),
            hopper_level=80,
            material_credit=None,
            hopper_material="FLGPGR05",
            last_modified=records.iso(_EPOCH),
            current_temperature=31.5,
            current_print_run=_current_run(printer=serial),
            build_platform_contents="BUILD_PLATFORM_CONTENTS_CONFIRMED_CLEAR",
            tank_mixer_state="TANK_MIXER_STATE_PRESENT",
            ready_to_print="READY_TO_PRINT_READY",
            camera_status="ENABLED",
        ),
        cartridge=records.cartridge_status(
            records.nested_cartridge(sample_cartridge(inside_printer=serial)),
            records.iso(_EPOCH),
        ),
        tank=records.tank_status(
            records.nested_tank(sample_tank(inside_printer=serial)), records.iso(_EPOCH)
        ),
        group=dict(_GROUP),
        previous_print_run={},
        firmware_version="1.9.1",
        location="Lab 2",
    )
    record.update(overrides)
    return record


def sample_event(**overrides: Any) -> dict[str, Any]:
    """A print-finished event."""
    record = records.event_record(
        id=1,
        printer="Form4-SweetMatcha",
        created_at=records.iso(_EPOCH + timedelta(hours=1)),
        print_run=_current_run(),
        tank="Tank-Blue-1",
        cartridge="CartFront-1",
        type="PRINT_FINISHED",
        type_label="Print finished",
        message="crowns-batch-0001 finished",
        group=dict(_GROUP),
    )
    record.update(overrides)
    return record


def sample_group(**overrides: Any) -> dict[str, Any]:
    """A Fleet Control printer group with one admin."""
    record = records.workgroup_record(
        id=_GROUP["id"],
        name=_GROUP["name"],
        created_at=records.iso(_EPOCH - timedelta(days=365)),
        memberships=[dict(_MEMBER)],
        printers=["Form4-SweetMatcha"],
        has_fleet_control=True,
        has_fleet_control_updated_by=7,
        update_mode="AUTOMATIC",
    )
    record.update(overrides)
    return record


def sample_queue_item(**overrides: Any) -> dict[str, Any]:
    """A job waiting in a Fleet Control queue."""
    record = records.queue_item_record(
        id="9d0c6c64-2f7e-4a4b-8a8e-0e1f2a3b4c5d",
        name="crowns-batch-0002",
        volume_ml=8.25,
        material_name="Grey V5",
        created_at=records.iso(_EPOCH),
        username="lab-bot",
        allowed_machine_type_ids=["FORM-4-0"],
    )
    record.update(overrides)
    return record

"""The Dashboard simulator's group changes over real HTTP: validation, refusals, persistence."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from preform_pipeline.clock import ManualClock
from preform_pipeline.cloud import Credentials
from preform_pipeline.simulator.cloud.groups import GROUPS_FILE
from preform_pipeline.simulator.cloud.server import DashboardServer
from preform_pipeline.simulator.cloud.testing import dashboard_server
from preform_pipeline.simulator.fleet import FleetState, SimPrinter

API = "/developer/v1"
CREDENTIALS = Credentials("groups-client", "groups-secret")
UNKNOWN = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    return tmp_path / "fleet"


def _serve(fleet: Path) -> AbstractContextManager[DashboardServer]:
    return dashboard_server(fleet, clock=ManualClock(), credentials=CREDENTIALS,
                            poll_interval=0.005)


@contextmanager
def _client(server: DashboardServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + API, timeout=10.0) as client:
        answer = client.post("/o/token/", data={
            "grant_type": "client_credentials",
            "client_id": CREDENTIALS.client_id,
            "client_secret": CREDENTIALS.client_secret,
        })
        client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        yield client


@pytest.fixture
def http(fleet: Path) -> Iterator[httpx.Client]:
    with _serve(fleet) as server, _client(server) as client:
        yield client
        server.check()


def group_named(http: httpx.Client, name: str) -> dict[str, Any]:
    found = [g for g in http.get("/groups/").json() if g["name"] == name]
    assert len(found) == 1, f"expected one group {name!r}, found {len(found)}"
    group: dict[str, Any] = found[0]
    return group


class TestValidation:
    """Bad bodies are 400s naming the field, as Django REST framework words them."""

    @pytest.mark.parametrize(
        ("body", "answer"),
        [
            ({}, {"name": ["This field is required."]}),
            ({"name": "  "}, {"name": ["This field may not be blank."]}),
            ({"name": "x" * 41}, {"name": ["Ensure this field has no more than 40 characters."]}),
            ({"name": 7}, {"name": ["Not a valid string."]}),
        ],
    )
    def test_a_bad_create_body(
        self, http: httpx.Client, body: dict[str, Any], answer: dict[str, Any]
    ) -> None:
        refused = http.post("/groups/", json=body)

        assert (refused.status_code, refused.json()) == (400, answer)

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"printers": ["SimulatedForm4-1"]}, "target_group"),
            ({"target_group": "not-a-uuid", "printers": ["SimulatedForm4-1"]}, "target_group"),
            ({"target_group": UNKNOWN}, "printers"),
            ({"target_group": UNKNOWN, "printers": "SimulatedForm4-1"}, "printers"),
            ({"target_group": UNKNOWN, "printers": ["NoSuchPrinter"]}, "printers"),
        ],
    )
    def test_a_bad_bulk_add_body(
        self, http: httpx.Client, body: dict[str, Any], field: str
    ) -> None:
        refused = http.post("/groups/bulk-add-printers/", json=body)

        assert refused.status_code == 400
        assert list(refused.json()) == [field]

    def test_a_member_needs_an_email(self, http: httpx.Client) -> None:
        group = group_named(http, "SimulatedGroup-Form4")["id"]

        refused = http.post(f"/groups/{group}/members/", json={"user": "not an email"})

        assert (refused.status_code, refused.json()) == (
            400, {"user": ["Enter a valid email address."]}
        )

    def test_a_body_neither_json_nor_form_is_415(self, http: httpx.Client) -> None:
        refused = http.post("/groups/", content=b"name=x", headers={"Content-Type": "text/plain"})

        assert refused.status_code == 415

    @pytest.mark.parametrize(
        ("content_type", "body", "error"),
        [
            (
                "application/json",
                json.dumps({"name": "Wide"}).encode("utf-16"),
                "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte",
            ),
            (
                "application/json",
                b'{"name": NaN}',
                "Out of range float values are not JSON compliant: 'NaN'",
            ),
            (
                "application/json",
                b'\xef\xbb\xbf{"name": "Marked"}',
                "Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)",
            ),
            (
                "application/json; charset=rot13",
                b'{"name": "Turned"}',
                "'rot-13' is not a text encoding; use codecs.decode() to handle arbitrary codecs",
            ),
        ],
        ids=["UTF-16 without a charset", "NaN", "a UTF-8 byte order mark", "a codec, no text"],
    )
    def test_json_drf_cannot_parse_is_a_parse_error_and_makes_nothing(
        self, http: httpx.Client, content_type: str, body: bytes, error: str
    ) -> None:
        before = http.get("/groups/").json()

        refused = http.post("/groups/", content=body, headers={"Content-Type": content_type})

        assert (refused.status_code, refused.json()) == (
            400, {"detail": f"JSON parse error - {error}"}
        )
        assert http.get("/groups/").json() == before

    @pytest.mark.parametrize("charset", ["utf-16", "UTF-16LE", '"latin-1"'])
    def test_json_in_the_charset_it_names_is_read(
        self, http: httpx.Client, charset: str
    ) -> None:
        name = "Zürich"
        encoding = charset.strip('"')
        made = http.post(
            "/groups/",
            content=json.dumps({"name": name}, ensure_ascii=False).encode(encoding),
            headers={"Content-Type": f"application/json; charset={charset}"},
        )

        assert made.status_code == 201, made.text
        assert group_named(http, name)["id"] == made.json()["id"]

    def test_an_unknown_charset_is_read_as_utf8(self, http: httpx.Client) -> None:
        made = http.post(
            "/groups/",
            content=json.dumps({"name": "Zürich"}, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json; charset=no-such-charset"},
        )

        assert made.status_code == 201, made.text
        assert group_named(http, "Zürich")["id"] == made.json()["id"]

    def test_a_form_body_is_read_like_json(self, http: httpx.Client) -> None:
        made = http.post("/groups/", data={"name": "From a form"})

        assert made.status_code == 201
        assert group_named(http, "From a form")["id"] == made.json()["id"]

    def test_a_multipart_body_is_read_like_json(self, http: httpx.Client) -> None:
        made = http.post("/groups/", files={"name": (None, "From multipart")})

        assert made.status_code == 201, made.text
        assert group_named(http, "From multipart")["id"] == made.json()["id"]

    def test_a_multipart_list_is_its_repeated_field(self, http: httpx.Client) -> None:
        target = http.post("/groups/", json={"name": "Target"}).json()["id"]
        serials = ["SimulatedForm4-1", "SimulatedForm4-2"]

        moved = http.post(
            "/groups/bulk-add-printers/",
            files=[("target_group", (None, target))] + [("printers", (None, s)) for s in serials],
        )

        assert moved.status_code == 200, moved.text
        assert set(group_named(http, "Target")["printers"]) == set(serials)

    def test_a_multipart_field_is_read_in_its_own_charset(self, http: httpx.Client) -> None:
        boundary = "b0undary"
        body = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n"
            "Content-Type: text/plain; charset=latin-1\r\n\r\n"
        ).encode() + "Zürich".encode("latin-1") + f"\r\n--{boundary}--\r\n".encode()

        made = http.post("/groups/", content=body,
                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})

        assert made.status_code == 201, made.text
        assert group_named(http, "Zürich")["id"] == made.json()["id"]

    def test_a_multipart_file_is_no_field(self, http: httpx.Client) -> None:
        refused = http.post("/groups/", files={"name": ("name.txt", b"From a file")})

        assert (refused.status_code, refused.json()) == (
            400, {"name": ["This field is required."]}
        )

    def test_multipart_without_a_boundary_is_a_parse_error_and_makes_nothing(
        self, http: httpx.Client
    ) -> None:
        before = http.get("/groups/").json()

        refused = http.post("/groups/", content=b"name=x",
                            headers={"Content-Type": "multipart/form-data"})

        assert (refused.status_code, refused.json()) == (
            400, {"detail": "Multipart form parse error - Invalid boundary in multipart: None"}
        )
        assert http.get("/groups/").json() == before


class TestRefusals:
    """Unknown groups and members are 404s; changes the Dashboard refuses are 400s."""

    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("PATCH", "/groups/{id}/", {"name": "x"}),
            ("DELETE", "/groups/{id}/", None),
            ("POST", "/groups/{id}/members/", {"user": "a@lab.example"}),
            ("PUT", "/groups/{id}/members/", {"user": "a@lab.example", "is_admin": True}),
            ("DELETE", "/groups/{id}/members/", {"user": "a@lab.example"}),
        ],
    )
    def test_an_unknown_group_is_404(
        self, http: httpx.Client, method: str, path: str, body: dict[str, Any] | None
    ) -> None:
        refused = http.request(method, path.format(id=UNKNOWN), json=body)

        assert (refused.status_code, refused.json()) == (404, {"detail": "Not found."})

    def test_an_unknown_member_is_404(self, http: httpx.Client) -> None:
        group = group_named(http, "SimulatedGroup-Form4")["id"]

        refused = http.request("DELETE", f"/groups/{group}/members/",
                               json={"user": "nobody@lab.example"})

        assert refused.status_code == 404

    def test_a_group_holding_printers_is_not_deleted(self, http: httpx.Client) -> None:
        group = group_named(http, "SimulatedGroup-Form4")

        refused = http.delete(f"/groups/{group['id']}/")

        assert refused.status_code == 400
        assert "holds printers" in refused.json()["detail"]
        assert group_named(http, "SimulatedGroup-Form4") == group

    def test_the_last_administrator_stays(self, http: httpx.Client) -> None:
        group = group_named(http, "SimulatedGroup-Form4")
        admin = group["memberships"][0]["email"]

        demoted = http.put(f"/groups/{group['id']}/members/",
                           json={"user": admin, "is_admin": False})
        removed = http.request("DELETE", f"/groups/{group['id']}/members/", json={"user": admin})

        assert (demoted.status_code, removed.status_code) == (400, 400)
        assert group_named(http, "SimulatedGroup-Form4") == group

    def test_a_member_is_added_once(self, http: httpx.Client) -> None:
        group = group_named(http, "SimulatedGroup-Form4")["id"]
        http.post(f"/groups/{group}/members/", json={"user": "tech@lab.example"})

        again = http.post(f"/groups/{group}/members/", json={"user": "TECH@lab.example"})

        assert again.status_code == 400
        assert list(again.json()) == ["user"]


class TestPersistence:
    """A change shows in every later read: groups, printers, and a restarted simulator."""

    def test_moved_printers_name_their_new_group(self, http: httpx.Client) -> None:
        made = http.post("/groups/", json={"name": "Dental"}).json()
        http.post("/groups/bulk-add-printers/",
                  json={"target_group": made["id"], "printers": ["SimulatedForm4-1"]})

        printer = http.get("/printers/SimulatedForm4-1/").json()

        assert printer["group"] == {"id": made["id"], "name": "Dental"}
        assert group_named(http, "Dental")["printers"] == ["SimulatedForm4-1"]
        assert group_named(http, "SimulatedGroup-Form4")["printers"] == ["SimulatedForm4-2"]

    def test_a_restarted_simulator_shows_the_changes(self, fleet: Path) -> None:
        with _serve(fleet) as server, _client(server) as http:
            made = http.post("/groups/", json={"name": "Dental"}).json()
            http.patch(f"/groups/{made['id']}/", json={"remote_print_enabled_override": "false"})
        stored = json.loads((fleet / GROUPS_FILE).read_text(encoding="utf-8"))
        assert "Dental" in [g["name"] for g in stored["groups"]]

        with _serve(fleet) as server, _client(server) as http:
            dental = group_named(http, "Dental")
            server.check()

        assert dental["id"] == made["id"]
        assert dental["remote_print_enabled_override"] is False

    def test_a_refused_change_leaves_the_table_unwritten(self, fleet: Path) -> None:
        with _serve(fleet) as server, _client(server) as http:
            http.post("/groups/", json={})
            server.check()

        assert not (fleet / GROUPS_FILE).exists()

    def test_printers_added_to_the_fleet_later_join_the_accounts_group(
        self, fleet: Path
    ) -> None:
        with _serve(fleet) as server, _client(server) as http:
            http.post("/groups/", json={"name": "Dental"})
            state = FleetState(fleet)  # the fleet declared again, with one printer more
            state.declare((*state.printers(), SimPrinter(
                serial="LateForm4", machine_type_id="FORM-4-0", product_name="Form 4",
                ip_address="192.0.2.250", material_code="FLGPGR05",
            )))
            home = group_named(http, "Simulated printers")
            printer = http.get("/printers/LateForm4/").json()
            server.check()

        assert "LateForm4" in home["printers"]
        assert printer["group"]["id"] == home["id"]

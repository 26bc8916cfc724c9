"""The dashboard answers only to its own host names (session 32): a DNS-rebinding page, whose
own name now points at 127.0.0.1, is refused before any page or action, over real HTTP."""

from __future__ import annotations

import socket
from contextlib import closing
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from structlog.testing import capture_logs

from preform_pipeline.settings.web import WebSettings, WebUser
from preform_pipeline.store import JobState, SqliteJobStore
from preform_pipeline.web import WebServer
from preform_pipeline.web.hosts import host_name, served_hosts
from tests.unit.web import clients
from tests.unit.web.conftest import OPERATOR_SECRET, Served, held_build, logged_in


def _port(served: Served) -> int:
    return int(urlsplit(served.url).port or 0)


class TestRebindingIsRefused:
    """A request naming a host the dashboard does not serve gets 400 and changes nothing."""

    def test_an_action_from_a_rebound_name_is_refused_with_a_clear_400(
        self, served: Served
    ) -> None:
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        evil = f"evil.example:{_port(served)}"
        with closing(client), capture_logs() as events:
            # The rebound page is of its own origin: Origin and Host agree, and it has
            # somehow the session and its token; only the host name gives it away.
            answer = client.post(f"/builds/{served.held_id}/approve",
                                 data={"csrf": csrf, "next": "/"},
                                 headers={"Host": evil, "Origin": f"http://{evil}"})
        assert answer.status_code == 400
        assert answer.text.startswith(
            "refused: this dashboard does not answer to the host 'evil.example:")
        assert "127.0.0.1, ::1, localhost" in answer.text
        assert "add the name to web.allowed_hosts in the settings" in answer.text
        assert answer.headers["x-frame-options"] == "DENY"
        assert served.store.get_build(served.held_id).state is JobState.AWAITING_APPROVAL
        refused = [e for e in events if e["event"] == "web_host_refused"]
        assert refused == [{"event": "web_host_refused", "log_level": "warning",
                            "path": f"/builds/{served.held_id}/approve", "host": evil}]

    @pytest.mark.parametrize("path", ["/", "/login", "/metrics", "/healthz", "/nowhere"])
    def test_pages_login_and_metrics_are_refused_alike(self, served: Served, path: str) -> None:
        answer = clients.get(served.url + path, headers={"Host": "evil.example"})
        assert answer.status_code == 400
        assert "does not answer to the host 'evil.example'" in answer.text

    def test_a_huge_host_is_quoted_cut_short(self, served: Served) -> None:
        answer = clients.get(served.url + "/login", headers={"Host": "a" * 5000})
        assert answer.status_code == 400
        assert f"'{'a' * 100}...'" in answer.text and "a" * 101 not in answer.text

    @pytest.mark.parametrize("host", ["localhost", "LOCALHOST.", "127.0.0.1", "[::1]"])
    def test_the_loopback_names_are_served(self, served: Served, host: str) -> None:
        answer = clients.get(served.url + "/login", headers={"Host": f"{host}:{_port(served)}"})
        assert answer.status_code == 200


class TestAllowedHosts:
    """``web.allowed_hosts`` adds the name a reverse proxy passes on."""

    def test_a_name_of_the_setting_is_served_and_its_actions_work(
        self, tmp_path: Path, users: tuple[WebUser, ...]
    ) -> None:
        store = SqliteJobStore(tmp_path / "jobs.sqlite3")
        held = held_build(store, tmp_path, "C-7")
        server = WebServer(store, WebSettings(port=0, users=users,
                                              allowed_hosts=("Dash.Lab.Example",)))
        server.start()
        try:
            served = Served(server.url, store, held, "C-7")
            client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
            with closing(client):
                page = client.get("/", headers={"Host": "dash.lab.example"})
                approved = client.post(f"/builds/{held}/approve", data={"csrf": csrf},
                                       headers={"Host": "dash.lab.example",
                                                "Origin": "http://dash.lab.example"})
                other = client.get("/", headers={"Host": "other.lab.example"})
            assert page.status_code == 200
            assert approved.status_code == 303
            assert store.get_build(held).state is JobState.WAITING_FOR_PRINTER
            assert other.status_code == 400
            assert "dash.lab.example" in other.text
        finally:
            server.stop()
            store.close()


class TestServedNames:
    """Which names each binding serves (the rule of web/hosts.py)."""

    @pytest.mark.parametrize(("header", "name"), [
        ("Example.org:8765", "example.org"), ("example.org.", "example.org"),
        ("[::1]:8765", "::1"), ("[::1]", "::1"), ("::1", "::1"), ("fe80::1", "fe80::1"),
        ("10.0.0.5:80", "10.0.0.5"), ("host:port", "host:port"), ("", ""),
    ])
    def test_the_name_of_a_host_header(self, header: str, name: str) -> None:
        assert host_name(header) == name

    def test_a_loopback_binding_serves_the_loopback_names_only(self) -> None:
        hosts = served_hosts(WebSettings(host="127.0.0.1"), computer="lab-pc")
        assert hosts.names == {"127.0.0.1", "localhost", "::1"}
        assert not hosts.serves("10.0.0.5") and not hosts.serves("lab-pc")

    def test_an_address_binding_serves_that_address_and_the_allowed_names(self) -> None:
        hosts = served_hosts(WebSettings(host="10.0.0.5", allowed_hosts=("lab-pc.local",)),
                             computer="lab-pc")
        assert hosts.serves("10.0.0.5:8765") and hosts.serves("LAB-PC.local")
        assert not hosts.serves("localhost") and not hosts.serves("10.0.0.6")

    @pytest.mark.parametrize("bound", ["0.0.0.0", "::"])
    def test_every_address_serves_any_address_and_this_computers_name(
        self, bound: str
    ) -> None:
        hosts = served_hosts(WebSettings(host=bound), computer="lab-pc.example.org")
        for served in ("10.0.0.5:8765", "[fe80::1]:8765", "localhost", "lab-pc",
                       "lab-pc.example.org"):
            assert hosts.serves(served), served
        for refused in ("evil.example", "lab-pc.evil.example", "10.0.0.5.evil.example"):
            assert not hosts.serves(refused), refused
        assert "any IP address" in hosts.refusal("evil.example")


class TestServedNamesEdges:
    """The rule at its edges (found by the mutation run of session 32)."""

    def test_the_refusal_says_what_is_served_and_what_helps(self) -> None:
        hosts = served_hosts(WebSettings(host="127.0.0.1"))
        assert hosts.refusal("evil.example:8765") == (
            "refused: this dashboard does not answer to the host 'evil.example:8765' (it "
            "answers to 127.0.0.1, ::1, localhost); if a reverse proxy or a DNS name of this "
            "computer reaches it by that name, add the name to web.allowed_hosts in the "
            "settings")

    def test_a_bracket_after_the_address_is_not_part_of_it(self) -> None:
        assert host_name("[::1]:80]") == "::1"

    def test_bound_to_localhost_by_name_serves_the_loopback_addresses(self) -> None:
        hosts = served_hosts(WebSettings(host="localhost"), computer="lab-pc")
        assert hosts.serves("127.0.0.1") and hosts.serves("[::1]:8765")

    def test_bound_to_a_name_serves_that_name_only(self) -> None:
        hosts = served_hosts(WebSettings(host="lab-pc.local"), computer="lab-pc")
        assert hosts.names == {"lab-pc.local"}
        assert not hosts.any_address

    def test_every_address_keeps_the_allowed_names_and_asks_the_system_its_name(self) -> None:
        hosts = served_hosts(WebSettings(host="0.0.0.0", allowed_hosts=("dash.lab.example",)))
        assert hosts.serves("dash.lab.example") and hosts.serves("0.0.0.0")
        assert hosts.serves(socket.gethostname())

    def test_an_empty_host_is_no_name(self) -> None:
        assert not served_hosts(WebSettings(host="127.0.0.1")).serves("")
        assert not served_hosts(WebSettings(host="::")).serves(":8765")
        # A name of only a dot is no name either (the schema takes it).
        assert not served_hosts(WebSettings(allowed_hosts=(".",))).serves("")

"""The Web API client against what a bad network puts in the Web API's place.

Each test talks real HTTP over loopback to :mod:`tests.hostile_http`'s front, scripted as a
broken server, a proxy or a guest Wi-Fi's sign-in page answers.
"""

from __future__ import annotations

import json
import socket
import time
import tracemalloc
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest

from preform_pipeline.answers import MAX_ANSWER_BYTES
from preform_pipeline.cloud.auth import TOKEN_PATH
from preform_pipeline.cloud.client import WebApiClient
from preform_pipeline.cloud.credentials import Credentials
from preform_pipeline.errors import CloudAuthError, CloudError, CloudUnavailableError
from tests.hostile_http import (
    NGINX_HTTPS_PORT_PAGE,
    Answer,
    HostileFront,
    Request,
    drip,
    huge,
    reply,
    running_front,
)

PRINTS = "/developer/v1/prints/"
TOKEN = json.dumps({"access_token": "tok-s39", "token_type": "Bearer", "expires_in": 86400})
PRINT = {"guid": "g1", "name": "PP-1 crown", "printer": "Form4-Lab", "status": "FINISHED"}
PORTAL = "Sign in to Guest Wi-Fi"
GROUP = {"id": "g-1", "name": "Lab", "printers": ["Form4-Lab"], "memberships": [],
         "remote_print_enabled": True}


@pytest.fixture
def front() -> Iterator[HostileFront]:
    with running_front() as front:
        yield front
        front.check()


def _answer_at(front: HostileFront, path: str, answer: Answer) -> None:
    """``answer`` for the token request (``TOKEN_PATH``) or, after a good token, the prints
    feed's first page (``PRINTS``)."""
    if path == TOKEN_PATH:
        front.on("POST", TOKEN_PATH, answer)
    else:
        front.on("POST", TOKEN_PATH, reply(200, TOKEN))
        front.on("GET", PRINTS, answer)


def _client(front: HostileFront, timeout_s: float = 5.0) -> WebApiClient:
    return WebApiClient(Credentials("lab-app", "s3cret-value"), base_url=front.url,
                        timeout_s=timeout_s)


class TestBoundedAnswers:
    """A huge or dripping answer ends as "unavailable", within bounded memory and time."""

    @pytest.mark.parametrize("path", [TOKEN_PATH, PRINTS])
    def test_a_200_mb_body_is_refused_within_bounded_memory(
        self, front: HostileFront, path: str
    ) -> None:
        _answer_at(front, path, huge(200 * 1024 * 1024, framing="chunked"))
        tracemalloc.start()
        try:
            with _client(front) as client, pytest.raises(CloudUnavailableError) as caught:
                list(client.iter_prints())
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert "over the 32 MiB limit" in caught.value.message
        assert "captive portal" in (caught.value.hint or "")
        # Read whole, the 200 MB took 840 MB.
        assert peak < 2 * MAX_ANSWER_BYTES

    def test_a_dripping_page_times_out_at_the_request_timeout(self, front: HostileFront) -> None:
        front.on("POST", TOKEN_PATH, reply(200, TOKEN))
        page = json.dumps({"count": 0, "next": None, "previous": None, "results": []})
        front.on("GET", PRINTS, drip(200, page.encode() + b" " * 40, every_s=0.1))
        started = time.monotonic()
        with _client(front, timeout_s=1.0) as client, pytest.raises(CloudUnavailableError):
            list(client.iter_prints())
        assert time.monotonic() - started < 3.0


class TestSomethingElseAnswers:
    """A sign-in page or proxy in the Web API's place is said as such, never followed."""

    @pytest.mark.parametrize("path", [TOKEN_PATH, PRINTS])
    def test_a_redirect_is_said_with_where_it_points_and_not_followed(
        self, front: HostileFront, path: str
    ) -> None:
        portal = (("Location", "http://portal.example/login?session=abc&mac=00:11"),)
        _answer_at(front, path, reply(302, "", headers=portal))
        with _client(front) as client, pytest.raises(CloudUnavailableError) as caught:
            list(client.iter_prints())
        error = caught.value
        assert "a redirect to http://portal.example/login" in error.message
        assert "session=abc" not in str(error)
        assert "captive portal" in (error.hint or "")
        assert error.status_code == 302
        assert all(r.path in (TOKEN_PATH, PRINTS) for r in front.seen)

    def test_a_sign_in_page_for_a_token_names_the_portal(self, front: HostileFront) -> None:
        front.on("POST", TOKEN_PATH, reply(200, f"<html>{PORTAL}</html>",
                                           content_type="text/html"))
        with _client(front) as client, pytest.raises(CloudError) as caught:
            list(client.iter_prints())
        assert "without an access token" in caught.value.message
        assert "captive portal" in (caught.value.hint or "")


    @pytest.mark.parametrize("path, said", [
        (TOKEN_PATH, "the Web API refused to issue an access token"),
        (PRINTS, "something other than the Web API answered"),
    ], ids=["token", "prints"])
    def test_a_proxys_https_port_page_asks_for_https(
        self, front: HostileFront, path: str, said: str
    ) -> None:
        _answer_at(front, path, reply(400, NGINX_HTTPS_PORT_PAGE, content_type="text/html"))
        with _client(front) as client, pytest.raises(CloudError) as caught:
            list(client.iter_prints())
        error = caught.value
        # Not refused credentials, nor a request to correct: the address wants https://.
        assert not isinstance(error, (CloudAuthError, CloudUnavailableError))
        assert (f'{said}: the server answered HTTP 400 "The plain HTTP request was sent to '
                'HTTPS port": its address needs https://') in error.message
        assert error.hint == "use the https:// address of this server (cloud.base_url in the " \
            "settings)"
        assert error.status_code == 400
        assert "s3cret-value" not in str(error)


class TestBrokenPaging:
    """A page whose link to the next one is broken fails the read; it is not the end."""

    @pytest.mark.parametrize("link", [5, {"page": 2}, ["x"], "http://h/\x00?page=2",
                                      "http://[::1/?page=2"])
    def test_a_next_link_that_is_not_a_link(self, front: HostileFront, link: object) -> None:
        front.on("POST", TOKEN_PATH, reply(200, TOKEN))
        page = {"count": 250, "next": link, "previous": None, "results": [PRINT]}
        front.on("GET", PRINTS, reply(200, json.dumps(page)))
        with _client(front) as client, pytest.raises(CloudError) as caught:
            list(client.iter_prints())
        assert "'next' is a link or null" in caught.value.message

    @pytest.mark.parametrize("page", [1, 0, -3], ids=["itself", "zero", "negative"])
    def test_a_page_whose_next_link_goes_back_is_refused_not_read_for_ever(
        self, front: HostileFront, page: int
    ) -> None:
        front.on("POST", TOKEN_PATH, reply(200, TOKEN))
        link = f"https://elsewhere.example{PRINTS}?page={page}"
        body = {"count": 250, "next": link, "previous": None, "results": [PRINT]}
        front.on("GET", PRINTS, reply(200, json.dumps(body)))
        with _client(front) as client, pytest.raises(CloudError) as caught:
            client.list_prints_page(1)
        assert caught.value.message == (f"the Web API's pagination of {PRINTS} loops back "
                                        f"from page 1 to page {page}")
        assert len(front.requests_to(PRINTS)) == 1

    def test_a_previous_link_that_cannot_be_read_is_no_previous_page(
        self, front: HostileFront
    ) -> None:
        # Session 45's fuzzer: httpx.InvalidURL from the page reader, verify's exit 70.
        front.on("POST", TOKEN_PATH, reply(200, TOKEN))
        body = {"count": 1, "next": None, "previous": "\x00", "results": [PRINT]}
        front.on("GET", PRINTS, reply(200, json.dumps(body)))
        with _client(front) as client:
            page = client.list_prints_page(2)
        assert (page.previous_page, page.next_page, len(page.items)) == (None, None, 1)

    def test_a_page_nested_too_deeply_to_read_is_said_so(self, front: HostileFront) -> None:
        # Session 45's fuzzer: 10,000 nested objects raised RecursionError, verify's exit 70.
        front.on("POST", TOKEN_PATH, reply(200, TOKEN))
        deep = '{"results": [' + '{"a": ' * 10_000 + "1" + "}" * 10_000 + "]}"
        front.on("GET", PRINTS, reply(200, deep))
        with _client(front) as client, pytest.raises(CloudError) as caught:
            client.list_prints_page(1)
        assert caught.value.message.endswith(
            ": the Web API answered with JSON nested too deeply to read (HTTP 200)")

    def test_an_empty_page_that_links_to_a_next_is_refused(self, front: HostileFront) -> None:
        front.on("POST", TOKEN_PATH, reply(200, TOKEN))
        body = {"count": 10**9, "next": f"{front.url}{PRINTS}?page=3", "results": []}
        front.on("GET", PRINTS, reply(200, json.dumps(body)))
        with _client(front) as client, pytest.raises(CloudError) as caught:
            client.list_prints_page(2)
        assert caught.value.message == (f"the Web API's pagination of {PRINTS} goes on past "
                                        "its end: page 2 is empty but links to a next one")

    def test_the_iterator_stops_at_an_empty_page_that_links_on(
        self, front: HostileFront
    ) -> None:
        # Each empty page links to the one after it: no page is read twice, so only the rule
        # on empty pages (once in _page alone) ends iter_prints (the review of session 45).
        def linking_on(sock: socket.socket, request: Request, front: HostileFront) -> bool:
            page = int(dict(parse_qsl(urlsplit(request.target).query)).get("page", "1"))
            body = {"count": 10**9, "next": f"{front.url}{PRINTS}?page={page + 1}",
                    "results": []}
            return reply(200, json.dumps(body))(sock, request, front)

        front.on("POST", TOKEN_PATH, reply(200, TOKEN))
        front.on("GET", PRINTS, linking_on, times=20)
        with _client(front) as client, pytest.raises(CloudError) as caught:
            list(client.iter_prints())
        assert caught.value.message == (f"the Web API's pagination of {PRINTS} goes on past "
                                        "its end: a page is empty but links to a next one")
        assert len(front.requests_to(PRINTS)) == 1

    def test_https_to_a_plain_server_asks_for_http(self, front: HostileFront) -> None:
        url = front.url.replace("http://", "https://")
        client = WebApiClient(Credentials("lab-app", "s3cret-value"), base_url=url, timeout_s=5)
        with client, pytest.raises(CloudUnavailableError) as caught:
            list(client.iter_prints())
        assert "speak TLS at this address" in (caught.value.hint or "")


class TestListsHoldingOtherThanObjects:
    """A list answer with an item that is not an object is refused whole, not read without
    it: fleet sync took a group answered as a number for one the Dashboard lacks and created
    it again (session 47's fuzzer)."""

    @pytest.mark.parametrize("stray", [5, None, "Lab", [GROUP]], ids=["int", "null", "str",
                                                                       "list"])
    def test_a_group_list_holding_a_stray_item_is_refused(
        self, front: HostileFront, stray: object
    ) -> None:
        front.on("POST", TOKEN_PATH, reply(200, TOKEN))
        front.on("GET", "/developer/v1/groups/", reply(200, json.dumps([GROUP, stray])))
        with _client(front) as client, pytest.raises(CloudError) as caught:
            client.list_groups()
        assert ("answered /developer/v1/groups/ with a list holding "
                f"{type(stray).__name__} where only objects were expected") in str(caught.value)

    def test_a_page_of_prints_holding_a_stray_item_is_refused(
        self, front: HostileFront
    ) -> None:
        _answer_at(front, PRINTS, reply(200, json.dumps(
            {"count": 2, "next": None, "previous": None, "results": [PRINT, 7]})))
        with _client(front) as client, pytest.raises(CloudError) as caught:
            client.list_prints_page(1)
        assert "with a page's results holding int where only objects" in str(caught.value)

    def test_a_list_of_objects_is_read_whole(self, front: HostileFront) -> None:
        front.on("POST", TOKEN_PATH, reply(200, TOKEN))
        front.on("GET", "/developer/v1/groups/", reply(200, json.dumps([GROUP] * 2)))
        with _client(front) as client:
            assert [g.name for g in client.list_groups()] == ["Lab", "Lab"]


class TestATokenAnswerOfAnotherSuccess:
    """A 2xx other than 200 from the token endpoint is said as what it is, not a refusal."""

    @pytest.mark.parametrize("status", [201, 202, 204])
    def test_it_names_the_status_and_who_may_be_answering(
        self, front: HostileFront, status: int
    ) -> None:
        front.on("POST", TOKEN_PATH, reply(status, b"" if status == 204 else TOKEN))
        with _client(front) as client, pytest.raises(CloudError) as caught:
            list(client.iter_prints())
        assert caught.value.message.endswith(
            "the token endpoint answered a success other than the 200 that comes with an "
            f"access token (HTTP {status})")
        assert "refused" not in caught.value.message
        assert "captive portal" in (caught.value.hint or "")
        assert front.requests_to(PRINTS) == []

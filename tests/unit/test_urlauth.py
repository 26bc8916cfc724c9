"""A url's ``user:password@`` taken apart as basic auth (``preform_pipeline.urlauth``)."""

from __future__ import annotations

import base64

import httpx
import pytest

from preform_pipeline.urlauth import url_auth


def _pair(authorization: str | None) -> str | None:
    """The ``user:password`` an ``Authorization: Basic ...`` value says."""
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    assert scheme == "Basic"
    return base64.b64decode(token).decode()


class TestAUrlsCredentials:
    """Review (rv45-small): the branch tested the rule through a run only (one ``%40``); its
    cases, each as httpx itself reads a url's userinfo."""

    @pytest.mark.parametrize(("url", "bare", "pair"), [
        ("http://olivia:hunter2%40x%3Ay@printhost:44388", "http://printhost:44388",
         "olivia:hunter2@x:y"),
        ("http://olivia%40lab:pw@printhost:44388/", "http://printhost:44388/", "olivia@lab:pw"),
        ("http://token@printhost:44388", "http://printhost:44388", "token:"),
        ("http://:token@printhost:44388", "http://printhost:44388", ":token"),
        ("http://olivia:pw@[::1]:44388", "http://[::1]:44388", "olivia:pw"),
        ("https://olivia:pw@printhost/preform", "https://printhost/preform", "olivia:pw"),
        ("http://printhost:44388", "http://printhost:44388", None),
    ], ids=["escaped-password", "escaped-user", "user-alone", "password-alone", "ipv6",
            "https-prefix", "none"])
    def test_the_address_and_the_header(self, url: str, bare: str, pair: str | None) -> None:
        auth = url_auth(url)

        assert (auth.url, _pair(auth.authorization)) == (bare, pair)
        assert httpx.URL(auth.url).userinfo == b""
        # The same header httpx's own reading of the url would send.
        if pair is not None:
            own = httpx.BasicAuth(httpx.URL(url).username, httpx.URL(url).password)
            flow = own.auth_flow(httpx.Request("GET", auth.url))
            assert next(flow).headers["Authorization"] == auth.authorization

    def test_its_repr_says_no_credentials(self) -> None:
        shown = repr(url_auth("http://olivia:hunter2@printhost:44388"))

        assert "hunter2" not in shown and "olivia" not in shown.split("url=")[0]
        assert base64.b64encode(b"olivia:hunter2").decode() not in shown

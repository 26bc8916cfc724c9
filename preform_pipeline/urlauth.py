"""A server url's ``user:password@``, sent as HTTP basic auth: the one rule for every request.

A remote PreFormServer behind a reverse proxy with basic auth is written
``http://olivia:hunter2@printhost:44388``. The pool's health check (an ``httpx.Client``) and the
Local API client (``api/_http.py``, which sends through its own wire transport) must both send
those credentials, or the check passes and every build fails at its first request (session 45).
Both take the url apart here: the address without its userinfo, and the ``Authorization``
header its userinfo makes, percent-escapes decoded as httpx decodes them (``%40`` for an ``@``
in a password).

The header is a secret: it is never logged (request headers are not), and the url a server is
named by keeps its user and hides the password (``logging.hide_secrets``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import httpx

__all__ = ["CREDENTIALS_REFUSED", "UrlAuth", "url_auth"]

#: What a 401 means for a PreFormServer url (the Local API asks for no auth of its own: the
#: proxy in front of it does), said by the health check and the client alike.
CREDENTIALS_REFUSED = (
    "the server, or a proxy in front of it, wants a user and password (HTTP basic auth): "
    "write them in its url (http://user:password@host:port) and check that they are right"
)


@dataclass(frozen=True)
class UrlAuth:
    """A url taken apart: ``url`` without its userinfo, and the ``Authorization`` value that
    userinfo makes (``None`` when the url has none)."""

    url: str
    authorization: str | None

    def headers(self) -> tuple[tuple[str, str], ...]:
        """The header pair to add to every request (none without credentials)."""
        return () if self.authorization is None else (("Authorization", self.authorization),)

    def __repr__(self) -> str:  # never the credentials, should one be printed
        shown = "None" if self.authorization is None else "'Basic [redacted]'"
        return f"UrlAuth(url={self.url!r}, authorization={shown})"


def url_auth(url: str) -> UrlAuth:
    """``url`` without its userinfo, and the basic auth its userinfo makes.

    As httpx does for a url given to its client: a user alone (``http://token@host``) is sent
    with an empty password, and an empty user with a password (``http://:token@host``) too."""
    parsed = httpx.URL(url)
    if not parsed.userinfo:
        return UrlAuth(url, None)
    pair = f"{parsed.username}:{parsed.password}".encode()
    bare = str(parsed.copy_with(username=None, password=None))
    if not url.endswith("/") and bare.endswith("/") and parsed.raw_path == b"/":
        bare = bare[:-1]  # httpx adds the root path: kept as written
    return UrlAuth(bare, "Basic " + base64.b64encode(pair).decode("ascii"))

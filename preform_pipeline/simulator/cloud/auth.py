"""OAuth2 client-credentials tokens of the Dashboard simulator: issue, check, expire, revoke.

One application (client id and secret) is known. The token endpoint answers as the contract
documents:

* ``grant_type=client_credentials`` with the right id and secret (form fields, or HTTP Basic)
  → 200 ``{"access_token", "token_type": "Bearer", "expires_in", "scope"}``;
* a known client id with a wrong secret → 400 ``{"error": "invalid_grant", ...}``;
* no or an unknown client id → 401 ``{"error": "invalid_client"}``;
* another grant type → 400 ``{"error": "unsupported_grant_type"}``.

A token is accepted for ``lifetime_s`` seconds on the monotonic clock (86,400 s by default, as
the Web API documents; tests pass a few seconds), until it is revoked. Revoking needs the
application's credentials and answers 200 with no body, whether or not the token was known
(RFC 7009); a revoke request that names no token (the contract makes ``token`` required) is
400 ``{"error": "invalid_request", ...}``, checked before the credentials, as oauthlib (behind
django-oauth-toolkit) checks it. Token values and the secret never reach a log.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from preform_pipeline.logging import get_logger

__all__ = [
    "DEFAULT_TOKEN_LIFETIME_S",
    "TOKEN_SCOPE",
    "AuthFailure",
    "Grant",
    "TokenStore",
    "check_revocation",
    "parse_form",
]

log = get_logger(__name__)

#: The Web API's documented token lifetime.
DEFAULT_TOKEN_LIFETIME_S: Final = 86_400.0
TOKEN_SCOPE: Final = "developer-api"
_TOKEN_BYTES: Final = 32


class AuthFailure(Exception):
    """A refused token request or API call: the HTTP status and JSON body to answer with."""

    def __init__(self, status: int, body: Mapping[str, Any], *, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.body = dict(body)
        self.reason = reason


@dataclass(frozen=True)
class Grant:
    """An issued token: who holds it and when it stops working (monotonic seconds)."""

    value: str = field(repr=False)
    user: str
    expires_at: float
    lifetime_s: float


def parse_form(body: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (last value wins on repeats)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    return dict(urllib.parse.parse_qsl(text, keep_blank_values=True))


def check_revocation(form: Mapping[str, str]) -> None:
    """A revoke request must name its token: :class:`AuthFailure` (400) when it names none.

    oauthlib's revocation endpoint checks this first, before the client's credentials; the
    contract requires ``token``. The in-process fake calls this too, so both refuse alike.
    """
    if not form.get("token"):
        raise AuthFailure(
            400,
            {"error": "invalid_request", "error_description": "Missing token parameter."},
            reason="no token to revoke",
        )


def _basic(authorization: str | None) -> tuple[str, str] | None:
    """Client id and secret from an HTTP Basic ``Authorization`` header, if it holds them."""
    if not authorization:
        return None
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    return urllib.parse.unquote(client_id), urllib.parse.unquote(secret)


def _same(given: str, expected: str) -> bool:
    # Constant time, so the simulator does not teach a timing attack; bytes, so any text works.
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class TokenStore:
    """Issues and checks the access tokens of one application."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        lifetime_s: float = DEFAULT_TOKEN_LIFETIME_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not client_id or not client_secret:
            raise ValueError("the simulated application needs a client id and a secret")
        if lifetime_s <= 0:
            raise ValueError(f"token lifetime must be > 0 s, not {lifetime_s}")
        self.client_id = client_id
        self._secret = client_secret
        self.lifetime_s = lifetime_s
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, Grant] = {}
        self.issued = 0
        self.revoked = 0

    def __repr__(self) -> str:
        return f"TokenStore(client_id={self.client_id!r}, lifetime_s={self.lifetime_s!r})"

    # -- the token endpoint -------------------------------------------------------------------

    def authenticate_client(self, form: Mapping[str, str], authorization: str | None) -> str:
        """The client id, when the form fields (or HTTP Basic) carry the right id and secret;
        :class:`AuthFailure` as the token endpoint answers otherwise."""
        basic = _basic(authorization)
        client_id, secret = basic if basic else (form.get("client_id"), form.get("client_secret"))
        if not client_id or not _same(client_id, self.client_id):
            raise AuthFailure(401, {"error": "invalid_client"}, reason="unknown client id")
        if not secret or not _same(secret, self._secret):
            raise AuthFailure(
                400,
                {"error": "invalid_grant", "error_description": "Invalid credentials given."},
                reason="wrong client secret",
            )
        return client_id

    @staticmethod
    def check_grant(form: Mapping[str, str]) -> None:
        """Only the client-credentials grant is offered; :class:`AuthFailure` (400) otherwise."""
        grant_type = form.get("grant_type")
        if not grant_type:
            raise AuthFailure(
                400,
                {"error": "invalid_request", "error_description": "Missing grant type."},
                reason="no grant_type",
            )
        if grant_type != "client_credentials":
            raise AuthFailure(
                400, {"error": "unsupported_grant_type"}, reason=f"grant_type {grant_type!r}"
            )

    def issue(self, user: str) -> Grant:
        """A new token for ``user`` (an authenticated client id)."""
        now = self._clock()
        grant = Grant(
            value=secrets.token_urlsafe(_TOKEN_BYTES),
            user=user,
            expires_at=now + self.lifetime_s,
            lifetime_s=self.lifetime_s,
        )
        with self._lock:
            # Forget expired tokens here, so a long run does not accumulate them.
            for value in [v for v, g in self._tokens.items() if g.expires_at <= now]:
                del self._tokens[value]
            self._tokens[grant.value] = grant
            self.issued += 1
        log.info("dashboard_token_issued", client_id=user, expires_in=self.lifetime_s)
        return grant

    def grant(self, form: Mapping[str, str], authorization: str | None = None) -> Grant:
        """The whole token endpoint: check the grant and the client, issue a token."""
        self.check_grant(form)
        return self.issue(self.authenticate_client(form, authorization))

    @staticmethod
    def answer(grant: Grant) -> dict[str, Any]:
        """The token endpoint's 200 body."""
        return {
            "access_token": grant.value,
            "token_type": "Bearer",
            "expires_in": round(grant.lifetime_s),
            "scope": TOKEN_SCOPE,
        }

    def revoke(self, form: Mapping[str, str], authorization: str | None = None) -> bool:
        """Revoke ``form["token"]``; True when it was a live token. Needs the client's secret."""
        check_revocation(form)
        try:
            self.authenticate_client(form, authorization)
        except AuthFailure as exc:
            # The revoke endpoint documents 401 invalid_client for any refused client.
            raise AuthFailure(401, {"error": "invalid_client"}, reason=exc.reason) from None
        with self._lock:
            known = self._tokens.pop(form.get("token", ""), None) is not None
            if known:
                self.revoked += 1
        log.info("dashboard_token_revoked", known=known)
        return known

    # -- API requests -------------------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> str:
        """The user a bearer ``Authorization`` header belongs to; :class:`AuthFailure` (401)."""
        scheme, _, value = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthFailure(
                401,
                {"detail": "Authentication credentials were not provided."},
                reason="no bearer token",
            )
        with self._lock:
            grant = self._tokens.get(value.strip())
            if grant is not None and grant.expires_at <= self._clock():
                del self._tokens[grant.value]
                log.info("dashboard_token_expired", client_id=grant.user)
                raise AuthFailure(
                    401, {"detail": "Access token has expired."}, reason="expired token"
                )
        if grant is None:
            raise AuthFailure(
                401, {"detail": "Invalid or revoked access token."}, reason="unknown token"
            )
        return grant.user

    def live_tokens(self) -> int:
        now = self._clock()
        with self._lock:
            return sum(1 for g in self._tokens.values() if g.expires_at > now)

"""OAuth2 client-credentials authentication for the Web API, as an ``httpx.Auth`` flow.

The flow fetches an access token from the token endpoint when it has none or the one it holds
is about to expire, adds it as a bearer header, and when the API still answers 401 (the token
was revoked, or the server restarted its sessions) fetches a new token and repeats the request
once. A second 401 is returned to the caller, which reports it as a refused token.

Token values and the client secret never reach a log, a repr or an error message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import httpx

from preform_pipeline.answers import USE_HTTPS, https_port_answer, redirect_target
from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.cloud.credentials import Credentials
from preform_pipeline.cloud.ratelimit import asked_to_wait_hint, asked_to_wait_message
from preform_pipeline.errors import (
    CloudAuthError,
    CloudError,
    CloudRateLimitError,
    CloudUnavailableError,
    RequestInfo,
)
from preform_pipeline.logging import get_logger, hide_secrets
from preform_pipeline.retryafter import (
    WAITED_EXTENSION,
    AnswersWait,
    parse_retry_after,
    resume_time,
)

__all__ = [
    "DEFAULT_TOKEN_LIFETIME_S",
    "DEFAULT_TOKEN_REFRESH_MARGIN_S",
    "MAX_REFRESH_MARGIN_FRACTION",
    "NOT_THE_WEB_API_HINT",
    "REVOKE_PATH",
    "TOKEN_PATH",
    "AccessToken",
    "ClientCredentialsAuth",
    "SendFunction",
    "https_port_error",
    "redirect_error",
]

log = get_logger(__name__)

TOKEN_PATH = "/developer/v1/o/token/"
REVOKE_PATH = "/developer/v1/o/revoke_token/"

#: Token lifetime assumed when the token answer omits ``expires_in`` (the documented lifetime).
DEFAULT_TOKEN_LIFETIME_S = 86_400.0
#: A token is replaced this long before it expires, so no request carries a token that expires
#: on its way to the server.
DEFAULT_TOKEN_REFRESH_MARGIN_S = 300.0
#: The margin never exceeds this fraction of a token's lifetime: a short-lived token (a test
#: server's) would otherwise count as expiring from the moment it arrived.
MAX_REFRESH_MARGIN_FRACTION = 0.5

_HIDDEN = "[hidden]"

#: What helps when something other than the Web API answers in its place: the Web API never
#: redirects and always answers JSON, a guest network's sign-in page does neither.
NOT_THE_WEB_API_HINT = (
    "check that the base URL points at the Formlabs Web API and that this network reaches "
    "it directly: a sign-in page (a guest or hotel Wi-Fi's captive portal) or a proxy may be "
    "answering in its place"
)

#: Sends one request without authentication and returns the answer, body read.
SendFunction = Callable[[httpx.Request], httpx.Response]


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and when it was obtained (monotonic seconds); the value never shows."""

    value: str = field(repr=False)
    token_type: str
    expires_in: float
    obtained_at: float
    scope: str | None = None

    @property
    def expires_at(self) -> float:
        return self.obtained_at + self.expires_in

    def __repr__(self) -> str:
        return (
            f"AccessToken(value={_HIDDEN}, token_type={self.token_type!r}, "
            f"expires_in={self.expires_in!r}, scope={self.scope!r})"
        )

    __str__ = __repr__


class ClientCredentialsAuth(httpx.Auth):
    """Bearer authentication with a token cached until shortly before it expires."""

    requires_response_body = True

    def __init__(
        self,
        credentials: Credentials,
        *,
        token_url: str,
        revoke_url: str,
        clock: Clock = SYSTEM_CLOCK,
        refresh_margin_s: float = DEFAULT_TOKEN_REFRESH_MARGIN_S,
    ) -> None:
        self._credentials = credentials
        self.token_url = token_url
        self.revoke_url = revoke_url
        self._clock = clock
        self.refresh_margin_s = refresh_margin_s
        self._lock = threading.Lock()
        self._token: AccessToken | None = None
        self.tokens_fetched = 0

    def __repr__(self) -> str:
        return f"ClientCredentialsAuth(client_id={self._credentials.client_id!r})"

    @property
    def credentials(self) -> Credentials:
        """The client id and secret this flow authenticates with (the secret never shows)."""
        return self._credentials

    @property
    def token(self) -> AccessToken | None:
        """The cached token, fresh or not (``None`` before the first request or after revoke)."""
        with self._lock:
            return self._token

    def needs_token(self) -> bool:
        """True when the next request would fetch a token first."""
        with self._lock:
            return self._usable() is None

    def forget(self) -> None:
        """Drop the cached token; the next request fetches a new one."""
        with self._lock:
            self._token = None

    # -- the flow -----------------------------------------------------------------------------

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        with self._lock:
            token = self._usable()
            reason = "first" if self._token is None else "expiring"
        if token is None:
            token = self._accept_token(reason, (yield self.token_request()))
        request.headers["Authorization"] = f"Bearer {token.value}"
        response = yield request
        if response.status_code != httpx.codes.UNAUTHORIZED:
            return
        with self._lock:
            # Another thread may have replaced the refused token already; use its one.
            fresh = self._token if self._token is not token else None
            if fresh is None:
                self._token = None
        if fresh is None:
            fresh = self._accept_token("rejected", (yield self.token_request()))
        request.headers["Authorization"] = f"Bearer {fresh.value}"
        yield request

    def token_request(self) -> httpx.Request:
        """The client-credentials grant, form-encoded as the token endpoint expects."""
        return httpx.Request(
            "POST",
            self.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": self._credentials.client_id,
                "client_secret": self._credentials.client_secret,
            },
            headers={"Accept": "application/json"},
        )

    def revoke_request(self, token: AccessToken) -> httpx.Request:
        return httpx.Request(
            "POST",
            self.revoke_url,
            data={
                "token": token.value,
                "client_id": self._credentials.client_id,
                "client_secret": self._credentials.client_secret,
            },
            headers={"Accept": "application/json"},
        )

    def revoke(self, send: SendFunction) -> bool:
        """Revoke the cached token through ``send``; False when there was none to revoke.

        The token is forgotten only once the server confirms, so a failed revoke leaves a
        token the caller can still revoke later.
        """
        token = self.token
        if token is None:
            return False
        response = send(self.revoke_request(token))
        if response.status_code != httpx.codes.OK:
            raise self._endpoint_error(response, "revoking the access token failed")
        with self._lock:
            if self._token is token:
                self._token = None
        log.info("web_api_token_revoked")
        return True

    # -- internals ----------------------------------------------------------------------------

    def _usable(self) -> AccessToken | None:
        token = self._token
        if token is None:
            return None
        margin = min(self.refresh_margin_s, token.expires_in * MAX_REFRESH_MARGIN_FRACTION)
        return token if self._clock.monotonic() < token.expires_at - margin else None

    def _accept_token(self, reason: str, response: httpx.Response) -> AccessToken:
        if response.is_success and response.status_code != httpx.codes.OK:
            # Not a refusal (session 47's fuzzer: "refused to issue an access token (HTTP
            # 204)"): a success of another kind than the token endpoint's, whoever sent it.
            raise CloudError(
                "the token endpoint answered a success other than the 200 that comes with an "
                "access token",
                request=_request_info(response),
                status_code=response.status_code,
                hint=NOT_THE_WEB_API_HINT,
            )
        if response.status_code != httpx.codes.OK:
            raise self._endpoint_error(response, "the Web API refused to issue an access token")
        try:
            body = response.json()
        except ValueError:
            body = None
        value = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise CloudError(
                "the token endpoint answered without an access token",
                request=_request_info(response),
                status_code=response.status_code,
                hint=NOT_THE_WEB_API_HINT,
            )
        assert isinstance(body, dict)
        expires_in = body.get("expires_in")
        lifetime = (
            float(expires_in)
            if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool)
            and expires_in > 0
            else DEFAULT_TOKEN_LIFETIME_S
        )
        scope = body.get("scope")
        token = AccessToken(
            value=value,
            token_type=str(body.get("token_type") or "Bearer"),
            expires_in=lifetime,
            obtained_at=self._clock.monotonic(),
            scope=scope if isinstance(scope, str) else None,
        )
        with self._lock:
            self._token = token
            self.tokens_fetched += 1
        log.info("web_api_token_fetched", reason=reason, expires_in=lifetime, scope=token.scope)
        return token

    def _endpoint_error(self, response: httpx.Response, message: str) -> CloudError:
        """Turn a failed token or revoke answer into the matching error, secrets scrubbed."""
        status = response.status_code
        body = _scrubbed_body(response, self._secrets())
        request = _request_info(response)
        if response.is_redirect:
            return redirect_error(response, request, message)
        https = https_port_error(response, request, message)
        if https is not None:  # a 400, but not about the client id or its secret
            return https
        if status in (httpx.codes.BAD_REQUEST, httpx.codes.UNAUTHORIZED):
            reason = ""
            if isinstance(body, dict):
                code = body.get("error")
                detail = body.get("error_description")
                reason = ": ".join(str(part) for part in (code, detail) if part)
            return CloudAuthError(
                f"{message}{' (' + reason + ')' if reason else ''}; the client id "
                f"{self._credentials.client_id!r} and its secret were not accepted",
                request=request,
                status_code=status,
                body=body,
                hint=f"{self._credentials.where_to_check()}; the application may have been "
                "deleted or its secret regenerated on the Dashboard's Developer Tools page",
            )
        if status == httpx.codes.TOO_MANY_REQUESTS:
            now = self._clock.now()
            wait_s = parse_retry_after(response.headers.get("Retry-After"), now)
            # Said as the limiter says a hold it keeps (the next run's words): a cron verify
            # starts with this request, so a spent account meets it here first, and "wait
            # for the Retry-After time" named no time (session 48's trial).
            if wait_s is None:
                text, hint = "too many requests", "wait a while, or lower the request rate"
            else:
                text = asked_to_wait_message(wait_s)
                hint = asked_to_wait_hint(resume_time(now, wait_s))
            return CloudRateLimitError(
                f"{message}: {text}",
                retry_after_s=wait_s,
                request=request,
                status_code=status,
                body=body,
                hint=hint,
            )
        if status >= httpx.codes.INTERNAL_SERVER_ERROR:
            wait = AnswersWait.of(status, response.headers.get("Retry-After"), self._clock.now(),
                                  waited_s=response.extensions.get(WAITED_EXTENSION, 0.0))
            return CloudUnavailableError(
                wait.after(f"{message}: the server failed"),
                retry_after_s=wait.seconds,
                request=request,
                status_code=status,
                body=body,
                hint="the Web API is having trouble (or is down for maintenance); try again "
                f"{wait.when}",
            )
        return CloudError(message, request=request, status_code=status, body=body)

    def _secrets(self) -> tuple[str, ...]:
        token = self._token
        values = [self._credentials.client_secret]
        if token is not None:
            values.append(token.value)
        return tuple(v for v in values if v)


def redirect_error(response: httpx.Response, request: RequestInfo, message: str) -> CloudError:
    """The error for a redirect: never followed (it would carry the credentials or the token
    wherever it points), and never the Web API's own answer."""
    return CloudUnavailableError(
        f"{message}: the answer was a redirect to "
        f"{redirect_target(response.headers.get('Location'))}",
        request=request,
        status_code=response.status_code,
        hint=NOT_THE_WEB_API_HINT,
    )


def https_port_error(
    response: httpx.Response, request: RequestInfo, message: str
) -> CloudError | None:
    """The error for a proxy's page saying that plain HTTP was sent to its HTTPS port (the
    base URL written ``http://``), else None: the same answer the Local API client knows
    (answers.py), never taken for a refused request or refused credentials."""
    said = https_port_answer(response.status_code, response.text)
    if said is None:
        return None
    return CloudError(f"{message}: {said}", request=request, status_code=response.status_code,
                      hint=f"{USE_HTTPS} (cloud.base_url in the settings)")


def _request_info(response: httpx.Response) -> RequestInfo:
    request = response.request
    return RequestInfo(request.method, hide_secrets(str(request.url.copy_with(query=None))))


def _scrubbed_body(response: httpx.Response, secrets: tuple[str, ...]) -> Any:
    """The answer's JSON (or text) with any echo of a secret replaced."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text[:2000]
    return _scrub(body, secrets)


def _scrub(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, _HIDDEN)
        return value
    if isinstance(value, dict):
        return {k: _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    return value

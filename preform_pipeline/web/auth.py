"""Who is asking, and may they: sessions, tokens, roles, and cross-site request checks.

* **Login** (browsers): a user's name and secret on ``/login`` give a session cookie
  (``HttpOnly``, ``SameSite=Strict``); sessions live in memory, so a restart logs everyone out.
* **Tokens** (scripts, Prometheus): ``Authorization: Bearer NAME:SECRET``. A wrong one is 401.
* **Roles**: a viewer sees every page; only an operator acts (else 403).
* **Cross-site requests**: every POST must come from this site's own pages: a browser's
  ``Origin`` must be this server's, ``Sec-Fetch-Site`` must be same-origin (or absent), and a
  session's POST must carry its CSRF token (a form field). A request with a bearer token carries
  no ambient credential, so it needs no CSRF token; the Origin check still applies.

Secrets are compared with :func:`~preform_pipeline.settings.web.check_secret` against their
scrypt hashes; a verified bearer token is remembered only as its SHA-256 for this process, so
scrypt does not run on every scrape. Nothing here logs a secret, a cookie or a token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.logging import get_logger
from preform_pipeline.settings.web import WebUser, check_secret

__all__ = [
    "SESSION_COOKIE",
    "SESSION_MARK_COOKIE",
    "SESSION_MARK_MAX_AGE_S",
    "SESSION_TTL_S",
    "Access",
    "Gate",
    "Session",
    "browser_signed_out",
    "cross_site_reason",
    "csrf_matches",
    "session_ended",
]

log = get_logger(__name__)

SESSION_COOKIE: Final = "pp_session"
#: Set beside the session cookie at login, it says only that a session was here: no token,
#: nothing secret. It outlives the browser (a Max-Age) where the session cookie does not, so
#: a browser restarted, or its session's cookie cleared, is told its session ended; a first
#: visit, and a browser that logged out, have none. Removed at logout.
SESSION_MARK_COOKIE: Final = "pp_had_session"
#: How long the mark is kept: 400 days, the most a browser keeps any cookie (RFC 6265bis).
SESSION_MARK_MAX_AGE_S: Final = 400 * 86400
#: A session ends after this long without a request (a tablet left on a shelf logs out).
SESSION_TTL_S: Final = 12 * 3600.0
_BEARER: Final = "bearer "


@dataclass(frozen=True)
class Session:
    """A logged-in browser: the user and the CSRF token its forms carry."""

    user: WebUser
    csrf: str


@dataclass(frozen=True)
class Access:
    """The outcome of authenticating one request."""

    user: WebUser | None
    session: Session | None = None
    #: True when a credential was offered and was wrong (401, not a redirect to the login).
    refused: bool = False
    #: True when a browser's session cookie names a session that has ended (the server
    #: restarted, or it went unused too long): the browser is sent to log in again.
    ended: bool = False


class Gate:
    """Checks credentials against the configured users; holds the sessions."""

    def __init__(self, users: tuple[WebUser, ...], clock: Clock = SYSTEM_CLOCK) -> None:
        self.users = {u.name: u for u in users}
        self._clock = clock
        self._sessions: dict[str, tuple[Session, float]] = {}
        self._tokens: dict[str, str] = {}  # sha256(name:secret) → name, once checked
        self._lock = threading.Lock()

    def login(self, name: str, secret: str) -> tuple[str, Session] | None:
        """A new session id and session for a right name and secret, else None."""
        user = self._check(name, secret)
        if user is None:
            # A name no user has may be a password typed into the wrong field: not logged.
            log.warning("web_login_refused", user=name if name in self.users else "(unknown)")
            return None
        session = Session(user, secrets.token_urlsafe(32))
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[sid] = (session, self._clock.monotonic())
        log.info("web_login", user=user.name, role=user.role)
        return sid, session

    def logout(self, sid: str | None) -> None:
        if sid:
            with self._lock:
                self._sessions.pop(sid, None)

    def _check(self, name: str, secret: str) -> WebUser | None:
        user = self.users.get(name)
        if user is None or not secret:
            # The same work as for a known user, so timing does not say which names exist.
            check_secret(secret or "-", _DUMMY_HASH)
            return None
        return user if check_secret(secret, user.secret_hash) else None

    def authenticate(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> Access:
        """The user of a request: a bearer token first, then the session cookie."""
        header = headers.get("authorization", "")
        if header:
            if not header.lower().startswith(_BEARER):
                return Access(None, refused=True)
            user = self._bearer(header[len(_BEARER):].strip())
            return Access(user) if user is not None else Access(None, refused=True)
        sid = cookies.get(SESSION_COOKIE)
        if not sid:
            return Access(None)
        now = self._clock.monotonic()
        with self._lock:
            found = self._sessions.get(sid)
            if found is None or now - found[1] > SESSION_TTL_S:
                self._sessions.pop(sid, None)
                return Access(None, ended=True)
            self._sessions[sid] = (found[0], now)
        return Access(found[0].user, found[0])

    def _bearer(self, token: str) -> WebUser | None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            known = self._tokens.get(digest)
        if known is not None and known in self.users:
            return self.users[known]
        name, sep, secret = token.partition(":")
        user = self._check(name, secret) if sep else None
        if user is None:
            log.warning("web_token_refused",
                        user=name if sep and name in self.users else "(unknown)")
            return None
        with self._lock:
            self._tokens[digest] = user.name
        return user


def csrf_matches(session: Session | None, offered: str | None) -> bool:
    """A session's POST carries its own CSRF token; a bearer request has no session."""
    if session is None:
        return True
    return offered is not None and hmac.compare_digest(session.csrf, offered)


def browser_signed_out(headers: Mapping[str, str]) -> bool:
    """Whether a request that offers no credential came from a page this browser had open
    while logged in: a form's press (a browser navigates to its answer) or a page's live
    refresh (``X-Live``). Its cookie is gone (the browser was restarted, or its cookies were
    cleared), so it is sent to log in again like an ended session; a script's request, which
    does neither, is answered 401 for its status to be read."""
    return (headers.get("sec-fetch-mode") == "navigate" or headers.get("x-live") == "1"
            or "text/html" in headers.get("accept", ""))


def cross_site_reason(headers: Mapping[str, str], scheme: str) -> str | None:
    """Why a state-changing request looks cross-site (None: it does not)."""
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return f"Sec-Fetch-Site is {fetch_site}"
    origin = headers.get("origin")
    if origin is not None:
        host = headers.get("host", "")
        parts = urlsplit(origin)
        if origin == "null" or parts.netloc != host or parts.scheme != scheme:
            return "the Origin is not this server"
    return None


_DUMMY_HASH: Final = (
    "scrypt$16384$8$1$00000000000000000000000000000000$"
    + "00" * 32
)


def session_ended(access: Access, cookies: Mapping[str, str]) -> bool:
    """Whether a browser without a session had one that ended: its cookie names a session
    the dashboard no longer has, or it has lost that cookie but kept the mark of one
    (:data:`SESSION_MARK_COOKIE`)."""
    if access.user is not None or access.refused:
        return False
    return access.ended or SESSION_MARK_COOKIE in cookies

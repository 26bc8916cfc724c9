"""PostgreSQL store URLs: recognising them, printing them without a password, finding the password.

A password never needs to be in the URL (and should not be: settings files get shared). It
comes, in this order, from ``PREFORM_PIPELINE_STORE_PASSWORD``, from the file named by
``PREFORM_PIPELINE_STORE_PASSWORD_FILE`` (a Docker/Kubernetes secret, a file only the service
account reads), or from libpq's own ``PGPASSWORD`` / ``PGPASSFILE`` (``~/.pgpass``,
``%APPDATA%\\postgresql\\pgpass.conf`` on Windows). A URL that does carry one is only ever
shown through :func:`redact_url`.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final
from urllib.parse import unquote, urlsplit, urlunsplit

from preform_pipeline.errors import StoreError
from preform_pipeline.userpath import secret_file_named

__all__ = [
    "PASSWORD_ENV",
    "PASSWORD_FILE_ENV",
    "check_login",
    "check_url",
    "hide_url",
    "is_postgres_url",
    "libpq_url",
    "redact_url",
    "store_password",
]

PASSWORD_ENV: Final = "PREFORM_PIPELINE_STORE_PASSWORD"
PASSWORD_FILE_ENV: Final = "PREFORM_PIPELINE_STORE_PASSWORD_FILE"
_SCHEMES: Final = ("postgresql://", "postgres://")
#: Characters that end a URL's login early where libpq reads it (it splits at the first ``@``
#: and ends the host at ``/``), so a login holding one is misread: part of the password becomes
#: the host or the database, and lands in libpq's messages.
_LOGIN_BREAKERS: Final = frozenset("@/")
_BAD_ESCAPE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
#: A host name's longest part between dots and longest whole, in its ASCII form (RFC 1035;
#: Python's IDNA codec, which psycopg's resolving runs, raises UnicodeError past the first).
_LABEL_MAX: Final = 63
_NAME_MAX: Final = 253
#: How much of a refused host name a message shows: the console cuts a line past 300.
_HOST_SHOWN: Final = 40
#: A ``password=`` field of a URL's query or a libpq connection string: its value (quoted,
#: or up to a blank, ``&`` or quote) is hidden, whatever it is.
_PASSWORD_FIELD: Final = re.compile(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&'\"]+)")
#: Where a message gives a password as one (``{}``: the password, escaped): a whole quoted
#: token, or a login between the user's ``:`` and the host's ``@``.
_AS_PASSWORD: Final = "(?<=\")(?:{0})(?=\")|(?<=')(?:{0})(?=')|(?<=:)(?:{0})(?=@)"


def is_postgres_url(text: str) -> bool:
    """True for ``postgresql://…`` and ``postgres://…`` (any case)."""
    return text.strip().lower().startswith(_SCHEMES)


def libpq_url(url: str) -> str:
    """``url`` with its scheme in lower case: the settings take ``POSTGRESQL://`` as URLs do,
    libpq only ``postgresql://`` (another case is read as a "connection option")."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.lower()}{sep}{rest}" if is_postgres_url(url) else url


def _login(url: str) -> tuple[int, int] | None:
    """Where the login a person wrote stands in ``url`` (start, end: the last ``@`` before the
    query), or None without one. A password holding ``/`` ends a URL's authority early for
    urlsplit and libpq alike, so the login is found by its ``@``, not by the authority. The
    query starts at the first ``?`` after the first ``@`` or ``/``: libpq ends a login only
    at those two, so a ``?`` before them is the password's (it connects) and must be hidden
    with it."""
    start = url.find("://")
    if start < 0:
        return None
    start += len("://")
    first = min((i for i in (url.find("@", start), url.find("/", start)) if i >= 0),
                default=len(url))
    query = url.find("?", first)
    end = url.rfind("@", start, query if query >= 0 else len(url))
    if end >= 0:
        return start, end
    # A password holding "/" and then "?" (``u:pa/ss?x@host``) put its "?" after that "/":
    # read as a query, its "@" hid the login, shown in clear and never refused. An "@" that
    # is a query value's comes after the "=" of its item; one with no "=" between the "?"
    # before it and itself ends a login (libpq misreads it: check_login refuses it).
    end = url.rfind("@", start)
    while end >= 0:
        mark = url.find("?", start, end)
        if mark < 0 or "=" not in url[mark:end]:
            return start, end
        end = url.rfind("@", start, mark)
    return None


def check_login(url: str) -> None:
    """Refuse a URL whose user or password libpq would misread (a raw ``@`` or ``/``, a ``%``
    not starting an escape), naming neither: libpq would take part of the password for the
    host or database and quote it in its messages, or say "invalid percent-encoded token"
    quoting it."""
    span = _login(url)
    if span is None:
        return
    login = url[span[0]:span[1]]
    if _LOGIN_BREAKERS.isdisjoint(login) and not _BAD_ESCAPE.search(login):
        return
    # Short: the console cuts an error line past 300 characters, and the URL comes first.
    raise StoreError(
        f"{redact_url(url)}: the URL's user or password holds @, / or a bare %, which it must "
        "percent-encode (@ %40, / %2F, % %25)",
        hint=f"or leave the password out of the URL: {PASSWORD_ENV} (docs/multi-node.md)",
    )


def check_url(url: str) -> None:
    """Refuse a store URL libpq or psycopg would misread or fail on before any server is
    asked: a login it would misread (:func:`check_login`), a host that is no host name
    (:func:`_check_host`)."""
    check_login(url)
    for host in _hosts(url):
        _check_host(host)


def _hosts(url: str) -> list[str]:
    """The hosts ``url`` names as libpq reads them (percent-decoded, without ports): the
    authority's comma-separated list, after the login, and the query's ``host=`` items."""
    start = url.find("://")
    if start < 0:
        return []
    span = _login(url)
    start = span[1] + 1 if span is not None else start + len("://")
    end = min((i for i in (url.find("/", start), url.find("?", start)) if i >= 0),
              default=len(url))
    found = []
    for item in url[start:end].split(","):
        if not item.startswith("["):  # an IPv6 address, which libpq reads itself
            found.append(unquote(item.rpartition(":")[0] if ":" in item else item))
    query = url.partition("?")[2].partition("#")[0]
    for item in query.split("&"):
        key, _, value = item.partition("=")
        if key.lower() == "host":
            found += unquote(value).split(",")
    return [host for host in found if host and not host.startswith("/")]


def _check_host(host: str) -> None:
    """Refuse a host that breaks a host name's rules: psycopg's resolving raised UnicodeError
    (exit 70, session 45's fuzzer) for a part over 63 characters or an empty one, and a name
    over 253 characters could never resolve. A final dot is a name's own (``db.lab.``).
    The rules are the ASCII form's, the one resolved: an internationalised name's own
    characters may be more than it (a soft hyphen is dropped) and its dots other than ``.``
    (``。``), so a name whose ASCII form keeps them is let through."""
    try:
        written = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        written, failed = host, str(exc)
    else:
        failed = ""
    name = written[:-1] if written.endswith(".") else written
    parts = name.split(".")
    if len(name) > _NAME_MAX:
        rule = f"it is {len(name)} characters long, and a host name is at most {_NAME_MAX}"
    elif not failed:
        return
    elif any(len(part) > _LABEL_MAX for part in parts):
        longest = max(len(part) for part in parts)
        rule = (f"a part of it between dots is {longest} characters long, and each is at most "
                f"{_LABEL_MAX}")
    elif not all(parts):
        rule = "it has an empty part between dots (two dots together, or a dot first)"
    else:
        rule = f"it cannot be written as a host name in ASCII (IDNA: {failed})"
    shown = host if len(host) <= _HOST_SHOWN else f"{host[:_HOST_SHOWN]}..."
    raise StoreError(
        f"the store URL's host {shown!r} is not a valid host name: {rule}",
        hint="give the database server's host name or address in the URL (store.url or "
        "--store)",
    )


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (user, host, port and database kept)."""
    span = _login(url)
    if span is not None and ":" in url[span[0]:span[1]]:
        # A login libpq would misread (check_login refuses it) is hidden up to its last "@".
        user = url[span[0]:span[1]].split(":", 1)[0]
        url = f"{url[:span[0]]}{user}:***{url[span[1]:]}"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://(unreadable URL)"
    if _query_passwords(url):  # the query as libpq reads it (_query_at), not urlsplit's
        at = _query_at(url)
        url = url[:at + 1] + "&".join(
            "password=***" if _is_password_item(item) else item
            for item in url[at + 1:].split("&"))
        parts = urlsplit(url)
    elif parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    host = netloc[2]
    user = parts.username or ""
    login = f"{user}:***@" if netloc[1] else ""
    return urlunsplit((parts.scheme, f"{login}{host}", parts.path, parts.query, parts.fragment))


def _query_at(url: str) -> int:
    """Where ``url``'s query starts as libpq reads it (its ``?``), or -1 without one: at the
    first ``?`` after the login, if any (a ``?`` of the password is the password's). libpq
    knows no fragment: a ``#`` before that ``?`` is the database name's, and urlsplit, which
    starts a fragment there, read a ``password=`` after it as no query item (shown in clear
    by :func:`redact_url`: the review of session 48)."""
    span = _login(url)
    start = span[1] if span is not None else max(url.find("://"), 0)
    return url.find("?", start)


def _is_password_item(item: str) -> bool:
    """Whether a query item (``key=value``) gives the password: libpq decodes a key's
    ``%`` escapes (``%70assword=`` is ``password=``); any case, as ever here."""
    return unquote(item.partition("=")[0]).strip().lower() == "password"


def _query_passwords(url: str) -> list[str]:
    """The values of ``url``'s ``password=`` items, as libpq reads its query (_query_at)."""
    at = _query_at(url)
    return [item.partition("=")[2] for item in url[at + 1:].split("&")
            if _is_password_item(item)] if at >= 0 else []


def hide_url(text: str, url: str) -> str:
    """``text`` (a driver's message about ``url``) with ``url`` as :func:`redact_url` shows it,
    and any password the URL carries (as written or decoded) as ``***`` where the message
    gives it as the password: a quoted token (libpq quotes a URL it cannot parse whole, and a
    password's badly encoded part: ``invalid percent-encoded token: "secr%ZZet"``), a URL's
    login (``user:secret@``) and a ``password=`` field. Only there: a short password is in
    words of the message too (``p`` in ``port 1 failed``), which stay as they are."""
    hidden = _PASSWORD_FIELD.sub(r"\1***", text.replace(url, redact_url(url)))
    # The login's password as libpq reads it (by its "@", as redact_url hides it), also in
    # a URL urlsplit refuses: libpq quotes such a URL whole ("invalid connection option").
    span = _login(url)
    found = [url[span[0]:span[1]].partition(":")[2]] if span is not None else []
    # The query's passwords as libpq reads them (_query_at): urlsplit starts the query at a
    # "?" of the password, where ``password=`` is no item of its own (session 48's fuzz: its
    # badly encoded value was quoted in clear), and knows a "#" libpq does not.
    found += _query_passwords(url)
    with contextlib.suppress(ValueError):
        found += [urlsplit(url).password or ""]
    for secret in sorted({s for f in found for s in (f, unquote(f))}, key=len, reverse=True):
        if secret:
            hidden = re.sub(_AS_PASSWORD.format(re.escape(secret)), "***", hidden)
    return hidden


def store_password(environ: Mapping[str, str] | None = None) -> str | None:
    """The store's password from the environment or its file; None leaves it to libpq.

    A named file that cannot be read is a StoreError naming the file (never its content).
    """
    env = os.environ if environ is None else environ
    direct = env.get(PASSWORD_ENV)
    if direct:
        return direct
    named = env.get(PASSWORD_FILE_ENV)
    if not named:
        return None
    try:
        # One trailing newline is how editors and `echo` end a secret file; it is not part of it.
        return Path(named).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        # Not raised from the OSError: its text quotes the name, which may be the password.
        raise StoreError(
            f"cannot read the store password file {secret_file_named(named, Path(named))} "
            f"({exc.strerror})",
            hint=f"{PASSWORD_FILE_ENV} must name a file this account can read",
        ) from None
    except UnicodeDecodeError:
        # Not the decoder's text: it quotes the byte it could not read, a part of the secret.
        raise StoreError(
            f"cannot read the store password file {named} (it is not UTF-8 text)",
            hint="save the password file as UTF-8",
        ) from None

"""What PostgreSQL's failure to let the job store in means: one classification, read by what a
user is told (store/postgres.py) and by what a starting ``watch`` does (hotfolder/storewait.py).

A failure is one of four kinds:

- **away**: no server answered, or it is starting, stopping, recovering or closed to new
  sessions; a wait may end it. A starting ``watch`` waits for it (``store.start_wait_s``).
- **overloaded**: the server answered that it has no connection free (SQLSTATE 53300: its
  ``max_connections``, or a ``CONNECTION LIMIT`` of the user or database); a wait may end it,
  so ``watch`` waits too, and it is said as such, not as an outage.
- **refused**: the server answered no to the login (password, pg_hba.conf, no such user or
  database, no LOGIN or CONNECT): no wait cures it, so ``watch`` gives up at once.
- **misconfigured**: this side's URL or options cannot work (an sslmode the server does not
  take, a host name that does not resolve, a bad port, something not PostgreSQL at the
  address): no wait cures it either.

The SQLSTATE decides where psycopg gives one (errors of statements, sessions cut by the
server); one in no rule is a statement's own failure (a deadlock, a lock_timeout), no failure
of the connection. A failed connection has none (libpq keeps only the text of the server's
FATAL, and its own client-side errors never had one), so there libpq's and the server's
English words decide, outside the names they quote. Text in no list (another
``lc_messages``, a libpq newer than these lists) is taken as *away*: a starting ``watch``
then waits and logs each try with the error, as the message says, rather than exiting on
what may be a passing fault.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final

__all__ = [
    "AWAY_ENDING",
    "FailureKind",
    "PgFailure",
    "REFUSED_ENDING",
    "RUNNING_KEEPS_TRYING",
    "TRIES_AGAIN",
    "UNREACHABLE_HINT",
    "classify",
    "connection_failure",
    "plain_cause",
]

#: How a store error's hint ends: what comes after it. One rule for every caller and every
#: such hint: a daemon (``watch``) tries again by itself, a command that exits does not.
TRIES_AGAIN: Final = "watch tries again by itself, other commands: run them again"
#: How the hint of a failure a wait may end ends.
AWAY_ENDING: Final = f"{TRIES_AGAIN} once the database is back"
#: What helps when the server cannot be reached (the hint of *away*).
UNREACHABLE_HINT: Final = (
    "check that the database server runs and this node reaches it, and the user, database "
    "and password (PREFORM_PIPELINE_STORE_PASSWORD or its _FILE); "
    f"{AWAY_ENDING}"
)
#: How the hint of a failure no wait cures ends (*refused*, *misconfigured*): ``watch`` gives
#: up at once on it too (hotfolder/storewait.py), so "once the database is back" would lie.
REFUSED_ENDING: Final = "waiting does not cure it: correct it, then run the command again"
#: What a *running* ``watch`` or ``serve`` does about such a failure, said before
#: REFUSED_ENDING (which the console's cut of a long line keeps): it keeps trying
#: (``StoreError.outage``: a password changed on the server under it is not the work's
#: fault), so "run the command again" alone was untrue in its log and on its pages; with the
#: password it read at its start, so one corrected on this node needs it started again.
RUNNING_KEEPS_TRYING: Final = (
    "a running watch or serve keeps trying by itself, with the password it started with")
#: The whole ending of the hint of a failure no wait cures.
_NO_WAIT_ENDING: Final = f"{RUNNING_KEEPS_TRYING}; {REFUSED_ENDING}"


class FailureKind(enum.Enum):
    """What a failure says about waiting (module docstring)."""

    AWAY = "away"
    OVERLOADED = "overloaded"
    REFUSED = "refused"
    MISCONFIGURED = "misconfigured"

    @property
    def waits(self) -> bool:
        """Whether a wait may end it: a starting ``watch`` tries again for it."""
        return self in (FailureKind.AWAY, FailureKind.OVERLOADED)


@dataclass(frozen=True)
class PgFailure:
    """One classified failure: its kind and the whole hint the user reads (ending with what
    the commands do about it)."""

    kind: FailureKind
    hint: str

    @property
    def waits(self) -> bool:
        return self.kind.waits

    def hint_for(self, *, running: bool) -> str:
        """The hint as a process says it: a running ``watch`` or ``serve`` (``running``)
        keeps trying by itself (RUNNING_KEEPS_TRYING); a command that exits (``run``,
        ``jobs``, ``verify``) does not, and a clause about another process read as if it
        would (the review of session 48, ``run --dry-run``). Only the no-wait kinds' hints
        hold the clause; the others are the same for both."""
        return self.hint if running else self.hint.replace(f"{RUNNING_KEEPS_TRYING}; ", "")


_OVERLOADED_HINT: Final = (
    "the server has no connection free for the URL's user or database: its max_connections, "
    "or a CONNECTION LIMIT set on the user or the database (a limit of 0 lets no one in); "
    "close sessions that are not needed, or raise the limit; "
    f"{TRIES_AGAIN} once a connection is free"
)
_HBA_HINT: Final = ("ask the database's administrator for a pg_hba.conf entry that lets this "
                    "node in")
_MISCONFIGURED_HINT: Final = "check the URL (store.url or --store) and its options"

#: (kind, libpq's or the server's words as a lower-case pattern, what helps). The first rule
#: a try's text matches decides; the refusals and misconfigurations come first, so words an
#: outage shares with them ("does not exist", "ssl") are read as theirs.
_RULES: Final[tuple[tuple[FailureKind, re.Pattern[str], str], ...]] = tuple(
    (kind, re.compile(words), hint) for kind, words, hint in (
        (FailureKind.REFUSED, r"no password supplied|password authentication failed",
         "check the user in the URL and give its password (PREFORM_PIPELINE_STORE_PASSWORD "
         "or its _FILE, or libpq's PGPASSWORD or pgpass)"),
        # 28000 by another method than a password (peer, ident, cert, LDAP, ...).
        (FailureKind.REFUSED, r"authentication failed for user",
         "check the user in the URL, and with the database's administrator how pg_hba.conf "
         "has it log in from this node"),
        # The server takes this node over SSL only (hostssl), and the URL said sslmode=disable.
        (FailureKind.REFUSED, r"no pg_hba\.conf entry.*, no encryption\b",
         "the server has no pg_hba.conf entry for this node without SSL: if the URL says "
         "sslmode=disable and the server takes this node over SSL only (hostssl), drop "
         "sslmode=disable; else " + _HBA_HINT),
        # Before "does not exist": a root certificate file, a local user that does not.
        (FailureKind.MISCONFIGURED, r"certificate|private key",
         "check the SSL files the URL names (sslrootcert, sslcert, sslkey) and that the "
         "server's certificate is for the URL's host name"),
        # libpq found no user name to default to: the URL must give one.
        (FailureKind.MISCONFIGURED, r"local user with id \d+ does not exist|user name lookup",
         "give the user in the URL (postgresql://USER@host/database)"),
        (FailureKind.REFUSED, r"does not exist",
         "check the user and database names in the URL (the store's database is made once "
         "with CREATE DATABASE: docs/multi-node.md)"),
        (FailureKind.REFUSED, r"pg_hba\.conf", _HBA_HINT),
        # 28000 (a role without LOGIN) and 42501 (no CONNECT privilege on the database).
        (FailureKind.REFUSED, r"is not permitted to log in|permission denied for database",
         "ask the database's administrator to let the URL's user log in to its database (the "
         "role's LOGIN, the database's CONNECT privilege)"),
        (FailureKind.MISCONFIGURED, r"server does not support ssl|ssl was required",
         "the server takes no SSL connections but the URL's sslmode requires SSL: drop "
         "sslmode (or set it to prefer), or have the server's administrator turn SSL on"),
        (FailureKind.MISCONFIGURED, r"channel binding",
         "channel_binding=require needs SSL and a SCRAM password: drop it from the URL, or "
         "connect over SSL"),
        (FailureKind.MISCONFIGURED,
         r"authentication (method \d+ )?not supported|sasl authentication mechanisms"
         r"|requirepeer",
         "the server asks for a way of logging in this node's libpq cannot do: ask the "
         "database's administrator for a pg_hba.conf entry with a password method "
         "(scram-sha-256)"),
        (FailureKind.MISCONFIGURED, r"gssapi",
         "the URL's gssencmode requires GSSAPI (Kerberos) encryption this node cannot do: "
         "drop gssencmode, or get a Kerberos ticket (kinit) first"),
        (FailureKind.MISCONFIGURED,
         r"invalid response to (ssl|gssapi) negotiation|expected authentication request"
         r"|unexpected message from server during startup|received unencrypted data",
         "what answers at the URL's host and port is not a PostgreSQL server: check them"),
        (FailureKind.AWAY, r"temporary failure in name resolution",
         "the name server did not answer for the URL's host name (this node's network or DNS "
         f"is not up yet); {AWAY_ENDING}"),
        (FailureKind.MISCONFIGURED,
         r"could not be resolved|could not translate host name|no address associated",
         "check the host name in the URL (store.url or --store): no name server knows it"),
        (FailureKind.MISCONFIGURED,
         r"invalid [\w ]*value|invalid port number|invalid connection option|invalid uri"
         r"|could not parse network address|could not match \d+ |socket path .* too long"
         r"|\bin uri\b|uri query parameter|connection info string|percent-encoded"
         r"|not compiled in|service file|definition of service|host name must be specified"
         r"|unix-domain socket path|ssl protocol version",
         _MISCONFIGURED_HINT),
        (FailureKind.OVERLOADED,
         r"too many clients|too many connections for (role|database)"
         r"|remaining connection slots are reserved|out of memory|could not fork",
         _OVERLOADED_HINT),
        (FailureKind.AWAY, r"is not currently accepting connections",
         "the database is closed to new sessions (ALLOW_CONNECTIONS false, as during "
         f"maintenance): ask its administrator to open it again; {AWAY_ENDING}"),
        # target_session_attrs asked for a primary (or standby) and found the other: during a
        # failover, a wait ends it.
        (FailureKind.AWAY, r"session is (not )?read-only|hot standby mode",
         "the server is not the kind the URL's target_session_attrs asks for (a failover "
         f"under way?); {AWAY_ENDING}"),
    )
)

#: SQLSTATE classes and codes of a statement's failure (psycopg's ``sqlstate``), with their
#: kind; the hint is the first rule of that kind the text matches, else the kind's own.
_SQLSTATES: Final = {
    "08": FailureKind.AWAY,          # connection exception
    "57P01": FailureKind.AWAY,       # admin_shutdown
    "57P02": FailureKind.AWAY,       # crash_shutdown
    "57P03": FailureKind.AWAY,       # cannot_connect_now
    "57P05": FailureKind.AWAY,       # idle_session_timeout
    "25P03": FailureKind.AWAY,       # idle_in_transaction_session_timeout
    "53100": FailureKind.AWAY,       # disk_full: the store away until room is made
    # too_many_connections only: the class's others (out_of_memory, "out of shared memory"
    # of too many locks) are a statement's, on a server that let the store in.
    "53300": FailureKind.OVERLOADED,
    "28": FailureKind.REFUSED,       # invalid authorization specification
    "3D000": FailureKind.REFUSED,    # invalid_catalog_name: no such database
    "42501": FailureKind.REFUSED,    # insufficient_privilege (CONNECT)
}
_KIND_HINTS: Final = {
    FailureKind.AWAY: UNREACHABLE_HINT,
    FailureKind.OVERLOADED: _OVERLOADED_HINT,
    FailureKind.REFUSED: f"{_HBA_HINT}; {_NO_WAIT_ENDING}",
    FailureKind.MISCONFIGURED: f"{_MISCONFIGURED_HINT}; {_NO_WAIT_ENDING}",
}

#: A name libpq or the server quotes in its message (``role "x"``, ``server "db"``).
_QUOTED: Final = re.compile(r'"[^"]*"')
#: Where :func:`~preform_pipeline.store.postgres.cause_first` joins two tries: after one's
#: server (``... port 5432); ...``), not at a "; " of one message's own.
_TRIES: Final = re.compile(r"(?<=\)); ")
#: psycopg resolves a URL's host names itself and says so in Python's words
#: (``failed to resolve host 'db': [Errno -2] Name or service not known``).
_UNRESOLVED: Final = re.compile(
    r"failed to resolve host '(?P<host>[^']*)': (?:\[Errno -?\d+\] )?(?P<why>[^;\n]*)")


def plain_cause(cause: str) -> str:
    """``cause`` with psycopg's report of a host name that did not resolve said plainly: the
    host named, the resolver's words kept, no ``[Errno -2]``."""
    return _UNRESOLVED.sub(
        lambda found: f'the host name "{found["host"]}" could not be resolved: {found["why"]}',
        cause)


def classify(cause: str, sqlstate: str | None = None) -> PgFailure | None:
    """What ``cause`` (:func:`~preform_pipeline.store.postgres.cause_first`'s text: one try,
    or several joined by ``; ``) means, or None when its SQLSTATE, or without one its words,
    are in no rule (the caller decides what an unknown failure is).

    Of several tries, one a wait may end decides (another host may come back); else the
    first said (the last tried)."""
    if sqlstate is not None:
        kind = next((k for code, k in _SQLSTATES.items() if sqlstate.startswith(code)), None)
        if kind is None:
            # A statement's own failure (a deadlock, a lock wait): the words below are of
            # logging in, and "prepared statement ... does not exist" is no refused login.
            return None
        said = _by_words(cause.lower())
        if said is not None and said.kind is kind:
            return said
        return PgFailure(kind, _KIND_HINTS[kind])
    tries = [_by_words(attempt.lower()) for attempt in _TRIES.split(cause)]
    if any(t is None for t in tries):
        return None
    known = [t for t in tries if t is not None]
    return next((t for t in known if t.waits), known[0] if known else None)


def connection_failure(
    cause: str, sqlstate: str | None, *, operational: bool
) -> PgFailure | None:
    """What failure of the connection a driver's error is, or None for a statement's own (a
    bug, a constraint), which the database's log explains. ``operational``: psycopg raised an
    OperationalError.

    An OperationalError without a SQLSTATE is the connection's, whatever its words: one in no
    rule is taken as the database away, as it was always said. One with a SQLSTATE in no rule
    is a statement's own (a deadlock, a lock_timeout, the server out of memory): the server
    answered, so it is neither "cannot reach" nor waited for. Another error is the
    connection's only when it says the URL cannot work (a URL libpq could not parse is a
    ProgrammingError, without a SQLSTATE: no SQLSTATE classifies as that), not when a
    statement was refused (``permission denied for table``, 42501, is no refused login)."""
    failure = classify(cause, sqlstate)
    if operational:
        if failure is None and sqlstate is not None:
            return None
        return failure or PgFailure(FailureKind.AWAY, UNREACHABLE_HINT)
    if failure is not None and failure.kind is FailureKind.MISCONFIGURED:
        return failure
    return None


def _by_words(said: str) -> PgFailure | None:
    # The names a message quotes (a user, a database, a host, a file) are not its words: a
    # role "certificate_reader" out of connections is no SSL file, a host "gssapi-db" that
    # refused the port no Kerberos setting (both seen said so, and given up on at a start).
    text = _QUOTED.sub('""', said)
    for kind, words, hint in _RULES:
        if words.search(text):
            if kind is FailureKind.AWAY or kind is FailureKind.OVERLOADED:
                return PgFailure(kind, hint)
            return PgFailure(kind, f"{hint}; {_NO_WAIT_ENDING}")
    for away in _AWAY_WORDS:
        if away in text:
            return PgFailure(FailureKind.AWAY, UNREACHABLE_HINT)
    return None


#: libpq's and the server's words for "no server answered now", or "it is starting, stopping,
#: recovering, or cut the session" (lower case): read after every rule above.
_AWAY_WORDS: Final = (
    "connection refused",
    "the database system is",  # starting up, shutting down, in recovery mode, not (yet) ...
    "server closed the connection unexpectedly",
    "terminating connection",
    "timeout expired",
    "timed out",
    "no route to host",
    "network is unreachable",
    "no such file or directory",  # a local server's socket: not made yet, or gone
    "could not receive data from server",
    "could not send data to server",
    "connection reset",
    "ssl syscall error",
    "the connection is lost",
    "consuming input failed",
    "ssl connection has been closed unexpectedly",
    "no connection to the server",
    "write to server failed",
    "could not send startup packet",
    "canceling authentication due to timeout",
    "must be superuser to connect",  # in binary upgrade mode, during shutdown: for a while
)

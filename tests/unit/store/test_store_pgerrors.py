"""One classification of what PostgreSQL said when the store could not use it
(store/pgerrors.py): each message libpq, psycopg or the server gives (the texts as a
PostgreSQL 15 server and psycopg's libpq gave them, session 45) has one kind, and a hint that
ends with what the commands do about it."""

from __future__ import annotations

import pytest

from preform_pipeline.store.pgerrors import (
    AWAY_ENDING,
    REFUSED_ENDING,
    RUNNING_KEEPS_TRYING,
    TRIES_AGAIN,
    UNREACHABLE_HINT,
    FailureKind,
    classify,
    connection_failure,
    plain_cause,
)

_AT = ' (server "127.0.0.1", port 5432)'


def _kind(cause: str, sqlstate: str | None = None) -> FailureKind | None:
    failure = classify(cause, sqlstate)
    return None if failure is None else failure.kind


class TestEachMessageHasItsKind:
    @pytest.mark.parametrize("cause", [
        f"Connection refused{_AT}",
        f"FATAL: the database system is starting up{_AT}",
        f"FATAL: the database system is shutting down{_AT}",
        f'FATAL: database "jobs" is not currently accepting connections{_AT}',
        f"timeout expired{_AT}",
        'No such file or directory (server socket "/run/pg/.s.PGSQL.5432")',
        "consuming input failed: server closed the connection unexpectedly",
        f"session is read-only{_AT}",
        'the host name "db" could not be resolved: Temporary failure in name resolution',
        f"FATAL: must be superuser to connect in binary upgrade mode{_AT}",
        f"FATAL: canceling authentication due to timeout{_AT}",
    ], ids=["refused-port", "starting", "stopping", "closed-db", "timeout", "no-socket",
            "cut", "standby", "dns-not-up", "upgrading", "slow-login"])
    def test_what_a_wait_may_end_is_away(self, cause: str) -> None:
        assert _kind(cause) is FailureKind.AWAY

    @pytest.mark.parametrize("cause", [
        f"FATAL: sorry, too many clients already{_AT}",
        f'FATAL: too many connections for role "pipeline"{_AT}',
        f'FATAL: too many connections for database "jobs"{_AT}',
        f"FATAL: remaining connection slots are reserved for non-replication superuser "
        f"connections{_AT}",
    ], ids=["max-connections", "role-limit", "database-limit", "reserved"])
    def test_no_connection_free_is_overloaded(self, cause: str) -> None:
        assert _kind(cause) is FailureKind.OVERLOADED

    @pytest.mark.parametrize("cause", [
        f'FATAL: password authentication failed for user "pipeline"{_AT}',
        "fe_sendauth: no password supplied",
        f'FATAL: database "nodb" does not exist{_AT}',
        f'FATAL: role "ghost" does not exist{_AT}',
        f'FATAL: role "nl" is not permitted to log in{_AT}',
        f'FATAL: no pg_hba.conf entry for host "10.0.0.9", user "u", database "d", no '
        f'encryption{_AT}',
    ], ids=["password", "no-password", "no-database", "no-role", "nologin", "hostssl-only"])
    def test_the_server_s_no_is_refused(self, cause: str) -> None:
        assert _kind(cause) is FailureKind.REFUSED

    @pytest.mark.parametrize("cause", [
        f"server does not support SSL, but SSL was required{_AT}",
        'connection is bad: invalid sslmode value: "bogus"',
        'the host name "nonexistent.invalid" could not be resolved: Name or service not known',
        'could not translate host name "db.nowhere" to address: Name or service not known',
        'connection is bad: invalid port number: "99999"',
        'connection is bad: invalid integer value "54x" for connection option "port"',
        'connection is bad: could not parse network address "999.1.1.1": Name or service '
        'not known',
        'invalid URI query parameter: "nosuchoption"',
        'invalid percent-encoded token: "***"',
        "connection is bad: GSSAPI encryption required but no credential cache",
        f"received invalid response to SSL negotiation: H{_AT}",
        'root certificate file "/root/.postgresql/root.crt" does not exist',
        'private key file "/k" has group or world access; file must have permissions u=rw '
        '(0600) or less if owned by the current user',
        'definition of service "farm" not found',
        "local user with ID 1000 does not exist",
    ], ids=["ssl-required", "bad-sslmode", "unresolvable", "unresolvable-libpq", "bad-port",
            "port-syntax", "bad-hostaddr", "bad-option", "bad-escape", "gssapi", "not-postgres",
            "no-root-cert", "key-file-mode", "no-service", "no-local-user"])
    def test_a_url_that_cannot_work_is_misconfigured(self, cause: str) -> None:
        assert _kind(cause) is FailureKind.MISCONFIGURED

    def test_words_in_no_list_are_left_to_the_caller(self) -> None:
        assert _kind("FATAL: Passwort-Authentifizierung für Benutzer »u« fehlgeschlagen") is None


class TestTheHintSaysWhatTheCommandsDo:
    @pytest.mark.parametrize(("cause", "ending"), [
        (f"Connection refused{_AT}", AWAY_ENDING),
        (f'FATAL: too many connections for role "u"{_AT}', f"{TRIES_AGAIN} once a connection "
         "is free"),
        (f'FATAL: role "u" does not exist{_AT}', REFUSED_ENDING),
        (f"server does not support SSL, but SSL was required{_AT}", REFUSED_ENDING),
    ], ids=["away", "overloaded", "refused", "misconfigured"])
    def test_each_kind_ends_with_what_a_wait_does(self, cause: str, ending: str) -> None:
        failure = classify(cause)
        assert failure is not None
        assert failure.hint.endswith(ending)
        assert failure.waits == (ending != REFUSED_ENDING)

    def test_an_sslmode_the_server_does_not_take_says_so(self) -> None:
        failure = classify(f"server does not support SSL, but SSL was required{_AT}")
        assert failure is not None and "sslmode" in failure.hint

    def test_a_server_that_takes_this_node_over_ssl_only_says_to_drop_sslmode_disable(
        self
    ) -> None:
        failure = classify('FATAL: no pg_hba.conf entry for host "10.0.0.9", user "u", '
                           f'database "d", no encryption{_AT}')
        assert failure is not None and "drop sslmode=disable" in failure.hint

    def test_a_connection_limit_says_it_is_one(self) -> None:
        failure = classify(f'FATAL: too many connections for database "jobs"{_AT}')
        assert failure is not None and "CONNECTION LIMIT" in failure.hint


class TestSeveralTries:
    def test_one_a_wait_may_end_decides(self) -> None:
        assert _kind(f'FATAL: role "u" does not exist{_AT}; Connection refused (server '
                     '"db1", port 5432)') is FailureKind.AWAY

    def test_tries_that_all_cannot_work_say_the_first(self) -> None:
        assert _kind(f"server does not support SSL, but SSL was required{_AT}; FATAL: "
                     f'password authentication failed for user "u"{_AT}') is (
            FailureKind.MISCONFIGURED)

    def test_one_try_in_unknown_words_leaves_the_whole_to_the_caller(self) -> None:
        assert _kind(f'FATAL: role "u" does not exist{_AT}; Verbindung abgelehnt') is None


class TestTheSqlstateDecidesWhereThereIsOne:
    @pytest.mark.parametrize(("sqlstate", "kind"), [
        ("57P01", FailureKind.AWAY),
        ("08006", FailureKind.AWAY),
        ("53300", FailureKind.OVERLOADED),
        ("28P01", FailureKind.REFUSED),
        ("3D000", FailureKind.REFUSED),
    ])
    def test_over_words_in_no_list(self, sqlstate: str, kind: FailureKind) -> None:
        assert _kind("FATAL: irgendetwas auf Deutsch", sqlstate) is kind

    def test_over_words_of_another_kind(self) -> None:
        # A session cut by an administrator: its words say "does not exist" of nothing here.
        assert _kind('FATAL: terminating connection: role "x" does not exist',
                     "57P01") is FailureKind.AWAY

    def test_the_words_hint_is_kept_when_they_agree(self) -> None:
        failure = classify('FATAL: too many connections for role "u"', "53300")
        assert failure is not None and "CONNECTION LIMIT" in failure.hint

    def test_a_refused_password_keeps_the_words_hint_not_the_kind_s(self) -> None:
        # The kind's own hint asks for a pg_hba.conf entry: for a wrong password, wrong.
        failure = classify('FATAL: password authentication failed for user "pipeline"',
                           "28P01")

        assert failure is not None
        assert failure.hint.startswith("check the user in the URL and give its password")
        assert failure.hint.endswith(REFUSED_ENDING)

    @pytest.mark.parametrize(("sqlstate", "hint"), [
        ("57P01", UNREACHABLE_HINT),
        ("53300", "the server has no connection free"),
        ("28P01", "ask the database's administrator for a pg_hba.conf entry"),
    ])
    def test_words_in_no_list_get_the_kind_s_own_hint(self, sqlstate: str, hint: str) -> None:
        failure = classify("FATAL: irgendetwas auf Deutsch", sqlstate)

        assert failure is not None and failure.hint.startswith(hint)

    def test_a_statement_s_own_state_is_left_to_the_caller_whatever_its_words(self) -> None:
        assert _kind('prepared statement "_pg3_0" does not exist', "26000") is None


class TestAHostNameThatDoesNotResolveIsSaidPlainly:
    def test_psycopg_s_errno_becomes_the_host_named(self) -> None:
        said = plain_cause("failed to resolve host 'nonexistent.invalid': [Errno -2] Name or "
                           "service not known")
        assert said == ('the host name "nonexistent.invalid" could not be resolved: Name or '
                        "service not known")

    def test_other_text_is_left_as_it_is(self) -> None:
        assert plain_cause(f"Connection refused{_AT}") == f"Connection refused{_AT}"


class TestWhichDriverErrorsAreTheConnections:
    """``connection_failure``: what the store says for a psycopg error."""

    def test_an_operational_error_in_no_rule_is_away_as_it_was_always_said(self) -> None:
        failure = connection_failure("FATAL: Passwort-Authentifizierung für Benutzer »u« "
                                     "fehlgeschlagen", None, operational=True)
        assert failure is not None
        assert (failure.kind, failure.hint) == (FailureKind.AWAY, UNREACHABLE_HINT)

    def test_a_url_psycopg_cannot_parse_is_misconfigured(self) -> None:
        failure = connection_failure('invalid URI query parameter: "x"', None,
                                     operational=False)
        assert failure is not None and failure.kind is FailureKind.MISCONFIGURED

    @pytest.mark.parametrize(("cause", "sqlstate"), [
        ("permission denied for table jobs", "42501"),  # the state of no CONNECT, too
        ('invalid input value for enum state: "x"', "22P02"),  # like a URL's "invalid value"
    ], ids=["no-grant", "bad-value"])
    def test_a_statement_s_error_is_not_the_connection_s(self, cause: str, sqlstate: str
                                                         ) -> None:
        assert connection_failure(cause, sqlstate, operational=False) is None


class TestTheNamesAMessageQuotesAreNotItsWords:
    """Review of session 45: a user, database or host name holding a rule's word ("ssl",
    "certificate", "gssapi") is not what the message says (each seen on a real server)."""

    def test_a_role_named_for_certificates_out_of_connections_is_overloaded(self) -> None:
        failure = classify(f'FATAL: too many connections for role "certificate_reader"{_AT}')
        assert failure is not None and failure.kind is FailureKind.OVERLOADED

    def test_a_missing_database_named_for_certificates_says_to_check_the_names(self) -> None:
        failure = classify(f'FATAL: database "certificates" does not exist{_AT}')
        assert failure is not None and failure.kind is FailureKind.REFUSED
        assert failure.hint.startswith("check the user and database names in the URL")

    def test_a_host_named_for_gssapi_that_refused_the_port_is_away(self) -> None:
        assert _kind('Connection refused (server "gssapi-db.farm.local" (127.0.0.1), port '
                     "5432)") is FailureKind.AWAY


class TestAStatementsOwnFailureIsNotTheConnections:
    """Review of session 45: an OperationalError with a SQLSTATE in no rule came from a server
    that answered (a deadlock, a lock_timeout, its memory): not "cannot reach", not waited
    for at a start. Without a SQLSTATE it is still the connection's."""

    @pytest.mark.parametrize(("cause", "sqlstate"), [
        ("deadlock detected", "40P01"),
        ("canceling statement due to lock timeout", "55P03"),
        ("out of memory", "53200"),
        ("out of shared memory", "53200"),
    ], ids=["deadlock", "lock-timeout", "out-of-memory", "too-many-locks"])
    def test_it_is_left_to_the_caller(self, cause: str, sqlstate: str) -> None:
        assert connection_failure(cause, sqlstate, operational=True) is None


class TestTheHintAsAProcessSaysIt:
    """A running watch or serve says that it keeps trying; a command that exits does not
    (the review of session 48: ``run --dry-run`` read so of itself)."""

    @pytest.mark.parametrize("said", [
        'FATAL: password authentication failed for user "u" (server "db", port 5432)',
        "server does not support SSL, but SSL was required (server \"db\", port 5432)",
    ], ids=["refused", "misconfigured"])
    def test_only_a_running_process_says_it_keeps_trying(self, said: str) -> None:
        failure = classify(said)
        assert failure is not None
        assert failure.hint_for(running=True) == failure.hint
        assert failure.hint.endswith(f"{RUNNING_KEEPS_TRYING}; {REFUSED_ENDING}")
        once = failure.hint_for(running=False)
        assert RUNNING_KEEPS_TRYING not in once
        assert once == failure.hint.replace(f"{RUNNING_KEEPS_TRYING}; ", "")
        assert once.endswith(REFUSED_ENDING)

    def test_a_hint_a_wait_may_cure_is_the_same_for_both(self) -> None:
        failure = classify('Connection refused (server "db", port 5432)')
        assert failure is not None
        assert failure.hint_for(running=False) == failure.hint_for(running=True)

"""The line a user reads when the PostgreSQL store cannot be reached keeps libpq's cause
(store/postgres.py ``cause_first``) within the console's cut (crash.shorten), and its hint is
true for a command that exits as for ``watch``: real libpq messages from a real server."""

from __future__ import annotations

import io
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from preform_pipeline import cli
from preform_pipeline.errors import StoreError, StoreUnavailableError
from preform_pipeline.hotfolder.storewait import database_away
from preform_pipeline.store.fenced import NodeJobStore
from preform_pipeline.store.opening import open_store
from preform_pipeline.store.pgerrors import RUNNING_KEEPS_TRYING, FailureKind, classify
from preform_pipeline.store.pgurl import PASSWORD_ENV
from preform_pipeline.store.postgres import (
    CANCELLED_HINT,
    REFUSED_ENDING,
    TRIES_AGAIN,
    UNREACHABLE_HINT,
    PostgresJobStore,
    cause_first,
)
from tests.pg_cluster import PG_PASSWORD, PgCluster


def _refused_port() -> int:
    """A loopback port nothing listens on (bound, then freed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _jobs_says(url: str, password: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
               ) -> str:
    """What ``jobs --store URL`` prints on stderr (it must fail)."""
    monkeypatch.setenv(PASSWORD_ENV, password)
    monkeypatch.setenv("PREFORM_PIPELINE_CRASH_DIR", str(tmp_path / "crash"))
    out, err = io.StringIO(), io.StringIO()
    assert cli.run(["jobs", "--store", url], out, err) == 1
    return err.getvalue()


def _first_line(said: str) -> str:
    return said.splitlines()[0]


def _whole(said: str, tmp_path: Path) -> str:
    """The whole error: the message file a line too long for the console names (and must)."""
    (full,) = (tmp_path / "crash").iterdir()
    assert str(full) in said
    return full.read_text(encoding="utf-8").rstrip()


class TestTheLineAUserReadsNamesTheCause:
    """Each error line stays within the console's cut, and the words that say what failed are
    in what is shown, not in the cut."""

    def test_a_wrong_password_says_password_authentication_failed(
        self, pg_cluster: PgCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        said = _jobs_says(pg_cluster.url(), "wrongpw", tmp_path, monkeypatch)
        assert 'password authentication failed for user "pipeline"' in _first_line(said)
        assert "wrongpw" not in said

    def test_an_unknown_database_says_it_does_not_exist(
        self, pg_cluster: PgCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        said = _jobs_says(pg_cluster.url("no_such_db"), PG_PASSWORD, tmp_path, monkeypatch)
        assert 'database "no_such_db" does not exist' in _first_line(said)

    def test_a_refused_port_says_connection_refused_and_the_port(
        self, pg_cluster: PgCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        port = _refused_port()
        said = _jobs_says(f"postgresql://pipeline@127.0.0.1:{port}/jobs", PG_PASSWORD,
                          tmp_path, monkeypatch)
        assert f'Connection refused (server "127.0.0.1", port {port})' in _first_line(said)

    def test_several_hosts_say_why_the_last_one_failed(
        self, pg_cluster: PgCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        port = pg_cluster.url().rsplit(":", 1)[1].split("/")[0]
        url = f"postgresql://pipeline@127.0.0.1:{_refused_port()},localhost:{port}/postgres"
        said = _jobs_says(url, "wrongpw", tmp_path, monkeypatch)
        assert 'password authentication failed for user "pipeline"' in _first_line(said)


class TestTheHintIsTrueForACommandThatExits:
    def test_an_outage_says_to_run_the_command_again_and_that_watch_retries(
        self, pg_cluster: PgCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        said = _whole(_jobs_says(f"postgresql://pipeline@127.0.0.1:{_refused_port()}/jobs",
                                 PG_PASSWORD, tmp_path, monkeypatch), tmp_path)
        assert "cannot reach the PostgreSQL job store" in said
        assert "the next call connects again" not in said
        assert said.endswith(
            "watch tries again by itself, other commands: run them again once the database "
            "is back)")


class TestALoginTheServerRefusedIsSaidAsARefusal:
    """The server answered no: no wait cures it (watch gives up at once too), so the line
    says it refused and what to correct, not that it cannot be reached (session 44)."""

    def test_a_wrong_password_says_the_login_was_refused_and_where_the_password_goes(
        self, pg_cluster: PgCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        said = _jobs_says(pg_cluster.url(), "wrongpw", tmp_path, monkeypatch)
        whole = _whole(said, tmp_path)
        assert "refused the job store's login while connecting: FATAL: password " in whole
        assert "cannot reach" not in whole
        assert "PREFORM_PIPELINE_STORE_PASSWORD or its _FILE" in whole
        assert "once the database is back" not in whole
        # The console keeps the line's end: what to do for this command.
        assert _first_line(said).endswith(f"{REFUSED_ENDING})")

    def test_no_password_says_the_login_was_refused(
        self, pg_cluster: PgCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("PGPASSWORD", raising=False)
        monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))
        said = _whole(_jobs_says(pg_cluster.url(), "", tmp_path, monkeypatch), tmp_path)
        assert "refused the job store's login while connecting: fe_sendauth: no password " \
            "supplied" in said
        assert said.endswith(f"{REFUSED_ENDING})")

    def test_an_unknown_database_says_to_check_the_names_in_the_url(
        self, pg_cluster: PgCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        said = _whole(_jobs_says(pg_cluster.url("no_such_db"), PG_PASSWORD, tmp_path,
                                 monkeypatch), tmp_path)
        assert 'refused the job store\'s login while connecting: FATAL: database ' \
            '"no_such_db" does not exist' in said
        assert "check the user and database names in the URL" in said
        assert said.endswith(f"{REFUSED_ENDING})")


class TestEveryKindOfLoginTheServerRefusedIsARefusal:
    """Review of session 44: a role without LOGIN (28000) and a user without CONNECT on the
    database (42501) are the server's no too: said as a refusal, and watch's start gives up
    at once rather than waiting for a database that is up."""

    @pytest.mark.parametrize(("grant", "login"), [
        ("CREATE ROLE {r} PASSWORD 'pw' NOLOGIN", "postgres"),
        ("CREATE ROLE {r} PASSWORD 'pw' LOGIN; REVOKE CONNECT ON DATABASE {r}_db FROM PUBLIC",
         "{r}_db"),
    ], ids=["no-login", "no-connect"])
    def test_it_is_said_as_refused_and_not_waited_for(
        self, pg_cluster: PgCluster, grant: str, login: str
    ) -> None:
        import psycopg

        role = f"rv44_{len(grant)}_{os.getpid()}"
        with psycopg.connect(pg_cluster.url(), password=PG_PASSWORD, autocommit=True) as adm:
            adm.execute(f"CREATE DATABASE {role}_db")
            try:
                for statement in grant.format(r=role).split("; "):
                    adm.execute(statement)
                url = pg_cluster.url(login.format(r=role)).replace("pipeline@", f"{role}@")
                with pytest.raises(StoreError) as caught:
                    PostgresJobStore(url, password="pw", connect_timeout_s=5)
            finally:
                adm.execute(f"DROP DATABASE {role}_db")
                adm.execute(f"DROP ROLE IF EXISTS {role}")
        assert "refused the job store's login while connecting" in caught.value.message
        assert caught.value.hint is not None
        assert caught.value.hint.startswith("ask the database's administrator to let")
        assert caught.value.hint.endswith(REFUSED_ENDING)
        assert not database_away(caught.value)


class TestARefusalARunningStoreMeetsSaysWhatItDoes:
    """Review of session 45: a running watch or serve that meets a refused login when it
    connects again (a password changed on the server) keeps trying, its error an outage; its
    hint said only "correct it, then run the command again"."""

    def test_it_keeps_trying_with_its_password_and_the_hint_says_so(
        self, pg_cluster: PgCluster
    ) -> None:
        import psycopg

        role = f"rv45_running_{os.getpid()}"
        with psycopg.connect(pg_cluster.url(), password=PG_PASSWORD, autocommit=True) as adm:
            adm.execute(f"CREATE ROLE {role} PASSWORD 'pw' LOGIN")
            adm.execute(f"CREATE DATABASE {role} OWNER {role}")
            try:
                url = pg_cluster.url(role).replace("pipeline@", f"{role}@")
                with PostgresJobStore(url, password="pw", connect_timeout_s=5,
                                      running=True) as store:
                    job = store.create_job(recipe="dental", source_path="/nas/inbox/a.stl")
                    adm.execute(f"ALTER ROLE {role} PASSWORD 'changed'")
                    adm.execute("SELECT pg_terminate_backend(pid, 10000) FROM "
                                f"pg_stat_activity WHERE usename = '{role}'")
                    errors: list[StoreError] = []
                    for _ in range(2):  # the cut session's error, then the refused login
                        with pytest.raises(StoreError) as caught:
                            store.get_job(job.id)
                        errors.append(caught.value)
                    adm.execute(f"ALTER ROLE {role} PASSWORD 'pw'")
                    assert store.get_job(job.id).id == job.id  # tried again by itself
            finally:
                adm.execute(f"DROP DATABASE IF EXISTS {role} WITH (FORCE)")
                adm.execute(f"DROP ROLE IF EXISTS {role}")
        refused = errors[-1]
        assert isinstance(refused, StoreUnavailableError) and refused.kind == "refused"
        assert refused.outage and not database_away(refused)
        assert refused.hint is not None
        assert refused.hint.endswith(f"{RUNNING_KEEPS_TRYING}; {REFUSED_ENDING}")


class TestTheStoresOfRunningServicesSayTheyKeepTrying:
    """``watch``'s node store and ``serve``'s store are opened as running (``running=True``):
    a refused login's hint says that a running watch or serve keeps trying; a command's store
    (``run``, ``jobs``) does not say so of itself. Refused at the open: a wrong password."""

    WRONG = "not-the-password"

    def _refused(self, opening: Callable[[], object]) -> str:
        with pytest.raises(StoreUnavailableError) as caught:
            opening()
        assert caught.value.kind == "refused" and caught.value.hint is not None
        return caught.value.hint

    def test_the_node_store_and_a_running_services_store_say_it(
        self, pg_cluster: PgCluster, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        url = pg_cluster.url()
        monkeypatch.setenv(PASSWORD_ENV, self.WRONG)
        says = f"{RUNNING_KEEPS_TRYING}; {REFUSED_ENDING}"
        assert self._refused(lambda: open_store(url, running=True)).endswith(says)
        assert self._refused(lambda: NodeJobStore(
            url, node_id="n1", password=self.WRONG, connect_timeout_s=5)).endswith(says)

    def test_a_commands_store_does_not(
        self, pg_cluster: PgCluster, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(PASSWORD_ENV, self.WRONG)
        hint = self._refused(lambda: open_store(pg_cluster.url()))
        assert hint.endswith(REFUSED_ENDING) and RUNNING_KEEPS_TRYING not in hint


class TestWhichCausesAreRefusals:
    """Which causes are refusals: every try answered no; one try that reached no server
    makes the whole an outage a wait may end (store/pgerrors.py)."""

    def test_a_wrong_password_is_a_refusal(self) -> None:
        failure = classify('FATAL: password authentication failed for user "u" '
                           '(server "db", port 5432)')
        assert failure is not None and failure.kind is FailureKind.REFUSED

    @pytest.mark.parametrize("said", [
        'FATAL: Peer authentication failed for user "u" (server "db", port 5432)',
        'FATAL: role "u" is not permitted to log in (server "db", port 5432)',
        'FATAL: permission denied for database "jobs" (server "db", port 5432)',
    ], ids=["peer", "nologin", "no-connect"])
    def test_a_login_refused_otherwise_than_by_password_is_a_refusal(self, said: str) -> None:
        failure = classify(said)
        assert failure is not None and failure.kind is FailureKind.REFUSED

    def test_a_refused_port_is_not(self) -> None:
        failure = classify('Connection refused (server "db", port 5432)')
        assert failure is not None and failure.kind is FailureKind.AWAY

    def test_tries_of_which_one_was_refused_at_the_port_are_not(self) -> None:
        failure = classify('FATAL: password authentication failed for user "u" (server '
                           '"db2", port 5432); Connection refused (server "db1", port 5432)')
        assert failure is not None and failure.kind is FailureKind.AWAY


class TestCauseFirst:
    """libpq's preamble moves behind its cause; other text is left as it is."""

    def test_a_socket_preamble_names_the_socket(self) -> None:
        assert cause_first(
            'connection is bad: connection to server on socket "/run/pg/.s.PGSQL.5432" '
            "failed: No such file or directory") == (
            'No such file or directory (server socket "/run/pg/.s.PGSQL.5432")')

    def test_text_without_the_preamble_is_unchanged(self) -> None:
        said = ('could not translate host name "db.nowhere" to address: Name or service not '
                "known")
        assert cause_first(said) == said


class TestEveryShapeOfLibpqKeepsItsText:
    """Real messages of the driver, no server needed: nothing of what failed, nor which
    server, is lost, and the password never shows."""

    def test_several_hosts_refused_name_each_host_tried(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        first, last = _refused_port(), _refused_port()
        url = f"postgresql://pipeline:s3cr3t-pw@127.0.0.1:{first},localhost:{last}/jobs"
        said = _jobs_says(url, PG_PASSWORD, tmp_path, monkeypatch)
        (full,) = (tmp_path / "crash").iterdir()  # the console's line is cut, this is whole
        assert (f'while connecting: Connection refused (server "127.0.0.1", port {last}); '
                f'Connection refused (server "127.0.0.1", port {first}) (check that') in (
            full.read_text(encoding="utf-8"))
        assert "s3cr3t-pw" not in said + full.read_text(encoding="utf-8")

    def test_a_unix_socket_says_its_cause_first(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        folder = "/no-such-pp-socket-folder"  # never made: libpq finds no socket there
        said = _first_line(_jobs_says(f"postgresql://pipeline@/jobs?host={folder}",
                                      PG_PASSWORD, tmp_path, monkeypatch))
        assert (f'while connecting: No such file or directory (server socket '
                f'"{folder}/.s.PGSQL.5432")') in said


class TestCauseFirstText:
    def test_the_address_of_a_named_host_is_kept(self) -> None:
        assert cause_first(
            'connection failed: connection to server at "db1" (10.0.0.5), port 5432 failed: '
            'FATAL:  password authentication failed for user "u"') == (
            'FATAL: password authentication failed for user "u" '
            '(server "db1" (10.0.0.5), port 5432)')

    def test_a_preamble_in_another_language_is_left_whole(self) -> None:
        said = ('connection failed: Verbindung zum Server auf „db1“ (10.0.0.5), Port 5432 '
                'fehlgeschlagen: FATAL:  Passwort-Authentifizierung für Benutzer »u« '
                'fehlgeschlagen')
        assert cause_first(said) == said

    def test_each_way_libpq_tried_one_server_is_said(self) -> None:
        """sslmode=prefer: libpq tries with SSL, then without, one line each."""
        hba = 'FATAL:  no pg_hba.conf entry for host "10.0.0.9", user "u", database "d"'
        said = (f'connection failed: connection to server at "db1" (10.0.0.5), port 5432 '
                f'failed: {hba}, SSL encryption\n'
                f'connection to server at "db1" (10.0.0.5), port 5432 failed: {hba}, no '
                f'encryption')
        one = hba.replace(":  ", ": ")
        assert cause_first(said) == (
            f'{one}, no encryption (server "db1" (10.0.0.5), port 5432); '
            f'{one}, SSL encryption (server "db1" (10.0.0.5), port 5432)')

    def test_several_hosts_whose_last_was_tried_two_ways_say_each_try_once(self) -> None:
        # Session 42's mutation run: psycopg repeats the last try's whole message before its
        # list of tries, and that message's second line (no SSL) was said twice.
        ssl, plain = (f'connection to server at "h2" (10.0.0.2), port 5432 failed: FATAL:  '
                      f'no pg_hba.conf entry, {way}' for way in ("SSL encryption",
                                                                  "no encryption"))
        refused = 'connection to server at "h1" (10.0.0.1), port 5432 failed: Connection refused'
        last = f"connection failed: {ssl}\n{plain}"
        said = "\n".join([
            last, "Multiple connection attempts failed. All failures were:",
            f"- host: 'h1', port: '5432', hostaddr: '10.0.0.1': connection failed: {refused}",
            f"- host: 'h2', port: '5432', hostaddr: '10.0.0.2': {last}"])
        assert cause_first(said) == (
            'FATAL: no pg_hba.conf entry, no encryption (server "h2" (10.0.0.2), port 5432); '
            'FATAL: no pg_hba.conf entry, SSL encryption (server "h2" (10.0.0.2), port 5432); '
            'Connection refused (server "h1" (10.0.0.1), port 5432)')

    def test_an_empty_message_is_said_as_it_is(self) -> None:
        assert cause_first("") == ""
        assert cause_first(" \n") == " \n"

    def test_a_cut_session_keeps_its_first_line_as_before(self) -> None:
        said = ("consuming input failed: server closed the connection unexpectedly\n"
                "\tThis probably means the server terminated abnormally")
        assert cause_first(said) == (
            "consuming input failed: server closed the connection unexpectedly")


class TestTheHintsShareOneRule:
    def test_a_cancelled_statement_says_what_a_command_that_exits_does(self) -> None:
        assert CANCELLED_HINT.endswith(f"; {TRIES_AGAIN}")
        assert UNREACHABLE_HINT.endswith(f"; {TRIES_AGAIN} once the database is back")
        assert "the next call" not in CANCELLED_HINT + UNREACHABLE_HINT

"""A store URL whose password holds ``@``, ``/`` or a bare ``%`` (session 42's farm trial):
libpq misreads such a login, takes part of the password for the host or the database and
quotes it in its messages. The command line refuses it before connecting, saying how to write
it and naming no part of it; the same password percent-encoded opens the store (real
PostgreSQL, the real command line)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from preform_pipeline.errors import StoreError
from preform_pipeline.store.pgurl import (
    PASSWORD_ENV,
    PASSWORD_FILE_ENV,
    check_login,
    redact_url,
)
from tests.conftest import REPO_ROOT
from tests.unit.store.conftest import admin_connection

#: Every character a newcomer's password brings that a URL reads otherwise, and a colon.
ODD_PASSWORD = "p@ss:w/rd%x"
#: Pieces of it that a misread login put into libpq's messages before session 42.
PIECES = ("p@ss", "ss:w", "w/rd", "rd%x", "s:w/r")


@pytest.fixture
def odd_login(fresh_url: str) -> Iterator[tuple[str, str]]:
    """A role with :data:`ODD_PASSWORD` owning a new, empty database: (its URL without a
    password, the role's name)."""
    role = f"odd_{uuid.uuid4().hex[:10]}"
    database = fresh_url.rsplit("/", 1)[1]
    with admin_connection(fresh_url) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{ODD_PASSWORD}'")
        admin.execute(f'ALTER DATABASE "{database}" OWNER TO {role}')
    try:
        yield fresh_url.replace("://pipeline@", f"://{role}@"), role
    finally:
        with admin_connection(fresh_url) as admin:
            admin.execute(f"REASSIGN OWNED BY {role} TO pipeline")
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")


def _jobs(url: str, data_home: Path) -> subprocess.CompletedProcess[str]:
    """``preform-pipeline jobs --store URL`` as a person types it, no password elsewhere."""
    env = {key: value for key, value in os.environ.items()
           if key not in (PASSWORD_ENV, PASSWORD_FILE_ENV, "PGPASSWORD")}
    env["PGPASSFILE"] = str(data_home / "no-pgpass")
    return subprocess.run([sys.executable, "-m", "preform_pipeline", "jobs", "--store", url],
                          capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, env=env,
                          check=False)


def _everything_written(result: subprocess.CompletedProcess[str], data_home: Path) -> str:
    """What the command said, and every file it left in its data folder (a crash report)."""
    files = [p.read_text(errors="replace") for p in data_home.rglob("*") if p.is_file()]
    return "\n".join([result.stdout, result.stderr, *files])


def _refused(login: tuple[str, str], password: str, data_home: Path) -> tuple[str, str]:
    """``jobs --store`` with ``password`` written into the URL as it is, refused: (its
    stderr, everything it wrote)."""
    url, role = login
    result = _jobs(url.replace(f"://{role}@", f"://{role}:{password}@"), data_home)
    assert result.returncode == 1, result.stderr
    return result.stderr, _everything_written(result, data_home)


class TestAPasswordAUrlCannotCarryAsItIs:
    def test_is_refused_before_connecting_and_no_piece_of_it_is_shown(
        self, odd_login: tuple[str, str], own_data_folder: Path
    ) -> None:
        url, role = odd_login
        stderr, said = _refused(odd_login, ODD_PASSWORD, own_data_folder)
        # The first line: a password typed into a command line (commands/_common.py).
        assert stderr.splitlines(keepends=True)[1:] == [(
            f"error: {url.replace(f'{role}@', f'{role}:***@')}: the URL's user or password "
            "holds @, / or a bare %, which it must percent-encode (@ %40, / %2F, % %25) (or "
            f"leave the password out of the URL: {PASSWORD_ENV} (docs/multi-node.md))\n")]
        assert stderr.startswith("warning: the --store URL holds a password")
        assert "Traceback" not in said
        assert [piece for piece in PIECES if piece in said] == []

    def test_an_at_sign_alone_is_refused_too_without_its_tail_as_a_host(
        self, odd_login: tuple[str, str], own_data_folder: Path
    ) -> None:
        # Before session 42 libpq read "wr" as the password and "ng@127.0.0.1" as the host.
        stderr, said = _refused(odd_login, "wr@ng", own_data_folder)
        assert "which it must percent-encode" in stderr
        assert "ng@" not in said and "wr@" not in said

    def test_the_same_password_percent_encoded_opens_the_store(
        self, odd_login: tuple[str, str], own_data_folder: Path
    ) -> None:
        url, role = odd_login
        encoded = url.replace(f"://{role}@", f"://{role}:{quote(ODD_PASSWORD, safe='')}@")
        result = _jobs(encoded, own_data_folder)
        assert (result.returncode, result.stdout.strip()) == (0, "no jobs"), result.stderr


class TestAQuestionMarkInThePassword:
    """libpq reads a raw ``?`` before the login's ``@`` as part of the password (it ends the
    login at its first ``@`` or ``/``), so the URL connects; a ``?`` is no query there."""

    def test_a_wrong_one_is_said_without_showing_it(
        self, odd_login: tuple[str, str], own_data_folder: Path
    ) -> None:
        url, role = odd_login
        result = _jobs(url.replace(f"://{role}@", f"://{role}:wr?ng@"), own_data_folder)
        assert result.returncode == 1, result.stderr
        said = _everything_written(result, own_data_folder)
        assert result.stderr.startswith("warning: the --store URL holds a password")
        # A wrong password is the server's refusal, not an outage (session 44, s44-trial).
        assert (f"error: {url.replace(f'{role}@', f'{role}:***@')}: the PostgreSQL server "
                "refused the job store's login") in result.stderr
        assert "wr?ng" not in said and "ng@" not in said and "?ng" not in said

    def test_it_is_hidden_whole_and_a_query_s_at_sign_is_no_login(self) -> None:
        assert redact_url("postgresql://odd:pa?ss@db.lab/jobs?application_name=a@b") == (
            "postgresql://odd:***@db.lab/jobs?application_name=a@b")
        check_login("postgresql://odd:pa?ss@db.lab/jobs")
        check_login("postgresql://db.lab/jobs?application_name=a@b")
        check_login("postgresql://odd:pw@db.lab?application_name=a@b")


class TestShowingSuchAUrl:
    def test_its_password_is_hidden_whole_though_a_slash_ends_the_authority_early(
        self,
    ) -> None:
        assert redact_url(f"postgresql://odd:{ODD_PASSWORD}@db.lab:5432/jobs") == (
            "postgresql://odd:***@db.lab:5432/jobs")


class TestEveryLoginIsReadWhereLibpqReadsIt:
    """Session 42's mutation run: the shapes of URL the rules above left unpinned."""

    def test_a_url_with_neither_a_login_nor_a_database_is_neither_refused_nor_changed(
        self
    ) -> None:
        check_login("postgresql://db")
        assert redact_url("postgresql://db") == "postgresql://db"

    def test_a_url_in_the_query_does_not_hide_a_login_libpq_would_misread(self) -> None:
        with pytest.raises(StoreError):
            check_login("postgresql://u:p@ss@db/pp?options=-c%20x&target=http://h")

    def test_a_query_with_an_at_sign_and_a_second_question_mark_is_no_login(self) -> None:
        check_login("postgresql://u@db/pp?application_name=ops@lab?2")

    def test_a_password_with_a_slash_then_a_question_mark_is_refused_and_hidden(
        self
    ) -> None:
        # libpq ends the host at the "/": "pa" would be read as a port, "ss" as the database.
        url = "postgresql://u:pa/ss?x@db/pp"
        assert redact_url(url) == "postgresql://u:***@db/pp"
        with pytest.raises(StoreError) as refused:
            check_login(url)
        assert "pa/ss" not in str(refused.value) and "?x" not in str(refused.value)
        assert redact_url("postgresql://db/pp?application_name=a@b") == (
            "postgresql://db/pp?application_name=a@b")

    def test_a_colon_in_a_misread_password_is_hidden_with_the_rest(self) -> None:
        assert redact_url("postgresql://u:pa:ss@x@db/pp") == "postgresql://u:***@db/pp"

    def test_a_password_is_hidden_and_nothing_is_added(self) -> None:
        assert redact_url("postgresql://u:secret@db:5433/pp") == "postgresql://u:***@db:5433/pp"

    def test_the_refusal_says_how_to_write_it(self) -> None:
        with pytest.raises(StoreError) as refused:
            check_login("postgresql://u:a/b@db/pp")
        assert refused.value.message == (
            "postgresql://u:***@db/pp: the URL's user or password holds @, / or a bare %, "
            "which it must percent-encode (@ %40, / %2F, % %25)")
        assert refused.value.hint == (
            f"or leave the password out of the URL: {PASSWORD_ENV} (docs/multi-node.md)")

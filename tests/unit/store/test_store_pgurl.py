"""PostgreSQL store URLs: which texts are URLs, how one is shown without its password, and where
the password comes from (store/pgurl.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from preform_pipeline.errors import StoreError
from preform_pipeline.store.pgurl import (
    PASSWORD_ENV,
    PASSWORD_FILE_ENV,
    check_url,
    hide_url,
    is_postgres_url,
    libpq_url,
    redact_url,
    store_password,
)

SECRET = "hunter2-secret"
REPO_ROOT = Path(__file__).resolve().parents[3]


class TestWhichTextsAreUrls:
    """Both libpq schemes in any case, around blanks; nothing else is a PostgreSQL store."""

    @pytest.mark.parametrize("text", [
        "postgresql://pipeline@db.lab:5432/jobs",
        "postgres://pipeline@db.lab/jobs",
        "PostgreSQL://pipeline@db.lab/jobs",
        "POSTGRES://db.lab/jobs",
        "  postgresql://db.lab/jobs\n",
    ])
    def test_a_postgresql_url_is_recognised(self, text: str) -> None:
        assert is_postgres_url(text)

    @pytest.mark.parametrize("text", [
        "/var/lib/preform/jobs.sqlite3",
        "jobs.sqlite3",
        "sqlite:///jobs.db",
        "postgresql:/db.lab/jobs",
        "mysql://db.lab/jobs",
        "/data/postgresql://jobs",
        "",
    ])
    def test_anything_else_is_not(self, text: str) -> None:
        assert not is_postgres_url(text)


class TestShowingAUrl:
    """A URL is shown with any password replaced by ``***``, everything else as it was."""

    @pytest.mark.parametrize("url", [
        "postgresql://pipeline@db.lab:5432/jobs",
        "postgresql://pipeline@db.lab:5432/jobs?sslmode=require&connect_timeout=5",
        "postgres://db.lab/jobs#notes",
    ])
    def test_a_url_without_a_password_is_shown_as_it_is(self, url: str) -> None:
        assert redact_url(url) == url

    def test_the_password_in_the_login_is_hidden_and_the_rest_kept(self) -> None:
        url = f"postgresql://pipeline:{SECRET}@db.lab:5432/jobs?sslmode=require&x=1#part"
        assert redact_url(url) == (
            "postgresql://pipeline:***@db.lab:5432/jobs?sslmode=require&x=1#part")

    def test_a_password_holding_an_at_sign_is_hidden_whole(self) -> None:
        assert redact_url("postgresql://pipeline:p@ss@db.lab:5432/jobs") == (
            "postgresql://pipeline:***@db.lab:5432/jobs")

    def test_a_password_without_a_user_is_hidden(self) -> None:
        assert redact_url(f"postgres://:{SECRET}@db.lab/jobs") == "postgres://:***@db.lab/jobs"

    @pytest.mark.parametrize(("url", "shown"), [
        (f"postgresql://db.lab/jobs?password={SECRET}", "postgresql://db.lab/jobs?password=***"),
        (f"postgresql://db.lab/jobs?sslmode=require&PASSWORD={SECRET}&x=1",
         "postgresql://db.lab/jobs?sslmode=require&password=***&x=1"),
        (f"postgresql://pipeline@db.lab/jobs?Password={SECRET}",
         "postgresql://pipeline:***@db.lab/jobs?password=***"),
        # The review of session 48: the query as libpq reads it. libpq knows no fragment
        # (urlsplit read a "#"'s rest as one, and showed its password=), and decodes a key.
        (f"postgresql://db.lab/jobs#x?password={SECRET}",
         "postgresql://db.lab/jobs#x?password=***"),
        (f"postgresql://db.lab/jobs?%70assword={SECRET}", "postgresql://db.lab/jobs?password=***"),
        (f"postgresql://db.lab/jobs?password=a&password={SECRET}",
         "postgresql://db.lab/jobs?password=***&password=***"),
    ], ids=["plain", "upper-case", "beside-a-user", "after-a-hash", "escaped-key", "twice"])
    def test_a_password_in_the_query_is_hidden_whatever_its_case(
        self, url: str, shown: str
    ) -> None:
        assert redact_url(url) == shown

    def test_a_url_that_cannot_be_read_is_not_shown_at_all(self) -> None:
        assert redact_url(f"postgresql://pipeline:{SECRET}@[db.lab/jobs") == (
            "postgresql://(unreadable URL)")


class TestDriverMessages:
    """A driver's message about a URL keeps nothing of its password (session 31: libpq
    quotes a URL it cannot parse, and a password's badly encoded part)."""

    def test_the_url_quoted_whole_is_shown_as_everywhere_else(self) -> None:
        url = f"postgresql://pipeline:{SECRET}@[db.lab/jobs"
        assert hide_url(f'no matching "]" in URI: "{url}"', url) == (
            'no matching "]" in URI: "postgresql://(unreadable URL)"')

    @pytest.mark.parametrize("url", [
        f"postgresql://pipeline:{SECRET}%ZZ@db.lab/jobs",
        f"postgresql://db.lab/jobs?sslmode=require&password={SECRET}%ZZ",
        f"postgresql://db.lab/jobs?PassWord={SECRET}%ZZ&sslmode=require",
        # Session 48's fuzz (seed 4849): a "?" in the login's password starts urlsplit's
        # query there, where the real query's password= item is no item of its own.
        f"postgresql://pipeline:pw?x@db.lab/jobs?password={SECRET}%ZZ",
        # The review of session 48: after a "#" (no fragment to libpq), under an escaped
        # key, the second of two.
        f"postgresql://db.lab/jobs#x?password={SECRET}%ZZ",
        f"postgresql://db.lab/jobs?%70assword={SECRET}%ZZ",
        f"postgresql://db.lab/jobs?password=a&password={SECRET}%ZZ",
    ], ids=["login", "query", "query-any-case", "query-after-a-login-with-a-question-mark",
            "query-after-a-hash", "query-escaped-key", "query-second-password"])
    def test_a_badly_encoded_password_is_hidden(self, url: str) -> None:
        said = f'invalid percent-encoded token: "{SECRET}%ZZ"'
        assert hide_url(said, url) == 'invalid percent-encoded token: "***"'

    def test_a_password_is_hidden_as_written_and_as_decoded(self) -> None:
        url = "postgresql://pipeline:hunter2%2Dsecret@db.lab/jobs"
        said = 'password "hunter2-secret" refused, "hunter2%2Dsecret" read'
        assert hide_url(said, url) == 'password "***" refused, "***" read'

    def test_the_longer_form_is_hidden_first(self) -> None:
        # Decoded, "x%2525" is "x%25", which is inside it: hiding that first left "***25".
        url = "postgresql://pipeline:x%2525@db.lab/jobs"
        assert hide_url('token "x%2525"', url) == 'token "***"'

    def test_a_query_password_holding_an_equals_sign_is_hidden_whole(self) -> None:
        url = "postgresql://db.lab/jobs?password=pw=1%ZZ"
        assert hide_url('invalid percent-encoded token: "pw=1%ZZ"', url) == (
            'invalid percent-encoded token: "***"')

    def test_a_password_inside_another_leaves_nothing_of_the_longer(self) -> None:
        # By length, not by text: "secret" sorts after "asecret" and would go first.
        url = "postgresql://pipeline:secret@db.lab/jobs?password=asecret"
        assert hide_url('token "asecret" and "secret"', url) == 'token "***" and "***"'

    def test_a_short_password_leaves_the_words_that_hold_it(self) -> None:
        # Review of session 43: a password "p" hid every "p" ("***ort 1 failed").
        url = "postgresql://u:p@127.0.0.1:1/db"
        said = ('connection to server at "127.0.0.1", port 1 failed: Connection refused\n'
                '\tIs the server running on that host and accepting TCP/IP connections?')
        assert hide_url(said, url) == said

    @pytest.mark.parametrize("said", [
        f'in URI: "postgresql://pipeline:{SECRET}@db.lab/jobs?connect_timeout=5"',
        f'invalid connection option in "user=pipeline password={SECRET} host=db.lab"',
        f"invalid connection option in \"user=pipeline password='{SECRET} x' host=db.lab\"",
        f'in URI: "postgresql://db.lab/jobs?sslmode=require&PASSWORD={SECRET}"',
    ], ids=["login", "conninfo", "conninfo-quoted", "query"])
    def test_a_password_where_the_message_gives_it_as_one_is_hidden(self, said: str) -> None:
        # The message's URL or connection string is not the URL given (the driver added to
        # it), so only where the password stands tells it.
        url = f"postgresql://pipeline:{SECRET}@db.lab/jobs?password={SECRET}"
        assert SECRET not in hide_url(said, url)

    def test_the_password_of_a_url_urlsplit_cannot_read_is_hidden_where_quoted(self) -> None:
        # Session 45's fuzzer: libpq quoted an upper-case URL as an unknown "connection
        # option" ending in the unclosed "[", which urlsplit refuses; the password stayed.
        url = f"POSTGRESQL://pipeline:{SECRET}@[::1:1/jobs"
        said = f'invalid connection option "POSTGRESQL://pipeline:{SECRET}@[::1"'
        assert hide_url(said, url) == (
            'invalid connection option "POSTGRESQL://pipeline:***@[::1"')

    def test_an_upper_case_scheme_reaches_libpq_in_lower_case(self) -> None:
        assert libpq_url(f"POSTGRESQL://pipeline:{SECRET}@Db.Lab/Jobs") == (
            f"postgresql://pipeline:{SECRET}@Db.Lab/Jobs")
        assert libpq_url("Postgres://db.lab/jobs") == "postgres://db.lab/jobs"
        assert libpq_url("/srv/JOBS://x.sqlite3") == "/srv/JOBS://x.sqlite3"

    @pytest.mark.parametrize("url", [
        "postgresql://pipeline:@db.lab/jobs", "postgresql://pipeline@db.lab/jobs?password=",
        "postgresql://pipeline@db.lab/jobs",
    ], ids=["empty-login", "empty-query", "none"])
    def test_a_message_with_no_password_to_hide_is_kept(self, url: str) -> None:
        said = "connection refused (is the server running?)"
        assert hide_url(said, url) == said


class TestHostNames:
    """A host that is no host name is refused before anything resolves it (session 45's
    fuzzer: a 300-character one ended `jobs` with exit 70, psycopg's resolving raising
    UnicodeError from Python's IDNA codec), naming the rule it breaks, never the password."""

    @pytest.mark.parametrize(("host", "rule"), [
        ("a" * 300, "it is 300 characters long, and a host name is at most 253"),
        (f"db.{'b' * 64}.lab",
         "a part of it between dots is 64 characters long, and each is at most 63"),
        ("db..lab", "it has an empty part between dots (two dots together, or a dot first)"),
        (".db.lab", "it has an empty part between dots (two dots together, or a dot first)"),
        # 60 characters, but its ASCII form (xn--...) is longer than a part may be.
        ("é" * 60, "it cannot be written as a host name in ASCII (IDNA: "),
    ], ids=["name-too-long", "part-too-long", "two-dots", "dot-first", "idna"])
    def test_a_host_that_is_no_host_name_is_refused_by_the_rule_it_breaks(
        self, host: str, rule: str
    ) -> None:
        for url in (f"postgresql://u:{SECRET}@{host}:5432/jobs",
                    f"postgres://:{SECRET}@{host}",
                    f"postgresql://u:{SECRET}@db.lab,{host}/jobs",
                    f"postgresql:///jobs?password={SECRET}&host={host}"):
            with pytest.raises(StoreError) as caught:
                check_url(url)
            said = str(caught.value)
            shown = host if len(host) <= 40 else f"{host[:40]}..."
            assert said.startswith(
                f"the store URL's host {shown!r} is not a valid host name: {rule}"), url
            assert SECRET not in said
            assert caught.value.hint == ("give the database server's host name or address in "
                                         "the URL (store.url or --store)")

    @pytest.mark.parametrize("url", [
        "postgresql://u:pw@db.lab./jobs",  # a final dot is a name's own
        f"postgresql://u@{'.'.join(['a' * 63] * 3)}:5432/jobs",  # 191 characters, parts of 63
        "postgresql://u@[::1]:5432,127.0.0.1:1/jobs",
        "postgresql://u@%2Fvar%2Frun%2Fpostgresql/jobs",  # a socket's folder
        "postgresql:///jobs?host=/var/run/postgresql",
        "postgresql://u@bücher.lab/jobs",
        "postgresql:///jobs",
        "postgresql://u@[fe80::1%25eth0]:5432/jobs",  # an IPv6 address with its zone
        "postgresql:///jobs?host=fe80::1%25eth0&port=5432",
        "postgresql://u@h1,h2:5433/jobs",
        "postgresql:///jobs?host=%2Fvar%2Frun%2Fpostgresql",
        "postgresql://u@db_primary.farm_internal/jobs",  # libpq takes underscores
        # The rules are the ASCII form's: these Unicode names are longer than it, or their
        # dots are ideographic ones, and their ASCII forms are ordinary host names.
        f"postgresql://u@{chr(0xAD) * 10}{'a' * 60}.lab/jobs",  # soft hyphens are dropped
        f"postgresql://u@{'a' * 40}\u3002{'b' * 40}/jobs",
    ], ids=["final-dot", "longest-parts", "ipv6-and-ipv4", "socket-folder", "socket-in-query",
            "unicode", "no-host", "ipv6-zone", "ipv6-in-query", "several-hosts",
            "socket-in-query-escaped", "underscores", "soft-hyphens", "ideographic-dot"])
    def test_host_names_and_addresses_that_work_are_let_through(self, url: str) -> None:
        check_url(url)


class TestWhereThePasswordComesFrom:
    """The variable first, then the file it names; neither leaves the password to libpq."""

    def test_the_variable_is_the_password(self, tmp_path: Path) -> None:
        secret = tmp_path / "secret"
        secret.write_text("from-the-file\n", encoding="utf-8")
        env = {PASSWORD_ENV: SECRET, PASSWORD_FILE_ENV: str(secret)}
        assert store_password(env) == SECRET

    def test_an_empty_variable_leaves_it_to_the_file(self, tmp_path: Path) -> None:
        secret = tmp_path / "secret"
        secret.write_text("from-the-file\n", encoding="utf-8")
        assert store_password({PASSWORD_ENV: "", PASSWORD_FILE_ENV: str(secret)}) == (
            "from-the-file")

    @pytest.mark.parametrize(("content", "password"), [
        ("s3cret\n", "s3cret"),
        ("s3cret\r\n", "s3cret"),
        ("s3cret", "s3cret"),
        (" two words \t\n", " two words \t"),
        ("pässwörd€\n", "pässwörd€"),
    ])
    def test_the_file_holds_the_password_without_its_line_end(
        self, tmp_path: Path, content: str, password: str
    ) -> None:
        secret = tmp_path / "secret"
        secret.write_bytes(content.encode("utf-8"))
        assert store_password({PASSWORD_FILE_ENV: str(secret)}) == password

    @pytest.mark.parametrize("env", [{}, {PASSWORD_ENV: "", PASSWORD_FILE_ENV: ""}])
    def test_neither_leaves_it_to_libpq(self, env: dict[str, str]) -> None:
        assert store_password(env) is None

    def test_without_a_mapping_the_process_environment_is_read(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv(PASSWORD_FILE_ENV, raising=False)
        monkeypatch.setenv(PASSWORD_ENV, SECRET)
        assert store_password() == SECRET
        monkeypatch.delenv(PASSWORD_ENV)
        assert store_password() is None

    def test_a_missing_file_is_an_error_naming_it(self, tmp_path: Path) -> None:
        missing = tmp_path / "no-secret"
        with pytest.raises(StoreError) as caught:
            store_password({PASSWORD_FILE_ENV: str(missing)})
        assert caught.value.message == (
            f"cannot read the store password file {missing} (No such file or directory)")
        assert caught.value.hint == f"{PASSWORD_FILE_ENV} must name a file this account can read"

    def test_a_password_given_as_the_files_name_is_not_said_back(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        with pytest.raises(StoreError) as caught:
            store_password({PASSWORD_FILE_ENV: SECRET})
        assert SECRET not in str(caught.value)
        assert caught.value.message.startswith(
            f"cannot read the store password file the name given ({len(SECRET)} characters")
        # Nor by its cause (rv43): the OSError raised from quotes the name it could not open,
        # and a traceback (a log's exc_info, a crash report of a later failure) shows it.
        assert SECRET not in "".join(traceback.format_exception(caught.value))

    def test_a_file_that_cannot_be_read_never_shows_its_content(self, tmp_path: Path) -> None:
        folder = tmp_path / "secret"
        folder.mkdir()
        with pytest.raises(StoreError) as caught:
            store_password({PASSWORD_FILE_ENV: str(folder), PASSWORD_ENV: ""})
        assert str(caught.value) == (
            f"cannot read the store password file {folder} (Is a directory) "
            f"({PASSWORD_FILE_ENV} must name a file this account can read)")


class TestThePasswordFileAsText:
    """The file is UTF-8 whatever the locale, and a file that is not is a clear error."""

    def test_a_password_ending_in_letters_keeps_them(self, tmp_path: Path) -> None:
        secret = tmp_path / "secret"
        secret.write_text("ABCX\nX\n", encoding="utf-8")
        assert store_password({PASSWORD_FILE_ENV: str(secret)}) == "ABCX\nX"

    def test_the_file_is_read_as_utf8_under_an_ascii_locale(self, tmp_path: Path) -> None:
        secret = tmp_path / "secret"
        secret.write_bytes("pässwörd€\n".encode())
        env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0",
               "PYTHONCOERCECLOCALE": "0", "PYTHONIOENCODING": "utf-8",
               "PYTHONPATH": str(REPO_ROOT), PASSWORD_FILE_ENV: str(secret)}
        env.pop(PASSWORD_ENV, None)
        shown = subprocess.run(
            [sys.executable, "-c", "from preform_pipeline.store.pgurl import store_password; "
             "print(store_password())"],
            env=env, capture_output=True, text=True, encoding="utf-8", timeout=60, check=False)
        assert (shown.returncode, shown.stdout) == (0, "pässwörd€\n"), shown.stderr

    def test_a_file_that_is_not_utf8_is_an_error_without_any_of_its_bytes(
        self, tmp_path: Path
    ) -> None:
        secret = tmp_path / "secret"
        secret.write_bytes("geheim-ä\n".encode("latin-1"))
        with pytest.raises(StoreError) as caught:
            store_password({PASSWORD_FILE_ENV: str(secret)})
        assert str(caught.value) == (
            f"cannot read the store password file {secret} (it is not UTF-8 text) "
            "(save the password file as UTF-8)")

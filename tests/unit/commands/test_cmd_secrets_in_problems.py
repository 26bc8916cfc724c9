"""A password or token a user put in the wrong place never reaches the console (session 31).

Session 31's sweep found two ways it did: a settings value that failed its schema rule was
quoted whole (a password typed into ``secret_hash``, a ``client_secret`` of digits, a store URL
with a login, a webhook's secret path), and libpq's message about a store URL it could not
parse quoted that URL, or the badly encoded part of its password. Each command's data folder
(where a long message is kept whole) is inside the test's folder. Every command here is
refused before it starts anything, so it runs in the test's process, its output caught at the
file descriptors (``tests/command_line.py``); ``jobs`` refusing another database's URL is a
real subprocess, as a user types it.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.command_line import InProcess, in_a_process
from tests.conftest import RECIPES, REPO_ROOT

SAMPLE = REPO_ROOT / "sample_models" / "batch"
SECRET = "hunter2-Plain"

#: Runs a command line in a folder: :func:`in_a_process` or the ``in_process`` fixture.
Runner = Callable[..., subprocess.CompletedProcess[str]]


def command(run: Runner, tmp_path: Path, *argv: str, **env: str) -> tuple[int, str]:
    """Exit status and everything the command printed, and every file it left."""
    done = run(tmp_path, *argv, env_extra={"XDG_DATA_HOME": str(tmp_path / "data"), **env})
    kept = "".join(p.read_text(encoding="utf-8", errors="replace")
                   for p in (tmp_path / "data").rglob("*") if p.is_file())
    return done.returncode, done.stdout + done.stderr + kept


def _jobs_on_a_closed_port(run: Runner, tmp_path: Path, url: str) -> tuple[int, str, int]:
    """``jobs --store`` with ``url`` (``{}``: a loopback port nothing listens on): its exit
    status, all it said, and the port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, said = command(run, tmp_path, "jobs", "--store", url.format(port))
    return code, said, port


class TestSettingsProblems:
    """A settings problem names the key and the rule, and never quotes a secret."""

    def test_secrets_are_not_shown_and_urls_by_scheme_and_host(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        settings = tmp_path / "settings.yaml"
        settings.write_text(
            "web:\n  users:\n    - name: olivia\n      role: operator\n"
            f"      secret_hash: {SECRET}\n"
            "cloud:\n  client_id: lab\n  client_secret: 918273645\n"
            "verify:\n  notifications:\n"
            f"    webhook_url: hxxps://hooks.example/T0/{SECRET}\n"
            f"store:\n  url: postgressql://pipeline:{SECRET}@db.lab/jobs\n",
            encoding="utf-8")
        code, said = command(in_process, tmp_path, "validate", "--settings", str(settings))
        assert code == 1
        assert SECRET not in said and "918273645" not in said
        assert ("$.web.users[0].secret_hash: the value (not shown: it is a secret) does not "
                "match '^scrypt\\\\$'") in said
        assert ("$.cloud.client_secret: the value (not shown: it is a secret) is not of type "
                "'string'") in said
        assert ("$.verify.notifications.webhook_url: 'hxxps://hooks.example/[redacted]' does "
                "not match '^https?://'") in said
        assert "$.store.url: 'postgressql://db.lab/[redacted]' does not match" in said

    def test_a_store_url_from_the_environment_is_not_shown_either(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        code, said = command(in_process, tmp_path, "jobs",
                             PREFORM_PIPELINE_STORE_URL=f"mysql://pipeline:{SECRET}@db.lab/jobs")
        assert code == 1
        assert SECRET not in said
        assert ("environment variable PREFORM_PIPELINE_STORE_URL: $.store.url: "
                "'mysql://db.lab/[redacted]' does not match") in said

    def test_a_user_object_given_two_secrets_is_shown_with_them_redacted(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        settings = tmp_path / "settings.yaml"
        settings.write_text("web:\n  users:\n    - name: olivia\n      role: operator\n"
                            f"      secret_hash: scrypt${SECRET}\n      secret_env: X\n",
                            encoding="utf-8")
        code, said = command(in_process, tmp_path, "validate", "--settings", str(settings))
        assert code == 1
        assert SECRET not in said
        assert ("'secret_hash': '[redacted]', 'secret_env': '[redacted]'} is valid under each"
                in said)


class TestStoreUrlsLibpqCannotRead:
    """The driver's message about a URL it cannot read names the URL without its password."""

    @pytest.mark.parametrize(("url", "shown"), [
        (f"postgresql://pipeline:{SECRET}@[::1/jobs",
         'in IPv6 host address in URI: "postgresql://(unreadable URL)"'),
        # Refused before libpq reads it since session 42 (libpq quoted it, hidden as "***").
        (f"postgresql://pipeline:{SECRET}%ZZ@127.0.0.1:1/jobs",
         "postgresql://pipeline:***@127.0.0.1:1/jobs: the URL's user or password holds @, / "
         "or a bare %"),
        (f"postgresql://pipeline@127.0.0.1:1/jobs?password={SECRET}%ZZ",
         'the job store\'s URL cannot work while connecting: invalid percent-encoded token: '
         '"***"'),
    ], ids=["unclosed-bracket", "bad-escape-in-login", "bad-escape-in-query"])
    def test_jobs_says_what_is_wrong_and_not_the_password(
        self, tmp_path: Path, in_process: InProcess, url: str, shown: str
    ) -> None:
        code, said = command(in_process, tmp_path, "jobs", "--store", url)
        assert code == 1
        assert SECRET not in said
        assert shown in said
        # Said as a URL that cannot work (session 45), not as a failure the database's log
        # explains: libpq read no further than the URL.
        assert ("the job store's URL cannot work while connecting: " in said) is (
            "user or password" not in shown)
        assert "the database log" not in said


class TestStoreUrlsOfOtherShapes:
    """URLs session 45's fuzzer found: a password holding "/" in a URL of another scheme,
    and a scheme in upper case."""

    @pytest.mark.parametrize(("option", "url", "status", "shown"), [
        # urlsplit read "pipeline:<secret>" as a host and port; the port's ValueError quoted
        # the password, and argparse printed "invalid store_argument value: '<the URL>'".
        ("--store", f"pgsql://pipeline:{SECRET}/x@db.lab/jobs", 2,
         "argument --store: 'pgsql://pipeline/[redacted]' is not a job store"),
        # Without its "//" the URL was a file path: "no jobs (no job store at <the URL> yet)".
        ("--store", f"postgresql:pipeline:{SECRET}@db.lab/jobs", 2,
         "argument --store: 'postgresql:///[redacted]' is not a job store"),
        ("--store", f"postgresql:db.lab/jobs?password={SECRET}", 2,
         "argument --store: 'postgresql:///[redacted]' is not a job store"),
        # An IPv6 host was shown without its brackets ("http://::1:5432/..."), unusable.
        ("--store", f"http://[::1]:5432/{SECRET}", 2,
         "argument --store: 'http://[::1]:5432/[redacted]' is not a job store"),
        # From the environment: exit 70, the password on the console and in the crash report.
        ("PREFORM_PIPELINE_STORE_URL", f"pgsql://u:{SECRET}/x@db.lab/jobs", 1,
         "environment variable PREFORM_PIPELINE_STORE_URL: $.store.url: "
         "'pgsql://u/[redacted]' does not match"),
    ], ids=["slash-in-password", "no-slashes", "no-slashes-query", "ipv6-host",
            "slash-in-password-environment"])
    def test_a_store_url_of_another_shape_is_refused_without_its_password(
        self, tmp_path: Path, in_process: InProcess, option: str, url: str, status: int,
        shown: str,
    ) -> None:
        given = {option: url} if option.isupper() else {}
        argv = ("jobs", option, url) if not given else ("jobs",)
        code, said = command(in_process, tmp_path, *argv, **given)
        assert code == status
        assert SECRET not in said
        assert shown in said

    @pytest.mark.parametrize(("target", "shown"), [
        (f"postgresql:pipeline:{SECRET}@db.lab/jobs", "'postgresql:///[redacted]'"),
        (f"postgresql:db.lab/jobs?password={SECRET}", "'postgresql:///[redacted]'"),
        (f"mysql://pipeline:{SECRET}@db.lab/jobs", "'mysql://db.lab/[redacted]'"),
        ("/srv/jobs.sqlite3", "'/srv/jobs.sqlite3'"),
    ], ids=["no-slashes", "no-slashes-query", "another-scheme", "a-path"])
    def test_store_migrate_refuses_a_target_of_another_shape_without_its_password(
        self, tmp_path: Path, in_process: InProcess, target: str, shown: str
    ) -> None:
        # Was said back as typed: "got 'postgresql:pipeline:<the password>@db.lab/jobs'".
        code, said = command(in_process, tmp_path, "store", "migrate", "--to", target,
                             "--store", str(tmp_path / "jobs.sqlite3"))
        assert code == 1
        assert SECRET not in said
        assert f"error: --to must be a postgresql:// URL, got {shown}\n" in said

    def test_an_upper_case_scheme_is_a_url_libpq_reads(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        code, said, port = _jobs_on_a_closed_port(in_process, tmp_path,
                                                  f"POSTGRESQL://u:{SECRET}@127.0.0.1:{{}}/jobs")
        assert code == 1
        assert SECRET not in said
        # libpq knows only lower case: it read the URL as an unknown "connection option".
        assert "invalid connection option" not in said
        assert f"error: postgresql://u:***@127.0.0.1:{port}/jobs: cannot reach the " in said


class TestWebApiBaseUrls:
    """A login written in ``cloud.base_url`` (the Dashboard's Web API, behind a proxy) is not
    said when a request fails: the password, and a token given as the user alone, which
    urlauth sends as basic auth with no password (session 46)."""

    @pytest.mark.parametrize(("login", "shown"), [
        (f"{SECRET}@", "[redacted]@"),
        (f"olivia:{SECRET}@", "olivia:[redacted]@"),
    ], ids=["token-as-user", "password"])
    def test_fleet_sync_names_the_request_without_it(
        self, tmp_path: Path, in_process: InProcess, login: str, shown: str
    ) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        settings = tmp_path / "settings.yaml"
        settings.write_text(
            f"cloud:\n  client_id: lab\n  client_secret: s\n"
            f"  base_url: http://{login}127.0.0.1:{port}\n"
            "fleet:\n  groups:\n    - name: Lab\n      printers: [Form4-A]\n",
            encoding="utf-8")

        code, said = command(in_process, tmp_path, "fleet", "sync", str(settings))

        assert code == 1
        assert SECRET not in said
        assert f"GET http://{shown}127.0.0.1:{port}/developer/v1/groups/: cannot reach" in said


class TestStoreUrlsWithoutAHostName:
    """Session 45's fuzzer: a store URL whose host is 300 characters ended ``jobs`` with exit
    70 (UnicodeError from the host name's resolving); a real process, as the fuzzer ran it."""

    @pytest.mark.parametrize("given", ["--store", "PREFORM_PIPELINE_STORE_URL"])
    def test_a_host_too_long_to_be_a_host_name_is_said_so(
        self, tmp_path: Path, given: str
    ) -> None:
        url = f"postgres://:{SECRET}@{'a' * 300}"
        argv = ("jobs", "--store", url) if given == "--store" else ("jobs",)
        env = {} if given == "--store" else {given: url}
        code, said = command(in_a_process, tmp_path, *argv, **env)
        assert code == 1
        assert SECRET not in said
        assert "unexpected failure" not in said and "Traceback" not in said
        assert (f"error: the store URL's host '{'a' * 40}...' is not a valid host name: it is "
                "300 characters long, and a host name is at most 253 (give the database "
                "server's host name or address in the URL (store.url or --store))\n") in said


class TestAStoreThatIsNotThere:
    """A database that cannot be reached is said in the driver's words, the URL's password
    hidden where it stands as one and nowhere else (the review of session 43: the password
    "p" made the message read "***ort 1 failed")."""

    def test_a_short_password_leaves_the_message_whole(
        self, tmp_path: Path, in_process: InProcess
    ) -> None:
        code, said, port = _jobs_on_a_closed_port(in_process, tmp_path,
                                                  "postgresql://u:p@127.0.0.1:{}/jobs")
        assert code == 1
        # Up to the driver's words: the console's cut (crash.shorten) may take the hint's
        # middle on a long line, never the cause at its start.
        assert (f"error: postgresql://u:***@127.0.0.1:{port}/jobs: cannot reach the PostgreSQL "
                f'job store while connecting: Connection refused (server "127.0.0.1", port '
                f"{port})") in said, said
        assert "***ort" not in said and ":p@" not in said


class TestStoreUrlsOfOtherDatabases:
    """`--store` with another database's URL is refused by argparse, its password not shown
    (it was taken as a file path: "no job store at mysql:/pipeline:<password>@db.lab/jobs yet",
    and `run` made the folders ``mysql:/pipeline:<password>@db.lab`` in the working folder)."""

    @pytest.mark.parametrize("argv", [
        ("jobs",), ("verify",),
        ("run", str(RECIPES / "engineering-grey-form4.yaml"), str(SAMPLE / "part_01.stl"),
         "--output", "out"),
    ], ids=["jobs", "verify", "run"])
    def test_the_command_line_is_refused(
        self, tmp_path: Path, in_process: InProcess, argv: tuple[str, ...]
    ) -> None:
        url = f"mysql://pipeline:{SECRET}@db.lab/jobs"
        run = in_a_process if argv == ("jobs",) else in_process
        code, said = command(run, tmp_path, *argv, "--store", url)
        assert code == 2
        assert SECRET not in said
        assert (f"preform-pipeline {argv[0]}: error: argument --store: 'mysql://db.lab/"
                "[redacted]' is not a job store: give the store's file or a postgresql:// URL"
                ) in said
        assert not (tmp_path / "mysql:").exists()

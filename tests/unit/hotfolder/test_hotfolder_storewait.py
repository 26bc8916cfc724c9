"""A node starting while its shared database does not accept connections (hotfolder/storewait.py):
it waits and tries again, logging each try, up to ``store.start_wait_s``; a refusal fails at once
(a real PostgreSQL server of the test's own, stopped and started; time on the clock seam)."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.errors import StoreError
from preform_pipeline.hotfolder.nodes import join_farm
from preform_pipeline.hotfolder.storewait import wait_for_store
from preform_pipeline.hotfolder.testing import write_hotfolder_settings, write_recipe
from preform_pipeline.settings import Settings, load_settings
from preform_pipeline.store.pgurl import PASSWORD_ENV
from preform_pipeline.store.postgres import PostgresJobStore
from tests.pg_cluster import PG_PASSWORD, PgCluster, require_postgres


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    """A server of this module's own: its tests stop it, which would cut other tests off."""
    require_postgres()
    made = PgCluster.create()
    made.create_database("farm")
    try:
        yield made
    finally:
        made.destroy()


@pytest.fixture
def stopped(cluster: PgCluster) -> Iterator[PgCluster]:
    """The server, down for the test (up again after it, for the next test)."""
    cluster.stop()
    try:
        yield cluster
    finally:
        with contextlib.suppress(RuntimeError):  # already down: the test left it so
            cluster.stop()
        cluster.start()


class ServerStartsWhileWeWait(ManualClock):
    """A clock whose ``after``-th sleep starts the database server (it boots meanwhile)."""

    def __init__(self, cluster: PgCluster, after: int) -> None:
        super().__init__()
        self.cluster = cluster
        self.after = after

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        if len(self.sleeps) == self.after:
            self.cluster.start()


def _settings(tmp_path: Path, cluster: PgCluster, **store: object) -> Path:
    path = write_hotfolder_settings(tmp_path, write_recipe(tmp_path))
    data = json.loads(path.read_text(encoding="utf-8"))
    data["store"] = {"url": cluster.url("farm"), "node_id": "pc-a", **store}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _load(path: Path) -> Settings:
    return load_settings(path, env={PASSWORD_ENV: PG_PASSWORD})


def _waits(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == "store_unreachable_waiting"]


class TestANodeWaitsForItsDatabase:
    """A node started before its database (or during its restart) waits, then joins."""

    def test_it_tries_again_with_a_logged_event_each_time_and_joins_once_the_server_is_up(
        self, stopped: PgCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(PASSWORD_ENV, PG_PASSWORD)
        settings = _load(_settings(tmp_path, stopped))
        clock = ServerStartsWhileWeWait(stopped, after=2)
        with capture_logs() as logs:
            farm = join_farm(settings, clock=clock)
        try:
            assert [n.info.id for n in farm.store.list_nodes()] == ["pc-a"]
        finally:
            farm.close()
        waits = _waits(logs)
        assert [(e["attempt"], e["retry_in_s"]) for e in waits] == [(1, 1.0), (2, 2.0)]
        assert all("Connection refused" in str(e["error"]) for e in waits)
        assert all(e["wait_s"] == 300.0 for e in waits)  # the default bound
        assert [e["attempts"] for e in logs if e["event"] == "store_reachable"] == [3]
        assert clock.slept == 3.0

    def test_a_database_that_stays_away_fails_after_the_setting_s_bound_with_a_hint(
        self, stopped: PgCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(PASSWORD_ENV, PG_PASSWORD)
        settings = _load(_settings(tmp_path, stopped, start_wait_s=5))
        clock = ManualClock()
        with capture_logs() as logs, pytest.raises(StoreError) as caught:
            join_farm(settings, clock=clock)
        assert clock.sleeps == [1.0, 2.0, 2.0]  # backing off, the last one cut to the bound
        assert len(_waits(logs)) == 3
        assert "still unreachable after 5 s" in caught.value.message
        assert "store.start_wait_s" in caught.value.hint
        assert "Connection refused" in caught.value.message

    def test_with_no_wait_set_it_fails_at_once(
        self, stopped: PgCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(PASSWORD_ENV, PG_PASSWORD)
        clock = ManualClock()
        with pytest.raises(StoreError, match="Connection refused"):
            join_farm(_load(_settings(tmp_path, stopped, start_wait_s=0)), clock=clock)
        assert clock.sleeps == []


class TestARefusalIsNotWaitedFor:
    """A database that answers no (a wrong password, no such database) fails at once."""

    @pytest.mark.parametrize(("database", "password", "said"), [
        ("farm", "wrong", "password authentication failed"),
        ("no_such_db", PG_PASSWORD, 'database "no_such_db" does not exist'),
    ])
    def test_the_first_error_stands_and_nothing_is_slept(
        self, cluster: PgCluster, database: str, password: str, said: str
    ) -> None:
        clock = ManualClock()
        with capture_logs() as logs, pytest.raises(StoreError, match=said):
            wait_for_store(lambda: PostgresJobStore(cluster.url(database), password=password),
                           location=cluster.url(database), clock=clock)
        assert clock.sleeps == []
        assert _waits(logs) == []


class TestTheCommandSaysWhatFailed:
    """``watch`` on an unreachable database exits 1 with the error and the hint, no traceback."""

    def test_exit_1_names_the_store_and_the_setting(
        self, stopped: PgCluster, tmp_path: Path
    ) -> None:
        settings = _settings(tmp_path, stopped, start_wait_s=0)
        result = subprocess.run(
            [sys.executable, "-m", "preform_pipeline", "watch", str(settings), "--quiet"],
            capture_output=True, text=True, timeout=60, check=False,
            env={"PATH": "/usr/bin:/bin", PASSWORD_ENV: PG_PASSWORD,
                 "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
        )
        assert result.returncode == 1, result.stderr
        assert "error:" in result.stderr and "Connection refused" in result.stderr
        assert "Traceback" not in result.stderr + result.stdout


class TestTheConsoleSaysItWaitsBeforeItWatches:
    """``watch`` on a database that is down says it waits for the job store (once, with the
    cause), and says it watches only once it has joined; the log file keeps each try."""

    def test_waiting_comes_first_then_watching_once_the_server_is_up(
        self, stopped: PgCluster, tmp_path: Path
    ) -> None:
        settings = _settings(tmp_path, stopped, start_wait_s=15)
        log_file = tmp_path / "watch.jsonl"
        data = json.loads(settings.read_text(encoding="utf-8"))
        data["logging"] = {"file": str(log_file)}
        settings.write_text(json.dumps(data), encoding="utf-8")
        watch = subprocess.Popen(
            [sys.executable, "-m", "preform_pipeline", "watch", str(settings), "--once"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={"PATH": "/usr/bin:/bin", PASSWORD_ENV: PG_PASSWORD,
                 "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
        )
        try:
            assert watch.stdout is not None
            first = watch.stdout.readline()  # within a second; at worst after 15 s
            assert first.startswith("waiting for the job store (trying again for up to 15 s): ")
            assert "Connection refused" in first
            stopped.start()
            out, err = watch.communicate(timeout=60)
        finally:
            if watch.poll() is None:
                watch.kill()
                watch.communicate()
        assert watch.returncode == 0, err
        assert [line for line in out.splitlines() if line.startswith("watching ")] != []
        assert "store_unreachable_waiting" not in err  # said once above, not per try
        events = [json.loads(line)["event"]
                  for line in log_file.read_text(encoding="utf-8").splitlines()]
        waited = events.index("store_unreachable_waiting")
        assert events.index("store_reachable") > waited

    def test_a_quiet_watch_says_it_waits_once_on_stderr(
        self, stopped: PgCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``--quiet`` turns off progress lines, not why the daemon has not started: the
        waiting line goes to stderr (cron mails it), once, and stdout stays empty."""
        from preform_pipeline import cli

        monkeypatch.setenv(PASSWORD_ENV, PG_PASSWORD)
        monkeypatch.setenv("PREFORM_PIPELINE_CRASH_DIR", str(tmp_path / "crash"))
        settings = _settings(tmp_path, stopped, start_wait_s=1)
        out, err = io.StringIO(), io.StringIO()
        assert cli.run(["watch", str(settings), "--once", "--quiet"], out, err) == 1
        waiting = [line for line in err.getvalue().splitlines()
                   if line.startswith("waiting for the job store ")]
        assert len(waiting) == 1 and "Connection refused" in waiting[0], err.getvalue()
        assert out.getvalue() == ""


def _told(url: str, password: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The whole error ``jobs --store URL`` gives a user (the console's line, or the message
    file it names when the line is cut)."""
    from preform_pipeline import cli

    monkeypatch.setenv(PASSWORD_ENV, password)
    crash = tmp_path / "crash"
    monkeypatch.setenv("PREFORM_PIPELINE_CRASH_DIR", str(crash))
    out, err = io.StringIO(), io.StringIO()
    assert cli.run(["jobs", "--store", url], out, err) == 1
    said = err.getvalue()
    assert "Traceback" not in said
    return (next(crash.iterdir()).read_text(encoding="utf-8") if crash.exists()
            else said).rstrip()


def _start_waits(url: str, password: str) -> tuple[bool, StoreError]:
    """Whether watch's start (wait_for_store, as join_farm calls it) waited for ``url``, and
    the error it ended on: 3 s of waiting on the clock seam."""
    clock = ManualClock()
    with capture_logs() as logs, pytest.raises(StoreError) as caught:
        wait_for_store(lambda: PostgresJobStore(url, password=password, connect_timeout_s=5),
                       location=url, clock=clock, wait_s=3)
    waited = _waits(logs) != []
    assert waited == (clock.sleeps != [])
    return waited, caught.value


_REFUSED = "waiting does not cure it: correct it, then run the command again"
_AWAY = "watch tries again by itself, other commands: run them again once the database is back"
_FULL = "watch tries again by itself, other commands: run them again once a connection is free"
#: What the error of each kind begins and ends with.
_SAID = {
    "refused": ("the PostgreSQL server refused the job store's login", _REFUSED),
    "misconfigured": ("the job store's URL cannot work", _REFUSED),
    "overloaded": ("the PostgreSQL server has no connection free for the job store", _FULL),
}
#: A real condition per kind of failure: (its kind, what the admin sets up, the URL's user,
#: database and query, the password), on the module's cluster.
_CASES: dict[str, tuple[str, str, str, str, str, str]] = {
    "wrong-password": ("refused", "", "pipeline", "farm", "", "wrong"),
    "missing-database": ("refused", "", "pipeline", "no_such_db", "", PG_PASSWORD),
    "role-without-login": ("refused", "CREATE ROLE {r} PASSWORD 'pw' NOLOGIN", "{r}", "farm",
                           "", "pw"),
    "sslmode-require": ("misconfigured", "", "pipeline", "farm", "?sslmode=require",
                        PG_PASSWORD),
    "role-connection-limit": ("overloaded",
                              "CREATE ROLE {r} PASSWORD 'pw' LOGIN CONNECTION LIMIT 0",
                              "{r}", "farm", "", "pw"),
    # Review of session 45: the role's name holds "certificate", a word of the SSL files'
    # rule; the name is not the message's words (it was said as a URL that cannot work).
    "role-named-certificate-connection-limit": (
        "overloaded", "CREATE ROLE {r} PASSWORD 'pw' LOGIN CONNECTION LIMIT 0", "{r}", "farm",
        "", "pw"),
    "database-connection-limit": ("overloaded", "CREATE ROLE {r} PASSWORD 'pw' LOGIN; CREATE "
                                  "DATABASE {r}_db; ALTER DATABASE {r}_db CONNECTION LIMIT 0",
                                  "{r}", "{r}_db", "", "pw"),
}


class TestWhatIsSaidIsWhatWatchsStartDoes:
    """Session 45: for each kind of failure on a real server, the message a user reads and what
    a starting watch does agree: "once ... is back/free" is waited for, "waiting does not cure
    it" is given up on at once (store/pgerrors.py is the one classification both read)."""

    @pytest.mark.parametrize("case", list(_CASES))
    def test_on_a_server_that_answers(
        self, cluster: PgCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
    ) -> None:
        import psycopg

        kind, setup, user, database, query, password = _CASES[case]
        head, ending = _SAID[kind]
        role = f"s45_{case.replace('-', '_')}"
        with psycopg.connect(cluster.url(), password=PG_PASSWORD, autocommit=True) as admin:
            try:
                for statement in filter(None, setup.format(r=role).split("; ")):
                    admin.execute(statement)
                url = (cluster.url(database.format(r=role)).replace(
                    "pipeline@", f"{user.format(r=role)}@") + query)
                told = _told(url, password, tmp_path, monkeypatch)
                waited, error = _start_waits(url, password)
            finally:
                admin.execute(f"DROP DATABASE IF EXISTS {role}_db")
                admin.execute(f"DROP ROLE IF EXISTS {role}")
        assert head in told
        assert told.endswith(f"{ending})")
        assert waited == (ending != _REFUSED)
        if waited:
            assert "store.start_wait_s" in error.hint
        else:  # the first error stands, as the user was told it
            assert str(error).endswith(f"{ending})")

    def test_a_host_name_that_cannot_resolve_is_named_and_not_waited_for(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        url = "postgresql://pipeline:s3cr3t-pw@nonexistent.invalid:5432/farm"
        told = _told(url, PG_PASSWORD, tmp_path, monkeypatch)
        assert ('the job store\'s URL cannot work while connecting: the host name '
                '"nonexistent.invalid" could not be resolved') in told
        assert "Errno" not in told and "s3cr3t-pw" not in told
        assert told.endswith(f"{_REFUSED})")
        waited, error = _start_waits(url, PG_PASSWORD)
        assert not waited and "s3cr3t-pw" not in str(error)

    def test_a_stopped_server_is_said_as_away_and_waited_for(
        self, stopped: PgCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        told = _told(stopped.url("farm"), PG_PASSWORD, tmp_path, monkeypatch)
        assert "cannot reach the PostgreSQL job store" in told
        assert told.endswith(f"{_AWAY})")
        waited, error = _start_waits(stopped.url("farm"), PG_PASSWORD)
        assert waited and "still unreachable after 3 s" in error.message

    def test_no_connection_free_is_said_as_such_once_the_wait_is_over(
        self, cluster: PgCluster
    ) -> None:
        import psycopg

        role = "s45_full_after_wait"
        with psycopg.connect(cluster.url(), password=PG_PASSWORD, autocommit=True) as admin:
            admin.execute(f"CREATE ROLE {role} PASSWORD 'pw' LOGIN CONNECTION LIMIT 0")
            try:
                url = cluster.url("farm").replace("pipeline@", f"{role}@")
                waited, error = _start_waits(url, "pw")
            finally:
                admin.execute(f"DROP ROLE {role}")
        assert waited
        assert "still no connection free after 3 s" in error.message
        assert "CONNECTION LIMIT" in error.hint


@contextlib.contextmanager
def _ssl_only(cluster: PgCluster) -> Iterator[None]:
    """The cluster's pg_hba.conf takes TCP logins over SSL only (``hostssl``), as a server
    that requires SSL has it; the server has no SSL here, so no TCP login finds an entry.
    The admin's session, opened before, reloads the file and puts it back after."""
    import psycopg

    hba = cluster.data_dir / "pg_hba.conf"
    was = hba.read_text(encoding="utf-8")
    with psycopg.connect(cluster.url(), password=PG_PASSWORD, autocommit=True) as admin:
        hba.write_text("local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
                       encoding="utf-8")
        try:
            admin.execute("SELECT pg_reload_conf()")
            _until_login(cluster, works=False)
            yield
        finally:
            hba.write_text(was, encoding="utf-8")
            admin.execute("SELECT pg_reload_conf()")
            _until_login(cluster, works=True)


def _until_login(cluster: PgCluster, *, works: bool, within_s: float = 10.0) -> None:
    """Wait until a TCP login works (or fails), as the server's reload of pg_hba.conf (a
    signal to the postmaster) takes effect."""
    import time

    import psycopg

    deadline = time.monotonic() + within_s
    while True:
        try:
            psycopg.connect(cluster.url(), password=PG_PASSWORD, connect_timeout=5).close()
            worked = True
        except psycopg.OperationalError:
            worked = False
        if worked == works:
            return
        assert time.monotonic() < deadline, f"pg_hba.conf reload not seen in {within_s} s"
        time.sleep(0.02)  # a breath between logins: the reload has no event to wait on


class TestAServerThatTakesThisNodeOverSslOnly:
    """The other way round from ``sslmode=require`` against a server without SSL: the URL
    says ``sslmode=disable`` and the server has only ``hostssl`` entries. The server's no, said
    as a refusal whose hint names the sslmode, and a starting watch gives up at once."""

    def test_it_is_said_as_refused_with_the_sslmode_and_not_waited_for(
        self, cluster: PgCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        url = cluster.url("farm") + "?sslmode=disable"
        with _ssl_only(cluster):
            told = _told(url, PG_PASSWORD, tmp_path, monkeypatch)
            waited, error = _start_waits(url, PG_PASSWORD)
        assert 'refused the job store\'s login while connecting: FATAL: no pg_hba.conf entry ' \
            'for host "127.0.0.1", user "pipeline", database "farm", no encryption' in told
        assert "drop sslmode=disable" in told
        assert told.endswith(f"{_REFUSED})")
        assert not waited and str(error).endswith(f"{_REFUSED})")

"""A real, throw-away PostgreSQL cluster for tests: initdb + pg_ctl in a temporary folder.

The server binaries come from the machine (``initdb`` on PATH, or Debian's
``/usr/lib/postgresql/<version>/bin``). PostgreSQL refuses to run as root, and CI runs as
root: then the cluster belongs to an unprivileged system user (``postgres`` when it exists,
else ``nobody``) and every server command runs through ``runuser``. The folder is made with
``mkdtemp`` under the system temp dir, not under pytest's per-user one, which that user could
not enter.

The cluster listens on 127.0.0.1 only, on a free port, with password (SCRAM) authentication
over TCP, so the store's credential handling is exercised for real. ``fsync`` is off: a test
cluster's data need not survive a power cut, and it makes the suite much faster.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from tests.reaper import register_cluster

__all__ = ["PgCluster", "find_pg_bin", "pg_unavailable_reason", "require_postgres"]

#: The superuser the tests connect as, and its password (a test cluster's, nowhere else).
PG_USER = "pipeline"
PG_PASSWORD = "test-only-secret"
_START_TIMEOUT_S = 60


def find_pg_bin() -> Path | None:
    """The folder holding initdb and pg_ctl, or None when PostgreSQL is not installed."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit()
        else 0,
    )
    return Path(candidates[-1]).parent if candidates else None


def pg_unavailable_reason() -> str | None:
    """Why a real PostgreSQL cannot be started here, or None when it can."""
    if find_pg_bin() is None:
        return ("PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's "
                "`postgresql` package (.ci/run does) to run the PostgreSQL store tests")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed: pip install -e '.[test]' to run the PostgreSQL tests"
    return None


def require_postgres() -> None:
    """Skip the calling test when PostgreSQL cannot run here, with the reason; but fail it in
    CI (``CI`` set), where .ci/run installs PostgreSQL: a missing server there is a bug."""
    import pytest

    reason = pg_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_user() -> str | None:
    """The unprivileged user to run the server as, or None to run it as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root and no unprivileged user (postgres, nobody) exists")


@dataclass
class PgCluster:
    """One running cluster; ``url(db)`` names a database on it (password not in the URL)."""

    bin_dir: Path
    root: Path
    port: int = field(default_factory=_free_port)
    user: str | None = field(default_factory=_server_user)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    @classmethod
    def create(cls) -> PgCluster:
        bin_dir = find_pg_bin()
        if bin_dir is None:
            raise RuntimeError(pg_unavailable_reason() or "PostgreSQL not found")
        cluster = cls(bin_dir=bin_dir, root=Path(tempfile.mkdtemp(prefix="pp-pg-")))
        # pg_ctl detaches the server from us: should this process be killed before
        # destroy(), the session's watcher stops and removes the cluster instead.
        register_cluster(cluster.root, bin_dir, cluster.user)
        cluster._init()
        cluster.start()
        return cluster

    def _run(self, *argv: str) -> None:
        command = [str(self.bin_dir / argv[0]), *argv[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                                check=False)
        if result.returncode != 0:
            log = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
            raise RuntimeError(
                f"{' '.join(argv[:2])} failed ({result.returncode}): {result.stderr.strip()}\n"
                f"{log[-2000:]}"
            )

    def _init(self) -> None:
        password_file = self.root / "pw"
        password_file.write_text(PG_PASSWORD)
        if self.user is not None:
            record = pwd.getpwnam(self.user)
            for path in (self.root, password_file):
                os.chown(path, record.pw_uid, record.pw_gid)
        self._run("initdb", "-D", str(self.data_dir), "-U", PG_USER, "-E", "UTF8",
                  "--no-sync", "--auth-local=trust", "--auth-host=scram-sha-256",
                  f"--pwfile={password_file}")
        password_file.unlink()

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={self.root} -c fsync=off "
                   "-c full_page_writes=off -c synchronous_commit=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options,
                  "-t", str(_START_TIMEOUT_S), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{quote(database)}"

    def create_database(self, name: str) -> str:
        """A new, empty database; returns its URL."""
        import psycopg

        with psycopg.connect(self.url(), password=PG_PASSWORD, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    @contextlib.contextmanager
    def refusing(self, database: str) -> Iterator[None]:
        """``database`` away, as a database restart leaves it for a while: its sessions cut,
        new ones refused; open again after. The server goes on serving the other tests'."""
        import psycopg

        with psycopg.connect(self.url(), password=PG_PASSWORD, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            try:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = %s", (database,))
                yield
            finally:
                admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):  # already down: the folder goes either way
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

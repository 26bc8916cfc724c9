"""``preform-pipeline serve``: hashing a secret from stdin, and serving until SIGTERM (a real
subprocess on 127.0.0.1)."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from preform_pipeline.cli import run
from preform_pipeline.hotfolder.testing import wait_for
from preform_pipeline.settings.web import check_secret, hash_secret
from preform_pipeline.store import JobState, SqliteJobStore

REPO_ROOT = Path(__file__).resolve().parents[3]


def _serve_on(tmp_path: Path, host: str, port: int) -> subprocess.CompletedProcess[str]:
    """``serve`` in a process of its own, its settings' ``web`` at ``host`` and ``port``."""
    settings = tmp_path / "settings.yaml"
    settings.write_text(json.dumps({"store": {"path": str(tmp_path / "j.sqlite3")},
                                    "web": {"host": host, "port": port}}), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run([sys.executable, "-m", "preform_pipeline", "serve", str(settings)],
                          env=env, capture_output=True, text=True, timeout=60)


def _said_besides_no_users(stderr: str) -> list[str]:
    """The lines of ``stderr`` but the ``web_no_users`` warning (settings without users)."""
    return [line for line in stderr.splitlines() if "web_no_users" not in line]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestHashSecret:
    """The secret comes from stdin, never the command line; the hash checks against it."""

    def test_a_secret_on_stdin_gives_its_scrypt_hash(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(sys, "stdin", io.StringIO("a-long-enough-secret\n"))
        out, err = io.StringIO(), io.StringIO()
        assert run(["serve", "--hash-secret"], out, err) == 0
        encoded = out.getvalue().strip()
        assert encoded.startswith("scrypt$") and check_secret("a-long-enough-secret", encoded)

    def test_a_short_secret_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
        out, err = io.StringIO(), io.StringIO()
        assert run(["serve", "--hash-secret"], out, err) == 1
        assert "at least 12 characters" in err.getvalue() and out.getvalue() == ""


class TestServe:
    """``serve SETTINGS`` answers on loopback and stops cleanly on SIGTERM."""

    def test_it_serves_healthz_and_exits_0_on_sigterm(self, tmp_path: Path) -> None:
        port = _free_port()
        settings = tmp_path / "settings.yaml"
        settings.write_text(json.dumps({"store": {"path": str(tmp_path / "jobs.sqlite3")},
                                        "web": {"port": port}}), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
        env["PYTHONPATH"] = str(REPO_ROOT)
        process = subprocess.Popen(
            [sys.executable, "-m", "preform_pipeline", "serve", str(settings)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            def healthy() -> bool:
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
                except httpx.TransportError:
                    return process.poll() is not None

            wait_for(healthy, 30.0, what="the dashboard to answer")
            assert process.poll() is None
            process.send_signal(signal.SIGTERM)
            out, _ = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        assert process.returncode == 0
        assert f"dashboard on http://127.0.0.1:{port}" in out

    def test_a_port_in_use_is_a_clear_error(self, tmp_path: Path) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            done = _serve_on(tmp_path, "127.0.0.1", port)
        assert done.returncode == 1
        # One line, ours, saying why: uvicorn's own "[Errno 98] error while attempting to
        # bind on address ..." was printed bare before it (session 46).
        assert _said_besides_no_users(done.stderr) == [
            f"error: the web dashboard could not listen on 127.0.0.1:{port}: the port is "
            "already in use (another program listens there (another dashboard?): choose "
            "another web.port in the settings)"]
        assert "dashboard on" not in done.stdout  # nothing announced that is not served

    def test_an_address_not_of_this_machine_says_the_systems_reason(
        self, tmp_path: Path
    ) -> None:
        # 192.0.2.0/24 is TEST-NET-1: no machine has it.
        done = _serve_on(tmp_path, "192.0.2.1", 0)
        assert done.returncode == 1
        assert _said_besides_no_users(done.stderr) == [
            "error: the web dashboard could not listen on 192.0.2.1:0: Cannot assign requested "
            "address (check web.host and web.port in the settings: the host must be an "
            "address of this machine)"]

    def test_a_host_name_that_does_not_resolve_says_the_resolvers_reason(
        self, tmp_path: Path
    ) -> None:
        """Review rv46-loose: the resolver's error (a socket.gaierror, errno -2) was said as
        os.strerror's "Unknown error -2"."""
        host = "printhost.invalid"  # .invalid: a name no resolver may answer (RFC 6761)
        try:
            socket.getaddrinfo(host, 0)
        except socket.gaierror as exc:
            reason = exc.strerror  # this machine's words for it
        else:
            pytest.skip(f"{host} resolves on this machine")
        done = _serve_on(tmp_path, host, 0)
        assert done.returncode == 1
        assert _said_besides_no_users(done.stderr) == [
            f"error: the web dashboard could not listen on {host}:0: {reason} (check web.host "
            "and web.port in the settings: the host must be an address of this machine)"]

    def test_without_settings_it_says_what_is_missing(self) -> None:
        out, err = io.StringIO(), io.StringIO()
        assert run(["serve"], out, err) == 1
        assert "name the settings file" in err.getvalue()


class TestRefusalsNameTheStoresJobsCommand:
    """A refused action's hint on the dashboard names the ``jobs`` command that reaches the
    store ``serve`` serves (``--store PATH`` for the settings' ``store.path``)."""

    def test_settling_a_print_in_no_doubt_points_at_its_history_in_this_store(
        self, tmp_path: Path
    ) -> None:
        port = _free_port()
        path = tmp_path / "lab" / "jobs.sqlite3"
        with SqliteJobStore(path) as store:
            job = store.create_job(recipe="crowns", source_path=tmp_path / "c.stl",
                                   state=JobState.PROCESSING)
            build = store.create_build(recipe="crowns", job_ids=[job.id])
            for state in (JobState.PREPARING, JobState.PREPARED):
                build = store.transition_build(build.id, state, "test")
        settings = tmp_path / "settings.yaml"
        secret = "operator-secret-0123"
        settings.write_text(json.dumps({
            "store": {"path": str(path)},
            "web": {"port": port, "users": [{"name": "olivia", "role": "operator",
                                             "secret_hash": hash_secret(secret)}]},
        }), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
        env["PYTHONPATH"] = str(REPO_ROOT)
        process = subprocess.Popen(
            [sys.executable, "-m", "preform_pipeline", "serve", str(settings)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        url = f"http://127.0.0.1:{port}"
        try:
            def healthy() -> bool:
                try:
                    return httpx.get(f"{url}/healthz").status_code == 200
                except httpx.TransportError:
                    return process.poll() is not None

            wait_for(healthy, 30.0, what="the dashboard to answer")
            answer = httpx.post(
                f"{url}/builds/{build.id}/settle", data={"printed": "yes"},
                headers={"Authorization": f"Bearer olivia:{secret}", "Origin": url,
                         "Sec-Fetch-Site": "same-origin"})
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.communicate(timeout=30)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait(10)
        assert answer.status_code == 409
        assert f"see `preform-pipeline jobs --store {path} show {build.job_key}`" in answer.text

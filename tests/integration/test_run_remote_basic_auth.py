"""``run`` with a remote PreFormServer behind a reverse proxy that asks for basic auth, the
credentials written in the remote's url (``http://olivia:PASSWORD@host:port``).

Session 45 found (review rv45-loose) that the pool's health check sent them (httpx reads a
url's userinfo) and the Local API client did not: such a remote passed its check, then every
build failed at its first request. Both now take them from the url by one rule
(``preform_pipeline.urlauth``).

A real simulator stands behind a real loopback front (``tests.hostile_http``) that forwards a
request only with the right ``Authorization`` and answers any other 401.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.simulator.testing import RunningSimulator, start_simulator
from tests.hostile_http import HostileFront, gate, running_front
from tests.remote_runs import RemoteRun, run_on_remote

#: The proxy's password; its ``@`` is written ``%40`` in the url.
SECRET = "hunter2@proxy"
RIGHT = "Basic " + base64.b64encode(f"olivia:{SECRET}".encode()).decode()


@pytest.fixture(scope="module")
def simulator() -> Iterator[RunningSimulator]:
    with start_simulator("--log-level", "WARNING") as sim:
        yield sim


@pytest.fixture
def proxy(simulator: RunningSimulator) -> Iterator[HostileFront]:
    """The simulator behind a front that wants olivia's password on every request."""
    with running_front(simulator.url) as front:
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            front.on(method, ".*", gate(RIGHT))
        yield front
        front.check()


def _run_as_olivia(tmp_path: Path, proxy: HostileFront, password: str) -> RemoteRun:
    """``run`` on the proxied simulator, ``password`` written (percent-encoded) in its url."""
    return run_on_remote(tmp_path, proxy.url.replace("//", f"//olivia:{password}@", 1))


def _shows_none_of(done: RemoteRun, *secrets: str) -> bool:
    """Neither stream, nor an event of the log, nor a file the run wrote holds any of them."""
    events = json.dumps(done.events())
    return not any(s in done.said or s in events or done.files_with(s) for s in secrets)


class TestARemoteBehindBasicAuth:
    def test_its_url_credentials_are_sent_with_every_request_and_the_build_succeeds(
        self, tmp_path: Path, proxy: HostileFront
    ) -> None:
        done = _run_as_olivia(tmp_path, proxy, "hunter2%40proxy")

        assert done.returncode == 0, done.said
        (finished,) = [e for e in done.events() if e["event"] == "build_finished"]
        assert finished["status"] == "succeeded", finished
        # The health check and the build's requests alike: none went without the header.
        assert proxy.requests_to("/") and proxy.requests_to("/scene/")
        assert [r.target for r in proxy.seen
                if ("Authorization", RIGHT) not in r.headers] == []
        assert _shows_none_of(done, SECRET, "hunter2%40proxy", RIGHT.split()[1])

    def test_a_wrong_password_is_refused_naming_the_server_without_it(
        self, tmp_path: Path, proxy: HostileFront
    ) -> None:
        done = _run_as_olivia(tmp_path, proxy, "hunter2%40wrong")

        (retired,) = [e for e in done.events() if e["event"] == "server_retired"]
        assert "HTTP 401" in retired["reason"] and "basic auth" in retired["reason"]
        assert done.returncode == 1, done.said
        # Said on stderr with what helps, the server named by its url, the password hidden.
        assert "wants a user and password" in done.said
        assert f"olivia:[redacted]@{proxy.url.split('//')[1]}" in done.said
        # At once, by its first check: no build was sent to a server that refuses it.
        assert {r.path for r in proxy.seen} == {"/"}
        assert _shows_none_of(done, "hunter2%40wrong", "hunter2@wrong")

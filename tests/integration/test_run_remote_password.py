"""``run`` with a remote whose url carries a password, that answers and then fails a step:
the password is in no output (stdout, stderr), report, log file, event or job record.

Session 45 left it (review, rv45-loose): an API error's message named its request by the url
httpx keeps whole (``olivia:hunter2@``), and that message is the build's reason, which the
summary, the report and the job store repeat; a remote without a ``name`` was also named by
its url's ``user:password@host:port``, in every event and line that names a server.

A real simulator answers ``GET /`` (the pool's check: the remote is up) and every other
request 500 ``SIMULATED_FAULT`` (``--error-rate 1``): each build's first request fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from preform_pipeline.simulator.testing import RunningSimulator, start_simulator
from tests.remote_runs import run_on_remote

#: The password written in the remote's url.
SECRET = "hunter2-in-the-url"


@pytest.fixture(scope="module")
def failing_host() -> Iterator[RunningSimulator]:
    """A simulator that answers its health check and fails every request of a build."""
    with start_simulator("--error-rate", "1", "--log-level", "WARNING") as sim:
        yield sim


class TestAPasswordInARemotesUrl:
    """A remote's password, in a failed step's reason or the remote's name, is shown as
    ``[redacted]`` wherever the run speaks of it."""

    @pytest.mark.parametrize(("named", "login", "shown"), [
        (True, f"olivia:{SECRET}@", "olivia:[redacted]@"),
        (False, f"olivia:{SECRET}@", "olivia:[redacted]@"),
        # A token given as the user alone (sent as basic auth with no password): session 46.
        (False, f"{SECRET}@", "[redacted]@"),
    ], ids=["named", "unnamed", "token-as-user"])
    def test_a_step_that_fails_says_it_nowhere(
        self, tmp_path: Path, failing_host: RunningSimulator, named: bool, login: str,
        shown: str,
    ) -> None:
        port = failing_host.url.rsplit(":", 1)[1]
        url = f"http://{login}127.0.0.1:{port}"

        done = run_on_remote(tmp_path, url, **({"name": "printhost"} if named else {}))

        assert done.returncode == 1, done.said
        events = done.events()
        (failed,) = [e for e in events if e["event"] == "build_finished"]
        # The step's failure was met (a 500 from the server that answers). The reason names
        # the request by its operation and the server by its name, else by its host and port
        # (session 48: no address in a reason); the attempt's log event keeps the request's
        # url, without its password.
        server = "printhost" if named else f"127.0.0.1:{port}"
        assert failed["status"] == "failed" and "SIMULATED_FAULT" in failed["reason"], failed
        assert f"createScene failed on {server}: " in failed["reason"]
        assert failed["server"] == server
        (attempt,) = [e for e in events if e["event"] == "build_attempt_failed"]
        assert f"POST http://{shown}127.0.0.1:{port}/scene/" in attempt["error"]
        assert SECRET not in done.said
        assert [e for e in events if SECRET in json.dumps(e)] == []
        # The report, the build's notes and the job store's record of its reason.
        assert done.files_with(SECRET) == []
        assert (done.work / "jobs.sqlite3").is_file()

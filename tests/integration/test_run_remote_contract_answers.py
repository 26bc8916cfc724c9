"""``run`` on a remote PreFormServer one of whose answers is valid HTTP and JSON but no
success the Local API contract lists (session 47's fuzzer, kind ``localapi``).

A real simulator stands behind :mod:`tests.hostile_http`'s front, which answers one request
in the server's place. Before the mend, a print answered 200 with an ErrorModel left the
build recorded ``print_sent`` though no print reached the server, and a 204 to the label
passed the step: the run succeeded, unlabelled.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from preform_pipeline.simulator.testing import RunningSimulator, start_simulator
from tests.hostile_http import HostileFront, reply, running_front
from tests.remote_runs import run_on_remote

REFUSED = b'{"error": {"code": "PRINTER_NOT_FOUND", "message": "no printer Form4-CapableClam"}}'


@pytest.fixture(scope="module")
def simulator() -> Iterator[RunningSimulator]:
    with start_simulator("--log-level", "WARNING", "--latency", "instant") as sim:
        yield sim


@pytest.fixture
def front(simulator: RunningSimulator) -> Iterator[HostileFront]:
    with running_front(simulator.url) as front:
        yield front
        front.check()


def _build_states(work: Path) -> list[str]:
    with closing(sqlite3.connect(work / "jobs.sqlite3")) as db:
        return [state for (state,) in db.execute("SELECT state FROM builds")]


class TestAnswersNoServerSendsForASuccess:
    """Such an answer fails the step that got it; nothing is recorded as done or printed."""

    @pytest.mark.parametrize(("body", "said"), [
        (REFUSED, "server answered 200 with an error (PRINTER_NOT_FOUND: no printer "
                  "Form4-CapableClam)"),
        (b"", "unreadable answer: print result: expected a JSON object, got NoneType"),
    ], ids=["error-body", "empty"])
    def test_a_print_answered_200_without_a_print_is_not_recorded_sent(
        self, tmp_path: Path, front: HostileFront, body: bytes, said: str
    ) -> None:
        front.on("POST", r"/scene/[^/]+/print/", reply(200, body))

        done = run_on_remote(tmp_path, front.url)

        assert done.returncode == 1, done.said
        assert "print_sent" not in _build_states(done.work)
        assert said in done.said
        (unconfirmed,) = [e for e in done.events() if e["event"] == "print_unconfirmed"]
        assert unconfirmed["reason"].startswith(
            "the print request to Form4-CapableClam got no usable answer (")
        assert "check the printer before sending it again" in unconfirmed["reason"]

    def test_a_label_answered_204_fails_the_build_naming_the_step(
        self, tmp_path: Path, front: HostileFront
    ) -> None:
        front.on("POST", r"/scene/[^/]+/label/", reply(204, b""))

        done = run_on_remote(tmp_path, front.url)

        assert done.returncode == 1, done.said
        (finished,) = [e for e in done.events() if e["event"] == "build_finished"]
        assert finished["status"] == "failed", finished
        # the summary's reason names the step and the server in words, not a class
        server = front.url.removeprefix("http://")
        assert (f"    reason: gave up after 1 attempt; last: labelPart failed on {server}: "
                "server answered 204, which is not how PreFormServer answers a success"
                in done.said)
        assert not list((done.work / "out").glob("*/*.form"))

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
from typing import Any

import pytest

from preform_pipeline.simulator.testing import RunningSimulator, start_simulator
from tests.command_line import in_a_process

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL = REPO_ROOT / "sample_models" / "parts" / "cube_with_hole.stl"
RECIPE = REPO_ROOT / "recipes" / "engineering-grey-form4.yaml"
#: The password written in the remote's url.
SECRET = "hunter2-in-the-url"


@pytest.fixture(scope="module")
def failing_host() -> Iterator[RunningSimulator]:
    """A simulator that answers its health check and fails every request of a build."""
    with start_simulator("--error-rate", "1", "--log-level", "WARNING") as sim:
        yield sim


def _run(tmp_path: Path, url: str, **remote: str) -> tuple[str, Path]:
    """``run`` of one model on the remote at ``url`` (its other settings ``remote``): both
    streams, and the folder holding everything the run wrote but its settings file."""
    work = tmp_path / "work"
    work.mkdir()
    (work / MODEL.name).write_bytes(MODEL.read_bytes())
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({
        "servers": {"count": 0, "remote_wait_s": 0},
        "remotes": [{"url": url, **remote}],
    }), encoding="utf-8")
    done = in_a_process(work, "run", str(RECIPE), str(work / MODEL.name),
                        "--settings", str(settings), "--output", str(work / "out"),
                        "--store", str(work / "jobs.sqlite3"), "--max-attempts", "1",
                        "--log-file", str(work / "run.jsonl"),
                        env_extra={"HOME": str(tmp_path)})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return done.stdout + done.stderr, work


def _events(work: Path) -> list[dict[str, Any]]:
    return [json.loads(line)
            for line in (work / "run.jsonl").read_text(encoding="utf-8").splitlines()]


def _files_with_the_secret(work: Path) -> list[Path]:
    return [p for p in work.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]


class TestAPasswordInARemotesUrl:
    """A remote's password, in a failed step's reason or the remote's name, is shown as
    ``[redacted]`` wherever the run speaks of it."""

    @pytest.mark.parametrize("named", [True, False], ids=["named", "unnamed"])
    def test_a_step_that_fails_says_it_nowhere(
        self, tmp_path: Path, failing_host: RunningSimulator, named: bool
    ) -> None:
        port = failing_host.url.rsplit(":", 1)[1]
        url = f"http://olivia:{SECRET}@127.0.0.1:{port}"

        said, work = _run(tmp_path, url, **({"name": "printhost"} if named else {}))

        events = _events(work)
        (failed,) = [e for e in events if e["event"] == "build_finished"]
        # The step's failure was met (a 500 from the server that answers), and its request is
        # still named, by the url without its password; the server by its name, else by its
        # host and port.
        assert failed["status"] == "failed" and "SIMULATED_FAULT" in failed["reason"], failed
        assert f"POST http://olivia:[redacted]@127.0.0.1:{port}/scene/" in failed["reason"]
        assert failed["server"] == ("printhost" if named else f"127.0.0.1:{port}")
        assert SECRET not in said
        assert [e for e in events if SECRET in json.dumps(e)] == []
        # The report, the build's notes and the job store's record of its reason.
        assert _files_with_the_secret(work) == []
        assert (work / "jobs.sqlite3").is_file()

"""``run`` whose only remote answers, but as no PreFormServer it can use: refused at once,
said once, exit 1 (docs/settings.md, ``remotes``), instead of ``servers.remote_wait_s`` (300 s
by default) spent waiting for a server that is not down.

A real ``run`` process, its settings naming a real loopback HTTP front (tests/hostile_http.py)
as the remote: another web server's 404 at ``GET /``, nginx's page for plain HTTP sent to its
HTTPS port, or a NAS's home page answered 200 beside a usable remote (a real simulator on
loopback). The refusal is said once, on stderr: the stream a cron mail shows, with or
without ``--quiet``. That it came at once is read from what the run says (the refusal alone,
no ``remote_server_not_answering`` of a wait on stderr, the remote asked once), not from how
long the process took: a run that prepares a build (its screenshot alone took 5.7 s at load
14) has no wall time that tells a wait from a loaded machine.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from preform_pipeline.simulator.engine import SimEngine
from preform_pipeline.simulator.server import SimulatorServer
from tests.command_line import TIMEOUT_S, in_a_process
from tests.hostile_http import NGINX_HTTPS_PORT_PAGE, reply, running_front

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = REPO_ROOT / "recipes" / "engineering-grey-form4.yaml"
MODEL = REPO_ROOT / "sample_models" / "parts" / "gear.obj"


def _run(tmp_path: Path, remotes: list[dict[str, str]],
         *options: str) -> subprocess.CompletedProcess[str]:
    """``run`` in a process on the sample model, its only servers ``remotes``; stopped at
    TIMEOUT_S (120 s), below the default ``remote_wait_s`` (300 s) a wait would take."""
    settings = tmp_path / "settings.yaml"
    settings.write_text(json.dumps({"servers": {"count": 0}, "remotes": remotes}),
                        encoding="utf-8")
    return in_a_process(tmp_path, "run", str(RECIPE), str(MODEL), "--settings", str(settings),
                        "--output", str(tmp_path / "out"), *options,
                        env_extra={"HOME": str(tmp_path)}, timeout=TIMEOUT_S)


@pytest.mark.parametrize("status, page, said", [
    (404, "<html><body>My NAS</body></html>", "the server has no Local API version endpoint "
     "(GET / answered 404): it is not a PreFormServer"),
    (400, NGINX_HTTPS_PORT_PAGE, "the server answered HTTP 400 \"The plain HTTP request was "
     "sent to HTTPS port\": its address needs https:// (use the https:// address of this "
     "server)"),
], ids=["a-web-page-404", "https-port-400"])
def test_refused_at_once_said_once_exit_1(
    tmp_path: Path, status: int, page: str, said: str
) -> None:
    with running_front() as front:
        front.on("GET", "/", reply(status, page, content_type="text/html"))
        done = _run(tmp_path, [{"url": front.url, "name": "printhost"}])
        asked = len(front.requests_to("/"))
        front.check()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    # Said once, on stderr; the servers line on stdout only names it.
    assert done.stdout.count(said) == 0, done.stdout
    assert done.stderr.count(said) == 1, done.stderr
    (refusal,) = [line for line in done.stderr.splitlines() if said in line]
    assert refusal.startswith(f"error: server printhost (REMOTE, {front.url}): it answers, "
                              f"but cannot be used at this address: {said}")
    assert refusal.endswith("that address is this remote's url under remotes in the settings")
    assert f"servers started: printhost (REMOTE, {front.url}, refused, said on stderr)" \
        in done.stdout.splitlines()
    assert "server_retired" not in done.stderr  # the event is the log file's
    assert ("printhost: refused (why and what helps were said when it was)"
            in done.stdout)
    assert done.stdout.splitlines()[-1] == "exit 1: 1 build failed, 0 of 1 build succeeded"
    assert asked == 1  # not asked again: no wait, no retry


#: What a NAS's home page at the remote's address is refused with.
NAS_SAID = ("it answers, but cannot be used at this address: the server answered GET / with an "
            'HTML page titled "DiskStation", where a PreFormServer answers its Local API version')


@pytest.mark.parametrize("quiet", [False, True], ids=["plain", "quiet"])
def test_beside_a_usable_remote_the_refusal_is_said_once_on_stderr_and_not_counted(
    tmp_path: Path, quiet: bool
) -> None:
    engine = SimEngine(work_dir=tmp_path / "sim" / "work", fleet_dir=tmp_path / "sim" / "fleet")
    with running_front() as front, SimulatorServer(engine, port=0) as simulator:
        front.on("GET", "/", reply(200, "<html><head><title>DiskStation</title></head></html>",
                                   content_type="text/html"))
        done = _run(tmp_path, [{"url": front.url, "name": "nas"},
                               {"url": simulator.url, "name": "printhost"}],
                    *(["--quiet"] if quiet else []))
        asked = len(front.requests_to("/"))
        front.check()
        simulator.check()
    assert done.returncode == 0, done.stdout + done.stderr
    # Once, on stderr (cron mails it, --quiet or not), with what helps; nothing else there.
    (refusal,) = done.stderr.splitlines()
    assert refusal.startswith(f"error: server nas (REMOTE, {front.url}): {NAS_SAID}")
    assert "check the host and the port, and that PreFormServer runs there" in refusal
    assert asked == 1
    if quiet:
        assert done.stdout == ""
        return
    assert "DiskStation" not in done.stdout
    lines = done.stdout.splitlines()
    assert (f"servers started: nas (REMOTE, {front.url}, refused, said on stderr), printhost "
            f"(REMOTE, {simulator.url})") in lines
    assert any(line.endswith(": 1 build, 1 model on 1 server") for line in lines), lines
    assert lines[-1] == "exit 0: 1 of 1 build succeeded"

"""``preform-pipeline verify`` against the Dashboard simulator process, over real HTTP.

The store holds builds whose prints were sent by an earlier run; the fleet folder holds their
jobs as the PreFormServer simulator wrote them. The Dashboard simulator runs as its own
process (``python -m preform_pipeline.simulator.cloud``) with prints sped up or shortened and access
tokens that live one second, so they expire while ``verify --wait`` polls.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

from preform_pipeline.hotfolder.testing import wait_for
from preform_pipeline.simulator.cloud.testing import (
    RunningDashboard,
    start_dashboard,
    write_job,
)
from preform_pipeline.store import Build, JobState, JobStore, SqliteJobStore, embed_key

__all__ = ["sent_print"]

REPO = Path(__file__).resolve().parents[2]
SECRET = "verify-command-secret"
TIMEOUT_S = 60.0


def sent_print(store: JobStore, fleet: Path, label: str, *,
               printer: str | None = None, print_time_s: float = 1000.0,
               in_fleet: bool = True) -> Build:
    """A build an earlier run sent: its print in the simulated fleet ``fleet``, on ``printer``
    (by default SimulatedForm4-1 for ``good``, else SimulatedForm4-2); with ``in_fleet``
    false, a print the Dashboard does not show yet (:func:`_print_now` shows it)."""
    job = store.create_job(recipe="r", source_path=f"{label}.stl", state=JobState.PROCESSING)
    build = store.create_build(recipe="r", job_ids=[job.id])
    for state in (JobState.PREPARING, JobState.PREPARED):
        store.transition_build(build.id, state, "earlier run")
    name = embed_key(label, build.job_key)
    store.transition_build(build.id, JobState.PRINT_SENDING, "earlier run", job_name=name)
    if printer is None:
        printer = "SimulatedForm4-1" if label == "good" else "SimulatedForm4-2"
    job_id = (write_job(fleet, name=name, printer=printer, estimated_print_time_s=print_time_s)
              if in_fleet else str(uuid.uuid4()))
    return store.transition_build(build.id, JobState.PRINT_SENT, "accepted",
                                  print_job_id=job_id, printer=printer)


def _verify(tmp_path: Path, dashboard: RunningDashboard, *args: str,
            secret: str = SECRET) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _verify_argv(tmp_path, dashboard, *args), capture_output=True, text=True,
        encoding="utf-8", env=_verify_env(dashboard, secret), timeout=TIMEOUT_S, check=False,
    )


def _verify_started(tmp_path: Path, dashboard: RunningDashboard,
                    *args: str) -> subprocess.Popen[str]:
    """``verify`` started and left running: the test acts on the fleet while it polls."""
    return subprocess.Popen(
        _verify_argv(tmp_path, dashboard, *args), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, encoding="utf-8", env=_verify_env(dashboard, SECRET),
    )


def _verify_env(dashboard: RunningDashboard, secret: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
    env.update(PYTHONPATH=str(REPO), PREFORM_PIPELINE_CLIENT_ID=dashboard.credentials.client_id,
               PREFORM_PIPELINE_CLIENT_SECRET=secret)
    return env


def _verify_argv(tmp_path: Path, dashboard: RunningDashboard, *args: str) -> list[str]:
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        f"cloud: {{base_url: '{dashboard.url}'}}\n"
        "verify: {interval_s: 0.5, requests_per_hour: 1500}\n",
        encoding="utf-8",
    )
    return [sys.executable, "-m", "preform_pipeline", "verify", "--settings", str(settings),
            "--store", str(tmp_path / "jobs.sqlite3"), *args]


def _feed_polls(tmp_path: Path) -> int:
    """How many pages of the prints feed (prints since a date, as the poller asks) the
    Dashboard simulator has answered: its log's exchanges."""
    log = tmp_path / "dashboard.jsonl"
    if not log.exists():
        return 0
    # Whole lines only: the last, while the simulator writes it, has no newline yet (a part
    # of a line can end in "}" too).
    events = [json.loads(line) for line in log.read_text(encoding="utf-8").split("\n")[:-1]]
    return sum(1 for e in events if e.get("event") == "dashboard_exchange"
               and e.get("path", "").startswith("/developer/v1/prints/?date__gt="))


def _polled_or_ended(tmp_path: Path, verify: subprocess.Popen[str]) -> bool:
    """Whether the Dashboard simulator answered ``verify``'s first poll of the prints feed; a
    verify that ended before it fails the test at once, with what it said (not after the
    wait's whole timeout, with nothing of it)."""
    if _feed_polls(tmp_path) >= 1:
        return True
    if verify.poll() is not None:
        stdout, stderr = verify.communicate()
        raise AssertionError(f"verify ended (exit {verify.returncode}) before its first poll "
                             f"of the prints feed:\n{stdout}{stderr}")
    return False


def _print_now(fleet: Path, build: Build, *, print_time_s: float) -> None:
    """The build's print, started now in the simulated fleet, lasting ``print_time_s``."""
    assert build.job_name and build.print_job_id and build.printer
    write_job(fleet, name=build.job_name, printer=build.printer, job_id=build.print_job_id,
              estimated_print_time_s=print_time_s)


def _store_with_two_prints(tmp_path: Path, *, in_fleet: bool = True) -> tuple[Build, Build]:
    with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
        fleet = tmp_path / "fleet"
        return (sent_print(store, fleet, "good", in_fleet=in_fleet),
                sent_print(store, fleet, "bad", in_fleet=in_fleet))


def _dashboard(tmp_path: Path, *args: str) -> RunningDashboard:
    outcomes = tmp_path / "outcomes.yaml"
    outcomes.write_text(
        "jobs:\n  - {name: 'bad *', outcome: ERROR, at: 0.5, message: Resin level too low}\n",
        encoding="utf-8",
    )
    return start_dashboard(  # type: ignore[return-value]
        "--outcomes", str(outcomes), "--log-file", str(tmp_path / "dashboard.jsonl"), *args,
        fleet_dir=tmp_path / "fleet", client_secret=SECRET,
    )


class TestVerifyWait:
    """--wait polls until each print ended, across expiring tokens, and records the outcomes."""

    def test_prints_are_followed_to_their_end_across_expiring_tokens(
        self, tmp_path: Path
    ) -> None:
        # The prints appear in the Dashboard's feed, as two-second prints, only once verify
        # is seen polling: its polls cross more than one 1-second token however late it
        # started (over 8 s on a loaded machine), and no test waits out a print time sized
        # for the slowest start-up.
        with _dashboard(tmp_path, "--time-scale", "1", "--token-lifetime", "1") as dash:
            good, bad = _store_with_two_prints(tmp_path, in_fleet=False)
            waiting = _verify_started(tmp_path, dash, "--wait")
            try:
                # Every 0.1 s: the log is read whole each time, and the prints last 2 s.
                wait_for(lambda: _polled_or_ended(tmp_path, waiting), TIMEOUT_S, interval=0.1,
                         what="verify's first poll of the prints feed")
                for build in (good, bad):
                    _print_now(tmp_path / "fleet", build, print_time_s=2.0)
                stdout, stderr = waiting.communicate(timeout=TIMEOUT_S)
            finally:
                if waiting.poll() is None:
                    waiting.kill()
                    waiting.communicate()
            done = subprocess.CompletedProcess(waiting.args, waiting.returncode, stdout, stderr)
        assert done.returncode == 0, done.stderr
        with SqliteJobStore(tmp_path / "jobs.sqlite3", create=False) as store:
            finished, failed = store.get_build(good.id), store.get_build(bad.id)
            assert finished.state is JobState.FINISHED
            assert (failed.state, failed.verified_message) == (JobState.PRINT_ERROR,
                                                               "Resin level too low")
            assert {j.state for j in store.list_jobs(build_id=bad.id)} == {JobState.PRINT_ERROR}
        assert "Resin level too low" in done.stdout
        assert "2 prints checked: 1 finished, 1 print_error" in done.stdout
        log = (tmp_path / "dashboard.jsonl").read_text(encoding="utf-8")
        issued = [line for line in log.splitlines() if "dashboard_token_issued" in line]
        assert len(issued) >= 2, "the token never expired during the run"
        assert SECRET not in done.stdout + done.stderr + log


class TestVerifyOnce:
    """Without --wait one poll is made; refused credentials change nothing."""

    def test_json_output_and_refused_credentials(self, tmp_path: Path) -> None:
        good, bad = _store_with_two_prints(tmp_path)
        with _dashboard(tmp_path, "--time-scale", "0") as dash:
            refused = _verify(tmp_path, dash, secret="wrong")
            with SqliteJobStore(tmp_path / "jobs.sqlite3", create=False) as store:
                untouched = {store.get_build(b.id).state for b in (good, bad)}
            done = _verify(tmp_path, dash, "--format", "json")
        assert refused.returncode == 1
        assert "invalid_grant" in refused.stderr and "wrong" not in refused.stderr
        # What to correct is named: where each value came from.
        assert (f"check the client id {dash.credentials.client_id!r} (from "
                "$PREFORM_PIPELINE_CLIENT_ID) and the client secret (from "
                "$PREFORM_PIPELINE_CLIENT_SECRET)") in refused.stderr
        assert untouched == {JobState.PRINT_SENT}
        assert done.returncode == 0, done.stderr
        data = json.loads(done.stdout)
        states = {row["job_key"]: (row["state"], row["message"]) for row in data["builds"]}
        assert states == {good.job_key: ("finished", None),
                          bad.job_key: ("print_error", "Resin level too low")}
        assert (data["polls"], data["requests"]) == (1, 2)  # one poll: its token, one page
        # The token and the page, and the refused run's token request: the store counts the
        # hour's requests of every run.
        assert data["budget"]["spent"] == 3


class TestVerifyQuiet:
    """--quiet, as cron runs it, says only the print that ended badly, once, and nothing when
    all is well: cron mails whatever a job prints (session 48's trial: a verify every minute
    mailed its table each time, the one failed print among them)."""

    def test_only_the_failed_print_is_said_and_only_once(self, tmp_path: Path) -> None:
        good, bad = _store_with_two_prints(tmp_path)
        with _dashboard(tmp_path, "--time-scale", "0") as dash:
            first = _verify(tmp_path, dash, "--quiet")
            again = _verify(tmp_path, dash, "--quiet")
        assert (first.returncode, first.stdout) == (0, "")
        assert first.stderr.splitlines() == [
            f"{bad.job_key}: print ERROR on SimulatedForm4-2 ({bad.job_name}): "
            "Resin level too low"
        ]
        assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
        with SqliteJobStore(tmp_path / "jobs.sqlite3", create=False) as store:
            assert store.get_build(good.id).state is JobState.FINISHED
            assert store.get_build(bad.id).state is JobState.PRINT_ERROR

    def test_prints_still_printing_are_no_news(self, tmp_path: Path) -> None:
        _store_with_two_prints(tmp_path)
        # Prints of 1,000 s in real time: both are still printing when verify looks.
        with _dashboard(tmp_path, "--time-scale", "1") as dash:
            done = _verify(tmp_path, dash, "--quiet")
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


class TestVerifyOnceRateLimited:
    """A single poll that meets the hourly limit stops at once, says when to try again, and
    leaves the prints pending for the next run."""

    def test_a_spent_hourly_limit_stops_the_run_and_says_when(self, tmp_path: Path) -> None:
        good, bad = _store_with_two_prints(tmp_path)
        # Three requests an hour: the first run's token and one page, the second's token;
        # its page meets the limit. Prints of 1,000 s in real time are still printing when
        # the second run starts.
        with _dashboard(tmp_path, "--time-scale", "1", "--hourly-limit", "3") as dash:
            first = _verify(tmp_path, dash)
            asked_at = datetime.now(timezone.utc)
            stopped = _verify(tmp_path, dash)
        assert first.returncode == 0, first.stderr
        assert stopped.returncode == 1
        said = [line for line in stopped.stderr.splitlines()
                if line.startswith("error: cannot verify now: ")]
        assert len(said) == 1, stopped.stderr
        assert "the Web API asked to wait" in said[0]
        assert "Error:" not in said[0]  # the message, not the exception's class name
        said = re.search(r"try again after (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", stopped.stderr)
        assert said is not None, stopped.stderr
        when = datetime.strptime(said.group(1), "%Y-%m-%d %H:%M:%S").replace(
            tzinfo=timezone.utc
        )
        assert 3000 < (when - asked_at).total_seconds() <= 3601
        assert "the prints still pending are checked on the next verify" in stopped.stderr
        # Said once, by the error line: the 429 this run gave up on is an info event (its
        # caller says what it does), not a warning on stderr beside the error.
        assert "web_api_rate_limited" not in stopped.stderr
        exchanges = [
            json.loads(line)
            for line in (tmp_path / "dashboard.jsonl").read_text(encoding="utf-8").splitlines()
            if "dashboard_exchange" in line
        ]
        assert [e["status"] for e in exchanges].count(429) == 1  # asked once, not hammered
        with SqliteJobStore(tmp_path / "jobs.sqlite3", create=False) as store:
            states = {store.get_build(b.id).state for b in (good, bad)}
        assert states == {JobState.VERIFYING}  # as the first run left them, for the next


class TestVerifyOnceAtASpentAccount:
    """A cron verify starts with its token request, so an account whose hour is spent meets
    the 429 there first: it says when to try again, as the runs after it do (session 48's
    trial: "wait for the Retry-After time", no time named); said once, by the first cron
    verify that meets it (session 48's trial mailed it every minute)."""

    def test_a_429_at_the_token_request_says_when_to_try_again(self, tmp_path: Path) -> None:
        _store_with_two_prints(tmp_path)
        # Two requests an hour: the first run's token and page; the second's token is refused.
        with _dashboard(tmp_path, "--time-scale", "1", "--hourly-limit", "2") as dash:
            assert _verify(tmp_path, dash).returncode == 0
            asked_at = datetime.now(timezone.utc)
            stopped = _verify(tmp_path, dash, "--quiet")
            again = _verify(tmp_path, dash, "--quiet")
        assert (stopped.returncode, stopped.stdout) == (1, "")
        (said, pending, quiet) = stopped.stderr.splitlines()
        assert said.startswith("error: cannot verify now: POST ") and "/o/token/: " in said
        assert ": the Web API refused to issue an access token: asked to wait " in said
        found = re.search(r"\(try again after (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC; another "
                          r"program may be spending the same account's 1,500 requests/hour\)$",
                          said)
        assert found is not None, said
        when = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").replace(
            tzinfo=timezone.utc)
        assert 3000 < (when - asked_at).total_seconds() <= 3601
        assert pending == "the prints still pending are checked on the next verify"
        assert quiet == "verify --quiet says nothing more of this wait until it ends"
        # The next cron verify, inside the same wait: nothing to mail (the exit status still
        # says it did not verify).
        assert (again.returncode, again.stdout, again.stderr) == (1, "", "")


class TestVerifyWebApiUnreachable:
    """A Web API that cannot be reached stops the run with what helps; the prints wait."""

    def test_the_error_says_what_to_check_and_that_the_prints_wait(self, tmp_path: Path) -> None:
        good, bad = _store_with_two_prints(tmp_path)
        settings = tmp_path / "settings.yaml"
        # Port 9 (discard) on loopback: nothing listens there.
        settings.write_text("cloud: {base_url: 'http://127.0.0.1:9'}\n", encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
        env.update(PYTHONPATH=str(REPO), PREFORM_PIPELINE_CLIENT_ID="client",
                   PREFORM_PIPELINE_CLIENT_SECRET=SECRET)
        done = subprocess.run(
            [sys.executable, "-m", "preform_pipeline", "verify", "--settings", str(settings),
             "--store", str(tmp_path / "jobs.sqlite3")],
            capture_output=True, text=True, encoding="utf-8", env=env, timeout=TIMEOUT_S,
            check=False,
        )
        assert done.returncode == 1
        # Said once (the poll's failure is not logged as a warning beside it), with the
        # request that failed: the poll's first page.
        said = done.stderr.splitlines()
        assert len(said) == 2, done.stderr
        assert re.fullmatch(
            r"error: the prints feed could not be read: GET http://127\.0\.0\.1:9/developer/"
            r"v1/prints/\?date__gt=\S+&page=1&per_page=100: cannot reach the Web API: "
            r"\[Errno 111\] Connection refused \(check the network connection, proxy "
            r"settings and the configured base URL\)", said[0]), said[0]
        assert said[1] == "the prints still pending are checked on the next verify"
        assert SECRET not in done.stdout + done.stderr
        with SqliteJobStore(tmp_path / "jobs.sqlite3", create=False) as store:
            assert {store.get_build(b.id).state for b in (good, bad)} == {JobState.PRINT_SENT}

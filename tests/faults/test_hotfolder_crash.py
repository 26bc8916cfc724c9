"""The hot-folder daemon killed with SIGKILL at seeded moments, again and again.

Each iteration drops a few more files (single files and case folders, every other one with a
sidecar) into the inbox, starts ``preform-pipeline watch`` as a real subprocess on simulated
servers (realistic latency, scaled: a print takes about half a second; one shared fleet
folder), and kills it with SIGKILL: its PID only or its whole process group (seeded, both at
least once), at a seeded random moment; or a seeded few milliseconds after a file starts a
move (its store row names processing/, or done/ or failed/; the file, its sidecars and the
folder it leaves follow); or, every other iteration, the instant a build's store row enters
``print_sending`` (the request is on its way). Some iterations first kill one of its
servers alone, which the pool must replace. The test never stops a server itself: once the
next daemon has started, no server of the killed one may be left (they die with their
owner, or the next start reaps them). A server that survived long enough to finish a send
(where the platform cannot tie it to its owner) would be found by the next start within the
grace period, instead of the models being prepared again. A final ``watch --once`` finishes
what is left. Then:

* every dropped file is in done/ or failed/ exactly once, byte-identical, a sidecar beside
  its model; nothing is left in the inbox or in processing/, not even an empty folder;
* every model was printed exactly once, counted in the fleet folder; a model whose print
  could not be settled (UNVERIFIED, its file in failed/) was never sent a second time;
* no store row is left mid-way (only printed, unverified, or dissolved builds), and a print
  seen finishing is in its case's report.

Linux-specific only in that SIGKILL does not exist on Windows (the daemon is not).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from crash_support import wait_until_moved, wait_until_sending

from preform_pipeline.hotfolder.files import REPORT_SUFFIX
from preform_pipeline.hotfolder.testing import (
    fleet_jobs,
    tetra_stl_bytes,
    wait_for,
    write_hotfolder_settings,
    write_recipe,
)
from preform_pipeline.servers.process import process_tree_alive
from preform_pipeline.store import JobState, SqliteJobStore

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("HOTFOLDER_CRASH_SEED", "20240501"))
ITERATIONS = 6
#: Kill moments of the random iterations, seconds after the start: importing to printing.
KILL_AFTER_S = (0.5, 3.0)
#: Iterations that kill as a file moves (crash_support.FILE_MOMENTS) instead of at random.
FILE_MOMENT_AT = {0: "taken", 4: "settled"}
#: Their delay after the store row: the seeded moment scaled to milliseconds (2.5 to 15 ms).
FILE_MOMENT_DELAY_PER_S = 0.005
#: How long a targeted iteration waits for a send to start before killing anyway.
SEND_WAIT_S = 8.0
FINAL_TIMEOUT_S = 90.0
SIMULATOR_ARGS = ("--latency", "realistic", "--time-scale", "0.3")
#: The servers' request timeout: the grace period after which a send nobody can prove absent
#: is UNVERIFIED. Several times a scaled print, so late prints land well within it.
REQUEST_TIMEOUT_S = 6.0
MID_WAY = {"processing", "preparing", "prepared", "print_sending"}
#: A sent build: a daemon also follows its print in the fleet folder, so it may have ended.
_SENT = {JobState.PRINT_SENT, JobState.VERIFYING, JobState.FINISHED}
#: How long the servers of a killed daemon may take to go once the next one has started.
ORPHANS_GONE_S = 15.0


def environment(state_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PREFORM_PIPELINE_SERVER_STATE_DIR"] = str(state_dir)
    return env


def server_processes(daemon: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """The daemon's descendants: its servers (and anything they started)."""
    try:
        return psutil.Process(daemon.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def assert_gone_without_help(servers: list[psutil.Process], context: str) -> None:
    """Every server of a killed daemon is gone; the test never stops one itself (a survivor
    is killed here only so it does not outlive the test, and the test fails)."""
    pids = [p.pid for p in servers]

    def still() -> list[psutil.Process]:
        return [p for p in servers if p.is_running()]  # is_running checks pid + start time

    try:
        wait_for(lambda: not still(), ORPHANS_GONE_S, what="the killed daemon's servers gone")
    except TimeoutError:
        left = still()
        for proc in left:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        raise AssertionError(
            f"servers outlived their killed daemon: {[p.pid for p in left]} of {pids}; "
            f"{context}") from None
    assert not process_tree_alive([p.pid for p in servers if p.is_running()]), context


def report_state(model: Path) -> object:
    """The state the report beside a file in done/ shows (None: no report)."""
    report = model.with_name(model.name + REPORT_SUFFIX)
    if not report.exists():
        return None
    return json.loads(report.read_text(encoding="utf-8")).get("state")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def daemons() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The daemons this test starts: one still running when the test ends (it failed half
    way) is stopped with its process group, so a failure leaves nothing running."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


class TestCrashes:
    """Whatever moment the daemon dies at, no file is lost and nothing prints twice."""

    def test_sigkill_at_seeded_moments_and_mid_send(
        self, tmp_path: Path, daemons: list[subprocess.Popen[bytes]]
    ) -> None:
        rng = random.Random(SEED)
        fleet = tmp_path / "fleet"
        recipe = write_recipe(tmp_path, per_build=6)
        settings = write_hotfolder_settings(
            tmp_path, recipe, fleet_dir=fleet,
            hotfolders={"batching": {"window_s": 0.3, "max_models": 6}},
            simulator_args=SIMULATOR_ARGS,
        )
        data = json.loads(settings.read_text(encoding="utf-8"))
        data["servers"]["request_timeout_s"] = REQUEST_TIMEOUT_S
        settings.write_text(json.dumps(data), encoding="utf-8")
        store_path = tmp_path / "jobs.sqlite3"
        inbox = tmp_path / "inbox"
        staging = tmp_path / "staging"
        staging.mkdir()
        inbox.mkdir()
        dropped: dict[str, str] = {}  # stem -> content digest
        sidecars: list[str] = []  # content digests of the sidecars dropped with them
        command = [sys.executable, "-m", "preform_pipeline", "watch", str(settings), "--quiet"]
        log = (tmp_path / "daemon.log").open("ab")
        env = environment(tmp_path / "server-state")
        seed = 0
        mid_send_kills = 0
        file_kills = 0
        group_kills = 0
        server_kills = 0
        killed_servers: list[psutil.Process] = []
        for iteration in range(ITERATIONS):
            for _ in range(rng.randint(2, 4)):
                seed += 1
                content = tetra_stl_bytes(seed)
                # Every other drop has a sidecar (not drawn from rng: the seeds' moments stay).
                sidecar = f"operator: crash {seed}\n".encode() if seed % 2 else None
                if rng.random() < 0.25:
                    case = staging / f"case{seed}"
                    case.mkdir()
                    (case / f"m{seed}a.stl").write_bytes(content)
                    other = tetra_stl_bytes(seed + 50_000)
                    (case / f"m{seed}b.stl").write_bytes(other)
                    dropped[f"m{seed}a"], dropped[f"m{seed}b"] = digest(content), digest(other)
                    if sidecar is not None:
                        (case / f"{case.name}.yaml").write_bytes(sidecar)
                        sidecars.append(digest(sidecar))
                    case.rename(inbox / case.name)
                else:
                    if sidecar is not None:
                        (staging / f"m{seed}.yaml").write_bytes(sidecar)
                        sidecars.append(digest(sidecar))
                        (staging / f"m{seed}.yaml").rename(inbox / f"m{seed}.yaml")
                    (staging / f"m{seed}.stl").write_bytes(content)
                    dropped[f"m{seed}"] = digest(content)
                    (staging / f"m{seed}.stl").rename(inbox / f"m{seed}.stl")
            # Its own process group, so a group kill reaches the daemon and nothing else.
            process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log,
                                       stderr=log, start_new_session=True)
            daemons.append(process)
            context = f"iteration {iteration}, seed {SEED}; log: {tmp_path / 'daemon.log'}"
            if killed_servers:  # the previous daemon's servers, now that this one started
                assert_gone_without_help(killed_servers, context)
            if iteration % 3 == 2:
                # One server dies alone first (the pool replaces it), then the daemon.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=rng.uniform(*KILL_AFTER_S))
                # On a loaded machine the servers may still be starting: wait for them.
                with contextlib.suppress(TimeoutError):
                    wait_for(lambda daemon=process: bool(server_processes(daemon)), SEND_WAIT_S,
                             what="the daemon's servers started")
                servers = server_processes(process)
                if servers:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        rng.choice(servers).kill()
                    server_kills += 1
            if iteration % 2 == 1:
                mid_send_kills += wait_until_sending(store_path, process, SEND_WAIT_S)
            elif iteration in FILE_MOMENT_AT:
                # Kill a few ms after a file starts a move: between its store row and the
                # rest (the file, its sidecars, its folder). Same draw: the seed's stream stays.
                delay = rng.uniform(*KILL_AFTER_S) * FILE_MOMENT_DELAY_PER_S
                file_kills += wait_until_moved(store_path, process,
                                               FILE_MOMENT_AT[iteration], SEND_WAIT_S * 2)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=delay)
            else:
                # The random moment: the daemon never exits on its own, so this times out.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=rng.uniform(*KILL_AFTER_S))
            if process.poll() is not None:
                log.flush()
                tail = (tmp_path / "daemon.log").read_text(encoding="utf-8")[-3000:]
                raise AssertionError(f"iteration {iteration}: the daemon exited early:\n{tail}")
            killed_servers = server_processes(process)
            group = rng.random() < 0.5
            if iteration == ITERATIONS - 1 and group_kills in (0, ITERATIONS - 1):
                group = group_kills == 0  # both kill modes, whatever the seed drew
            if group:
                os.killpg(process.pid, signal.SIGKILL)  # the daemon's whole group
                group_kills += 1
            else:
                process.send_signal(signal.SIGKILL)  # the daemon only
            process.wait(10)

        final = subprocess.run([*command, "--once"], cwd=tmp_path, env=env,
                               stdout=log, stderr=log, timeout=FINAL_TIMEOUT_S, check=False)
        log.close()
        context = f"seed {SEED}; log: {tmp_path / 'daemon.log'}"
        assert_gone_without_help(killed_servers, context)
        assert final.returncode == 0, context
        assert mid_send_kills >= 1, f"no kill landed mid-send; {context}"
        assert file_kills >= 1, f"no kill landed as a file moved; {context}"
        assert group_kills >= 1 and group_kills < ITERATIONS, f"kill modes not mixed; {context}"
        assert server_kills >= 1, f"no server was killed alone; {context}"

        # Every file in done/ or failed/ exactly once, byte-identical, sidecars beside their
        # models; nothing left behind, not even an empty folder in processing/.
        settled = [*(inbox / "done").rglob("*.stl"), *(inbox / "failed").rglob("*.stl")]
        assert sorted(digest(p.read_bytes()) for p in settled) == sorted(dropped.values()), (
            context)
        beside = [*(inbox / "done").rglob("*.yaml"), *(inbox / "failed").rglob("*.yaml")]
        assert sorted(digest(p.read_bytes()) for p in beside) == sorted(sidecars), context
        assert all(any(p.parent.glob("*.stl")) for p in beside), context
        assert list((inbox / "processing").iterdir()) == [], context
        leftovers = [p for p in inbox.iterdir() if p.name not in ("done", "failed", "processing")]
        assert leftovers == [], context

        with SqliteJobStore(store_path) as store:
            jobs = store.list_jobs()
            builds = store.list_builds()
        assert len(jobs) == len(dropped), context
        # Sent (or seen ending since, in the fleet folder), or unsettled.
        assert {j.state for j in jobs} <= {*_SENT, JobState.UNVERIFIED}, context
        assert not [b for b in builds if b.state.value in MID_WAY], context
        unverified = {Path(j.original_name).stem for j in jobs if j.state is JobState.UNVERIFIED}
        # A print seen ending is in its case's report too, whenever the daemon died.
        behind = [(j.job_key, report_state(j.source_path), j.state.value) for j in jobs
                  if j.state is JobState.FINISHED
                  and report_state(j.source_path) != j.state.value]
        assert behind == [], f"reports behind their print's end: {behind}; {context}"

        # Every model printed exactly once; an unsettled one never a second time.
        prints = fleet_jobs(fleet)
        # Scene names are "<case id> <stem>" for a case's files, the stem otherwise.
        printed = Counter(m["name"].rsplit(" ", 1)[-1] for job in prints for m in job["models"])
        for stem in dropped:
            if stem in unverified:
                assert printed[stem] <= 1, f"{stem} unverified yet resent; {context}"
            else:
                assert printed[stem] == 1, f"{stem} printed {printed[stem]} times; {context}"
        assert set(printed) <= set(dropped), context
        sent = {b.job_name for b in builds if b.state in _SENT}
        names = [job["job_name"] for job in prints]
        assert len(names) == len(set(names)), context
        assert set(names) <= sent | {b.job_name for b in builds
                                     if b.state is JobState.UNVERIFIED}, context

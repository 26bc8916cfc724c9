"""The hot-folder daemon killed with SIGKILL at seeded random moments, again and again.

Each iteration drops a few more files (single files and case folders) into the inbox, starts
``preform-pipeline watch`` as a real subprocess on simulated servers (realistic latency,
scaled: a print takes about half a second; one shared fleet folder), lets it run for a random
moment, and kills it with SIGKILL together with its simulators (as a power cut would). A
final ``watch --once`` finishes what is left.
Then:

* every dropped file is in done/ exactly once (by content), none in the inbox or processing/;
* every model was printed exactly once: across all print jobs the fleet folder holds, each
  model appears once, and each print belongs to one build the store says was printed.

Linux-specific only in that SIGKILL does not exist on Windows (the daemon is not).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psutil

from preform_pipeline.hotfolder.testing import (
    fleet_jobs,
    tetra_stl_bytes,
    write_hotfolder_settings,
    write_recipe,
)
from preform_pipeline.store import JobState, SqliteJobStore

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("HOTFOLDER_CRASH_SEED", "20240501"))
ITERATIONS = 10
#: Kill moments, seconds after the start: from "still importing" to "printing".
KILL_AFTER_S = (0.2, 3.0)
FINAL_TIMEOUT_S = 90.0
SIMULATOR_ARGS = ("--latency", "realistic", "--time-scale", "0.3")


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the daemon, then the simulators it started (orphans after a power cut die too)."""
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(children, timeout=10)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class TestCrashes:
    """Whatever moment the daemon dies at, no file is lost and nothing prints twice."""

    def test_sigkill_at_random_moments(self, tmp_path: Path) -> None:
        rng = random.Random(SEED)
        fleet = tmp_path / "fleet"
        recipe = write_recipe(tmp_path, per_build=6)
        settings = write_hotfolder_settings(
            tmp_path, recipe, fleet_dir=fleet,
            hotfolders={"batching": {"window_s": 0.3, "max_models": 6}},
            # Operations take time (a print about 0.5 s), so kills land inside them too,
            # the send of a print included.
            simulator_args=SIMULATOR_ARGS,
        )
        inbox = tmp_path / "inbox"
        staging = tmp_path / "staging"
        staging.mkdir()
        inbox.mkdir()
        dropped: dict[str, str] = {}  # stem -> content digest
        command = [sys.executable, "-m", "preform_pipeline", "watch", str(settings), "--quiet"]
        log = (tmp_path / "daemon.log").open("ab")
        seed = 0
        for iteration in range(ITERATIONS):
            for _ in range(rng.randint(2, 5)):
                seed += 1
                data = tetra_stl_bytes(seed)
                if rng.random() < 0.25:
                    case = staging / f"case{seed}"
                    case.mkdir()
                    (case / f"m{seed}a.stl").write_bytes(data)
                    other = tetra_stl_bytes(seed + 50_000)
                    (case / f"m{seed}b.stl").write_bytes(other)
                    dropped[f"m{seed}a"], dropped[f"m{seed}b"] = digest(data), digest(other)
                    case.rename(inbox / case.name)
                else:
                    (staging / f"m{seed}.stl").write_bytes(data)
                    dropped[f"m{seed}"] = digest(data)
                    (staging / f"m{seed}.stl").rename(inbox / f"m{seed}.stl")
            process = subprocess.Popen(command, cwd=tmp_path, env=environment(), stdout=log,
                                       stderr=log)
            moment = rng.uniform(*KILL_AFTER_S)
            # The random moment: the daemon never exits on its own, so this always times out.
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=moment)
            if process.poll() is not None:
                log.flush()
                tail = (tmp_path / "daemon.log").read_text(encoding="utf-8")[-3000:]
                raise AssertionError(f"iteration {iteration}: the daemon exited early:\n{tail}")
            kill_tree(process)

        final = subprocess.run([*command, "--once"], cwd=tmp_path, env=environment(),
                               stdout=log, stderr=log, timeout=FINAL_TIMEOUT_S, check=False)
        log.close()
        context = f"seed {SEED}; log: {tmp_path / 'daemon.log'}"
        assert final.returncode == 0, context

        # Every file in done/ exactly once, nothing left behind.
        done = [p for p in (inbox / "done").rglob("*.stl")]
        failed = [p for p in (inbox / "failed").rglob("*.stl")]
        assert failed == [], context
        assert sorted(digest(p.read_bytes()) for p in done) == sorted(dropped.values()), context
        assert [p for p in (inbox / "processing").rglob("*") if p.is_file()] == [], context
        leftovers = [p for p in inbox.iterdir() if p.name not in ("done", "failed", "processing")]
        assert leftovers == [], context

        # Every model printed exactly once, each print a printed build of the store.
        prints = fleet_jobs(fleet)
        printed_models = Counter(m["name"] for job in prints for m in job["models"])
        assert printed_models == Counter(dropped.keys()), context
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            builds = {b.job_name: b for b in store.list_builds(state=JobState.PRINT_SENT)}
            jobs = store.list_jobs()
        names = [job["job_name"] for job in prints]
        assert len(names) == len(set(names)), context
        assert set(names) == set(builds), context
        assert {j.state for j in jobs} == {JobState.PRINT_SENT}, context
        assert len(jobs) == len(dropped), context

"""Several connections on one store: races have one winner, readers never see a lock."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest

from preform_pipeline.errors import StoreConflictError
from preform_pipeline.store import JobState, SqliteJobStore
from tests.conftest import REPO_ROOT
from tests.unit.store.conftest import build_in_state

S = JobState
#: Generous bound for a worker process; they finish in well under a second each.
WORKER_TIMEOUT_S = 60.0
RACED_BUILDS = 20


def _worker(python_exe: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [python_exe, "-m", "tests.unit.store.store_workers", *args],
        cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )


class TestRaces:
    """Two connections racing the same compare-and-set transition: exactly one wins."""

    def test_two_threads_with_their_own_connections(self, store_path: Path) -> None:
        with SqliteJobStore(store_path) as setup:
            builds = [build_in_state(setup, S.PREPARED, jobs=1).id for _ in range(RACED_BUILDS)]
        stores = [SqliteJobStore(store_path) for _ in range(2)]
        barrier = threading.Barrier(2, timeout=WORKER_TIMEOUT_S)
        wins: list[list[int]] = [[], []]
        errors: list[BaseException] = []

        def contender(index: int) -> None:
            try:
                for build_id in builds:
                    barrier.wait()  # both reach the transition together, every round
                    try:
                        stores[index].transition_build(
                            build_id, S.PRINT_SENDING, f"thread {index}", expect=S.PREPARED
                        )
                        wins[index].append(build_id)
                    except StoreConflictError:
                        pass
            except BaseException as exc:  # surfaced in the test thread below
                errors.append(exc)
                barrier.abort()

        threads = [threading.Thread(target=contender, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(WORKER_TIMEOUT_S)
        for s in stores:
            s.close()
        assert not errors
        assert sorted(wins[0] + wins[1]) == builds  # each build won once, none twice
        with SqliteJobStore(store_path) as check:
            for build_id in builds:
                sends = [t for t in check.build_history(build_id)
                         if t.to_state is S.PRINT_SENDING]
                assert len(sends) == 1

    def test_two_processes_with_their_own_connections(
        self, store_path: Path, python_exe: str
    ) -> None:
        with SqliteJobStore(store_path) as setup:
            builds = [str(build_in_state(setup, S.PREPARED, jobs=2).id)
                      for _ in range(RACED_BUILDS)]
        workers = [_worker(python_exe, "race", str(store_path), *builds) for _ in range(2)]
        try:
            for w in workers:
                assert w.stdout is not None
                assert w.stdout.readline().strip() == "ready", w.stderr.read() if w.stderr else ""
            for w in workers:  # both start looping over the same builds at once
                assert w.stdin is not None
                w.stdin.write("go\n")
                w.stdin.flush()
            outputs = [w.communicate(timeout=WORKER_TIMEOUT_S) for w in workers]
        finally:
            for w in workers:
                if w.poll() is None:
                    w.kill()
        assert [w.returncode for w in workers] == [0, 0], [o[1] for o in outputs]
        won = [line.split()[1] for out, _ in outputs for line in out.splitlines()
               if line.startswith("won")]
        lost = [line.split()[1] for out, _ in outputs for line in out.splitlines()
                if line.startswith("lost")]
        assert sorted(won, key=int) == builds
        assert sorted(lost, key=int) == builds
        with SqliteJobStore(store_path) as check:
            for build in check.list_builds():
                assert build.state is S.PRINT_SENDING
                reasons = {t.reason for t in check.build_history(build.id)
                           if t.to_state is S.PRINT_SENDING}
                assert len(reasons) == 1


class TestSharedStore:
    """One store object may be shared by the threads of a process (watcher, poller, daemon)."""

    def test_threads_writing_through_one_store_lose_nothing(self, store_path: Path) -> None:
        errors: list[BaseException] = []
        with SqliteJobStore(store_path) as store:

            def writer(index: int) -> None:
                try:
                    for n in range(25):
                        job = store.create_job(recipe="r", source_path=f"/{index}/{n}.stl")
                        store.transition(job.id, S.QUEUED, "complete", expect=S.DISCOVERED)
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(WORKER_TIMEOUT_S)
            assert not errors
            jobs = store.list_jobs()
            assert len(jobs) == 100 and {j.state for j in jobs} == {S.QUEUED}
            assert all(len(store.history(j.id)) == 2 for j in jobs)


class TestConcurrentReader:
    """The jobs command reads while the daemon writes, without waiting or failing."""

    @pytest.mark.slow
    def test_the_cli_reads_while_another_process_writes_in_a_loop(
        self, tmp_path: Path, python_exe: str
    ) -> None:
        store_path = tmp_path / "jobs.sqlite3"
        stop = tmp_path / "stop"
        SqliteJobStore(store_path).close()
        writer = _worker(python_exe, "write", str(store_path), str(stop), "100000")
        seen: list[int] = []
        try:
            assert writer.stdout is not None
            assert writer.stdout.readline().strip() == "started"
            for _ in range(3):
                reader = subprocess.run(
                    [python_exe, "-m", "preform_pipeline", "jobs", "--store", str(store_path),
                     "--format", "json", "--limit", "0"],
                    cwd=REPO_ROOT, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S,
                )
                assert reader.returncode == 0, reader.stderr
                assert "locked" not in reader.stderr
                jobs = json.loads(reader.stdout)["jobs"]
                # Committed transitions only: a job is never seen half-moved.
                assert {j["state"] for j in jobs} <= {"discovered", "queued", "processing"}
                seen.append(len(jobs))
            assert writer.poll() is None, "the writer must still be writing during the reads"
        finally:
            stop.touch()
            out, err = writer.communicate(timeout=WORKER_TIMEOUT_S)
        assert writer.returncode == 0, err
        written = int(out.split()[-1])
        assert seen == sorted(seen) and seen[-1] > seen[0] > 0
        assert written >= seen[-1]

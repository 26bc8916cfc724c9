"""The hot folder with real folders, real watchdog observers and real simulated servers.

Each test runs :class:`HotFolderDaemon` in a thread of the test process, the way ``watch``
runs it, on a pool of simulator subprocesses that share a fleet folder in the test's folder:
every print the daemon sends lands there as one JSON file, so "printed exactly once" is
counted, not assumed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from preform_pipeline.hotfolder.daemon import HotFolderDaemon
from preform_pipeline.hotfolder.testing import (
    fleet_jobs,
    tetra_stl_bytes,
    wait_for,
    write_hotfolder_settings,
    write_recipe,
)
from preform_pipeline.printing import FleetFolderLocator
from preform_pipeline.servers import ServerPool
from preform_pipeline.settings import Settings, load_settings
from preform_pipeline.store import JobState, SqliteJobStore

TIMEOUT_S = 60.0
#: The wait for 1,000 files to settle: on a loaded 2-core machine (load 10) 60 s was not
#: enough. Reached only when something is broken; the test asserts no speed.
MANY_FILES_WAIT_S = 300.0
MODEL_SUFFIXES = (".stl", ".obj", ".3mf")


def started_pool(settings: Settings) -> ServerPool:
    pool = ServerPool(settings.pool, handle_signals=False)
    pool.start()
    return pool


@contextmanager
def daemon_running(
    folder: Path, *, inbox: dict[str, Any] | None = None, per_build: int = 100,
    servers: int = 1, hotfolders: dict[str, Any] | None = None,
) -> Iterator[tuple[HotFolderDaemon, SqliteJobStore, Path]]:
    fleet = folder / "fleet"
    recipe = write_recipe(folder, per_build=per_build)
    path = write_hotfolder_settings(folder, recipe, fleet_dir=fleet, servers=servers,
                                    inbox=inbox, hotfolders=hotfolders)
    settings = load_settings(path, env={})
    store = SqliteJobStore(settings.store.path)
    daemon = HotFolderDaemon(settings, store, lambda: started_pool(settings),
                             print_lookup=FleetFolderLocator(fleet))
    thread = threading.Thread(target=daemon.run, name="daemon")
    thread.start()
    try:
        wait_for(lambda: daemon.watcher.running, 10, what="the watcher to start")
        yield daemon, store, fleet
    finally:
        daemon.stop()
        thread.join(TIMEOUT_S)
        store.close()
    assert not thread.is_alive()


def settled(folder: Path, count: int) -> bool:
    """At least ``count`` model files sit in done/ or failed/."""
    # Names, not Paths: asked in the daemon's own process, a Path per entry of a done/ of
    # 2,000 entries (1,000 files and their reports) took 38 ms of the daemon's GIL a look.
    models = sum(
        1 for sub in ("done", "failed") for _folder, _subs, names in os.walk(folder / sub)
        for name in names if name.endswith(MODEL_SUFFIXES) and not name.startswith(".")
    )
    return models >= count


class TestSlowWriter:
    """A file written slowly in chunks is taken once, and only when complete."""

    @pytest.mark.parametrize("mode", ["native", "polling"])
    def test_the_slow_file_is_taken_once_complete(self, tmp_path: Path, mode: str) -> None:
        data = tetra_stl_bytes(copies=40)  # 84 + 50 x 160 bytes
        with daemon_running(tmp_path, inbox={"mode": mode, "poll_interval_s": 0.2}) as (
            _daemon, store, fleet,
        ):
            target = tmp_path / "inbox" / "slow.stl"
            finished = threading.Event()

            def writer() -> None:
                # Reopened per chunk: a file taken too early would be re-created here.
                for start in range(0, len(data), 997):
                    with target.open("ab") as handle:
                        handle.write(data[start:start + 997])
                    time.sleep(0.03)  # the pace of a slow network copy
                finished.set()

            thread = threading.Thread(target=writer)
            thread.start()
            thread.join(TIMEOUT_S)
            assert finished.is_set()
            wait_for(lambda: settled(tmp_path / "inbox", 1), TIMEOUT_S, what="the file settled")
            (job,) = store.list_jobs()
            assert job.state is JobState.PRINT_SENT
            first = store.history(job.id)[0]
            assert f"size {len(data)} = 84 + 50 x 160 triangles" in first.reason
            assert (tmp_path / "inbox" / "done" / "slow.stl").read_bytes() == data
            assert len(fleet_jobs(fleet)) == 1


class TestManyFiles:
    """1,000 files dropped at once are all processed, each exactly once."""

    @pytest.mark.timeout(MANY_FILES_WAIT_S + TIMEOUT_S)
    def test_a_thousand_files(self, tmp_path: Path) -> None:
        count = 1000
        staging = tmp_path / "staging"
        staging.mkdir()
        for i in range(count):
            (staging / f"p{i:04d}.stl").write_bytes(tetra_stl_bytes(i))
        with daemon_running(
            tmp_path, servers=2, hotfolders={"batching": {"window_s": 0.5, "max_models": 250}},
        ) as (_daemon, store, fleet):
            inbox = tmp_path / "inbox"
            for path in staging.iterdir():
                path.rename(inbox / path.name)  # a drop: each file appears whole
            # Each look walks done/ and failed/ (2,000 entries at the end) in the daemon's own
            # process: every 0.5 s, not 0.1 s, for a wait of tens of seconds (session 49).
            wait_for(lambda: settled(inbox, count), MANY_FILES_WAIT_S, interval=0.5,
                     what="all files settled")
            jobs = store.list_jobs()
        done = sorted(p.name for p in (inbox / "done").glob("*.stl"))
        assert done == [f"p{i:04d}.stl" for i in range(count)]
        assert list((inbox / "failed").iterdir()) == []
        assert len(jobs) == count
        assert {j.state for j in jobs} == {JobState.PRINT_SENT}
        printed = fleet_jobs(fleet)
        builds = {j.build_id for j in jobs}
        assert len(printed) == len(builds)
        assert len({p["job_name"] for p in printed}) == len(printed)


class TestCorruptFile:
    """A corrupt STL goes to failed/ with the reason while its batch-mates print."""

    def test_batch_mates_print(self, tmp_path: Path) -> None:
        with daemon_running(
            tmp_path, inbox={"incomplete_timeout_s": 1.0},
            hotfolders={"batching": {"window_s": 2.0}},
        ) as (_daemon, store, fleet):
            staging = tmp_path / "staging"
            staging.mkdir()
            (staging / "a.stl").write_bytes(tetra_stl_bytes(1))
            (staging / "b.stl").write_bytes(tetra_stl_bytes(2))
            # Complete by the rule (it ends its solid), but no reader can make sense of it.
            (staging / "garbled.stl").write_bytes(
                b"solid g\nfacet normal x y z\nouter loop\nendloop\nendfacet\nendsolid g\n")
            # A truncated upload: never complete, taken after the incomplete timeout.
            (staging / "truncated.stl").write_bytes(tetra_stl_bytes(3)[: 84 + 120])
            inbox = tmp_path / "inbox"
            for path in sorted(staging.iterdir()):
                path.rename(inbox / path.name)
            wait_for(lambda: settled(inbox, 4), TIMEOUT_S, what="all four settled")
            jobs = store.list_jobs()
        states = {j.original_name: j.state for j in jobs}
        assert states == {"a.stl": JobState.PRINT_SENT, "b.stl": JobState.PRINT_SENT,
                          "garbled.stl": JobState.FAILED, "truncated.stl": JobState.FAILED}
        for name in ("garbled.stl", "truncated.stl"):
            note = (inbox / "failed" / f"{name}.error.txt").read_text(encoding="utf-8")
            assert name in note and "What to do:" in note
        (printed,) = fleet_jobs(fleet)
        assert sorted(m["name"] for m in printed["models"]) == ["a", "b"]
        garbled = next(j for j in jobs if j.original_name == "garbled.stl")
        assert garbled.build_id is None  # refused while planning the batch a and b were in


class TestCase:
    """A dropped folder is one case: its files share one build."""

    def test_case_files_stay_together(self, tmp_path: Path) -> None:
        with daemon_running(tmp_path) as (_daemon, store, fleet):
            staging = tmp_path / "C-1042"
            staging.mkdir()
            (staging / "upper.stl").write_bytes(tetra_stl_bytes(1))
            (staging / "lower.stl").write_bytes(tetra_stl_bytes(2))
            (staging / "C-1042.yaml").write_text("priority: 3\nlabel_text: C1042\n",
                                                  encoding="utf-8")
            inbox = tmp_path / "inbox"
            staging.rename(inbox / "C-1042")
            wait_for(lambda: settled(inbox, 2), TIMEOUT_S, what="the case settled")
            jobs = store.list_jobs()
        assert {j.case_id for j in jobs} == {"C-1042"}
        assert len({j.build_id for j in jobs}) == 1
        assert {j.priority for j in jobs} == {3}
        assert (inbox / "done" / "C-1042" / "upper.stl").exists()
        assert (inbox / "done" / "C-1042" / "C-1042.yaml").exists()
        assert not (inbox / "C-1042").exists()
        assert len(fleet_jobs(fleet)) == 1

    def test_a_file_removed_from_a_waiting_case_and_the_case_goes_on_without_it(
        self, tmp_path: Path,
    ) -> None:
        """The case's unfinished file removed: the daemon's own looks at the waiting case find
        it gone (the case folder's "modified" is not what carries it). No rescan comes
        meanwhile."""
        with daemon_running(tmp_path, inbox={"incomplete_timeout_s": 600.0},
                            hotfolders={"rescan_interval_s": 3600.0}) as (daemon, store, _fleet):
            staging = tmp_path / "C-3001"
            staging.mkdir()
            (staging / "upper.stl").write_bytes(tetra_stl_bytes(1))
            (staging / "lower.stl").write_bytes(tetra_stl_bytes(2)[:100])  # cut short: waits
            case = tmp_path / "inbox" / "C-3001"
            staging.rename(case)
            wait_for(lambda: case in daemon._units and daemon._units[case].next_check > 0,
                     TIMEOUT_S, what="the case waiting for lower.stl")
            (case / "lower.stl").unlink()
            wait_for(lambda: settled(tmp_path / "inbox", 1), TIMEOUT_S, what="the case settled")
            jobs = store.list_jobs()
        assert [j.original_name for j in jobs] == ["upper.stl"]
        assert (tmp_path / "inbox" / "done" / "C-3001" / "upper.stl").is_file()

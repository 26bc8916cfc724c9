"""The rest of a batch abandoned while the store was away (hotfolder/batchrest.py): items
given back rest in the batcher until their time, by every rule, ``flush`` too; the rest
doubles up to ``MAX_REST_S``; the models kept for the next try are given back only while
their file is unchanged and for the same recipe and job."""

from __future__ import annotations

import os
import time
from pathlib import Path

from preform_pipeline.clock import ManualClock
from preform_pipeline.hotfolder.batcher import Batcher, BatchItem
from preform_pipeline.hotfolder.batchrest import MAX_REST_S, BatchRest, Try
from preform_pipeline.hotfolder.testing import tetra_stl_bytes
from preform_pipeline.plan.builds import ModelInfo
from preform_pipeline.settings.hotfolder import BatchingSettings
from preform_pipeline.store import JobState, SqliteJobStore


class TestItemsRestInTheBatcher:
    def test_a_resting_item_waits_for_its_time_even_for_a_flush(self) -> None:
        clock = ManualClock()
        batcher = Batcher(BatchingSettings(window_s=10, max_models=1), clock)
        batcher.add(BatchItem("job:1", "r", (1,), clock.monotonic(),
                              not_before=clock.monotonic() + 30))

        assert (batcher.flush(), batcher.full(), batcher.due()) == ([], [], [])
        assert batcher.pending_items == 1  # a --once run waits for it
        assert batcher.next_due_in() == 30
        clock.advance(30)
        (batch,) = batcher.due()  # its window passed while it rested
        assert batch.job_ids == (1,) and batcher.pending_items == 0

    def test_a_resting_item_can_be_discarded(self) -> None:
        clock = ManualClock()
        batcher = Batcher(BatchingSettings(window_s=10), clock)
        batcher.add(BatchItem("job:1", "r", (1,), clock.monotonic(),
                              not_before=clock.monotonic() + 30))
        batcher.discard(["job:1"])
        clock.advance(60)
        assert batcher.flush() == [] and batcher.next_due_in() is None


def _model(path: Path) -> ModelInfo:
    return ModelInfo(path=path, name=path.stem, size_mm=(2, 2, 2), footprint_mm=(2, 2),
                     volume_mm3=8.0, support_estimate_mm3=0.0, triangle_count=4)


class TestTheRestAndTheKeptModels:
    def test_the_rest_doubles_to_its_limit_and_starts_again_once_recorded(self) -> None:
        rest = BatchRest(window_s=10)
        tries = [rest.abandoned("r", [], []) for _ in range(8)]
        assert tries[:2] == [Try(10, True), Try(20, False)]
        assert [t.rest_s for t in tries[2:]] == [40, 80, 160, MAX_REST_S, MAX_REST_S,
                                                 MAX_REST_S]
        rest.recorded()
        assert rest.abandoned("r", [], []) == Try(10, True)
        assert BatchRest(window_s=0).abandoned("r", [], []).rest_s > 0

    def test_a_model_is_kept_once_and_only_while_its_file_is_unchanged(
        self, tmp_path: Path
    ) -> None:
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            jobs = []
            for n in range(3):
                path = tmp_path / f"m{n}.stl"
                path.write_bytes(tetra_stl_bytes(n))
                jobs.append(store.create_job(recipe="r", source_path=path,
                                             state=JobState.PROCESSING))
        rest = BatchRest(window_s=1)
        rest.abandoned("r", jobs, [_model(j.source_path) for j in jobs])
        changed = jobs[1].source_path
        changed.write_bytes(tetra_stl_bytes(7, size_mm=3))
        os.utime(changed, ns=(1, 1))

        assert rest.take("r", jobs) == {jobs[0].source_path: _model(jobs[0].source_path),
                                        jobs[2].source_path: _model(jobs[2].source_path)}
        assert rest.take("r", jobs) == {}  # taken once

        rest.abandoned("r", jobs, [_model(jobs[0].source_path)])
        assert rest.take("other", jobs) == {}  # read for another recipe: read again

        # A job with nothing kept comes first: the ones after it are still given.
        rest.abandoned("r", jobs, [_model(jobs[2].source_path)])
        assert rest.take("r", jobs) == {jobs[2].source_path: _model(jobs[2].source_path)}

        rest.abandoned("r", jobs, [_model(jobs[0].source_path)])
        jobs[0].source_path.unlink()  # gone: the read says so
        assert rest.take("r", jobs) == {}

    def test_a_file_written_over_with_its_size_and_modification_time_is_read_again(
        self, tmp_path: Path
    ) -> None:
        """A binary STL of as many triangles copied over the waiting one with ``cp -p``:
        same inode, size and modification time; the kept model is not given for it."""
        path = tmp_path / "m.stl"
        path.write_bytes(tetra_stl_bytes(1))
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            job = store.create_job(recipe="r", source_path=path, state=JobState.PROCESSING)
        rest = BatchRest(window_s=1)
        rest.abandoned("r", [job], [_model(path)])
        before = os.stat(path)
        time.sleep(0.05)  # past the file system's clock tick
        with open(path, "r+b") as file:  # in place, as cp does over an existing file
            file.write(tetra_stl_bytes(2, size_mm=3))
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        after = os.stat(path)
        assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
            before.st_ino, before.st_size, before.st_mtime_ns)
        assert path.read_bytes() != tetra_stl_bytes(1)

        assert rest.take("r", [job]) == {}

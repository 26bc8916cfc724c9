"""A node's local copies of shared source files (hotfolder/localcopy.py), on real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from preform_pipeline.errors import SourceCopyError
from preform_pipeline.hotfolder.localcopy import LocalCopies
from preform_pipeline.hotfolder.testing import tetra_stl_bytes
from preform_pipeline.store import Job, JobState, SqliteJobStore
from preform_pipeline.store.content import content_hash


def _job(store: SqliteJobStore, shared: Path, name: str, seed: int) -> Job:
    path = shared / name
    path.write_bytes(tetra_stl_bytes(seed))
    return store.create_job(recipe="hot", source_path=path, content_hash=content_hash(path),
                            state=JobState.PROCESSING)


class TestLocalCopies:
    """Copies are checked against the claimed hash, imported instead of the file, removed."""

    def test_a_copy_is_the_file_s_bytes_named_for_its_job_and_removed_on_release(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        shared = tmp_path / "share"
        shared.mkdir()
        job = _job(store, shared, "m.stl", 1)
        copies = LocalCopies(tmp_path / "cache")
        copy = copies.take(job)
        assert copy.is_relative_to(tmp_path / "cache")
        assert copy.read_bytes() == job.source_path.read_bytes()
        assert copies.import_from(job.source_path) == copy
        copies.release([job])
        assert not copy.exists()
        assert list((tmp_path / "cache").iterdir()) == []
        assert copies.import_from(job.source_path) == job.source_path

    def test_a_file_changed_since_its_claim_is_refused_and_kept(
        self, store: SqliteJobStore, tmp_path: Path
    ) -> None:
        shared = tmp_path / "share"
        shared.mkdir()
        job = _job(store, shared, "m.stl", 1)
        job.source_path.write_bytes(tetra_stl_bytes(2))  # changed on the share meanwhile
        copies = LocalCopies(tmp_path / "cache")
        with pytest.raises(SourceCopyError, match="content changed"):
            copies.take(job)
        assert job.source_path.read_bytes() == tetra_stl_bytes(2)
        assert list((tmp_path / "cache").iterdir()) == []

    def test_copies_left_by_a_previous_life_are_pruned(self, tmp_path: Path) -> None:
        stale = tmp_path / "cache" / "KEY1"
        stale.mkdir(parents=True)
        (stale / "m.stl").write_bytes(b"x")
        assert LocalCopies(tmp_path / "cache").prune() == 1
        assert list((tmp_path / "cache").iterdir()) == []

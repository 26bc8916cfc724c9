"""The SQLite store's WAL stays bounded: it is checkpointed every few hundred pages, and the
room it took while a reader held checkpoints back is given back once the reader is gone.

SQLite's defaults checkpoint only at 1,000 pages (about 4 MB) and never shrink the ``-wal``
file, so a store on a small disk filled it by itself (Session 39, the full-disk loop).
Real SQLite files; the reader is a second store on the same file, as ``jobs`` would be."""

from __future__ import annotations

from pathlib import Path

from preform_pipeline.store import SqliteJobStore
from preform_pipeline.store.sqlite import WAL_SIZE_LIMIT_BYTES

#: About 20 pages a job: a few hundred jobs write several times the WAL's bound.
FIELD = "x" * 60_000
#: What one commit may add beyond the bound before the checkpoint it triggers runs.
SLACK = 256 * 1024


def wal_size(store: Path) -> int:
    wal = store.with_name(store.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def write_jobs(store: SqliteJobStore, path: Path, count: int, tag: str) -> int:
    """Create ``count`` large jobs; the largest the WAL was after any of them."""
    peak = 0
    for n in range(count):
        store.create_job(recipe="r", source_path=f"/in/{tag}{n}.stl", fields={"big": FIELD})
        peak = max(peak, wal_size(path))
    return peak


def test_wal_never_grows_past_its_bound_in_a_long_run(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = SqliteJobStore(path)
    try:
        # ~300 x 60 kB: some 18 MB through the WAL, four times SQLite's default threshold.
        peak = write_jobs(store, path, 300, "a")
        assert peak <= WAL_SIZE_LIMIT_BYTES + SLACK, peak
        assert len(store.list_jobs()) == 300  # nothing lost to the checkpoints
    finally:
        store.close()


def test_wal_grown_behind_a_reader_shrinks_once_the_reader_is_gone(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = SqliteJobStore(path)
    reader = SqliteJobStore(path, read_only=True)
    try:
        first = store.create_job(recipe="r", source_path="/in/first.stl")
        with reader.snapshot():
            # The reader's snapshot pins the WAL's start: no checkpoint may reset it.
            assert reader.get_job(first.id).job_key == first.job_key
            grown = write_jobs(store, path, 100, "held")
            assert grown > 2 * WAL_SIZE_LIMIT_BYTES, grown  # it did grow past the bound
        # Reader gone: the next checkpoint resets the WAL, and SQLite cuts the file back.
        write_jobs(store, path, 40, "after")
        assert wal_size(path) <= WAL_SIZE_LIMIT_BYTES + SLACK, wal_size(path)
        assert len(reader.list_jobs()) == 141  # the reader sees every job since
    finally:
        reader.close()
        store.close()
